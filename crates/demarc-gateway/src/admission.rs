//! Admission: who is asking (the gateway key, the end user), whether the body is a JSON object
//! within the size limit, and whether the application's and the user's rate limits and token
//! budgets allow it; and the bound on requests in progress.

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use serde_json::{Map, Value};

use crate::config::LimitsFallback;
use crate::context::Ctx;
use crate::error::ApiError;
use crate::gateway::{App, Gateway};
use crate::keys::Rejection;
use crate::limits::{Check, current_window};
use std::sync::atomic::Ordering;

/// The longest end-user id accepted in the user header.
const MAX_USER_LEN: usize = 256;

impl Gateway {
    pub(crate) async fn authenticate<'a>(
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

    pub(crate) async fn read_json(
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

    pub(crate) async fn check_limits(&self, ctx: &Ctx, app: &App) -> Result<(), ApiError> {
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
            // Fixed one-minute windows in the store or in Redis, shared by every replica.
            let (window, left) = current_window();
            let checks: Vec<Check<'_>> = active
                .iter()
                .map(|(rate, key, cost, _)| Check {
                    key: key.as_str(),
                    limit: **rate,
                    cost: u32::from(*cost > 0.0),
                })
                .collect();
            match counters.admit(&checks, window).await {
                Ok(None) => return Ok(()),
                Ok(Some(i)) => return Err(refuse(active.get(i).map_or("a limit", |a| a.3), left)),
                Err(e) => {
                    self.shared_limit_errors.fetch_add(1, Ordering::Relaxed);
                    // One line per failure, not per request while Redis is left alone.
                    let log = !crate::limits::redis::is_backing_off(&e);
                    match self.config.shared_limits_fallback {
                        LimitsFallback::FailOpen => {
                            if log {
                                tracing::warn!(error = %e, "shared rate counters unavailable; counting in this replica's memory");
                            }
                        }
                        LimitsFallback::FailClosed => {
                            if log {
                                tracing::warn!(error = %e, "shared rate counters unavailable; refusing requests");
                            }
                            return Err(ApiError::new(
                                StatusCode::SERVICE_UNAVAILABLE,
                                "server_error",
                                "limits_unavailable",
                                "the shared rate limits cannot be checked right now; retry shortly",
                            ));
                        }
                    }
                }
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
}

fn classify(e: &serde_json::Error) -> &'static str {
    match e.classify() {
        serde_json::error::Category::Eof => "unexpected end",
        serde_json::error::Category::Syntax => "syntax error",
        _ => "invalid data",
    }
}
