//! demarc-gateway: an OpenAI-compatible HTTP enforcement point in front of model providers.
//!
//! Each caller is an application authenticated by its own gateway key; its guard policy runs
//! on input and on output (streamed output included, event by event); requests are routed to
//! upstreams with timeouts, retries, failover and a circuit breaker; every request leaves
//! exactly one audit event. The library has no knowledge of the CLI: the binary builds a
//! [`config::GatewayConfig`], a [`keys::KeyRing`], an [`audit::AuditSink`] and the policies,
//! then calls [`server::Gateway::start`] and [`server::serve`].

pub mod audit;
pub mod config;
pub mod error;
pub mod fake;
pub mod grounding;
pub mod guard;
pub mod keys;
pub mod limits;
pub mod metrics;
pub mod openai;
pub mod policy;
pub mod server;
pub mod sse;
pub mod store;
pub mod upstream;
