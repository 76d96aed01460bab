//! The HTTP server: router, the proxy pipeline every API request goes through, and shutdown.
//!
//! Pipeline: reserve the audit slot → authenticate → check content type, size, UTF-8 and JSON
//! → rate limits → model routing → input policy (redaction into the request's vault) → upstream
//! (retries, failover) → output policy and restoration (whole body or event by event) → exactly
//! one audit event, also when the client goes away mid-stream.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use bytes::Bytes;
use serde_json::{Map, Value, json};

use crate::audit::{AuditEvent, AuditSink, Auditor, Slot};
use crate::canary::{AppCanary, CanaryPolicy, CanarySource};
use crate::config::StorePrompt;
use crate::config::{ApplicationConfig, GatewayConfig, MAX_UPSTREAM_BODY_BYTES};
use crate::error::ApiError;
use crate::grounding::{Grounding, GroundingUse};
use crate::keys::{Authenticator, KeySource, Rejection};
use crate::limits::{Limiter, SharedCounters, current_window};
use crate::metrics::Metrics;
use crate::openai::{StreamEnd, StreamFilter, Usage, filter_response, scan_request};
use crate::policy::{Coverage, EnforceInjectionOnEmbeddings, Policy, Vault, Verdicts};
use crate::sse;
use crate::upstream::{self, Endpoint, Upstream};

/// Upstream chunks that are already waiting and get handled (and written) together.
const MAX_COALESCED: usize = 8;
/// An upstream chunk that came less than this long after the one before is part of a burst.
const BURST_GAP: Duration = Duration::from_millis(1);
/// In a burst, scheduler turns given to the HTTP client's connection task (which hands over
/// one decoded chunk at a time) for the next chunk before the batch is written. Without
/// them each upstream event became one write to the caller.
const BURST_YIELDS: usize = 4;

/// The longest end-user id accepted in the user header.
const MAX_USER_LEN: usize = 256;

/// The most prompt text (bytes) an audit event keeps under `audit.store_prompt`.
pub const MAX_STORED_PROMPT: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("upstream `{id}`: {source}")]
    Client {
        id: String,
        source: crate::upstream::ClientError,
    },
    #[error("application `{id}`: {message}")]
    Policy { id: String, message: String },
}

/// One application as the gateway serves it.
pub struct App {
    pub config: ApplicationConfig,
    /// Indexes into the upstream list, in failover order.
    order: Vec<usize>,
    pub policy: Arc<dyn Policy>,
    grounding: Option<Arc<Grounding>>,
    /// The generated canary injected into the application's system context, if enabled.
    canary: Option<Arc<AppCanary>>,
    coverage: Coverage,
    activity: std::sync::Mutex<Activity>,
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

/// Everything a request needs, shared by all of them.
pub struct Gateway {
    pub config: GatewayConfig,
    upstreams: Vec<Upstream>,
    apps: HashMap<String, App>,
    keys: Authenticator,
    pub auditor: Auditor,
    limiter: Limiter,
    counters: Option<Arc<dyn SharedCounters>>,
    canaries: Option<Arc<dyn CanarySource>>,
    /// Requests in progress, streams included.
    active: Arc<std::sync::atomic::AtomicUsize>,
    pub metrics: Metrics,
    ready: AtomicBool,
    counter: AtomicU64,
    pub started_at: time::OffsetDateTime,
}

/// Builds the policy an application runs (the guard adapter, in the binary).
pub type PolicyFactory<'a> = &'a dyn Fn(&ApplicationConfig) -> Result<Arc<dyn Policy>, String>;

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
        mut grounding: HashMap<String, Arc<Grounding>>,
        counters: Option<Arc<dyn SharedCounters>>,
        canaries: Option<Arc<dyn CanarySource>>,
    ) -> Result<(Arc<Self>, tokio::task::JoinHandle<()>), GatewayError> {
        let counters = counters.filter(|_| config.shared_limits);
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
            let mut policy = policy_for(a).map_err(|message| GatewayError::Policy {
                id: a.id.clone(),
                message,
            })?;
            if a.embeddings_injection {
                policy = Arc::new(EnforceInjectionOnEmbeddings(policy));
            }
            let canary = match (a.canary, &canaries) {
                (None, _) => None,
                (Some(settings), Some(_)) => Some(Arc::new(AppCanary::new(&a.id, settings))),
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
            let activity = Default::default();
            let app = App {
                config: a.clone(),
                order,
                policy,
                grounding,
                canary,
                coverage,
                activity,
            };
            apps.insert(a.id.clone(), app);
        }
        let (auditor, writer) = Auditor::start(
            sink,
            config.audit.queue,
            config.audit.batch,
            config.audit.on_full,
        );
        let gateway = Arc::new(Self {
            config,
            upstreams,
            apps,
            keys: Authenticator::new(keys),
            auditor,
            limiter: Limiter::new(),
            counters,
            canaries,
            active: Default::default(),
            metrics: Metrics::default(),
            ready: AtomicBool::new(true),
            counter: AtomicU64::new(0),
            started_at: time::OffsetDateTime::now_utc(),
        });
        Ok((gateway, writer))
    }

    /// Read every application's canaries from the store now, creating or rotating those that
    /// are due. The error names the first application that failed.
    pub async fn refresh_canaries(&self) -> Result<(), String> {
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
                    .map_err(|e| format!("application `{id}`: canary: {e}"))?;
            }
        }
        Ok(())
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

    fn request_id(&self) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        format!("req_{t:x}{n:06x}")
    }

    /// Record the end of a request: metrics, token charges, and its one audit event.
    fn finish(&self, ctx: Ctx, slot: Slot, status: u16, error: Option<&str>) {
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
        if let Some(app) = ctx.application.as_deref().and_then(|a| self.apps.get(a)) {
            if let Ok(mut a) = app.activity.lock() {
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
        }
        if let (Some(counters), Some(app), tokens) = (
            &self.counters,
            ctx.application.as_deref(),
            ctx.usage.total(),
        ) {
            if let Some(a) = self.apps.get(app).filter(|_| tokens > 0) {
                let mut keys = Vec::new();
                if a.config.limits.tokens_per_minute.is_some() {
                    keys.push(format!("{app}#tokens"));
                }
                if let (Some(_), Some(user)) = (a.config.limits.user_tokens_per_minute, &ctx.user) {
                    keys.push(format!("{app}/{user}#tokens"));
                }
                if !keys.is_empty() {
                    let counters = counters.clone();
                    let (window, _) = current_window();
                    tokio::spawn(async move {
                        for key in keys {
                            if let Err(e) = counters.add(&key, window, tokens as i64).await {
                                tracing::warn!(error = %e, "cannot count tokens in the store");
                            }
                        }
                    });
                }
            }
        } else if let (Some(app), tokens) = (ctx.application.as_deref(), ctx.usage.total()) {
            if tokens > 0 {
                if let Some(a) = self.apps.get(app) {
                    if let Some(tpm) = a.config.limits.tokens_per_minute {
                        self.limiter
                            .charge(&format!("{app}#tokens"), tpm, tokens as f64);
                    }
                    if let (Some(tpm), Some(user)) =
                        (a.config.limits.user_tokens_per_minute, &ctx.user)
                    {
                        self.limiter
                            .charge(&format!("{app}/{user}#tokens"), tpm, tokens as f64);
                    }
                }
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

    fn fail(&self, ctx: Ctx, slot: Slot, error: ApiError) -> Response {
        let request_id = ctx.request_id.clone();
        self.finish(ctx, slot, error.status.as_u16(), Some(error.code));
        with_request_id(error.into_response(), &request_id)
    }

    /// A request for a URL or method the gateway does not serve: answered with `error`, and
    /// audited like any other (with its application where the key names one).
    async fn unrouted(&self, headers: HeaderMap, error: ApiError) -> Response {
        let mut ctx = Ctx::new(Endpoint::Unrouted, self.request_id());
        let Ok(slot) = self.auditor.reserve() else {
            return error.into_response();
        };
        // Attributed to its application where the key names one; a bad key is no error here.
        let _ = self.authenticate(&mut ctx, &headers).await;
        self.fail(ctx, slot, error)
    }

    async fn handle(
        self: Arc<Self>,
        endpoint: Endpoint,
        headers: HeaderMap,
        body: Body,
    ) -> Response {
        self.handle_for(endpoint, headers, body, None).await
    }

    /// [`Self::handle`] for a request about one model (`GET /v1/models/{id}`).
    async fn handle_for(
        self: Arc<Self>,
        endpoint: Endpoint,
        headers: HeaderMap,
        body: Body,
        model: Option<String>,
    ) -> Response {
        let mut ctx = Ctx::new(endpoint, self.request_id());
        ctx.model = model;
        let Ok(slot) = self.auditor.reserve() else {
            // Fail-closed and the queue is full: refuse before doing anything (counted as lost).
            self.metrics.request(
                "-",
                endpoint.label(),
                503,
                ctx.start.elapsed().as_secs_f64(),
            );
            return ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "server_error",
                "audit_unavailable",
                "the audit log is not keeping up; try again shortly",
            )
            .into_response();
        };
        if !self.is_ready() {
            // Draining: the load balancer has seen `/readyz` go 503; latecomers go elsewhere.
            let mut error = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "server_error",
                "shutting_down",
                "the gateway is shutting down; try again (another replica will answer)",
            );
            error.retry_after = Some(1);
            return self.fail(ctx, slot, error);
        }
        // Requests in progress (streams until they end) are bounded, so an overload sheds
        // requests instead of queueing them in memory.
        let admission = Admission::new(self.active.clone());
        if admission.count > self.config.max_in_flight {
            return self.fail(
                ctx,
                slot,
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "server_error",
                    "overloaded",
                    "the gateway is at its limit of requests in progress; try again shortly",
                ),
            );
        }
        ctx.admission = Some(admission);
        self.clone().proxy(ctx, slot, headers, body).await
    }

    async fn proxy(
        self: Arc<Self>,
        mut ctx: Ctx,
        slot: Slot,
        headers: HeaderMap,
        body: Body,
    ) -> Response {
        let app = match self.authenticate(&mut ctx, &headers).await {
            Ok(app) => app,
            Err(e) => return self.fail(ctx, slot, e),
        };
        if endpoint_is_get(ctx.endpoint) {
            return self.list_models(ctx, slot, app).await;
        }
        let mut request = match self.read_json(&headers, body).await {
            Ok(request) => request,
            Err(e) => return self.fail(ctx, slot, e),
        };
        if let Err(e) = crate::validate::request(ctx.endpoint, &request) {
            return self.fail(ctx, slot, e);
        }
        if let Err(e) = self.check_limits(&ctx, app).await {
            return self.fail(ctx, slot, e);
        }
        let upstream_model = match route_model(app, &mut request) {
            Ok((asked, upstream_model)) => {
                ctx.model = Some(asked);
                upstream_model
            }
            Err(e) => return self.fail(ctx, slot, e),
        };
        ctx.stream = request
            .get("stream")
            .and_then(Value::as_bool)
            .unwrap_or(false);

        let mut vault = Vault::default();
        let mut prompt = (app.config.store_prompt == StorePrompt::Redacted).then(String::new);
        if let Err(blocked) = scan_request(
            ctx.endpoint,
            &mut request,
            app.policy.as_ref(),
            &app.config.input,
            &mut vault,
            &mut ctx.verdicts,
            prompt.as_mut(),
        ) {
            let error = ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "input_blocked",
                blocked.message(),
            );
            return self.fail(ctx, slot, error);
        }
        if let Some(mut prompt) = prompt {
            if prompt.len() > MAX_STORED_PROMPT {
                let mut end = MAX_STORED_PROMPT;
                while !prompt.is_char_boundary(end) {
                    end -= 1;
                }
                prompt.truncate(end);
            }
            ctx.prompt = Some(prompt);
        }
        // The canary joins the application's own system context, before grounding adds its
        // passages.
        if let (Some(canary), Some(source), true) = (
            &app.canary,
            &self.canaries,
            matches!(
                ctx.endpoint,
                Endpoint::ChatCompletions | Endpoint::Responses
            ),
        ) {
            match canary.current(source.as_ref()).await {
                Ok(injected) => {
                    if crate::canary::inject(ctx.endpoint, &mut request, &injected.token) {
                        ctx.canary = Some(injected.id);
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "no canary to inject");
                    let error = ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "server_error",
                        "canary_unavailable",
                        "the gateway cannot read the application's canary right now; try again shortly",
                    );
                    return self.fail(ctx, slot, error);
                }
            }
        }
        if let Some(grounding) = &app.grounding {
            let groups: Vec<String> = headers
                .get(self.config.groups_header.as_str())
                .and_then(|v| v.to_str().ok())
                .map(|v| {
                    v.split(',')
                        .map(|g| g.trim().to_string())
                        .filter(|g| !g.is_empty())
                        .collect()
                })
                .unwrap_or_default();
            match grounding.apply(ctx.endpoint, &mut request, &groups) {
                Ok(used) => ctx.grounding = used,
                Err(e) => {
                    tracing::warn!(error = %e, "grounding failed");
                    return self.fail(
                        ctx,
                        slot,
                        ApiError::internal("grounding failed; see the gateway log"),
                    );
                }
            }
        }
        let vault = Arc::new(vault);
        let body = match serde_json::to_vec(&request) {
            Ok(b) => Bytes::from(b),
            Err(_) => return self.fail(ctx, slot, ApiError::internal("cannot encode the request")),
        };

        let on_error = |i: usize| {
            if let Some(u) = self.upstreams.get(i) {
                self.metrics.upstream_error(u.id());
            }
        };
        let answer = upstream::send(
            &self.upstreams,
            &app.order,
            ctx.endpoint,
            &upstream_model,
            Some(body),
            ctx.stream,
            &on_error,
        )
        .await;
        let answer = match answer {
            Ok(answer) => answer,
            Err(failure) => {
                ctx.attempts = failure.attempts;
                ctx.upstream = failure
                    .upstream
                    .and_then(|i| self.upstreams.get(i))
                    .map(|u| u.id().to_string());
                return self.fail(ctx, slot, failure.error);
            }
        };
        ctx.attempts = answer.attempts;
        ctx.upstream = self
            .upstreams
            .get(answer.upstream)
            .map(|u| u.id().to_string());

        let is_sse = answer
            .response
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        if is_sse && answer.response.status.is_success() {
            return Arc::clone(&self).stream(ctx, slot, app.policy.clone(), vault, answer);
        }
        self.complete(ctx, slot, app.policy.as_ref(), &vault, answer)
            .await
    }

    async fn authenticate<'a>(
        &'a self,
        ctx: &mut Ctx,
        headers: &HeaderMap,
    ) -> Result<&'a App, ApiError> {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .or_else(|| headers.get("api-key").and_then(|v| v.to_str().ok()))
            .map(str::trim);
        let Some(presented) = presented.filter(|k| !k.is_empty()) else {
            let mut e = ApiError::unauthorized(
                "missing gateway key: send `Authorization: Bearer <key>` (create one with `demarc keys create APP`)",
            );
            e.code = "missing_api_key";
            return Err(e);
        };
        let app_id = self
            .keys
            .authenticate(presented)
            .await
            .map_err(|r| match r {
                Rejection::Unknown => ApiError::unauthorized("the gateway key is not valid"),
                Rejection::Revoked => ApiError::unauthorized("the gateway key was revoked"),
                Rejection::Unavailable => ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "server_error",
                    "key_store_unavailable",
                    "the gateway cannot check keys right now; try again shortly",
                ),
            })?;
        // Known from here on, so that a refusal is audited under the application.
        ctx.application = Some(app_id.clone());
        let app = self.apps.get(app_id.as_ref()).ok_or_else(|| {
            let message = match self.config.not_served.get(app_id.as_ref()) {
                Some(reason) => {
                    format!("application `{app_id}` is not served by this gateway: {reason}")
                }
                None => format!("application `{app_id}` is not served by this gateway"),
            };
            ApiError::new(
                StatusCode::FORBIDDEN,
                "permission_error",
                "application_not_served",
                message,
            )
        })?;
        if let Some(user) = headers.get(self.config.user_header.as_str()) {
            let user = user
                .to_str()
                .ok()
                .filter(|u| u.len() <= MAX_USER_LEN)
                .ok_or_else(|| {
                    ApiError::invalid_request(
                        "invalid_user",
                        format!(
                            "the `{}` header must be visible ASCII of at most {MAX_USER_LEN} bytes",
                            self.config.user_header
                        ),
                    )
                })?;
            ctx.user = Some(user.to_string());
        }
        Ok(app)
    }

    async fn read_json(
        &self,
        headers: &HeaderMap,
        body: Body,
    ) -> Result<Map<String, Value>, ApiError> {
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !content_type
            .trim_start()
            .to_ascii_lowercase()
            .starts_with("application/json")
        {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "invalid_request_error",
                "unsupported_media_type",
                "the request body must be JSON with `Content-Type: application/json`",
            ));
        }
        let limit = self.config.max_body_bytes;
        let too_large = || {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "invalid_request_error",
                "request_too_large",
                format!("the request body exceeds the limit of {limit} bytes"),
            )
        };
        let declared = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit as u64) {
            return Err(too_large());
        }
        let bytes = axum::body::to_bytes(body, limit).await.map_err(|e| {
            let source = std::error::Error::source(&e);
            if source.is_some_and(|s| s.is::<http_body_util::LengthLimitError>()) {
                too_large()
            } else {
                ApiError::invalid_request("invalid_body", "the request body could not be read")
            }
        })?;
        let text = std::str::from_utf8(&bytes).map_err(|e| {
            ApiError::invalid_request(
                "invalid_utf8",
                format!(
                    "the request body is not valid UTF-8 (at byte {})",
                    e.valid_up_to()
                ),
            )
        })?;
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(map)) => Ok(map),
            Ok(_) => Err(ApiError::invalid_request(
                "invalid_json",
                "the request body must be a JSON object",
            )),
            Err(e) => Err(ApiError::invalid_request(
                "invalid_json",
                format!(
                    "the request body is not valid JSON: {} at line {} column {}",
                    classify(&e),
                    e.line(),
                    e.column()
                ),
            )),
        }
    }

    async fn check_limits(&self, ctx: &Ctx, app: &App) -> Result<(), ApiError> {
        let limits = app.config.limits;
        let id = app.config.id.as_str();
        let user = ctx.user.as_deref();
        let keys = [
            (
                limits.requests_per_minute,
                id.to_string(),
                1.0,
                "the application's request rate",
            ),
            (
                limits.tokens_per_minute,
                format!("{id}#tokens"),
                0.0,
                "the application's token budget",
            ),
            (
                limits.user_requests_per_minute.filter(|_| user.is_some()),
                format!("{id}/{}", user.unwrap_or("")),
                1.0,
                "the user's request rate",
            ),
            (
                limits.user_tokens_per_minute.filter(|_| user.is_some()),
                format!("{id}/{}#tokens", user.unwrap_or("")),
                0.0,
                "the user's token budget",
            ),
        ];
        let active: Vec<_> = keys
            .iter()
            .filter_map(|(rate, key, cost, what)| Some((rate.as_ref()?, key, *cost, *what)))
            .collect();
        if active.is_empty() {
            return Ok(());
        }
        let refuse = |what: &str, retry: u64| {
            let mut e = ApiError::rate_limited(
                "rate_limit_exceeded",
                format!("{what} exceeded; retry in {retry} s"),
            );
            e.retry_after = Some(retry);
            e
        };
        if let Some(counters) = &self.counters {
            // Fixed one-minute windows in the store, shared by every replica. A refused request
            // still counts in its window.
            let (window, left) = current_window();
            let mut failed = false;
            for (rate, key, cost, what) in &active {
                let by = i64::from(*cost > 0.0);
                match counters.add(key, window, by).await {
                    Ok(count) if by > 0 && count > i64::from(**rate) => {
                        return Err(refuse(what, left));
                    }
                    Ok(count) if by == 0 && count >= i64::from(**rate) => {
                        return Err(refuse(what, left));
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "shared rate counters unavailable; counting in memory");
                        failed = true;
                        break;
                    }
                }
            }
            if !failed {
                return Ok(());
            }
        }
        let wanted: Vec<(&str, u32, f64)> = active
            .iter()
            .map(|(rate, key, cost, _)| (key.as_str(), **rate, *cost))
            .collect();
        self.limiter.take_all(&wanted).map_err(|(i, retry)| {
            let what = active.get(i).map_or("a limit", |a| a.3);
            let mut e = ApiError::rate_limited(
                "rate_limit_exceeded",
                format!("{what} exceeded; retry in {retry} s"),
            );
            e.retry_after = Some(retry);
            e
        })
    }

    async fn list_models(&self, ctx: Ctx, slot: Slot, app: &App) -> Response {
        if ctx.endpoint == Endpoint::Model && !app.config.models.is_empty() {
            let id = ctx.model.clone().unwrap_or_default();
            if !app.config.models.contains_key(&id) {
                let known: Vec<_> = app.config.models.keys().map(|m| format!("`{m}`")).collect();
                let e = ApiError::new(
                    StatusCode::NOT_FOUND,
                    "invalid_request_error",
                    "model_not_found",
                    format!(
                        "model `{id}` is not available to this application (available: {})",
                        known.join(", ")
                    ),
                )
                .about("model");
                return self.fail(ctx, slot, e);
            }
            let request_id = ctx.request_id.clone();
            self.finish(ctx, slot, 200, None);
            let model = json!({"id": id, "object": "model", "created": 0, "owned_by": "demarc"});
            return with_request_id(axum::Json(model).into_response(), &request_id);
        }
        if !app.config.models.is_empty() {
            let data: Vec<Value> = app
                .config
                .models
                .keys()
                .map(|id| json!({"id": id, "object": "model", "created": 0, "owned_by": "demarc"}))
                .collect();
            let request_id = ctx.request_id.clone();
            self.finish(ctx, slot, 200, None);
            let response = axum::Json(json!({"object": "list", "data": data})).into_response();
            return with_request_id(response, &request_id);
        }
        let mut ctx = ctx;
        let on_error = |i: usize| {
            if let Some(u) = self.upstreams.get(i) {
                self.metrics.upstream_error(u.id());
            }
        };
        let id = ctx.model.clone().unwrap_or_default();
        match upstream::send(
            &self.upstreams,
            &app.order,
            ctx.endpoint,
            &id,
            None,
            false,
            &on_error,
        )
        .await
        {
            Ok(answer) => {
                ctx.attempts = answer.attempts;
                ctx.upstream = self
                    .upstreams
                    .get(answer.upstream)
                    .map(|u| u.id().to_string());
                self.complete(
                    ctx,
                    slot,
                    app.policy.as_ref(),
                    &Arc::new(Vault::default()),
                    answer,
                )
                .await
            }
            Err(failure) => {
                ctx.attempts = failure.attempts;
                self.fail(ctx, slot, failure.error)
            }
        }
    }

    /// A whole (non-streamed) answer: read it, filter its text, pass the rest through.
    async fn complete(
        &self,
        mut ctx: Ctx,
        slot: Slot,
        policy: &dyn Policy,
        vault: &Arc<Vault>,
        answer: upstream::Answer,
    ) -> Response {
        let status = answer.response.status;
        let bytes = match read_limited(answer.response, answer.deadline).await {
            Ok(bytes) => bytes,
            Err(e) => return self.fail(ctx, slot, e),
        };
        let mut body: Value = match serde_json::from_slice(&bytes) {
            Ok(v) => v,
            Err(_) if !status.is_success() => {
                let e = ApiError::upstream(
                    StatusCode::BAD_GATEWAY,
                    "upstream_error",
                    format!("upstream answered {} without a JSON body", status.as_u16()),
                );
                return self.fail(ctx, slot, e);
            }
            Err(_) => {
                let e = ApiError::upstream(
                    StatusCode::BAD_GATEWAY,
                    "upstream_malformed",
                    "upstream answered with a body that is not JSON",
                );
                return self.fail(ctx, slot, e);
            }
        };
        if status.is_success() {
            ctx.usage = Usage::from_value(body.get("usage")).unwrap_or_default();
        }
        // An error body is output too: upstreams echo input and leak in their messages.
        if let Err(blocked) =
            filter_response(ctx.endpoint, &mut body, policy, vault, &mut ctx.verdicts)
        {
            let e = ApiError::new(
                StatusCode::BAD_REQUEST,
                "content_filter",
                "output_blocked",
                format!(
                    "the model's output was blocked by the application's policy (detector `{}`)",
                    blocked.detector
                ),
            );
            return self.fail(ctx, slot, e);
        }
        let request_id = ctx.request_id.clone();
        let error = (!status.is_success()).then_some("upstream_error");
        self.finish(ctx, slot, status.as_u16(), error);
        let mut response = (status, axum::Json(body)).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        with_request_id(response, &request_id)
    }

    /// A streamed answer: every event goes through the stream filter; the audit event is
    /// written when the stream ends, however it ends.
    fn stream(
        self: Arc<Self>,
        ctx: Ctx,
        slot: Slot,
        policy: Arc<dyn Policy>,
        vault: Arc<Vault>,
        answer: upstream::Answer,
    ) -> Response {
        let request_id = ctx.request_id.clone();
        let endpoint = ctx.endpoint;
        let state = StreamState {
            gateway: self,
            finish: Some((ctx, slot)),
            upstream: answer.response,
            deadline: answer.deadline,
            parser: sse::Parser::new(),
            events: Vec::new(),
            filter: StreamFilter::new(endpoint, policy, vault),
            pending: Vec::new(),
            error: None,
            done: false,
            last_chunk: Instant::now(),
            chunk_gap: Duration::MAX,
        };
        let body = futures_util::stream::unfold(state, StreamState::next);
        let mut response = Response::new(Body::from_stream(body));
        let h = response.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        with_request_id(response, &request_id)
    }

    /// Whether the gateway accepts traffic (false once shutdown has begun).
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }
}

fn endpoint_is_get(endpoint: Endpoint) -> bool {
    matches!(endpoint, Endpoint::Models | Endpoint::Model)
}

fn classify(e: &serde_json::Error) -> &'static str {
    match e.classify() {
        serde_json::error::Category::Eof => "unexpected end",
        serde_json::error::Category::Syntax => "syntax error",
        _ => "invalid data",
    }
}

/// The model the caller asked for and the one the upstream gets (aliases resolved).
fn route_model(app: &App, request: &mut Map<String, Value>) -> Result<(String, String), ApiError> {
    let Some(asked) = request
        .get("model")
        .and_then(Value::as_str)
        .map(str::to_string)
    else {
        return Err(ApiError::invalid_request(
            "missing_model",
            "the request must name a `model`",
        ));
    };
    if app.config.models.is_empty() {
        return Ok((asked.clone(), asked));
    }
    match app.config.models.get(&asked) {
        Some(target) => {
            request.insert("model".into(), Value::String(target.clone()));
            Ok((asked, target.clone()))
        }
        None => {
            let known: Vec<_> = app.config.models.keys().map(|m| format!("`{m}`")).collect();
            Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                "model_not_found",
                format!(
                    "model `{asked}` is not available to this application (available: {})",
                    known.join(", ")
                ),
            ))
        }
    }
}

async fn read_limited(mut response: upstream::Reply, deadline: Instant) -> Result<Bytes, ApiError> {
    let mut buf = Vec::new();
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(remaining, response.chunk()).await {
            Err(_) => {
                return Err(ApiError::upstream(
                    StatusCode::GATEWAY_TIMEOUT,
                    "upstream_timeout",
                    "upstream did not finish its answer in time",
                ));
            }
            Ok(Err(_)) => {
                return Err(ApiError::upstream(
                    StatusCode::BAD_GATEWAY,
                    "upstream_cut",
                    "upstream closed the connection before its answer was complete",
                ));
            }
            Ok(Ok(None)) => return Ok(Bytes::from(buf)),
            Ok(Ok(Some(chunk))) => {
                if buf.len() + chunk.len() > MAX_UPSTREAM_BODY_BYTES {
                    return Err(ApiError::upstream(
                        StatusCode::BAD_GATEWAY,
                        "upstream_too_large",
                        format!("upstream answer exceeds {MAX_UPSTREAM_BODY_BYTES} bytes"),
                    ));
                }
                buf.extend_from_slice(&chunk);
            }
        }
    }
}

fn with_request_id(mut response: Response, request_id: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert("x-request-id", v);
    }
    response
}

/// What is known about a request as it goes through the pipeline.
struct Ctx {
    start: Instant,
    request_id: String,
    endpoint: Endpoint,
    application: Option<Arc<str>>,
    user: Option<String>,
    model: Option<String>,
    upstream: Option<String>,
    stream: bool,
    attempts: u32,
    usage: Usage,
    verdicts: Verdicts,
    grounding: Option<GroundingUse>,
    /// The prompt after input redaction, when the application stores it.
    prompt: Option<String>,
    /// The id of the canary injected into the request's system context.
    canary: Option<String>,
    /// Held while the request (or its stream) is in progress.
    admission: Option<Admission>,
}

/// One request in progress; the count goes down when it is dropped.
struct Admission {
    active: Arc<std::sync::atomic::AtomicUsize>,
    /// The number in progress, this one included, when it was admitted.
    count: usize,
}

impl Admission {
    fn new(active: Arc<std::sync::atomic::AtomicUsize>) -> Self {
        let count = active.fetch_add(1, Ordering::AcqRel) + 1;
        Self { active, count }
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.active.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Ctx {
    fn new(endpoint: Endpoint, request_id: String) -> Self {
        Self {
            start: Instant::now(),
            request_id,
            endpoint,
            application: None,
            user: None,
            model: None,
            upstream: None,
            stream: false,
            attempts: 0,
            usage: Usage::default(),
            verdicts: Verdicts::default(),
            grounding: None,
            prompt: None,
            canary: None,
            admission: None,
        }
    }
}

struct StreamState {
    gateway: Arc<Gateway>,
    /// Taken when the audit event is written; still here on drop means the client left.
    finish: Option<(Ctx, Slot)>,
    upstream: upstream::Reply,
    deadline: Instant,
    parser: sse::Parser,
    events: Vec<sse::Event>,
    filter: StreamFilter,
    pending: Vec<u8>,
    error: Option<&'static str>,
    done: bool,
    /// When the last upstream chunk arrived, and how long after the one before it.
    last_chunk: Instant,
    chunk_gap: Duration,
}

impl StreamState {
    async fn next(mut self) -> Option<(Result<Bytes, std::io::Error>, Self)> {
        use futures_util::FutureExt;
        loop {
            if !self.pending.is_empty() {
                let chunk = Bytes::from(std::mem::take(&mut self.pending));
                return Some((Ok(chunk), self));
            }
            if self.done {
                self.complete();
                return None;
            }
            let remaining = self.deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(remaining, self.upstream.chunk()).await {
                Err(_) => self.end_early(
                    "upstream_timeout",
                    "upstream did not finish the stream in time",
                ),
                Ok(item) => self.on_item(item),
            }
            // Take whatever else has already arrived, so that one scan and one write carry it all.
            // A bounded number, so a continuously streaming upstream still gets its text
            // through at once rather than at the end.
            for _ in 0..MAX_COALESCED {
                if self.done {
                    break;
                }
                let mut item = self.upstream.chunk().now_or_never();
                if self.chunk_gap < BURST_GAP && !self.upstream.reads_whole_bursts() {
                    for _ in 0..BURST_YIELDS {
                        if item.is_some() {
                            break;
                        }
                        tokio::task::yield_now().await;
                        item = self.upstream.chunk().now_or_never();
                    }
                }
                match item {
                    Some(item) => self.on_item(item),
                    None => break,
                }
            }
            if !self.done {
                if let Err(end) = self.filter.flush_held(&mut self.pending) {
                    self.stop(end);
                }
            }
        }
    }

    fn on_item(&mut self, item: Result<Option<Bytes>, upstream::BodyCut>) {
        let now = Instant::now();
        self.chunk_gap = now.saturating_duration_since(self.last_chunk);
        self.last_chunk = now;
        match item {
            Ok(Some(bytes)) => self.on_bytes(&bytes),
            Err(upstream::BodyCut) => {
                self.end_early("upstream_cut", "upstream broke off the stream")
            }
            Ok(None) => {
                let incomplete = self.parser.finish();
                if incomplete || !self.filter.saw_done {
                    self.end_early(
                        "upstream_cut",
                        "upstream ended the stream before it was complete",
                    );
                } else {
                    self.done = true;
                }
            }
        }
    }

    fn on_bytes(&mut self, bytes: &[u8]) {
        self.events.clear();
        if let Err(e) = self.parser.push(bytes, &mut self.events) {
            let message = e.to_string();
            self.filter.error_event_with(
                "upstream_malformed",
                "upstream_error",
                &message,
                &mut self.pending,
            );
            self.error = Some("upstream_malformed");
            self.done = true;
            // Events completed before the bad bytes were already handled below in earlier calls;
            // those parsed in this call are dropped with the rest of the stream.
            return;
        }
        let events = std::mem::take(&mut self.events);
        for event in &events {
            if let Err(end) = self.filter.on_event(event, &mut self.pending) {
                self.stop(end);
                break;
            }
            if self.filter.saw_done {
                self.done = true;
                break;
            }
        }
        self.events = events;
    }

    /// The filter ended the stream (blocked output, malformed upstream event).
    fn stop(&mut self, end: StreamEnd) {
        self.filter.error_event(&end, &mut self.pending);
        self.error = Some(match end {
            StreamEnd::Blocked(_) => "output_blocked",
            StreamEnd::Malformed(_) => "upstream_malformed",
        });
        self.done = true;
    }

    fn end_early(&mut self, code: &'static str, message: &str) {
        // What the filter still holds back passed the policy so far: the caller gets it before
        // the error, as a client of the upstream itself would have.
        if let Err(end) = self.filter.finish_open(&mut self.pending) {
            self.stop(end);
            return;
        }
        self.filter
            .error_event_with(code, "upstream_error", message, &mut self.pending);
        self.error = Some(code);
        self.done = true;
    }

    fn complete(&mut self) {
        if let Some((mut ctx, slot)) = self.finish.take() {
            ctx.usage = self.filter.usage.unwrap_or_default();
            ctx.verdicts
                .absorb(std::mem::take(&mut self.filter.verdicts));
            self.gateway.finish(ctx, slot, 200, self.error);
        }
    }
}

impl Drop for StreamState {
    fn drop(&mut self) {
        // The client went away before the end: the upstream request is dropped with `self`
        // (which cancels it), and the audit event says so.
        if let Some((mut ctx, slot)) = self.finish.take() {
            ctx.usage = self.filter.usage.unwrap_or_default();
            ctx.verdicts
                .absorb(std::mem::take(&mut self.filter.verdicts));
            self.gateway.finish(ctx, slot, 499, Some("client_closed"));
        }
    }
}

impl Endpoint {
    pub fn label(self) -> &'static str {
        match self {
            Self::ChatCompletions => "chat_completions",
            Self::Completions => "completions",
            Self::Responses => "responses",
            Self::Embeddings => "embeddings",
            Self::Models => "models",
            Self::Model => "model",
            Self::Unrouted => "unrouted",
        }
    }
}

// ---------------------------------------------------------------- router

async fn chat(State(gw): State<Arc<Gateway>>, headers: HeaderMap, body: Body) -> Response {
    gw.handle(Endpoint::ChatCompletions, headers, body).await
}

async fn responses(State(gw): State<Arc<Gateway>>, headers: HeaderMap, body: Body) -> Response {
    gw.handle(Endpoint::Responses, headers, body).await
}

async fn completions(State(gw): State<Arc<Gateway>>, headers: HeaderMap, body: Body) -> Response {
    gw.handle(Endpoint::Completions, headers, body).await
}

async fn model(
    State(gw): State<Arc<Gateway>>,
    axum::extract::Path(id): axum::extract::Path<String>,
    headers: HeaderMap,
) -> Response {
    gw.handle_for(Endpoint::Model, headers, Body::empty(), Some(id))
        .await
}

async fn embeddings(State(gw): State<Arc<Gateway>>, headers: HeaderMap, body: Body) -> Response {
    gw.handle(Endpoint::Embeddings, headers, body).await
}

async fn models(State(gw): State<Arc<Gateway>>, headers: HeaderMap) -> Response {
    gw.handle(Endpoint::Models, headers, Body::empty()).await
}

async fn readyz(State(gw): State<Arc<Gateway>>) -> Response {
    if gw.is_ready() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response()
    }
}

async fn metrics(State(gw): State<Arc<Gateway>>) -> Response {
    let a = &gw.auditor;
    let text = gw.metrics.render(&[
        (
            "demarc_gateway_in_flight",
            "Requests in progress, streams included.",
            gw.active.load(Ordering::Relaxed) as f64,
        ),
        (
            "demarc_gateway_audit_queued",
            "Audit events waiting to be written.",
            a.queued() as f64,
        ),
        (
            "demarc_gateway_audit_written_total",
            "Audit events written since start.",
            a.written() as f64,
        ),
        (
            "demarc_gateway_audit_lost_total",
            "Audit events lost or requests refused because the queue was full.",
            a.lost() as f64,
        ),
        (
            "demarc_gateway_audit_write_failures_total",
            "Audit events the sink failed to store.",
            a.failed_writes() as f64,
        ),
    ]);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

async fn not_found(State(gw): State<Arc<Gateway>>, headers: HeaderMap) -> Response {
    let e = ApiError::new(
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        "unknown_url",
        "unknown URL; the gateway serves /v1/chat/completions, /v1/responses, /v1/completions, /v1/embeddings, /v1/models and /v1/models/{id}",
    );
    gw.unrouted(headers, e).await
}

async fn method_not_allowed(State(gw): State<Arc<Gateway>>, headers: HeaderMap) -> Response {
    let e = ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "invalid_request_error",
        "method_not_allowed",
        "method not allowed for this URL",
    );
    gw.unrouted(headers, e).await
}

/// The gateway's routes.
pub fn router(gateway: Arc<Gateway>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/v1/responses", post(responses))
        .route("/v1/completions", post(completions))
        .route("/v1/embeddings", post(embeddings))
        .route("/v1/models", get(models))
        .route("/v1/models/{id}", get(model))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(gateway)
}

/// Serve until `shutdown` resolves, then stop accepting, drain in-flight requests and return.
pub async fn serve(
    listener: tokio::net::TcpListener,
    gateway: Arc<Gateway>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(gateway.clone());
    let gw = gateway.clone();
    drop(gateway);
    // Small SSE writes must leave at once, not wait for the previous write's ACK (Nagle).
    axum::serve(listener.tap_io(no_delay), app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            // Draining: keep answering (`/readyz` 503, new requests 503 `shutting_down`) while
            // requests in progress finish, so that load balancers see the change; then stop
            // accepting and let the last connections close.
            gw.set_ready(false);
            let deadline = Instant::now() + DRAIN_LIMIT;
            while gw.active.load(Ordering::Acquire) > 0 && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
}

/// The longest a shutdown waits, still answering, for requests in progress to finish.
const DRAIN_LIMIT: Duration = Duration::from_secs(30);

/// Disable Nagle's algorithm on an accepted connection.
pub(crate) fn no_delay(stream: &mut tokio::net::TcpStream) {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(error = %e, "cannot set TCP_NODELAY");
    }
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
    tracing::info!("shutdown signal received: draining in-flight requests");
}
