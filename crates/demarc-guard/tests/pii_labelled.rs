//! Context-aware personal data on `fixtures/pii_labelled.jsonl`: values in the shape of a
//! national identifier, card or account number that fail their checksum or ranges are found
//! when the text labels them (in EN, DE, FR, ES, IT, PT, NL), and stay quiet without a label;
//! values with real checksums are found at full confidence. The default policy (the gateway's)
//! redacts them, and a stream finds exactly what the whole text does.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use demarc_guard::{Detector, Direction, Finding, Guard, Policy};

struct Record {
    set: String,
    lang: String,
    kind: String,
    value: String,
    text: String,
}

fn records() -> Vec<Record> {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pii_labelled.jsonl");
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let field = |k: &str| v[k].as_str().unwrap_or_default().to_string();
            Record {
                set: field("set"),
                lang: field("lang"),
                kind: field("kind"),
                value: field("value"),
                text: field("text"),
            }
        })
        .collect()
}

fn pii(findings: &[Finding]) -> Vec<&Finding> {
    findings
        .iter()
        .filter(|f| f.detector == Detector::Pii)
        .collect()
}

/// Stream `text` in chunks of `step` bytes; the report's findings.
fn streamed(g: &Guard, text: &str, step: usize) -> Vec<Finding> {
    let mut s = g.stream(Direction::Input);
    let mut at = 0;
    while at < text.len() {
        let mut end = (at + step).min(text.len());
        while !text.is_char_boundary(end) {
            end += 1;
        }
        s.push(&text[at..end]);
        at = end;
    }
    s.finish().1.findings
}

#[test]
fn labelled_lookalikes_are_found_and_unlabelled_stay_quiet() {
    let g = Guard::new(&Policy::default()).unwrap();
    assert_eq!(Policy::default(), Policy::builtin("default").unwrap());
    let records = records();
    // (set, lang) -> (passed, total)
    let mut tally: BTreeMap<(String, String), (usize, usize)> = BTreeMap::new();
    let mut failures = Vec::new();
    for r in &records {
        let at = r.text.find(&r.value).unwrap();
        let span = (at, at + r.value.len());
        let applied = g.apply(&r.text, Direction::Input);
        let found = pii(&applied.report.findings);
        let hit = found
            .iter()
            .find(|f| f.kind == r.kind && (f.start, f.end) == span);
        let ok = match r.set.as_str() {
            "labelled" => hit.is_some_and(|f| {
                f.score < 1.0
                    && matches!(
                        f.detail.as_deref(),
                        Some("labelled-lookalike") | Some("labelled")
                    )
            }),
            "valid" => hit.is_some_and(|f| f.score == 1.0 && f.detail.is_none()),
            "unlabelled" => !found.iter().any(|f| f.start < span.1 && span.0 < f.end),
            other => panic!("unknown set {other}"),
        };
        // Found values are redacted by the default input policy; quiet ones pass unchanged.
        let redacted = !applied.text.contains(&r.value);
        let ok = ok && redacted == (r.set != "unlabelled");
        // A stream in small chunks finds exactly what the whole text does.
        for step in [1, 3, 7] {
            assert_eq!(
                streamed(&g, &r.text, step),
                applied.report.findings,
                "stream of {:?} in {step}-byte chunks",
                r.text
            );
        }
        let e = tally.entry((r.set.clone(), r.lang.clone())).or_default();
        e.1 += 1;
        if ok {
            e.0 += 1;
        } else {
            failures.push(format!("{} {:?}: {:?}", r.set, r.text, found));
        }
    }
    let mut sets: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for ((set, lang), (ok, n)) in &tally {
        eprintln!("{set:<10} {lang}: {ok}/{n}");
        let s = sets.entry(set.as_str()).or_default();
        s.0 += ok;
        s.1 += n;
    }
    for (set, (ok, n)) in &sets {
        let what = match *set {
            "labelled" => "recall on labelled look-alikes",
            "unlabelled" => "silence on unlabelled look-alikes",
            _ => "recall on valid values",
        };
        eprintln!("{what}: {ok}/{n} = {:.3}", *ok as f64 / *n as f64);
    }
    assert!(sets.get("labelled").is_some_and(|s| s.1 >= 30));
    assert!(sets.get("unlabelled").is_some_and(|s| s.1 >= 20));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
