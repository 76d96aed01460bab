//! `demarc validate` checks what the other commands will meet: guard policies (compiled by the
//! gateway's own code), grounding folders, offerings against service models; warnings pass
//! unless `--strict`; and `validate` and `demarc gateway` agree on the same estates.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command as StdCommand, Stdio};
use std::time::{Duration, Instant};

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
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&path, content).unwrap();
    path
}

/// One sanctioned application with `extra` lines appended to it.
fn estate(extra: &str) -> String {
    format!(
        r#"format: 1
organisation: {{name: Test}}
teams:
  - {{id: platform, name: AI platform, contact: platform@example.com}}
providers:
  - id: azure
    name: Microsoft Azure
    offerings:
      - {{id: aoai, name: Azure OpenAI, service_model: paas}}
      - {{id: copilot, name: Copilot, service_model: saas}}
applications:
  - id: chat
    name: Chat
    owner: platform
    data_classification: internal
    status: sanctioned
    components:
      - {{id: llm, kind: model, service_model: paas, provider: azure, offering: aoai}}
    duties: {{default: platform}}
{extra}"#
    )
}

fn stderr_of(cmd: &mut Command) -> (Option<i32>, String, String) {
    let out = cmd.output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn validate_checks_policies_grounding_and_offerings_with_locations() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "docs/handbook.md", "# Handbook\n\nText.\n");
    let text = format!(
        "{}{}",
        estate("    guard_policy: strct\n"),
        r#"  - id: helper
    name: Helper
    owner: platform
    data_classification: internal
    status: sanctioned
    components:
      - {id: llm, kind: model, service_model: iaas, provider: azure, offering: copilot}
    guard_policy:
      input:
        secretz: redact
    grounding_sources:
      - {id: docs, path: docs}
      - {id: wiki, path: no-such-folder}
      - {id: file, path: docs/handbook.md}
  - id: tuned
    name: Tuned
    owner: platform
    data_classification: internal
    status: sanctioned
    components:
      - {id: llm, kind: model, service_model: paas, provider: azure}
    guard_policy:
      injection: {threshold: 1.5}
  - id: filed
    name: Filed
    owner: platform
    data_classification: internal
    status: sanctioned
    components:
      - {id: llm, kind: model, service_model: paas, provider: azure}
    guard_policy: policies/missing.yaml
"#
    );
    let path = write(dir.path(), "estate.yaml", &text);
    let (code, _, err) = stderr_of(demarc().arg("validate").arg(&path));
    assert_eq!(code, Some(1), "{err}");
    for needle in [
        "estate.yaml:20:19: error: application `chat`: unknown builtin guard policy `strct`",
        "did you mean `strict`?",
        "estate.yaml:27:47: error: component `llm` of application `helper` is consumed as `iaas`, but offering `copilot` of provider `azure` is `saas`",
        "set `service_model: saas`",
        "estate.yaml:30:9: error: application `helper`: guard policy: unknown variant `secretz`",
        "did you mean `secrets`?",
        "estate.yaml:33:26: error: application `helper`: grounding source `wiki`: folder",
        "no-such-folder` does not exist",
        "estate.yaml:34:26: error: application `helper`: grounding source `file`",
        "is not a folder",
        "estate.yaml:43:30: error: application `tuned`: guard policy field `injection.threshold`",
        "estate.yaml:51:19: error: application `filed`: guard policy file `policies/missing.yaml` does not exist",
        "a relative path is read from the estate file's folder",
        "could not be used: 7 errors",
    ] {
        assert!(err.contains(needle), "missing `{needle}` in:\n{err}");
    }
    // The good grounding source is not reported.
    assert!(!err.contains("source `docs`"), "{err}");
    let v: Value = serde_json::from_str(
        &stderr_of(demarc().args(["validate", "--format", "json"]).arg(&path)).1,
    )
    .unwrap();
    assert_eq!(v["valid"], false);
    assert_eq!(v["errors"], 7);
    assert_eq!(v["problems"][0]["path"], "applications[0].guard_policy");
    assert_eq!(v["problems"][0]["line"], 20);
}

#[test]
fn policy_files_are_read_relative_to_the_estate_file() {
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "site/policies/chat.yaml",
        "name: chat\ninput:\n  pii: redact\n",
    );
    write(
        dir.path(),
        "site/policies/bad.yaml",
        "name: bad\ninput:\n  pii: redact\ninjecton:\n  threshold: 0.5\n",
    );
    let good = write(
        dir.path(),
        "site/estate.yaml",
        &estate("    guard_policy: policies/chat.yaml\n"),
    );
    // Run from another folder: the path is the estate's, not the working directory's.
    let (code, out, err) = stderr_of(
        demarc()
            .current_dir(elsewhere.path())
            .arg("validate")
            .arg(&good),
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("ok (1 application checked"), "{out}");
    let bad = write(
        dir.path(),
        "site/bad.yaml",
        &estate("    guard_policy: policies/bad.yaml\n"),
    );
    let (code, _, err) = stderr_of(
        demarc()
            .current_dir(elsewhere.path())
            .arg("validate")
            .arg(&bad),
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("policies/bad.yaml:4:1: unknown field `injecton`"),
        "{err}"
    );
}

#[test]
fn warnings_pass_unless_strict() {
    let dir = tempfile::tempdir().unwrap();
    // Model lineage on a component that is not a model is a warning.
    let text = estate("").replace(
        "      - {id: llm, kind: model, service_model: paas, provider: azure, offering: aoai}\n",
        "      - {id: llm, kind: model, service_model: paas, provider: azure, offering: aoai}\n      - id: ui\n        kind: application\n        service_model: paas\n        provider: azure\n        model: {base_model: gpt-4o}\n",
    );
    let path = write(dir.path(), "estate.yaml", &text);
    let (code, out, err) = stderr_of(demarc().arg("validate").arg(&path));
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains("warning: model lineage on a component that is not a model"),
        "{err}"
    );
    assert!(
        out.contains("ok with 1 warning (1 application checked"),
        "{out}"
    );
    let (code, out, err) = stderr_of(demarc().args(["validate", "--strict"]).arg(&path));
    assert_eq!(code, Some(1), "{err}");
    assert!(out.is_empty(), "{out}");
    assert!(
        err.contains("1 warning (`--strict` fails on warnings)"),
        "{err}"
    );
    let json = |strict: bool| -> Value {
        let mut cmd = demarc();
        cmd.args(["validate", "--format", "json"]).arg(&path);
        if strict {
            cmd.arg("--strict");
        }
        serde_json::from_str(&stderr_of(&mut cmd).1).unwrap()
    };
    let lenient = json(false);
    assert_eq!(
        (lenient["valid"].clone(), lenient["warnings"].clone()),
        (Value::Bool(true), 1.into())
    );
    assert_eq!(json(true)["valid"], false);
}

/// Kills the child on drop.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Start the quick-start gateway on the estate: `Ok(())` once it listens, `Err(stderr)` when
/// it exits instead.
fn gateway_accepts(estate: &Path, db: &str) -> Result<(), String> {
    let mut child = StdCommand::new(assert_cmd::cargo::cargo_bin("demarc"))
        .args(["gateway", "--estate"])
        .arg(estate)
        .args([
            "--upstream",
            "http://127.0.0.1:9/v1",
            "--listen",
            "127.0.0.1:0",
        ])
        .args(["--db", db, "--workers", "1"])
        .env("NO_COLOR", "1")
        .env_remove("DEMARC_CATALOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut server = Server(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = String::new();
    while Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(line) if line.contains("listening on") => return Ok(()),
            Ok(line) => {
                seen.push_str(&line);
                seen.push('\n');
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                if let Ok(Some(_)) = server.0.try_wait() {
                    // Drain what is left.
                    while let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
                        seen.push_str(&line);
                        seen.push('\n');
                    }
                    return Err(seen);
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                let _ = server.0.wait();
                return Err(seen);
            }
        }
    }
    panic!("the gateway neither listened nor exited within 60 s:\n{seen}");
}

#[test]
fn validate_and_the_gateway_agree_on_the_same_estates() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("store.db").display());
    write(dir.path(), "docs/a.md", "# A\n\nApproved text.\n");
    write(
        dir.path(),
        "policies/chat.yaml",
        "name: chat\ninput:\n  pii: redact\n",
    );
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "builtin",
            estate("    guard_policy: strct\n"),
            "unknown builtin guard policy `strct`",
        ),
        (
            "field",
            estate("    guard_policy:\n      input: {secretz: redact}\n"),
            "unknown variant `secretz`",
        ),
        (
            "value",
            estate("    guard_policy:\n      injection: {threshold: 1.5}\n"),
            "`injection.threshold`",
        ),
        (
            "file",
            estate("    guard_policy: policies/nope.yaml\n"),
            "guard policy file `policies/nope.yaml` does not exist",
        ),
        (
            "grounding",
            estate("    grounding_sources:\n      - {id: docs, path: missing-docs}\n"),
            "missing-docs` does not exist",
        ),
        (
            "offering",
            estate("").replace(
                "service_model: paas, provider: azure, offering: aoai",
                "service_model: saas, provider: azure, offering: aoai",
            ),
            "is consumed as `saas`, but offering `aoai` of provider `azure` is `paas`",
        ),
    ];
    for (name, text, needle) in cases {
        let path = write(dir.path(), &format!("{name}.yaml"), &text);
        let (code, _, err) = stderr_of(demarc().arg("validate").arg(&path));
        assert_eq!(code, Some(1), "validate passed `{name}`:\n{err}");
        assert!(
            err.contains(needle),
            "validate on `{name}`: missing `{needle}` in:\n{err}"
        );
        let refused = gateway_accepts(&path, &db).expect_err(&format!("gateway accepted `{name}`"));
        assert!(
            refused.contains(needle),
            "gateway on `{name}`: missing `{needle}` in:\n{refused}"
        );
    }
    // Fixed, with a policy file and a grounding folder next to the estate: both accept it.
    let good = write(
        dir.path(),
        "good.yaml",
        &estate(
            "    guard_policy: policies/chat.yaml\n    grounding_sources:\n      - {id: docs, path: docs}\n",
        ),
    );
    let (code, _, err) = stderr_of(demarc().arg("validate").arg(&good));
    assert_eq!(code, Some(0), "{err}");
    gateway_accepts(&good, &db).unwrap();
}
