//! `demarc db`, `demarc history` and `demarc audit` against real SQLite files and
//! a real PostgreSQL server, including crashes and concurrent writers.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command as StdCommand, Stdio};

use assert_cmd::Command;
use predicates::prelude::*;
use sqlx::Connection;

fn demarc() -> Command {
    let mut cmd = Command::cargo_bin("demarc").unwrap();
    cmd.env_remove("DEMARC_DB").env("NO_COLOR", "1");
    cmd
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn sqlite_url(dir: &Path) -> String {
    format!("sqlite://{}", dir.join("store.db").display())
}

fn pg_admin() -> String {
    std::env::var("DEMARC_TEST_PG")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A PostgreSQL database of this test's own, dropped at the end.
pub(crate) struct PgDb {
    pub(crate) url: String,
    name: String,
}

impl PgDb {
    pub(crate) fn create() -> PgDb {
        let mut b = [0u8; 6];
        getrandom_bytes(&mut b);
        let name = format!(
            "demarc_test_{}",
            b.iter().map(|x| format!("{x:02x}")).collect::<String>()
        );
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

fn getrandom_bytes(buf: &mut [u8]) {
    use std::io::Read;
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(buf)
        .unwrap();
}

fn raw_sqlite(url: &str, sql: &str) {
    runtime().block_on(async {
        let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
        // Fold the change into the main file, as a closed store would be.
        sqlx::raw_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&mut c)
            .await
            .unwrap();
    });
}

fn write_events(url: &str, chain: &str, batches: u32, size: usize) {
    demarc()
        .args(["audit", "write-test-events", "--db", url, "--chain", chain])
        .args([
            "--batches",
            &batches.to_string(),
            "--size",
            &size.to_string(),
        ])
        .assert()
        .success();
}

fn verify_json(url: &str) -> (i32, serde_json::Value) {
    let out = demarc()
        .args(["audit", "verify", "--format", "json", "--db", url])
        .output()
        .unwrap();
    let json = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code().unwrap(), json)
}

#[test]
fn db_migrate_and_status_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(dir.path());
    demarc()
        .args(["db", "migrate", "--db", &url])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("sqlite store").and(predicate::str::contains(format!(
                "schema version {}",
                demarc_store::SCHEMA_VERSION
            ))),
        );
    write_events(&url, "gw", 2, 10);
    // DEMARC_DB is honoured when --db is absent.
    let out = demarc()
        .args(["db", "status", "--format", "json"])
        .env("DEMARC_DB", &url)
        .output()
        .unwrap();
    assert!(out.status.success());
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["backend"], "sqlite");
    assert_eq!(status["schema_version"], demarc_store::SCHEMA_VERSION);
    assert_eq!(status["counts"]["audit_events"], 20);
    demarc()
        .args(["db", "status", "--db", &url])
        .assert()
        .success()
        .stdout(predicate::str::contains("audit_events"));
}

#[test]
fn audit_verify_reports_the_broken_link_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(dir.path());
    write_events(&url, "gw-1", 3, 10);
    write_events(&url, "gw-2", 1, 10);
    demarc()
        .args(["audit", "verify", "--db", &url])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("gw-1").and(predicate::str::contains("ok")))
        .stderr(predicate::str::contains(
            "verified 40 events in 2 chains: intact",
        ));
    raw_sqlite(
        &url,
        "UPDATE audit_events SET payload = '{\"tampered\":true}' WHERE chain = 'gw-1' AND seq = 17",
    );
    demarc()
        .args(["audit", "verify", "--db", &url])
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "broken at seq 17: event seq 17 does not match its hash (altered)",
        ));
    let (code, json) = verify_json(&url);
    assert_eq!(code, 1);
    assert_eq!(json["intact"], false);
    assert_eq!(json["chains"][0]["broken"]["seq"], 17);
    assert_eq!(json["chains"][0]["broken"]["kind"], "altered");
    assert!(json["chains"][1]["broken"].is_null());
    demarc()
        .args(["audit", "verify", "--db", &url, "--chain", "nope"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no audit chain `nope`"));
}

#[test]
fn audit_prune_keeps_the_chain_verifiable() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(dir.path());
    write_events(&url, "gw", 2, 25);
    std::thread::sleep(std::time::Duration::from_millis(20));
    // Zero days: everything written before now goes; a checkpoint seals the chain.
    demarc()
        .args([
            "audit",
            "prune",
            "--older-than",
            "0",
            "--findings-older-than",
            "0",
            "--db",
            &url,
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "chain `gw`: removed 50 events, checkpoint at seq 50",
        ));
    write_events(&url, "gw", 1, 5);
    let (code, json) = verify_json(&url);
    assert_eq!(code, 0, "{json}");
    assert_eq!(json["chains"][0]["pruned_through"], 50);
    assert_eq!(json["chains"][0]["first_seq"], 51);
    assert_eq!(json["chains"][0]["last_seq"], 55);
    demarc()
        .args(["audit", "prune", "--db", &url])
        .assert()
        .code(2);
}

fn evidence(
    app: &str,
    kind: &str,
    at: demarc_store::time::OffsetDateTime,
) -> demarc_store::Evidence {
    demarc_store::Evidence {
        application: app.into(),
        area: "usage-governance".into(),
        kind: kind.into(),
        source: "gateway".into(),
        observed_at: at,
        summary: "observed".into(),
        expires_at: Some(at + demarc_store::time::Duration::days(45)),
    }
}

fn table_count(url: &str, table: &str) -> i64 {
    let out = demarc()
        .args(["db", "status", "--format", "json", "--db", url])
        .output()
        .unwrap();
    assert!(out.status.success());
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    json["counts"][table].as_i64().unwrap()
}

#[test]
fn audit_prune_applies_the_evidence_retention() {
    use demarc_store::time::{Duration, OffsetDateTime};
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(dir.path());
    let now = OffsetDateTime::now_utc();
    runtime().block_on(async {
        let store = demarc_store::Store::open(&url).await.unwrap();
        for days in [20, 10, 3, 0] {
            store
                .put_evidence(&evidence(
                    "chat",
                    "gateway-traffic",
                    now - Duration::days(days),
                ))
                .await
                .unwrap();
        }
        store.close().await;
    });
    assert_eq!(table_count(&url, "evidence_days"), 4);
    assert_eq!(table_count(&url, "evidence"), 1);
    // From the environment, as a scheduled job would set it.
    demarc()
        .args(["audit", "prune", "--db", &url])
        .env("DEMARC_EVIDENCE_RETENTION_DAYS", "7")
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "evidence: removed 2 daily or expired rows",
        ));
    assert_eq!(table_count(&url, "evidence_days"), 2);
    assert_eq!(
        table_count(&url, "evidence"),
        1,
        "the latest observation stays"
    );
    demarc()
        .args(["audit", "prune", "--evidence-older-than", "0", "--db", &url])
        .assert()
        .success();
    assert_eq!(
        table_count(&url, "evidence_days"),
        1,
        "today has not ended yet"
    );
}

#[test]
fn history_shows_coverage_over_time() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(dir.path());
    demarc()
        .args(["history", "--db", &url])
        .assert()
        .success()
        .stderr(predicate::str::contains("no assessments recorded yet"));
    runtime().block_on(async {
        use demarc_store::time::{Duration, OffsetDateTime};
        let store = demarc_store::Store::open(&url).await.unwrap();
        let estate = demarc_store::EstateRecord::from_content("acme", b"x");
        let duty = |area: &str, covered: bool| demarc_store::DutyResult {
            application: "chat".into(),
            area: area.into(),
            component: None,
            accountable: "platform".into(),
            owner_team: None,
            control_status: "implemented".into(),
            evidence_status: "current".into(),
            covered,
        };
        let t0 = OffsetDateTime::from_unix_timestamp(1_760_000_000).unwrap();
        store
            .record_assessment(&estate, t0, &[duty("a", false), duty("b", false)])
            .await
            .unwrap();
        store
            .record_assessment(
                &estate,
                t0 + Duration::days(1),
                &[duty("a", true), duty("b", false)],
            )
            .await
            .unwrap();
        store.close().await;
    });
    demarc()
        .args(["history", "chat", "--db", &url])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("0/2")
                .and(predicate::str::contains("1/2"))
                .and(predicate::str::contains("up")),
        );
    let out = demarc()
        .args(["history", "--format", "json", "--db", &url])
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json[1]["covered"], 1);
    assert_eq!(json[1]["at"], "2025-10-10T08:53:20Z");
    demarc()
        .args(["history", "search", "--db", &url])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "no recorded assessment covers application `search`",
        ));
}

/// Writers killed with SIGKILL mid-batch: the last batch is all or nothing,
/// and the store opens and verifies afterwards.
fn killed_writer_loses_at_most_its_batch(url: &str) {
    let size = 400;
    for round in 0..3u32 {
        let exe = assert_cmd::cargo::cargo_bin("demarc");
        let mut child = StdCommand::new(exe)
            .args([
                "audit",
                "write-test-events",
                "--db",
                url,
                "--chain",
                "crash",
                "--batches",
                "1000000",
            ])
            .args(["--size", &size.to_string()])
            .env_remove("DEMARC_DB")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        // Let it commit a few batches (more each round), then kill it mid-flight.
        let mut last_printed = 0i64;
        for _ in 0..(3 + round * 4) {
            last_printed = lines.next().unwrap().unwrap().parse().unwrap();
        }
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        // Every batch it reported before dying was committed.
        for line in lines {
            last_printed = line.unwrap().parse().unwrap();
        }
        let (code, json) = verify_json(url);
        assert_eq!(code, 0, "the store must verify after a crash: {json}");
        let last = json["chains"][0]["last_seq"].as_i64().unwrap();
        assert!(
            last >= last_printed,
            "a committed batch was lost: {last} < {last_printed}"
        );
        assert!(
            // At most the batch in flight when it died went in unreported.
            last - last_printed <= size as i64,
            "more than the in-flight batch appeared"
        );
        assert_eq!(last % size as i64, 0, "a batch was partly stored");
    }
}

#[test]
fn killed_writer_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    killed_writer_loses_at_most_its_batch(&sqlite_url(dir.path()));
}

#[test]
fn killed_writer_postgres() {
    let db = PgDb::create();
    killed_writer_loses_at_most_its_batch(&db.url);
}

#[test]
fn two_processes_append_to_one_postgres_store() {
    let db = PgDb::create();
    demarc()
        .args(["db", "migrate", "--db", &db.url])
        .assert()
        .success();
    let exe = assert_cmd::cargo::cargo_bin("demarc");
    let spawn = |chain: &str| {
        StdCommand::new(&exe)
            .args([
                "audit",
                "write-test-events",
                "--db",
                &db.url,
                "--chain",
                chain,
                "--batches",
                "40",
                "--size",
                "250",
            ])
            .env_remove("DEMARC_DB")
            .stdout(Stdio::null())
            .spawn()
            .unwrap()
    };
    let (mut a, mut b) = (spawn("replica-a"), spawn("replica-b"));
    assert!(a.wait().unwrap().success());
    assert!(b.wait().unwrap().success());
    let (code, json) = verify_json(&db.url);
    assert_eq!(code, 0, "{json}");
    assert_eq!(json["events"], 20_000);
    for chain in &json["chains"].as_array().unwrap()[..] {
        assert_eq!(chain["events"], 10_000, "{chain}");
        assert_eq!(chain["first_seq"], 1);
        assert_eq!(chain["last_seq"], 10_000);
    }
}

/// A fingerprint of a file's bytes, to show it did not change.
fn digest(path: &Path) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    std::fs::read(path).unwrap().hash(&mut h);
    h.finish()
}

fn refused(url: &str, file: Option<&Path>, message: &str) {
    let before = file.map(digest);
    for args in [
        &["db", "status"][..],
        &["audit", "verify"],
        &["history"],
        &["db", "migrate"],
    ] {
        demarc()
            .args(args)
            .args(["--db", url])
            .assert()
            .code(2)
            .stderr(predicate::str::contains(message));
    }
    if let (Some(f), Some(before)) = (file, before) {
        assert_eq!(digest(f), before, "the file must not change");
    }
}

#[test]
fn unusable_stores_exit_2_and_stay_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "not a database\n").unwrap();
    refused(text.to_str().unwrap(), Some(&text), "is not a demarc store");

    let corrupt = dir.path().join("corrupt.db");
    demarc()
        .args(["db", "migrate", "--db", corrupt.to_str().unwrap()])
        .assert()
        .success();
    let mut bytes = std::fs::read(&corrupt).unwrap();
    bytes[16..4096].fill(0x5a);
    std::fs::write(&corrupt, &bytes).unwrap();
    refused(corrupt.to_str().unwrap(), Some(&corrupt), "is corrupt");

    let readonly = dir.path().join("readonly.db");
    demarc()
        .args(["db", "migrate", "--db", readonly.to_str().unwrap()])
        .assert()
        .success();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&readonly, std::fs::Permissions::from_mode(0o444)).unwrap();
    refused(readonly.to_str().unwrap(), Some(&readonly), "is read-only");

    let newer = dir.path().join("newer.db");
    let newer_url = format!("sqlite://{}", newer.display());
    demarc()
        .args(["db", "migrate", "--db", &newer_url])
        .assert()
        .success();
    raw_sqlite(
        &newer_url,
        "UPDATE demarc_meta SET value = '99' WHERE key = 'schema_version'",
    );
    refused(
        &newer_url,
        Some(&newer),
        &format!(
            "has schema version 99, newer than this demarc supports ({})",
            demarc_store::SCHEMA_VERSION
        ),
    );

    refused(
        "postgres://postgres@127.0.0.1:1/demarc",
        None,
        "cannot reach PostgreSQL at `postgres://postgres@127.0.0.1:1/demarc`",
    );
    demarc()
        .args(["db", "status", "--db", "mysql://x/y"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("unknown scheme `mysql`"));
}

#[test]
fn tokens_and_serve_refuse_bad_input_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(dir.path());
    let token = demarc()
        .args([
            "tokens",
            "create",
            "--role",
            "auditor",
            "--label",
            "audit firm",
            "--db",
            &url,
        ])
        .output()
        .unwrap();
    assert!(token.status.success());
    assert!(String::from_utf8(token.stdout).unwrap().starts_with("dmt_"));
    demarc()
        .args(["tokens", "create", "--role", "owner", "--db", &url])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("viewer"));
    demarc()
        .args([
            "tokens", "create", "--role", "viewer", "--label", "", "--db", &url,
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("label"));
    demarc()
        .args(["tokens", "revoke", "0123456789abcdef", "--db", &url])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no token `0123456789abcdef`"));
    let listed = demarc()
        .args(["tokens", "list", "--format", "json", "--db", &url])
        .output()
        .unwrap();
    let tokens: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(tokens[0]["role"], "auditor");
    assert!(tokens[0].get("secret").is_none() && tokens[0].get("token_hash").is_none());
    // A broken estate stops `serve` at start, naming the file and the line.
    let estate = dir.path().join("broken.yaml");
    std::fs::write(
        &estate,
        "format: 1\norganisation: {name: X}\napplications:\n  - id: [\n",
    )
    .unwrap();
    demarc()
        .args(["serve", "--listen", "127.0.0.1:0", "--db", &url, "--estate"])
        .arg(&estate)
        .timeout(std::time::Duration::from_secs(30))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("broken.yaml:"));
    demarc()
        .args(["serve", "--listen", "not-an-address", "--db", &url])
        .assert()
        .code(2);
}
