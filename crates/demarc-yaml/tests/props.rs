#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Property tests of the YAML loader: any JSON-shaped value written as YAML (block and flow
//! styles, plain and quoted scalars) reads back as the same value; any input gives a value
//! or a located error, never a panic.

use demarc_yaml::{Error, SourceMap, from_text};
use proptest::prelude::*;
use serde_json::{Map, Value};

/// Text that needs no quotes: it starts with a letter, has no YAML indicator that ends a
/// plain scalar, and does not read as null, a boolean or a number. YAML 1.1 words (`yes`,
/// `off`, `no`) are written plain on purpose: they must read back as text.
fn plain_ok(s: &str) -> bool {
    let lower = s.to_ascii_lowercase();
    s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && !s.ends_with(' ')
        && !s.contains("  ")
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, ' ' | '_' | '.' | '-' | '/'))
        && !matches!(lower.as_str(), "null" | "true" | "false")
}

/// A double-quoted scalar with every character YAML cannot hold raw escaped.
fn double_quoted(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20
                || ('\u{7f}'..='\u{9f}').contains(&c)
                || matches!(
                    c,
                    '\u{feff}' | '\u{2028}' | '\u{2029}' | '\u{fffe}' | '\u{ffff}'
                ) =>
            {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn scalar_text(s: &str, style: u32) -> String {
    let printable = s
        .chars()
        .all(|c| !c.is_control() && !matches!(c, '\u{feff}' | '\u{2028}' | '\u{2029}'));
    match style % 3 {
        0 if plain_ok(s) => s.to_string(),
        1 if printable && !s.is_empty() => format!("'{}'", s.replace('\'', "''")),
        _ => double_quoted(s),
    }
}

fn number_text(n: &serde_json::Number) -> String {
    match n.as_f64() {
        // `{:?}` keeps a float a float (`1.0`, `1e300`).
        Some(f) if n.is_f64() => format!("{f:?}"),
        _ => n.to_string(),
    }
}

/// Style choices, one bit or digit per node.
struct Styles(u64);

impl Styles {
    fn next(&mut self) -> u32 {
        self.0 = self.0.rotate_left(7) ^ 0x9e37_79b9_7f4a_7c15;
        (self.0 >> 32) as u32
    }
}

fn flow(v: &Value, styles: &mut Styles, out: &mut String) {
    match v {
        Value::Null => out.push_str(["null", "~"][(styles.next() % 2) as usize]),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&number_text(n)),
        Value::String(s) => out.push_str(&scalar_text(s, styles.next())),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                flow(item, styles, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(&scalar_text(k, styles.next()));
                out.push_str(": ");
                flow(item, styles, out);
            }
            out.push('}');
        }
    }
}

/// A value after `key:` or `-`: on the same line when scalar, empty or written in flow
/// style, else on the next lines, indented.
fn block_child(v: &Value, indent: usize, styles: &mut Styles, out: &mut String) {
    let collection = matches!(v, Value::Array(a) if !a.is_empty())
        || matches!(v, Value::Object(m) if !m.is_empty());
    if collection && !styles.next().is_multiple_of(4) {
        out.push('\n');
        block(v, indent + 2, styles, out);
    } else {
        out.push(' ');
        flow(v, styles, out);
        out.push('\n');
    }
}

fn block(v: &Value, indent: usize, styles: &mut Styles, out: &mut String) {
    let pad = " ".repeat(indent);
    match v {
        Value::Array(items) if !items.is_empty() => {
            for item in items {
                out.push_str(&pad);
                out.push('-');
                block_child(item, indent, styles, out);
            }
        }
        Value::Object(map) if !map.is_empty() => {
            for (k, item) in map {
                out.push_str(&pad);
                out.push_str(&scalar_text(k, styles.next()));
                out.push(':');
                block_child(item, indent, styles, out);
            }
        }
        other => {
            out.push_str(&pad);
            flow(other, styles, out);
            out.push('\n');
        }
    }
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9 _.-]{0,12}",
        Just("yes".to_string()),
        Just("off".to_string()),
        Just("No".to_string()),
        Just("null".to_string()),
        Just("~".to_string()),
        Just("true".to_string()),
        Just("1.50".to_string()),
        Just("0x1F".to_string()),
        Just("<<".to_string()),
        Just("- a".to_string()),
        Just("a: b".to_string()),
        Just("#x".to_string()),
        Just(" lead".to_string()),
        Just(String::new()),
        ".{0,16}",
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec((text(), inner), 0..6)
                .prop_map(|entries| Value::Object(entries.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn document() -> impl Strategy<Value = Value> {
    proptest::collection::vec((text(), json_value()), 0..6)
        .prop_map(|entries| Value::Object(entries.into_iter().collect()))
}

/// A located error points inside the text (a position just past a final newline counts as
/// the line after it) and at a column from 1.
fn assert_located_inside(text: &str, e: &Error) {
    let lines = text.bytes().filter(|b| *b == b'\n').count() + 1;
    if let Some(l) = e.location {
        assert!(
            l.line >= 1 && l.line <= lines,
            "line {} of {lines}: {e}",
            l.line
        );
        assert!(l.column >= 1, "column {}: {e}", l.column);
    }
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Typed {
    name: String,
    #[serde(default)]
    count: Option<u32>,
    #[serde(default)]
    ratio: Option<f64>,
    #[serde(default)]
    on: bool,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    nested: Option<Box<Typed>>,
    #[serde(default)]
    extra: Option<Value>,
}

fn never_panics(text: &str) {
    for file in ["x.yaml", "x.json"] {
        if let Err(e) = from_text::<Value>(file, text) {
            assert_located_inside(text, &e);
        }
        if let Err(e) = from_text::<Typed>(file, text) {
            assert_located_inside(text, &e);
        }
    }
    let _ = SourceMap::build(text);
}

/// Pieces of YAML syntax, so that random input reaches deep into the parser.
fn yaml_fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("\n".to_string()),
        Just("  ".to_string()),
        Just("- ".to_string()),
        Just(": ".to_string()),
        Just("? ".to_string()),
        Just("name".to_string()),
        Just("tags".to_string()),
        Just("nested".to_string()),
        Just("<<: ".to_string()),
        Just("&a ".to_string()),
        Just("*a".to_string()),
        Just("&b ".to_string()),
        Just("*b".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        Just("{".to_string()),
        Just("}".to_string()),
        Just(", ".to_string()),
        Just("'".to_string()),
        Just("\"".to_string()),
        Just("|\n".to_string()),
        Just(">-\n".to_string()),
        Just("---\n".to_string()),
        Just("...\n".to_string()),
        Just("!!str ".to_string()),
        Just("#c\n".to_string()),
        Just("\t".to_string()),
        Just("~".to_string()),
        Just("yes".to_string()),
        Just("12".to_string()),
        Just("\u{feff}".to_string()),
        "[a-z0-9]{1,4}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// serde_json::Value → YAML text → `from_text` is the same value.
    #[test]
    fn values_round_trip_through_yaml(value in document(), seed in any::<u64>()) {
        let mut text = String::new();
        block(&value, 0, &mut Styles(seed), &mut text);
        if value.as_object().is_some_and(Map::is_empty) {
            text = "{}\n".to_string();
        }
        let read: Value = match from_text("doc.yaml", &text) {
            Ok(v) => v,
            Err(e) => panic!("{}\n---\n{text}", e.render("doc.yaml")),
        };
        prop_assert_eq!(read, value, "{}", text);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        never_panics(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn yamlish_text_never_panics(parts in proptest::collection::vec(yaml_fragment(), 0..60)) {
        never_panics(&parts.concat());
    }
}
