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

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::serve::ListenerExt;

use crate::server::no_delay;
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

impl std::str::FromStr for Fault {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
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
                    Self::FailFirst(n.parse().map_err(|_| format!("bad count in `{other}`"))?)
                } else if let Ok(code) = other.parse::<u16>() {
                    if !(400..600).contains(&code) {
                        return Err(format!("status `{code}` is not an error status"));
                    }
                    Self::Status(code)
                } else {
                    return Err(format!(
                        "unknown fault `{other}` (none, refuse, timeout, cut, stall, malformed, 429, 500, 503, fail-first-N)"
                    ));
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

/// The fake's routes, OpenAI-style and Azure-style paths alike.
pub fn router(state: Arc<FakeState>) -> Router {
    Router::new().fallback(handle).with_state(state)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Chat,
    Responses,
    Embeddings,
    Models,
}

async fn handle(State(state): State<Arc<FakeState>>, request: Request) -> Response {
    let n = state.requests.fetch_add(1, Ordering::Relaxed);
    let path = request.uri().path().to_string();
    let query = request.uri().query().unwrap_or("").to_string();
    let kind = if path.ends_with("/chat/completions") {
        Kind::Chat
    } else if path.ends_with("/responses") {
        Kind::Responses
    } else if path.ends_with("/embeddings") {
        Kind::Embeddings
    } else if path.ends_with("/models") {
        Kind::Models
    } else {
        return error(404, "unknown path");
    };
    let headers = request.headers().clone();
    let bytes = match axum::body::to_bytes(request.into_body(), 64 * 1024 * 1024).await {
        Ok(b) => b,
        Err(_) => return error(400, "cannot read body"),
    };
    let body: Value = if kind == Kind::Models {
        Value::Null
    } else {
        match serde_json::from_slice(&bytes) {
            Ok(v) => v,
            Err(_) => return error(400, "body is not JSON"),
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
    if config.record > 0 {
        if let Ok(mut r) = state.received.lock() {
            if r.len() >= config.record {
                r.remove(0);
            }
            r.push(Received {
                path,
                query,
                headers,
                body: body.clone(),
            });
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
                body.as_object().map(crate::openai::last_user_text).unwrap_or_default()
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
                return stream_events(state, events, config);
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
            stream_events(state, events, config)
        }
    }
}

/// The system context of a chat or Responses request: its system and developer messages
/// (and the Responses API's `instructions`), one per line.
fn system_text(body: &Value) -> String {
    let text_of = crate::openai::content_text;
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

fn response_object(model: &str, reply: &str, (p, c): (u64, u64), status: &str) -> Value {
    json!({
        "id": "resp_fake", "object": "response", "created_at": 0, "status": status, "model": model,
        "output": [{"id": "msg_fake", "type": "message", "role": "assistant", "status": "completed",
            "content": [{"type": "output_text", "text": reply, "annotations": []}]}],
        "usage": {"input_tokens": p, "output_tokens": c, "total_tokens": p + c}
    })
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
            json!({"response": response_object(model, "", (0, 0), "in_progress")}),
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

type Wire = (Option<&'static str>, String);

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
        (Some(kind), body.to_string())
    }
}

fn responses_events(model: &str, reply: &str, parts: Vec<String>, usage: (u64, u64)) -> Vec<Wire> {
    let mut ev = responses_sequencer();
    let mut events = vec![
        ev(
            "response.created",
            json!({"response": response_object(model, "", (0, 0), "in_progress")}),
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

fn stream_events(state: Arc<FakeState>, events: Vec<Wire>, config: FakeConfig) -> Response {
    state.open_streams.fetch_add(1, Ordering::Relaxed);
    let guard = OpenStream(state);
    let cut_at = match config.fault {
        Fault::Cut => Some(events.len() / 2),
        _ => None,
    };
    let stall_at = match config.fault {
        Fault::Stall => Some(events.len() / 2),
        _ => None,
    };
    let malformed = config.fault == Fault::Malformed;
    let stream =
        futures_util::stream::unfold((0usize, events, guard), move |(i, events, guard)| {
            let delay = config.chunk_delay;
            async move {
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
                crate::sse::encode(*name, data, &mut wire);
                Some((
                    Ok::<Bytes, std::io::Error>(Bytes::from(wire)),
                    (i + 1, events, guard),
                ))
            }
        });
    Response::builder()
        .status(200)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| error(500, "cannot build response"))
}
