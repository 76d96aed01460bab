//! demarc-gateway: an OpenAI-compatible HTTP enforcement point in front of model providers.
//!
//! Each caller is an application authenticated by its own gateway key; its guard policy runs
//! on input and on output (streamed output included, event by event); requests are routed to
//! upstreams with timeouts, retries, failover and a circuit breaker; every request leaves
//! exactly one audit event. The library has no knowledge of the CLI: the binary builds a
//! [`GatewayConfig`], a [`KeySource`], an [`AuditSink`] and the policies, then calls
//! [`Gateway::start`] and [`serve`].
//!
//! Modules follow a request, stage by stage (each module's own docs say more):
//!
//! | stage | module |
//! |---|---|
//! | routes, health, metrics, graceful drain | `routes` |
//! | the pipeline that drives the stages | `pipeline` |
//! | admission: key, user, body, limits, requests in progress | `admission` (`keys`, `limits`) |
//! | the request's shape (OpenAI's own 400s) | `validate` |
//! | input policy: every text found by structure, scanned by role and trust | `input` (`fields`) |
//! | canary and grounding into the system context | `canary`, `grounding` |
//! | upstream: timeouts, retries, failover, circuit breaker | `upstream` |
//! | output policy: whole answers; streams event by event; the relay to the caller | `output`, `output::stream`, `output::relay` (`sse`) |
//! | the end of a request: metrics, charges, its audit event | `gateway` (`audit`, `metrics`) |
//!
//! Underneath: `config` (the YAML file, validated into domain types), `endpoint`, `error`
//! (OpenAI's error shape), `policy` (the seam between the gateway and a policy engine) and its
//! adapter to demarc-guard `guard`, and `store` (keys, counters, canaries, audit and evidence in
//! demarc-store).

mod admission;
mod audit;
mod canary;
mod config;
mod context;
mod endpoint;
mod error;
mod fields;
mod gateway;
mod grounding;
mod guard;
mod input;
mod keys;
mod limits;
mod metrics;
mod output;
mod pipeline;
mod policy;
mod routes;
mod sse;
mod store;
mod upstream;
mod validate;

pub use audit::{AuditEvent, AuditSink, JsonlSink, MemorySink, SinkFuture};
pub use canary::{CanaryError, CanaryFuture, CanarySource};
pub use config::{
    ApplicationConfig, ConfigError, GatewayConfig, InputRules, LimitsFallback, PolicySpec,
    Unreadable, YamlValue,
};
pub use endpoint::Endpoint;
pub use error::BackendError;
pub use fields::{Role, STRUCTURAL};
pub use gateway::{Activity, Gateway, GatewayError, PolicyFactory};
pub use grounding::{DEFAULT_PASSAGES, Grounding, SourceSpec};
pub use guard::GuardPolicy;
pub use input::{InputBlocked, scan_request};
pub use keys::{KeyRecord, KeySource, LookupFuture, MemoryKeys};
pub use limits::batched::{AddAllFuture, BatchedCounters, CounterTable};
pub use limits::redis::{RedisCounters, RedisError};
pub use limits::{AdmitFuture, Check, CountFuture, SharedCounters, current_window};
pub use output::filter_response;
pub use output::stream::{StreamEnd, StreamFilter};
pub use policy::{
    Action, Blocked, Coverage, Hit, InputScan, Off, OutputScanner, Policy, Trust, Vault, Verdicts,
};
pub use routes::{Live, router, serve, shutdown_signal};
pub use sse::{Event as SseEvent, Parser as SseParser};
pub use store::{
    StoreCanaries, StoreCounters, StoreKeys, StoreSink, evidence, observations, write_evidence,
};
