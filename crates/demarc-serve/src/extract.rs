//! The API's extractors: axum's `Query`, `Path` and `Json`, whose refusals (a query or path
//! that does not parse, a body that is not the JSON expected or is too large) answer in the
//! API's one error shape instead of axum's plain text.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::ServeError;

/// A query string, read as axum's `Query` does.
pub struct Query<T>(pub T);

/// Path parameters, read as axum's `Path` does.
pub struct Path<T>(pub T);

/// A JSON request body, read as axum's `Json` does (within the body limit).
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ServeError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ServeError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(t)| Query(t))
            .map_err(|e| ServeError::BadRequest(e.body_text()))
    }
}

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = ServeError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ServeError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(t)| Path(t))
            .map_err(|e| ServeError::BadRequest(e.body_text()))
    }
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ServeError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ServeError> {
        axum::Json::<T>::from_request(request, state)
            .await
            .map(|axum::Json(t)| JsonBody(t))
            .map_err(|e| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ServeError::TooLarge(crate::MAX_BODY)
                } else {
                    ServeError::BadRequest(e.body_text())
                }
            })
    }
}
