//! A fake OpenAI-compatible upstream for tests and benchmarks (never for production): chat
//! completions, Responses API and embeddings, streamed or not, with configurable latency and
//! chunking and injected faults. It answers with a fixed reply or echoes the last user text,
//! and records what it received so tests can check what left the gateway.
//!
//! A request may override the fake's settings with an extra body field (which the gateway
//! passes through untouched): `"fake": {"fault": "cut", "reply": "...", "chunk_chars": 3}`.
//! Also `"retry_after": "1"` (a `Retry-After` header on injected errors), and only there:
//! `"fail_status": 429` (the status of `fail-first-N`, default 503) and
//! `"tool_call": {"name": "...", "arguments": "..."}` (answer with a tool call instead of text;
//! the arguments are split into streamed events as a reply would be), and
//! `"echo": "system"` (echo the system context instead of the last user text: the system and
//! developer messages, or the Responses API's `instructions`, as a model that leaks its
//! system prompt would).
//!
//! Tests in other languages (the OpenAI Python SDK suite in `tests/sdk/`) drive it over HTTP
//! through control routes under `/_fake/`, never forwarded by the gateway:
//!
//! - `POST /_fake/script` queues answers, each consumed by one later request (first in, first
//!   out; with `path`, only by a request whose path ends with it). The body is one answer or a
//!   list: `{"status": 200, "body": {...}}` is sent as that exact JSON body;
//!   `{"status": 200, "events": [{"event": "name", "data": ...}, ...]}` as exactly those SSE
//!   events (`event` optional; `data` a string sent as is, e.g. `"[DONE]"`, or JSON sent
//!   compact), then the stream ends (nothing is added: no `[DONE]` unless listed), with
//!   `"delay_ms": N` between events and `"cut": true` to break the connection after the last.
//!   Answers `{"queued": N}` (the answers waiting).
//! - `GET /_fake/received` lists the requests recorded, oldest first:
//!   `[{"method", "path", "query", "body"}]` (`body` the JSON received, `null` when empty).
//! - `POST /_fake/reset` forgets the script and the recorded requests; `{"record": N}` keeps
//!   the last N requests from now on. A fake started without recording (`record: 0`, as
//!   `demarc fake-upstream` is) records the last 1000 once a control route has been called.
//!
//! With nothing scripted, requests are answered as above.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use axum::serve::ListenerExt;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// A fault to inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fault {
    #[default]
    None,
    /// Close the connection without answering.
    Refuse,
    /// Never answer.
    Timeout,
    /// Answer with this status and an OpenAI-shaped error.
    Status(u16),
    /// Stream half the reply, then close the connection.
    Cut,
    /// Send an event whose data is not JSON.
    Malformed,
    /// Answer 503 to the first N requests, then normally.
    FailFirst(u64),
    /// Stream half the reply, then send nothing more while keeping the connection open.
    Stall,
}

/// A `--fault` that is not one of the fake's faults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownFault(String);

impl std::fmt::Display for UnknownFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UnknownFault {}

impl std::str::FromStr for Fault {
    type Err = UnknownFault;
    fn from_str(s: &str) -> Result<Self, UnknownFault> {
        Ok(match s {
            "none" => Self::None,
            "refuse" => Self::Refuse,
            "timeout" => Self::Timeout,
            "cut" => Self::Cut,
            "malformed" => Self::Malformed,
            "stall" => Self::Stall,
            "429" => Self::Status(429),
            other => {
                if let Some(n) = other.strip_prefix("fail-first-") {
                    Self::FailFirst(
                        n.parse()
                            .map_err(|_| UnknownFault(format!("bad count in `{other}`")))?,
                    )
                } else if let Ok(code) = other.parse::<u16>() {
                    if !(400..600).contains(&code) {
                        return Err(UnknownFault(format!(
                            "status `{code}` is not an error status"
                        )));
                    }
                    Self::Status(code)
                } else {
                    return Err(UnknownFault(format!(
                        "unknown fault `{other}` (none, refuse, timeout, cut, stall, malformed, 429, 500, 503, fail-first-N)"
                    )));
                }
            }
        })
    }
}

#[derive(Debug, Clone)]
pub struct FakeConfig {
    /// Delay before the answer's headers.
    pub latency: Duration,
    /// Characters of reply per streamed event.
    pub chunk_chars: usize,
    /// Delay between streamed events.
    pub chunk_delay: Duration,
    pub fault: Fault,
    /// A fixed reply; otherwise the last user text is echoed as `echo: TEXT`.
    pub reply: Option<String>,
    /// Keep the last N requests received (for tests); 0 keeps none.
    pub record: usize,
    /// Split the streamed reply at these character positions instead of every `chunk_chars`.
    pub split_at: Vec<usize>,
    /// A `Retry-After` header value on injected error answers.
    pub retry_after: Option<String>,
}

impl Default for FakeConfig {
    fn default() -> Self {
        Self {
            latency: Duration::ZERO,
            chunk_chars: 8,
            chunk_delay: Duration::ZERO,
            fault: Fault::None,
            reply: None,
            record: 1000,
            split_at: Vec::new(),
            retry_after: None,
        }
    }
}

/// One request as the fake received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    /// The query string, without `?` (empty when there is none).
    pub query: String,
    pub headers: HeaderMap,
    pub body: Value,
}

/// Shared state of a running fake.
#[derive(Default)]
pub struct FakeState {
    config: FakeConfig,
    pub received: Mutex<Vec<Received>>,
    pub requests: AtomicU64,
    /// Streams currently being sent; drops to 0 when clients (the gateway) go away.
    pub open_streams: AtomicUsize,
    /// How many requests to keep: the config's `record` until `/_fake/` changes it.
    record: AtomicUsize,
    /// Answers queued by `POST /_fake/script`, first in, first out.
    script: Mutex<VecDeque<Scripted>>,
}

/// Requests kept once a control route is used on a fake started without recording.
const CONTROL_RECORD: usize = 1000;

/// An answer queued by `POST /_fake/script`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Scripted {
    /// Only a request whose path ends with this takes the answer.
    #[serde(default)]
    path: Option<String>,
    #[serde(default = "ok_status")]
    status: u16,
    /// A whole JSON answer, sent as is.
    #[serde(default)]
    body: Option<Value>,
    /// SSE events, sent as is and in order.
    #[serde(default)]
    events: Option<Vec<ScriptedEvent>>,
    /// Delay between events.
    #[serde(default)]
    delay_ms: u64,
    /// Break the connection after the last event instead of ending the stream.
    #[serde(default)]
    cut: bool,
}

fn ok_status() -> u16 {
    200
}

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ScriptedEvent {
    #[serde(default)]
    event: Option<String>,
    /// A string is the data as is; anything else is sent as compact JSON.
    data: Value,
}

#[derive(serde::Deserialize)]
#[serde(untagged)]
enum ScriptBody {
    Many(Vec<Scripted>),
    One(Box<Scripted>),
}

pub struct FakeUpstream {
    pub addr: SocketAddr,
    pub state: Arc<FakeState>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeUpstream {
    /// Start on `addr` (use port 0 for any free port).
    pub async fn start(addr: SocketAddr, config: FakeConfig) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(FakeState {
            record: AtomicUsize::new(config.record),
            config,
            ..FakeState::default()
        });
        let app = router(state.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener.tap_io(no_delay), app).await;
        });
        Ok(Self { addr, state, task })
    }

    /// The base URL to configure in the gateway (`http://ADDR/v1`).
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    pub fn received(&self) -> Vec<Received> {
        self.state
            .received
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }
}

impl Drop for FakeUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The fake's routes, OpenAI-style and Azure-style paths alike, and the control routes.
pub fn router(state: Arc<FakeState>) -> Router {
    Router::new()
        .route("/_fake/script", post(control_script))
        .route("/_fake/received", get(control_received))
        .route("/_fake/reset", post(control_reset))
        .fallback(handle)
        .with_state(state)
}

impl FakeState {
    /// A control route was called: record from now on if the fake was started without it.
    fn start_recording(&self) {
        let _ =
            self.record
                .compare_exchange(0, CONTROL_RECORD, Ordering::Relaxed, Ordering::Relaxed);
    }

    /// The first queued answer for `path`, taken off the queue.
    fn take_scripted(&self, path: &str) -> Option<Scripted> {
        let mut script = self.script.lock().ok()?;
        let at = script
            .iter()
            .position(|s| s.path.as_deref().is_none_or(|p| path.ends_with(p)))?;
        script.remove(at)
    }
}

async fn control_script(State(state): State<Arc<FakeState>>, body: Bytes) -> Response {
    state.start_recording();
    let answers = match serde_json::from_slice::<ScriptBody>(&body) {
        Ok(ScriptBody::Many(many)) => many,
        Ok(ScriptBody::One(one)) => vec![*one],
        Err(e) => return error(400, &format!("bad script: {e}")),
    };
    for a in &answers {
        if a.body.is_some() == a.events.is_some() {
            return error(400, "bad script: each answer has either `body` or `events`");
        }
        if StatusCode::from_u16(a.status).is_err() {
            return error(400, &format!("bad script: status {}", a.status));
        }
    }
    match state.script.lock() {
        Ok(mut script) => {
            script.extend(answers);
            axum::Json(json!({"queued": script.len()})).into_response()
        }
        Err(_) => error(500, "script lock poisoned"),
    }
}

async fn control_received(State(state): State<Arc<FakeState>>) -> Response {
    state.start_recording();
    let received = state.received.lock().map(|r| r.clone()).unwrap_or_default();
    let list: Vec<Value> = received
        .into_iter()
        .map(|r| json!({"method": r.method, "path": r.path, "query": r.query, "body": r.body}))
        .collect();
    axum::Json(Value::Array(list)).into_response()
}

async fn control_reset(State(state): State<Arc<FakeState>>, body: Bytes) -> Response {
    let record = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(v) => match v.get("record") {
                None => None,
                Some(n) => match n.as_u64().and_then(|n| usize::try_from(n).ok()) {
                    Some(n) => Some(n),
                    None => return error(400, "`record` is a count of requests"),
                },
            },
            Err(_) => return error(400, "body is not JSON"),
        }
    };
    match record {
        Some(n) => state.record.store(n, Ordering::Relaxed),
        None => state.start_recording(),
    }
    if let Ok(mut s) = state.script.lock() {
        s.clear();
    }
    if let Ok(mut r) = state.received.lock() {
        r.clear();
    }
    axum::Json(json!({"reset": true})).into_response()
}

/// Keep `received` as the last `state.record` requests.
fn record(state: &FakeState, received: Received) {
    let keep = state.record.load(Ordering::Relaxed);
    if keep == 0 {
        return;
    }
    if let Ok(mut r) = state.received.lock() {
        if r.len() >= keep {
            let excess = r.len() + 1 - keep;
            r.drain(..excess);
        }
        r.push(received);
    }
}

/// A queued answer, exactly as scripted.
fn scripted(state: Arc<FakeState>, answer: Scripted) -> Response {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
    if let Some(events) = answer.events {
        let wire = events
            .into_iter()
            .map(|e| {
                let data = match e.data {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                (e.event.map(Cow::Owned), data)
            })
            .collect();
        let pacing = Pacing {
            delay: Duration::from_millis(answer.delay_ms),
            cut: answer.cut.then_some(At::End),
            ..Pacing::default()
        };
        let mut response = stream_events(state, wire, pacing);
        *response.status_mut() = status;
        return response;
    }
    let body = answer.body.unwrap_or(Value::Null);
    (status, axum::Json(body)).into_response()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Chat,
    Responses,
    Completions,
    Embeddings,
    Models,
    Model,
}

async fn handle(State(state): State<Arc<FakeState>>, request: Request) -> Response {
    let n = state.requests.fetch_add(1, Ordering::Relaxed);
    let method = request.method().to_string();
    let path = request.uri().path().to_string();
    let query = request.uri().query().unwrap_or("").to_string();
    let headers = request.headers().clone();
    let bytes = match axum::body::to_bytes(request.into_body(), 64 * 1024 * 1024).await {
        Ok(b) => b,
        Err(_) => return error(400, "cannot read body"),
    };
    let parsed: Option<Value> = if bytes.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        serde_json::from_slice(&bytes).ok()
    };
    record(
        &state,
        Received {
            method,
            path: path.clone(),
            query,
            headers,
            body: parsed.clone().unwrap_or(Value::Null),
        },
    );
    if let Some(answer) = state.take_scripted(&path) {
        return scripted(state, answer);
    }
    let kind = if path.ends_with("/chat/completions") {
        Kind::Chat
    } else if path.ends_with("/responses") {
        Kind::Responses
    } else if path.ends_with("/completions") {
        Kind::Completions
    } else if path.ends_with("/embeddings") {
        Kind::Embeddings
    } else if path.ends_with("/models") {
        Kind::Models
    } else if path.contains("/models/") {
        Kind::Model
    } else {
        return error(404, "unknown path");
    };
    let body: Value = if matches!(kind, Kind::Models | Kind::Model) {
        Value::Null
    } else {
        match parsed {
            Some(v) => v,
            None => return error(400, "body is not JSON"),
        }
    };
    let mut config = state.config.clone();
    let mut fail_status = 503;
    let mut retry_after = config.retry_after.clone();
    let mut tool_call: Option<(String, String)> = None;
    let mut echo_system = false;
    if let Some(o) = body.get("fake") {
        echo_system = o.get("echo").and_then(Value::as_str) == Some("system");
        if let Some(code) = o.get("fail_status").and_then(Value::as_u64) {
            fail_status = u16::try_from(code).unwrap_or(503);
        }
        if let Some(r) = o.get("retry_after").and_then(Value::as_str) {
            retry_after = Some(r.to_string());
        }
        if let Some(call) = o.get("tool_call") {
            let get = |k: &str| {
                call.get(k)
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            };
            tool_call = Some((get("name"), get("arguments")));
        }
        if let Some(f) = o
            .get("fault")
            .and_then(Value::as_str)
            .and_then(|f| f.parse().ok())
        {
            config.fault = f;
        }
        if let Some(r) = o.get("reply").and_then(Value::as_str) {
            config.reply = Some(r.to_string());
        }
        if let Some(c) = o.get("chunk_chars").and_then(Value::as_u64) {
            config.chunk_chars = usize::try_from(c).unwrap_or(1);
        }
        if let Some(Value::Array(at)) = o.get("split_at") {
            config.split_at = at
                .iter()
                .filter_map(Value::as_u64)
                .map(|n| n as usize)
                .collect();
        }
        if let Some(ms) = o.get("chunk_delay_ms").and_then(Value::as_u64) {
            config.chunk_delay = Duration::from_millis(ms);
        }
    }
    if !config.latency.is_zero() {
        tokio::time::sleep(config.latency).await;
    }
    match config.fault {
        Fault::Refuse => return refuse(),
        Fault::Timeout => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        Fault::Status(code) => {
            return with_retry_after(error(code, "injected fault"), retry_after.as_deref());
        }
        Fault::FailFirst(k) if n < k => {
            return with_retry_after(error(fail_status, "injected fault"), retry_after.as_deref());
        }
        _ => {}
    }
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("fake-model")
        .to_string();
    match kind {
        Kind::Models => {
            axum::Json(json!({"object": "list", "data": [{"id": "fake-model", "object": "model", "created": 0, "owned_by": "fake"}]}))
                .into_response()
        }
        Kind::Model => {
            let id = path.rsplit('/').next().unwrap_or("fake-model");
            axum::Json(json!({"id": id, "object": "model", "created": 0, "owned_by": "fake"}))
                .into_response()
        }
        Kind::Completions => {
            let prompt = match body.get("prompt") {
                Some(Value::String(p)) => p.clone(),
                Some(Value::Array(a)) => a
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join("\n"),
                _ => String::new(),
            };
            let reply = config.reply.clone().unwrap_or_else(|| format!("echo: {prompt}"));
            let usage = ((bytes.len() / 4) as u64, (reply.len() / 4).max(1) as u64);
            if body.get("stream").and_then(Value::as_bool) != Some(true) {
                return axum::Json(text_completion(&model, &reply, usage)).into_response();
            }
            let parts = if config.split_at.is_empty() {
                pieces(&reply, config.chunk_chars)
            } else {
                split_at(&reply, &config.split_at)
            };
            stream_events(state, completion_events(&model, parts), Pacing::of(&config))
        }
        Kind::Embeddings => {
            let inputs = match body.get("input") {
                Some(Value::Array(a)) => a.len(),
                _ => 1,
            };
            let data: Vec<Value> = (0..inputs)
                .map(|i| json!({"object": "embedding", "index": i, "embedding": [0.1, 0.2, 0.3]}))
                .collect();
            let tokens = bytes.len() / 4;
            axum::Json(json!({"object": "list", "data": data, "model": model,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}))
            .into_response()
        }
        Kind::Chat | Kind::Responses => {
            let echoed = if echo_system {
                system_text(&body)
            } else {
                body.as_object().map(last_user_text).unwrap_or_default()
            };
            let reply = config.reply.clone().unwrap_or_else(|| format!("echo: {echoed}"));
            let prompt_tokens = (bytes.len() / 4) as u64;
            let completion_tokens = (reply.len() / 4).max(1) as u64;
            let stream = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
            if let Some((name, arguments)) = tool_call {
                let usage = (prompt_tokens, (arguments.len() / 4).max(1) as u64);
                if !stream {
                    return axum::Json(if kind == Kind::Chat {
                        chat_tool_call(&model, &name, &arguments, usage)
                    } else {
                        response_tool_call(&model, &name, &arguments, usage, "completed")
                    })
                    .into_response();
                }
                let parts = if config.split_at.is_empty() {
                    pieces(&arguments, config.chunk_chars)
                } else {
                    split_at(&arguments, &config.split_at)
                };
                let events = if kind == Kind::Chat {
                    chat_tool_call_events(&model, &name, parts)
                } else {
                    responses_tool_call_events(&model, &name, &arguments, parts, usage)
                };
                return stream_events(state, events, Pacing::of(&config));
            }
            if !stream {
                let usage = (prompt_tokens, completion_tokens);
                return axum::Json(if kind == Kind::Chat {
                    chat_completion(&model, &reply, usage)
                } else {
                    response_object(&model, &reply, usage, "completed")
                })
                .into_response();
            }
            let include_usage = body.pointer("/stream_options/include_usage").and_then(Value::as_bool) == Some(true);
            let parts = if config.split_at.is_empty() {
                pieces(&reply, config.chunk_chars)
            } else {
                split_at(&reply, &config.split_at)
            };
            let events = if kind == Kind::Chat {
                chat_events(&model, parts, include_usage.then_some((prompt_tokens, completion_tokens)))
            } else {
                responses_events(&model, &reply, parts, (prompt_tokens, completion_tokens))
            };
            stream_events(state, events, Pacing::of(&config))
        }
    }
}

/// The system context of a chat or Responses request: its system and developer messages
/// (and the Responses API's `instructions`), one per line.
fn system_text(body: &Value) -> String {
    let text_of = content_text;
    let mut out: Vec<String> = Vec::new();
    if let Some(instructions) = body.get("instructions").and_then(Value::as_str) {
        out.push(instructions.to_string());
    }
    let items = body
        .get("messages")
        .or_else(|| body.get("input"))
        .and_then(Value::as_array);
    for m in items.into_iter().flatten() {
        if matches!(
            m.get("role").and_then(Value::as_str),
            Some("system" | "developer")
        ) {
            out.push(m.get("content").map(text_of).unwrap_or_default());
        }
    }
    out.join("\n")
}

fn refuse() -> Response {
    // An empty body with a broken framing: the client sees the connection close.
    let stream = futures_util::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::other("refused"))
    });
    Response::builder()
        .status(200)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| error(500, "cannot build response"))
}

fn with_retry_after(mut response: Response, value: Option<&str>) -> Response {
    if let Some(v) = value.and_then(|v| header::HeaderValue::from_str(v).ok()) {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
    response
}

fn error(status: u16, message: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body =
        json!({"error": {"message": message, "type": "fake_error", "param": null, "code": "fake"}});
    (status, axum::Json(body)).into_response()
}

fn chat_completion(model: &str, reply: &str, (p, c): (u64, u64)) -> Value {
    json!({
        "id": "chatcmpl-fake", "object": "chat.completion", "created": 0, "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop", "logprobs": null}],
        "usage": {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c},
        "system_fingerprint": "fake"
    })
}

/// The response of `response.created`: in progress, no output yet (as OpenAI sends it; the
/// SDK's stream helper refuses an output item announced twice).
fn response_created(model: &str) -> Value {
    let mut response = response_object(model, "", (0, 0), "in_progress");
    response["output"] = json!([]);
    response
}

fn response_object(model: &str, reply: &str, (p, c): (u64, u64), status: &str) -> Value {
    json!({
        "id": "resp_fake", "object": "response", "created_at": 0, "status": status, "model": model,
        "output": [{"id": "msg_fake", "type": "message", "role": "assistant", "status": "completed",
            "content": [{"type": "output_text", "text": reply, "annotations": []}]}],
        "usage": {"input_tokens": p, "output_tokens": c, "total_tokens": p + c}
    })
}

fn text_completion(model: &str, reply: &str, (p, c): (u64, u64)) -> Value {
    json!({
        "id": "cmpl-fake", "object": "text_completion", "created": 0, "model": model,
        "choices": [{"index": 0, "text": reply, "finish_reason": "stop", "logprobs": null}],
        "usage": {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}
    })
}

fn completion_events(model: &str, parts: Vec<String>) -> Vec<Wire> {
    let chunk = |text: &str, finish: Value| {
        json!({"id": "cmpl-fake", "object": "text_completion", "created": 0, "model": model,
            "choices": [{"index": 0, "text": text, "finish_reason": finish, "logprobs": null}]})
        .to_string()
    };
    let mut events: Vec<Wire> = parts
        .iter()
        .map(|piece| (None, chunk(piece, Value::Null)))
        .collect();
    events.push((None, chunk("", json!("stop"))));
    events.push((None, "[DONE]".into()));
    events
}

fn chat_tool_call(model: &str, name: &str, arguments: &str, (p, c): (u64, u64)) -> Value {
    json!({
        "id": "chatcmpl-fake", "object": "chat.completion", "created": 0, "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": null, "tool_calls": [
            {"id": "call_fake", "type": "function", "function": {"name": name, "arguments": arguments}}
        ]}, "finish_reason": "tool_calls", "logprobs": null}],
        "usage": {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}
    })
}

fn function_call_item(name: &str, arguments: &str, status: &str) -> Value {
    json!({"id": "fc_fake", "type": "function_call", "status": status, "call_id": "call_fake",
        "name": name, "arguments": arguments})
}

fn response_tool_call(
    model: &str,
    name: &str,
    arguments: &str,
    (p, c): (u64, u64),
    status: &str,
) -> Value {
    json!({
        "id": "resp_fake", "object": "response", "created_at": 0, "status": status, "model": model,
        "output": [function_call_item(name, arguments, "completed")],
        "usage": {"input_tokens": p, "output_tokens": c, "total_tokens": p + c}
    })
}

fn chat_tool_call_events(model: &str, name: &str, parts: Vec<String>) -> Vec<Wire> {
    let chunk = |delta: Value, finish: Value| {
        json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0, "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        .to_string()
    };
    let mut events = vec![(
        None,
        chunk(
            json!({"role": "assistant", "content": null, "tool_calls": [{"index": 0, "id": "call_fake",
                "type": "function", "function": {"name": name, "arguments": ""}}]}),
            Value::Null,
        ),
    )];
    for piece in parts {
        events.push((
            None,
            chunk(
                json!({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}),
                Value::Null,
            ),
        ));
    }
    events.push((None, chunk(json!({}), json!("tool_calls"))));
    events.push((None, "[DONE]".into()));
    events
}

fn responses_tool_call_events(
    model: &str,
    name: &str,
    arguments: &str,
    parts: Vec<String>,
    usage: (u64, u64),
) -> Vec<Wire> {
    let mut ev = responses_sequencer();
    let mut events = vec![
        ev(
            "response.created",
            json!({"response": response_created(model)}),
        ),
        ev(
            "response.output_item.added",
            json!({"output_index": 0, "item": function_call_item(name, "", "in_progress")}),
        ),
    ];
    for piece in parts {
        events.push(ev(
            "response.function_call_arguments.delta",
            json!({"item_id": "fc_fake", "output_index": 0, "delta": piece}),
        ));
    }
    events.push(ev(
        "response.function_call_arguments.done",
        json!({"item_id": "fc_fake", "output_index": 0, "arguments": arguments}),
    ));
    events.push(ev(
        "response.output_item.done",
        json!({"output_index": 0, "item": function_call_item(name, arguments, "completed")}),
    ));
    events.push(ev(
        "response.completed",
        json!({"response": response_tool_call(model, name, arguments, usage, "completed")}),
    ));
    events
}

/// Split `text` into pieces of `n` characters (never inside a character).
pub fn pieces(text: &str, n: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    chars.chunks(n.max(1)).map(|c| c.iter().collect()).collect()
}

/// Split `text` at the given character positions.
pub fn split_at(text: &str, positions: &[usize]) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut last = 0;
    for &p in positions {
        let p = p.min(chars.len());
        if p > last {
            out.push(chars[last..p].iter().collect());
            last = p;
        }
    }
    out.push(chars[last..].iter().collect());
    out
}

/// One SSE event: its name, if any, and its data.
type Wire = (Option<Cow<'static, str>>, String);

fn chat_events(model: &str, parts: Vec<String>, usage: Option<(u64, u64)>) -> Vec<Wire> {
    let chunk = |delta: Value, finish: Value| {
        json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0, "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        .to_string()
    };
    let mut events = vec![(
        None,
        chunk(json!({"role": "assistant", "content": ""}), Value::Null),
    )];
    for piece in parts {
        events.push((None, chunk(json!({"content": piece}), Value::Null)));
    }
    events.push((None, chunk(json!({}), json!("stop"))));
    if let Some((p, c)) = usage {
        events.push((None, json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0, "model": model,
            "choices": [], "usage": {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}}).to_string()));
    }
    events.push((None, "[DONE]".into()));
    events
}

/// Builds Responses API events: each gets its `type` and the next `sequence_number`.
fn responses_sequencer() -> impl FnMut(&'static str, Value) -> Wire {
    let mut seq = 0u64;
    move |kind, mut body| {
        if let Some(o) = body.as_object_mut() {
            o.insert("type".into(), kind.into());
            o.insert("sequence_number".into(), seq.into());
        }
        seq += 1;
        (Some(Cow::Borrowed(kind)), body.to_string())
    }
}

fn responses_events(model: &str, reply: &str, parts: Vec<String>, usage: (u64, u64)) -> Vec<Wire> {
    let mut ev = responses_sequencer();
    let mut events = vec![
        ev(
            "response.created",
            json!({"response": response_created(model)}),
        ),
        ev(
            "response.output_item.added",
            json!({"output_index": 0, "item": {"id": "msg_fake", "type": "message", "role": "assistant", "content": []}}),
        ),
        ev(
            "response.content_part.added",
            json!({"item_id": "msg_fake", "output_index": 0, "content_index": 0, "part": {"type": "output_text", "text": ""}}),
        ),
    ];
    for piece in parts {
        events.push(ev(
            "response.output_text.delta",
            json!({"item_id": "msg_fake", "output_index": 0, "content_index": 0, "delta": piece}),
        ));
    }
    events.push(ev(
        "response.output_text.done",
        json!({"item_id": "msg_fake", "output_index": 0, "content_index": 0, "text": reply}),
    ));
    events.push(ev("response.content_part.done", json!({"item_id": "msg_fake", "output_index": 0, "content_index": 0, "part": {"type": "output_text", "text": reply}})));
    events.push(ev("response.output_item.done", json!({"output_index": 0, "item": {"id": "msg_fake", "type": "message", "role": "assistant", "content": [{"type": "output_text", "text": reply}]}})));
    events.push(ev(
        "response.completed",
        json!({"response": response_object(model, reply, usage, "completed")}),
    ));
    events
}

/// Counts an open stream for as long as it lives.
struct OpenStream(Arc<FakeState>);

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.open_streams.fetch_sub(1, Ordering::Relaxed);
    }
}

/// How a stream is sent: pacing and injected faults.
#[derive(Debug, Clone, Copy, Default)]
struct Pacing {
    /// Delay between events.
    delay: Duration,
    /// Break the connection here instead of sending the rest.
    cut: Option<At>,
    /// Send nothing more from here on, keeping the connection open.
    stall: Option<At>,
    /// Send a malformed event third.
    malformed: bool,
}

/// A place in a stream of events.
#[derive(Debug, Clone, Copy)]
enum At {
    Middle,
    End,
}

impl At {
    fn index(self, events: usize) -> usize {
        match self {
            Self::Middle => events / 2,
            Self::End => events,
        }
    }
}

impl Pacing {
    /// The fake's own answers: faults at the middle of the stream.
    fn of(config: &FakeConfig) -> Self {
        Self {
            delay: config.chunk_delay,
            cut: (config.fault == Fault::Cut).then_some(At::Middle),
            stall: (config.fault == Fault::Stall).then_some(At::Middle),
            malformed: config.fault == Fault::Malformed,
        }
    }
}

fn stream_events(state: Arc<FakeState>, events: Vec<Wire>, pacing: Pacing) -> Response {
    state.open_streams.fetch_add(1, Ordering::Relaxed);
    let guard = OpenStream(state);
    let cut_at = pacing.cut.map(|at| at.index(events.len()));
    let stall_at = pacing.stall.map(|at| at.index(events.len()));
    let malformed = pacing.malformed;
    let delay = pacing.delay;
    let stream = futures_util::stream::unfold(
        (0usize, events, guard),
        move |(i, events, guard)| async move {
            if i > 0 && !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            if stall_at == Some(i) {
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
            if cut_at == Some(i) {
                return Some((
                    Err(std::io::Error::other("cut")),
                    (usize::MAX, events, guard),
                ));
            }
            if malformed && i == 2 {
                let bad = Bytes::from_static(b"data: {\"choices\": [ this is not json\n\n");
                return Some((Ok(bad), (usize::MAX, events, guard)));
            }
            let (name, data) = events.get(i)?;
            let mut wire = Vec::with_capacity(data.len() + 32);
            sse_event(name.as_deref(), data, &mut wire);
            Some((
                Ok::<Bytes, std::io::Error>(Bytes::from(wire)),
                (i + 1, events, guard),
            ))
        },
    );
    Response::builder()
        .status(200)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| error(500, "cannot build response"))
}

fn no_delay(stream: &mut tokio::net::TcpStream) {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(error = %e, "cannot set TCP_NODELAY");
    }
}

/// One server-sent event on the wire: `event:` when named, a `data:` line per line of data.
fn sse_event(event: Option<&str>, data: &str, out: &mut Vec<u8>) {
    if let Some(name) = event {
        out.extend_from_slice(format!("event: {name}\n").as_bytes());
    }
    for line in data.split('\n') {
        out.extend_from_slice(format!("data: {line}\n").as_bytes());
    }
    out.push(b'\n');
}

/// The text of a message's content: a string, or the `text` of each part joined by spaces.
fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

/// What the fake echoes: the last user message (chat, Responses items) or a string `input`.
fn last_user_text(request: &serde_json::Map<String, Value>) -> String {
    let is_user = |m: &&Value| m.get("role").and_then(Value::as_str) == Some("user");
    let last_user = |items: &Vec<Value>| {
        let message = items.iter().rev().find(is_user);
        message
            .and_then(|m| m.get("content"))
            .map(content_text)
            .unwrap_or_default()
    };
    match (request.get("messages"), request.get("input")) {
        (Some(Value::Array(messages)), _) => last_user(messages),
        (_, Some(Value::String(s))) => s.clone(),
        (_, Some(Value::Array(items))) => last_user(items),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn start(config: FakeConfig) -> (FakeUpstream, reqwest::Client) {
        let fake = FakeUpstream::start("127.0.0.1:0".parse().unwrap(), config)
            .await
            .unwrap();
        (fake, reqwest::Client::new())
    }

    fn url(fake: &FakeUpstream, path: &str) -> String {
        format!("http://{}{path}", fake.addr)
    }

    async fn post(client: &reqwest::Client, url: String, body: Value) -> (u16, String) {
        let r = client.post(url).json(&body).send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    async fn received(fake: &FakeUpstream, client: &reqwest::Client) -> Vec<Value> {
        let r = client
            .get(url(fake, "/_fake/received"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        serde_json::from_str::<Vec<Value>>(&r.text().await.unwrap()).unwrap()
    }

    fn chat(stream: bool) -> Value {
        json!({"model": "m", "stream": stream, "messages": [{"role": "user", "content": "hi"}]})
    }

    #[tokio::test]
    async fn a_scripted_body_is_sent_as_is_once_then_the_fake_answers_as_before() {
        let (fake, client) = start(FakeConfig::default()).await;
        let answer =
            json!({"id": "x", "choices": [{"message": {"refusal": "AKIA"}}], "extra": [1, 2]});
        let (status, text) = post(
            &client,
            url(&fake, "/_fake/script"),
            json!({"status": 200, "body": answer}),
        )
        .await;
        assert_eq!((status, text.as_str()), (200, r#"{"queued":1}"#));
        let (status, text) = post(&client, url(&fake, "/v1/chat/completions"), chat(false)).await;
        assert_eq!(status, 200);
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), answer);
        let (_, text) = post(&client, url(&fake, "/v1/chat/completions"), chat(false)).await;
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["choices"][0]["message"]["content"], "echo: hi");
    }

    #[tokio::test]
    async fn scripted_events_are_sent_exactly_in_order_with_their_status() {
        let (fake, client) = start(FakeConfig::default()).await;
        let script = json!([
            {"status": 400, "body": {"error": {"message": "no"}}},
            {"path": "/responses", "events": [
                {"event": "response.created", "data": {"type": "response.created"}},
                {"data": "not json"},
            ]},
        ]);
        let (status, text) = post(&client, url(&fake, "/_fake/script"), script).await;
        assert_eq!((status, text.as_str()), (200, r#"{"queued":2}"#));
        // The path-bound answer is not taken by a chat request.
        let (status, text) = post(&client, url(&fake, "/v1/chat/completions"), chat(true)).await;
        assert_eq!(
            (status, text.as_str()),
            (400, r#"{"error":{"message":"no"}}"#)
        );
        let (status, text) = post(&client, url(&fake, "/v1/responses"), chat(true)).await;
        assert_eq!(status, 200);
        assert_eq!(
            text,
            "event: response.created\ndata: {\"type\":\"response.created\"}\n\ndata: not json\n\n"
        );
    }

    #[tokio::test]
    async fn a_scripted_stream_may_end_by_breaking_the_connection() {
        let (fake, client) = start(FakeConfig::default()).await;
        let script = json!({"events": [{"data": "{}"}], "cut": true, "delay_ms": 1});
        post(&client, url(&fake, "/_fake/script"), script).await;
        let r = client
            .post(url(&fake, "/v1/chat/completions"))
            .json(&chat(true))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.text().await.is_err(), "the body must end with an error");
    }

    #[tokio::test]
    async fn received_lists_method_path_query_and_body_and_reset_forgets() {
        // Started without recording, as `demarc fake-upstream` is: a control call turns it on.
        let (fake, client) = start(FakeConfig {
            record: 0,
            ..FakeConfig::default()
        })
        .await;
        post(&client, url(&fake, "/v1/chat/completions"), chat(false)).await;
        assert!(received(&fake, &client).await.is_empty());
        post(&client, url(&fake, "/v1/chat/completions?x=1"), chat(false)).await;
        client.get(url(&fake, "/v1/models")).send().await.unwrap();
        let got = received(&fake, &client).await;
        assert_eq!(got.len(), 2);
        assert_eq!(got[0]["method"], "POST");
        assert_eq!(got[0]["path"], "/v1/chat/completions");
        assert_eq!(got[0]["query"], "x=1");
        assert_eq!(got[0]["body"], chat(false));
        assert_eq!(got[1]["method"], "GET");
        assert_eq!(got[1]["body"], Value::Null);
        post(&client, url(&fake, "/_fake/script"), json!({"body": {}})).await;
        let (status, _) = post(&client, url(&fake, "/_fake/reset"), json!({"record": 1})).await;
        assert_eq!(status, 200);
        assert!(received(&fake, &client).await.is_empty());
        // The script is gone; one request is kept.
        post(&client, url(&fake, "/v1/embeddings"), json!({"input": "a"})).await;
        let (_, text) = post(&client, url(&fake, "/v1/chat/completions"), chat(false)).await;
        assert!(text.contains("echo: hi"), "{text}");
        let got = received(&fake, &client).await;
        assert_eq!(got.len(), 1);
        assert_eq!(got[0]["path"], "/v1/chat/completions");
    }

    #[tokio::test]
    async fn bad_scripts_are_refused_and_queue_nothing() {
        let (fake, client) = start(FakeConfig::default()).await;
        for bad in [
            json!({"status": 200}),
            json!({"body": {}, "events": []}),
            json!({"body": {}, "status": 99}),
            json!({"body": {}, "unknown": 1}),
            json!({"events": [{"event": "x"}]}),
            json!([{"body": {}}, "nonsense"]),
        ] {
            let (status, text) = post(&client, url(&fake, "/_fake/script"), bad.clone()).await;
            assert_eq!(status, 400, "{bad}: {text}");
        }
        let (status, text) = post(&client, url(&fake, "/_fake/reset"), json!({"record": -1})).await;
        assert_eq!(status, 400, "{text}");
        let (_, text) = post(&client, url(&fake, "/v1/chat/completions"), chat(false)).await;
        assert!(text.contains("echo: hi"), "{text}");
    }

    #[tokio::test]
    async fn legacy_completions_and_one_model_are_answered() {
        let (fake, client) = start(FakeConfig::default()).await;
        let (status, text) = post(
            &client,
            url(&fake, "/v1/completions"),
            json!({"model": "m", "prompt": "say hi"}),
        )
        .await;
        assert_eq!(status, 200);
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["choices"][0]["text"], "echo: say hi");
        let (_, wire) = post(
            &client,
            url(&fake, "/v1/completions"),
            json!({"model": "m", "prompt": ["say", "hi"], "stream": true}),
        )
        .await;
        let text: String = wire
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .filter_map(|d| serde_json::from_str::<Value>(d).ok())
            .filter_map(|v| v["choices"][0]["text"].as_str().map(str::to_string))
            .collect();
        assert_eq!(text, "echo: say\nhi");
        assert!(wire.ends_with("data: [DONE]\n\n"));
        let r = client
            .get(url(&fake, "/v1/models/gpt-x"))
            .send()
            .await
            .unwrap();
        let v: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
        assert_eq!(v["id"], "gpt-x");
    }
}
