//! `demarc compare`: the bank example under the four built-in catalogs. The expected
//! disagreements are written from the catalogs' cells and their citations (quoted beside
//! each), not from the command's output.

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

const FOUR: [&str; 8] = [
    "--catalog",
    "csa-genai-2023",
    "--catalog",
    "cosai-srf-1.0",
    "--catalog",
    "microsoft-ai-srm",
    "--catalog",
    "aws-genai-scoping",
];

fn bank_json() -> Value {
    let out = demarc()
        .arg("compare")
        .arg(bank())
        .args(FOUR)
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// (application, component a, catalog a area, component b, catalog b, area b, kind,
/// owner a, owner b) — owners as `owner` or `shared/<lead>`.
type Expected = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
);

const EXPECTED: &[Expected] = &[
    // CSA: "Much of the prompt filtering stays with the customer even in SaaS" (SaaS
    // responsibilities, s3: shared, customer leads); CoSAI: guardrails and safety systems are
    // the provider's in the AI Enabled SaaS column (§3 figure; A.2.1). Equal areas.
    (
        "m365-copilot",
        "copilot",
        "prompt-filtering",
        "copilot",
        "cosai-srf-1.0",
        "guardrails-safety-systems",
        "accountable",
        "shared/customer",
        "provider",
    ),
    // CSA: application security stays with the customer in SaaS (SaaS responsibilities, s3);
    // Microsoft: application design and implementation is the provider's under SaaS (diagram).
    (
        "m365-copilot",
        "copilot",
        "application-security",
        "copilot",
        "microsoft-ai-srm",
        "application-design",
        "accountable",
        "customer",
        "provider",
    ),
    // AWS scope 2 (enterprise app): the vendor's application carries the prompt defences
    // (B1, Determine your scope, scope 2, demarc's reading) against CSA's customer lead.
    (
        "m365-copilot",
        "copilot",
        "prompt-filtering",
        "copilot",
        "aws-genai-scoping",
        "prompt-injection-defence",
        "accountable",
        "shared/customer",
        "provider",
    ),
    // CSA gives the customer infrastructure security on IaaS (IaaS responsibilities, s2, the
    // cell marked disputed); CoSAI's IaaS column has the provider lead on compute
    // infrastructure (§3 figure; A.2.3; §3.2.1).
    (
        "complaints-llm",
        "gpu-cluster",
        "infrastructure-security",
        "gpu-cluster",
        "cosai-srf-1.0",
        "compute-infrastructure",
        "accountable",
        "customer",
        "shared/provider",
    ),
    // CSA: the provider supplies the GPUs (IaaS responsibilities, s1); Microsoft: AI compute
    // infrastructure under IaaS is shared with the customer leading (diagram; agent article,
    // physical infrastructure x IaaS agent). The two catalogs' layers pick different
    // components of the application (the platform, the self-hosted model).
    (
        "complaints-llm",
        "gpu-cluster",
        "infrastructure",
        "complaints-mistral",
        "microsoft-ai-srm",
        "ai-compute-infrastructure",
        "accountable",
        "provider",
        "shared/customer",
    ),
    // CSA: the provider answers for the data its model was trained on (PaaS responsibilities,
    // s2); CoSAI: AI training data under AI-PaaS is shared with the customer leading (§3
    // figure, AI & Agent PaaS column; A.2.2.1).
    (
        "colleague-assistant",
        "gpt-4o",
        "training-data",
        "assistant-web",
        "cosai-srf-1.0",
        "ai-training-data",
        "accountable",
        "provider",
        "shared/customer",
    ),
    // CSA: training is the provider's under PaaS (PaaS responsibilities, s1-s2); AWS scope 3
    // has no tuning at all (tuning data n/a; B1, Determine your scope).
    (
        "colleague-assistant",
        "gpt-4o",
        "model-training-tuning",
        "gpt-4o",
        "aws-genai-scoping",
        "tuning-data",
        "owner",
        "provider",
        "n/a",
    ),
    // CSA: the provider may offer guardrails and the customer handles the rest (PaaS
    // responsibilities, s5: shared, customer leads); AWS: prompt defences are the customer's
    // from scope 3 (B1, Risk management, scopes 3-5). Same side, different owner.
    (
        "colleague-assistant",
        "assistant-web",
        "prompt-filtering",
        "assistant-web",
        "aws-genai-scoping",
        "prompt-injection-defence",
        "owner",
        "shared/customer",
        "customer",
    ),
];

fn owner(cell: &Value) -> String {
    match cell["lead"].as_str() {
        Some(lead) => format!("{}/{lead}", cell["owner"].as_str().unwrap()),
        None => cell["owner"].as_str().unwrap().to_string(),
    }
}

#[test]
fn the_bank_under_four_catalogs_shows_the_disagreements_the_sources_imply() {
    let v = bank_json();
    assert_eq!(v["catalogs"].as_array().unwrap().len(), 4);
    assert_eq!(v["pairs"].as_array().unwrap().len(), 3);
    assert_eq!(v["not_compared"].as_array().unwrap().len(), 3);
    let apps = v["applications"].as_array().unwrap();
    for &(app, ca, area_a, cb, catalog_b, area_b, kind, owner_a, owner_b) in EXPECTED {
        let app_v = apps
            .iter()
            .find(|a| a["id"] == app)
            .unwrap_or_else(|| panic!("{app} not listed"));
        let found = app_v["disagreements"].as_array().unwrap().iter().find(|d| {
            d["a"]["catalog"] == "csa-genai-2023"
                && d["a"]["component"] == ca
                && d["a"]["area"] == area_a
                && d["b"]["component"] == cb
                && d["b"]["catalog"] == catalog_b
                && d["b"]["area"] == area_b
        });
        let d =
            found.unwrap_or_else(|| panic!("missing: {app} {ca} {area_a} vs {catalog_b} {area_b}"));
        assert_eq!(d["kind"], kind, "{app} {area_a} vs {area_b}");
        assert_eq!(owner(&d["a"]), owner_a, "{app} {area_a}");
        assert_eq!(owner(&d["b"]), owner_b, "{app} {area_b}");
        // Both cells carry their note and citation.
        for side in ["a", "b"] {
            assert!(!d[side]["note"].as_str().unwrap().is_empty());
            assert!(!d[side]["source"].as_str().unwrap().is_empty());
        }
    }
}

#[test]
fn model_dependent_cells_the_bank_has_not_resolved_are_listed() {
    let v = bank_json();
    let app = v["applications"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == "colleague-assistant")
        .unwrap();
    let unresolved: Vec<(String, String, String)> = app["unresolved"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["component"].as_str().unwrap().to_string(),
                u["cell"]["catalog"].as_str().unwrap().to_string(),
                u["cell"]["area"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    // CoSAI leaves the foundation model to the model's licence under AI-PaaS (§3 figure);
    // Microsoft leaves model accountability, tuning, design and training data under PaaS to
    // the model (diagram). gpt-4o is consumed as PaaS and the bank gives no `owners`.
    for (catalog, area) in [
        ("cosai-srf-1.0", "foundation-models"),
        ("microsoft-ai-srm", "model-tuning"),
        ("microsoft-ai-srm", "model-training-data"),
    ] {
        assert!(
            unresolved.contains(&("gpt-4o".into(), catalog.into(), area.into())),
            "{catalog} {area}: {unresolved:?}"
        );
    }
}

#[test]
fn an_owners_entry_resolves_a_model_dependent_cell_and_it_is_compared() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(bank()).unwrap().replace(
        "      - id: gpt-4o\n        kind: model\n",
        "      - id: gpt-4o\n        owners: {microsoft-ai-srm: {model-tuning: customer}}\n        kind: model\n",
    );
    assert!(
        text.contains("owners: {microsoft-ai-srm"),
        "the bank example changed shape"
    );
    let estate = dir.path().join("bank.yaml");
    std::fs::write(&estate, text).unwrap();
    let out = demarc()
        .arg("compare")
        .arg(&estate)
        .args(FOUR)
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let app = v["applications"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == "colleague-assistant")
        .unwrap();
    assert!(
        !app["unresolved"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["cell"]["area"] == "model-tuning")
    );
    // CSA: training and tuning are the provider's under PaaS; the bank's contract makes the
    // tuning its own: an accountable disagreement, the owner marked as from the estate.
    let d = app["disagreements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["a"]["area"] == "model-training-tuning" && d["b"]["area"] == "model-tuning")
        .unwrap();
    assert_eq!(d["kind"], "accountable");
    assert_eq!(d["relation"], "superset");
    assert_eq!(d["b"]["owner"], "customer");
    assert_eq!(d["b"]["owner_from_estate"], true);
}

#[test]
fn compare_writes_every_format() {
    for (format, needle) in [
        ("table", "disagreements"),
        ("markdown", "# Where the catalogs disagree"),
        ("csv", "application,kind,relation,a_component,a_catalog"),
        ("html", "Content-Security-Policy"),
    ] {
        let out = demarc()
            .arg("compare")
            .arg(bank())
            .args(FOUR)
            .args(["--format", format])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{format}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.contains(needle), "{format}: {text}");
        assert!(text.contains("guardrails-safety-systems"), "{format}");
    }
}

#[test]
fn compare_needs_two_catalogs() {
    let out = demarc()
        .arg("compare")
        .arg(bank())
        .args(["--catalog", "csa-genai-2023"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least two catalogs"));
}
