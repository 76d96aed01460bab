//! The proxy pipeline every API request goes through, stage by stage: reserve the audit slot →
//! admission (key, body, limits) → model routing → input policy (redaction into the request's
//! vault) → canary and grounding into the system context → upstream (retries, failover) →
//! output policy and restoration (whole body here, event by event in [`crate::output::relay`])
//! → exactly one audit event, also when the client goes away mid-stream.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Map, Value, json};

use crate::audit::Slot;
use crate::config::{MAX_UPSTREAM_BODY_BYTES, StorePrompt};
use crate::context::{Admission, Ctx, Usage};
use crate::endpoint::Endpoint;
use crate::error::ApiError;
use crate::gateway::{App, Gateway, with_request_id};
use crate::input::scan_request;
use crate::output::filter_response;
use crate::policy::{Policy, Vault};
use crate::upstream;

/// The most prompt text (bytes) an audit event keeps under `audit.store_prompt`.
pub const MAX_STORED_PROMPT: usize = 64 * 1024;

impl Gateway {
    /// A request for a URL or method the gateway does not serve: answered with `error`, and
    /// audited like any other (with its application where the key names one).
    pub(crate) async fn unrouted(&self, headers: HeaderMap, error: ApiError) -> Response {
        let mut ctx = Ctx::new(Endpoint::Unrouted, self.request_id());
        let Ok(slot) = self.auditor.reserve() else {
            return error.into_response();
        };
        // Attributed to its application where the key names one; a bad key is no error here.
        let _ = self.authenticate(&mut ctx, &headers).await;
        self.fail(ctx, slot, error)
    }

    pub(crate) async fn handle(
        self: Arc<Self>,
        endpoint: Endpoint,
        headers: HeaderMap,
        body: Body,
    ) -> Response {
        self.handle_for(endpoint, headers, body, None).await
    }

    /// [`Self::handle`] for a request about one model (`GET /v1/models/{id}`).
    pub(crate) async fn handle_for(
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
    pub(crate) async fn complete(
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
}

fn endpoint_is_get(endpoint: Endpoint) -> bool {
    matches!(endpoint, Endpoint::Models | Endpoint::Model)
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
