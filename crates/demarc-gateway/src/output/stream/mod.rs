//! The filter every streamed event passes through: a pipeline per text (per choice and field
//! for chat, [`chat`]; per output item and part for the Responses API, [`responses`]), held-back
//! text released in order, log probabilities held until their text is complete.

mod chat;
mod responses;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::{filter_all, filter_logprobs, record_output};
use crate::context::Usage;
use crate::endpoint::Endpoint;
use crate::fields;
use crate::policy::{OutputPipeline, Policy, Vault, Verdicts};
use crate::sse;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEnd {
    /// The output policy blocked the rest of the output.
    Blocked(String),
    /// The upstream sent something that is not valid SSE/JSON.
    Malformed(&'static str),
}

/// Pipeline keys are `(choice or output index, place)`. The place of a chat choice's content
/// (and of a Responses `output_text` part `j`: `j`) is 0; of its tool call `i`, `TOOL_KEY + i`;
/// of its legacy `function_call`'s arguments and of a Responses function call's arguments,
/// `ARGUMENTS_KEY`; of any other text field (chat `refusal`, `reasoning_content`,
/// `audio.transcript`; Responses refusals, reasoning summaries, transcripts),
/// `FIELD_KEY + n` where `n` numbers the field's name (times `PARTS` plus the part index for
/// Responses).
const CONTENT_KEY: u64 = 0;
const TOOL_KEY: u64 = 1;
const FIELD_KEY: u64 = 1 << 48;
const PARTS: u64 = 1 << 16;
const ARGUMENTS_KEY: u64 = u64::MAX;

/// Keys of a chat chunk that may sit beside text-only deltas without being text themselves.
const CHUNK_ENVELOPE: &[&str] = &[
    "id",
    "object",
    "created",
    "model",
    "system_fingerprint",
    "service_tier",
    "obfuscation",
    "choices",
    "usage",
];

/// Keys of a Responses `output_text.delta` event that carry no text of their own.
const DELTA_ENVELOPE: &[&str] = &[
    "type",
    "item_id",
    "output_index",
    "content_index",
    "sequence_number",
    "obfuscation",
    "delta",
    "logprobs",
];

/// The field that carries the whole text in a Responses `*.done` event.
const DONE_FIELDS: &[&str] = &[
    "text",
    "refusal",
    "arguments",
    "transcript",
    "input",
    "code",
];

/// Rewrites a streamed response event by event: every text goes through a pipeline of its own
/// (per choice and field for chat, per output item and part for the Responses API); what a
/// pipeline holds back is released in order, and nothing it blocks is ever encoded. Log
/// probabilities are held until their text is complete, then checked (see
/// [`filter_logprobs`]). Strings outside the known text fields are each scanned whole.
pub struct StreamFilter {
    endpoint: Endpoint,
    policy: Arc<dyn Policy>,
    vault: Arc<Vault>,
    pipelines: BTreeMap<(u64, u64), OutputPipeline>,
    /// Text released so far per Responses part, to rewrite the `done` events.
    released: BTreeMap<(u64, u64), String>,
    /// Names of the text fields that have a pipeline (see `FIELD_KEY`).
    names: Vec<String>,
    /// Log probabilities held back: per chat choice and list (`content`, `refusal`), or per
    /// Responses part.
    logprobs: BTreeMap<(u64, u64), Vec<Value>>,
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
    /// Responses: the response object as `response.created` announced it (id, model, ...), to
    /// end a stopped stream with `response.failed`; the item id of each output index.
    response: Option<Map<String, Value>>,
    item_ids: BTreeMap<u64, Value>,
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
        // A string without escapes or control characters is its own text: no JSON parser.
        if let Some(inner) = middle.strip_prefix('"').and_then(|m| m.strip_suffix('"'))
            && !inner.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20)
        {
            return Some(inner.to_string());
        }
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

/// Add a held-back tail to a chat delta at the place its pipeline key stands for: the content,
/// a tool call's (or legacy function call's) arguments, or another text field of the delta.
fn add_tail(delta: &mut Map<String, Value>, key: u64, tail: String, names: &[String]) {
    if key == CONTENT_KEY {
        append_at(delta, &["content"], tail);
    } else if key == ARGUMENTS_KEY {
        append_at(delta, &["function_call", "arguments"], tail);
    } else if key >= FIELD_KEY {
        let Some(name) = usize::try_from(key - FIELD_KEY)
            .ok()
            .and_then(|i| names.get(i))
        else {
            return;
        };
        let path: Vec<&str> = name.split('.').collect();
        append_at(delta, &path, tail);
    } else {
        let entry = json!({"index": key - TOOL_KEY, "function": {"arguments": tail}});
        match delta.get_mut("tool_calls") {
            Some(Value::Array(calls)) => calls.push(entry),
            _ => {
                delta.insert("tool_calls".into(), Value::Array(vec![entry]));
            }
        }
    }
}

/// Append `tail` to the string at `path` in `map`, creating what is missing.
fn append_at(map: &mut Map<String, Value>, path: &[&str], tail: String) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut at = map;
    for name in parents {
        let next = at
            .entry(name.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if !next.is_object() {
            *next = Value::Object(Map::new());
        }
        let Value::Object(next) = next else {
            return;
        };
        at = next;
    }
    match at.get_mut(*last) {
        Some(Value::String(s)) => s.push_str(&tail),
        _ => {
            at.insert(last.to_string(), Value::String(tail));
        }
    }
}

/// The text of a chat delta other than its content and tool calls (those have their own
/// pipelines): strings with their dotted path (`refusal`, `reasoning_content`,
/// `audio.transcript`, any field the gateway does not know), each streamed through a pipeline
/// of its own, and lists, which cannot continue across chunks and are scanned whole.
fn delta_fields<'a>(
    map: &'a mut Map<String, Value>,
    prefix: &str,
    strings: &mut Vec<(String, &'a mut String)>,
    lists: &mut Vec<&'a mut Value>,
) {
    for (k, v) in map.iter_mut() {
        let top = prefix.is_empty();
        if top && matches!(k.as_str(), "content" | "tool_calls" | "function_call") {
            continue;
        }
        if fields::STRUCTURAL.contains(&k.as_str()) && !v.is_object() || k == "data" {
            continue;
        }
        let path = if top {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            Value::String(s) => strings.push((path, s)),
            Value::Object(inner) => delta_fields(inner, &path, strings, lists),
            Value::Array(_) => lists.push(v),
            _ => {}
        }
    }
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
            names: Vec::new(),
            logprobs: BTreeMap::new(),
            last_chunk: None,
            usage: None,
            verdicts: Verdicts::default(),
            saw_done: false,
            text: String::new(),
            pass_through: false,
            held: None,
            template: None,
            response: None,
            item_ids: BTreeMap::new(),
        }
    }

    fn pipeline(&mut self, key: (u64, u64)) -> &mut OutputPipeline {
        let (policy, vault) = (&self.policy, &self.vault);
        self.pipelines
            .entry(key)
            .or_insert_with(|| OutputPipeline::new(policy.as_ref(), vault.clone()))
    }

    /// The number of a text field's name (see `FIELD_KEY`).
    fn name_id(&mut self, name: &str) -> u64 {
        let i = match self.names.iter().position(|n| n == name) {
            Some(i) => i,
            None => {
                self.names.push(name.to_string());
                self.names.len() - 1
            }
        };
        i as u64
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

    /// Scan every string of `value` whole (a part or item the stream did not deliver as
    /// deltas, an error, an unknown event), log probabilities included.
    fn scan_strings(&mut self, value: &mut Value, responses: bool) -> Result<(), StreamEnd> {
        let (policy, vault) = (self.policy.as_ref(), &self.vault);
        filter_all(value, responses, policy, vault, &mut self.verdicts)
            .map_err(|b| StreamEnd::Blocked(b.detector))
    }

    /// [`filter_logprobs`] on this stream's policy and verdicts.
    fn check_logprobs(&mut self, value: &mut Value) -> Result<(), StreamEnd> {
        filter_logprobs(value, self.policy.as_ref(), &self.vault, &mut self.verdicts)
            .map_err(|b| StreamEnd::Blocked(b.detector))
    }

    /// Check and take the log probabilities held for `key`, as a JSON list.
    fn release_logprobs(&mut self, key: (u64, u64)) -> Result<Option<Value>, StreamEnd> {
        let Some(entries) = self.logprobs.remove(&key) else {
            return Ok(None);
        };
        let mut value = Value::Array(entries);
        self.check_logprobs(&mut value)?;
        Ok(Some(value))
    }

    /// Hold the entries of a log-probability list for `key`.
    fn hold_logprobs(&mut self, key: (u64, u64), list: Value) {
        if let Value::Array(entries) = list
            && !entries.is_empty()
        {
            self.logprobs.entry(key).or_default().extend(entries);
        }
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
            let plain = map.iter().all(|(k, v)| match k.as_str() {
                "logprobs" => v.is_null() || v.as_array().is_some_and(Vec::is_empty),
                k => DELTA_ENVELOPE.contains(&k),
            });
            let get = |k: &str| map.get(k).and_then(Value::as_u64).unwrap_or(0);
            let delta = map.get("delta").and_then(Value::as_str)?;
            return plain.then(|| {
                (
                    (get("output_index"), get("content_index")),
                    delta.to_string(),
                )
            });
        }
        if self.endpoint == Endpoint::Completions
            || map.get("usage").is_some_and(|u| !u.is_null())
            || !map.keys().all(|k| CHUNK_ENVELOPE.contains(&k.as_str()))
        {
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
            ((index, CONTENT_KEY), content.to_string())
        })
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

    /// The upstream ended the stream without its proper end: release (scanned) what is still
    /// held back, so that the caller keeps every character that passed the policy.
    pub fn finish_open(&mut self, out: &mut Vec<u8>) -> Result<(), StreamEnd> {
        if self.pass_through {
            return Ok(());
        }
        self.flush_held(out)?;
        if self.endpoint == Endpoint::Responses {
            self.flush_responses(out)
        } else {
            self.flush_chat(out)
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
                // `response.failed` ends the response the way clients (the SDK's stream helper
                // included) expect an unsuccessful one to end; `error` says why.
                let mut response = self.response.clone().unwrap_or_default();
                response.insert("object".into(), json!("response"));
                response.insert("status".into(), json!("failed"));
                response.insert("output".into(), json!([]));
                response.insert("error".into(), json!({"code": code, "message": message}));
                let failed = json!({"type": "response.failed", "response": response});
                sse::encode(Some("response.failed"), &failed.to_string(), out);
                // Its `error` object (beside the event's own fields) is what SDKs raise on.
                let body = json!({"type": "error", "code": code, "message": message, "param": null,
                    "error": {"type": kind, "code": code, "message": message, "param": null}});
                sse::encode(Some("error"), &body.to_string(), out);
            }
            _ => {
                let body = json!({"error": {"message": message, "type": kind, "param": null, "code": code}});
                sse::encode(None, &body.to_string(), out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Blocked, Off, Trust};

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
        assert_eq!(t.text_of(&with(r#""plain é""#)).as_deref(), Some("plain é"));
        assert_eq!(
            t.text_of(&with("\"tab\there\"")),
            None,
            "a raw control character"
        );
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
        fn scan_input(
            &self,
            texts: &[&str],
            trust: Trust,
            vault: &mut Vault,
        ) -> crate::policy::InputScan {
            Off.scan_input(texts, trust, vault)
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
