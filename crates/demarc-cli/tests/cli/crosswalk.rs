//! `demarc crosswalk`: relations between two catalogs' areas, in every format, either way.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;

fn demarc() -> Command {
    let mut cmd = Command::cargo_bin("demarc").unwrap();
    cmd.env("NO_COLOR", "1")
        .env_remove("DEMARC_CATALOG")
        .env_remove("DEMARC_DB");
    cmd
}

fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path
}

/// A second catalog with three areas, taking the estate's service models as they are.
const MINI: &str = r#"format: 1
id: mini
title: Mini model
version: "1"
source: {title: s, url: "https://example.com", date: "2024-01-01", licence: l}
roles: []
service_models:
  - {id: iaas, title: I, description: d}
  - {id: paas, title: P, description: d}
  - {id: saas, title: S, description: d}
layers:
  - {id: all, title: All, description: d, supplied_by: [model, application]}
areas:
  - id: guardrails
    title: Guardrails
    description: d
    layer: all
    cells:
      iaas: {owner: customer, note: n, source: s}
      paas: {owner: provider, note: n, source: s}
      saas: {owner: provider, note: n, source: s}
  - id: compute
    title: Compute
    description: d
    layer: all
    cells:
      iaas: {owner: provider, note: n, source: s}
      paas: {owner: provider, note: n, source: s}
      saas: {owner: provider, note: n, source: s}
  - id: strategy
    title: Strategy
    description: d
    layer: all
    cells:
      iaas: {owner: customer, note: n, source: s}
      paas: {owner: customer, note: n, source: s}
      saas: {owner: customer, note: n, source: s}
"#;

const CROSSWALK: &str = r#"format: 1
from: csa-genai-2023
to: mini
relations:
  - {from: prompt-filtering, to: guardrails, relation: equal, rationale: "CSA PaaS s5; mini row 1"}
  - {from: infrastructure, to: compute, relation: subset, rationale: "=HYPERLINK(\"x\") CSA IaaS s1"}
  - {from: infrastructure-security, to: compute, relation: subset, rationale: "CSA IaaS s2; mini row 2"}
"#;

fn setup() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let mini = write(dir.path(), "mini.yaml", MINI);
    let cw = write(dir.path(), "cw.yaml", CROSSWALK);
    (dir, mini, cw)
}

#[test]
fn crosswalk_json_lists_relations_and_the_unrelated_areas_of_both_sides() {
    let (_dir, mini, cw) = setup();
    let out = demarc()
        .args(["crosswalk", "csa-genai-2023"])
        .arg(&mini)
        .arg("--crosswalk")
        .arg(&cw)
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["from"]["id"], "csa-genai-2023");
    assert_eq!(v["to"]["id"], "mini");
    assert_eq!(v["relations"].as_array().unwrap().len(), 3);
    let r = &v["relations"][1];
    assert_eq!(r["from_area"], "infrastructure");
    assert_eq!(r["from_title"], "GenAI infrastructure");
    assert_eq!(r["relation"], "subset");
    assert_eq!(r["to_area"], "compute");
    assert_eq!(r["to_title"], "Compute");
    let unrelated_to: Vec<&str> = v["unrelated"]["to"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(unrelated_to, ["strategy"]);
    // Nine of the seed's twelve areas have no relation in this crosswalk.
    assert_eq!(v["unrelated"]["from"].as_array().unwrap().len(), 9);
}

#[test]
fn crosswalk_read_the_other_way_swaps_subset_and_superset() {
    let (_dir, mini, cw) = setup();
    let out = demarc()
        .arg("crosswalk")
        .arg(&mini)
        .arg("csa-genai-2023")
        .arg("--crosswalk")
        .arg(&cw)
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["from"]["id"], "mini");
    let rel = |from: &str, to: &str| {
        v["relations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["from_area"] == from && r["to_area"] == to)
            .map(|r| r["relation"].as_str().unwrap().to_string())
    };
    assert_eq!(
        rel("compute", "infrastructure").as_deref(),
        Some("superset")
    );
    assert_eq!(
        rel("guardrails", "prompt-filtering").as_deref(),
        Some("equal")
    );
}

#[test]
fn crosswalk_in_every_format() {
    let (_dir, mini, cw) = setup();
    let run = |format: &str| {
        let out = demarc()
            .args(["crosswalk", "csa-genai-2023"])
            .arg(&mini)
            .arg("--crosswalk")
            .arg(&cw)
            .args(["--format", format])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{format}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let table = run("table");
    assert!(table.contains("prompt-filtering"), "{table}");
    assert!(
        table.contains("1 area of `mini` with no relation: `strategy`"),
        "{table}"
    );
    let md = run("markdown");
    assert!(md.contains("| Prompt filtering and guardrails (`prompt-filtering`) | equal | Guardrails (`guardrails`) |"), "{md}");
    let csv = run("csv");
    assert!(
        csv.starts_with(
            "from_catalog,from_area,from_title,relation,to_catalog,to_area,to_title,rationale\n"
        ),
        "{csv}"
    );
    // A rationale that starts like a formula is neutralised.
    assert!(
        csv.contains("\"'=HYPERLINK(\"\"x\"\") CSA IaaS s1\""),
        "{csv}"
    );
    assert!(
        csv.contains("mini,,,none,mini,strategy,Strategy,")
            || csv.contains("csa-genai-2023,,,none,mini,strategy,Strategy,"),
        "{csv}"
    );
    let html = run("html");
    assert!(html.contains("Content-Security-Policy"), "{html}");
    assert!(html.contains("<code>strategy</code>"), "{html}");
}

#[test]
fn a_crosswalk_with_dangling_ids_is_an_input_error_with_locations() {
    let (dir, mini, _) = setup();
    let bad = write(
        dir.path(),
        "bad.yaml",
        "format: 1\nfrom: csa-genai-2023\nto: mini\nrelations:\n  - {from: prompt-filtring, to: guardrail, relation: equal, rationale: r}\n",
    );
    let out = demarc()
        .args(["crosswalk", "csa-genai-2023"])
        .arg(&mini)
        .arg("--crosswalk")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "bad.yaml:5:12: error: catalog `csa-genai-2023` has no area `prompt-filtring`"
        ),
        "{err}"
    );
    assert!(err.contains("did you mean `prompt-filtering`?"), "{err}");
    assert!(
        err.contains("catalog `mini` has no area `guardrail`"),
        "{err}"
    );
    assert!(err.contains("did you mean `guardrails`?"), "{err}");
}

#[test]
fn two_catalogs_without_a_crosswalk_are_an_input_error() {
    let (_dir, mini, _) = setup();
    let out = demarc()
        .args(["crosswalk", "csa-genai-2023"])
        .arg(&mini)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no crosswalk between `csa-genai-2023` and `mini`"),
        "{err}"
    );
}

#[test]
fn the_builtin_csa_to_cosai_crosswalk_lists_every_area_of_both_sides() {
    let json = |args: &[&str]| -> Value {
        let out = demarc().args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let areas = |catalog: &str| -> Vec<String> {
        json(&["matrix", "--catalog", catalog, "--format", "json"])["areas"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["id"].as_str().unwrap().to_string())
            .collect()
    };
    let cw = json(&[
        "crosswalk",
        "csa-genai-2023",
        "cosai-srf-1.0",
        "--format",
        "json",
    ]);
    assert_eq!(cw["origin"], "<builtin:csa-genai-2023--cosai-srf-1.0>");
    let relations = cw["relations"].as_array().unwrap();
    for (catalog, key) in [
        ("csa-genai-2023", "from_area"),
        ("cosai-srf-1.0", "to_area"),
    ] {
        for area in areas(catalog) {
            assert!(
                relations.iter().any(|r| r[key] == area.as_str()),
                "{catalog} area {area} has no relation"
            );
        }
    }
    assert!(cw["unrelated"]["from"].as_array().unwrap().is_empty());
    assert!(cw["unrelated"]["to"].as_array().unwrap().is_empty());
    let table = demarc()
        .args(["crosswalk", "csa-genai-2023", "cosai-srf-1.0"])
        .output()
        .unwrap();
    let table = String::from_utf8(table.stdout).unwrap();
    assert!(
        table.contains("every area of `csa-genai-2023` is related"),
        "{table}"
    );
    assert!(
        table.contains("every area of `cosai-srf-1.0` is related"),
        "{table}"
    );
}
