//! Turning the bytes of a user's file into typed values, with errors that say where.

use serde::de::DeserializeOwned;

use crate::diag::{Diagnostic, Diagnostics, Location, did_you_mean};

/// The largest estate or catalog file accepted. Real estates are a few MB; a bigger file
/// is almost certainly a mistake, and refusing it keeps memory bounded.
pub const MAX_FILE_BYTES: usize = 64 * 1024 * 1024;

/// The syntax a document is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    Yaml,
    Json,
}

impl Syntax {
    /// `.json` files, or text whose first non-blank character is `{`, are JSON.
    pub fn detect(file: &str, text: &str) -> Self {
        let json_name = file.to_ascii_lowercase().ends_with(".json");
        if json_name || text.trim_start().starts_with('{') {
            Self::Json
        } else {
            Self::Yaml
        }
    }
}

/// Check that `bytes` are a plausible text document and return them as `&str`.
pub fn as_text<'a>(file: &str, bytes: &'a [u8]) -> Result<&'a str, Diagnostics> {
    let fail = |message: String, help: &str, location: Option<Location>| {
        let mut d = Diagnostic::error("", message).with_help(help);
        d.location = location;
        Diagnostics::single(file, d)
    };
    if bytes.len() > MAX_FILE_BYTES {
        return Err(fail(
            format!(
                "file is {} bytes; the limit is {} bytes",
                bytes.len(),
                MAX_FILE_BYTES
            ),
            "split the estate into smaller files, or check that this is the file you meant",
            None,
        ));
    }
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let offset = e.valid_up_to();
        fail(
            format!("not a text file: invalid UTF-8 at byte {offset}"),
            "estate and catalog files are YAML or JSON in UTF-8",
            Some(location_of(bytes, offset)),
        )
    })?;
    if let Some(offset) = text.find('\0') {
        return Err(fail(
            "not a text file: it contains a NUL byte".into(),
            "estate and catalog files are YAML or JSON in UTF-8",
            Some(location_of(bytes, offset)),
        ));
    }
    if text.trim().is_empty() {
        return Err(fail(
            "file is empty".into(),
            "run `demarc init` for a starter estate",
            None,
        ));
    }
    Ok(text)
}

/// Deserialize a YAML or JSON document into `T`. serde stops at the first structural
/// problem (a wrong type, an unknown field); that one is reported with its position.
pub fn from_text<T: DeserializeOwned>(file: &str, text: &str) -> Result<T, Diagnostics> {
    let (message, location) = match Syntax::detect(file, text) {
        Syntax::Json => match serde_json::from_str(text) {
            Ok(value) => return Ok(value),
            Err(e) => {
                let full = e.to_string();
                let message = match full.rfind(" at line ") {
                    Some(i) => full[..i].to_string(),
                    None => full,
                };
                (
                    message,
                    (e.line() > 0).then(|| Location {
                        line: e.line(),
                        // serde_json says column 0 for an error just after a line break
                        // (a raw newline inside a string); columns count from 1.
                        column: e.column().max(1),
                    }),
                )
            }
        },
        // A streaming deserializer: serde_yaml would first hold every event of the
        // document in memory (about ten times the file's size).
        Syntax::Yaml => match crate::yaml::from_str(text) {
            Ok(value) => return Ok(value),
            Err(e) => (
                e.message,
                e.location.map(|(line, column)| Location { line, column }),
            ),
        },
    };
    let mut d = Diagnostic::error("", lowercase_first(&message));
    d.help = help_for_serde_message(&message);
    d.location = location.map(|l| clamp_to_text(text, l));
    Err(Diagnostics::single(file, d))
}

/// The YAML parsers report end-of-input one line past a last line that has no newline;
/// point at the end of the text instead, so every location is inside the file.
pub(crate) fn clamp_to_text(text: &str, location: Location) -> Location {
    clamp_to_end(end_of(text), location)
}

/// The location just past the last byte of `text` (one scan: compute it once per file).
pub(crate) fn end_of(text: &str) -> Location {
    location_of(text.as_bytes(), text.len())
}

/// `location`, or `end` when it lies past the end of the text.
pub(crate) fn clamp_to_end(end: Location, location: Location) -> Location {
    if location.line > end.line {
        end
    } else {
        location
    }
}

/// For "unknown field `x`, expected one of `a`, `b`" style messages, suggest the closest.
fn help_for_serde_message(message: &str) -> Option<String> {
    let (kind_start, _) = ["unknown field `", "unknown variant `"]
        .iter()
        .filter_map(|p| message.find(p).map(|i| (i + p.len(), *p)))
        .next()?;
    let rest = &message[kind_start..];
    let given = &rest[..rest.find('`')?];
    let expected_at = message
        .find("expected one of ")
        .or_else(|| message.find("expected "))?;
    let candidates: Vec<&str> = message[expected_at..]
        .split('`')
        .skip(1)
        .step_by(2)
        .collect();
    if candidates.is_empty() {
        return None;
    }
    Some(did_you_mean(given, candidates.iter().copied()))
}

fn lowercase_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// 1-based line and column of a byte offset.
pub fn location_of(bytes: &[u8], offset: usize) -> Location {
    let before = &bytes[..offset.min(bytes.len())];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |i| i + 1);
    Location {
        line,
        column: offset.saturating_sub(line_start) + 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Thing {
        name: String,
        kind: Kind,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(rename_all = "lowercase")]
    enum Kind {
        Model,
        Platform,
    }

    #[test]
    fn unknown_field_gets_position_and_suggestion() {
        let err = from_text::<Thing>("t.yaml", "name: a\nkindd: model\n").unwrap_err();
        let d = &err.items[0];
        assert_eq!(d.location.map(|l| l.line), Some(2));
        assert!(d.message.contains("unknown field `kindd`"), "{}", d.message);
        assert_eq!(d.help.as_deref(), Some("did you mean `kind`?"));
    }

    #[test]
    fn unknown_variant_in_json() {
        let err =
            from_text::<Thing>("t.json", "{\"name\": \"a\",\n \"kind\": \"modle\"}").unwrap_err();
        let d = &err.items[0];
        assert_eq!(d.location.map(|l| l.line), Some(2));
        assert_eq!(d.help.as_deref(), Some("did you mean `model`?"));
    }

    #[test]
    fn end_of_input_is_located_inside_the_file() {
        // "missing field" comes at the end of input, which has no line of its own here.
        let err = from_text::<Thing>("t.yaml", "# nothing").unwrap_err();
        assert_eq!(err.items[0].location.map(|l| l.line), Some(1));
    }

    #[test]
    fn rejects_binary_empty_and_huge() {
        assert!(
            as_text("f", b"\x00\x01\x02")
                .unwrap_err()
                .to_string()
                .contains("NUL")
        );
        assert!(
            as_text("f", b"a: \xff\xfe")
                .unwrap_err()
                .to_string()
                .contains("invalid UTF-8")
        );
        assert!(
            as_text("f", b"  \n ")
                .unwrap_err()
                .to_string()
                .contains("empty")
        );
        let big = vec![b'a'; MAX_FILE_BYTES + 1];
        assert!(
            as_text("f", &big)
                .unwrap_err()
                .to_string()
                .contains("limit")
        );
    }
}
