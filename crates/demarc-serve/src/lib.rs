//! `demarc serve`: the dashboard and the HTTP API over demarc's store, as a library.
//!
//! A request passes: security headers and a body limit ([`router`]) → who is asking
//! ([`auth`]: bearer token, session cookie, or `--public-read`) → a page ([`pages`], HTML from
//! askama templates) or an endpoint ([`api`], JSON, described by [`openapi`]) → the live
//! assessment of the estate with the store's observations ([`state::App::live`]) or the store
//! itself. Admin actions are appended to the `serve` audit chain.
//!
//! [`assessing`] is the part `demarc assess` shares: what an assessment reads besides the
//! estate (observations from the store, evidence files on disk).

mod api;
pub mod assessing;
mod auth;
mod error;
mod extract;
mod gathering;
mod openapi;
mod pages;
pub mod recording;
pub mod report;
mod state;
mod views;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

#[doc(hidden)]
pub use auth::parse_headers_for_fuzzing;
pub use error::ServeError;
pub use openapi::document as openapi_document;
pub use state::{AUDIT_CHAIN, App, ServeOptions};

/// The largest request body accepted: forms and small JSON documents only.
pub const MAX_BODY: usize = 64 * 1024;

/// Scripts and styles only from this server, no inline script or style, no framing, forms
/// only to this server.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const STYLE: &str = concat!(
    include_str!("../assets/app.css"),
    include_str!("../templates/shared/heat.css"),
    include_str!("../templates/shared/matrix.css"),
    include_str!("../templates/shared/duty.css")
);
const SCRIPT: &str = include_str!("../assets/app.js");

/// Every page and endpoint.
pub fn router(app: Arc<App>) -> Router {
    let mut api = Router::new();
    for (endpoint, route) in api::endpoints() {
        api = api.route(endpoint.path, route);
    }
    Router::new()
        .merge(api)
        .merge(pages::routes())
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/assets/app.css",
            get(|| asset("text/css; charset=utf-8", STYLE)),
        )
        .route(
            "/assets/app.js",
            get(|| asset("text/javascript; charset=utf-8", SCRIPT)),
        )
        // Browsers ask for it on every site; an empty answer keeps their consoles clean.
        .route(
            "/favicon.ico",
            get(|| async { axum::http::StatusCode::NO_CONTENT }),
        )
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn(security_headers))
        .with_state(app)
}

async fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

async fn not_found(request: Request) -> Response {
    let path = request.uri().path().to_owned();
    let error = ServeError::NotFound(format!("no page or endpoint at `{path}`"));
    if path.starts_with("/api/") {
        error.into_response()
    } else {
        error::PageError(error).into_response()
    }
}

async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // `same-origin`, not `no-referrer`: under `no-referrer` Chromium sends `Origin: null` with
    // the dashboard's own form posts, which the same-origin check refuses.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// Serves until `shutdown` resolves, then finishes the requests in progress.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Arc<App>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Expired sessions are removed hourly (a lookup already refuses them).
    let store = app.store().clone();
    let pruner = tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(3600));
        loop {
            every.tick().await;
            if let Err(e) = store
                .prune_serve_sessions(time::OffsetDateTime::now_utc())
                .await
            {
                tracing::warn!(error = %e, "cannot prune expired sessions");
            }
        }
    });
    let result = axum::serve(listener, router(app))
        .with_graceful_shutdown(shutdown)
        .await;
    pruner.abort();
    result
}

/// The version shown in the pages' footer.
pub fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}
