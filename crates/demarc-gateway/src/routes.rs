//! The HTTP surface: routes, health and metrics, serving with a graceful drain, and the
//! shutdown signal.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;

use crate::endpoint::Endpoint;
use crate::error::ApiError;
use crate::gateway::Gateway;

async fn chat(State(live): State<Arc<Live>>, headers: HeaderMap, body: Body) -> Response {
    let gw = live.current();
    gw.handle(Endpoint::ChatCompletions, headers, body).await
}

async fn responses(State(live): State<Arc<Live>>, headers: HeaderMap, body: Body) -> Response {
    let gw = live.current();
    gw.handle(Endpoint::Responses, headers, body).await
}

async fn completions(State(live): State<Arc<Live>>, headers: HeaderMap, body: Body) -> Response {
    let gw = live.current();
    gw.handle(Endpoint::Completions, headers, body).await
}

async fn model(
    State(live): State<Arc<Live>>,
    axum::extract::Path(id): axum::extract::Path<String>,
    headers: HeaderMap,
) -> Response {
    live.current()
        .handle_for(Endpoint::Model, headers, Body::empty(), Some(id))
        .await
}

async fn embeddings(State(live): State<Arc<Live>>, headers: HeaderMap, body: Body) -> Response {
    let gw = live.current();
    gw.handle(Endpoint::Embeddings, headers, body).await
}

async fn models(State(live): State<Arc<Live>>, headers: HeaderMap) -> Response {
    let gw = live.current();
    gw.handle(Endpoint::Models, headers, Body::empty()).await
}

async fn readyz(State(live): State<Arc<Live>>) -> Response {
    let gw = live.current();
    if gw.is_ready() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response()
    }
}

async fn metrics(State(live): State<Arc<Live>>) -> Response {
    let gw = live.current();
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
            "demarc_gateway_shared_limits_errors_total",
            "Requests whose shared rate limits (store or Redis) could not be checked; shared_limits_fallback decided them.",
            gw.shared_limit_errors.load(Ordering::Relaxed) as f64,
        ),
        (
            "demarc_gateway_shared_limits_round_trips_total",
            "Round trips to the shared rate counters (store statements, which batch concurrent requests, or Redis calls).",
            gw.counters.as_ref().map_or(0, |c| c.round_trips()) as f64,
        ),
        (
            "demarc_gateway_audit_lost_total",
            "Audit events lost or requests refused because the queue was full.",
            a.lost() as f64,
        ),
        (
            "demarc_gateway_audit_write_failures_total",
            "Audit events the sink refused for good (invalid data, a broken chain) and that were dropped; events it could not take for now are kept and retried.",
            a.failed_writes() as f64,
        ),
    ]);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

async fn not_found(State(live): State<Arc<Live>>, headers: HeaderMap) -> Response {
    let gw = live.current();
    let e = ApiError::new(
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        "unknown_url",
        "unknown URL; the gateway serves /v1/chat/completions, /v1/responses, /v1/completions, /v1/embeddings, /v1/models and /v1/models/{id}",
    );
    gw.unrouted(headers, e).await
}

async fn method_not_allowed(State(live): State<Arc<Live>>, headers: HeaderMap) -> Response {
    let gw = live.current();
    let e = ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "invalid_request_error",
        "method_not_allowed",
        "method not allowed for this URL",
    );
    gw.unrouted(headers, e).await
}

/// The gateway being served, replaced whole by a config reload; each request takes the one
/// current when it starts and keeps it to its end.
pub struct Live(RwLock<Arc<Gateway>>);

impl Live {
    pub fn new(gateway: Arc<Gateway>) -> Arc<Self> {
        Arc::new(Self(RwLock::new(gateway)))
    }

    pub fn current(&self) -> Arc<Gateway> {
        match self.0.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Serve `gateway` from now on; requests in progress finish with the one they had.
    pub fn replace(&self, gateway: Arc<Gateway>) {
        match self.0.write() {
            Ok(mut g) => *g = gateway,
            Err(poisoned) => *poisoned.into_inner() = gateway,
        }
    }
}

/// The gateway's routes.
pub fn router(live: Arc<Live>) -> Router {
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
        .with_state(live)
}

/// Serve until `shutdown` resolves, then stop accepting, drain in-flight requests and return.
pub async fn serve(
    listener: tokio::net::TcpListener,
    live: Arc<Live>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(live.clone());
    // Small SSE writes must leave at once, not wait for the previous write's ACK (Nagle).
    axum::serve(listener.tap_io(no_delay), app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            let gw = live.current();
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
fn no_delay(stream: &mut tokio::net::TcpStream) {
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
