//! Every built-in catalog end to end: its matrix in every format (with a reviewed snapshot of
//! the text form), and the bank example assessed under CoSAI without editing the estate.
//! Update the snapshots with `INSTA_UPDATE=always cargo test -p demarc-cli --test cli catalogs`
//! and review the diff.

use assert_cmd::Command;
use serde_json::Value;

fn demarc() -> Command {
    let mut cmd = Command::cargo_bin("demarc").unwrap();
    cmd.current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .env("NO_COLOR", "1")
        .env("XDG_DATA_HOME", "/nonexistent/demarc-tests")
        .env_remove("DEMARC_CATALOG")
        .env_remove("DEMARC_DB");
    cmd
}

fn stdout(args: &[&str]) -> String {
    let out = demarc().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "demarc {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The ids `demarc catalogs` lists, so a catalog added later is covered without editing this.
fn builtin_ids() -> Vec<String> {
    let v: Value = serde_json::from_str(&stdout(&["catalogs", "--format", "json"])).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn catalogs_lists_each_builtin_with_version_source_and_licence() {
    let ids = builtin_ids();
    for id in ["csa-genai-2023", "cosai-srf-1.0"] {
        assert!(ids.iter().any(|i| i == id), "{id} missing from {ids:?}");
    }
    let v: Value = serde_json::from_str(&stdout(&["catalogs", "--format", "json"])).unwrap();
    for e in v.as_array().unwrap() {
        assert!(!e["version"].as_str().unwrap().is_empty());
        assert!(!e["source"]["url"].as_str().unwrap().is_empty());
        assert!(!e["licence_note"].as_str().unwrap().is_empty(), "{e}");
    }
    let table = stdout(&["catalogs"]);
    assert!(table.contains("licence"), "{table}");
    assert!(table.contains("OASIS Open Project notice"), "{table}");
}

#[test]
fn every_builtin_matrix_matches_its_reviewed_snapshot() {
    for id in builtin_ids() {
        let text = stdout(&["matrix", "--catalog", &id]);
        insta::assert_snapshot!(format!("matrix_{id}"), text);
    }
}

#[test]
fn every_builtin_matrix_renders_in_every_format() {
    for id in builtin_ids() {
        for format in ["table", "markdown", "csv", "json", "html"] {
            let out = stdout(&["matrix", "--catalog", &id, "--format", format]);
            assert!(out.len() > 200, "{id} {format}: {out}");
        }
        let json: Value =
            serde_json::from_str(&stdout(&["matrix", "--catalog", &id, "--format", "json"]))
                .unwrap();
        assert_eq!(json["catalog"]["id"], id.as_str());
        let html = stdout(&["matrix", "--catalog", &id, "--format", "html"]);
        assert!(html.contains(r#"<div class="matrix-wrap">"#), "{id}");
        let models = json["service_models"].as_array().unwrap().len();
        // More than three operating models: compact cells, sticky area column, notes on
        // hover, focus and in print.
        assert_eq!(
            html.contains(r#"class="matrix wide""#),
            models > 3,
            "{id} has {models} service models"
        );
    }
}

#[test]
fn cosai_matrix_marks_basis_in_every_format() {
    let csv = stdout(&["matrix", "--catalog", "cosai-srf-1.0", "--format", "csv"]);
    assert!(csv.lines().next().unwrap().ends_with(",basis"), "{csv}");
    assert!(
        csv.contains(",disputed") && csv.contains(",inferred"),
        "{csv}"
    );
    let md = stdout(&[
        "matrix",
        "--catalog",
        "cosai-srf-1.0",
        "--format",
        "markdown",
    ]);
    assert!(md.contains("model-dependent!"), "{md}");
    let json = stdout(&["matrix", "--catalog", "cosai-srf-1.0", "--format", "json"]);
    assert!(json.contains(r#""basis": "disputed""#), "{json}");
    assert!(json.contains(r#""owner": "model-dependent""#), "{json}");
    let html = stdout(&["matrix", "--catalog", "cosai-srf-1.0", "--format", "html"]);
    assert!(html.contains("cell model-dependent"), "{html}");
    assert!(html.contains(r#"<sup class="basis" title="disputed">!</sup>"#));
}

fn bank_under_cosai(format: &str) -> String {
    stdout(&[
        "assess",
        "examples/bank-estate.yaml",
        "--catalog",
        "cosai-srf-1.0",
        "--today",
        "2026-11-26",
        "--no-store",
        "--format",
        format,
    ])
}

fn duty<'a>(report: &'a Value, app: &str, area: &str, component: &str) -> &'a Value {
    report["applications"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == app)
        .and_then(|a| {
            a["duties"]
                .as_array()
                .unwrap()
                .iter()
                .find(|d| d["area"] == area && d["component"] == component)
        })
        .unwrap_or_else(|| panic!("no duty {app}/{area}/{component}"))
}

#[test]
fn the_bank_estate_is_assessed_under_cosai_without_editing_it() {
    let report: Value = serde_json::from_str(&bank_under_cosai("json")).unwrap();
    assert_eq!(report["catalog"]["id"], "cosai-srf-1.0");

    // paas + model -> ai-paas, mapped (A.2.2.1); its foundation model is model-dependent
    // there and the estate does not say who owns it: unresolved, never covered.
    let d = duty(
        &report,
        "colleague-assistant",
        "foundation-models",
        "gpt-4o",
    );
    assert_eq!(d["service_model"], "ai-paas");
    assert_eq!(d["service_model_rule"], "mapped");
    assert_eq!(d["owner"], "model-dependent");
    assert_eq!(d["accountable"]["kind"], "unresolved");
    assert_eq!(d["gaps"][0], "unresolved");
    assert_eq!(d["covered"], false);
    assert_eq!(d["basis"], "inferred");

    // paas + agent -> agent-paas (A.2.2.2).
    let d = duty(
        &report,
        "payments-agent",
        "agents-orchestration-models",
        "exceptions-agent",
    );
    assert_eq!(d["service_model"], "agent-paas");
    assert_eq!(d["service_model_rule"], "mapped");

    // iaas is CoSAI's own id: direct. The figure marks Foundation Models "Model Dependent"
    // under IaaS while §3.2.1 calls the layer customer-owned: disputed.
    let d = duty(
        &report,
        "complaints-llm",
        "foundation-models",
        "complaints-mistral",
    );
    assert_eq!(d["service_model_rule"], "direct");
    assert_eq!(d["basis"], "disputed");
    assert_eq!(d["gaps"][0], "unresolved");

    let unresolved = report["summary"]["unresolved"].as_u64().unwrap();
    assert!(unresolved >= 3, "{}", report["summary"]);

    // Every other format carries the gap kind.
    for format in ["table", "markdown", "csv", "html"] {
        let out = bank_under_cosai(format);
        assert!(out.contains("unresolved"), "{format}: no unresolved gap");
    }
}
