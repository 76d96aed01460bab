//! Upstream model providers: building requests (OpenAI-compatible or Azure OpenAI), timeouts,
//! retries with backoff, failover in the application's order, and a circuit breaker per upstream.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};
use bytes::Bytes;
use http_body_util::Full;
use rustls::pki_types::CertificateDer;

use crate::config::{UpstreamConfig, UpstreamKind};
use crate::endpoint::Endpoint;
use crate::error::ApiError;

mod client;
mod connect;
#[cfg(test)]
mod test_server;

/// One configured upstream with its HTTP client and breaker state.
pub struct Upstream {
    pub config: UpstreamConfig,
    /// HTTP/1.1 (hyper) driven in the request's task, over TCP or rustls, through the proxy
    /// `HTTP(S)_PROXY`/`ALL_PROXY`/`NO_PROXY` name; idle connections pooled and reaped after
    /// [`client::IDLE_FOR`]; no redirects followed.
    client: Arc<client::Client>,
    auth: Option<(&'static str, HeaderValue)>,
    breaker: Breaker,
}

/// Why an upstream's client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot build its HTTP client: {0}")]
    Build(#[from] connect::TargetError),
    #[error("ca_file `{path}`: {message}")]
    CaFile { path: String, message: String },
}

/// The certificates in a PEM file (at least one).
fn read_ca_file(path: &std::path::Path) -> Result<Vec<CertificateDer<'static>>, ClientError> {
    use rustls::pki_types::pem::PemObject;
    let fail = |message: String| ClientError::CaFile {
        path: path.display().to_string(),
        message,
    };
    let pem = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
    if !pem.windows(17).any(|w| w == b"BEGIN CERTIFICATE") {
        return Err(fail("holds no `BEGIN CERTIFICATE` block".into()));
    }
    CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail(format!("not PEM certificates ({e})")))
}

impl Upstream {
    pub fn new(config: UpstreamConfig) -> Result<Self, ClientError> {
        Self::with_env(config, &|name| std::env::var(name).ok())
    }

    /// [`Upstream::new`] with the environment (proxies) read through `env`.
    fn with_env(
        config: UpstreamConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ClientError> {
        let extra_roots = match &config.ca_file {
            Some(path) => read_ca_file(path)?,
            None => Vec::new(),
        };
        let target = connect::Target::new(&config.base_url, &extra_roots, env)
            .map_err(ClientError::Build)?;
        let client = client::Client::new(target, config.timeouts.connect);
        let auth = config.api_key.as_ref().and_then(|key| {
            let (name, value) = match config.kind {
                UpstreamKind::OpenAi => ("authorization", format!("Bearer {key}")),
                UpstreamKind::Azure { .. } => ("api-key", key.clone()),
            };
            let mut value = HeaderValue::from_str(&value).ok()?;
            value.set_sensitive(true);
            Some((name, value))
        });
        let breaker = Breaker::new(config.breaker_failures, config.breaker_open);
        Ok(Self {
            config,
            client,
            auth,
            breaker,
        })
    }

    pub fn id(&self) -> &str {
        &self.config.id
    }

    /// The URL for `endpoint` and (for Azure) the deployment that serves `model`.
    #[cfg(test)]
    pub fn url(&self, endpoint: Endpoint, model: &str) -> String {
        format!("{}{}", self.config.base_url, self.route(endpoint, model))
    }

    /// What follows the base URL for `endpoint`: path and query. The deployment may be the
    /// caller's model name, so it is percent-encoded as one path segment.
    fn route(&self, endpoint: Endpoint, model: &str) -> String {
        match &self.config.kind {
            UpstreamKind::OpenAi if endpoint == Endpoint::Model => {
                format!("/models/{}", encode_component(model))
            }
            UpstreamKind::OpenAi => format!("/{}", endpoint.path()),
            UpstreamKind::Azure {
                api_version,
                deployments,
            } => {
                let version = encode_component(api_version);
                match endpoint {
                    Endpoint::Responses | Endpoint::Models => {
                        format!("/openai/{}?api-version={version}", endpoint.path())
                    }
                    Endpoint::Model => format!(
                        "/openai/models/{}?api-version={version}",
                        encode_component(model)
                    ),
                    _ => {
                        let deployment = deployments.get(model).map_or(model, String::as_str);
                        format!(
                            "/openai/deployments/{}/{}?api-version={version}",
                            encode_component(deployment),
                            endpoint.path()
                        )
                    }
                }
            }
        }
    }

    /// One attempt: send the request and wait for the answer's head.
    async fn call(
        &self,
        endpoint: Endpoint,
        model: &str,
        body: Option<Bytes>,
        stream: bool,
    ) -> Result<Reply, CallError> {
        let request = self
            .request(endpoint, model, body, stream)
            .map_err(|_| CallError { connect: false })?;
        let (head, body) = self.client.send(request).await.map_err(|e| CallError {
            connect: e.is_connect(),
        })?;
        let (head, ()) = head.into_parts();
        Ok(Reply {
            status: head.status,
            headers: head.headers,
            body,
        })
    }

    fn request(
        &self,
        endpoint: Endpoint,
        model: &str,
        body: Option<Bytes>,
        stream: bool,
    ) -> Result<Request<Full<Bytes>>, axum::http::Error> {
        let target = &self.client.target;
        let accept = if stream {
            "text/event-stream"
        } else {
            "application/json"
        };
        let mut req = Request::builder()
            .uri(target.request_target(&self.route(endpoint, model)))
            .header(header::HOST, target.authority.clone())
            .header(header::ACCEPT, accept);
        if body.is_some() {
            req = req
                .method(Method::POST)
                .header(header::CONTENT_TYPE, "application/json");
        }
        if let Some((name, value)) = &self.auth {
            req = req.header(*name, value.clone());
        }
        if let Some(value) = target.proxy_authorization() {
            req = req.header(header::PROXY_AUTHORIZATION, value.clone());
        }
        req.body(Full::new(body.unwrap_or_default()))
    }
}

/// Closed → open after `threshold` consecutive failures; after `open_for`, one trial request
/// (half-open) decides whether it closes again.
struct Breaker {
    threshold: u32,
    open_for: Duration,
    failures: AtomicU32,
    /// Milliseconds since `epoch` until which the breaker is open; 0 = closed.
    open_until: AtomicU64,
    epoch: Instant,
}

impl Breaker {
    fn new(threshold: u32, open_for: Duration) -> Self {
        Self {
            threshold,
            open_for,
            failures: AtomicU32::new(0),
            open_until: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Whether a request may go to this upstream now. When the open period has passed,
    /// exactly one caller wins the trial (the others see it open for another period).
    fn allow(&self) -> bool {
        let until = self.open_until.load(Ordering::Acquire);
        if until == 0 {
            return true;
        }
        let now = self.now_ms();
        if now < until {
            return false;
        }
        let next = now + u64::try_from(self.open_for.as_millis()).unwrap_or(u64::MAX / 2);
        self.open_until
            .compare_exchange(until, next, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    fn success(&self) {
        self.failures.store(0, Ordering::Release);
        self.open_until.store(0, Ordering::Release);
    }

    fn failure(&self) {
        let n = self.failures.fetch_add(1, Ordering::AcqRel) + 1;
        if n >= self.threshold {
            let until =
                self.now_ms() + u64::try_from(self.open_for.as_millis()).unwrap_or(u64::MAX / 2);
            self.open_until.store(until.max(1), Ordering::Release);
        }
    }

    fn is_open(&self) -> bool {
        let until = self.open_until.load(Ordering::Acquire);
        until != 0 && self.now_ms() < until
    }
}

/// Every byte but RFC 3986's unreserved characters (`A-Z a-z 0-9 - . _ ~`).
const NOT_UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `text` percent-encoded as one path segment or query value, whatever it holds (`/`, spaces,
/// line breaks).
fn encode_component(text: &str) -> std::borrow::Cow<'_, str> {
    percent_encoding::utf8_percent_encode(text, NOT_UNRESERVED).into()
}

/// An attempt that got no answer.
struct CallError {
    connect: bool,
}

/// An upstream's answer: its head, and its body to read.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    body: client::Body,
}

/// The connection broke before the body was complete.
#[derive(Debug)]
pub struct BodyCut;

impl Reply {
    /// All of the body that has arrived (waiting for some if none has), `None` at its end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, BodyCut> {
        self.body.chunk().await.map_err(|_| BodyCut)
    }
}

/// A response whose headers arrived from an upstream, and what it took to get it.
pub struct Answer {
    pub response: Reply,
    pub upstream: usize,
    pub attempts: u32,
    /// Deadline for the whole exchange, body included.
    pub deadline: Instant,
}

/// Why no usable answer came back.
#[derive(Debug)]
pub struct Failure {
    pub error: ApiError,
    pub upstream: Option<usize>,
    pub attempts: u32,
}

/// Whether a status is worth retrying (and counts against the breaker).
fn retryable(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
        || status.is_server_error()
}

/// How long an upstream asks to be left alone: `Retry-After` as seconds or as an HTTP date
/// (`Sun, 06 Nov 1994 08:49:37 GMT`); a date in the past means now.
pub fn parse_retry_after(value: &str, now: time::OffsetDateTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let at = time::PrimitiveDateTime::parse(value, &format)
        .ok()?
        .assume_utc();
    Some(Duration::try_from(at - now).unwrap_or(Duration::ZERO))
}

/// The `Retry-After` of a 429 or 503 answer, if it has a readable one.
fn retry_after(response: &Reply) -> Option<Duration> {
    let status = response.status;
    if status != StatusCode::TOO_MANY_REQUESTS && status != StatusCode::SERVICE_UNAVAILABLE {
        return None;
    }
    let value = response.headers.get(header::RETRY_AFTER)?;
    parse_retry_after(value.to_str().ok()?, time::OffsetDateTime::now_utc())
}

/// Send to the first healthy upstream in `order`, retrying retryable failures with exponential
/// backoff and failing over to the next upstream. Non-retryable answers (2xx, most 4xx) come back
/// as they are. A 429 or 503 with `Retry-After` is retried after the time it asks for, when that
/// fits both the upstream's `retry_after_max` and what is left of its total timeout (counted from
/// the start of this request); otherwise the next upstream is tried, and if none answers, the
/// error carries a `retry-after` of its own. `on_error(upstream_index)` is called for each failed
/// attempt (metrics).
pub async fn send(
    upstreams: &[Upstream],
    order: &[usize],
    endpoint: Endpoint,
    model: &str,
    body: Option<Bytes>,
    stream: bool,
    on_error: &(dyn Fn(usize) + Sync),
) -> Result<Answer, Failure> {
    let started = Instant::now();
    let mut attempts = 0u32;
    let mut last: Option<(usize, ApiError)> = None;
    let mut tried_any = false;
    for &index in order {
        let Some(upstream) = upstreams.get(index) else {
            continue;
        };
        if !upstream.breaker.allow() {
            continue;
        }
        tried_any = true;
        let timeouts = upstream.config.timeouts;
        // What the upstream asked for in its last `Retry-After`, when it is to be honoured.
        let mut asked: Option<Duration> = None;
        for retry in 0..=upstream.config.max_retries {
            if retry > 0 {
                let wait = asked.take().unwrap_or_else(|| {
                    let factor = 1u32 << (retry - 1).min(8);
                    // Half to full backoff: spreads retries of concurrent requests apart.
                    let jitter =
                        0.5 + f64::from(attempts.wrapping_mul(2_654_435_761) % 1000) / 2000.0;
                    upstream.config.backoff.mul_f64(f64::from(factor) * jitter)
                });
                tokio::time::sleep(wait).await;
            }
            attempts += 1;
            let deadline = Instant::now() + timeouts.total;
            let first_byte = timeouts.first_byte.min(timeouts.total);
            let sent = tokio::time::timeout(
                first_byte,
                upstream.call(endpoint, model, body.clone(), stream),
            )
            .await;
            let mut wants: Option<Duration> = None;
            let mut error = match sent {
                Ok(Ok(response)) if !retryable(response.status) => {
                    upstream.breaker.success();
                    return Ok(Answer {
                        response,
                        upstream: index,
                        attempts,
                        deadline,
                    });
                }
                Ok(Ok(response)) => {
                    let status = response.status;
                    wants = retry_after(&response);
                    if status == StatusCode::TOO_MANY_REQUESTS {
                        ApiError::rate_limited(
                            "upstream_rate_limited",
                            format!("upstream `{}` is rate limiting", upstream.id()),
                        )
                    } else {
                        ApiError::upstream(
                            StatusCode::BAD_GATEWAY,
                            "upstream_error",
                            format!("upstream `{}` answered {}", upstream.id(), status.as_u16()),
                        )
                    }
                }
                Ok(Err(e)) => {
                    let what = if e.connect {
                        "cannot connect to"
                    } else {
                        "request failed at"
                    };
                    ApiError::upstream(
                        StatusCode::BAD_GATEWAY,
                        "upstream_unreachable",
                        format!("{what} upstream `{}`", upstream.id()),
                    )
                }
                Err(_) => ApiError::upstream(
                    StatusCode::GATEWAY_TIMEOUT,
                    "upstream_timeout",
                    format!(
                        "upstream `{}` sent nothing within {} ms",
                        upstream.id(),
                        first_byte.as_millis()
                    ),
                ),
            };
            tracing::debug!(
                upstream = upstream.id(),
                attempt = attempts,
                "upstream attempt failed"
            );
            on_error(index);
            // Rate limiting says the upstream is busy, not broken: retry, but keep it in use.
            if error.status != StatusCode::TOO_MANY_REQUESTS {
                upstream.breaker.failure();
            }
            let mut give_up = upstream.breaker.is_open();
            if let Some(wait) = wants {
                // Should no upstream answer, the caller hears when to come back.
                error.retry_after = Some(wait.as_secs_f64().ceil().max(1.0) as u64);
                if error.status == StatusCode::BAD_GATEWAY {
                    error.status = StatusCode::SERVICE_UNAVAILABLE;
                }
                let left = (started + timeouts.total).saturating_duration_since(Instant::now());
                if wait > upstream.config.retry_after_max || wait >= left {
                    give_up = true;
                } else {
                    asked = Some(wait);
                }
            }
            last = Some((index, error));
            if give_up {
                break;
            }
        }
    }
    match last {
        Some((index, error)) => Err(Failure {
            error,
            upstream: Some(index),
            attempts,
        }),
        None => Err(Failure {
            error: ApiError::upstream(
                StatusCode::SERVICE_UNAVAILABLE,
                if tried_any {
                    "upstream_error"
                } else {
                    "upstream_circuit_open"
                },
                "every upstream for this application is failing; try again shortly",
            ),
            upstream: None,
            attempts,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Timeouts;
    use std::collections::BTreeMap;

    fn config(kind: UpstreamKind) -> UpstreamConfig {
        UpstreamConfig {
            id: "u".into(),
            kind,
            base_url: "https://h/v1".into(),
            api_key: Some("k".into()),
            ca_file: None,
            timeouts: Timeouts {
                connect: Duration::from_secs(1),
                first_byte: Duration::from_secs(1),
                total: Duration::from_secs(1),
            },
            max_retries: 0,
            backoff: Duration::from_millis(1),
            retry_after_max: Duration::from_secs(10),
            breaker_failures: 2,
            breaker_open: Duration::from_millis(50),
        }
    }

    #[test]
    fn azure_urls_use_deployments_and_api_version() {
        let mut deployments = BTreeMap::new();
        deployments.insert("gpt-4o".to_string(), "prod".to_string());
        let u = Upstream::new(config(UpstreamKind::Azure {
            api_version: "2024-10-21".into(),
            deployments,
        }))
        .unwrap();
        assert_eq!(
            u.url(Endpoint::ChatCompletions, "gpt-4o"),
            "https://h/v1/openai/deployments/prod/chat/completions?api-version=2024-10-21"
        );
        assert_eq!(
            u.url(Endpoint::Embeddings, "other"),
            "https://h/v1/openai/deployments/other/embeddings?api-version=2024-10-21"
        );
        assert_eq!(u.auth.as_ref().unwrap().0, "api-key");
        assert_eq!(
            u.url(Endpoint::ChatCompletions, "a b/../x\r\nk: v"),
            "https://h/v1/openai/deployments/a%20b%2F..%2Fx%0D%0Ak%3A%20v/chat/completions?api-version=2024-10-21",
            "a caller's model name stays one path segment"
        );
        let o = Upstream::new(config(UpstreamKind::OpenAi)).unwrap();
        assert_eq!(o.url(Endpoint::Responses, "m"), "https://h/v1/responses");
        assert_eq!(o.auth.as_ref().unwrap().1.to_str().unwrap(), "Bearer k");
    }

    #[test]
    fn retry_after_in_seconds_or_as_an_http_date() {
        let now = time::macros::datetime!(2026-11-26 10:00:00 UTC);
        assert_eq!(parse_retry_after(" 7 ", now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Thu, 26 Nov 2026 10:00:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wed, 25 Nov 2026 10:00:30 GMT", now),
            Some(Duration::ZERO),
            "a date in the past means now"
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-1", now), None);
    }

    proptest::proptest! {
        /// Whatever an upstream puts in the header: no panic, and any wait it yields is finite
        /// (a number of seconds never overflows into a wrapped or negative wait).
        #[test]
        fn retry_after_never_panics(value in "\\PC{0,40}", secs in proptest::num::u64::ANY) {
            let now = time::macros::datetime!(2026-11-26 10:00:00 UTC);
            let _ = parse_retry_after(&value, now);
            if let Some(d) = parse_retry_after(&secs.to_string(), now) {
                proptest::prop_assert_eq!(d, Duration::from_secs(secs));
            }
        }
    }

    async fn post(upstream: &Upstream, stream: bool) -> Result<Answer, Failure> {
        send(
            std::slice::from_ref(upstream),
            &[0],
            Endpoint::ChatCompletions,
            "m",
            Some(Bytes::from_static(b"{}")),
            stream,
            &|_| {},
        )
        .await
    }

    fn upstream_at(url: &str) -> Upstream {
        let mut c = config(UpstreamKind::OpenAi);
        c.base_url = url.to_string();
        Upstream::new(c).unwrap()
    }

    async fn body_of(reply: &mut Reply) -> Result<Vec<u8>, BodyCut> {
        let mut all = Vec::new();
        while let Some(piece) = reply.chunk().await? {
            all.extend_from_slice(&piece);
        }
        Ok(all)
    }

    /// `GET /models` and model calls reach a TLS upstream whose certificate comes from the
    /// private CA in `ca_file`, with the key and the `accept` the call needs.
    #[tokio::test]
    async fn the_client_trusts_the_upstreams_ca_file() {
        use test_server::{FIXTURES, serve};
        let json: &'static [u8] =
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}";
        let server = serve(vec![json, json], true).await;
        let mut c = config(UpstreamKind::OpenAi);
        c.base_url = server.url.clone();
        c.ca_file = Some(format!("{FIXTURES}/test-ca.crt").into());
        let upstream = Upstream::new(c).unwrap();
        for (endpoint, body) in [
            (Endpoint::Models, None),
            (Endpoint::ChatCompletions, Some(Bytes::from_static(b"{}"))),
        ] {
            let answer = send(
                std::slice::from_ref(&upstream),
                &[0],
                endpoint,
                "m",
                body,
                false,
                &|_| {},
            )
            .await
            .unwrap_or_else(|f| panic!("{endpoint:?}: {}", f.error.message));
            let mut reply = answer.response;
            assert_eq!(body_of(&mut reply).await.unwrap(), b"{}");
        }
        let heads = server.heads.lock().unwrap().clone();
        assert!(heads[0].starts_with("GET /v1/models "), "{}", heads[0]);
        assert!(
            heads[1].starts_with("POST /v1/chat/completions "),
            "{}",
            heads[1]
        );
        assert!(
            heads[1].contains("accept: application/json"),
            "{}",
            heads[1]
        );
        assert!(
            heads
                .iter()
                .all(|h| h.to_lowercase().contains("authorization: bearer k"))
        );
    }

    #[tokio::test]
    async fn a_streamed_chunked_answer_arrives_whole_and_in_order() {
        let sse: &'static [u8] = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n9\r\ndata: 1\n\n\r\n9\r\ndata: 2\n\n\r\n0\r\n\r\n";
        let server = test_server::serve(vec![sse], false).await;
        let upstream = upstream_at(&server.url);
        let mut reply = post(&upstream, true).await.unwrap().response;
        assert_eq!(reply.headers["content-type"], "text/event-stream");
        assert_eq!(
            body_of(&mut reply).await.unwrap(),
            b"data: 1\n\ndata: 2\n\n"
        );
        let heads = server.heads.lock().unwrap().clone();
        assert!(
            heads[0].contains("accept: text/event-stream"),
            "{}",
            heads[0]
        );
    }

    /// A POST whose bytes reached the upstream is never sent again by the client, neither on
    /// a fresh connection nor on a pooled one that breaks after the write (with `max_retries:
    /// 0`; the gateway's own retries are the documented policy above).
    #[tokio::test]
    async fn a_post_is_not_replayed_when_the_connection_breaks_after_the_write() {
        let ok: &'static [u8] =
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}";
        // The second request, on the pooled connection, is read and then the connection closes.
        let server = test_server::serve(vec![ok, b"CLOSE"], false).await;
        let upstream = upstream_at(&server.url);
        let mut first = post(&upstream, false).await.unwrap().response;
        assert_eq!(body_of(&mut first).await.unwrap(), b"{}");
        let failure = post(&upstream, false).await.err().unwrap();
        assert_eq!(failure.error.status, StatusCode::BAD_GATEWAY);
        assert_eq!(failure.attempts, 1);
        // Give a replay time to arrive: there must be none.
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(server.heads.lock().unwrap().len(), 2);
    }

    /// A connection whose answer was read to its end serves the next request; what has
    /// arrived of a streamed answer comes out of one `chunk()`, however many chunks framed it.
    #[tokio::test]
    async fn connections_are_pooled_and_a_burst_is_read_in_one_go() {
        let ok: &'static [u8] =
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}";
        let mut burst =
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
                .to_vec();
        let mut events = Vec::new();
        for i in 0..50 {
            let event = format!("data: {{\"n\":{i:02}}}\n\n");
            burst.extend_from_slice(format!("{:x}\r\n{event}\r\n", event.len()).as_bytes());
            events.extend_from_slice(event.as_bytes());
        }
        burst.extend_from_slice(b"0\r\n\r\n");
        let burst: &'static [u8] = Box::leak(burst.into_boxed_slice());
        let server = test_server::serve(vec![ok, burst, ok], false).await;
        let upstream = upstream_at(&server.url);
        let mut first = post(&upstream, false).await.unwrap().response;
        assert_eq!(body_of(&mut first).await.unwrap(), b"{}");
        assert_eq!(upstream.client.idle(), 1, "pooled after the body's end");
        let mut reply = post(&upstream, true).await.unwrap().response;
        assert_eq!(upstream.client.idle(), 0, "in use");
        let mut pieces = 0;
        let mut all = Vec::new();
        while let Some(piece) = reply.chunk().await.unwrap() {
            pieces += 1;
            all.extend_from_slice(&piece);
        }
        assert_eq!(all, events);
        assert!(pieces <= 3, "50 chunks in {pieces} pieces");
        let mut last = post(&upstream, false).await.unwrap().response;
        assert_eq!(body_of(&mut last).await.unwrap(), b"{}");
        // One connection served all three (the server closes none): the pool holds it.
        assert_eq!(upstream.client.idle(), 1);
        assert_eq!(server.heads.lock().unwrap().len(), 3);
    }

    /// An idle connection that the upstream closes leaves the pool without a request having to
    /// find it dead: the reaper drops it.
    #[tokio::test]
    async fn the_reaper_drops_idle_connections_the_upstream_closed() {
        let ok_then_close: &'static [u8] =
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}CLOSE_SOON";
        let server = test_server::serve(vec![ok_then_close], false).await;
        let upstream = upstream_at(&server.url);
        let mut reply = post(&upstream, false).await.unwrap().response;
        assert_eq!(body_of(&mut reply).await.unwrap(), b"{}");
        // Pooled when the body ended; the server closes the connection 200 ms later.
        assert_eq!(upstream.client.idle(), 1);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while upstream.client.idle() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(
            upstream.client.idle(),
            0,
            "the closed connection is still pooled"
        );
    }

    /// Through `HTTP_PROXY`, a plain-HTTP upstream is asked in absolute form with the proxy's
    /// credentials; through `HTTPS_PROXY`, a TLS upstream is reached by a `CONNECT` tunnel
    /// (credentials on the `CONNECT` only), its certificate checked end to end.
    #[tokio::test]
    async fn proxies_from_the_environment_are_used() {
        use test_server::{FIXTURES, serve};
        let ok: &'static [u8] =
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}";
        let proxy = serve(vec![ok], false).await;
        let proxy_url = proxy
            .url
            .trim_end_matches("/v1")
            .replace("http://", "http://u:pw@");
        let mut c = config(UpstreamKind::OpenAi);
        c.base_url = "http://upstream.invalid:81/v1".into();
        let env = [("HTTP_PROXY", proxy_url.clone())];
        let upstream = Upstream::with_env(c, &|n| {
            env.iter().find(|(k, _)| *k == n).map(|(_, v)| v.clone())
        })
        .unwrap();
        let mut reply = post(&upstream, false).await.unwrap().response;
        assert_eq!(body_of(&mut reply).await.unwrap(), b"{}");
        let head = proxy.heads.lock().unwrap()[0].clone();
        assert!(
            head.starts_with("POST http://upstream.invalid:81/v1/chat/completions HTTP/1.1"),
            "{head}"
        );
        assert!(
            head.to_lowercase()
                .contains("proxy-authorization: basic dtpwdw=="),
            "{head}"
        );

        // A tunnelling proxy in front of the TLS test upstream.
        let tls = serve(vec![ok], true).await;
        let behind = tls
            .url
            .trim_start_matches("https://")
            .trim_end_matches("/v1")
            .to_string();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let tunnel = format!("http://u:pw@{}", listener.local_addr().unwrap());
        let connects = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = connects.clone();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let (mut client, _) = listener.accept().await.unwrap();
            let mut head = Vec::new();
            while !head.ends_with(b"\r\n\r\n") {
                head.push(client.read_u8().await.unwrap());
            }
            seen.lock().unwrap().push(String::from_utf8(head).unwrap());
            let mut server = tokio::net::TcpStream::connect(behind).await.unwrap();
            client
                .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                .await
                .unwrap();
            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
        });
        let mut c = config(UpstreamKind::OpenAi);
        c.base_url = tls.url.replace("127.0.0.1", "localhost");
        c.ca_file = Some(format!("{FIXTURES}/test-ca.crt").into());
        let env = [
            ("HTTPS_PROXY", tunnel),
            ("NO_PROXY", "127.0.0.1".to_string()),
        ];
        let upstream = Upstream::with_env(c, &|n| {
            env.iter().find(|(k, _)| *k == n).map(|(_, v)| v.clone())
        })
        .unwrap();
        let mut reply = post(&upstream, false)
            .await
            .unwrap_or_else(|f| panic!("{}", f.error.message))
            .response;
        assert_eq!(body_of(&mut reply).await.unwrap(), b"{}");
        let connect = connects.lock().unwrap()[0].clone();
        let port = tls
            .url
            .rsplit(':')
            .next()
            .unwrap()
            .trim_end_matches("/v1")
            .to_string();
        assert!(
            connect.starts_with(&format!("CONNECT localhost:{port} HTTP/1.1")),
            "{connect}"
        );
        assert!(
            connect.contains("Proxy-Authorization: Basic dTpwdw=="),
            "{connect}"
        );
        let head = tls.heads.lock().unwrap()[0].clone();
        assert!(head.starts_with("POST /v1/chat/completions "), "{head}");
        assert!(
            !head.to_lowercase().contains("proxy-authorization"),
            "{head}"
        );
    }

    /// Framing an attacker-controlled upstream could use to smuggle or truncate: refused.
    #[tokio::test]
    async fn ambiguous_or_malformed_framing_is_refused() {
        let two_lengths: &'static [u8] = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\n{}";
        let server = test_server::serve(vec![two_lengths], false).await;
        let failure = post(&upstream_at(&server.url), false).await.err().unwrap();
        assert_eq!(
            failure.error.status,
            StatusCode::BAD_GATEWAY,
            "{}",
            failure.error.message
        );

        let bad_size: &'static [u8] = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\nzz\r\ndata: 1\n\n\r\n0\r\n\r\n";
        let server = test_server::serve(vec![bad_size], false).await;
        let mut reply = post(&upstream_at(&server.url), true)
            .await
            .unwrap()
            .response;
        assert!(body_of(&mut reply).await.is_err());

        let too_long: &'static [u8] = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 10\r\n\r\n{}CLOSE";
        let server = test_server::serve(vec![too_long], false).await;
        let mut reply = post(&upstream_at(&server.url), false)
            .await
            .unwrap()
            .response;
        assert!(body_of(&mut reply).await.is_err());
    }

    /// RFC 9112: in a response whose `Transfer-Encoding` does not end in `chunked`, the body
    /// runs to the end of the connection; chunked framing elsewhere in the list is not applied.
    #[tokio::test]
    async fn chunked_counts_only_as_the_last_transfer_coding() {
        let not_last: &'static [u8] = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked, identity\r\n\r\n2\r\n{}\r\n0\r\n\r\nCLOSE";
        let server = test_server::serve(vec![not_last], false).await;
        let outcome = match post(&upstream_at(&server.url), false).await {
            Ok(answer) => body_of(&mut { answer.response }).await.ok(),
            Err(_) => None,
        };
        assert_ne!(outcome.as_deref(), Some(b"{}".as_slice()));
    }

    #[test]
    fn a_bad_ca_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let not_pem = dir.path().join("ca.pem");
        std::fs::write(&not_pem, "hello").unwrap();
        for (path, says) in [
            (dir.path().join("missing.pem"), "No such file"),
            (not_pem, "no `BEGIN CERTIFICATE`"),
        ] {
            let mut c = config(UpstreamKind::OpenAi);
            c.ca_file = Some(path.clone());
            let e = Upstream::new(c).err().unwrap().to_string();
            assert!(
                e.contains(&path.display().to_string()) && e.contains(says),
                "{e}"
            );
        }
    }

    #[test]
    fn breaker_opens_after_threshold_and_allows_one_trial() {
        let b = Breaker::new(2, Duration::from_millis(30));
        assert!(b.allow());
        b.failure();
        assert!(b.allow());
        b.failure();
        assert!(!b.allow());
        std::thread::sleep(Duration::from_millis(40));
        assert!(b.allow(), "trial after the open period");
        assert!(!b.allow(), "only one trial");
        b.success();
        assert!(b.allow());
    }
}
