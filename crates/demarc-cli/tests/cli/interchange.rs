//! `demarc export` / `demarc import`: OSCAL and CycloneDX through the real binary, on the
//! bank example and on the NIST and CycloneDX examples (copies in
//! crates/demarc-interchange/tests/fixtures/examples).

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

fn bank() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/bank-estate.yaml")
}

fn shared(dir: &str) -> Vec<PathBuf> {
    let d = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../demarc-interchange/tests/fixtures/examples")
        .join(dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&d)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{}", d.display());
    files
}

fn json(cmd: &mut Command) -> Value {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn export_oscal_writes_four_documents_that_are_the_same_twice() {
    let dir = tempfile::tempdir().unwrap();
    let run = |sub: &str| {
        let out = dir.path().join(sub);
        demarc()
            .args(["export", "oscal", "--estate"])
            .arg(bank())
            .args(["--date", "2026-11-26", "--out-dir"])
            .arg(&out)
            .assert()
            .success();
        out
    };
    let (a, b) = (run("a"), run("b"));
    for f in [
        "catalog.json",
        "component-definition.json",
        "ssp.json",
        "assessment-results.json",
    ] {
        let x = std::fs::read(a.join(f)).unwrap();
        assert!(!x.is_empty());
        assert_eq!(x, std::fs::read(b.join(f)).unwrap(), "{f} differs");
    }
    // One document to stdout.
    let ssp = json(
        demarc()
            .args(["export", "oscal", "--estate"])
            .arg(bank())
            .args(["--date", "2026-11-26", "--document", "ssp"]),
    );
    assert_eq!(
        ssp,
        serde_json::from_slice::<Value>(&std::fs::read(a.join("ssp.json")).unwrap()).unwrap()
    );
}

#[test]
fn export_oscal_catalog_of_each_builtin() {
    for id in ["csa-genai-2023", "cosai-srf-1.0"] {
        let doc = json(demarc().args(["export", "oscal-catalog", "--catalog", id]));
        assert_eq!(doc["catalog"]["metadata"]["oscal-version"], "1.2.1");
    }
}

#[test]
fn export_cyclonedx_spec_versions_and_unknown_app() {
    for spec in ["1.5", "1.6", "1.7"] {
        let bom = json(
            demarc()
                .args(["export", "cyclonedx", "--estate"])
                .arg(bank())
                .args(["--spec", spec, "--date", "2026-11-26"]),
        );
        assert_eq!(bom["specVersion"], spec);
    }
    let out = demarc()
        .args(["export", "cyclonedx", "--estate"])
        .arg(bank())
        .args(["--app", "complaints-lm"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("complaints-llm"), "{err}");
}

#[test]
fn import_oscal_reads_every_nist_example() {
    for f in shared("oscal") {
        let report = json(
            demarc()
                .args(["import", "oscal", "--format", "json"])
                .arg(&f),
        );
        assert!(report["kind"].is_string(), "{}", f.display());
        // NIST's examples speak of SP 800-53 controls: none is an area of the catalog.
        assert_eq!(report["agreements"].as_array().unwrap().len(), 0);
    }
}

#[test]
fn import_oscal_reports_where_a_provider_disagrees_with_the_catalog() {
    let dir = tempfile::tempdir().unwrap();
    let cd = json(
        demarc()
            .args(["export", "oscal", "--estate"])
            .arg(bank())
            .args(["--date", "2026-11-26", "--document", "component-definition"]),
    );
    // A provider that claims a customer duty as its own.
    let mut text = cd.to_string();
    let needle = r#""control-id":"prompt-filtering","description":"The customer is responsible."#;
    assert!(text.contains(needle));
    let first = text.find(needle).unwrap();
    let props_at = first + text[first..].find(r#""value":"customer""#).unwrap();
    text.replace_range(
        props_at..props_at + r#""value":"customer""#.len(),
        r#""value":"provider""#,
    );
    let file = dir.path().join("provider.json");
    std::fs::write(&file, text).unwrap();
    let report = json(
        demarc()
            .args(["import", "oscal", "--format", "json"])
            .arg(&file),
    );
    assert_eq!(report["disagrees"], 1, "{report}");
    let d = report["agreements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["verdict"] == "disagrees")
        .unwrap();
    assert_eq!(d["area"], "prompt-filtering");
    assert_eq!(d["stated"], "provider");
    assert_eq!(d["catalog"], "customer");
    assert!(
        d["path"]
            .as_str()
            .unwrap()
            .starts_with("$.component-definition.components[")
    );
    // And the table says so.
    let out = demarc()
        .args(["import", "oscal"])
        .arg(&file)
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("disagrees:") && table.contains("prompt-filtering"),
        "{table}"
    );
}

#[test]
fn import_oscal_write_estate_adds_the_providers_offerings() {
    let dir = tempfile::tempdir().unwrap();
    let src = shared("oscal")
        .into_iter()
        .find(|p| p.ends_with("oscal_leveraged-example_ssp.json"))
        .unwrap();
    let out = dir.path().join("estate.json");
    demarc()
        .args(["import", "oscal"])
        .arg(&src)
        .arg("--estate")
        .arg(bank())
        .arg("--write-estate")
        .arg(&out)
        .assert()
        .success();
    // The file loads (validate would also check the bank's evidence files, which live beside
    // the example, not in the temporary folder).
    demarc()
        .arg("assess")
        .arg(&out)
        .args(["--no-store", "--format", "json"])
        .assert()
        .success();
    let estate: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let added = estate["providers"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["offerings"].as_array().unwrap())
        .filter(|o| {
            o["description"]
                .as_str()
                .is_some_and(|d| d.contains("Imported from the OSCAL"))
        })
        .count();
    assert!(added >= 1, "{estate}");
}

#[test]
fn import_rejects_malformed_documents_naming_the_json_path() {
    let dir = tempfile::tempdir().unwrap();
    for (name, body, expect) in [
        ("a.json", "[1]", "$: expected an OSCAL document"),
        (
            "b.json",
            r#"{"system-security-plan": {"uuid": "x", "metadata": {"title": 3}}}"#,
            "$.system-security-plan.metadata.title: expected a string",
        ),
        ("c.json", "{not json", "$: not JSON"),
    ] {
        let f = dir.path().join(name);
        std::fs::write(&f, body).unwrap();
        let out = demarc().args(["import", "oscal"]).arg(&f).output().unwrap();
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(expect), "{err}");
    }
    let f = dir.path().join("bom.json");
    std::fs::write(
        &f,
        r#"{"bomFormat": "CycloneDX", "specVersion": "1.6", "components": [{"type": "machine-learning-model", "name": "m", "hashes": [{"alg": "SHA-256"}]}]}"#,
    )
    .unwrap();
    let out = demarc()
        .args(["import", "cyclonedx"])
        .arg(&f)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("$.components[0].hashes[0].content: missing"),
        "{err}"
    );
}

#[test]
fn import_cyclonedx_reads_every_example_or_names_the_path() {
    for f in shared("cyclonedx")
        .into_iter()
        .chain(shared("cyclonedx-mlbom"))
    {
        let out = demarc()
            .args(["import", "cyclonedx", "--format", "json"])
            .arg(&f)
            .arg("--estate")
            .arg(bank())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        match out.status.code() {
            Some(0) => {
                let v: Value = serde_json::from_slice(&out.stdout).unwrap();
                assert!(v["models"].is_array());
            }
            Some(2) => assert!(err.contains(": $"), "{}: {err}", f.display()),
            other => panic!("{}: {other:?} {err}", f.display()),
        }
    }
}

#[test]
fn a_matching_model_hash_becomes_lineage_evidence() {
    let dir = tempfile::tempdir().unwrap();
    let hash = "ab".repeat(32);
    // The bank's estate with the complaint model's weights hashed.
    let bank_text = std::fs::read_to_string(bank()).unwrap();
    let needle = "          base_model: mistralai/Mistral-7B-Instruct-v0.3\n";
    assert!(bank_text.contains(needle));
    let estate = dir.path().join("bank.yaml");
    std::fs::write(
        &estate,
        bank_text.replace(needle, &format!("{needle}          sha256: {hash}\n")),
    )
    .unwrap();
    let bom = dir.path().join("bom.json");
    let out = demarc()
        .args(["export", "cyclonedx", "--estate"])
        .arg(&estate)
        .args(["--app", "complaints-llm", "--out"])
        .arg(&bom)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let written = dir.path().join("out.json");
    let report = json(
        demarc()
            .args(["import", "cyclonedx", "--format", "json"])
            .arg(&bom)
            .arg("--estate")
            .arg(&estate)
            .args(["--date", "2026-11-26", "--write-estate"])
            .arg(&written),
    );
    assert_eq!(report["evidence"][0]["component"], "complaints-mistral");
    assert_eq!(report["evidence"][0]["area"], "model-selection-lineage");
    assert_eq!(report["checks"][0]["hash"], "match");
    assert!(
        report["checks"][0]["differences"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    // The written estate holds the evidence, with the BOM's file and hash, and assesses.
    let text = std::fs::read_to_string(&written).unwrap();
    assert!(text.contains("demarc import cyclonedx"));
    let assessed = json(demarc().arg("assess").arg(&written).args([
        "--format",
        "json",
        "--no-store",
        "--today",
        "2026-11-26",
    ]));
    let app = assessed["applications"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == "complaints-llm")
        .unwrap();
    let duty = app["duties"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["area"] == "model-selection-lineage" && d["component"] == "complaints-mistral")
        .unwrap();
    let ev = duty["declared_evidence"].to_string();
    assert!(
        ev.contains("demarc import cyclonedx") && ev.contains(r#""file_check":"verified""#),
        "{ev}"
    );
}

/// A BOM's hash never becomes the estate's record: written back and imported again, the same
/// BOM finds no hash to match, so it cannot vouch for itself.
#[test]
fn a_bom_hash_is_not_copied_into_the_estate() {
    let dir = tempfile::tempdir().unwrap();
    let hash = "cd".repeat(32);
    let bank_text = std::fs::read_to_string(bank()).unwrap();
    let needle = "          base_model: mistralai/Mistral-7B-Instruct-v0.3\n";
    // The BOM comes from an estate that records the hash; the checked estate does not.
    let hashed = dir.path().join("hashed.yaml");
    std::fs::write(
        &hashed,
        bank_text.replace(needle, &format!("{needle}          sha256: {hash}\n")),
    )
    .unwrap();
    let bom = dir.path().join("bom.json");
    let out = demarc()
        .args(["export", "cyclonedx", "--estate"])
        .arg(&hashed)
        .args(["--app", "complaints-llm", "--out"])
        .arg(&bom)
        .output()
        .unwrap();
    assert!(out.status.success());
    let written = dir.path().join("out.json");
    let import = |estate: &std::path::Path, write: bool| {
        let mut cmd = demarc();
        cmd.args(["import", "cyclonedx", "--format", "json"])
            .arg(&bom)
            .arg("--estate")
            .arg(estate)
            .args(["--date", "2026-11-26"]);
        if write {
            cmd.arg("--write-estate").arg(&written);
        }
        json(&mut cmd)
    };
    let first = import(&bank(), true);
    assert_eq!(first["checks"][0]["hash"], "none");
    assert!(first["evidence"].as_array().unwrap().is_empty());
    assert!(!first["checks"][0]["fills"].to_string().contains("sha256"));
    assert!(!std::fs::read_to_string(&written).unwrap().contains(&hash));
    let again = import(&written, false);
    assert_eq!(again["checks"][0]["hash"], "none");
    assert!(again["evidence"].as_array().unwrap().is_empty());
}

/// Bad flags are refused with exit 2 and a message that names the value: an unknown service
/// model or lineage area (with a suggestion), a spec version or date that cannot be.
#[test]
fn bad_flags_are_refused_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let ssp = dir.path().join("ssp.json");
    let bom = dir.path().join("bom.json");
    for (doc, out) in [("ssp", &ssp), ("cyclonedx", &bom)] {
        let mut cmd = demarc();
        if doc == "ssp" {
            cmd.args(["export", "oscal", "--document", "ssp", "--estate"]);
        } else {
            cmd.args(["export", "cyclonedx", "--estate"]);
        }
        let o = cmd.arg(bank()).output().unwrap();
        assert!(o.status.success());
        std::fs::write(out, o.stdout).unwrap();
    }
    let cases: Vec<(Vec<std::ffi::OsString>, &str)> = vec![
        (
            vec![
                "import".into(),
                "oscal".into(),
                ssp.clone().into(),
                "--service-model".into(),
                "pass".into(),
            ],
            "paas",
        ),
        (
            vec![
                "import".into(),
                "cyclonedx".into(),
                bom.clone().into(),
                "--estate".into(),
                bank().into(),
                "--lineage-area".into(),
                "model-selection-lineag".into(),
            ],
            "model-selection-lineage",
        ),
        (
            vec![
                "export".into(),
                "cyclonedx".into(),
                "--estate".into(),
                bank().into(),
                "--spec".into(),
                "1.4".into(),
            ],
            "1.4",
        ),
        (
            vec![
                "export".into(),
                "oscal".into(),
                "--estate".into(),
                bank().into(),
                "--date".into(),
                "2026-13-01".into(),
            ],
            "2026-13-01",
        ),
    ];
    for (args, named) in cases {
        let out = demarc().args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(named), "{args:?}: {err}");
    }
}
