//! `demarc discover` end to end: real log files, a real estate file, a real SQLite store.

use std::io::Write;
use std::path::Path;

use assert_cmd::Command;
use predicates::prelude::*;

fn demarc() -> Command {
    let mut cmd = Command::cargo_bin("demarc").unwrap();
    cmd.env_remove("DEMARC_DB")
        .env_remove("DEMARC_CATALOG")
        .env("NO_COLOR", "1");
    cmd
}

const SQUID: &str = "\
1700000000.100    120 10.0.0.1 TCP_TUNNEL/200 5100 CONNECT claude.ai:443 alice HIER_DIRECT/160.79.104.10 -
1700000001.200     80 10.0.0.2 TCP_TUNNEL/200 700 CONNECT claude.ai:443 bob HIER_DIRECT/160.79.104.10 -
1700000002.300     80 10.0.0.1 TCP_TUNNEL/200 900 CONNECT claude.ai:443 alice HIER_DIRECT/160.79.104.10 -
1700000003.400     60 10.0.0.3 TCP_TUNNEL/200 4000 CONNECT example-assistant.openai.azure.com:443 carol HIER_DIRECT/20.1.1.1 -
1700000004.500     60 10.0.0.4 TCP_MISS/200 1234 GET http://www.wikipedia.org/ dave HIER_DIRECT/1.1.1.1 text/html
1700000005.600     60 10.0.0.4 TCP_MISS/200 99 GET http://cdn.oaistatic.com/x.js dave HIER_DIRECT/1.1.1.1 text/javascript
";

/// A starter estate whose one sanctioned application is reached at
/// `example-assistant.openai.azure.com`.
fn estate(dir: &Path) -> std::path::PathBuf {
    demarc().arg("init").arg(dir).assert().success();
    let path = dir.join("estate.yaml");
    assert!(
        std::fs::read_to_string(&path)
            .unwrap()
            .contains("example-assistant.openai.azure.com")
    );
    path
}

#[test]
fn json_report_classifies_against_the_estate() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    std::fs::write(&log, SQUID).unwrap();
    let estate = estate(dir.path());
    let out = demarc()
        .args(["discover", "--format", "json", "--estate"])
        .arg(&estate)
        .arg(&log)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let json: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(json["records"], 6);
    assert_eq!(json["malformed"], 0);
    let services = json["services"].as_array().unwrap();
    assert_eq!(services.len(), 2, "{services:?}");
    // Shadow first.
    let claude = &services[0];
    assert_eq!(
        (claude["id"].as_str(), claude["status"].as_str()),
        (Some("claude"), Some("shadow"))
    );
    assert_eq!(
        (claude["requests"].as_u64(), claude["users"].as_u64()),
        (Some(3), Some(2))
    );
    assert_eq!(claude["bytes_received"], 6700);
    assert_eq!(claude["first_seen"], "2023-11-14T22:13:20.100000Z");
    assert_eq!(claude["last_seen"], "2023-11-14T22:13:22.300000Z");
    assert_eq!(claude["top_users"][0]["user"], "alice");
    assert_eq!(claude["top_users"][0]["requests"], 2);
    let parts = claude["risk"]["parts"].as_array().unwrap();
    assert_eq!(
        claude["risk"]["score"].as_u64().unwrap(),
        parts
            .iter()
            .map(|p| p["points"].as_u64().unwrap())
            .sum::<u64>()
    );
    let azure = &services[1];
    assert_eq!(
        (azure["id"].as_str(), azure["status"].as_str()),
        (Some("azure-openai"), Some("sanctioned"))
    );
    assert_eq!(azure["estate_applications"][0], "assistant");
    // A cdn hit alone is not use.
    assert_eq!(json["incidental"][0]["id"], "chatgpt");
}

#[test]
fn fail_on_shadow_exits_1_and_table_goes_to_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let estate = estate(dir.path());
    demarc()
        .args(["discover", "--fail-on", "shadow", "--estate"])
        .arg(&estate)
        .arg("-")
        .write_stdin(SQUID)
        .assert()
        .code(1)
        .stdout(predicate::str::contains("shadow").and(predicate::str::contains("Claude")))
        .stderr(predicate::str::contains(
            "check failed: 1 service at `shadow` or worse: claude",
        ));
    // Only the sanctioned service in the log: the check passes.
    let sanctioned: String = SQUID
        .lines()
        .filter(|l| l.contains("azure"))
        .map(|l| format!("{l}\n"))
        .collect();
    demarc()
        .args(["discover", "--fail-on", "shadow", "--estate"])
        .arg(&estate)
        .arg("-")
        .write_stdin(sanctioned)
        .assert()
        .success();
}

#[test]
fn gzip_files_globs_and_csv_output() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["a", "b"] {
        write_gzip(&dir.path().join(format!("{name}.log.gz")), SQUID.as_bytes());
    }
    let pattern = format!("{}/*.log.gz", dir.path().display());
    demarc()
        .args(["discover", "--format", "csv", &pattern])
        .assert()
        .success()
        .stdout(
            predicate::str::starts_with("id,name,vendor,category,service_model,status,requests")
                .and(predicate::str::contains(
                    "claude,Claude,Anthropic,chat-assistant,saas,shadow,6,2,",
                )),
        )
        .stderr(predicate::str::contains(
            "12 records in 2 files, 0 malformed",
        ));
}

/// Compress with the system `gzip` (the CLI crate has no compression dependency).
fn write_gzip(path: &Path, bytes: &[u8]) {
    let mut child = std::process::Command::new("gzip")
        .arg("-c")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    std::fs::write(path, out.stdout).unwrap();
}

#[test]
fn strict_stops_at_the_first_malformed_line() {
    let bad = format!("{SQUID}1700000009.000 60 10.0.0.9 TCP_MISS/200\n");
    // 1 line in 7 is malformed: over the default 5%, so allowed explicitly here.
    demarc()
        .args(["discover", "--max-malformed", "20", "-"])
        .write_stdin(bad.clone())
        .assert()
        .success()
        .stderr(
            predicate::str::contains("1 malformed line skipped")
                .and(predicate::str::contains("`-` line 7:")),
        );
    demarc()
        .args(["discover", "--strict", "-"])
        .write_stdin(bad)
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("`-` line 7:")
                .and(predicate::str::contains("stopped by `--strict`")),
        );
}

#[test]
fn unreadable_input_is_a_clear_error() {
    demarc()
        .args(["discover", "-"])
        .write_stdin("hello\nworld\n")
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains(
                "log format not recognised from line 1 (`hello`); name it with `--log-format`",
            )
            .and(predicate::str::contains("no log could be read")),
        );
    demarc()
        .args(["discover", "--log-format", "nope", "-"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("unknown log format `nope`"));
    demarc()
        .args(["discover", "/nonexistent/*.log"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "`/nonexistent/*.log`: no file matches",
        ));
}

#[test]
fn generic_csv_with_a_mapping_and_html() {
    let csv = "when,who,dest,up\n2024-05-01T10:00:00Z,jane,chat.deepseek.com,30000000\n2024-05-01T10:01:00Z,jane,example.org,1\n";
    let out = demarc()
        .args([
            "discover",
            "--log-format",
            "csv",
            "--map",
            "host=dest,user=who,time=when,sent=up",
            "--format",
            "json",
            "-",
        ])
        .write_stdin(csv)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let json: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(json["records"], 2);
    assert_eq!(json["services"][0]["id"], "deepseek");
    assert_eq!(json["services"][0]["large_uploads"], 1);
    assert_eq!(json["services"][0]["bytes_sent"], 30_000_000);
    demarc()
        .args([
            "discover",
            "--log-format",
            "csv",
            "--map",
            "host=dest,user=who",
            "--format",
            "html",
            "-",
        ])
        .write_stdin(csv)
        .assert()
        .success()
        .stdout(
            predicate::str::starts_with("<!doctype html>")
                .and(predicate::str::contains("DeepSeek Chat")),
        );
}

#[test]
fn record_stores_findings_in_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("store.db").display());
    demarc()
        .args(["discover", "--record", "--db", &db, "-"])
        .write_stdin(SQUID)
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "recorded discovery run 1 (4 findings",
        ));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let rows: Vec<(String, String, i64)> = rt.block_on(async {
        use sqlx::Connection;
        let mut conn = sqlx::SqliteConnection::connect(&db).await.unwrap();
        sqlx::query_as("SELECT service, user_name, requests FROM discovery_findings ORDER BY service, user_name").fetch_all(&mut conn).await.unwrap()
    });
    assert_eq!(
        rows,
        [
            ("azure-openai".to_owned(), "carol".to_owned(), 1),
            // Dave only loaded a ChatGPT script: kept (status `incidental`), so that a later
            // merge of runs counts him if another log shows him using it.
            ("chatgpt".to_owned(), "dave".to_owned(), 1),
            ("claude".to_owned(), "alice".to_owned(), 2),
            ("claude".to_owned(), "bob".to_owned(), 1)
        ]
    );
}

/// A binary file is refused (exit 2), not reported as "no GenAI service found".
#[test]
fn binary_input_is_refused_not_clean() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("core.bin");
    let mut bytes = b"\x7fELF\x02\x01\x01\0".to_vec();
    bytes.extend((0..50_000u32).map(|i| (i * 7 % 256) as u8));
    std::fs::write(&bin, bytes).unwrap();
    demarc()
        .args(["discover", "--fail-on", "shadow"])
        .arg(&bin)
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::contains("binary data, not a text log"));
}

/// A Zeek log as `zeek-cut -c -d` writes it (ISO 8601 times) is read, not all malformed.
#[test]
fn zeek_cut_iso_times_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("ssl.log");
    std::fs::write(
        &log,
        "#separator \\x09\n#fields\tts\tuid\tid.orig_h\tserver_name\n#types\tstring\tstring\taddr\tstring\n\
         2018-03-24T17:15:20+0000\tC1\t10.0.0.1\tclaude.ai\n\
         2018-03-24T17:15:21+0000\tC2\t10.0.0.2\tclaude.ai\n\
         not-a-time\tC3\t10.0.0.2\tclaude.ai\n",
    )
    .unwrap();
    let out = demarc()
        .args(["discover", "--format", "json"])
        .arg(&log)
        .assert()
        .success()
        .stderr(predicate::str::contains("1 without a readable time (kept)"))
        .get_output()
        .stdout
        .clone();
    let json: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(
        (
            json["records"].as_u64(),
            json["malformed"].as_u64(),
            json["untimed"].as_u64()
        ),
        (Some(3), Some(0), Some(1))
    );
    let claude = &json["services"][0];
    assert_eq!(claude["first_seen"], "2018-03-24T17:15:20.000000Z");
    // Zeek ssl logs have no byte counts: unknown, not 0; addresses are not users.
    assert_eq!(claude["bytes_sent"], serde_json::Value::Null);
    assert_eq!(
        (
            claude["users"].as_u64(),
            claude["identities"]["ip"].as_u64()
        ),
        (Some(0), Some(2))
    );
    // Without the ISO support every line was malformed and the run exited 0; a log with no
    // readable record is now an error.
    let bad = dir.path().join("conn.log");
    std::fs::write(
        &bad,
        "#fields\tts\tuid\tid.orig_h\tserver_name\n1\t2\n3\t4\n",
    )
    .unwrap();
    demarc()
        .args(["discover", "--fail-on", "shadow"])
        .arg(&bad)
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("(read as zeek)")
                .and(predicate::str::contains("first bad line 2")),
        );
}

/// 10% malformed lines exceed the default 5%: exit 2 naming the file, the format and the
/// first bad line; `--max-malformed 15` accepts them.
#[test]
fn ten_percent_malformed_is_an_error() {
    let mut log = String::new();
    for i in 0..90 {
        log.push_str(&format!(
            "17000000{i:02}.100 1 10.0.0.1 TCP_TUNNEL/200 5100 CONNECT claude.ai:443 alice HIER_DIRECT/1.1.1.1 -\n"
        ));
    }
    for _ in 0..10 {
        log.push_str("garbage line\n");
    }
    demarc()
        .args(["discover", "-"])
        .write_stdin(log.clone())
        .assert()
        .code(2)
        .stdout("")
        .stderr(
            predicate::str::contains("`-` (read as squid): 10 of 100 lines are malformed")
                .and(predicate::str::contains("first bad line 91")),
        );
    demarc()
        .args(["discover", "--max-malformed", "15", "-"])
        .write_stdin(log)
        .assert()
        .success();
}

/// The estate sanctions one Azure OpenAI resource; a user reaching a second one (their own)
/// is an `other-tenant` finding, shadow for `--fail-on shadow`, and a stub in
/// `--emit-estate`; a blocked request is counted as blocked.
#[test]
fn second_azure_openai_resource_is_another_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let estate = estate(dir.path());
    let log = "\
1700000003.400     60 10.0.0.3 TCP_TUNNEL/200 4000 CONNECT example-assistant.openai.azure.com:443 carol HIER_DIRECT/20.1.1.1 -
1700000004.400     60 10.0.0.3 TCP_TUNNEL/200 4000 CONNECT hobby-project.openai.azure.com:443 carol HIER_DIRECT/20.1.1.2 -
1700000005.400     60 10.0.0.3 TCP_DENIED/403 0 CONNECT hobby-project.openai.azure.com:443 carol HIER_NONE/- -
";
    let stubs = dir.path().join("stubs.yaml");
    let out = demarc()
        .args([
            "discover",
            "--format",
            "json",
            "--fail-on",
            "shadow",
            "--emit-estate",
        ])
        .arg(&stubs)
        .arg("--estate")
        .arg(&estate)
        .arg("-")
        .write_stdin(log)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("other-tenant"))
        .get_output()
        .stdout
        .clone();
    let json: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let services = json["services"].as_array().unwrap();
    assert_eq!(services.len(), 2, "{services:?}");
    assert_eq!(services[0]["status"], "other-tenant");
    assert_eq!(services[0]["tenants"][0], "hobby-project.openai.azure.com");
    assert_eq!(
        (
            services[0]["requests"].as_u64(),
            services[0]["blocked"].as_u64()
        ),
        (Some(2), Some(1))
    );
    assert_eq!(services[1]["status"], "sanctioned");
    assert_eq!(
        services[1]["tenants"][0],
        "example-assistant.openai.azure.com"
    );
    assert_eq!(json["summary"]["by_status"]["other-tenant"], 1);
    let yaml = std::fs::read_to_string(&stubs).unwrap();
    assert!(yaml.contains("- id: azure-openai-hobby-project"), "{yaml}");
    assert!(
        yaml.contains("status: discovered") && yaml.contains("- hobby-project.openai.azure.com"),
        "{yaml}"
    );
}

/// Recorded runs can be listed, shown and compared; the findings keep their classification.
#[test]
fn runs_show_and_diff() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("store.db").display());
    let estate = estate(dir.path());
    demarc()
        .args(["discover", "--record", "--db", &db, "--estate"])
        .arg(&estate)
        .arg("-")
        .write_stdin(SQUID)
        .assert()
        .success();
    let second = format!(
        "{SQUID}1700000009.000 60 10.0.0.9 TCP_TUNNEL/200 100 CONNECT chatgpt.com:443 erin HIER_DIRECT/1.1.1.1 -\n1700000010.000 60 10.0.0.9 TCP_TUNNEL/200 100 CONNECT claude.ai:443 erin HIER_DIRECT/1.1.1.1 -\n"
    );
    demarc()
        .args([
            "discover",
            "--record",
            "--max-malformed",
            "0",
            "--db",
            &db,
            "--estate",
        ])
        .arg(&estate)
        .arg("-")
        .write_stdin(second)
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "new since the last recorded run: chatgpt",
        ));
    demarc()
        .args(["discover", "runs", "--db", &db])
        .assert()
        .success()
        .stdout(predicate::str::contains("RUN").and(predicate::str::contains("\n    2  ")));
    demarc()
        .args(["discover", "show", "1", "--db", &db])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("shadow")
                .and(predicate::str::contains("claude"))
                .and(predicate::str::contains("sanctioned")),
        );
    let out = demarc()
        .args([
            "discover", "diff", "1", "2", "--format", "json", "--db", &db,
        ])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let d: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(d["new"], serde_json::json!(["chatgpt"]));
    assert_eq!(d["grown"][0][0], "claude");
    assert_eq!(d["new_users"][0], serde_json::json!(["claude", "erin"]));
    demarc()
        .args(["discover", "show", "9", "--db", &db])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no discovery run 9"));
}

#[test]
fn a_malformed_identities_file_names_its_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    std::fs::write(&log, SQUID).unwrap();
    for (content, needle) in [
        (
            "address,user\n10.0.0.1,alice\nnot-an-ip,bob\n",
            "line 3: field `address`: `not-an-ip` is not an IP address",
        ),
        (
            "10.0.0.1,alice\n10.0.0.2\n",
            "line 2: expected `address,user`",
        ),
        ("10.0.0.1,\n", "line 1: field `user` is empty"),
    ] {
        let map = dir.path().join("ids.csv");
        std::fs::write(&map, content).unwrap();
        demarc()
            .arg("discover")
            .arg(&log)
            .arg("--identities")
            .arg(&map)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(needle));
    }
}

/// A generated Squid log (no header: logs of it can be joined by concatenation).
fn squid_log(seed: u64) -> Vec<u8> {
    let catalog = demarc_discover::catalog::Catalog::builtin().unwrap();
    let options = demarc_discover::loggen::GenOptions {
        format: demarc_discover::loggen::GenFormat::Squid,
        size: 200 << 10,
        seed,
        users: 40,
        genai_per_mille: 200,
    };
    let mut out = Vec::new();
    demarc_discover::loggen::generate(&catalog, &options, &mut out).unwrap();
    out
}

fn merged_report(db: &str) -> serde_json::Value {
    let out = demarc()
        .args(["discover", "report", "--format", "json", "--db", db])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn three_sensors_recorded_apart_report_what_one_log_of_all_three_does_and_no_log_counts_twice() {
    let dir = tempfile::tempdir().unwrap();
    let logs: Vec<Vec<u8>> = (1..=3).map(squid_log).collect();
    let mut names = Vec::new();
    for (i, log) in logs.iter().enumerate() {
        let path = dir.path().join(format!("site{i}.log"));
        std::fs::write(&path, log).unwrap();
        names.push(path.display().to_string());
    }
    let all = dir.path().join("all.log");
    std::fs::write(&all, logs.concat()).unwrap();
    let apart = format!("sqlite://{}", dir.path().join("apart.db").display());
    let together = format!("sqlite://{}", dir.path().join("together.db").display());
    for (i, name) in names.iter().enumerate() {
        demarc()
            .args([
                "discover",
                name,
                "--record",
                "--sensor",
                &format!("site-{i}"),
            ])
            .args(["--db", &apart])
            .assert()
            .success()
            .stderr(predicate::str::contains(format!("sensor `site-{i}`")));
    }
    demarc()
        .args([
            "discover",
            all.to_str().unwrap(),
            "--record",
            "--db",
            &together,
        ])
        .assert()
        .success();
    let merged = merged_report(&apart);
    assert!(merged.as_array().unwrap().len() > 5, "{merged}");
    assert_eq!(merged, merged_report(&together));

    // The same log again, under another name, from another sensor: refused, nothing stored.
    let copy = dir.path().join("copy-of-site0.log.gz");
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&copy).unwrap(),
        flate2::Compression::default(),
    );
    gz.write_all(&logs[0]).unwrap();
    gz.finish().unwrap();
    demarc()
        .args([
            "discover",
            copy.to_str().unwrap(),
            "--record",
            "--sensor",
            "elsewhere",
        ])
        .args(["--db", &apart])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("recorded before"))
        .stderr(predicate::str::contains("from sensor `site-0`"));
    assert_eq!(merged, merged_report(&apart), "nothing counted twice");
    let runs = demarc()
        .args(["discover", "runs", "--format", "json", "--db", &apart])
        .output()
        .unwrap();
    let runs: serde_json::Value = serde_json::from_slice(&runs.stdout).unwrap();
    assert_eq!(runs.as_array().unwrap().len(), 3);
    // One sensor's view is its own run.
    let one = demarc()
        .args([
            "discover", "report", "--sensor", "site-1", "--format", "json", "--db", &apart,
        ])
        .output()
        .unwrap();
    let one: serde_json::Value = serde_json::from_slice(&one.stdout).unwrap();
    let requests = |v: &serde_json::Value| -> i64 {
        v.as_array()
            .unwrap()
            .iter()
            .map(|f| f["requests"].as_i64().unwrap())
            .sum()
    };
    assert!(0 < requests(&one) && requests(&one) < requests(&merged));
}

#[test]
fn any_split_of_a_log_recorded_as_two_runs_merges_into_the_report_of_the_whole_log() {
    let log = squid_log(7);
    let lines: Vec<&[u8]> = log.split_inclusive(|&b| b == b'\n').collect();
    let whole_dir = tempfile::tempdir().unwrap();
    let whole_log = whole_dir.path().join("whole.log");
    std::fs::write(&whole_log, &log).unwrap();
    let whole_db = format!("sqlite://{}", whole_dir.path().join("whole.db").display());
    demarc()
        .args([
            "discover",
            whole_log.to_str().unwrap(),
            "--record",
            "--db",
            &whole_db,
        ])
        .assert()
        .success();
    let whole = merged_report(&whole_db);
    // Random splits (xorshift, fixed seeds): each line goes to one part or the other.
    for seed in [1u64, 2, 3, 5, 8] {
        let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let share = 1 + seed % 9; // tenths of the lines that go to part A
        for line in &lines {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            if rng % 10 < share { &mut a } else { &mut b }.extend_from_slice(line);
        }
        let dir = tempfile::tempdir().unwrap();
        let db = format!("sqlite://{}", dir.path().join("split.db").display());
        for (name, part) in [("a.log", &a), ("b.log", &b)] {
            let path = dir.path().join(name);
            std::fs::write(&path, part).unwrap();
            demarc()
                .args([
                    "discover",
                    path.to_str().unwrap(),
                    "--record",
                    "--sensor",
                    name,
                ])
                .args(["--db", &db])
                .assert()
                .success();
        }
        assert_eq!(merged_report(&db), whole, "split seed {seed}");
    }
}

#[test]
fn bad_sensor_names_and_report_dates_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("s.db").display());
    demarc()
        .args(["discover", "--record", "--sensor", "", "--db", &db, "-"])
        .write_stdin(SQUID)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("sensor"));
    demarc()
        .args(["discover", "--sensor", "paris", "-"])
        .write_stdin(SQUID)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--record"));
    for bad in ["2026-13-01", "yesterday"] {
        demarc()
            .args(["discover", "report", "--since", bad, "--db", &db])
            .assert()
            .code(2)
            .stderr(predicate::str::contains("--since"));
    }
    // Nothing was recorded by the refused run.
    demarc()
        .args(["discover", "runs", "--format", "json", "--db", &db])
        .assert()
        .success()
        .stdout(predicate::str::contains("[]"));
}
