//! demarc-gateway: an OpenAI-compatible HTTP enforcement point in front of model providers.
//!
//! Each caller is an application authenticated by its own gateway key; its guard policy runs
//! on input and on output (streamed output included, event by event); requests are routed to
//! upstreams with timeouts, retries, failover and a circuit breaker; every request leaves
//! exactly one audit event. The library has no knowledge of the CLI: the binary builds a
//! [`config::GatewayConfig`], a [`keys::KeySource`], an [`audit::AuditSink`] and the policies,
//! then calls [`server::Gateway::start`] and [`server::serve`].

// Code map (each module's own docs say more).
// One audit event per request, a bounded queue and a batching writer.
pub mod audit;
// Canaries made by demarc: generated, injected into the system context, blocked in answers,
// rotated.
pub mod canary;
// The config file (YAML), validated into domain types; every problem named by field.
pub mod config;
// Errors in OpenAI's JSON shape.
pub mod error;
// Where text lives, found by structure: every string is scanned but identifiers; data URLs
// of text decoded, other payloads reported as unreadable.
pub mod fields;
// Grounding passages from approved sources, filtered by the caller's groups.
pub mod grounding;
// The adapter from `demarc-guard` to the `policy::Policy` seam.
pub mod guard;
// The lean HTTP/1.1 client that reads upstream answers in the request's own task.
pub mod h1;
// Gateway keys: random, shown once, stored hashed, compared in constant time.
pub mod keys;
// Rate limits and token budgets per application and per end user.
pub mod limits;
// Prometheus metrics.
pub mod metrics;
// The request scan (by role and trust, as one conversation), the response filter and the
// filter every streamed event passes through.
pub mod openai;
// The gateway's view of a guard policy: input scan, incremental output scan, restore.
pub mod policy;
// The router, the proxy pipeline, streaming, admission and shutdown.
pub mod server;
// Server-sent events: bounded incremental parser and encoder.
pub mod sse;
// Keys, audit and evidence in `demarc-store`.
pub mod store;
// The shape a request must have (OpenAI's own 400s), checked before anything else.
pub mod validate;
// Upstream requests (OpenAI-compatible, Azure): timeouts, retries honouring
// `Retry-After`, failover, circuit breaker.
pub mod upstream;
