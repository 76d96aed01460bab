//! Text to typed values, under demarc's limits, with located errors.

use std::fmt;

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::{Location, help_for_serde_message};

/// The limits every YAML file demarc reads is held to (docs/yaml.md).
pub mod limits {
    /// The largest file accepted. Real estates are a few MB; a bigger file is almost
    /// certainly a mistake, and refusing it keeps memory bounded (it also bounds every
    /// scalar, and the number of nodes and events).
    pub const MAX_FILE_BYTES: usize = 64 * 1024 * 1024;
    /// The deepest nesting of mappings and sequences (JSON: serde_json's own 128).
    pub const MAX_DEPTH: usize = 128;
    /// The most events that aliases may replay in one file: an alias bomb ("billion
    /// laughs") is refused when its expansion passes this, long before memory runs out.
    pub const MAX_ALIAS_EVENTS: usize = 1_000_000;
}

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
        if json_name
            || text
                .trim_start_matches('\u{feff}')
                .trim_start()
                .starts_with('{')
        {
            Self::Json
        } else {
            Self::Yaml
        }
    }
}

/// Why a document could not be read into its type: the first structural problem serde met
/// (a syntax error, a wrong type, an unknown field, a limit), with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// Lowercase, no location in it.
    pub message: String,
    /// Inside the file, when known.
    pub location: Option<Location>,
    /// "did you mean `x`?" for unknown fields and variants.
    pub help: Option<String>,
}

impl Error {
    /// Compiler style, `file:line:column: message`, then `  = help: ...`.
    pub fn render(&self, file: &str) -> String {
        let mut out = match self.location {
            Some(l) => format!("{file}:{}:{}: {}", l.line, l.column, self.message),
            None => format!("{file}: {}", self.message),
        };
        if let Some(help) = &self.help {
            out.push_str("\n  = help: ");
            out.push_str(help);
        }
        out
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(l) = self.location {
            write!(f, "line {}, column {}: ", l.line, l.column)?;
        }
        f.write_str(&self.message)?;
        if let Some(help) = &self.help {
            write!(f, " ({help})")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

/// For `#[serde(default, deserialize_with = "demarc_yaml::null_as_default")]` on a list or map
/// field: an empty value (`teams:`, `~`, `null`) reads as the empty collection, as a missing
/// field does. (demarc-yaml itself reads an empty value as an empty list or mapping; this
/// keeps the fields' meaning explicit, and the same for JSON files, where serde_json refuses
/// `null` for a list.)
pub fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// Deserialize a YAML or JSON document ([`Syntax::detect`] by `file`'s name and the first
/// character) into `T`, under [`limits`].
pub fn from_text<T: DeserializeOwned>(file: &str, text: &str) -> Result<T, Error> {
    if text.len() > limits::MAX_FILE_BYTES {
        return Err(Error {
            message: format!(
                "file is {} bytes; the limit is {} bytes",
                text.len(),
                limits::MAX_FILE_BYTES
            ),
            location: None,
            help: None,
        });
    }
    let mut limit = false;
    let (message, location) = match Syntax::detect(file, text) {
        Syntax::Json => {
            let json = text.strip_prefix('\u{feff}').unwrap_or(text);
            match serde_json::from_str(json) {
                Ok(value) => return Ok(value),
                Err(e) => {
                    let full = e.to_string();
                    let message = strip_location(&full).to_string();
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
            }
        }
        Syntax::Yaml => {
            let (yaml, bom) = match text.strip_prefix('\u{feff}') {
                Some(rest) => (rest, true),
                None => (text, false),
            };
            match crate::de::from_str(yaml) {
                Ok(value) => return Ok(value),
                Err(e) => {
                    let location = e.at.map(|m| Location {
                        line: m.line.max(1),
                        // The byte-order mark is a character of the first line.
                        column: m.col + 1 + usize::from(bom && m.line <= 1),
                    });
                    if e.kind == crate::de::Kind::Limit {
                        limit = true;
                    }
                    (e.message, location)
                }
            }
        }
    };
    // serde_json's own nesting limit says "recursion limit exceeded".
    let help = if limit || message.contains("recursion limit") {
        Some(format!(
            "demarc reads at most {} levels of nesting and {} alias-expanded events (docs/yaml.md)",
            limits::MAX_DEPTH,
            limits::MAX_ALIAS_EVENTS
        ))
    } else {
        help_for_serde_message(&message)
    };
    Err(Error {
        help,
        message: lowercase_first(&message),
        location: location.map(|l| l.clamp_to(Location::end_of(text))),
    })
}

/// The message without the " at line 3 column 4" serde_json appends.
fn strip_location(full: &str) -> &str {
    match full.rfind(" at line ") {
        Some(i)
            if full[i + " at line ".len()..]
                .chars()
                .all(|c| c.is_ascii_digit() || matches!(c, ' ' | ',') || c.is_alphabetic()) =>
        {
            &full[..i]
        }
        _ => full,
    }
}

fn lowercase_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub fn location_of(bytes: &[u8], offset: usize) -> Location {
    let before = &bytes[..offset.min(bytes.len())];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |i| i + 1);
    let column = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count()
        + 1;
    Location { line, column }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Thing {
        name: String,
        #[serde(default)]
        kind: Option<Kind>,
        #[serde(default)]
        note: Option<String>,
        #[serde(default)]
        enabled: bool,
        #[serde(default)]
        tags: Vec<String>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "lowercase")]
    enum Kind {
        Model,
        Platform,
    }

    fn yaml(text: &str) -> Result<Thing, Error> {
        from_text("t.yaml", text)
    }

    fn at(e: &Error) -> (usize, usize) {
        e.location.map_or((0, 0), |l| (l.line, l.column))
    }

    #[test]
    fn unknown_field_gets_position_and_suggestion() {
        let e = yaml("name: a\nkindd: model\n").unwrap_err();
        assert_eq!(at(&e), (2, 1));
        assert!(e.message.contains("unknown field `kindd`"), "{}", e.message);
        assert_eq!(e.help.as_deref(), Some("did you mean `kind`?"));
        assert_eq!(
            e.render("t.yaml").lines().next(),
            Some(format!("t.yaml:2:1: {}", e.message).as_str())
        );
    }

    #[test]
    fn unknown_variant_in_yaml_and_json() {
        let e = yaml("name: a\nkind: modle\n").unwrap_err();
        assert_eq!(at(&e), (2, 7));
        assert_eq!(e.help.as_deref(), Some("did you mean `model`?"));
        let e =
            from_text::<Thing>("t.json", "{\"name\": \"a\",\n \"kind\": \"modle\"}").unwrap_err();
        assert_eq!(at(&e).0, 2);
        assert_eq!(e.help.as_deref(), Some("did you mean `model`?"));
    }

    #[test]
    fn json_files_are_read_as_json() {
        // A JSON file may have a BOM; a YAML-only construct is a JSON error.
        let t: Thing = from_text("t.json", "\u{feff}{\"name\": \"a\"}").unwrap();
        assert_eq!(t.name, "a");
        assert!(from_text::<Thing>("t.json", "name: a\n").is_err());
    }

    #[test]
    fn null_tilde_and_empty_values() {
        // Null into an optional field is None; into a required string it is an error there.
        for text in [
            "name: a\nnote: ~\n",
            "name: a\nnote: null\n",
            "name: a\nnote:\n",
        ] {
            assert_eq!(yaml(text).unwrap().note, None, "{text}");
        }
        let e = yaml("name: ~\n").unwrap_err();
        assert_eq!(at(&e), (1, 7));
        assert!(e.message.contains("null"), "{}", e.message);
        // A quoted tilde is a string.
        assert_eq!(yaml("name: '~'\n").unwrap().name, "~");
    }

    #[test]
    fn tabs_in_indentation_are_refused_with_location() {
        let e = yaml("name: a\ntags:\n\t- x\n").unwrap_err();
        assert!(e.location.is_some(), "{e}");
        assert!(e.message.contains("tab"), "{}", e.message);
        // A tab inside a value is content.
        assert_eq!(yaml("name: \"a\\tb\"\n").unwrap().name, "a\tb");
    }

    #[test]
    fn duplicate_keys_are_refused_with_location() {
        let e = yaml("name: a\nkind: model\nname: b\n").unwrap_err();
        assert_eq!(at(&e).0, 3, "{e}");
        assert!(e.message.contains("duplicate"), "{}", e.message);
    }

    #[test]
    fn anchors_aliases_and_merge_keys() {
        let t = yaml("name: &n shared\nnote: *n\n").unwrap();
        assert_eq!(t.note.as_deref(), Some("shared"));
        #[derive(Debug, Deserialize)]
        struct Two {
            base: Thing,
            more: Thing,
        }
        let two: Two = from_text(
            "t.yaml",
            "base: &b {name: x, tags: [a]}\nmore:\n  <<: *b\n  name: y\n",
        )
        .unwrap();
        assert_eq!(two.base.name, "x");
        assert_eq!(two.more.name, "y");
        assert_eq!(two.more.tags, ["a"]);
    }

    #[test]
    fn alias_bomb_is_refused_quickly() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let prev = i - 1;
            let refs = vec![format!("*a{prev}"); 10].join(", ");
            text.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
        }
        // 10^10 leaves; refused once aliases replay a million events (about 1 s in a
        // release build, several in a debug one).
        let start = Instant::now();
        let e = from_text::<serde_json::Value>("bomb.yaml", &text).unwrap_err();
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{:?}",
            start.elapsed()
        );
        assert!(e.message.contains("budget"), "{}", e.message);
        assert!(e.location.is_some(), "{e}");
        assert!(e.help.is_some());
    }

    /// A debug build's serde frames are several times a release build's: 128 levels fit in
    /// 1 MiB of stack in release, but need more than a test thread's 2 MiB in debug.
    fn on_big_stack(f: impl FnOnce() + Send + 'static) {
        std::thread::Builder::new()
            .stack_size(16 << 20)
            .spawn(f)
            .unwrap()
            .join()
            .unwrap();
    }

    #[test]
    fn very_deep_nesting_is_refused_without_overflow() {
        on_big_stack(very_deep_nesting);
    }

    fn very_deep_nesting() {
        let text = "[".repeat(100_000);
        let e = from_text::<serde_json::Value>("deep.yaml", &text).unwrap_err();
        assert!(e.location.is_some(), "{e}");
        // Block nesting too.
        let text: String = (0..300)
            .map(|i| format!("{}- \n", " ".repeat(i * 2)))
            .collect();
        let e = from_text::<serde_json::Value>("deep.yaml", &text).unwrap_err();
        assert!(e.message.contains("depth"), "{}", e.message);
        let text = format!("{}1{}", "[".repeat(200), "]".repeat(200));
        assert!(from_text::<serde_json::Value>("deep.yaml", &text).is_err());
        assert!(from_text::<serde_json::Value>("deep.json", &text).is_err());
        // Within the limit is fine.
        let text = format!("{}1{}", "[".repeat(100), "]".repeat(100));
        assert!(from_text::<serde_json::Value>("ok.yaml", &text).is_ok());
    }

    #[test]
    fn huge_files_are_refused_before_parsing() {
        let text = format!("name: {}\n", "a".repeat(limits::MAX_FILE_BYTES));
        let e = yaml(&text).unwrap_err();
        assert!(e.message.contains("limit"), "{}", e.message);
        // A big scalar under the cap is read whole.
        let text = format!("name: {}\n", "a".repeat(1 << 20));
        assert_eq!(yaml(&text).unwrap().name.len(), 1 << 20);
    }

    #[test]
    fn yaml_1_1_booleans_norway() {
        // YAML 1.2 booleans only: a string field keeps `no`; a bool field wants true/false.
        let t = yaml("name: no\nenabled: true\n").unwrap();
        assert_eq!((t.name.as_str(), t.enabled), ("no", true));
        assert!(!yaml("name: on\nenabled: False\n").unwrap().enabled);
        let e = yaml("name: a\nenabled: yes\n").unwrap_err();
        assert_eq!(at(&e), (2, 10));
        assert!(e.message.starts_with("enabled: "), "{}", e.message);
        assert_eq!(yaml("name: NO\n").unwrap().name, "NO");
        // In a free-form value they stay text too (`policy: off` names the builtin `off`).
        let v: serde_json::Value =
            from_text("v.yaml", "policy: off\nflag: yes\nb: true\n").unwrap();
        assert_eq!(
            v,
            serde_json::json!({"policy": "off", "flag": "yes", "b": true})
        );
        // Numbers in text fields are kept as written.
        assert_eq!(yaml("name: 123\n").unwrap().name, "123");
        assert_eq!(yaml("name: 1.50\n").unwrap().name, "1.50");
    }

    #[test]
    fn bom_is_skipped() {
        assert_eq!(yaml("\u{feff}name: a\n").unwrap().name, "a");
    }

    #[test]
    fn several_documents_are_refused_at_the_second() {
        let e = yaml("name: a\n---\nname: b\n").unwrap_err();
        assert_eq!(at(&e).0, 2, "{e}");
        // A lone document marker is fine.
        assert_eq!(yaml("---\nname: a\n...\n").unwrap().name, "a");
    }

    #[test]
    fn end_of_input_is_located_inside_the_file() {
        let e = yaml("# nothing").unwrap_err();
        assert_eq!(at(&e).0, 1, "{e}");
    }
}
