//! Where text lives in OpenAI-shaped requests and responses, and the filter every streamed
//! event passes through. Bodies stay `serde_json::Value` so fields the gateway does not know
//! pass through untouched; only the text fields are read and rewritten.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::policy::{Action, Blocked, OutputPipeline, Policy, Vault, Verdicts};
use crate::sse;
use crate::upstream::Endpoint;

/// Token counts reported by the upstream.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub prompt: u64,
    pub completion: u64,
}

impl Usage {
    /// Read `usage` in either naming (chat/embeddings or Responses API).
    pub fn from_value(usage: Option<&Value>) -> Option<Self> {
        let usage = usage?.as_object()?;
        let get = |a: &str, b: &str| {
            usage
                .get(a)
                .or_else(|| usage.get(b))
                .and_then(Value::as_u64)
                .unwrap_or(0)
        };
        Some(Self {
            prompt: get("prompt_tokens", "input_tokens"),
            completion: get("completion_tokens", "output_tokens"),
        })
    }

    pub fn total(self) -> u64 {
        self.prompt + self.completion
    }
}

/// Scan every user and tool text of a request through the input policy, rewriting redacted
/// text in place. `Err` names the detector that blocked it.
pub fn scan_request(
    endpoint: Endpoint,
    body: &mut Map<String, Value>,
    policy: &dyn Policy,
    vault: &mut Vault,
    verdicts: &mut Verdicts,
) -> Result<(), Blocked> {
    scan_request_with(endpoint, body, policy, vault, verdicts, None)
}

/// [`scan_request`], also appending each scanned text as it leaves for the upstream (after
/// redaction) to `prompt`, one line apart.
pub fn scan_request_with(
    endpoint: Endpoint,
    body: &mut Map<String, Value>,
    policy: &dyn Policy,
    vault: &mut Vault,
    verdicts: &mut Verdicts,
    mut prompt: Option<&mut String>,
) -> Result<(), Blocked> {
    let mut scan = |value: &mut Value| -> Result<(), Blocked> {
        let Value::String(text) = value else {
            return Ok(());
        };
        let result = if endpoint == Endpoint::Embeddings {
            policy.scan_embedding_input(text, vault)
        } else {
            policy.scan_input(text, vault)
        };
        verdicts.record_input(&result);
        if result.action == Action::Block {
            let detector = result
                .hits
                .iter()
                .find(|h| h.action == Action::Block)
                .map_or_else(|| "policy".to_string(), |h| h.detector.clone());
            return Err(Blocked { detector });
        }
        if let Some(rewritten) = result.rewritten {
            *text = rewritten;
        }
        if let Some(prompt) = prompt.as_deref_mut() {
            if !prompt.is_empty() {
                prompt.push('\n');
            }
            prompt.push_str(text);
        }
        Ok(())
    };
    match endpoint {
        Endpoint::ChatCompletions => {
            let Some(Value::Array(messages)) = body.get_mut("messages") else {
                return Ok(());
            };
            for message in messages {
                let role = message.get("role").and_then(Value::as_str).unwrap_or("");
                if !matches!(role, "user" | "tool" | "function") {
                    continue;
                }
                if let Some(content) = message.get_mut("content") {
                    for_each_text(content, &["text"], &mut scan)?;
                }
            }
        }
        Endpoint::Responses => match body.get_mut("input") {
            Some(input @ Value::String(_)) => scan(input)?,
            Some(Value::Array(items)) => {
                for item in items {
                    let role = item.get("role").and_then(Value::as_str);
                    let kind = item.get("type").and_then(Value::as_str);
                    if kind == Some("function_call_output") {
                        if let Some(output) = item.get_mut("output") {
                            for_each_text(output, &["input_text", "text"], &mut scan)?;
                        }
                    } else if role == Some("user") || role == Some("tool") {
                        if let Some(content) = item.get_mut("content") {
                            for_each_text(content, &["input_text", "text"], &mut scan)?;
                        }
                    }
                }
            }
            _ => {}
        },
        Endpoint::Embeddings => match body.get_mut("input") {
            Some(input @ Value::String(_)) => scan(input)?,
            Some(Value::Array(items)) => {
                for item in items {
                    scan(item)?;
                }
            }
            _ => {}
        },
        Endpoint::Models => {}
    }
    Ok(())
}

/// Apply `f` to a content value: a string, or an array of parts whose `type` is one of
/// `part_types` (their `text` field).
fn for_each_text(
    content: &mut Value,
    part_types: &[&str],
    f: &mut impl FnMut(&mut Value) -> Result<(), Blocked>,
) -> Result<(), Blocked> {
    match content {
        Value::String(_) => f(content),
        Value::Array(parts) => {
            for part in parts {
                let kind = part.get("type").and_then(Value::as_str).unwrap_or("");
                if part_types.contains(&kind) {
                    if let Some(text) = part.get_mut("text") {
                        f(text)?;
                    }
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Scan and restore the text of a complete (non-streamed) response in place.
pub fn filter_response(
    endpoint: Endpoint,
    body: &mut Value,
    policy: &dyn Policy,
    vault: &Arc<Vault>,
    verdicts: &mut Verdicts,
) -> Result<(), Blocked> {
    if !policy.scans_output() && vault.is_empty() {
        return Ok(());
    }
    let mut filter = |value: &mut Value| -> Result<(), Blocked> {
        let Value::String(text) = value else {
            return Ok(());
        };
        let mut pipeline = OutputPipeline::new(policy, vault.clone());
        let mut out = String::with_capacity(text.len());
        let result = pipeline
            .push(text, &mut out)
            .and_then(|()| pipeline.finish(&mut out));
        let (hits, redactions) = pipeline.take_hits();
        record_output(verdicts, &hits, redactions, result.is_err());
        result?;
        *text = out;
        Ok(())
    };
    match endpoint {
        Endpoint::ChatCompletions => {
            if let Some(Value::Array(choices)) = body.get_mut("choices") {
                for choice in choices {
                    let Some(message) = choice.get_mut("message") else {
                        continue;
                    };
                    if let Some(content) = message.get_mut("content") {
                        filter(content)?;
                    }
                    // Tool-call arguments are output too: each goes through the policy alone.
                    if let Some(Value::Array(calls)) = message.get_mut("tool_calls") {
                        for call in calls {
                            if let Some(arguments) = call.pointer_mut("/function/arguments") {
                                filter(arguments)?;
                            }
                        }
                    }
                    if let Some(arguments) = message.pointer_mut("/function_call/arguments") {
                        filter(arguments)?;
                    }
                }
            }
        }
        Endpoint::Responses => {
            if let Some(Value::Array(items)) = body.get_mut("output") {
                for item in items {
                    if item.get("type").and_then(Value::as_str) == Some("function_call") {
                        if let Some(arguments) = item.get_mut("arguments") {
                            filter(arguments)?;
                        }
                    }
                    if let Some(Value::Array(parts)) = item.get_mut("content") {
                        for part in parts {
                            if part.get("type").and_then(Value::as_str) == Some("output_text") {
                                if let Some(text) = part.get_mut("text") {
                                    filter(text)?;
                                }
                            }
                        }
                    }
                }
            }
        }
        Endpoint::Embeddings | Endpoint::Models => {}
    }
    Ok(())
}

/// Add the held-back end of a streamed tool call's (or legacy function call's) arguments to a
/// chat delta; clients concatenate argument fragments of the same call.
fn add_tool_tail(delta: &mut Map<String, Value>, key: u64, tail: String) {
    if key == ARGUMENTS_KEY {
        match delta.get_mut("function_call") {
            Some(Value::Object(call)) => match call.get_mut("arguments") {
                Some(Value::String(arguments)) => arguments.push_str(&tail),
                _ => {
                    call.insert("arguments".into(), Value::String(tail));
                }
            },
            _ => {
                delta.insert("function_call".into(), json!({"arguments": tail}));
            }
        }
        return;
    }
    let entry = json!({"index": key - TOOL_KEY, "function": {"arguments": tail}});
    match delta.get_mut("tool_calls") {
        Some(Value::Array(calls)) => calls.push(entry),
        _ => {
            delta.insert("tool_calls".into(), Value::Array(vec![entry]));
        }
    }
}

fn record_output(
    verdicts: &mut Verdicts,
    hits: &[crate::policy::Hit],
    redactions: u32,
    blocked: bool,
) {
    let action = if blocked {
        Action::Block
    } else {
        hits.iter().map(|h| h.action).max().unwrap_or(Action::Allow)
    };
    verdicts.output = verdicts.output.max(Some(action));
    verdicts.merge(hits, redactions);
}

/// Why a stream ended early.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEnd {
    /// The output policy blocked the rest of the output.
    Blocked(String),
    /// The upstream sent something that is not valid SSE/JSON.
    Malformed(&'static str),
}

/// The second half of the pipeline key of a chat choice's tool call `i` is `TOOL_KEY + i`
/// (its content is 0); that of its legacy `function_call`'s arguments, and of a Responses
/// function call's arguments, is `ARGUMENTS_KEY`.
const TOOL_KEY: u64 = 1;
const ARGUMENTS_KEY: u64 = u64::MAX;

/// Rewrites a streamed response event by event: text goes through one output pipeline per
/// choice (chat) or content part (Responses API), and tool-call arguments through one per call;
/// what a pipeline holds back is released in order, and nothing it blocks is ever encoded.
pub struct StreamFilter {
    endpoint: Endpoint,
    policy: Arc<dyn Policy>,
    vault: Arc<Vault>,
    pipelines: BTreeMap<(u64, u64), OutputPipeline>,
    /// Text released so far per Responses content part, to rewrite the `done` events.
    released: BTreeMap<(u64, u64), String>,
    /// The last chat chunk's envelope (id, model, ...), to build a flush chunk.
    last_chunk: Option<Map<String, Value>>,
    pub usage: Option<Usage>,
    pub verdicts: Verdicts,
    pub saw_done: bool,
    text: String,
    /// Nothing to scan or restore: events pass through after a validity check.
    pass_through: bool,
    /// A text-only event (merged with those that followed it in the same batch), not yet scanned.
    held: Option<Held>,
    /// The last text-only event that arrived through a full parse.
    template: Option<Template>,
}

struct Held {
    key: (u64, u64),
    envelope: Map<String, Value>,
    text: String,
    event: Option<String>,
}

/// A text-only event in wire form, split around its text: an event that matches it but for a
/// JSON string in that place is the same event with other text.
struct Template {
    key: (u64, u64),
    event: Option<String>,
    /// The data before and after the text's JSON string literal.
    prefix: String,
    suffix: String,
    envelope: Map<String, Value>,
}

impl Template {
    /// The template of `event`, whose `field` holds `text`; `None` where the field's place is
    /// ambiguous (the name occurs more than once in the data).
    fn new(
        event: &sse::Event,
        field: &str,
        key: (u64, u64),
        text: &str,
        envelope: &Map<String, Value>,
    ) -> Option<Self> {
        let data = event.data.as_str();
        let name = format!("\"{field}\":");
        let mut places = data.match_indices(&name);
        let (at, _) = places.next()?;
        if places.next().is_some() {
            return None;
        }
        let after = &data[at + name.len()..];
        let start = data.len() - after.trim_start().len();
        let end = start + string_literal_len(&data[start..])?;
        if serde_json::from_str::<String>(&data[start..end]).ok()? != text {
            return None;
        }
        Some(Self {
            key,
            event: event.event.clone(),
            prefix: data[..start].to_string(),
            suffix: data[end..].to_string(),
            envelope: envelope.clone(),
        })
    }

    /// The text of `event` if it matches the template.
    fn text_of(&self, event: &sse::Event) -> Option<String> {
        if event.event != self.event {
            return None;
        }
        let middle = event
            .data
            .strip_prefix(self.prefix.as_str())?
            .strip_suffix(self.suffix.as_str())?;
        // Exactly one JSON string (and nothing else) keeps the event's shape the template's.
        serde_json::from_str::<String>(middle).ok()
    }
}

/// The length of the JSON string literal `s` starts with (quotes included).
fn string_literal_len(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    if bytes.first() != Some(&b'"') {
        return None;
    }
    let mut i = 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

impl StreamFilter {
    pub fn new(endpoint: Endpoint, policy: Arc<dyn Policy>, vault: Arc<Vault>) -> Self {
        let pass_through = !policy.scans_output() && vault.is_empty();
        let mut filter = Self::with(endpoint, policy, vault);
        filter.pass_through = pass_through;
        filter
    }

    fn with(endpoint: Endpoint, policy: Arc<dyn Policy>, vault: Arc<Vault>) -> Self {
        Self {
            endpoint,
            policy,
            vault,
            pipelines: BTreeMap::new(),
            released: BTreeMap::new(),
            last_chunk: None,
            usage: None,
            verdicts: Verdicts::default(),
            saw_done: false,
            text: String::new(),
            pass_through: false,
            held: None,
            template: None,
        }
    }

    fn pipeline(&mut self, key: (u64, u64)) -> &mut OutputPipeline {
        let (policy, vault) = (&self.policy, &self.vault);
        self.pipelines
            .entry(key)
            .or_insert_with(|| OutputPipeline::new(policy.as_ref(), vault.clone()))
    }

    /// Push `chunk` (or finish when `None`) through the pipeline for `key`; the released text
    /// is left in `self.text`.
    fn run(&mut self, key: (u64, u64), chunk: Option<&str>) -> Result<(), StreamEnd> {
        let mut out = std::mem::take(&mut self.text);
        out.clear();
        let pipeline = self.pipeline(key);
        let result = match chunk {
            Some(c) => pipeline.push(c, &mut out),
            None => pipeline.finish(&mut out),
        };
        let (hits, redactions) = pipeline.take_hits();
        if chunk.is_none() {
            self.pipelines.remove(&key);
        }
        record_output(&mut self.verdicts, &hits, redactions, result.is_err());
        self.text = out;
        result.map_err(|b| StreamEnd::Blocked(b.detector))
    }

    /// Handle one upstream event, appending what the client gets to `out`.
    pub fn on_event(&mut self, event: &sse::Event, out: &mut Vec<u8>) -> Result<(), StreamEnd> {
        if self.pass_through {
            return self.pass(event, out);
        }
        let chat = self.endpoint != Endpoint::Responses;
        if chat && event.data.trim() == "[DONE]" {
            self.flush_held(out)?;
            self.flush_chat(out)?;
            self.saw_done = true;
            sse::encode(None, "[DONE]", out);
            return Ok(());
        }
        // Most events of a stream differ from a text-only event before them only in their text:
        // those are read by comparing them with it, not by parsing them.
        let seen = self
            .template
            .as_ref()
            .and_then(|t| Some((t.key, t.text_of(event)?)));
        let (key, text, envelope) = match seen {
            Some((key, text)) => (key, text, None),
            None => {
                let map: Map<String, Value> = serde_json::from_str(&event.data)
                    .map_err(|_| StreamEnd::Malformed("upstream sent an event that is not JSON"))?;
                let Some((key, text)) = self.mergeable(&map) else {
                    self.flush_held(out)?;
                    return if chat {
                        self.on_chat_chunk(map, event.event.as_deref(), out)
                    } else {
                        self.on_responses_event(map, event.event.as_deref(), out)
                    };
                };
                let field = if chat { "content" } else { "delta" };
                self.template = Template::new(event, field, key, &text, &map);
                (key, text, Some(map))
            }
        };
        // Adjacent text-only events of the same choice are merged (the caller flushes at the end
        // of each batch that arrived together), so a burst costs one scan and one event.
        if let Some(held) = self.held.as_mut().filter(|h| h.key == key) {
            held.text.push_str(&text);
            return Ok(());
        }
        self.flush_held(out)?;
        // Read through the template, the event's envelope is the template's.
        let envelope = envelope
            .or_else(|| self.template.as_ref().map(|t| t.envelope.clone()))
            .unwrap_or_default();
        self.held = Some(Held {
            key,
            envelope,
            text,
            event: event.event.clone(),
        });
        Ok(())
    }

    /// Process the merged text event held back, if any.
    pub fn flush_held(&mut self, out: &mut Vec<u8>) -> Result<(), StreamEnd> {
        let Some(held) = self.held.take() else {
            return Ok(());
        };
        let mut map = held.envelope;
        if self.endpoint == Endpoint::Responses {
            map.insert("delta".into(), Value::String(held.text));
            self.on_responses_event(map, held.event.as_deref(), out)
        } else {
            let delta = map
                .get_mut("choices")
                .and_then(|c| c.pointer_mut("/0/delta"));
            if let Some(delta) = delta.and_then(Value::as_object_mut) {
                delta.insert("content".into(), Value::String(held.text));
            }
            self.on_chat_chunk(map, held.event.as_deref(), out)
        }
    }

    /// An event that only carries text for one choice or content part: its key and text.
    fn mergeable(&self, map: &Map<String, Value>) -> Option<((u64, u64), String)> {
        if self.endpoint == Endpoint::Responses {
            if map.get("type").and_then(Value::as_str) != Some("response.output_text.delta") {
                return None;
            }
            let get = |k: &str| map.get(k).and_then(Value::as_u64).unwrap_or(0);
            let delta = map.get("delta").and_then(Value::as_str)?;
            return Some((
                (get("output_index"), get("content_index")),
                delta.to_string(),
            ));
        }
        if map.get("usage").is_some_and(|u| !u.is_null()) {
            return None;
        }
        let [choice] = map.get("choices")?.as_array()?.as_slice() else {
            return None;
        };
        let choice = choice.as_object()?;
        let plain = choice.iter().all(|(k, v)| match k.as_str() {
            "index" | "delta" => true,
            "finish_reason" | "logprobs" => v.is_null(),
            _ => false,
        });
        let delta = choice.get("delta")?.as_object()?;
        let content = delta.get("content")?.as_str()?;
        (plain && delta.len() == 1).then(|| {
            let index = choice.get("index").and_then(Value::as_u64).unwrap_or(0);
            ((index, 0), content.to_string())
        })
    }

    fn on_chat_chunk(
        &mut self,
        mut chunk: Map<String, Value>,
        event: Option<&str>,
        out: &mut Vec<u8>,
    ) -> Result<(), StreamEnd> {
        if let Some(usage) = Usage::from_value(chunk.get("usage")) {
            self.usage = Some(usage);
        }
        if let Some(Value::Array(choices)) = chunk.get_mut("choices") {
            for choice in choices.iter_mut() {
                let index = choice.get("index").and_then(Value::as_u64).unwrap_or(0);
                let finished = choice.get("finish_reason").is_some_and(|r| !r.is_null());
                let content = choice.pointer("/delta/content").and_then(Value::as_str);
                let mut text = String::new();
                if let Some(c) = content {
                    self.run((index, 0), Some(c))?;
                    text.push_str(&self.text);
                }
                if finished {
                    self.run((index, 0), None)?;
                    text.push_str(&self.text);
                }
                if content.is_some() || !text.is_empty() {
                    if let Some(delta) = choice.get_mut("delta").and_then(Value::as_object_mut) {
                        delta.insert("content".into(), Value::String(text));
                    }
                }
                // Tool-call arguments (rare next to text): looked up without JSON pointers,
                // which allocate, so text chunks cost what they did.
                if let Some(delta) = choice.get_mut("delta").and_then(Value::as_object_mut) {
                    if delta.contains_key("tool_calls") || delta.contains_key("function_call") {
                        self.filter_tool_deltas(index, delta)?;
                    }
                    if finished {
                        for (key, tail) in self.finish_tool_calls(index)? {
                            add_tool_tail(delta, key, tail);
                        }
                    }
                }
            }
        }
        let data = serde_json::to_string(&chunk).unwrap_or_default();
        chunk.remove("choices");
        chunk.remove("usage");
        self.last_chunk = Some(chunk);
        sse::encode(event, &data, out);
        Ok(())
    }

    /// Forward an event unchanged, reading only what the audit needs (usage, the end).
    fn pass(&mut self, event: &sse::Event, out: &mut Vec<u8>) -> Result<(), StreamEnd> {
        let data = event.data.as_str();
        let chat = self.endpoint != Endpoint::Responses;
        if chat && data.trim() == "[DONE]" {
            self.saw_done = true;
        } else if data.contains("\"usage\"")
            || !chat
                && ["completed\"", "incomplete\"", "failed\""]
                    .iter()
                    .any(|end| data.contains(end))
        {
            let v: Value = serde_json::from_str(data)
                .map_err(|_| StreamEnd::Malformed("upstream sent an event that is not JSON"))?;
            let usage = if chat {
                v.get("usage")
            } else {
                v.pointer("/response/usage")
            };
            if let Some(u) = Usage::from_value(usage) {
                self.usage = Some(u);
            }
            let kind = v.get("type").and_then(Value::as_str).unwrap_or("");
            if matches!(
                kind,
                "response.completed" | "response.incomplete" | "response.failed"
            ) {
                self.saw_done = true;
            }
        } else if serde_json::from_str::<serde::de::IgnoredAny>(data).is_err() {
            return Err(StreamEnd::Malformed(
                "upstream sent an event that is not JSON",
            ));
        }
        sse::encode(event.event.as_deref(), data, out);
        Ok(())
    }

    /// Filter the argument fragments of a chat delta's tool calls (and legacy function call)
    /// in place.
    fn filter_tool_deltas(
        &mut self,
        choice: u64,
        delta: &mut Map<String, Value>,
    ) -> Result<(), StreamEnd> {
        if let Some(Value::Array(calls)) = delta.get_mut("tool_calls") {
            for call in calls.iter_mut() {
                let i = call.get("index").and_then(Value::as_u64).unwrap_or(0);
                let Some(function) = call.get_mut("function").and_then(Value::as_object_mut) else {
                    continue;
                };
                let Some(Value::String(fragment)) = function.get_mut("arguments") else {
                    continue;
                };
                let fragment = std::mem::take(fragment);
                let key = TOOL_KEY.saturating_add(i).min(ARGUMENTS_KEY - 1);
                self.run((choice, key), Some(&fragment))?;
                function.insert("arguments".into(), Value::String(self.text.clone()));
            }
        }
        let legacy = delta
            .get_mut("function_call")
            .and_then(Value::as_object_mut)
            .and_then(|f| f.get_mut("arguments"));
        if let Some(Value::String(arguments)) = legacy {
            let fragment = std::mem::take(arguments);
            self.run((choice, ARGUMENTS_KEY), Some(&fragment))?;
            arguments.push_str(&self.text);
        }
        Ok(())
    }

    /// Finish the tool-call pipelines of one choice: what each held back, by key.
    fn finish_tool_calls(&mut self, choice: u64) -> Result<Vec<(u64, String)>, StreamEnd> {
        let keys: Vec<_> = self
            .pipelines
            .range((choice, TOOL_KEY)..=(choice, ARGUMENTS_KEY))
            .map(|(k, _)| k.1)
            .collect();
        let mut tails = Vec::new();
        for key in keys {
            self.run((choice, key), None)?;
            if !self.text.is_empty() {
                tails.push((key, self.text.clone()));
            }
        }
        Ok(tails)
    }

    /// Release what is still held back for choices that never sent a `finish_reason`.
    fn flush_chat(&mut self, out: &mut Vec<u8>) -> Result<(), StreamEnd> {
        let keys: Vec<_> = self.pipelines.keys().copied().collect();
        for key in keys {
            self.run(key, None)?;
            if self.text.is_empty() {
                continue;
            }
            let mut delta = Map::new();
            if key.1 == 0 {
                delta.insert("content".into(), Value::String(self.text.clone()));
            } else {
                add_tool_tail(&mut delta, key.1, self.text.clone());
            }
            let mut chunk = self.last_chunk.clone().unwrap_or_default();
            chunk.insert(
                "choices".into(),
                json!([{"index": key.0, "delta": delta, "finish_reason": null}]),
            );
            sse::encode(None, &Value::Object(chunk).to_string(), out);
        }
        Ok(())
    }

    /// A Responses `*.delta` event for text or arguments: its `delta` goes through the
    /// pipeline for `k` and becomes what the pipeline released.
    fn filter_part_delta(
        &mut self,
        k: (u64, u64),
        body: &mut Map<String, Value>,
    ) -> Result<(), StreamEnd> {
        let delta = body
            .get("delta")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        self.run(k, Some(&delta))?;
        self.released.entry(k).or_default().push_str(&self.text);
        body.insert("delta".into(), Value::String(self.text.clone()));
        Ok(())
    }

    /// A Responses `*.done` event for text or arguments: release what the pipeline held back
    /// as a last `delta_type` event before it, and make the done event's `field` carry the
    /// whole released (filtered) value.
    fn finish_part(
        &mut self,
        k: (u64, u64),
        body: &mut Map<String, Value>,
        field: &str,
        delta_type: &str,
        out: &mut Vec<u8>,
    ) -> Result<(), StreamEnd> {
        self.run(k, None)?;
        if !self.text.is_empty() {
            self.released.entry(k).or_default().push_str(&self.text);
            let mut delta = body.clone();
            delta.remove(field);
            delta.insert("type".into(), delta_type.into());
            delta.insert("delta".into(), Value::String(self.text.clone()));
            sse::encode(Some(delta_type), &Value::Object(delta).to_string(), out);
        }
        let whole = self.released.get(&k).cloned().unwrap_or_default();
        body.insert(field.into(), Value::String(whole));
        Ok(())
    }

    fn on_responses_event(
        &mut self,
        mut body: Map<String, Value>,
        event: Option<&str>,
        out: &mut Vec<u8>,
    ) -> Result<(), StreamEnd> {
        let kind = body
            .get("type")
            .and_then(Value::as_str)
            .or(event)
            .unwrap_or("")
            .to_string();
        let key = |b: &Map<String, Value>| {
            let get = |k: &str| b.get(k).and_then(Value::as_u64).unwrap_or(0);
            (get("output_index"), get("content_index"))
        };
        match kind.as_str() {
            "response.output_text.delta" => {
                let k = key(&body);
                self.filter_part_delta(k, &mut body)?;
            }
            "response.output_text.done" => {
                let k = key(&body);
                self.finish_part(k, &mut body, "text", "response.output_text.delta", out)?;
            }
            "response.function_call_arguments.delta" => {
                let k = (key(&body).0, ARGUMENTS_KEY);
                self.filter_part_delta(k, &mut body)?;
            }
            "response.function_call_arguments.done" => {
                let k = (key(&body).0, ARGUMENTS_KEY);
                let delta_type = "response.function_call_arguments.delta";
                self.finish_part(k, &mut body, "arguments", delta_type, out)?;
            }
            "response.output_item.added" => {
                let index = body
                    .get("output_index")
                    .and_then(Value::as_u64)
                    .unwrap_or(0);
                if let Some(item) = body.get_mut("item") {
                    if item.get("type").and_then(Value::as_str) == Some("function_call") {
                        self.rewrite_item(index, item);
                    }
                }
            }
            "response.content_part.done" => {
                let k = key(&body);
                if let Some(text) = self.released.get(&k) {
                    if let Some(part) = body.get_mut("part").and_then(Value::as_object_mut) {
                        part.insert("text".into(), Value::String(text.clone()));
                    }
                }
            }
            "response.output_item.done" => {
                let index = body
                    .get("output_index")
                    .and_then(Value::as_u64)
                    .unwrap_or(0);
                if let Some(item) = body.get_mut("item") {
                    self.rewrite_item(index, item);
                }
            }
            "response.completed" | "response.incomplete" | "response.failed" => {
                if let Some(response) = body.get_mut("response") {
                    if let Some(usage) = Usage::from_value(response.get("usage")) {
                        self.usage = Some(usage);
                    }
                    if let Some(Value::Array(items)) = response.get_mut("output") {
                        for (index, item) in items.iter_mut().enumerate() {
                            self.rewrite_item(index as u64, item);
                        }
                    }
                }
                self.saw_done = true;
            }
            _ => {}
        }
        sse::encode(event, &Value::Object(body).to_string(), out);
        Ok(())
    }

    /// Replace the text of an output item's parts with what was released for them; parts the
    /// stream never delivered as deltas are emptied rather than passed unscanned.
    fn rewrite_item(&self, output_index: u64, item: &mut Value) {
        if item.get("type").and_then(Value::as_str) == Some("function_call") {
            let arguments = self
                .released
                .get(&(output_index, ARGUMENTS_KEY))
                .cloned()
                .unwrap_or_default();
            if let Some(i) = item.as_object_mut() {
                i.insert("arguments".into(), Value::String(arguments));
            }
            return;
        }
        if let Some(Value::Array(parts)) = item.get_mut("content") {
            for (j, part) in parts.iter_mut().enumerate() {
                if part.get("type").and_then(Value::as_str) != Some("output_text") {
                    continue;
                }
                let text = self
                    .released
                    .get(&(output_index, j as u64))
                    .cloned()
                    .unwrap_or_default();
                if let Some(p) = part.as_object_mut() {
                    p.insert("text".into(), Value::String(text));
                }
            }
        }
    }

    /// The final event when a stream ends early, in the endpoint's error shape.
    pub fn error_event(&self, end: &StreamEnd, out: &mut Vec<u8>) {
        let (code, kind, message) = match end {
            StreamEnd::Blocked(detector) => (
                "output_blocked",
                "content_filter",
                format!(
                    "the rest of the output was blocked by the application's policy (detector `{detector}`)"
                ),
            ),
            StreamEnd::Malformed(why) => {
                ("upstream_malformed", "upstream_error", (*why).to_string())
            }
        };
        self.error_event_with(code, kind, &message, out);
    }

    pub fn error_event_with(&self, code: &str, kind: &str, message: &str, out: &mut Vec<u8>) {
        match self.endpoint {
            Endpoint::Responses => {
                let body =
                    json!({"type": "error", "code": code, "message": message, "param": null});
                sse::encode(Some("error"), &body.to_string(), out);
            }
            _ => {
                let body = json!({"error": {"message": message, "type": kind, "param": null, "code": code}});
                sse::encode(None, &body.to_string(), out);
            }
        }
    }
}

/// A message's `content` as text: the string, or the text parts joined by spaces.
pub(crate) fn content_text(content: &Value) -> String {
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

/// The text of the last user message (chat) or input (Responses API).
pub fn last_user_text(request: &Map<String, Value>) -> String {
    let text_of = content_text;
    let user = |m: &&Value| m.get("role").and_then(Value::as_str) == Some("user");
    if let Some(Value::Array(messages)) = request.get("messages") {
        return messages
            .iter()
            .rev()
            .find(user)
            .and_then(|m| m.get("content"))
            .map(text_of)
            .unwrap_or_default();
    }
    match request.get("input") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => items
            .iter()
            .rev()
            .find(user)
            .and_then(|m| m.get("content"))
            .map(text_of)
            .unwrap_or_default(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Off;

    #[test]
    fn request_scan_visits_user_and_tool_text_only() {
        struct Upper;
        impl Policy for Upper {
            fn scan_input(&self, text: &str, _: &mut Vault) -> crate::policy::InputScan {
                crate::policy::InputScan {
                    action: Action::Redact,
                    rewritten: Some(text.to_uppercase()),
                    hits: vec![],
                    redactions: 1,
                }
            }
            fn output_scanner(&self) -> Box<dyn crate::policy::OutputScanner> {
                Off.output_scanner()
            }
        }
        let mut body: Map<String, Value> = serde_json::from_value(json!({
            "model": "m", "extra": {"kept": true},
            "messages": [
                {"role": "system", "content": "sys"},
                {"role": "user", "content": "hi"},
                {"role": "user", "content": [{"type": "text", "text": "part"}, {"type": "image_url", "image_url": {"url": "u"}}]},
                {"role": "assistant", "content": "asst"},
                {"role": "tool", "content": "tool", "tool_call_id": "t"}
            ]
        }))
        .unwrap();
        let mut verdicts = Verdicts::default();
        scan_request(
            Endpoint::ChatCompletions,
            &mut body,
            &Upper,
            &mut Vault::default(),
            &mut verdicts,
        )
        .unwrap();
        let v = Value::Object(body);
        assert_eq!(v["messages"][0]["content"], "sys");
        assert_eq!(v["messages"][1]["content"], "HI");
        assert_eq!(v["messages"][2]["content"][0]["text"], "PART");
        assert_eq!(v["messages"][2]["content"][1]["image_url"]["url"], "u");
        assert_eq!(v["messages"][3]["content"], "asst");
        assert_eq!(v["messages"][4]["content"], "TOOL");
        assert_eq!(v["extra"]["kept"], true);
        assert_eq!(verdicts.redactions, 3);
    }

    #[test]
    fn chat_stream_passes_unknown_fields_and_done() {
        let mut f = StreamFilter::new(
            Endpoint::ChatCompletions,
            Arc::new(Off),
            Arc::new(Vault::default()),
        );
        let mut out = Vec::new();
        let ev = |d: &str| sse::Event {
            event: None,
            data: d.into(),
        };
        f.on_event(&ev(r#"{"id":"c","x":1,"choices":[{"index":0,"delta":{"content":"he"},"finish_reason":null}]}"#), &mut out).unwrap();
        f.on_event(&ev(r#"{"id":"c","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2}}"#), &mut out).unwrap();
        f.on_event(&ev("[DONE]"), &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains(r#""x":1"#) && text.contains(r#""content":"he""#),
            "{text}"
        );
        assert!(text.ends_with("data: [DONE]\n\n"));
        assert_eq!(
            f.usage,
            Some(Usage {
                prompt: 3,
                completion: 2
            })
        );
        assert!(f.saw_done);
    }

    #[test]
    fn template_reads_events_that_differ_only_in_their_text() {
        let ev = |d: &str| sse::Event {
            event: None,
            data: d.into(),
        };
        let first = ev(
            r#"{"id":"c","choices":[{"index":0,"delta":{"content":"he"},"finish_reason":null}]}"#,
        );
        let map: Map<String, Value> = serde_json::from_str(&first.data).unwrap();
        let t = Template::new(&first, "content", (0, 0), "he", &map).unwrap();
        let with = |middle: &str| ev(&format!("{}{middle}{}", t.prefix, t.suffix));
        assert_eq!(
            t.text_of(&with(r#""a\"b\\ é""#)).as_deref(),
            Some("a\"b\\ é")
        );
        assert_eq!(t.text_of(&with(r#" "spaced" "#)).as_deref(), Some("spaced"));
        // Anything but one JSON string in that place is another shape: parsed in full.
        for middle in [
            r#""a","role":"x""#,
            "null",
            r#""open"#,
            r#""a"}]}{"b""#,
            "1",
        ] {
            assert_eq!(t.text_of(&with(middle)), None, "{middle}");
        }
        let named = sse::Event {
            event: Some("x".into()),
            data: first.data.clone(),
        };
        assert_eq!(t.text_of(&named), None, "another event name");
        // The field's place is ambiguous when its name occurs twice.
        let twice = ev(r#"{"content":"x","choices":[{"index":0,"delta":{"content":"he"}}]}"#);
        assert!(Template::new(&twice, "content", (0, 0), "he", &map).is_none());
    }

    proptest::proptest! {
        /// Whatever the texts (quotes, escapes, any script) and wherever batches end, the client
        /// gets every text, in order, through the policy, and other fields intact.
        #[test]
        fn merged_and_templated_chat_events_keep_every_text(
            texts in proptest::collection::vec("[a-z \"\\\\é\u{1F600}\n]{0,6}", 1..30),
            flushes in proptest::collection::vec(proptest::bool::ANY, 30),
            odd in proptest::collection::vec(0usize..30, 0..3),
        ) {
            let mut f = shouting_filter();
            let mut out = Vec::new();
            for (i, text) in texts.iter().enumerate() {
                let mut chunk = json!({"id": "c", "model": "m", "choices": [
                    {"index": 0, "delta": {"content": text}, "finish_reason": null}]});
                if odd.contains(&i) {
                    chunk["system_fingerprint"] = json!(format!("fp{i}"));
                }
                let ev = sse::Event { event: None, data: chunk.to_string() };
                f.on_event(&ev, &mut out).unwrap();
                if flushes[i] {
                    f.flush_held(&mut out).unwrap();
                }
            }
            let end = json!({"id": "c", "model": "m", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]});
            f.on_event(&sse::Event { event: None, data: end.to_string() }, &mut out).unwrap();
            f.on_event(&sse::Event { event: None, data: "[DONE]".into() }, &mut out).unwrap();
            let mut parser = sse::Parser::new();
            let mut events = Vec::new();
            parser.push(&out, &mut events).unwrap();
            let mut got = String::new();
            for e in &events[..events.len() - 1] {
                let v: Value = serde_json::from_str(&e.data).unwrap();
                proptest::prop_assert_eq!(&v["model"], &json!("m"));
                if let Some(c) = v.pointer("/choices/0/delta/content").and_then(Value::as_str) {
                    got.push_str(c);
                }
            }
            proptest::prop_assert_eq!(got, texts.concat().to_uppercase());
        }
    }

    /// Upper-cases output and holds back the last character of every push until the next.
    struct Shout;
    struct ShoutScanner(String);
    impl crate::policy::OutputScanner for ShoutScanner {
        fn push(&mut self, chunk: &str, out: &mut String) -> Result<(), Blocked> {
            self.0.push_str(&chunk.to_uppercase());
            let keep = self.0.chars().last().map_or(0, char::len_utf8);
            out.push_str(&self.0[..self.0.len() - keep]);
            self.0.drain(..self.0.len() - keep);
            Ok(())
        }
        fn finish(&mut self, out: &mut String) -> Result<(), Blocked> {
            out.push_str(&std::mem::take(&mut self.0));
            Ok(())
        }
        fn take_hits(&mut self) -> (Vec<crate::policy::Hit>, u32) {
            (Vec::new(), 0)
        }
    }
    fn shouting_filter() -> StreamFilter {
        StreamFilter::new(
            Endpoint::ChatCompletions,
            Arc::new(Shout),
            Arc::new(Vault::default()),
        )
    }

    impl Policy for Shout {
        fn scan_input(&self, text: &str, vault: &mut Vault) -> crate::policy::InputScan {
            Off.scan_input(text, vault)
        }
        fn output_scanner(&self) -> Box<dyn crate::policy::OutputScanner> {
            Box::new(ShoutScanner(String::new()))
        }
    }

    #[test]
    fn streamed_tool_call_and_function_call_arguments_are_filtered_with_their_tails() {
        let ev = |d: Value| sse::Event {
            event: None,
            data: d.to_string(),
        };
        let chunk = |delta: Value, finish: Value| {
            ev(
                json!({"id": "c", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}),
            )
        };
        let assembled = |wire: &str, pointer: &str| -> String {
            wire.lines()
                .filter_map(|l| l.strip_prefix("data: "))
                .filter_map(|d| serde_json::from_str::<Value>(d).ok())
                .filter_map(|v| {
                    v.pointer(pointer)
                        .and_then(Value::as_str)
                        .map(str::to_string)
                })
                .collect()
        };
        let done = sse::Event {
            event: None,
            data: "[DONE]".into(),
        };
        // Tool calls, finished by `finish_reason`.
        let mut f = shouting_filter();
        let mut out = Vec::new();
        for event in [
            chunk(
                json!({"tool_calls": [{"index": 0, "id": "t", "function": {"name": "f", "arguments": ""}}]}),
                Value::Null,
            ),
            chunk(
                json!({"tool_calls": [{"index": 0, "function": {"arguments": "ab"}}]}),
                Value::Null,
            ),
            chunk(
                json!({"tool_calls": [{"index": 0, "function": {"arguments": "cd"}}]}),
                Value::Null,
            ),
            chunk(json!({}), json!("tool_calls")),
            done.clone(),
        ] {
            f.on_event(&event, &mut out).unwrap();
            f.flush_held(&mut out).unwrap();
        }
        let wire = String::from_utf8(out).unwrap();
        let mut args = String::new();
        for line in wire.lines().filter_map(|l| l.strip_prefix("data: ")) {
            if let Ok(v) = serde_json::from_str::<Value>(line) {
                for call in v
                    .pointer("/choices/0/delta/tool_calls")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    assert_eq!(call["index"], 0);
                    args.push_str(call["function"]["arguments"].as_str().unwrap());
                }
            }
        }
        assert_eq!(args, "ABCD", "{wire}");
        assert!(!wire.contains("ab") && !wire.contains("cd"), "{wire}");

        // A legacy function call that never gets a `finish_reason`: its tail leaves at `[DONE]`.
        let mut f = shouting_filter();
        let mut out = Vec::new();
        for event in [
            chunk(
                json!({"function_call": {"name": "f", "arguments": "xy"}}),
                Value::Null,
            ),
            chunk(json!({"function_call": {"arguments": "z"}}), Value::Null),
        ] {
            f.on_event(&event, &mut out).unwrap();
        }
        f.on_event(&done, &mut out).unwrap();
        let wire = String::from_utf8(out).unwrap();
        assert_eq!(
            assembled(&wire, "/choices/0/delta/function_call/arguments"),
            "XYZ",
            "{wire}"
        );
        assert!(wire.ends_with("data: [DONE]\n\n"));
    }

    #[test]
    fn malformed_event_ends_the_stream() {
        let mut f = StreamFilter::new(
            Endpoint::ChatCompletions,
            Arc::new(Off),
            Arc::new(Vault::default()),
        );
        let mut out = Vec::new();
        let err = f.on_event(
            &sse::Event {
                event: None,
                data: "{not json".into(),
            },
            &mut out,
        );
        assert!(matches!(err, Err(StreamEnd::Malformed(_))));
    }
}
