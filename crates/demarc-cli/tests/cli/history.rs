//! `demarc history` keeps the date each run assessed for and shows what changed per duty
//! between two runs (`--diff FROM TO`), on a real SQLite file and a real PostgreSQL database.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;
use sqlx::Connection;

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

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn pg_admin() -> String {
    std::env::var("DEMARC_TEST_PG")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A PostgreSQL database of this test's own, dropped at the end.
struct PgDb {
    url: String,
    name: String,
}

impl PgDb {
    fn create() -> PgDb {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let name = format!("demarc_test_history_{}_{nanos}", std::process::id());
        runtime().block_on(async {
            let mut c = sqlx::PgConnection::connect(&pg_admin())
                .await
                .expect("PostgreSQL for the store tests");
            sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
                .execute(&mut c)
                .await
                .unwrap();
        });
        let admin = pg_admin();
        let base = &admin[..admin.rfind('/').unwrap()];
        PgDb {
            url: format!("{base}/{name}"),
            name,
        }
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        runtime().block_on(async {
            if let Ok(mut c) = sqlx::PgConnection::connect(&pg_admin()).await {
                let _ = sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut c)
                    .await;
            }
        });
    }
}

const ESTATE: &str = r#"format: 1
organisation: {name: Test Bank}
teams:
  - {id: platform, name: AI platform, contact: platform@example.com}
  - {id: appsec, name: Application security, contact: appsec@example.com}
providers:
  - {id: microsoft, name: Microsoft}
applications:
  - id: copilot
    name: Office copilot
    owner: platform
    data_classification: confidential
    status: sanctioned
    components:
      - {id: suite, kind: application, service_model: saas, provider: microsoft}
    duties: {default: platform}
    controls:
      prompt-filtering: {status: implemented}
    evidence:
      - {area: prompt-filtering, description: review, link: "https://wiki.example.com/pf", reviewer: alice, reviewed: 2026-01-10, expires: 2026-12-31}
"#;

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

fn history_keeps_dates_and_diffs_runs(db: &str) {
    let dir = tempfile::tempdir().unwrap();
    let estate = write(dir.path(), "estate.yaml", ESTATE);
    let record = |today: &str| {
        let out = demarc()
            .args([
                "assess", "--record", "--format", "json", "--db", db, "--today", today,
            ])
            .arg(&estate)
            .output()
            .unwrap();
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        err.split("recorded assessment run ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("no run id in: {err}"))
            .to_string()
    };
    let first = record("2026-06-01");
    // Later: the evidence has expired, and application security moved to appsec.
    std::fs::write(
        &estate,
        ESTATE.replace(
            "duties: {default: platform}",
            "duties: {default: platform, areas: {application-security: appsec}}",
        ),
    )
    .unwrap();
    let second = record("2027-02-01");

    let points = json(demarc().args(["history", "--format", "json", "--db", db]));
    assert_eq!(points[0]["assessed_on"], "2026-06-01", "{points}");
    assert_eq!(points[1]["assessed_on"], "2027-02-01", "{points}");
    let table = demarc().args(["history", "--db", db]).output().unwrap();
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.contains("ASSESSED"), "{table}");
    assert!(table.contains("2027-02-01"), "{table}");

    let diff = json(demarc().args([
        "history", "--diff", &first, &second, "--format", "json", "--db", db,
    ]));
    let changes = diff["changes"].as_array().unwrap();
    let find = |area: &str| {
        changes
            .iter()
            .find(|c| c["area"] == area)
            .unwrap_or_else(|| panic!("no change for `{area}` in {diff}"))
    };
    let pf = find("prompt-filtering");
    assert_eq!(pf["change"], "changed");
    assert_eq!(pf["component"], "suite");
    assert!(
        pf["fields"]
            .as_array()
            .unwrap()
            .contains(&"evidence".into()),
        "{pf}"
    );
    assert_eq!(pf["before"]["evidence_status"], "current");
    assert_eq!(pf["after"]["evidence_status"], "expired");
    let appsec = find("application-security");
    assert_eq!(
        appsec["fields"],
        serde_json::json!(["accountable", "owner"])
    );
    assert_eq!(appsec["after"]["owner_team"], "appsec");
    assert_eq!(diff["from"]["assessed_on"], "2026-06-01");
    assert_eq!(diff["to"]["assessed_on"], "2027-02-01");
    assert_ne!(diff["from"]["estate_sha256"], diff["to"]["estate_sha256"]);

    let out = demarc()
        .args(["history", "--diff", &first, &second, "--db", db])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "assessed for 2026-06-01",
        "assessed for 2027-02-01",
        "the estate file changed between the two runs",
        "2 duties changed, 0 added, 0 removed",
        "evidence current",
        "evidence expired",
        "owner appsec",
    ] {
        assert!(text.contains(needle), "missing `{needle}` in:\n{text}");
    }
    // An unknown run is an input error naming it.
    let out = demarc()
        .args(["history", "--diff", &first, "999999", "--db", db])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no recorded run 999999"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn history_keeps_dates_and_diffs_runs_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    history_keeps_dates_and_diffs_runs(&format!(
        "sqlite://{}",
        dir.path().join("store.db").display()
    ));
}

#[test]
fn history_keeps_dates_and_diffs_runs_postgres() {
    let db = PgDb::create();
    history_keeps_dates_and_diffs_runs(&db.url);
}
