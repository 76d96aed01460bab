//! One error type for the API and the pages. The API answers every error in one JSON shape,
//! `{"error": {"code": "...", "message": "..."}}`; pages show the message in the layout, and a
//! page that needs a login redirects to it. Store failures are logged, never shown: the
//! message names what could not be read, not the database's words.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use demarc_store::{Role, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("a token is needed: send `Authorization: Bearer dmt_…` or sign in at /login")]
    Unauthenticated,
    #[error("this needs a token with the `{0}` role")]
    Forbidden(Role),
    #[error("the form is missing its anti-forgery value, or it does not match the session")]
    Csrf,
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("the request body is over {0} bytes")]
    TooLarge(usize),
    #[error("no estate is loaded: start `demarc serve` with `--estate FILE`")]
    NoEstate,
    #[error("the estate `{file}` cannot be assessed: {reason}")]
    Estate { file: String, reason: String },
    #[error("the store could not be read or written")]
    Store(#[from] StoreError),
    #[error("the page could not be rendered")]
    Render(#[from] askama::Error),
    #[error("{0}")]
    Internal(String),
}

/// The JSON body of every API error.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable: `unauthenticated`, `forbidden`, `csrf`, `not_found`,
    /// `bad_request`, `too_large`, `no_estate`, `estate_invalid`, `store_error`, `internal`.
    pub code: &'static str,
    /// For people; may change between versions.
    pub message: String,
}

impl ServeError {
    pub fn status(&self) -> StatusCode {
        match self {
            ServeError::Unauthenticated => StatusCode::UNAUTHORIZED,
            ServeError::Forbidden(_) | ServeError::Csrf => StatusCode::FORBIDDEN,
            ServeError::NotFound(_) => StatusCode::NOT_FOUND,
            ServeError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ServeError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ServeError::NoEstate => StatusCode::CONFLICT,
            ServeError::Estate { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ServeError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
            ServeError::Render(_) | ServeError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ServeError::Unauthenticated => "unauthenticated",
            ServeError::Forbidden(_) => "forbidden",
            ServeError::Csrf => "csrf",
            ServeError::NotFound(_) => "not_found",
            ServeError::BadRequest(_) => "bad_request",
            ServeError::TooLarge(_) => "too_large",
            ServeError::NoEstate => "no_estate",
            ServeError::Estate { .. } => "estate_invalid",
            ServeError::Store(_) => "store_error",
            ServeError::Render(_) | ServeError::Internal(_) => "internal",
        }
    }

    fn log(&self) {
        match self {
            ServeError::Store(e) => tracing::error!(error = %e, "store error while serving"),
            ServeError::Render(e) => tracing::error!(error = %e, "template error"),
            _ => {}
        }
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: self.code(),
                message: self.to_string(),
            },
        }
    }
}

impl IntoResponse for ServeError {
    fn into_response(self) -> Response {
        self.log();
        let mut response = (self.status(), axum::Json(self.body())).into_response();
        if matches!(self, ServeError::Unauthenticated) {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer realm=\"demarc\""),
            );
        }
        response
    }
}

/// An error on a page: a login redirect, or the message inside the layout.
pub struct PageError(pub ServeError);

impl From<ServeError> for PageError {
    fn from(e: ServeError) -> Self {
        PageError(e)
    }
}

impl From<askama::Error> for PageError {
    fn from(e: askama::Error) -> Self {
        PageError(ServeError::Render(e))
    }
}

impl From<StoreError> for PageError {
    fn from(e: StoreError) -> Self {
        PageError(ServeError::Store(e))
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let e = self.0;
        if matches!(e, ServeError::Unauthenticated) {
            return Redirect::to("/login").into_response();
        }
        e.log();
        let status = e.status();
        match crate::pages::error_page(status, &e.to_string()) {
            Ok(html) => (status, html).into_response(),
            Err(_) => (status, e.to_string()).into_response(),
        }
    }
}
