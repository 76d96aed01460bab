//! The gateway: its applications (each with its policy, upstream order, grounding and
//! canary), built once at start; and the end of every request: metrics, token charges and its
//! one audit event ([`Gateway::finish`]). The stages a request goes through are
//! [`crate::admission`], [`crate::input`], [`crate::grounding`], [`crate::upstream`],
//! [`crate::output`], driven by [`crate::pipeline`]; [`crate::routes`] serves them.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};

use crate::audit::{AuditEvent, AuditSink, Auditor, Slot};
use crate::canary::{AppCanary, CanaryPolicy, CanarySource};
use crate::config::StorePrompt;
use crate::config::{ApplicationConfig, GatewayConfig};
use crate::context::Ctx;
use crate::error::ApiError;
use crate::grounding::Grounding;
use crate::keys::{Authenticator, KeySource};
use crate::limits::redis::RedisCounters;
use crate::limits::{Limiter, SharedCounters, current_window};
use crate::metrics::Metrics;
use crate::policy::{Coverage, EnforceInjectionOnEmbeddings, Policy};
use crate::upstream::Upstream;

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("upstream `{id}`: {source}")]
    Client {
        id: String,
        source: crate::upstream::ClientError,
    },
    #[error("application `{id}`: {message}")]
    Policy { id: String, message: String },
    #[error("application `{id}`: canary: {source}")]
    Canary {
        id: String,
        source: crate::canary::CanaryError,
    },
    #[error("redis: {0}")]
    Redis(#[from] crate::limits::redis::RedisError),
}

/// One application as the gateway serves it.
pub struct App {
    pub config: ApplicationConfig,
    /// Indexes into the upstream list, in failover order.
    pub(crate) order: Vec<usize>,
    pub policy: Arc<dyn Policy>,
    pub(crate) grounding: Option<Arc<Grounding>>,
    /// The generated canary injected into the application's system context, if enabled.
    pub(crate) canary: Option<Arc<AppCanary>>,
    coverage: Coverage,
    activity: Arc<std::sync::Mutex<Activity>>,
}

/// What the gateway did for one application since it started (the basis of evidence).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Activity {
    /// Requests authenticated for the application, whatever became of them.
    pub requests: u64,
    /// Requests answered (status below 400, no error).
    pub served: u64,
    pub input_scanned: u64,
    pub input_blocked: u64,
    pub output_scanned: u64,
    pub output_blocked: u64,
    pub redactions: u64,
    pub rate_limited: u64,
    pub grounded: u64,
    /// Requests whose system context carried the application's generated canary.
    pub canary_injected: u64,
    /// Answers blocked because they carried one of the application's canaries.
    pub canary_blocked: u64,
}

/// Everything a request needs, shared by all of them. A config reload
/// ([`Gateway::reconfigured`]) makes a new one that shares everything kept at run time (audit
/// queue, key cache, limits, counters, metrics) with the one it replaces; a request keeps the
/// one it started with to its end.
pub struct Gateway {
    pub config: GatewayConfig,
    pub(crate) upstreams: Vec<Upstream>,
    pub(crate) apps: HashMap<String, App>,
    pub(crate) keys: Arc<Authenticator>,
    pub auditor: Arc<Auditor>,
    pub(crate) limiter: Arc<Limiter>,
    pub(crate) counters: Option<Arc<dyn SharedCounters>>,
    /// Requests whose shared limits could not be checked (the fallback decided).
    pub(crate) shared_limit_errors: Arc<AtomicU64>,
    pub(crate) canaries: Option<Arc<dyn CanarySource>>,
    /// Requests in progress, streams included.
    pub(crate) active: Arc<std::sync::atomic::AtomicUsize>,
    pub metrics: Arc<Metrics>,
    ready: Arc<AtomicBool>,
    counter: Arc<AtomicU64>,
    pub started_at: time::OffsetDateTime,
}

/// What a config reload keeps: everything a gateway holds at run time.
struct Kept {
    keys: Arc<Authenticator>,
    auditor: Arc<Auditor>,
    limiter: Arc<Limiter>,
    counters: Option<Arc<dyn SharedCounters>>,
    shared_limit_errors: Arc<AtomicU64>,
    canaries: Option<Arc<dyn CanarySource>>,
    active: Arc<std::sync::atomic::AtomicUsize>,
    metrics: Arc<Metrics>,
    ready: Arc<AtomicBool>,
    counter: Arc<AtomicU64>,
    started_at: time::OffsetDateTime,
}

/// Builds the policy an application runs (the guard adapter, in the binary).
pub type PolicyFactory<'a> =
    &'a dyn Fn(&ApplicationConfig) -> Result<Arc<dyn Policy>, crate::error::BackendError>;

impl Gateway {
    /// Build the gateway and start its audit writer (call inside a tokio runtime). The writer
    /// ends, having flushed everything, once the gateway is dropped.
    pub fn start(
        config: GatewayConfig,
        keys: Arc<dyn KeySource>,
        sink: Arc<dyn AuditSink>,
        policy_for: PolicyFactory<'_>,
    ) -> Result<(Arc<Self>, tokio::task::JoinHandle<()>), GatewayError> {
        Self::start_with_grounding(config, keys, sink, policy_for, HashMap::new(), None)
    }

    /// [`Gateway::start`], with the grounding index of each application that has one, and the
    /// store's counters for `shared_limits`.
    pub fn start_with_grounding(
        config: GatewayConfig,
        keys: Arc<dyn KeySource>,
        sink: Arc<dyn AuditSink>,
        policy_for: PolicyFactory<'_>,
        grounding: HashMap<String, Arc<Grounding>>,
        counters: Option<Arc<dyn SharedCounters>>,
    ) -> Result<(Arc<Self>, tokio::task::JoinHandle<()>), GatewayError> {
        Self::start_full(config, keys, sink, policy_for, grounding, counters, None)
    }

    /// [`Gateway::start_with_grounding`], with the store's canaries for the applications that
    /// inject one (`canary: {inject: true}`; refused without a source). Call
    /// [`Gateway::refresh_canaries`] before serving to find a store problem at start-up;
    /// otherwise the first request reads (or creates) each canary.
    pub fn start_full(
        config: GatewayConfig,
        keys: Arc<dyn KeySource>,
        sink: Arc<dyn AuditSink>,
        policy_for: PolicyFactory<'_>,
        grounding: HashMap<String, Arc<Grounding>>,
        counters: Option<Arc<dyn SharedCounters>>,
        canaries: Option<Arc<dyn CanarySource>>,
    ) -> Result<(Arc<Self>, tokio::task::JoinHandle<()>), GatewayError> {
        // `redis:` counts in Redis; `shared_limits` in the store the caller passes.
        let counters: Option<Arc<dyn SharedCounters>> = match &config.redis {
            Some(url) => Some(Arc::new(RedisCounters::new(url)?)),
            None => counters.filter(|_| config.shared_limits),
        };
        let (auditor, writer) = Auditor::start(
            sink,
            config.audit.queue,
            config.audit.batch,
            config.audit.on_full,
        );
        let kept = Kept {
            keys: Arc::new(Authenticator::new(keys)),
            auditor: Arc::new(auditor),
            limiter: Arc::new(Limiter::new()),
            counters,
            shared_limit_errors: Default::default(),
            canaries,
            active: Default::default(),
            metrics: Default::default(),
            ready: Arc::new(AtomicBool::new(true)),
            counter: Default::default(),
            started_at: time::OffsetDateTime::now_utc(),
        };
        let gateway = Self::assemble(kept, config, policy_for, grounding, None)?;
        Ok((Arc::new(gateway), writer))
    }

    /// This gateway with a new config, for a reload: upstreams, applications, policies,
    /// grounding and canary settings are built anew; the audit queue and chain, key cache,
    /// limits, counters and metrics are shared with this one, and an application that stays
    /// keeps its activity (evidence) and canary. The settings taken at start (`listen`, `db`,
    /// `redis`, `shared_limits`, `audit`) keep their running values; the second value lists
    /// those the new config would have changed.
    pub fn reconfigured(
        &self,
        mut config: GatewayConfig,
        policy_for: PolicyFactory<'_>,
        grounding: HashMap<String, Arc<Grounding>>,
    ) -> Result<(Arc<Self>, Vec<&'static str>), GatewayError> {
        let old = &self.config;
        let mut ignored = Vec::new();
        if config.listen != old.listen {
            ignored.push("listen");
        }
        if config.db != old.db {
            ignored.push("db");
        }
        if config.redis != old.redis {
            ignored.push("redis");
        }
        if config.shared_limits != old.shared_limits
            || config.shared_limits_fallback != old.shared_limits_fallback
        {
            ignored.push("shared_limits");
        }
        if config.audit != old.audit {
            ignored.push("audit");
        }
        config.listen = old.listen;
        config.db = old.db.clone();
        config.redis = old.redis.clone();
        config.shared_limits = old.shared_limits;
        config.shared_limits_fallback = old.shared_limits_fallback;
        config.audit = old.audit.clone();
        let kept = Kept {
            keys: self.keys.clone(),
            auditor: self.auditor.clone(),
            limiter: self.limiter.clone(),
            counters: self.counters.clone(),
            shared_limit_errors: self.shared_limit_errors.clone(),
            canaries: self.canaries.clone(),
            active: self.active.clone(),
            metrics: self.metrics.clone(),
            ready: self.ready.clone(),
            counter: self.counter.clone(),
            started_at: self.started_at,
        };
        let next = Self::assemble(kept, config, policy_for, grounding, Some(&self.apps))?;
        Ok((Arc::new(next), ignored))
    }

    /// A gateway of what is kept at run time and `config`'s upstreams and applications; an
    /// application of `previous` keeps its activity, and its canary while the canary settings
    /// stay the same.
    fn assemble(
        kept: Kept,
        config: GatewayConfig,
        policy_for: PolicyFactory<'_>,
        mut grounding: HashMap<String, Arc<Grounding>>,
        previous: Option<&HashMap<String, App>>,
    ) -> Result<Self, GatewayError> {
        let mut upstreams = Vec::new();
        for u in &config.upstreams {
            upstreams.push(
                Upstream::new(u.clone()).map_err(|source| GatewayError::Client {
                    id: u.id.clone(),
                    source,
                })?,
            );
        }
        let mut apps = HashMap::new();
        for a in &config.applications {
            let order = a
                .upstreams
                .iter()
                .filter_map(|id| upstreams.iter().position(|u| u.id() == id))
                .collect();
            let mut policy = policy_for(a).map_err(|e| GatewayError::Policy {
                id: a.id.clone(),
                message: e.to_string(),
            })?;
            if a.embeddings_injection {
                policy = Arc::new(EnforceInjectionOnEmbeddings(policy));
            }
            let before = previous.and_then(|p| p.get(&a.id));
            let canary = match (a.canary, &kept.canaries) {
                (None, _) => None,
                (Some(settings), Some(_)) => Some(
                    before
                        .filter(|b| b.config.canary == a.canary)
                        .and_then(|b| b.canary.clone())
                        .unwrap_or_else(|| Arc::new(AppCanary::new(&a.id, settings))),
                ),
                (Some(_), None) => {
                    return Err(GatewayError::Policy {
                        id: a.id.clone(),
                        message: "`canary: {inject: true}` needs a store to keep the canary in"
                            .into(),
                    });
                }
            };
            if let Some(canary) = &canary {
                policy = Arc::new(CanaryPolicy::new(policy, canary.clone()));
            }
            let mut coverage = policy.coverage();
            if a.store_prompt == StorePrompt::Redacted && !coverage.redacts_input {
                // The stored prompt is the text after the input policy's redaction; a policy
                // that redacts nothing on input (off, monitor) would make it the raw text.
                return Err(GatewayError::Policy {
                    id: a.id.clone(),
                    message: "`audit.store_prompt: redacted` needs a policy that redacts input"
                        .into(),
                });
            }
            let grounding = grounding.remove(&a.id);
            coverage.grounding = grounding.as_ref().map(|g| g.source_ids.clone());
            let app = App {
                config: a.clone(),
                order,
                policy,
                grounding,
                canary,
                coverage,
                activity: before.map(|b| b.activity.clone()).unwrap_or_default(),
            };
            apps.insert(a.id.clone(), app);
        }
        Ok(Self {
            config,
            upstreams,
            apps,
            keys: kept.keys,
            auditor: kept.auditor,
            limiter: kept.limiter,
            counters: kept.counters,
            shared_limit_errors: kept.shared_limit_errors,
            canaries: kept.canaries,
            active: kept.active,
            metrics: kept.metrics,
            ready: kept.ready,
            counter: kept.counter,
            started_at: kept.started_at,
        })
    }

    /// Read every application's canaries from the store now, creating or rotating those that
    /// are due. The error names the first application that failed.
    pub async fn refresh_canaries(&self) -> Result<(), GatewayError> {
        let Some(source) = &self.canaries else {
            return Ok(());
        };
        let mut apps: Vec<_> = self.apps.iter().collect();
        apps.sort_by(|a, b| a.0.cmp(b.0));
        for (id, app) in apps {
            if let Some(canary) = &app.canary {
                canary
                    .refresh(source.as_ref())
                    .await
                    .map_err(|source| GatewayError::Canary {
                        id: id.clone(),
                        source,
                    })?;
            }
        }
        Ok(())
    }

    /// Drop every cached key answer: a key was revoked (another replica, `demarc keys
    /// revoke`, the dashboard). Without this the cache still expires within [`CACHE_TTL`].
    ///
    /// [`CACHE_TTL`]: crate::keys::CACHE_TTL
    pub fn forget_cached_keys(&self) {
        self.keys.forget();
    }

    pub fn application_ids(&self) -> impl Iterator<Item = &str> {
        self.apps.keys().map(String::as_str)
    }

    /// Per application: what its policy covers and what the gateway did for it so far.
    pub fn activity(&self) -> Vec<(String, Coverage, Activity)> {
        let mut out: Vec<_> = self
            .apps
            .iter()
            .map(|(id, app)| {
                let activity = app.activity.lock().map(|a| a.clone()).unwrap_or_default();
                (id.clone(), app.coverage.clone(), activity)
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    pub(crate) fn request_id(&self) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        format!("req_{t:x}{n:06x}")
    }

    /// Record the end of a request: metrics, token charges, and its one audit event.
    pub(crate) fn finish(&self, ctx: Ctx, slot: Slot, status: u16, error: Option<&str>) {
        let elapsed = ctx.start.elapsed().as_secs_f64();
        let app = ctx.application.as_deref().unwrap_or("-");
        self.metrics
            .request(app, ctx.endpoint.label(), status, elapsed);
        for (detector, n) in &ctx.verdicts.detectors {
            self.metrics.detector_hits(detector, *n);
        }
        if ctx.verdicts.blocked_by.is_some() {
            let direction = if ctx.verdicts.output == Some(crate::policy::Action::Block) {
                "output"
            } else {
                "input"
            };
            self.metrics.blocked(direction, app);
        }
        if let Some(app) = ctx.application.as_deref().and_then(|a| self.apps.get(a))
            && let Ok(mut a) = app.activity.lock()
        {
            let v = &ctx.verdicts;
            a.requests += 1;
            a.served += u64::from(status < 400 && error.is_none());
            a.input_scanned += u64::from(app.coverage.input && v.input.is_some());
            a.input_blocked += u64::from(v.input == Some(crate::policy::Action::Block));
            a.output_scanned += u64::from(app.coverage.output && v.output.is_some());
            a.output_blocked += u64::from(error == Some("output_blocked"));
            a.redactions += u64::from(v.redactions);
            a.rate_limited += u64::from(error == Some("rate_limit_exceeded"));
            a.grounded += u64::from(ctx.grounding.is_some());
            a.canary_injected += u64::from(ctx.canary.is_some());
            a.canary_blocked += u64::from(
                error == Some("output_blocked")
                    && v.blocked_by.as_deref() == Some(crate::canary::DETECTOR),
            );
        }
        // Tokens are known only now. They are charged in this replica's memory always (what
        // the fallback counts with while the shared counters cannot be reached, so a budget
        // still holds then) and in the shared counters when there are some.
        if let (Some(app), tokens) = (ctx.application.as_deref(), ctx.usage.total())
            && tokens > 0
            && let Some(a) = self.apps.get(app)
        {
            let limits = a.config.limits;
            let mut keys = Vec::new();
            if let Some(tpm) = limits.tokens_per_minute {
                keys.push((format!("{app}#tokens"), tpm));
            }
            if let (Some(tpm), Some(user)) = (limits.user_tokens_per_minute, &ctx.user) {
                keys.push((format!("{app}/{user}#tokens"), tpm));
            }
            for (key, tpm) in &keys {
                self.limiter.charge(key, *tpm, tokens as f64);
            }
            if let Some(counters) = self.counters.clone().filter(|_| !keys.is_empty()) {
                let (window, _) = current_window();
                tokio::spawn(async move {
                    for (key, _) in keys {
                        if let Err(e) = counters.add(&key, window, tokens as i64).await
                            && !crate::limits::redis::is_backing_off(&e)
                        {
                            tracing::warn!(error = %e, "cannot count tokens in the shared counters");
                        }
                    }
                });
            }
        }
        tracing::info!(
            request_id = %ctx.request_id,
            application = app,
            endpoint = ctx.endpoint.label(),
            status,
            error = error.unwrap_or(""),
            latency_ms = elapsed * 1000.0,
            "request"
        );
        let event = AuditEvent {
            time: time::OffsetDateTime::now_utc(),
            request_id: ctx.request_id,
            application: ctx.application.map(|a| a.to_string()),
            user: ctx.user,
            endpoint: ctx.endpoint,
            upstream: ctx.upstream,
            model: ctx.model,
            stream: ctx.stream,
            status,
            error: error.map(str::to_string),
            latency_ms: elapsed * 1000.0,
            attempts: ctx.attempts,
            prompt_tokens: ctx.usage.prompt,
            completion_tokens: ctx.usage.completion,
            verdicts: ctx.verdicts,
            grounding: ctx.grounding,
            prompt: ctx.prompt,
            canary: ctx.canary,
        };
        self.auditor.emit(slot, event);
    }

    pub(crate) fn fail(&self, ctx: Ctx, slot: Slot, error: ApiError) -> Response {
        let request_id = ctx.request_id.clone();
        self.finish(ctx, slot, error.status.as_u16(), Some(error.code));
        with_request_id(error.into_response(), &request_id)
    }

    /// Whether the gateway accepts traffic (false once shutdown has begun).
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }
}

pub(crate) fn with_request_id(mut response: Response, request_id: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert("x-request-id", v);
    }
    response
}
