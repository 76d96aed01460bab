#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Loading estates and catalogs from outside input: never a panic, every problem located
//! inside the file, and clear messages for the usual mistakes.

use demarc_model::parse::MAX_FILE_BYTES;
use demarc_model::{CheckedCatalog, CheckedEstate, Diagnostics};
use proptest::prelude::*;

const BANK: &str = include_str!("../../../examples/bank-estate.yaml");
const SEED: &str = include_str!("../catalogs/csa-genai-2023.yaml");

fn catalog() -> CheckedCatalog {
    CheckedCatalog::default_catalog().unwrap()
}

/// Every located diagnostic points at a line that exists (a position just past a final
/// newline counts as the line after it) and a column from 1.
fn assert_located_inside(bytes: &[u8], diagnostics: &Diagnostics) {
    let lines = bytes.iter().filter(|b| **b == b'\n').count() + 1;
    for d in &diagnostics.items {
        if let Some(l) = d.location {
            assert!(
                l.line >= 1 && l.line <= lines,
                "line {} of {lines}: {d:?}",
                l.line
            );
            assert!(l.column >= 1, "column {}: {d:?}", l.column);
        }
    }
}

fn load_estate(bytes: &[u8]) -> Option<Diagnostics> {
    let catalog = catalog();
    match CheckedEstate::from_bytes("estate.yaml", bytes, &catalog) {
        Ok(checked) => {
            assert!(!checked.warnings.has_errors());
            assert_located_inside(bytes, &checked.warnings);
            None
        }
        Err(d) => {
            assert!(d.has_errors(), "rejected without an error: {d}");
            assert_located_inside(bytes, &d);
            Some(d)
        }
    }
}

fn load_catalog(bytes: &[u8]) -> Option<Diagnostics> {
    match CheckedCatalog::from_bytes("catalog.yaml", bytes) {
        Ok(_) => None,
        Err(d) => {
            assert!(d.has_errors(), "rejected without an error: {d}");
            assert_located_inside(bytes, &d);
            Some(d)
        }
    }
}

/// One edit to a valid document, at a position given as a fraction of its length.
#[derive(Debug, Clone)]
enum Mutation {
    DeleteRange { at: f64, len: usize },
    Insert { at: f64, text: String },
    ReplaceLine { at: f64, text: String },
    DuplicateLine { at: f64 },
    Truncate { at: f64 },
}

/// Fragments that are likely to make a YAML document interesting rather than just invalid.
fn yaml_fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(": ".to_string()),
        Just("- ".to_string()),
        Just("\n  ".to_string()),
        Just("{".to_string()),
        Just("]".to_string()),
        Just("&a ".to_string()),
        Just("*a".to_string()),
        Just("!!binary ".to_string()),
        Just("'".to_string()),
        Just("\"\\u00".to_string()),
        Just("\t".to_string()),
        Just("~".to_string()),
        Just("<<: *a".to_string()),
        Just("id: colleague-assistant".to_string()),
        Just("service_model: pass".to_string()),
        Just("status: not-applicable".to_string()),
        Just("expires: 2020-02-30".to_string()),
        Just("format: 99999999999999999999".to_string()),
        "\\PC{0,12}",
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let at = 0.0..1.0f64;
    prop_oneof![
        (at.clone(), 1..40usize).prop_map(|(at, len)| Mutation::DeleteRange { at, len }),
        (at.clone(), yaml_fragment()).prop_map(|(at, text)| Mutation::Insert { at, text }),
        (at.clone(), yaml_fragment()).prop_map(|(at, text)| Mutation::ReplaceLine { at, text }),
        at.clone().prop_map(|at| Mutation::DuplicateLine { at }),
        at.prop_map(|at| Mutation::Truncate { at }),
    ]
}

/// The byte range of the line holding byte `i`, without its newline.
fn line_around(s: &str, i: usize) -> (usize, usize) {
    let start = s[..i].rfind('\n').map_or(0, |p| p + 1);
    let end = s[i..].find('\n').map_or(s.len(), |p| i + p);
    (start, end)
}

/// Apply mutations to `text`, keeping edits on char boundaries.
fn mutate(text: &str, mutations: &[Mutation]) -> String {
    let mut s = text.to_string();
    let boundary = |s: &str, at: f64| {
        let mut i = ((s.len() as f64) * at) as usize;
        while i > 0 && !s.is_char_boundary(i) {
            i -= 1;
        }
        i.min(s.len())
    };
    for m in mutations {
        match m {
            Mutation::DeleteRange { at, len } => {
                let start = boundary(&s, *at);
                let mut end = (start + len).min(s.len());
                while !s.is_char_boundary(end) {
                    end -= 1;
                }
                s.replace_range(start..end, "");
            }
            Mutation::Insert { at, text } => {
                let i = boundary(&s, *at);
                s.insert_str(i, text);
            }
            Mutation::ReplaceLine { at, text } => {
                let (start, end) = line_around(&s, boundary(&s, *at));
                let indent: String = s[start..end].chars().take_while(|c| *c == ' ').collect();
                s.replace_range(start..end, &format!("{indent}{text}"));
            }
            Mutation::DuplicateLine { at } => {
                let (start, end) = line_around(&s, boundary(&s, *at));
                let line = s[start..end].to_string();
                s.insert_str(end, &format!("\n{line}"));
            }
            Mutation::Truncate { at } => {
                let i = boundary(&s, *at);
                s.truncate(i);
            }
        }
    }
    s
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        load_estate(&bytes);
        load_catalog(&bytes);
    }

    #[test]
    fn arbitrary_strings_never_panic(text in "\\PC{0,256}") {
        load_estate(text.as_bytes());
        load_catalog(text.as_bytes());
    }

    #[test]
    fn yamlish_strings_never_panic(parts in proptest::collection::vec(yaml_fragment(), 0..40)) {
        let text = parts.concat();
        load_estate(text.as_bytes());
        load_catalog(text.as_bytes());
    }
}

proptest! {
    // Each case parses a real-sized document; fewer cases keep `cargo test` fast.
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn mutated_example_estate_never_panics(mutations in proptest::collection::vec(mutation(), 1..4)) {
        let text = mutate(BANK, &mutations);
        load_estate(text.as_bytes());
    }

    #[test]
    fn mutated_seed_catalog_never_panics(mutations in proptest::collection::vec(mutation(), 1..4)) {
        let text = mutate(SEED, &mutations);
        load_catalog(text.as_bytes());
    }

    #[test]
    fn the_example_as_json_loads_too(indent in 0..4usize) {
        // JSON is accepted wherever YAML is; the same estate serialised as JSON loads alike.
        let value: serde_json::Value = demarc_model::parse::from_text("bank.yaml", BANK).unwrap();
        let json = if indent == 0 {
            serde_json::to_string(&value).unwrap()
        } else {
            serde_json::to_string_pretty(&value).unwrap()
        };
        prop_assert!(load_estate(json.as_bytes()).is_none());
    }
}

// ---- targeted bad input -------------------------------------------------------------

/// Load an estate that must be rejected; return its rendered diagnostics.
fn estate_error(text: &str) -> (Diagnostics, String) {
    let d = load_estate(text.as_bytes()).unwrap_or_else(|| panic!("accepted:\n{text}"));
    let shown = d.to_string();
    (d, shown)
}

const MINIMAL: &str = "format: 1
organisation: {name: Test}
teams:
  - {id: platform, name: Platform, contact: p@example.com}
providers:
  - id: azure
    name: Azure
applications:
  - id: bot
    name: Bot
    owner: platform
    data_classification: internal
    status: sanctioned
    components:
      - {id: llm, kind: model, service_model: paas, provider: azure}
    duties: {default: platform}
";

#[test]
fn minimal_estate_is_valid() {
    assert!(load_estate(MINIMAL.as_bytes()).is_none());
}

#[test]
fn malformed_yaml_is_located() {
    let text = MINIMAL.replace("name: Bot", "name: [Bot");
    let (d, shown) = estate_error(&text);
    let line = d.items[0].location.unwrap().line;
    assert!((10..=17).contains(&line), "{shown}");
    assert!(shown.starts_with("estate.yaml:"), "{shown}");
}

#[test]
fn unknown_field_is_named_with_a_suggestion() {
    let text = MINIMAL.replace("    data_classification:", "    data_clasification:");
    let (d, shown) = estate_error(&text);
    assert!(
        shown.contains("unknown field `data_clasification`"),
        "{shown}"
    );
    assert_eq!(
        d.items[0].help.as_deref(),
        Some("did you mean `data_classification`?")
    );
    assert_eq!(d.items[0].location.unwrap().line, 12, "{shown}");
}

#[test]
fn unknown_service_model_and_provider_are_all_reported_with_suggestions() {
    let text = MINIMAL.replace(
        "service_model: paas, provider: azure",
        "service_model: pass, provider: azur",
    );
    let (d, shown) = estate_error(&text);
    assert_eq!(d.error_count(), 2, "{shown}");
    assert!(shown.contains("unknown service model `pass`"), "{shown}");
    assert!(shown.contains("did you mean `paas`?"), "{shown}");
    assert!(shown.contains("unknown provider `azur`"), "{shown}");
    assert!(shown.contains("did you mean `azure`?"), "{shown}");
    // Both on the component's line, at different columns.
    let located: Vec<_> = d.items.iter().map(|i| i.location.unwrap()).collect();
    assert!(located.iter().all(|l| l.line == 15), "{shown}");
    assert_ne!(located[0].column, located[1].column);
    assert!(shown.contains("estate.yaml:15:"), "{shown}");
}

#[test]
fn unknown_team_is_reported() {
    let text = MINIMAL.replace("owner: platform", "owner: platfrom");
    let (d, shown) = estate_error(&text);
    assert!(shown.contains("unknown team `platfrom`"), "{shown}");
    assert_eq!(d.items[0].location.unwrap().line, 11, "{shown}");
}

#[test]
fn duplicate_ids_are_reported_at_the_second() {
    let text = MINIMAL.replace(
        "  - {id: platform, name: Platform, contact: p@example.com}\n",
        "  - {id: platform, name: Platform, contact: p@example.com}\n  - {id: platform, name: Again, contact: q@example.com}\n",
    );
    let (d, shown) = estate_error(&text);
    assert!(shown.contains("duplicate id `platform`"), "{shown}");
    assert_eq!(d.items[0].location.unwrap().line, 5, "{shown}");
}

#[test]
fn wrong_types_are_reported() {
    let (_, shown) = estate_error(&MINIMAL.replace("format: 1", "format: one"));
    assert!(shown.contains("estate.yaml:1:"), "{shown}");
    assert!(shown.contains("invalid"), "{shown}");
    let (d, shown) = estate_error(&MINIMAL.replace("status: sanctioned", "status: approved"));
    assert!(shown.contains("unknown variant `approved`"), "{shown}");
    assert_eq!(d.items[0].location.unwrap().line, 13, "{shown}");
    let (_, shown) = estate_error(&MINIMAL.replace("teams:\n", "teams: 7\n").replace(
        "  - {id: platform, name: Platform, contact: p@example.com}\n",
        "",
    ));
    assert!(shown.contains("invalid"), "{shown}");
}

#[test]
fn bad_dates_and_evidence_are_reported_together() {
    let text = format!(
        "{MINIMAL}    evidence:
      - {{area: grounding, description: d, reviewer: r, reviewed: 2026-01-10, expires: 2025-01-01}}
      - {{area: groundin, description: d, reviewer: r, reviewed: 2026-01-10, link: https://x.example}}
"
    );
    let (d, shown) = estate_error(&text);
    assert!(shown.contains("needs a `link` or a `file`"), "{shown}");
    assert!(shown.contains("before it was reviewed"), "{shown}");
    assert!(shown.contains("unknown area `groundin`"), "{shown}");
    assert!(shown.contains("did you mean `grounding`?"), "{shown}");
    assert!(d.error_count() >= 3, "{shown}");
    let (_, shown) = estate_error(&MINIMAL.replace("duties: {default: platform}", "duties: {default: platform}\n    evidence: [{area: grounding, description: d, reviewer: r, reviewed: 2026-02-30, link: https://x.example}]"));
    assert!(shown.contains("`2026-02-30` is not a date"), "{shown}");
}

#[test]
fn json_errors_are_located() {
    let (d, shown) = estate_error(
        "{\n  \"format\": 1,\n  \"organisation\": {\"name\": \"x\"},\n  \"teams\": [,]\n}\n",
    );
    assert_eq!(d.items[0].location.unwrap().line, 4, "{shown}");
}

#[test]
fn a_line_break_inside_a_json_string_is_located_from_column_1() {
    // serde_json reports column 0 just after the break; found by `yamlish_strings_never_panic`.
    let text = "{\n  \"format\": \"a\n\"\n}\n";
    let (d, shown) = estate_error(text);
    assert_located_inside(text.as_bytes(), &d);
    assert!(shown.contains("control character"), "{shown}");
}

#[test]
fn empty_and_blank_files_are_rejected() {
    for text in ["", "   \n\n\t\n"] {
        let (_, shown) = estate_error(text);
        assert!(shown.contains("file is empty"), "{shown}");
    }
    // A YAML document with no content at all (a lone comment) is not an estate either.
    let (_, shown) = estate_error("# nothing here\n");
    assert!(shown.contains("estate.yaml"), "{shown}");
}

#[test]
fn binary_files_are_rejected_with_the_offending_position() {
    let (d, shown) = estate_error("format: 1\norg\0anisation:\n");
    assert!(shown.contains("NUL byte"), "{shown}");
    assert_eq!(
        d.items[0].location.map(|l| (l.line, l.column)),
        Some((2, 4)),
        "{shown}"
    );
    let bytes = b"format: 1\n\x89PNG\r\n\x1a\n\xff\xd8";
    let d = load_estate(bytes).unwrap();
    assert!(d.to_string().contains("invalid UTF-8"), "{d}");
    assert_eq!(d.items[0].location.unwrap().line, 2, "{d}");
}

#[test]
fn oversized_files_are_refused_before_parsing() {
    // Valid-looking YAML just over the limit: refused on size, not parsed.
    let mut big = String::with_capacity(MAX_FILE_BYTES + 64);
    big.push_str("format: 1\norganisation: {name: x}\n");
    while big.len() <= MAX_FILE_BYTES {
        big.push_str("# padding padding padding padding padding padding padding padding\n");
    }
    let d = load_estate(big.as_bytes()).unwrap();
    assert!(d.to_string().contains("the limit is"), "{d}");
    let d = load_catalog(big.as_bytes()).unwrap();
    assert!(d.to_string().contains("the limit is"), "{d}");
}

#[test]
fn deeply_nested_input_is_an_error_not_a_stack_overflow() {
    let text = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    load_estate(text.as_bytes()).unwrap();
    load_catalog(text.as_bytes()).unwrap();
    let text = "a:\n".to_string()
        + &(1..2_000)
            .map(|i| format!("{}b:\n", " ".repeat(i)))
            .collect::<String>();
    load_estate(text.as_bytes()).unwrap();
}

#[test]
fn alias_bombs_are_bounded() {
    // "Billion laughs": the loader refuses excessive alias expansion.
    let mut text = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    let mut prev = 'a';
    for name in 'b'..='k' {
        text.push_str(&format!("{name}: &{name} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"));
        prev = name;
    }
    load_estate(text.as_bytes()).unwrap();
    load_catalog(text.as_bytes()).unwrap();
}

#[test]
fn catalog_problems_are_all_reported_with_locations() {
    // Drop one cell and break one shared cell's lead: two problems, both reported.
    let broken = SEED.replacen(
        "      paas:\n        owner: provider\n",
        "      paas_typo:\n        owner: provider\n",
        1,
    );
    assert_ne!(broken, SEED, "the seed's layout changed; update this test");
    let d = load_catalog(broken.as_bytes()).unwrap();
    let shown = d.to_string();
    assert!(
        shown.contains("no cell for service model `paas`"),
        "{shown}"
    );
    assert!(
        shown.contains("unknown service model `paas_typo`"),
        "{shown}"
    );
    assert!(d.items.iter().all(|i| i.location.is_some()), "{shown}");

    let d = load_catalog(
        SEED.replacen("format: 1", "format: 1\nformatt: 2", 1)
            .as_bytes(),
    )
    .unwrap();
    assert!(d.to_string().contains("unknown field `formatt`"), "{d}");
    assert_eq!(d.items[0].help.as_deref(), Some("did you mean `format`?"));
}

#[test]
fn seed_catalog_and_example_round_trip_through_the_loader() {
    assert!(load_catalog(SEED.as_bytes()).is_none());
    assert!(load_estate(BANK.as_bytes()).is_none());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Whatever estate the YAML loader reads, written out as JSON and read back, is the same
    /// estate: YAML and JSON files load alike.
    #[test]
    fn yaml_and_json_read_the_same_estate(mutations in proptest::collection::vec(mutation(), 1..3)) {
        let text = mutate(BANK, &mutations);
        if text.trim_start().starts_with('{') {
            return Ok(());
        }
        if let Ok(a) = demarc_model::parse::from_text::<demarc_model::Estate>("e.yaml", &text) {
            let json = serde_json::to_string(&a).unwrap();
            let b = demarc_model::parse::from_text::<demarc_model::Estate>("e.json", &json).unwrap();
            prop_assert_eq!(a, b);
        }
    }
}

#[test]
fn yaml_loader_reads_the_tricky_parts() {
    use demarc_model::Estate;
    // anchors and aliases, null lists and maps, quoted numbers, folded text, a guard policy
    // mapping read as a free-form value (YAML 1.1 `on` is a boolean there: no field says
    // otherwise)
    let text = "format: 1\norganisation: &org {name: x}\nteams:\nproviders:\napplications:\n  - &app\n    id: a\n    name: '123'\n    owner: t\n    description: >-\n      two\n      lines\n    data_classification: internal\n    status: sanctioned\n    components: [{id: c, kind: model, service_model: paas, provider: p}]\n    guard_policy: {block: [injection], max: 3, ratio: 0.5, on: true, none: null}\n  - *app\n";
    let estate = demarc_model::parse::from_text::<Estate>("e.yaml", text).unwrap();
    assert_eq!(estate.applications.len(), 2);
    assert_eq!(estate.applications[0], estate.applications[1]);
    let app = &estate.applications[0];
    assert_eq!(app.name, "123");
    assert_eq!(app.description, "two lines");
    assert_eq!(
        app.guard_policy,
        Some(
            serde_json::json!({"block": ["injection"], "max": 3, "ratio": 0.5, "on": true, "none": null})
        )
    );
    let estate = demarc_model::parse::from_text::<Estate>(
        "e.yaml",
        "format: 1\norganisation:\n  name: \"quoted \\u00e9\"\n",
    )
    .unwrap();
    assert_eq!(estate.organisation.name, "quoted \u{e9}");
    // An empty key, a second document and a duplicate key are refused, located.
    for (text, line) in [
        ("format: 1\n: x\n", 2),
        ("format: 1\norganisation: {name: x}\n---\nformat: 2\n", 3),
        ("format: 1\norganisation: {name: x}\nformat: 1\n", 3),
    ] {
        let e = demarc_model::parse::from_text::<Estate>("e.yaml", text).unwrap_err();
        assert_eq!(
            e.items[0].location.map(|l| l.line),
            Some(line),
            "{text}: {e}"
        );
    }
}
