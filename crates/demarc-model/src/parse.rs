//! Turning the bytes of a user's file into typed values, with errors that say where.

use serde::de::DeserializeOwned;

use crate::diag::{Diagnostic, Diagnostics, Location};

/// The largest estate or catalog file accepted (the limit every YAML file demarc reads is
/// held to; docs/yaml.md).
pub use demarc_yaml::limits::MAX_FILE_BYTES;
/// The syntax a document is written in: `.json` files, or text whose first non-blank
/// character is `{`, are JSON.
pub use demarc_yaml::{Syntax, location_of};

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

/// Deserialize a YAML or JSON document into `T` through demarc-yaml (the one YAML stack,
/// with its limits). serde stops at the first structural problem (a wrong type, an unknown
/// field); that one is reported with its position and, for a misspelt name, a suggestion.
pub fn from_text<T: DeserializeOwned>(file: &str, text: &str) -> Result<T, Diagnostics> {
    demarc_yaml::from_text(file, text).map_err(|e| {
        let mut d = Diagnostic::error("", e.message);
        d.help = e.help;
        d.location = e.location;
        Diagnostics::single(file, d)
    })
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
