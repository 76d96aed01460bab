//! `demarc ground index|query` over the example documents, driven through the binary.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn demarc() -> Command {
    let mut command = Command::cargo_bin("demarc").unwrap();
    command.env("NO_COLOR", "1").env_remove("DEMARC_LOG");
    command
}

fn source(spec: &str) -> String {
    // `ID=examples/grounding/DIR[:groups]` with the folder made absolute.
    let (id, rest) = spec.split_once('=').unwrap();
    format!(
        "{id}={}",
        repo().join("examples/grounding").join(rest).display()
    )
}

/// Index the three example folders with the groups of the example estate.
fn index_examples(index: &Path) {
    demarc()
        .args(["ground", "index", "--index"])
        .arg(index)
        .args(["--source", &source("hr-policies=hr:staff")])
        .args([
            "--source",
            &source("credit-policies=credit:lending,credit-risk"),
        ])
        .args([
            "--source",
            &source("security-standards=security:technology,security"),
        ])
        .assert()
        .success()
        .stdout(predicate::str::starts_with("indexed 8 documents ("))
        .stdout(predicate::str::contains("from 3 sources"));
}

fn query_json(index: &Path, question: &str, groups: &[&str]) -> Vec<Value> {
    let mut command = demarc();
    command
        .args(["ground", "query", "--format", "json", "-k", "50", "--index"])
        .arg(index)
        .arg(question);
    for group in groups {
        command.args(["--group", group]);
    }
    let output = command.assert().success().get_output().stdout.clone();
    serde_json::from_slice::<Value>(&output)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn index_then_query_ranks_the_right_passage_first() {
    let dir = tempfile::tempdir().unwrap();
    let index = dir.path().join("idx");
    index_examples(&index);

    let passages = query_json(
        &index,
        "What is the nightly hotel limit in London?",
        &["staff"],
    );
    let first = &passages[0];
    assert_eq!(first["source"], "hr-policies");
    assert_eq!(first["document"], "travel-and-expenses.md");
    assert_eq!(
        first["heading"],
        "Travel and Expenses Policy > 4. Hotels and accommodation"
    );
    assert!(first["text"].as_str().unwrap().contains("£210"));
    assert!(first["score"].as_f64().unwrap() > 0.0);
    assert!(first["start"].as_u64().unwrap() < first["end"].as_u64().unwrap());

    demarc()
        .args(["ground", "query", "--index"])
        .arg(&index)
        .args(["hotel limit London", "--group", "staff", "-k", "1"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "hr-policies  travel-and-expenses.md",
        ))
        .stdout(predicate::str::contains("score"));

    demarc()
        .args(["ground", "query", "--format", "context", "--index"])
        .arg(&index)
        .args(["hotel limit London", "--group", "staff", "-k", "2"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "[1] hr-policies/travel-and-expenses.md § Travel and Expenses Policy > 4. Hotels and accommodation",
        ))
        .stdout(predicate::str::contains("\n[2] "));
}

#[test]
fn a_caller_never_sees_a_source_its_groups_cannot_read() {
    let dir = tempfile::tempdir().unwrap();
    let index = dir.path().join("idx");
    index_examples(&index);
    let question = "restricted data generative AI tool mortgage loan to value hotel";

    let everything = query_json(&index, question, &["staff", "lending", "security"]);
    let sources: Vec<&str> = everything
        .iter()
        .map(|p| p["source"].as_str().unwrap())
        .collect();
    for expected in ["hr-policies", "credit-policies", "security-standards"] {
        assert!(
            sources.contains(&expected),
            "{expected} missing from {sources:?}"
        );
    }
    for (groups, allowed) in [
        (vec!["lending"], "credit-policies"),
        (vec!["technology"], "security-standards"),
        (vec!["staff", "marketing"], "hr-policies"),
    ] {
        let passages = query_json(&index, question, &groups);
        assert!(!passages.is_empty());
        assert!(
            passages.iter().all(|p| p["source"] == allowed),
            "{groups:?}: {passages:?}"
        );
    }
    demarc()
        .args(["ground", "query", "--index"])
        .arg(&index)
        .arg(question)
        .assert()
        .success()
        .stdout("")
        .stderr(predicate::str::contains("no passages match"));
}

#[test]
fn rebuilding_reports_unchanged_documents() {
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs");
    std::fs::create_dir(&docs).unwrap();
    std::fs::write(docs.join("one.md"), "# One\n\nThe first document.\n").unwrap();
    std::fs::write(docs.join("two.txt"), "The second document.\n").unwrap();
    let index = dir.path().join("idx");
    let build = || {
        demarc()
            .args(["ground", "index", "--index"])
            .arg(&index)
            .arg("--source")
            .arg(format!("docs={}", docs.display()))
            .assert()
            .success()
    };
    build().stdout(predicate::str::contains("2 read, 0 unchanged, 0 removed"));
    std::fs::write(docs.join("two.txt"), "The second document, edited.\n").unwrap();
    build().stdout(predicate::str::contains("1 read, 1 unchanged, 0 removed"));
}

#[test]
fn skipped_files_are_warned_about_and_the_rest_indexed() {
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs");
    std::fs::create_dir(&docs).unwrap();
    std::fs::write(docs.join("empty.md"), "").unwrap();
    std::fs::write(docs.join("binary.txt"), [0u8, 159, 146, 150]).unwrap();
    std::fs::write(docs.join("big.md"), "x ".repeat(600)).unwrap();
    std::fs::write(
        docs.join("broken.html"),
        "<h1>Broken<p>wombat survives <b>unclosed &amp; <scr",
    )
    .unwrap();
    std::fs::write(
        docs.join("unicode.md"),
        "# Política de viajes\n\nLos hoteles en Madrid: 150 €.\n",
    )
    .unwrap();
    let index = dir.path().join("idx");
    demarc()
        .args(["ground", "index", "--max-file-bytes", "1000", "--index"])
        .arg(&index)
        .arg("--source")
        .arg(format!("docs={}", docs.display()))
        .assert()
        .success()
        .stdout(predicate::str::starts_with("indexed 2 documents"))
        .stdout(predicate::str::contains("3 warnings"))
        .stderr(predicate::str::contains("empty.md`: no text to index"))
        .stderr(predicate::str::contains("binary.txt`: binary content"))
        .stderr(predicate::str::contains(
            "big.md`: 1200 bytes is over the 1000-byte limit",
        ));
    let wombat = query_json(&index, "wombat", &[]);
    assert_eq!(wombat[0]["document"], "broken.html");
    assert_eq!(wombat[0]["heading"], "Broken");
    let madrid = query_json(&index, "hoteles Madrid", &[]);
    assert_eq!(madrid[0]["heading"], "Política de viajes");
    assert!(madrid[0]["text"].as_str().unwrap().contains("150 €"));
}

#[test]
fn the_estate_names_the_sources_and_their_groups() {
    let dir = tempfile::tempdir().unwrap();
    let index = dir.path().join("idx");
    demarc()
        .args(["ground", "index", "--app", "policy-finder", "--estate"])
        .arg(repo().join("examples/bank-estate.yaml"))
        .arg("--index")
        .arg(&index)
        .assert()
        .success()
        .stdout(predicate::str::contains("indexed 8 documents"));
    let passages = query_json(
        &index,
        "credit authority for facilities above 25 million",
        &["credit-risk"],
    );
    assert_eq!(passages[0]["document"], "commercial-credit-policy.html");
    assert!(
        query_json(&index, "credit authority for facilities", &["staff"])
            .iter()
            .all(|p| p["source"] == "hr-policies")
    );

    demarc()
        .args(["ground", "index", "--app", "no-such-app", "--estate"])
        .arg(repo().join("examples/bank-estate.yaml"))
        .arg("--index")
        .arg(dir.path().join("other"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no application `no-such-app`"));
}

#[test]
fn bad_input_is_a_clear_error_with_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    demarc()
        .args([
            "ground",
            "index",
            "--source",
            "policies=/no/such/folder",
            "--index",
        ])
        .arg(dir.path().join("idx"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "grounding source `policies`: folder `/no/such/folder` does not exist",
        ));
    demarc()
        .args(["ground", "index", "--source", "no-equals-sign", "--index"])
        .arg(dir.path().join("idx"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("invalid source `no-equals-sign`"));
    demarc()
        .args(["ground", "index", "--index"])
        .arg(dir.path().join("idx"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no grounding source given"));
    // A folder holding something else is never written into.
    let occupied = dir.path().join("occupied");
    std::fs::create_dir(&occupied).unwrap();
    std::fs::write(occupied.join("keep.txt"), "mine").unwrap();
    demarc()
        .args(["ground", "index", "--source", &source("hr=hr"), "--index"])
        .arg(&occupied)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "is not empty and holds no grounding index",
        ));
    demarc()
        .args(["ground", "query", "--index"])
        .arg(dir.path().join("missing"))
        .arg("anything")
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "holds no grounding index (no such folder)",
        ));
    demarc()
        .args(["ground", "query", "--index", ".", "q", "-k", "0"])
        .assert()
        .code(2);
}
