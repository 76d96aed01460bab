//! Who is asking: a bearer token (`Authorization: Bearer dmt_…`, for scripts and the API), a
//! session cookie (for browsers, after `/login`), or nobody (allowed only with
//! `--public-read`, as a viewer). Secrets are looked up by their SHA-256 and the stored hash
//! is compared again in constant time.
//!
//! Forms are protected against cross-site forgery twice: the session cookie is
//! `SameSite=Strict`, and every state-changing form carries the session's anti-forgery value,
//! compared in constant time ([`Principal::check_csrf`]). A POST whose `Origin` names another
//! site is refused before any of that ([`same_origin`]).

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::{HeaderMap, header, request::Parts};
use demarc_store::Role;
use demarc_store::keys::hash_api_key;
use subtle::ConstantTimeEq;

use crate::error::ServeError;
use crate::state::App;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "demarc_session";
/// How long a browser session lasts.
pub const SESSION_TTL: time::Duration = time::Duration::hours(8);

/// How the caller proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Bearer,
    Session,
    /// `--public-read` and no credentials.
    Public,
}

/// The caller of one request.
#[derive(Debug, Clone)]
pub struct Principal {
    pub role: Role,
    pub token_id: String,
    pub label: String,
    pub via: Via,
    /// The session's anti-forgery value (sessions only).
    pub csrf: Option<String>,
}

impl Principal {
    /// Refuses a caller whose role is below `role`.
    pub fn require(&self, role: Role) -> Result<(), ServeError> {
        if self.role >= role {
            Ok(())
        } else {
            Err(ServeError::Forbidden(role))
        }
    }

    /// A state change from a session must carry the session's anti-forgery value; a bearer
    /// token is not sent by browsers on their own, so its requests need none.
    pub fn check_csrf(&self, sent: Option<&str>) -> Result<(), ServeError> {
        match (self.via, &self.csrf) {
            (Via::Bearer, _) => Ok(()),
            (Via::Session, Some(expected)) => match sent {
                Some(s) if bool::from(s.as_bytes().ct_eq(expected.as_bytes())) => Ok(()),
                _ => Err(ServeError::Csrf),
            },
            _ => Err(ServeError::Csrf),
        }
    }

    /// Whether user names and raw evidence links may be shown.
    pub fn sees_names(&self) -> bool {
        self.role >= Role::Auditor
    }
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Checks a presented token secret: the active token it names, or `None`.
pub async fn token_for(
    app: &App,
    secret: &str,
) -> Result<Option<demarc_store::ServeToken>, ServeError> {
    if !secret.starts_with(demarc_store::tokens::TOKEN_PREFIX) || secret.len() > 200 {
        return Ok(None);
    }
    let wanted = hash_api_key(secret);
    Ok(match app.store.lookup_serve_token(&wanted).await? {
        Some((token, stored)) if bool::from(stored.ct_eq(&wanted)) && token.is_active() => {
            Some(token)
        }
        _ => None,
    })
}

/// Who the request comes from, or `None` for no (valid) credentials.
pub async fn identify(app: &App, headers: &HeaderMap) -> Result<Option<Principal>, ServeError> {
    if let Some(secret) = bearer(headers) {
        // A wrong bearer token is refused even with --public-read: the caller meant to
        // authenticate and should learn that it failed.
        return match token_for(app, secret).await? {
            Some(t) => Ok(Some(Principal {
                role: t.role,
                token_id: t.id,
                label: t.label,
                via: Via::Bearer,
                csrf: None,
            })),
            None => Err(ServeError::Unauthenticated),
        };
    }
    if let Some(secret) = cookie(headers, SESSION_COOKIE)
        && secret.len() <= 200
    {
        let wanted = hash_api_key(secret);
        if let Some(s) = app.store.lookup_serve_session(&wanted).await?
            && bool::from(s.stored_hash.ct_eq(&wanted))
        {
            return Ok(Some(Principal {
                role: s.token.role,
                token_id: s.token.id,
                label: s.token.label,
                via: Via::Session,
                csrf: Some(s.csrf),
            }));
        }
    }
    if app.options.public_read {
        return Ok(Some(Principal {
            role: Role::Viewer,
            token_id: "public".into(),
            label: "public read".into(),
            via: Via::Public,
            csrf: None,
        }));
    }
    Ok(None)
}

impl FromRequestParts<Arc<App>> for Principal {
    type Rejection = ServeError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, ServeError> {
        if let Some(p) = parts.extensions.get::<Principal>() {
            return Ok(p.clone());
        }
        let principal = identify(app, &parts.headers)
            .await?
            .ok_or(ServeError::Unauthenticated)?;
        // A log shipper's token reads nothing: only the ingest endpoint takes it ([`Shipper`]).
        principal.require(Role::Viewer)?;
        parts.extensions.insert(principal.clone());
        Ok(principal)
    }
}

/// The caller of the ingest endpoint: a bearer token of role `ingest` or `admin`.
pub struct Shipper(pub Principal);

impl FromRequestParts<Arc<App>> for Shipper {
    type Rejection = ServeError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, ServeError> {
        let principal = match identify(app, &parts.headers).await? {
            Some(p) if p.via == Via::Bearer => p,
            _ => return Err(ServeError::Unauthenticated),
        };
        if principal.role == Role::Ingest || principal.role >= Role::Admin {
            Ok(Shipper(principal))
        } else {
            Err(ServeError::Forbidden(Role::Ingest))
        }
    }
}

/// A state-changing request whose `Origin` (or, without one, `Referer`) names a different
/// host than the one it was sent to is refused. Requests with neither (scripts) pass on to
/// the token and anti-forgery checks.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return true;
    };
    let claimed = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER))
        .and_then(|v| v.to_str().ok());
    match claimed {
        None => true,
        Some("null") => false,
        Some(url) => {
            let rest = url
                .strip_prefix("https://")
                .or_else(|| url.strip_prefix("http://"))
                .unwrap_or("");
            rest.split('/').next() == Some(host)
        }
    }
}

/// The caller of a page: as [`Principal`], but a missing login redirects to `/login` and
/// other refusals are shown as a page.
pub struct PageUser(pub Principal);

impl FromRequestParts<Arc<App>> for PageUser {
    type Rejection = crate::error::PageError;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &Arc<App>,
    ) -> Result<Self, crate::error::PageError> {
        Ok(PageUser(Principal::from_request_parts(parts, app).await?))
    }
}

/// Runs the request-header parsers (`Cookie`, `Authorization`, `Origin`/`Referer` against
/// `Host`) over header lines `Name: value` taken from arbitrary bytes: the fuzz target's entry.
#[doc(hidden)]
pub fn parse_headers_for_fuzzing(data: &[u8]) {
    let mut headers = HeaderMap::new();
    for line in data.split(|b| *b == b'\n') {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let (Ok(name), Ok(value)) = (
            axum::http::HeaderName::from_bytes(&line[..colon]),
            axum::http::HeaderValue::from_bytes(line[colon + 1..].trim_ascii()),
        ) else {
            continue;
        };
        headers.append(name, value);
    }
    let _ = cookie(&headers, SESSION_COOKIE);
    let _ = bearer(&headers);
    let _ = same_origin(&headers);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                axum::http::HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn same_origin_compares_the_origin_host_with_host() {
        let h = |o: &str| headers(&[("host", "dash.example:8090"), ("origin", o)]);
        assert!(same_origin(&h("http://dash.example:8090")));
        assert!(same_origin(&h("https://dash.example:8090")));
        assert!(!same_origin(&h("https://evil.example")));
        assert!(!same_origin(&h("https://dash.example:8090.evil.example")));
        assert!(!same_origin(&h("null")));
        assert!(!same_origin(&h("javascript:alert(1)")));
        // A referer stands in for a missing origin; neither is a script, which passes on.
        assert!(!same_origin(&headers(&[
            ("host", "a"),
            ("referer", "http://b/x")
        ])));
        assert!(same_origin(&headers(&[
            ("host", "a"),
            ("referer", "http://a/x")
        ])));
        assert!(same_origin(&headers(&[("host", "a")])));
    }

    #[test]
    fn bearer_tokens_and_cookies_are_read_from_their_headers() {
        let h = headers(&[
            ("authorization", "bearer  dmt_abc "),
            ("cookie", "a=1; demarc_session=s3cret"),
            ("cookie", "other=2"),
        ]);
        assert_eq!(bearer(&h), Some("dmt_abc"));
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("s3cret"));
        assert_eq!(cookie(&h, "other"), Some("2"));
        assert_eq!(cookie(&h, "demarc"), None);
        assert_eq!(bearer(&headers(&[("authorization", "Basic eA==")])), None);
    }

    proptest! {
        #[test]
        fn header_parsers_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            parse_headers_for_fuzzing(&data);
        }

        #[test]
        fn the_session_cookie_is_found_among_others(
            value in "[A-Za-z0-9_-]{1,80}",
            before in proptest::collection::vec("[a-z]{1,8}=[a-z0-9]{0,8}", 0..4),
            after in proptest::collection::vec("[a-z]{1,8}=[a-z0-9]{0,8}", 0..4),
        ) {
            let mut parts = before.clone();
            parts.push(format!("{SESSION_COOKIE}={value}"));
            parts.extend(after);
            let h = headers(&[("cookie", &parts.join("; "))]);
            let found = cookie(&h, SESSION_COOKIE);
            prop_assert_eq!(found, Some(value.as_str()));
        }
    }
}
