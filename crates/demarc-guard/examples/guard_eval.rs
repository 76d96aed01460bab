//! Quality evaluation of the guard detectors; run by `eval/guard.sh`.
//!
//! Usage: guard_eval INJECTION_JSONL FIXTURES_DIR [--threshold T] [--show-misses]
//!
//! - Prompt injection: the public corpus is split into a tune half and a report half by a
//!   fixed-seed hash of each record id; TPR and FPR are printed for both halves, plus FPR on
//!   `FIXTURES_DIR/injection_hard_negatives.jsonl` and TPR on `FIXTURES_DIR/injection_attacks.jsonl`.
//! - PII and secrets: precision and recall per kind on `FIXTURES_DIR/pii_secrets.jsonl`, where
//!   each line is `{"text": ..., "expect": [{"kind": ..., "value": ...}]}`; a finding counts as
//!   a true positive when its kind matches and its text equals the expected value.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use demarc_guard::{Detector, Direction, Guard, Policy};
use serde_json::Value;

const SEED: u64 = 0x5eed_2026;

fn split_of(id: &str) -> &'static str {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ SEED;
    for b in id.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    if (h >> 7) & 1 == 0 { "tune" } else { "report" }
}

fn read_jsonl(path: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[derive(Default)]
struct Counts {
    tp: u32,
    fp: u32,
    tn: u32,
    fn_: u32,
}

impl Counts {
    fn add(&mut self, malicious: bool, flagged: bool) {
        match (malicious, flagged) {
            (true, true) => self.tp += 1,
            (true, false) => self.fn_ += 1,
            (false, true) => self.fp += 1,
            (false, false) => self.tn += 1,
        }
    }
    fn tpr(&self) -> String {
        ratio(self.tp, self.tp + self.fn_)
    }
    fn fpr(&self) -> String {
        ratio(self.fp, self.fp + self.tn)
    }
}

fn ratio(a: u32, b: u32) -> String {
    if b == 0 {
        "n/a".into()
    } else {
        format!("{:.3} ({a}/{b})", f64::from(a) / f64::from(b))
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let corpus = args
        .get(1)
        .expect("usage: guard_eval INJECTION_JSONL FIXTURES_DIR");
    let fixtures = args
        .get(2)
        .expect("usage: guard_eval INJECTION_JSONL FIXTURES_DIR");
    let show = args.iter().any(|a| a == "--show-misses");
    let mut policy = Policy::default();
    if let Some(i) = args.iter().position(|a| a == "--threshold") {
        policy.injection.threshold = args[i + 1].parse().unwrap();
    }
    let guard = Guard::new(&policy).unwrap();
    let flagged = |text: &str| {
        let r = guard.scan(text, Direction::Input);
        let hit = r
            .findings
            .iter()
            .any(|f| matches!(f.detector, Detector::Injection | Detector::Invisible));
        (hit, r.score)
    };

    println!(
        "## Prompt injection (threshold {})\n",
        policy.injection.threshold
    );
    println!("| set | records | TPR | FPR |");
    println!("| --- | --- | --- | --- |");
    let mut halves: BTreeMap<&str, Counts> = BTreeMap::new();
    let mut misses = Vec::new();
    let records = read_jsonl(corpus);
    for r in &records {
        let id = r["id"].as_str().unwrap_or_default();
        let text = r["text"].as_str().unwrap_or_default();
        let malicious = r["label"].as_str() == Some("malicious");
        let (hit, score) = flagged(text);
        let half = split_of(&format!("{id}|{text}"));
        halves.entry(half).or_default().add(malicious, hit);
        if malicious != hit {
            misses.push(format!(
                "{half} {} score={score:.2} {}",
                if malicious { "FN" } else { "FP" },
                text.chars().take(140).collect::<String>()
            ));
        }
    }
    for half in ["tune", "report"] {
        let c = halves
            .get(half)
            .unwrap_or(&Counts::default())
            .to_owned_counts();
        println!(
            "| corpus {half} half | {} | {} | {} |",
            c.tp + c.fp + c.tn + c.fn_,
            c.tpr(),
            c.fpr()
        );
    }
    for (name, file, malicious) in [
        (
            "own hard negatives",
            "injection_hard_negatives.jsonl",
            false,
        ),
        ("own attacks", "injection_attacks.jsonl", true),
    ] {
        let mut c = Counts::default();
        for r in read_jsonl(&format!("{fixtures}/{file}")) {
            let text = r["text"].as_str().unwrap_or_default();
            let (hit, score) = flagged(text);
            c.add(malicious, hit);
            if malicious != hit {
                misses.push(format!(
                    "{name} {} score={score:.2} {}",
                    if malicious { "FN" } else { "FP" },
                    text.chars().take(140).collect::<String>()
                ));
            }
        }
        println!(
            "| {name} | {} | {} | {} |",
            c.tp + c.fp + c.tn + c.fn_,
            c.tpr(),
            c.fpr()
        );
    }
    if show {
        println!();
        for m in &misses {
            println!("- {m}");
        }
    }

    // PII and secrets.
    let monitor = Guard::new(&Policy::builtin("monitor").unwrap()).unwrap();
    let mut per_kind: BTreeMap<String, (u32, u32, u32)> = BTreeMap::new();
    let mut wrong = Vec::new();
    let mut lookalikes = 0;
    for r in read_jsonl(&format!("{fixtures}/pii_secrets.jsonl")) {
        let text = r["text"].as_str().unwrap_or_default();
        let mut expected: Vec<(String, String)> = r["expect"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|e| {
                        (
                            e["kind"].as_str().unwrap().to_string(),
                            e["value"].as_str().unwrap().to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let report = monitor.scan(text, Direction::Input);
        for f in report
            .findings
            .iter()
            .filter(|f| matches!(f.detector, Detector::Pii | Detector::Secrets))
        {
            let value = text[f.start..f.end].to_string();
            let entry = per_kind.entry(f.kind.clone()).or_default();
            if let Some(i) = expected
                .iter()
                .position(|(k, v)| *k == f.kind && *v == value)
            {
                expected.remove(i);
                entry.0 += 1;
            } else if f.detail.as_deref() == Some("labelled-lookalike") {
                // A value that fails validation but that the text labels as its kind: reported
                // at score 0.5 by design (docs/guard.md), counted apart from validated findings.
                lookalikes += 1;
                wrong.push(format!(
                    "labelled look-alike {} `{}` in: {}",
                    f.kind,
                    value,
                    text.chars().take(100).collect::<String>()
                ));
            } else {
                entry.1 += 1;
                wrong.push(format!(
                    "FP {} `{}` in: {}",
                    f.kind,
                    value,
                    text.chars().take(100).collect::<String>()
                ));
            }
        }
        for (kind, value) in expected {
            per_kind.entry(kind.clone()).or_default().2 += 1;
            wrong.push(format!(
                "FN {kind} `{value}` in: {}",
                text.chars().take(100).collect::<String>()
            ));
        }
    }
    println!("\n## PII and secrets (builtin `monitor` policy)\n");
    println!("| kind | TP | FP | FN | precision | recall |");
    println!("| --- | --- | --- | --- | --- | --- |");
    let (mut tp, mut fp, mut fn_) = (0, 0, 0);
    for (kind, (t, f, n)) in &per_kind {
        println!(
            "| {kind} | {t} | {f} | {n} | {} | {} |",
            ratio(*t, t + f),
            ratio(*t, t + n)
        );
        tp += t;
        fp += f;
        fn_ += n;
    }
    println!(
        "| **all** | {tp} | {fp} | {fn_} | {} | {} |",
        ratio(tp, tp + fp),
        ratio(tp, tp + fn_)
    );
    println!(
        "\nLabelled look-alikes (fail validation, labelled in the text; score 0.5, not counted \
         above): {lookalikes}"
    );
    if show {
        println!();
        for w in &wrong {
            println!("- {w}");
        }
    }
}

trait OwnedCounts {
    fn to_owned_counts(&self) -> Counts;
}

impl OwnedCounts for Counts {
    fn to_owned_counts(&self) -> Counts {
        Counts {
            tp: self.tp,
            fp: self.fp,
            tn: self.tn,
            fn_: self.fn_,
        }
    }
}
