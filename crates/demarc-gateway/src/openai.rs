//! Where text lives in OpenAI-shaped requests and responses, and the filter every streamed
//! event passes through. Bodies stay `serde_json::Value` so fields the gateway does not know
//! pass through untouched; only the text fields are read and rewritten.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::config::{InputRules, Unreadable};
use crate::fields::{self, Role};
use crate::policy::{Action, Blocked, Hit, OutputPipeline, Policy, Trust, Vault, Verdicts};
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

/// Scan every text of a request the model will read through the input policy, rewriting
/// redacted text in place. `Err` names the detector that blocked it.
///
/// Texts are found by structure ([`crate::fields`]): every role, every field, data URLs of
/// text decoded. The texts of one trust are scanned together as one conversation, so a value
/// split across messages or parts is found; embedding inputs are separate documents, each
/// scanned alone. When `prompt` is given, the user and tool texts as they leave for the
/// upstream (after redaction) are appended to it, one line apart.
pub fn scan_request(
    endpoint: Endpoint,
    body: &mut Map<String, Value>,
    policy: &dyn Policy,
    rules: &InputRules,
    vault: &mut Vault,
    verdicts: &mut Verdicts,
    prompt: Option<&mut String>,
) -> Result<(), InputBlocked> {
    let mut found = fields::request_texts(body);
    let mut strip = Vec::new();
    for unreadable in std::mem::take(&mut found.unreadable) {
        let action = match rules.unreadable {
            Unreadable::Allow => continue,
            Unreadable::Flag => Action::Flag,
            Unreadable::Block => Action::Block,
            Unreadable::Strip => {
                strip.push(unreadable.path);
                Action::Redact
            }
        };
        let hit = Hit {
            detector: UNREADABLE.into(),
            action,
        };
        verdicts.input = verdicts.input.max(Some(action));
        verdicts.merge(std::slice::from_ref(&hit), 0);
        if action == Action::Block {
            return Err(InputBlocked {
                detector: UNREADABLE.into(),
                role: Some(unreadable.role),
            });
        }
    }
    let mut scan = |texts: &mut [&mut fields::Text<'_>],
                    trust: Trust|
     -> Result<(), InputBlocked> {
        if texts.is_empty() {
            return Ok(());
        }
        let strs: Vec<&str> = texts.iter().map(|t| t.text.as_str()).collect();
        let result = policy.scan_input(&strs, trust, vault);
        verdicts.record_input(&result);
        if result.action == Action::Block {
            let detector = result
                .hits
                .iter()
                .find(|h| h.action == Action::Block)
                .map_or_else(|| "policy".to_string(), |h| h.detector.clone());
            // Which text it was, for the error (a second look, on the rare blocked request).
            let role = texts
                .iter()
                .find(|t| {
                    let alone = policy.scan_input(&[t.text.as_str()], trust, &mut Vault::default());
                    alone.action == Action::Block
                })
                .map(|t| t.role);
            return Err(InputBlocked { detector, role });
        }
        if let Some(rewritten) = result.rewritten {
            for (text, new) in texts.iter_mut().zip(rewritten) {
                if new != text.text {
                    text.set(new);
                }
            }
        }
        Ok(())
    };
    if endpoint == Endpoint::Embeddings {
        for text in &mut found.texts {
            scan(&mut [text], Trust::Indexed)?;
        }
    } else {
        let (mut trusted, mut untrusted): (Vec<_>, Vec<_>) = found
            .texts
            .iter_mut()
            .partition(|t| rules.trusted_roles.contains(&t.role));
        scan(&mut untrusted, Trust::Untrusted)?;
        scan(&mut trusted, Trust::Trusted)?;
    }
    if let Some(prompt) = prompt {
        let asked = found
            .texts
            .iter()
            .filter(|t| matches!(t.role, Role::User | Role::Tool));
        for text in asked {
            if !prompt.is_empty() {
                prompt.push('\n');
            }
            prompt.push_str(&text.text);
        }
    }
    drop(found);
    fields::strip(body, &strip);
    Ok(())
}

/// The input policy refused a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputBlocked {
    pub detector: String,
    /// The role of the text that was refused, where one text alone was.
    pub role: Option<Role>,
}

impl InputBlocked {
    /// The error message for the caller: what refused it, where, and (for the application's
    /// own instructions) how to trust them.
    pub fn message(&self) -> String {
        let mut message = format!(
            "the request was blocked by the application's policy (detector `{}`",
            self.detector
        );
        if let Some(role) = self.role {
            message.push_str(&format!(", in {} text", role.as_str()));
        }
        message.push(')');
        if self.detector == "injection" && matches!(self.role, Some(Role::System | Role::Developer))
        {
            message.push_str(
                "; if this is the application's own system prompt, list its role in the application's `input.trusted_roles`",
            );
        }
        message
    }
}

/// The detector id under which unreadable payloads are recorded.
pub const UNREADABLE: &str = "unreadable";

/// Scan and restore every text of a complete (non-streamed) response — or of an upstream
/// error body — in place: whatever field it sits in ([`fields::output_texts`]), log
/// probabilities included.
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
    filter_all(
        body,
        endpoint == Endpoint::Responses,
        policy,
        vault,
        verdicts,
    )
}

/// Every string of `body` through the output filter, log probabilities included.
fn filter_all(
    body: &mut Value,
    responses: bool,
    policy: &dyn Policy,
    vault: &Arc<Vault>,
    verdicts: &mut Verdicts,
) -> Result<(), Blocked> {
    let texts = fields::output_texts(body, responses);
    for text in texts.strings.into_iter().filter(|t| !t.is_empty()) {
        *text = filter_text(text, policy, vault, verdicts)?;
    }
    for logprobs in texts.logprobs {
        filter_logprobs(logprobs, policy, vault, verdicts)?;
    }
    Ok(())
}

/// One whole output text through the output pipeline: what the caller may see.
fn filter_text(
    text: &str,
    policy: &dyn Policy,
    vault: &Arc<Vault>,
    verdicts: &mut Verdicts,
) -> Result<String, Blocked> {
    let mut pipeline = OutputPipeline::new(policy, vault.clone());
    let mut out = String::with_capacity(text.len());
    let result = pipeline
        .push(text, &mut out)
        .and_then(|()| pipeline.finish(&mut out));
    let (hits, redactions) = pipeline.take_hits();
    record_output(verdicts, &hits, redactions, result.is_err());
    result.map(|()| out)
}

/// Log probabilities spell the answer again, a token at a time: the chosen tokens are checked
/// joined (a key spans many tokens), and so is each rank of alternatives. What the policy
/// blocks blocks the response; where it would rewrite the text (redact, restore), the log
/// probabilities are withheld, since no token-level value can stand for a redacted span.
fn filter_logprobs(
    value: &mut Value,
    policy: &dyn Policy,
    vault: &Arc<Vault>,
    verdicts: &mut Verdicts,
) -> Result<(), Blocked> {
    let lists: Vec<&Vec<Value>> = match &*value {
        Value::Array(list) => vec![list],
        Value::Object(map) => map.values().filter_map(Value::as_array).collect(),
        _ => Vec::new(),
    };
    // A token is given as text and again as UTF-8 bytes (which may split a character); an
    // upstream may make the two differ, so each is spelled out and checked.
    let token = |e: &Value| match e {
        Value::String(s) => Some(s.clone()),
        e => e.get("token").and_then(Value::as_str).map(str::to_string),
    };
    let bytes = |e: &Value| -> Vec<u8> {
        e.get("bytes")
            .and_then(Value::as_array)
            .map(|b| {
                b.iter()
                    .filter_map(|x| x.as_u64().and_then(|x| u8::try_from(x).ok()))
                    .collect()
            })
            .unwrap_or_default()
    };
    // Alternatives: `top_logprobs` lists (chat, Responses) or token-to-logprob maps (legacy
    // completions).
    let alternatives = |e: &Value| -> Vec<String> {
        match e.get("top_logprobs") {
            Some(Value::Array(alts)) => alts.iter().filter_map(token).collect(),
            _ => match e {
                Value::Object(map) if !map.contains_key("token") => map.keys().cloned().collect(),
                _ => Vec::new(),
            },
        }
    };
    let mut spellings = Vec::new();
    for list in lists {
        spellings.push(list.iter().filter_map(token).collect::<String>());
        let raw: Vec<u8> = list.iter().flat_map(bytes).collect();
        spellings.push(String::from_utf8_lossy(&raw).into_owned());
        // Bytes that do not say what their token says are also read on their own (glued to
        // their neighbours' bytes, a value may lose the boundary its detector needs).
        let odd = list
            .iter()
            .chain(
                list.iter()
                    .filter_map(|e| e.get("top_logprobs")?.as_array())
                    .flatten(),
            )
            .filter(|e| token(e).is_some_and(|t| !bytes(e).is_empty() && bytes(e) != t.as_bytes()));
        spellings.extend(odd.map(|e| String::from_utf8_lossy(&bytes(e)).into_owned()));
        let alts: Vec<Vec<String>> = list.iter().map(alternatives).collect();
        let ranks = alts.iter().map(Vec::len).max().unwrap_or(0);
        for rank in 0..ranks {
            spellings.push(alts.iter().filter_map(|a| a.get(rank).cloned()).collect());
        }
        for rank in 0..ranks {
            let raw: Vec<u8> = list
                .iter()
                .filter_map(|e| e.get("top_logprobs")?.get(rank))
                .flat_map(bytes)
                .collect();
            if !raw.is_empty() {
                spellings.push(String::from_utf8_lossy(&raw).into_owned());
            }
        }
    }
    // The chosen tokens repeat text already counted; only a block is recorded from here.
    let mut scratch = Verdicts::default();
    let mut withhold = false;
    for text in spellings.iter().filter(|t| !t.is_empty()) {
        match filter_text(text, policy, vault, &mut scratch) {
            Ok(out) => withhold |= out != *text,
            Err(blocked) => {
                verdicts.absorb(scratch);
                return Err(blocked);
            }
        }
    }
    if withhold {
        *value = match value {
            Value::Array(_) => Value::Array(Vec::new()),
            _ => Value::Null,
        };
    }
    Ok(())
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
        if let Value::Array(entries) = list {
            if !entries.is_empty() {
                self.logprobs.entry(key).or_default().extend(entries);
            }
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

    fn on_chat_chunk(
        &mut self,
        mut chunk: Map<String, Value>,
        event: Option<&str>,
        out: &mut Vec<u8>,
    ) -> Result<(), StreamEnd> {
        if let Some(usage) = Usage::from_value(chunk.get("usage")) {
            self.usage = Some(usage);
        }
        // Anything beside the choices (an error body, a field the gateway does not know).
        for (key, value) in chunk.iter_mut() {
            if key != "choices" && key != "usage" && !fields::STRUCTURAL.contains(&key.as_str()) {
                self.scan_strings(value, false)?;
            }
        }
        if let Some(Value::Array(choices)) = chunk.get_mut("choices") {
            for choice in choices.iter_mut() {
                let Some(choice) = choice.as_object_mut() else {
                    continue;
                };
                self.on_chat_choice(choice)?;
            }
        }
        let data = serde_json::to_string(&chunk).unwrap_or_default();
        chunk.remove("choices");
        chunk.remove("usage");
        self.last_chunk = Some(chunk);
        sse::encode(event, &data, out);
        Ok(())
    }

    fn on_chat_choice(&mut self, choice: &mut Map<String, Value>) -> Result<(), StreamEnd> {
        let index = choice.get("index").and_then(Value::as_u64).unwrap_or(0);
        let finished = choice.get("finish_reason").is_some_and(|r| !r.is_null());
        // Log probabilities spell the text again: held until the choice ends, then checked.
        if let Some(Value::Object(lists)) = choice.get_mut("logprobs") {
            for (list, entries) in std::mem::take(lists) {
                let key = FIELD_KEY + self.name_id(&format!("logprobs.{list}"));
                self.hold_logprobs((index, key), entries);
            }
            choice.insert("logprobs".into(), Value::Null);
        }
        // Anything else beside the delta (a field the gateway does not know).
        for (key, value) in choice.iter_mut() {
            if !matches!(
                key.as_str(),
                "index" | "delta" | "finish_reason" | "logprobs" | "text"
            ) {
                self.scan_strings(value, false)?;
            }
        }
        let completions = self.endpoint == Endpoint::Completions;
        let content = if completions {
            choice.get("text")
        } else {
            choice.get("delta").and_then(|d| d.get("content"))
        }
        .and_then(Value::as_str);
        let mut text = String::new();
        if let Some(c) = content {
            self.run((index, CONTENT_KEY), Some(c))?;
            text.push_str(&self.text);
        }
        if finished {
            self.run((index, CONTENT_KEY), None)?;
            text.push_str(&self.text);
        }
        let had_content = content.is_some();
        if completions {
            if had_content || !text.is_empty() {
                choice.insert("text".into(), Value::String(text));
            }
            return self.finish_chat_choice(index, finished, choice);
        }
        // Tool-call arguments and other text fields (rare next to text): looked up without JSON
        // pointers, which allocate, so text chunks cost what they did.
        let Some(delta) = choice.get_mut("delta").and_then(Value::as_object_mut) else {
            return self.finish_chat_choice(index, finished, choice);
        };
        if had_content || !text.is_empty() {
            delta.insert("content".into(), Value::String(text));
        }
        if delta.contains_key("tool_calls") || delta.contains_key("function_call") {
            self.filter_tool_deltas(index, delta)?;
        }
        if delta.len() > 1 || !delta.contains_key("content") {
            let (mut strings, mut lists) = (Vec::new(), Vec::new());
            delta_fields(delta, "", &mut strings, &mut lists);
            for (name, value) in strings {
                let key = FIELD_KEY + self.name_id(&name);
                self.run((index, key), Some(value))?;
                value.clone_from(&self.text);
            }
            for list in lists {
                self.scan_strings(list, false)?;
            }
        }
        self.finish_chat_choice(index, finished, choice)
    }

    /// When a choice finishes: release what its tool-call and field pipelines held back into
    /// its delta, and its checked log probabilities.
    fn finish_chat_choice(
        &mut self,
        index: u64,
        finished: bool,
        choice: &mut Map<String, Value>,
    ) -> Result<(), StreamEnd> {
        if !finished {
            return Ok(());
        }
        let tails = self.finish_choice(index)?;
        if !tails.is_empty() {
            let delta = choice
                .entry("delta")
                .or_insert_with(|| Value::Object(Map::new()));
            if let Some(delta) = delta.as_object_mut() {
                for (key, tail) in tails {
                    add_tail(delta, key, tail, &self.names);
                }
            }
        }
        if let Some(logprobs) = self.chat_logprobs(index)? {
            choice.insert("logprobs".into(), logprobs);
        }
        Ok(())
    }

    /// Finish every pipeline of one chat choice but its content's: what each held back, by key.
    fn finish_choice(&mut self, choice: u64) -> Result<Vec<(u64, String)>, StreamEnd> {
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

    /// The checked log probabilities held for a chat choice, as its `logprobs` object.
    fn chat_logprobs(&mut self, choice: u64) -> Result<Option<Value>, StreamEnd> {
        let keys: Vec<_> = self
            .logprobs
            .range((choice, FIELD_KEY)..=(choice, ARGUMENTS_KEY))
            .map(|(k, _)| *k)
            .collect();
        if keys.is_empty() {
            return Ok(None);
        }
        let mut lists = Map::new();
        for key in keys {
            let name = usize::try_from(key.1 - FIELD_KEY)
                .ok()
                .and_then(|i| self.names.get(i))
                .and_then(|n| n.strip_prefix("logprobs."))
                .unwrap_or("content")
                .to_string();
            lists.insert(
                name,
                self.logprobs.remove(&key).map_or(Value::Null, Value::Array),
            );
        }
        let mut value = Value::Object(lists);
        self.check_logprobs(&mut value)?;
        Ok(Some(value))
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
    /// in place; their other strings (names) are scanned whole.
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
                let fragment = match function.remove("arguments") {
                    Some(Value::String(fragment)) => Some(fragment),
                    other => {
                        if let Some(other) = other {
                            function.insert("arguments".into(), other);
                        }
                        None
                    }
                };
                for value in function.values_mut() {
                    self.scan_strings(value, false)?;
                }
                if let Some(fragment) = fragment {
                    let key = TOOL_KEY.saturating_add(i).min(FIELD_KEY - 1);
                    self.run((choice, key), Some(&fragment))?;
                    function.insert("arguments".into(), Value::String(self.text.clone()));
                }
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

    /// Release what is still held back for choices that never sent a `finish_reason`.
    fn flush_chat(&mut self, out: &mut Vec<u8>) -> Result<(), StreamEnd> {
        let mut choices: Vec<u64> = self.pipelines.keys().map(|k| k.0).collect();
        choices.extend(self.logprobs.keys().map(|k| k.0));
        choices.sort_unstable();
        choices.dedup();
        for index in choices {
            let mut delta = Map::new();
            self.run((index, CONTENT_KEY), None)?;
            if !self.text.is_empty() {
                delta.insert("content".into(), Value::String(self.text.clone()));
            }
            for (key, tail) in self.finish_choice(index)? {
                add_tail(&mut delta, key, tail, &self.names);
            }
            let logprobs = self.chat_logprobs(index)?;
            if delta.is_empty() && logprobs.is_none() {
                continue;
            }
            let mut chunk = self.last_chunk.clone().unwrap_or_default();
            let choice = if self.endpoint == Endpoint::Completions {
                let text = delta.remove("content").unwrap_or_else(|| json!(""));
                json!({"index": index, "text": text, "logprobs": logprobs, "finish_reason": null})
            } else {
                json!({"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": null})
            };
            chunk.insert("choices".into(), Value::Array(vec![choice]));
            sse::encode(None, &Value::Object(chunk).to_string(), out);
        }
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

    /// Release what every open Responses pipeline holds back, as a last delta event each.
    fn flush_responses(&mut self, out: &mut Vec<u8>) -> Result<(), StreamEnd> {
        let keys: Vec<_> = self.pipelines.keys().copied().collect();
        for key in keys {
            self.run(key, None)?;
            let logprobs = self.release_logprobs(key)?;
            if self.text.is_empty() && logprobs.is_none() {
                continue;
            }
            self.released.entry(key).or_default().push_str(&self.text);
            let (item, place) = key;
            let (family, part) = if place == ARGUMENTS_KEY {
                ("response.function_call_arguments".to_string(), None)
            } else if place < FIELD_KEY {
                ("response.output_text".to_string(), Some(place))
            } else {
                let name = usize::try_from((place - FIELD_KEY) / PARTS)
                    .ok()
                    .and_then(|i| self.names.get(i))
                    .cloned()
                    .unwrap_or_default();
                (name, Some((place - FIELD_KEY) % PARTS))
            };
            let kind = format!("{family}.delta");
            let mut event = json!({"type": kind, "output_index": item, "delta": self.text});
            if let Some(id) = self.item_ids.get(&item) {
                event["item_id"] = id.clone();
            }
            if let Some(part) = part {
                let field = if family == "response.reasoning_summary_text" {
                    "summary_index"
                } else {
                    "content_index"
                };
                event[field] = json!(part);
            }
            if let Some(logprobs) = logprobs {
                event["logprobs"] = logprobs;
            }
            sse::encode(Some(&kind), &event.to_string(), out);
        }
        Ok(())
    }

    /// The pipeline key of a Responses text event of `family` (its type without `.delta` or
    /// `.done`).
    fn part_key(&mut self, family: &str, body: &Map<String, Value>) -> (u64, u64) {
        let get = |k: &str| body.get(k).and_then(Value::as_u64);
        let item = get("output_index").unwrap_or(0);
        let part = get("content_index")
            .or_else(|| get("summary_index"))
            .unwrap_or(0)
            .min(PARTS - 1);
        (item, self.part_place(family, part))
    }

    fn part_place(&mut self, family: &str, part: u64) -> u64 {
        match family {
            "response.output_text" => part,
            "response.function_call_arguments" => ARGUMENTS_KEY,
            _ => FIELD_KEY + self.name_id(family) * PARTS + part,
        }
    }

    /// A Responses `*.delta` event for text or arguments: its `delta` goes through the
    /// pipeline for `k` and becomes what the pipeline released.
    fn filter_part_delta(
        &mut self,
        k: (u64, u64),
        body: &mut Map<String, Value>,
    ) -> Result<(), StreamEnd> {
        if let Some(logprobs) = body.get_mut("logprobs") {
            let list = std::mem::replace(logprobs, Value::Array(Vec::new()));
            self.hold_logprobs(k, list);
        }
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
    /// (and the checked log probabilities) as a last `delta_type` event before it, and make the
    /// done event's `field` carry the whole released (filtered) value.
    fn finish_part(
        &mut self,
        k: (u64, u64),
        body: &mut Map<String, Value>,
        field: &str,
        delta_type: &str,
        out: &mut Vec<u8>,
    ) -> Result<(), StreamEnd> {
        self.run(k, None)?;
        let logprobs = self.release_logprobs(k)?;
        if !self.text.is_empty() || logprobs.is_some() {
            self.released.entry(k).or_default().push_str(&self.text);
            let mut delta = body.clone();
            delta.remove(field);
            delta.remove("logprobs");
            delta.insert("type".into(), delta_type.into());
            delta.insert("delta".into(), Value::String(self.text.clone()));
            if let Some(logprobs) = logprobs {
                delta.insert("logprobs".into(), logprobs);
            }
            sse::encode(Some(delta_type), &Value::Object(delta).to_string(), out);
        }
        let whole = self.released.get(&k).cloned().unwrap_or_default();
        body.insert(field.into(), Value::String(whole));
        // The done event's own copy of the log probabilities, if it has one.
        if let Some(logprobs) = body.get_mut("logprobs") {
            self.check_logprobs(logprobs)?;
        }
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
        let index = body
            .get("output_index")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let item_id = body
            .get("item_id")
            .or_else(|| body.get("item").and_then(|i| i.get("id")));
        if let Some(id) = item_id {
            self.item_ids.insert(index, id.clone());
        }
        match kind.as_str() {
            "response.output_item.added" | "response.output_item.done" => {
                if let Some(item) = body.get_mut("item") {
                    self.rewrite_item(index, item)?;
                }
            }
            "response.content_part.added"
            | "response.content_part.done"
            | "response.reasoning_summary_part.added"
            | "response.reasoning_summary_part.done" => {
                let get = |k: &str| body.get(k).and_then(Value::as_u64);
                let j = get("content_index")
                    .or_else(|| get("summary_index"))
                    .unwrap_or(0);
                let summary = kind.starts_with("response.reasoning_summary_part");
                if let Some(part) = body.get_mut("part") {
                    self.rewrite_part(index, j, part, summary)?;
                }
            }
            "response.created"
            | "response.in_progress"
            | "response.queued"
            | "response.completed"
            | "response.incomplete"
            | "response.failed" => {
                if matches!(
                    kind.as_str(),
                    "response.completed" | "response.incomplete" | "response.failed"
                ) {
                    // What the pipelines still hold goes out before the end is announced.
                    self.flush_responses(out)?;
                }
                if let Some(response) = body.get_mut("response") {
                    if let Some(usage) = Usage::from_value(response.get("usage")) {
                        self.usage = Some(usage);
                    }
                    if let Some(envelope) = response.as_object().filter(|_| self.response.is_none())
                    {
                        let mut envelope = envelope.clone();
                        envelope.remove("output");
                        self.response = Some(envelope);
                    }
                    if let Some(Value::Array(items)) = response.get_mut("output") {
                        for (i, item) in items.iter_mut().enumerate() {
                            self.rewrite_item(i as u64, item)?;
                        }
                    }
                    // The rest of the response object (its `output_text`, an error), but not
                    // the items just rewritten nor the request it echoes.
                    let output = response.as_object_mut().and_then(|r| r.remove("output"));
                    self.scan_strings(response, true)?;
                    if let (Some(output), Some(r)) = (output, response.as_object_mut()) {
                        r.insert("output".into(), output);
                    }
                }
                if matches!(
                    kind.as_str(),
                    "response.completed" | "response.incomplete" | "response.failed"
                ) {
                    self.saw_done = true;
                }
            }
            _ => {
                let text_delta = body.get("delta").is_some_and(Value::is_string);
                let done_field = DONE_FIELDS
                    .iter()
                    .find(|f| body.get(**f).is_some_and(Value::is_string));
                if let (Some(family), true) = (kind.strip_suffix(".delta"), text_delta) {
                    let k = self.part_key(family, &body);
                    self.filter_part_delta(k, &mut body)?;
                } else if let (Some(family), Some(field)) = (kind.strip_suffix(".done"), done_field)
                {
                    let k = self.part_key(family, &body);
                    let delta_type = format!("{family}.delta");
                    self.finish_part(k, &mut body, field, &delta_type, out)?;
                } else {
                    // An error event, or an event the gateway does not know: every string in it.
                    let mut value = Value::Object(std::mem::take(&mut body));
                    self.scan_strings(&mut value, false)?;
                    if let Value::Object(map) = value {
                        body = map;
                    }
                }
            }
        }
        sse::encode(event, &Value::Object(body).to_string(), out);
        Ok(())
    }

    /// Give an output item the text its parts released as deltas; whatever the stream never
    /// delivered as deltas (a part first seen whole, names, annotations) is scanned whole.
    fn rewrite_item(&mut self, output_index: u64, item: &mut Value) -> Result<(), StreamEnd> {
        let Some(map) = item.as_object_mut() else {
            return self.scan_strings(item, false);
        };
        let mut held = Vec::new();
        if map.get("type").and_then(Value::as_str) == Some("function_call") {
            let key = (output_index, ARGUMENTS_KEY);
            if let Some(released) = self.released.get(&key) {
                map.insert("arguments".into(), Value::String(released.clone()));
                held.extend(map.remove_entry("arguments"));
            }
        }
        for list in ["content", "summary"] {
            if let Some(Value::Array(parts)) = map.get_mut(list) {
                for (j, part) in parts.iter_mut().enumerate() {
                    self.rewrite_part(output_index, j as u64, part, list == "summary")?;
                }
                held.extend(map.remove_entry(list));
            }
        }
        let mut rest = Value::Object(std::mem::take(map));
        self.scan_strings(&mut rest, false)?;
        if let Value::Object(rest) = rest {
            *map = rest;
        }
        map.extend(held);
        Ok(())
    }

    /// Give a content (or reasoning summary) part the text released for it; scan it whole when
    /// the stream delivered none.
    fn rewrite_part(
        &mut self,
        output_index: u64,
        j: u64,
        part: &mut Value,
        summary: bool,
    ) -> Result<(), StreamEnd> {
        let kind = part.get("type").and_then(Value::as_str).unwrap_or("");
        let (family, field) = match kind {
            _ if summary => ("response.reasoning_summary_text", "text"),
            "output_text" => ("response.output_text", "text"),
            "refusal" => ("response.refusal", "refusal"),
            "reasoning_text" => ("response.reasoning_text", "text"),
            _ => return self.scan_strings(part, false),
        };
        let place = self.part_place(family, j.min(PARTS - 1));
        let released = self.released.get(&(output_index, place)).cloned();
        let Some(map) = part.as_object_mut() else {
            return Ok(());
        };
        let text = match released {
            Some(text) => Some(text),
            None => map
                .remove(field)
                .map(|mut v| {
                    let r = self.scan_strings(&mut v, false);
                    (v, r)
                })
                .map(|(v, r)| r.map(|()| v.as_str().unwrap_or("").to_string()))
                .transpose()?,
        };
        let mut rest = Value::Object(std::mem::take(map));
        self.scan_strings(&mut rest, false)?;
        if let Value::Object(rest) = rest {
            *map = rest;
        }
        if let Some(text) = text {
            map.insert(field.into(), Value::String(text));
        }
        Ok(())
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

    /// Upper-cases untrusted text and lower-cases trusted text, counting each.
    struct Cases;
    impl Policy for Cases {
        fn scan_input(
            &self,
            texts: &[&str],
            trust: Trust,
            _: &mut Vault,
        ) -> crate::policy::InputScan {
            let rewritten = texts
                .iter()
                .map(|t| match trust {
                    Trust::Trusted => t.to_lowercase(),
                    _ => t.to_uppercase(),
                })
                .collect::<Vec<_>>();
            crate::policy::InputScan {
                action: Action::Redact,
                redactions: rewritten.len() as u32,
                rewritten: Some(rewritten),
                hits: vec![],
            }
        }
        fn output_scanner(&self) -> Box<dyn crate::policy::OutputScanner> {
            Off.output_scanner()
        }
    }

    #[test]
    fn request_scan_visits_every_role_and_field_but_structure() {
        let mut body: Map<String, Value> = serde_json::from_value(json!({
            "model": "m", "extra": {"kept": true, "note": "x"},
            "messages": [
                {"role": "system", "content": "Sys"},
                {"role": "user", "content": "hi"},
                {"role": "user", "content": [{"type": "text", "text": "part"}, {"type": "image_url", "image_url": {"url": "https://e.test/a.png"}}]},
                {"role": "assistant", "content": "asst"},
                {"role": "tool", "content": "tool", "tool_call_id": "t"}
            ]
        }))
        .unwrap();
        let mut verdicts = Verdicts::default();
        let rules = InputRules {
            trusted_roles: vec![Role::System],
            ..InputRules::default()
        };
        let mut prompt = String::new();
        scan_request(
            Endpoint::ChatCompletions,
            &mut body,
            &Cases,
            &rules,
            &mut Vault::default(),
            &mut verdicts,
            Some(&mut prompt),
        )
        .unwrap();
        let v = Value::Object(body);
        assert_eq!(v["model"], "m");
        assert_eq!(v["messages"][0]["role"], "system");
        assert_eq!(v["messages"][0]["content"], "sys");
        assert_eq!(v["messages"][1]["content"], "HI");
        assert_eq!(v["messages"][2]["content"][0]["text"], "PART");
        assert_eq!(v["messages"][2]["content"][0]["type"], "text");
        assert_eq!(
            v["messages"][2]["content"][1]["image_url"]["url"],
            "HTTPS://E.TEST/A.PNG"
        );
        assert_eq!(v["messages"][3]["content"], "ASST");
        assert_eq!(v["messages"][4]["content"], "TOOL");
        assert_eq!(v["messages"][4]["tool_call_id"], "t");
        assert_eq!(v["extra"]["kept"], true);
        assert_eq!(v["extra"]["note"], "X");
        assert_eq!(verdicts.redactions, 7);
        assert_eq!(prompt, "HI\nPART\nHTTPS://E.TEST/A.PNG\nTOOL");
    }

    #[test]
    fn unreadable_payloads_follow_the_rule() {
        let body = || -> Map<String, Value> {
            serde_json::from_value(json!({"messages": [{"role": "user", "content": [
                {"type": "text", "text": "look"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
            ]}]}))
            .unwrap()
        };
        let run = |unreadable: Unreadable| {
            let mut b = body();
            let rules = InputRules {
                unreadable,
                ..InputRules::default()
            };
            let mut verdicts = Verdicts::default();
            let result = scan_request(
                Endpoint::ChatCompletions,
                &mut b,
                &Off,
                &rules,
                &mut Vault::default(),
                &mut verdicts,
                None,
            );
            (result, b, verdicts)
        };
        let (result, b, verdicts) = run(Unreadable::Flag);
        assert!(result.is_ok());
        assert_eq!(
            b["messages"][0]["content"].as_array().map(Vec::len),
            Some(2)
        );
        assert_eq!(verdicts.detectors.get(UNREADABLE), Some(&1));
        let (result, _, _) = run(Unreadable::Block);
        assert_eq!(
            result.err().map(|b| b.detector),
            Some(UNREADABLE.to_string())
        );
        let (result, b, _) = run(Unreadable::Strip);
        assert!(result.is_ok());
        assert_eq!(
            b["messages"][0]["content"].as_array().map(Vec::len),
            Some(1)
        );
        let (_, _, verdicts) = run(Unreadable::Allow);
        assert!(verdicts.detectors.is_empty());
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
