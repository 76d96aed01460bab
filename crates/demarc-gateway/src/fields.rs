//! Where text lives in an OpenAI-shaped body, found by structure rather than by a list of
//! known fields: every string of a request is text the model may read, and every string of a
//! response is text the caller reads, except the values of [`STRUCTURAL`] keys (identifiers
//! and enumerations). A field the gateway has never heard of is therefore scanned, not passed.
//!
//! Payloads that are not text (images, audio, files) are found here too: a data URL or file
//! whose media type is text is decoded and scanned like any text ("text in disguise"); the rest
//! is *unreadable* and left to the application's `input.unreadable` action.

use base64::Engine as _;
use serde_json::{Map, Value};

/// Keys whose values are identifiers, enumerations or opaque tokens: neither the model nor the
/// caller reads them as prose. Only a string (or a list of strings) under these keys is
/// skipped; an object under them is still walked (`format: {type: json_schema, ...}`).
pub const STRUCTURAL: &[&str] = &[
    "model",
    "role",
    "type",
    "object",
    "id",
    "call_id",
    "tool_call_id",
    "item_id",
    "response_id",
    "previous_response_id",
    "file_id",
    "vector_store_ids",
    "finish_reason",
    "status",
    "system_fingerprint",
    "service_tier",
    "encoding_format",
    "reasoning_effort",
    "effort",
    "detail",
    "voice",
    "format",
    "modalities",
    "truncation",
    "include",
    "logit_bias",
    // Encrypted reasoning the provider hands back to itself: opaque, not readable by anyone.
    "encrypted_content",
    "signature",
    // Random padding some providers add to streamed events against length side channels.
    "obfuscation",
];

/// Keys of a Responses object that echo the request (the application's own instructions and
/// tool definitions), not output of the model.
const RESPONSE_ECHO: &[&str] = &[
    "instructions",
    "tools",
    "tool_choice",
    "metadata",
    "user",
    "prompt",
    "text",
    "reasoning",
    "input",
];

/// Who wrote a piece of input, as far as the model is concerned. `input.trusted_roles` in the
/// application's config names roles whose text is not scanned for prompt injection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    System,
    Developer,
    User,
    Assistant,
    Tool,
    /// A top-level request field read by the model (tool descriptions, `user`, `metadata`,
    /// `prediction`, prompt variables).
    Request,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::System,
        Role::Developer,
        Role::User,
        Role::Assistant,
        Role::Tool,
        Role::Request,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::Developer => "developer",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
            Role::Request => "request",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// The role of a chat message or Responses item, from its `role` or its `type`.
    fn of_item(item: &Map<String, Value>) -> Option<Role> {
        match item.get("role").and_then(Value::as_str) {
            Some("system") => return Some(Role::System),
            Some("developer") => return Some(Role::Developer),
            Some("user") => return Some(Role::User),
            Some("assistant") => return Some(Role::Assistant),
            Some("tool" | "function") => return Some(Role::Tool),
            _ => {}
        }
        let kind = item.get("type").and_then(Value::as_str)?;
        if kind.ends_with("_call_output") || kind.ends_with("_output") {
            Some(Role::Tool)
        } else if kind.ends_with("_call") || kind == "reasoning" {
            Some(Role::Assistant)
        } else {
            None
        }
    }
}

/// How a text sits in its string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wrapping {
    /// The string is the text.
    Plain,
    /// A data URL (`data:text/plain;base64,...`) or a raw base64 file of a text type: the
    /// decoded text is scanned, and re-encoded the same way when the policy rewrites it.
    Encoded { prefix: String, base64: bool },
}

/// One text of a request the model will read.
pub struct Text<'a> {
    pub role: Role,
    pub target: &'a mut String,
    pub wrapping: Wrapping,
    /// The text to scan (decoded when wrapped).
    pub text: String,
}

impl Text<'_> {
    /// Replace the text, keeping its wrapping.
    pub fn set(&mut self, text: String) {
        *self.target = match &self.wrapping {
            Wrapping::Plain => text.clone(),
            Wrapping::Encoded { prefix, base64 } if *base64 => format!(
                "{prefix}{}",
                base64::engine::general_purpose::STANDARD.encode(text.as_bytes())
            ),
            Wrapping::Encoded { prefix, .. } => format!("{prefix}{}", percent_encode(&text)),
        };
        self.text = text;
    }
}

/// Where an unreadable payload sits, to strip it: the path of keys and indices from the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Key(String),
    Index(usize),
}

/// A payload the gateway cannot read as text.
#[derive(Debug, Clone)]
pub struct Unreadable {
    pub role: Role,
    /// What it is, for the audit (`image/png`, `audio`, `file:report.pdf`).
    pub what: String,
    pub path: Vec<Step>,
}

/// Everything a request gives the model to read.
#[derive(Default)]
pub struct RequestTexts<'a> {
    pub texts: Vec<Text<'a>>,
    pub unreadable: Vec<Unreadable>,
}

/// Collect every text of a request body, with its role, in document order.
pub fn request_texts(body: &mut Map<String, Value>) -> RequestTexts<'_> {
    let mut found = RequestTexts::default();
    let mut path = Vec::new();
    for (key, value) in body.iter_mut() {
        if skipped(key, value) {
            continue;
        }
        let role = match key.as_str() {
            "instructions" => Role::System,
            "messages" | "input" => Role::User,
            // Legacy completions' prompt; a Responses prompt template is an object.
            "prompt" if !value.is_object() => Role::User,
            _ => Role::Request,
        };
        path.push(Step::Key(key.clone()));
        walk_input(value, Some(key), role, &mut found, &mut path);
        path.pop();
    }
    found
}

fn skipped(key: &str, value: &Value) -> bool {
    STRUCTURAL.contains(&key)
        && match value {
            Value::Array(items) => items.iter().all(|v| !v.is_object()),
            v => !v.is_object(),
        }
}

fn walk_input<'a>(
    value: &'a mut Value,
    key: Option<&str>,
    role: Role,
    found: &mut RequestTexts<'a>,
    path: &mut Vec<Step>,
) {
    match value {
        Value::String(s) => {
            if let Some(text) = input_text(s, key, role, found, path) {
                found.texts.push(text);
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                path.push(Step::Index(i));
                walk_input(item, key, role, found, path);
                path.pop();
            }
        }
        Value::Object(map) => {
            let role = Role::of_item(map).unwrap_or(role);
            let filename = map
                .get("filename")
                .and_then(Value::as_str)
                .map(str::to_string);
            for (k, v) in map.iter_mut() {
                if skipped(k, v) {
                    continue;
                }
                path.push(Step::Key(k.clone()));
                if is_payload_key(k) && v.is_string() {
                    let at = path.clone();
                    if let Value::String(s) = v
                        && let Some(text) = raw_payload(s, k, filename.as_deref(), role, found, at)
                    {
                        found.texts.push(text);
                    }
                } else {
                    walk_input(v, Some(k), role, found, path);
                }
                path.pop();
            }
        }
        _ => {}
    }
}

/// Keys whose string is a raw (not data URL) base64 payload.
fn is_payload_key(key: &str) -> bool {
    matches!(key, "file_data" | "data" | "b64_json")
}

/// A string of a request: text, a data URL of text, or an unreadable data URL.
fn input_text<'a>(
    s: &'a mut String,
    _key: Option<&str>,
    role: Role,
    found: &mut RequestTexts<'a>,
    path: &[Step],
) -> Option<Text<'a>> {
    if !starts_with_ignore_case(s, "data:") {
        let text = s.clone();
        return Some(Text {
            role,
            target: s,
            wrapping: Wrapping::Plain,
            text,
        });
    }
    match decode_data_url(s) {
        Ok((prefix, base64, text)) => Some(Text {
            role,
            target: s,
            wrapping: Wrapping::Encoded { prefix, base64 },
            text,
        }),
        Err(NotText(what)) => {
            found.unreadable.push(Unreadable {
                role,
                what,
                path: path.to_vec(),
            });
            None
        }
    }
}

/// A raw base64 payload (`file_data`, audio `data`, `b64_json`): read when its file name says
/// it is text, otherwise unreadable.
fn raw_payload<'a>(
    s: &'a mut String,
    key: &str,
    filename: Option<&str>,
    role: Role,
    found: &mut RequestTexts<'a>,
    path: Vec<Step>,
) -> Option<Text<'a>> {
    if starts_with_ignore_case(s, "data:") {
        return input_text(s, Some(key), role, found, &path);
    }
    let textual = filename.is_some_and(is_text_file_name);
    let decoded = textual
        .then(|| base64::engine::general_purpose::STANDARD.decode(s.trim().as_bytes()))
        .and_then(Result::ok)
        .and_then(|bytes| String::from_utf8(bytes).ok());
    match decoded {
        Some(text) => Some(Text {
            role,
            target: s,
            wrapping: Wrapping::Encoded {
                prefix: String::new(),
                base64: true,
            },
            text,
        }),
        None => {
            let what = match (key, filename) {
                (_, Some(name)) => format!("file:{name}"),
                ("data", None) => "audio".to_string(),
                ("b64_json", None) => "image".to_string(),
                _ => "file".to_string(),
            };
            found.unreadable.push(Unreadable { role, what, path });
            None
        }
    }
}

fn starts_with_ignore_case(s: &str, prefix: &str) -> bool {
    s.len() >= prefix.len() && s.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

/// Whether a media type is text a model reads as such.
pub fn is_text_media_type(media: &str) -> bool {
    let media = media.trim().to_ascii_lowercase();
    media.is_empty()
        || media.starts_with("text/")
        || media.ends_with("+json")
        || media.ends_with("+xml")
        || matches!(
            media.as_str(),
            "application/json"
                | "application/xml"
                | "application/yaml"
                | "application/x-yaml"
                | "application/javascript"
                | "application/x-ndjson"
                | "application/csv"
                | "application/sql"
                | "application/x-sh"
        )
}

fn is_text_file_name(name: &str) -> bool {
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    matches!(
        ext.as_deref(),
        Some(
            "txt"
                | "md"
                | "markdown"
                | "csv"
                | "tsv"
                | "json"
                | "jsonl"
                | "xml"
                | "yaml"
                | "yml"
                | "html"
                | "htm"
                | "log"
                | "ini"
                | "toml"
                | "py"
                | "js"
                | "ts"
                | "rs"
                | "go"
                | "java"
                | "c"
                | "h"
                | "cpp"
                | "sh"
                | "sql"
        )
    )
}

/// A data URL that does not hold readable text: what it holds, for the audit and the error.
struct NotText(String);

/// Decode a data URL of a text type: `(prefix up to and including the comma, base64?, text)`.
fn decode_data_url(url: &str) -> Result<(String, bool, String), NotText> {
    let Some(comma) = url.find(',') else {
        return Err(NotText("malformed data URL".into()));
    };
    let header = &url[5..comma];
    let mut params = header.split(';');
    let media = params.next().unwrap_or("").to_string();
    let base64 = params.any(|p| p.trim().eq_ignore_ascii_case("base64"));
    if !is_text_media_type(&media) {
        return Err(NotText(media.to_ascii_lowercase()));
    }
    let payload = &url[comma + 1..];
    let bytes = if base64 {
        base64::engine::general_purpose::STANDARD
            .decode(payload.trim().as_bytes())
            .map_err(|_| NotText(format!("{media} (base64 that does not decode)")))?
    } else {
        percent_encoding::percent_decode_str(payload).collect()
    };
    let text = String::from_utf8(bytes).map_err(|_| NotText(format!("{media} (not UTF-8)")))?;
    Ok((url[..=comma].to_string(), base64, text))
}

/// What a re-encoded data URL escapes: every byte but letters, digits, `-`, `_`, `.`, `~` and
/// the space (kept as written, so redacted text stays readable in the URL).
const DATA_URL_ESCAPED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b' ');

fn percent_encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, DATA_URL_ESCAPED).to_string()
}

/// Remove the content parts (or, outside a list, blank the strings) at `paths`.
pub fn strip(body: &mut Map<String, Value>, paths: &[Vec<Step>]) {
    // Deepest and last first, so earlier indices stay valid.
    let mut paths: Vec<&Vec<Step>> = paths.iter().collect();
    paths.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| cmp_path(b, a)));
    for path in paths {
        // The nearest list element above the payload is the part to remove.
        let Some(cut) = path.iter().rposition(|s| matches!(s, Step::Index(_))) else {
            if let Some(Value::String(s)) = lookup(body, path) {
                s.clear();
            }
            continue;
        };
        let (Some(Step::Index(i)), parent) = (path.get(cut), &path[..cut]) else {
            continue;
        };
        if let Some(Value::Array(items)) = lookup(body, parent)
            && *i < items.len()
        {
            items.remove(*i);
        }
    }
}

fn cmp_path(a: &[Step], b: &[Step]) -> std::cmp::Ordering {
    for (x, y) in a.iter().zip(b) {
        let o = match (x, y) {
            (Step::Index(x), Step::Index(y)) => x.cmp(y),
            (Step::Key(x), Step::Key(y)) => x.cmp(y),
            (Step::Key(_), Step::Index(_)) => std::cmp::Ordering::Less,
            (Step::Index(_), Step::Key(_)) => std::cmp::Ordering::Greater,
        };
        if o != std::cmp::Ordering::Equal {
            return o;
        }
    }
    a.len().cmp(&b.len())
}

fn lookup<'a>(body: &'a mut Map<String, Value>, path: &[Step]) -> Option<&'a mut Value> {
    let (Step::Key(first), rest) = path.split_first()? else {
        return None;
    };
    let mut value = body.get_mut(first)?;
    for step in rest {
        value = match step {
            Step::Key(k) => value.get_mut(k.as_str())?,
            Step::Index(i) => value.get_mut(*i)?,
        };
    }
    Some(value)
}

/// What a response body gives the caller to read.
#[derive(Default)]
pub struct OutputTexts<'a> {
    /// Every string but structure, payloads and log probabilities, in document order.
    pub strings: Vec<&'a mut String>,
    /// Each `logprobs` value: its tokens spell the text again, so they are checked together
    /// (see `openai::filter_logprobs`).
    pub logprobs: Vec<&'a mut Value>,
}

/// Collect what a response body (or a streamed event) gives the caller to read. `responses`
/// skips the request echo at the top of a Responses object.
pub fn output_texts(body: &mut Value, responses: bool) -> OutputTexts<'_> {
    let mut out = OutputTexts::default();
    match body {
        Value::Object(map) => walk_output_object(map, responses, &mut out),
        other => walk_output(other, &mut out),
    }
    out
}

fn walk_output<'a>(value: &'a mut Value, out: &mut OutputTexts<'a>) {
    match value {
        Value::String(s) => out.strings.push(s),
        Value::Array(items) => {
            for item in items {
                walk_output(item, out);
            }
        }
        Value::Object(map) => walk_output_object(map, false, out),
        _ => {}
    }
}

fn walk_output_object<'a>(map: &'a mut Map<String, Value>, echo: bool, out: &mut OutputTexts<'a>) {
    for (k, v) in map.iter_mut() {
        // Audio and image payloads of an answer are not text (their transcript is).
        if skipped(k, v)
            || (is_payload_key(k) && v.is_string())
            || (echo && RESPONSE_ECHO.contains(&k.as_str()))
        {
            continue;
        }
        if k == "logprobs" {
            if !v.is_null() {
                out.logprobs.push(v);
            }
            continue;
        }
        walk_output(v, out);
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
    use serde_json::json;

    fn body(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    fn with_roles<'a>(found: &'a RequestTexts<'_>) -> Vec<(Role, &'a str)> {
        found
            .texts
            .iter()
            .map(|t| (t.role, t.text.as_str()))
            .collect()
    }

    #[test]
    fn every_text_of_a_chat_request_is_found_with_its_role() {
        let mut b = body(json!({
            "model": "gpt-4o",
            "messages": [
                {"role": "system", "content": "sys"},
                {"role": "developer", "content": [{"type": "text", "text": "dev"}]},
                {"role": "user", "content": "hi", "name": "nm"},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{\"a\":\"args\"}"}}
                ]},
                {"role": "tool", "tool_call_id": "call_1", "content": "result"}
            ],
            "tools": [{"type": "function", "function": {"name": "f", "description": "desc", "parameters": {"type": "object", "properties": {"a": {"type": "string", "description": "pdesc"}}}}}],
            "user": "u@example.com",
            "metadata": {"k": "meta"},
            "prediction": {"type": "content", "content": "pred"},
            "temperature": 0.2
        }));
        let found = request_texts(&mut b);
        let got = with_roles(&found);
        for want in [
            (Role::System, "sys"),
            (Role::Developer, "dev"),
            (Role::User, "hi"),
            (Role::User, "nm"),
            (Role::Assistant, "{\"a\":\"args\"}"),
            (Role::Tool, "result"),
            (Role::Request, "desc"),
            (Role::Request, "pdesc"),
            (Role::Request, "u@example.com"),
            (Role::Request, "meta"),
            (Role::Request, "pred"),
        ] {
            assert!(got.contains(&want), "{want:?} missing from {got:?}");
        }
        for skipped in ["gpt-4o", "system", "call_1", "function", "object", "string"] {
            assert!(
                !got.iter().any(|(_, t)| *t == skipped),
                "{skipped} is structural"
            );
        }
    }

    #[test]
    fn responses_items_take_roles_from_role_or_type() {
        let mut b = body(json!({
            "instructions": "ins",
            "input": [
                {"role": "developer", "content": [{"type": "input_text", "text": "dev"}]},
                {"type": "function_call", "call_id": "c", "name": "f", "arguments": "args"},
                {"type": "function_call_output", "call_id": "c", "output": "out"}
            ],
            "prompt": {"id": "pmpt_1", "variables": {"city": "var"}}
        }));
        let found = request_texts(&mut b);
        let got = with_roles(&found);
        for want in [
            (Role::System, "ins"),
            (Role::Developer, "dev"),
            (Role::Assistant, "args"),
            (Role::Tool, "out"),
            (Role::Request, "var"),
        ] {
            assert!(got.contains(&want), "{want:?} missing from {got:?}");
        }
    }

    #[test]
    fn percent_encode_keeps_unreserved_and_spaces_and_escapes_the_rest() {
        // The rule as it was written by hand before the percent-encoding crate did it.
        let by_hand = |s: &str| {
            s.bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() || b"-_.~ ".contains(&b) {
                        (b as char).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect::<String>()
        };
        let ascii: String = (0u8..128).map(char::from).collect();
        for text in [
            ascii.as_str(),
            "a b%",
            "café ünïcode 😀",
            "100% [[EMAIL_1a2b]]\r\n",
            "",
        ] {
            assert_eq!(percent_encode(text), by_hand(text), "{text:?}");
            let encoded = percent_encode(text);
            let back = percent_encoding::percent_decode_str(&encoded).decode_utf8();
            assert_eq!(back.unwrap(), text);
        }
        assert_eq!(percent_encode("a b%/é"), "a b%25%2F%C3%A9");
    }

    #[test]
    fn text_data_urls_are_decoded_and_reencoded_images_are_unreadable() {
        let plain = base64::engine::general_purpose::STANDARD.encode("hello there");
        let mut b = body(json!({"messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": format!("data:text/plain;base64,{plain}")}},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
            {"type": "file", "file": {"filename": "notes.txt", "file_data": base64::engine::general_purpose::STANDARD.encode("file text")}},
            {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
            {"type": "text", "text": "data:,plain%20percent"}
        ]}]}));
        let mut found = request_texts(&mut b);
        let texts: Vec<&str> = found.texts.iter().map(|t| t.text.as_str()).collect();
        assert_eq!(
            texts,
            ["hello there", "file text", "notes.txt", "plain percent"]
        );
        let what: Vec<&str> = found.unreadable.iter().map(|u| u.what.as_str()).collect();
        assert_eq!(what, ["image/png", "audio"]);
        found.texts[0].set("HELLO".into());
        found.texts[3].set("a b%".into());
        let unreadable: Vec<Vec<Step>> = found.unreadable.iter().map(|u| u.path.clone()).collect();
        drop(found);
        assert_eq!(
            b["messages"][0]["content"][0]["image_url"]["url"],
            format!(
                "data:text/plain;base64,{}",
                base64::engine::general_purpose::STANDARD.encode("HELLO")
            )
        );
        assert_eq!(b["messages"][0]["content"][4]["text"], "data:,a b%25");
        strip(&mut b, &unreadable);
        let parts = b["messages"][0]["content"].as_array().map(Vec::len);
        assert_eq!(parts, Some(3), "{b:?}");
    }

    #[test]
    fn output_strings_skip_structure_and_the_request_echo() {
        let mut v = json!({
            "id": "resp_1", "object": "response", "status": "completed",
            "instructions": "echoed system prompt",
            "output": [{"type": "message", "id": "m", "role": "assistant", "content": [
                {"type": "output_text", "text": "answer", "annotations": []},
                {"type": "refusal", "refusal": "no"}
            ]}],
            "output_text": "answer"
        });
        let got: Vec<String> = output_texts(&mut v, true)
            .strings
            .into_iter()
            .map(|s| s.clone())
            .collect();
        assert_eq!(got, ["answer", "no", "answer"]);
    }
}
