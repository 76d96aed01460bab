//! Verdicts an auditor can trust, from the command line: evidence files are hashed, review
//! dates checked, and every output format carries the proof.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;

fn demarc() -> Command {
    let mut cmd = Command::cargo_bin("demarc").unwrap();
    cmd.env("NO_COLOR", "1")
        .env_remove("DEMARC_CATALOG")
        .env_remove("DEMARC_DB");
    cmd
}

const REPORT: &str = "Penetration test summary: no open high findings.\n";

/// An estate whose application-security evidence is a file beside it, pinned by `sha256`.
fn estate(dir: &Path, sha256: &str, reviewed: &str) -> PathBuf {
    std::fs::create_dir_all(dir.join("evidence")).unwrap();
    std::fs::write(dir.join("evidence/pentest.md"), REPORT).unwrap();
    let text = format!(
        "format: 1
organisation: {{name: Test Bank}}
teams: [{{id: platform, name: Platform, contact: p@example.com}}]
providers: [{{id: azure, name: Azure}}]
applications:
  - id: assistant
    name: Assistant
    owner: platform
    data_classification: internal
    status: sanctioned
    components: [{{id: llm, kind: model, service_model: paas, provider: azure}}]
    controls:
      application-security: {{status: implemented, statement: SSO and per-app keys}}
    evidence:
      - area: application-security
        description: Pen test summary
        file: evidence/pentest.md
        sha256: {sha256}
        reviewer: R. Viewer
        reviewed: {reviewed}
        expires: 2099-01-01
"
    );
    let path = dir.join("estate.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

fn sha256_of_report() -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(REPORT.as_bytes()))
}

fn appsec(estate: &Path) -> Value {
    let out = demarc()
        .args([
            "assess",
            "--no-store",
            "--format",
            "json",
            "--today",
            "2026-12-02",
        ])
        .arg(estate)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["applications"][0]["duties"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["area"] == "application-security")
        .unwrap()
        .clone()
}

#[test]
fn a_verified_evidence_file_counts() {
    let dir = tempfile::tempdir().unwrap();
    let estate = estate(dir.path(), &sha256_of_report(), "2026-10-01");
    let d = appsec(&estate);
    assert_eq!(d["covered"], true, "{d}");
    assert_eq!(d["declared_evidence"][0]["file_check"], "verified");
    demarc()
        .arg("validate")
        .arg(&estate)
        .assert()
        .success()
        .stdout(predicate::str::contains(": ok"));
}

#[test]
fn a_changed_evidence_file_is_a_mismatch_and_a_validate_error() {
    let dir = tempfile::tempdir().unwrap();
    let estate = estate(dir.path(), &"0".repeat(64), "2026-10-01");
    let d = appsec(&estate);
    assert_eq!(d["covered"], false);
    assert_eq!(
        d["gaps"],
        serde_json::json!(["evidence-missing", "evidence-mismatch"])
    );
    assert_eq!(
        d["declared_evidence"][0]["file_check"]["mismatch"]["actual"],
        sha256_of_report()
    );
    // validate names the file, line and column of the recorded hash.
    demarc()
        .arg("validate")
        .arg(&estate)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("estate.yaml:18:17: error: evidence file `evidence/pentest.md` does not match its sha256"));
}

#[test]
fn a_missing_evidence_file_is_a_mismatch_and_a_validate_error() {
    let dir = tempfile::tempdir().unwrap();
    let estate = estate(dir.path(), &sha256_of_report(), "2026-10-01");
    std::fs::remove_file(dir.path().join("evidence/pentest.md")).unwrap();
    let d = appsec(&estate);
    assert!(
        d["gaps"]
            .as_array()
            .unwrap()
            .contains(&"evidence-mismatch".into()),
        "{d}"
    );
    assert_eq!(
        d["declared_evidence"][0]["file_check"]["missing"]["reason"],
        "no such file"
    );
    demarc()
        .arg("validate")
        .arg(&estate)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "error: evidence file `evidence/pentest.md` cannot be read: no such file",
        ))
        .stderr(predicate::str::contains("estate.yaml:17:15"));
}

#[test]
fn a_review_in_the_future_does_not_count() {
    let dir = tempfile::tempdir().unwrap();
    let estate = estate(dir.path(), &sha256_of_report(), "2029-10-01");
    let d = appsec(&estate);
    assert_eq!(d["covered"], false);
    assert!(
        d["declared_evidence"][0]["problem"]
            .as_str()
            .unwrap()
            .contains("after the assessment date")
    );
    demarc()
        .arg("validate")
        .arg(&estate)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "error: evidence reviewed on 2029-10-01, which is after today",
        ));
}

#[test]
fn every_format_carries_the_proof() {
    let dir = tempfile::tempdir().unwrap();
    let estate = estate(dir.path(), &"0".repeat(64), "2026-10-01");
    for format in ["table", "markdown", "csv", "html"] {
        let out = demarc()
            .args([
                "assess",
                "--no-store",
                "--today",
                "2026-12-02",
                "--format",
                format,
            ])
            .arg(&estate)
            .output()
            .unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        for needle in [
            "SSO and per-app keys",
            "Pen test summary",
            "evidence/pentest.md",
            "R. Viewer",
            "2026-10-01",
            "sha256 mismatch",
            "evidence-mismatch",
            // PaaS prompt filtering is shared with Azure; inherited areas are listed.
            "azure",
            "model-hosting",
        ] {
            assert!(text.contains(needle), "{format} lacks {needle:?}:\n{text}");
        }
    }
}

fn bank_estate() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/bank-estate.yaml")
        .display()
        .to_string()
}

fn contradiction_kinds(app: &Value) -> Vec<String> {
    app["contradictions"]
        .as_array()
        .map(|c| {
            c.iter()
                .map(|c| c["kind"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn recorded_discovery_contradicts_claims_and_lists_unlisted_services() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("d.db").display());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // Squid access log: consumer ChatGPT reached once and refused once at the proxy, Ask
    // Northwind's Azure OpenAI resource reached directly, and a service nobody listed.
    let log = format!(
        "{now}.100 60 10.0.0.9 TCP_TUNNEL/200 100 CONNECT chatgpt.com:443 erin HIER_DIRECT/1.1.1.1 -\n\
         {now}.200 60 10.0.0.8 TCP_DENIED/403 0 CONNECT chatgpt.com:443 frank HIER_NONE/- -\n\
         {now}.300 60 10.0.0.7 TCP_TUNNEL/200 4000 CONNECT northwind-uksouth.openai.azure.com:443 gina HIER_DIRECT/20.1.1.1 -\n\
         {now}.400 60 10.0.0.6 TCP_TUNNEL/200 900 CONNECT chat.deepseek.com:443 hal HIER_DIRECT/1.1.1.2 -\n"
    );
    let log_path = dir.path().join("access.log");
    std::fs::write(&log_path, log).unwrap();
    demarc()
        .args([
            "discover",
            "--estate",
            &bank_estate(),
            "--record",
            "--db",
            &db,
        ])
        .arg(&log_path)
        .assert()
        .success();

    let out = demarc()
        .args(["assess", &bank_estate(), "--format", "json", "--db", &db])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let app = |id: &str| {
        v["applications"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["id"] == id)
            .unwrap()
            .clone()
    };
    let chatgpt = app("consumer-chatgpt");
    let kinds = contradiction_kinds(&chatgpt);
    assert!(
        kinds.contains(&"unsanctioned-traffic".to_string()),
        "{kinds:?}"
    );
    assert!(kinds.contains(&"blocked-traffic".to_string()), "{kinds:?}");
    // Only the request that went through counts; the proxy's refusal confirms the block.
    let detail = chatgpt["contradictions"][0]["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("1 request seen in network logs"),
        "{detail}"
    );
    assert!(
        detail.contains("1 request more blocked by the proxy"),
        "{detail}"
    );
    assert!(
        chatgpt["contradictions"][0]["source"]
            .as_str()
            .unwrap()
            .starts_with("discovery run 1")
    );
    let governance = chatgpt["duties"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["area"] == "usage-governance")
        .unwrap();
    assert!(
        governance["gaps"]
            .as_array()
            .unwrap()
            .contains(&"contradicted".into())
    );
    assert_eq!(governance["covered"], false);

    let ask = app("colleague-assistant");
    assert_eq!(contradiction_kinds(&ask), ["gateway-bypass"]);

    let unlisted = v["unlisted_services"].as_array().unwrap();
    assert!(
        unlisted
            .iter()
            .any(|u| u["service"] == "deepseek" && u["status"] == "shadow"),
        "{unlisted:?}"
    );
    assert_eq!(v["summary"]["unlisted_services"], unlisted.len());
    assert!(v["summary"]["contradicted"].as_u64().unwrap() >= 2);

    // `--observed-since` outside the run's window: nothing observed, nothing contradicted.
    let out = demarc()
        .args(["assess", &bank_estate(), "--format", "json", "--db", &db])
        .args(["--today", "2020-01-01", "--observed-since", "30"])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["summary"]["contradicted"], 0);
    assert!(v.get("unlisted_services").is_none());
}

#[test]
fn a_malformed_observation_window_is_a_usage_error() {
    demarc()
        .args([
            "assess",
            &bank_estate(),
            "--no-store",
            "--observed-since",
            "last-week",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "`last-week` is neither a number of days nor a date (YYYY-MM-DD)",
        ));
}
