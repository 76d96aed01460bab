//! The foundation commands, driven through the real binary.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;

const ESTATE: &str = r#"format: 1
organisation: {name: Test Bank}
teams:
  - {id: platform, name: AI platform, contact: platform@example.com}
  - {id: appsec, name: Application security, contact: appsec@example.com}
providers:
  - id: azure
    name: Microsoft Azure
    offerings: [{id: aoai, name: Azure OpenAI, service_model: paas}]
  - {id: aws, name: Amazon Web Services}
  - {id: microsoft, name: Microsoft}
applications:
  - id: assistant
    name: Internal assistant
    owner: platform
    data_classification: internal
    status: sanctioned
    endpoints: [assistant.example.com]
    components:
      - {id: llm, kind: model, service_model: paas, provider: azure, offering: aoai}
      - {id: index, kind: data-source, service_model: iaas, provider: aws}
    duties:
      default: platform
      areas: {application-security: appsec}
    controls:
      prompt-filtering: {status: implemented, statement: gateway filters every prompt}
      application-security: {status: partial}
      grounding: {status: implemented}
    evidence:
      - {area: prompt-filtering, description: gateway config review, link: "https://wiki.example.com/pf", reviewer: alice, reviewed: 2026-01-10, expires: 2027-01-10}
      - {area: grounding, description: index review, link: "https://wiki.example.com/g", reviewer: bob, reviewed: 2025-01-10, expires: 2025-12-31}
  - id: copilot
    name: Office copilot
    owner: platform
    data_classification: confidential
    status: tolerated
    components:
      - {id: suite, kind: application, service_model: saas, provider: microsoft}
"#;

fn demarc() -> Command {
    let mut cmd = Command::cargo_bin("demarc").unwrap();
    cmd.env("NO_COLOR", "1")
        .env_remove("DEMARC_CATALOG")
        .env_remove("DEMARC_DB");
    cmd
}

fn write(dir: &Path, name: &str, content: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path
}

fn json(cmd: &mut Command) -> Value {
    let out = cmd.output().unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[test]
fn matrix_json_has_the_documented_shape() {
    let v = json(demarc().args(["matrix", "--format", "json"]));
    assert_eq!(v["catalog"]["id"], "csa-genai-2023");
    assert!(v["catalog"]["version"].is_string());
    assert_eq!(v["service_models"][0]["id"], "iaas");
    let grounding = v["areas"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == "grounding")
        .unwrap();
    assert_eq!(grounding["layer"], "context");
    assert_eq!(grounding["cells"]["iaas"]["owner"], "customer");
    assert_eq!(grounding["cells"]["iaas"]["lead"], Value::Null);
    assert_eq!(grounding["cells"]["paas"]["owner"], "shared");
    assert_eq!(grounding["cells"]["paas"]["lead"], "customer");
    assert!(
        grounding["cells"]["saas"]["source"]
            .as_str()
            .unwrap()
            .contains("SaaS")
    );
}

#[test]
fn matrix_in_every_format() {
    demarc()
        .arg("matrix")
        .assert()
        .success()
        .stdout(predicate::str::contains("shared (customer leads)"))
        .stdout(predicate::str::contains("\x1b[").not());
    demarc()
        .args(["matrix", "--format", "markdown"])
        .assert()
        .success()
        .stdout(predicate::str::contains("| --- |"));
    demarc()
        .args(["matrix", "--format", "csv"])
        .assert()
        .success()
        .stdout(predicate::str::starts_with(
            "area,title,layer,service_model,owner,lead,note,source,basis\n",
        ));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("matrix.html");
    demarc()
        .args(["matrix", "--format", "html", "--out"])
        .arg(&out)
        .assert()
        .success();
    let html = std::fs::read_to_string(&out).unwrap();
    assert!(html.starts_with("<!doctype html>") && html.contains("Infrastructure security"));
}

#[test]
fn catalogs_lists_the_seed() {
    let v = json(demarc().args(["catalogs", "--format", "json"]));
    assert_eq!(v[0]["id"], "csa-genai-2023");
    assert_eq!(v[0]["default"], true);
    assert_eq!(v[0]["areas"], 12);
}

#[test]
fn validate_accepts_a_good_estate() {
    let dir = tempfile::tempdir().unwrap();
    let owned = format!("{ESTATE}    duties: {{default: platform}}\n");
    let estate = write(dir.path(), "estate.yaml", owned.as_bytes());
    demarc()
        .arg("validate")
        .arg(&estate)
        .assert()
        .success()
        .stdout(predicate::str::contains("ok (2 applications"));
}

#[test]
fn validate_reports_every_problem_with_location_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let bad = ESTATE
        .replace(
            "service_model: paas, provider: azure",
            "service_model: pass, provider: azur",
        )
        .replace(
            "areas: {application-security: appsec}",
            "areas: {application-security: appsek}",
        );
    let estate = write(dir.path(), "estate.yaml", bad.as_bytes());
    let out = demarc().arg("validate").arg(&estate).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    for needle in [
        "estate.yaml:20:47: error: unknown service model `pass`",
        "did you mean `paas`?",
        "unknown provider `azur`",
        "did you mean `azure`?",
        "unknown team `appsek`",
        "did you mean `appsec`?",
        "could not be used: 3 errors",
    ] {
        assert!(err.contains(needle), "missing `{needle}` in:\n{err}");
    }
    // The same problems as JSON on stdout.
    let v = json(demarc().args(["validate", "--format", "json"]).arg(&estate));
    assert_eq!(v["valid"], false);
    assert_eq!(v["errors"], 3);
    assert_eq!(v["problems"][0]["line"], 20);
}

#[test]
fn validate_passes_duties_without_a_team_to_the_application_owner() {
    let dir = tempfile::tempdir().unwrap();
    // `copilot` has no duties block: its owner team owns its customer duties, nothing to warn.
    let estate = write(dir.path(), "estate.yaml", ESTATE.as_bytes());
    demarc()
        .arg("validate")
        .arg(&estate)
        .assert()
        .success()
        .stdout(predicate::str::contains("ok (2 applications checked"))
        .stderr(predicate::str::contains("no owning team").not());
}

#[test]
fn bad_input_is_an_input_error_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty.yaml", b"".to_vec(), "file is empty"),
        (
            "binary.yaml",
            vec![0x7f, b'E', b'L', b'F', 0, 1, 2, 0xff],
            "not a text file",
        ),
        (
            "malformed.yaml",
            b"format: 1\norganisation: {name: x\nteams: [\n".to_vec(),
            "malformed.yaml:",
        ),
        (
            "wrongtype.yaml",
            b"format: one\norganisation: {name: x}\n".to_vec(),
            "wrongtype.yaml:1:9: error: format: invalid type",
        ),
        (
            "unknown.yaml",
            b"format: 1\norganisation: {name: x}\nteamz: []\n".to_vec(),
            "did you mean `teams`?",
        ),
        (
            "list.json",
            b"[1, 2, 3]".to_vec(),
            "list.json:1:5: error: invalid type",
        ),
    ];
    for (name, content, needle) in cases {
        let path = write(dir.path(), name, &content);
        for command in ["validate", "assess"] {
            demarc()
                .arg(command)
                .arg(&path)
                .assert()
                .code(2)
                .stderr(predicate::str::contains(needle));
        }
    }
    demarc()
        .args(["assess", "/no/such/estate.yaml"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("cannot read"));
    demarc()
        .arg("assess")
        .arg(dir.path())
        .assert()
        .code(2)
        .stderr(predicate::str::contains("is a directory"));
    // A file over the size limit is refused before it is read.
    let big = dir.path().join("big.yaml");
    let f = std::fs::File::create(&big).unwrap();
    f.set_len(100 * 1024 * 1024).unwrap();
    demarc()
        .arg("assess")
        .arg(&big)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("the limit is"));
    demarc()
        .args(["assess", "--format", "pdf", "x"])
        .assert()
        .code(2);
}

#[test]
fn assess_json_lists_duties_and_summary() {
    let dir = tempfile::tempdir().unwrap();
    let estate = write(dir.path(), "estate.yaml", ESTATE.as_bytes());
    let v = json(
        demarc()
            .args(["assess", "--format", "json", "--today", "2026-06-01"])
            .arg(&estate),
    );
    assert_eq!(v["catalog"]["id"], "csa-genai-2023");
    assert_eq!(v["date"], "2026-06-01");
    let apps = v["applications"].as_array().unwrap();
    let assistant = &apps[0];
    let duty = |app: &Value, area: &str| {
        app["duties"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["area"] == area)
            .cloned()
    };

    // prompt-filtering: PaaS shared, customer leads; control implemented, evidence current.
    let pf = duty(assistant, "prompt-filtering").unwrap();
    assert_eq!(
        pf["accountable"],
        serde_json::json!({"kind": "team", "id": "platform"})
    );
    assert_eq!(
        pf["also_responsible"][0],
        serde_json::json!({"kind": "provider", "id": "azure"})
    );
    assert_eq!(pf["control"], "implemented");
    assert_eq!(pf["evidence"], "current");
    assert_eq!(pf["covered"], true);
    // grounding resolves from the data-source component (IaaS): customer-only.
    let g = duty(assistant, "grounding").unwrap();
    assert_eq!(g["component"], "index");
    assert_eq!(g["owner"], "customer");
    assert_eq!(g["evidence"], "expired");
    assert_eq!(g["gaps"], serde_json::json!(["evidence-expired"]));
    // application-security is assigned to appsec; partial control, no evidence.
    let appsec = duty(assistant, "application-security").unwrap();
    assert_eq!(appsec["owner_team"], "appsec");
    assert_eq!(
        appsec["gaps"],
        serde_json::json!(["control-partial", "evidence-missing"])
    );
    // model-hosting is the provider's under PaaS: inherited, not a duty.
    assert!(duty(assistant, "model-hosting").is_none());
    assert!(
        assistant["inherited"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["area"] == "model-hosting" && i["provider"] == "azure")
    );

    // The SaaS copilot: 4 customer duties; no team assigned, so its owner team owns them.
    let copilot = &apps[1];
    assert_eq!(copilot["coverage"]["total"], 4);
    let pf = duty(copilot, "prompt-filtering").unwrap();
    assert_eq!(
        pf["accountable"],
        serde_json::json!({"kind": "team", "id": "platform"})
    );
    assert_eq!(pf["owner_team_source"], "application-owner");
    assert!(
        pf["accountable_reason"]
            .as_str()
            .unwrap()
            .contains("the application's owner"),
        "{pf}"
    );
    // The proof travels with the verdict: the control statement and the judged evidence.
    let pf = duty(assistant, "prompt-filtering").unwrap();
    assert_eq!(pf["control_statement"], "gateway filters every prompt");
    assert_eq!(pf["declared_evidence"][0]["reviewer"], "alice");
    assert_eq!(pf["declared_evidence"][0]["status"], "current");

    let s = &v["summary"];
    assert_eq!(s["applications"], 2);
    // A tolerated application is not counted as unsanctioned.
    assert_eq!(s["unsanctioned_applications"], 0);
    assert_eq!(s["applications_by_status"]["tolerated"], 1);
    assert_eq!(s["coverage"]["covered"], 1);
    assert_eq!(s["unowned"], 0);
    assert_eq!(s["evidence_expired"], 1);
    assert_eq!(s["gaps"], s["duties"].as_u64().unwrap() - 1);
}

#[test]
fn assess_fail_on_checks_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let estate = write(dir.path(), "estate.yaml", ESTATE.as_bytes());
    demarc()
        .arg("assess")
        .arg(&estate)
        .assert()
        .success()
        .stdout(predicate::str::contains("summary: 2 applications"));
    for check in ["gaps", "expired"] {
        demarc()
            .args(["assess", "--today", "2026-06-01", "--fail-on", check])
            .arg(&estate)
            .assert()
            .code(1)
            .stderr(predicate::str::contains("check failed"));
    }
    // Before the grounding evidence expired, `expired` passes.
    demarc()
        .args(["assess", "--today", "2025-06-01", "--fail-on", "expired"])
        .arg(&estate)
        .assert()
        .success();
}

#[test]
fn assess_writes_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let estate = write(dir.path(), "estate.yaml", ESTATE.as_bytes());
    for (format, needle) in [
        ("markdown", "# GenAI responsibility assessment: Test Bank"),
        ("csv", "application,area,owner,accountable"),
        ("html", "<!doctype html>"),
        ("table", "Internal assistant (assistant)"),
    ] {
        let out = dir.path().join(format!("report.{format}"));
        demarc()
            .args(["assess", "--format", format, "--out"])
            .arg(&out)
            .arg(&estate)
            .assert()
            .success();
        let text = std::fs::read_to_string(&out).unwrap();
        assert!(text.contains(needle), "{format}: {text}");
        if format == "html" {
            // The dashboard's heat map comes first: a row per application, a cell per area,
            // each linking to the application's card in the same file.
            let heat = &text[text.find("<table class=\"heat\">").expect("a heat map")..];
            let heat = &heat[..heat.find("</table>").unwrap()];
            assert_eq!(heat.matches("<th scope=\"row\">").count(), 2, "{heat}");
            assert_eq!(heat.matches("<td class=\"h-").count(), 2 * 12, "{heat}");
            assert!(heat.contains("href=\"#app-assistant\""));
            assert!(text.contains("id=\"app-assistant\""));
            assert!(text.find("class=\"heat\"") < text.find("class=\"matrix"));
        }
    }
}

#[test]
fn explain_gives_component_cell_and_citation() {
    let dir = tempfile::tempdir().unwrap();
    let estate = write(dir.path(), "estate.yaml", ESTATE.as_bytes());
    demarc()
        .arg("explain")
        .arg(&estate)
        .args(["assistant", "grounding"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "supplied by: `index` (data-source, iaas)",
        ))
        .stdout(predicate::str::contains(
            "source: IaaS responsibilities, s8",
        ))
        .stdout(predicate::str::contains(
            "accountable: team:platform — the cell under `iaas` gives the area to the customer, so team `platform` is accountable: the application's `duties.default`",
        ));
    let v = json(
        demarc()
            .arg("explain")
            .arg(&estate)
            .args(["assistant", "--format", "json"]),
    );
    assert_eq!(v.as_array().unwrap().len(), 12);
    demarc()
        .arg("explain")
        .arg(&estate)
        .arg("asistant")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("did you mean `assistant`?"));
    demarc()
        .arg("explain")
        .arg(&estate)
        .args(["assistant", "grounding-x"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("did you mean `grounding`?"));
}

#[test]
fn what_if_shows_duties_moving() {
    let dir = tempfile::tempdir().unwrap();
    let estate = write(dir.path(), "estate.yaml", ESTATE.as_bytes());
    let v = json(demarc().arg("what-if").arg(&estate).args([
        "assistant",
        "--service-model",
        "iaas",
        "--provider",
        "aws",
        "--format",
        "json",
    ]));
    let hosting = v["areas"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["area"] == "model-hosting")
        .unwrap();
    assert_eq!(hosting["moved"], true);
    assert_eq!(
        hosting["before"]["accountable"],
        serde_json::json!({"kind": "provider", "id": "azure"})
    );
    assert_eq!(
        hosting["after"]["accountable"],
        serde_json::json!({"kind": "team", "id": "platform"})
    );
    demarc()
        .arg("what-if")
        .arg(&estate)
        .args(["copilot", "--service-model", "paas"])
        .assert()
        .success()
        .stdout(predicate::str::contains("areas would move"));
    demarc()
        .arg("what-if")
        .arg(&estate)
        .args(["assistant", "--service-model", "pass"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("did you mean `paas`?"));
}

#[test]
fn init_writes_a_starter_that_validates_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("new");
    demarc().arg("init").arg(&target).assert().success();
    demarc()
        .arg("validate")
        .arg(target.join("estate.yaml"))
        .assert()
        .success();
    demarc()
        .arg("init")
        .arg(&target)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--force"));
    demarc()
        .arg("init")
        .arg(&target)
        .arg("--force")
        .assert()
        .success();
}

#[test]
fn a_catalog_file_can_replace_the_seed() {
    let dir = tempfile::tempdir().unwrap();
    let v = json(demarc().args(["matrix", "--format", "json"]));
    // Round-trip the seed through a file, with one cell changed.
    let mut catalog: Value = v.clone();
    let text = include_str!("../../../demarc-model/catalogs/csa-genai-2023.yaml")
        .replace("id: csa-genai-2023", "id: my-model");
    let path = write(dir.path(), "my.yaml", text.as_bytes());
    let mine = json(
        demarc()
            .args(["matrix", "--format", "json", "--catalog"])
            .arg(&path),
    );
    assert_eq!(mine["catalog"]["id"], "my-model");
    catalog["catalog"]["id"] = "my-model".into();
    assert_eq!(mine["areas"], catalog["areas"]);
    demarc()
        .args(["matrix", "--catalog", "csa-genai-2032"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("did you mean `csa-genai-2023`?"));
}

#[test]
fn schemas_in_the_repo_match_the_types() {
    for which in ["catalog", "estate"] {
        let out = demarc().args(["schema", which]).output().unwrap();
        assert!(out.status.success());
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(format!("../../schemas/{which}.schema.json"));
        if std::env::var_os("DEMARC_UPDATE_SCHEMAS").is_some() {
            std::fs::write(&path, &out.stdout).unwrap();
        }
        let committed = std::fs::read(&path).unwrap_or_default();
        assert!(
            committed == out.stdout,
            "schemas/{which}.schema.json is out of date; run `DEMARC_UPDATE_SCHEMAS=1 cargo test -p demarc-cli schemas`"
        );
    }
}

#[test]
fn assess_records_history_and_counts_observed_evidence() {
    let dir = tempfile::tempdir().unwrap();
    let estate = write(dir.path(), "estate.yaml", ESTATE.as_bytes());
    let db = format!("sqlite://{}", dir.path().join("demarc.db").display());
    let covered = |v: &Value| v["summary"]["coverage"]["covered"].as_u64().unwrap();

    let before = json(
        demarc()
            .args(["assess", "--format", "json", "--record", "--db", &db])
            .arg(&estate),
    );
    // Automatic evidence, as the gateway writes it: copilot's application security observed.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = demarc_store::Store::open(&db).await.unwrap();
        let now = demarc_store::time::OffsetDateTime::now_utc();
        for (area, kind) in [
            ("prompt-filtering", "gateway-input-scan"),
            ("application-security", "gateway-access-control"),
        ] {
            store
                .put_evidence(&demarc_store::Evidence {
                    application: "assistant".into(),
                    area: area.into(),
                    kind: kind.into(),
                    source: "gateway".into(),
                    observed_at: now,
                    summary: "enforced by the gateway: 120 requests scanned, 3 blocked".into(),
                    expires_at: Some(now + demarc_store::time::Duration::days(30)),
                })
                .await
                .unwrap();
        }
        store.close().await;
    });
    let after = json(
        demarc()
            .args(["assess", "--format", "json", "--record", "--db", &db])
            .arg(&estate),
    );
    let appsec = after["applications"][0]["duties"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["area"] == "application-security")
        .unwrap()
        .clone();
    // Observation is listed beside the missing review and never fills it: the duty keeps
    // both gaps, and shows what the gateway saw.
    assert_eq!(appsec["evidence"], "missing");
    assert_eq!(
        appsec["gaps"],
        serde_json::json!(["control-partial", "evidence-missing"])
    );
    assert!(
        appsec["observed"][0]
            .as_str()
            .unwrap()
            .contains("120 requests scanned")
    );
    assert_eq!(
        appsec["observed_evidence"][0]["kind"],
        "gateway-access-control"
    );
    assert_eq!(appsec["observed_evidence"][0]["accepted"], false);
    assert_eq!(covered(&after), covered(&before));
    // Accepting observation alone for the area (documented in the estate) lets it count.
    let accepting = write(
        dir.path(),
        "accepting.yaml",
        ESTATE
            .replace(
                "      areas: {application-security: appsec}\n",
                "      areas: {application-security: appsec}\n    accept_observed: [application-security]\n",
            )
            .as_bytes(),
    );
    let accepted = json(
        demarc()
            .args(["assess", "--format", "json", "--db", &db])
            .arg(&accepting),
    );
    let appsec = accepted["applications"][0]["duties"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["area"] == "application-security")
        .unwrap()
        .clone();
    assert_eq!(appsec["evidence"], "expiring", "{appsec}");
    assert_eq!(appsec["gaps"], serde_json::json!(["control-partial"]));
    // --no-store ignores it.
    let ignored = json(
        demarc()
            .args(["assess", "--format", "json", "--no-store", "--db", &db])
            .arg(&estate),
    );
    assert_eq!(
        ignored["applications"][0]["duties"][2]["observed"],
        Value::Null
    );

    let history = json(demarc().args(["history", "assistant", "--format", "json", "--db", &db]));
    assert_eq!(history.as_array().unwrap().len(), 2, "{history}");
}

#[test]
fn what_if_names_the_components_and_reports_coverage_and_gaps() {
    let dir = tempfile::tempdir().unwrap();
    let estate = write(dir.path(), "estate.yaml", ESTATE.as_bytes());
    let args = [
        "assistant",
        "--component",
        "llm",
        "--service-model",
        "iaas",
        "--provider",
        "aws",
        "--today",
        "2026-06-01",
    ];
    let v = json(
        demarc()
            .arg("what-if")
            .arg(&estate)
            .args(args)
            .args(["--format", "json"]),
    );
    assert_eq!(v["components"].as_array().unwrap().len(), 1, "{v}");
    let moved = &v["components"][0];
    assert_eq!(moved["component"], "llm");
    assert_eq!(
        moved["before"],
        serde_json::json!({"service_model": "paas", "provider": "azure", "offering": "aoai"})
    );
    assert_eq!(
        moved["after"],
        serde_json::json!({"service_model": "iaas", "provider": "aws", "offering": null})
    );
    let before = &v["coverage_before"];
    let after = &v["coverage_after"];
    assert!(
        after["total"].as_u64().unwrap() > before["total"].as_u64().unwrap(),
        "moving the model to IaaS gives the bank more duties: {before} -> {after}"
    );
    let opened = v["gaps_opened"].as_array().unwrap();
    assert!(
        opened.iter().any(|g| g["area"] == "model-hosting"
            && g["component"] == "llm"
            && g["gap"] == "no-control"),
        "{opened:?}"
    );
    assert!(v["gaps_closed"].is_array());

    let out = demarc()
        .arg("what-if")
        .arg(&estate)
        .args(args)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "assistant: component `llm` (model) moves from paas (`azure`, offering `aoai`) to iaas (`aws`)",
        "of 12 areas would move",
        "coverage: ",
        " → ",
        "gaps opened: ",
        "model-hosting (`llm`): ",
        "accountable now (cell)",
        "accountable after (cell)",
    ] {
        assert!(text.contains(needle), "missing `{needle}` in:\n{text}");
    }
}

#[test]
fn what_if_refuses_a_provider_that_does_not_offer_the_service_model() {
    let dir = tempfile::tempdir().unwrap();
    let estate = write(dir.path(), "estate.yaml", ESTATE.as_bytes());
    let out = demarc()
        .arg("what-if")
        .arg(&estate)
        .args([
            "assistant",
            "--service-model",
            "saas",
            "--provider",
            "azure",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("provider `azure` offers nothing consumed as `saas`; it offers `aoai` (paas)"),
        "{err}"
    );
    // Without `--provider`, the component's own provider must offer it.
    let out = demarc()
        .arg("what-if")
        .arg(&estate)
        .args(["assistant", "--component", "llm", "--service-model", "iaas"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("give `--provider`"), "{err}");
    // A provider that declares no service models is taken at its word.
    demarc()
        .arg("what-if")
        .arg(&estate)
        .args([
            "assistant",
            "--service-model",
            "saas",
            "--provider",
            "microsoft",
        ])
        .assert()
        .success();
}

#[test]
fn warnings_about_one_application_go_to_the_commands_about_it() {
    let dir = tempfile::tempdir().unwrap();
    // Model lineage on a component that is not a model: a warning about that application.
    let lineage = "        model: {base_model: gpt-4o}\n";
    let text = ESTATE
        .replace(
            "      - {id: index, kind: data-source, service_model: iaas, provider: aws}\n",
            &format!("      - id: index\n        kind: data-source\n        service_model: iaas\n        provider: aws\n{lineage}"),
        )
        .replace(
            "      - {id: suite, kind: application, service_model: saas, provider: microsoft}\n",
            &format!("      - id: suite\n        kind: application\n        service_model: saas\n        provider: microsoft\n{lineage}"),
        );
    let estate = write(dir.path(), "estate.yaml", text.as_bytes());
    let stderr = |args: &[&str]| {
        let out = demarc().args(args).output().unwrap();
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let path = estate.display().to_string();
    let lines = |err: &str| {
        err.lines()
            .filter(|l| l.contains("warning: model lineage"))
            .count()
    };
    let assistant_line = "at `applications[0].";
    let explain = stderr(&["explain", &path, "assistant", "grounding"]);
    assert_eq!(lines(&explain), 1, "{explain}");
    assert!(explain.contains(assistant_line), "{explain}");
    let explain = stderr(&["explain", &path, "copilot"]);
    assert_eq!(lines(&explain), 1, "{explain}");
    assert!(!explain.contains(assistant_line), "{explain}");
    let what_if = stderr(&["what-if", &path, "copilot", "--service-model", "paas"]);
    assert_eq!(lines(&what_if), 1, "{what_if}");
    // The commands about the whole estate print them all.
    assert_eq!(lines(&stderr(&["validate", &path])), 2);
    assert_eq!(lines(&stderr(&["assess", "--no-store", &path])), 2);
}

#[test]
fn counts_are_in_the_right_number() {
    let dir = tempfile::tempdir().unwrap();
    let one = ESTATE.split("  - id: copilot").next().unwrap().to_string();
    let estate = write(dir.path(), "estate.yaml", one.as_bytes());
    demarc()
        .arg("validate")
        .arg(&estate)
        .assert()
        .success()
        .stdout(predicate::str::contains("ok (1 application checked"));
    let out = demarc()
        .arg("what-if")
        .arg(&estate)
        .args([
            "assistant",
            "--component",
            "index",
            "--service-model",
            "paas",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !text.contains(" 1 duties") && !text.contains(" 1 areas"),
        "{text}"
    );
    assert!(text.contains("duty") || text.contains("duties"), "{text}");
}
