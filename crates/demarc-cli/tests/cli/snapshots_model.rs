//! Snapshots of what a user sees for the bundled example, so changes to it are deliberate.
//! Update with `INSTA_UPDATE=always cargo test -p demarc-cli --test cli snapshots_model`
//! (or `cargo insta review`).

use assert_cmd::Command;

fn stdout(args: &[&str]) -> String {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let out = Command::cargo_bin("demarc")
        .unwrap()
        .current_dir(root)
        .env("NO_COLOR", "1")
        .env("XDG_DATA_HOME", "/nonexistent/demarc-tests")
        .env_remove("DEMARC_DB")
        .env_remove("DEMARC_CATALOG")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.code().is_some_and(|c| c <= 1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn matrix_table() {
    insta::assert_snapshot!(stdout(&["matrix"]));
}

#[test]
fn bank_assessment_table() {
    insta::assert_snapshot!(stdout(&[
        "assess",
        "examples/bank-estate.yaml",
        "--today",
        "2026-11-26"
    ]));
}

#[test]
fn bank_explain_retrieval_app() {
    insta::assert_snapshot!(stdout(&[
        "explain",
        "examples/bank-estate.yaml",
        "policy-finder"
    ]));
}

#[test]
fn bank_what_if() {
    insta::assert_snapshot!(stdout(&[
        "what-if",
        "examples/bank-estate.yaml",
        "colleague-assistant",
        "--service-model",
        "iaas",
        "--provider",
        "aws",
        "--today",
        "2026-12-01"
    ]));
}
