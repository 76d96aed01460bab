//! Injection detection per language: instruction override, prompt extraction, an unrestricted
//! persona and claimed authority in each of the fifteen languages the phrase lists cover, and
//! ordinary text in those languages that stays quiet.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use demarc_guard::{Detector, Direction, Guard, Policy};

fn guard() -> Guard {
    static GUARD: std::sync::OnceLock<Guard> = std::sync::OnceLock::new();
    GUARD
        .get_or_init(|| Guard::new(&Policy::default()).unwrap())
        .clone()
}

/// The fixture (`tests/fixtures/languages.jsonl`): short attacks of the four core families in
/// each language, and ordinary sentences with the same words. `eval/` scores them with models
/// that never saw them (source `demarc-tests`).
fn fixture() -> Vec<serde_json::Value> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/languages.jsonl"
    );
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// (language, family, text) of the attacks.
fn attacks() -> Vec<(String, String, String)> {
    fixture()
        .into_iter()
        .filter(|r| r["label"] == "malicious")
        .map(|r| {
            let s = |k: &str| r[k].as_str().unwrap().to_string();
            (s("lang"), s("family"), s("text"))
        })
        .collect()
}

#[test]
fn each_language_catches_each_core_family() {
    let mut failures = Vec::new();
    let attacks = attacks();
    for (lang, family, text) in &attacks {
        let r = guard().scan(text, Direction::Input);
        let kinds: Vec<&str> = r
            .findings
            .iter()
            .filter(|f| f.detector == Detector::Injection)
            .map(|f| f.kind.as_str())
            .collect();
        if !r.blocked() || !kinds.contains(&family.as_str()) {
            failures.push(format!(
                "{lang} {family} score={:.2} {kinds:?}: {text}",
                r.score
            ));
        }
    }
    let langs: std::collections::BTreeSet<&str> = attacks.iter().map(|a| a.0.as_str()).collect();
    assert_eq!(langs.len(), 15);
    assert!(failures.is_empty(), "missed:\n{}", failures.join("\n"));
}

#[test]
fn ordinary_text_in_each_language_stays_quiet() {
    let ordinary: Vec<String> = fixture()
        .into_iter()
        .filter(|r| r["label"] == "benign")
        .map(|r| r["text"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ordinary.len(), 15);
    for text in &ordinary {
        let r = guard().scan(text, Direction::Input);
        assert!(
            !r.blocked(),
            "{text}: score {:.2} {:?}",
            r.score,
            r.findings
        );
    }
}
