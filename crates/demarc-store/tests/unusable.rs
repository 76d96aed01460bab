//! Stores that cannot be used are refused with a typed error, and nothing is written.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use demarc_store::{Store, StoreError};

/// SHA-256 (hex) of the file, and whether a non-empty write-ahead log sits beside it.
fn snapshot(path: &std::path::Path) -> (String, bool) {
    use sha2::Digest;
    let digest = hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()));
    let wal = path.with_extension("db-wal");
    (digest, std::fs::metadata(wal).is_ok_and(|m| m.len() > 0))
}

async fn refused(path: &std::path::Path) -> StoreError {
    let before = snapshot(path);
    let err = Store::open(path.to_str().unwrap())
        .await
        .err()
        .expect("the store must be refused");
    assert!(err.is_unusable_store(), "{err:?}");
    assert_eq!(snapshot(path), before, "nothing may be written");
    err
}

#[tokio::test]
async fn a_text_file_is_not_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    std::fs::write(&path, "remember the milk\n").unwrap();
    let err = refused(&path).await;
    assert!(matches!(err, StoreError::NotAStore { .. }), "{err}");
    assert!(
        err.to_string().contains("notes.txt` is not a demarc store"),
        "{err}"
    );
}

#[tokio::test]
async fn another_applications_sqlite_database_is_not_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.db");
    let target = common::Target::Sqlite {
        url: format!("sqlite://{}", path.display()),
        _dir: tempfile::tempdir().unwrap(),
    };
    target
        .raw("CREATE TABLE orders (id INTEGER PRIMARY KEY)")
        .await;
    let err = refused(&path).await;
    assert!(matches!(err, StoreError::NotAStore { .. }), "{err}");
}

#[tokio::test]
async fn a_corrupt_store_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let store = Store::open(path.to_str().unwrap()).await.unwrap();
    store
        .append_audit_batch(
            "gw",
            &[demarc_store::NewAuditEvent {
                at: demarc_store::time::OffsetDateTime::now_utc(),
                payload: "{}".into(),
            }],
        )
        .await
        .unwrap();
    store.close().await;
    // Keep the SQLite magic, damage the header fields and the schema page.
    let mut bytes = std::fs::read(&path).unwrap();
    for b in &mut bytes[16..4096] {
        *b = 0xA5;
    }
    std::fs::write(&path, &bytes).unwrap();
    let err = refused(&path).await;
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    assert!(
        err.to_string().contains("restore it from a backup"),
        "{err}"
    );
}

#[tokio::test]
async fn a_read_only_store_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    Store::open(path.to_str().unwrap())
        .await
        .unwrap()
        .close()
        .await;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).unwrap();
    let err = refused(&path).await;
    assert!(matches!(err, StoreError::ReadOnly { .. }), "{err}");
}

#[tokio::test]
async fn an_unreachable_postgres_is_reported() {
    let err = Store::open("postgres://postgres:s3cret@127.0.0.1:1/demarc")
        .await
        .err()
        .unwrap();
    assert!(matches!(err, StoreError::Unreachable { .. }), "{err}");
    let message = err.to_string();
    assert!(
        message.contains("127.0.0.1:1") && !message.contains("s3cret"),
        "{message}"
    );
}

#[tokio::test]
async fn a_missing_postgres_database_is_reported() {
    let admin = common::pg_admin_url();
    let base = &admin[..admin.rfind('/').unwrap()];
    let err = Store::open(&format!("{base}/{}", common::random_name("demarc_absent_")))
        .await
        .err()
        .unwrap();
    assert!(matches!(err, StoreError::Unreachable { .. }), "{err}");
    assert!(err.to_string().contains("does not exist"), "{err}");
}

#[tokio::test]
async fn unknown_schemes_are_rejected() {
    let err = Store::open("mysql://localhost/db").await.err().unwrap();
    assert!(matches!(err, StoreError::InvalidUrl { .. }), "{err}");
}
