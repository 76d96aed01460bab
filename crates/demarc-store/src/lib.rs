//! demarc's persistence: one async API over two backends, chosen by URL.
//!
//! - **SQLite** (the default): a single file in WAL mode, nothing to install.
//!   URL `sqlite://PATH`, `sqlite:PATH` or a bare path; see [`default_url`].
//! - **PostgreSQL**: `postgres://user[:password]@host[:port]/db`, for shared and
//!   multi-replica deployments (several gateways appending to one store).
//!
//! [`Store::open`] checks what it is pointed at before writing anything (a file
//! that is not a demarc store, a corrupt or read-only file, an unreachable server
//! or a schema newer than this binary are refused with a [`StoreError`] for which
//! [`StoreError::is_unusable_store`] holds), then applies the versioned migrations
//! of [`schema`] in one transaction, idempotently.
//!
//! What it keeps, one module each: assessment history ([`assessments`]),
//! discovery findings ([`discovery`]), automatic evidence, bounded: the latest
//! observation per application × area × kind plus one row per day ([`evidence`]), the
//! hash-chained gateway audit trail ([`audit`]) with its per-day traffic summary
//! ([`traffic`]), gateway API keys and shared rate-limit counters ([`keys`]), the canaries the gateway
//! injects ([`canaries`]), and the dashboard's access tokens and sessions ([`tokens`]). Times are [`time::OffsetDateTime`] in the API
//! and unix milliseconds in the tables.

pub mod assessments;
pub mod audit;
pub mod canaries;
mod changes;
pub mod discovery;
mod error;
pub mod evidence;
pub mod keys;
mod location;
pub mod schema;
pub mod tokens;
pub mod traffic;

use std::path::Path;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection, Row};
use time::OffsetDateTime;

pub use assessments::{DutyResult, EstateRecord, HistoryPoint, RunId};
pub use audit::{AppendReceipt, ChainReport, NewAuditEvent, PruneReport, VerifyReport};
pub use canaries::Canary;
pub use changes::{Change, Changes};
pub use discovery::{
    ClassifiedFinding, DiscoveryFinding, DiscoveryRun, DiscoveryTraffic, FindingClass,
    FindingOrder, RecordedInput, RunSource,
};
pub use error::{Result, StoreError};
pub use evidence::{Evidence, EvidenceDay};
pub use keys::{ApiKey, NewApiKey};
pub use location::{Backend, default_url, redact};
pub use schema::SCHEMA_VERSION;

/// This machine's name (`HOSTNAME`, else `/etc/hostname`, else `localhost`; printable ASCII,
/// at most 64 characters): how audit chains and discovery sensors are named by default.
pub fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| {
            h.trim()
                .chars()
                .filter(|c| c.is_ascii_graphic())
                .take(64)
                .collect::<String>()
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}
pub use time;
pub use tokens::{NewServeSession, NewServeToken, Role, ServeSession, ServeToken};
pub use traffic::{Traffic, TrafficDay};

/// How long to wait for PostgreSQL to accept a connection before calling it unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a SQLite writer waits for another writer's lock before giving up.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(30);
/// Distinguishes demarc's tables from another application's.
const META_TABLE: &str = "demarc_meta";

/// A connection pool to one store. Cheap to clone; share one per process.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
    location: String,
}

#[derive(Clone)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs the same body against whichever pool the store holds; the body is
/// compiled once per backend, so SQL shared by both uses `$N` placeholders.
macro_rules! dispatch {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.pool {
            $crate::Pool::Sqlite($pool) => $body,
            $crate::Pool::Postgres($pool) => $body,
        }
    };
}
pub(crate) use dispatch;

/// Opens a write transaction. SQLite takes the write lock up front (`BEGIN
/// IMMEDIATE`) so that two writers wait on the busy timeout instead of failing
/// when a read lock would need upgrading.
pub(crate) trait BeginWrite {
    type Db: sqlx::Database;
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, Self::Db>>;
}

impl BeginWrite for SqlitePool {
    type Db = sqlx::Sqlite;
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
        Ok(self.begin_with("BEGIN IMMEDIATE").await?)
    }
}

impl BeginWrite for PgPool {
    type Db = sqlx::Postgres;
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>> {
        Ok(self.begin().await?)
    }
}

/// Opens a read-only transaction that sees one consistent snapshot: SQLite's
/// deferred transaction keeps its WAL snapshot from the first read on;
/// PostgreSQL needs REPEATABLE READ for the same.
pub(crate) trait BeginSnapshot {
    type Db: sqlx::Database;
    async fn begin_snapshot(&self) -> Result<sqlx::Transaction<'static, Self::Db>>;
}

impl BeginSnapshot for SqlitePool {
    type Db = sqlx::Sqlite;
    async fn begin_snapshot(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
        Ok(self.begin().await?)
    }
}

impl BeginSnapshot for PgPool {
    type Db = sqlx::Postgres;
    async fn begin_snapshot(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>> {
        Ok(self
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .await?)
    }
}

/// Backend, schema version and row counts, for `demarc db status`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StoreStatus {
    pub backend: Backend,
    /// The file path, or the URL without its password.
    pub location: String,
    pub schema_version: i64,
    /// `(table, rows)` for each table of the store.
    pub counts: Vec<(String, i64)>,
}

const COUNTED_TABLES: &[&str] = &[
    "estates",
    "assessment_runs",
    "duty_results",
    "discovery_runs",
    "discovery_findings",
    "evidence",
    "evidence_days",
    "audit_chains",
    "audit_events",
    "audit_checkpoints",
    "audit_traffic",
    "api_keys",
    "rate_counters",
    "canaries",
    "serve_tokens",
    "serve_sessions",
];

impl Store {
    /// Opens (creating a SQLite file when it does not exist yet) the store at
    /// `url` and brings its schema up to [`SCHEMA_VERSION`].
    ///
    /// Refuses, without writing anything, a file or database that is not a
    /// demarc store, a corrupt or read-only file, an unreachable server and a
    /// schema newer than this binary.
    pub async fn open(url: &str) -> Result<Store> {
        let location = location::Location::parse(url)?;
        // Concurrent first opens of one SQLite file can meet SQLITE_BUSY where SQLite does not
        // wait on the busy handler (a read-only probe or a switch to WAL mode while another
        // process creates the file): such an open is tried again, for a bounded time. A failed
        // attempt has written nothing (the migration is one transaction).
        let deadline = std::time::Instant::now() + SQLITE_BUSY_TIMEOUT;
        let mut delay = Duration::from_millis(10);
        loop {
            match Self::open_once(&location).await {
                Err(e) if e.is_sqlite_busy() && std::time::Instant::now() + delay < deadline => {
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_millis(500));
                }
                other => return other,
            }
        }
    }

    async fn open_once(location: &location::Location) -> Result<Store> {
        let display = location.display();
        let pool = match location {
            location::Location::Sqlite(path) => Pool::Sqlite(open_sqlite(path, &display).await?),
            location::Location::Postgres(url) => {
                Pool::Postgres(open_postgres(url, &display).await?)
            }
        };
        let store = Store {
            pool,
            location: display,
        };
        store.migrate().await?;
        Ok(store)
    }

    /// Which backend this store uses.
    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// The file path, or the URL without its password.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Applies the migrations this store lacks, in one transaction; a no-op when
    /// it is current. Safe to run from several processes at once. Returns the
    /// schema version found before migrating.
    pub async fn migrate(&self) -> Result<i64> {
        let (migrations, lock) = match self.pool {
            Pool::Sqlite(_) => (schema::SQLITE, None),
            // One demarc-wide advisory lock so concurrent first starts serialise.
            Pool::Postgres(_) => (
                schema::POSTGRES,
                Some("SELECT pg_advisory_xact_lock(7236119)"),
            ),
        };
        dispatch!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            if let Some(lock) = lock {
                sqlx::query(lock).execute(&mut *tx).await?;
            }
            sqlx::query(
                "CREATE TABLE IF NOT EXISTS demarc_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
            )
            .execute(&mut *tx)
            .await?;
            let found: Option<String> =
                sqlx::query_scalar("SELECT value FROM demarc_meta WHERE key = 'schema_version'")
                    .fetch_optional(&mut *tx)
                    .await?;
            let found = parse_version(found.as_deref(), &self.location)?;
            if found > SCHEMA_VERSION {
                return Err(self.too_new(found));
            }
            for (index, statements) in migrations.iter().enumerate().skip(found as usize) {
                tracing::info!(version = index + 1, "applying store migration");
                for statement in *statements {
                    sqlx::query(statement).execute(&mut *tx).await?;
                }
            }
            if found == 1 {
                // Audit events appended before version 2 get their traffic summary, once every
                // migration has run (the summary's columns grew in version 6).
                traffic::backfill_traffic!(tx);
            }
            if found < SCHEMA_VERSION {
                sqlx::query(
                    "INSERT INTO demarc_meta (key, value) VALUES ('schema_version', $1)
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                )
                .bind(SCHEMA_VERSION.to_string())
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(found)
        })
    }

    /// Backend, schema version and the number of rows in each table.
    pub async fn status(&self) -> Result<StoreStatus> {
        let mut counts = Vec::with_capacity(COUNTED_TABLES.len());
        for table in COUNTED_TABLES {
            // Table names come from the constant list above, never from input.
            let sql = format!("SELECT COUNT(*) FROM {table}");
            let n: i64 = dispatch!(self, |pool| sqlx::query_scalar(&sql)
                .fetch_one(pool)
                .await?);
            counts.push(((*table).to_owned(), n));
        }
        let version: Option<String> = dispatch!(self, |pool| {
            sqlx::query_scalar("SELECT value FROM demarc_meta WHERE key = 'schema_version'")
                .fetch_optional(pool)
                .await?
        });
        Ok(StoreStatus {
            backend: self.backend(),
            location: self.location.clone(),
            schema_version: parse_version(version.as_deref(), &self.location)?,
            counts,
        })
    }

    /// Closes every connection. On SQLite the write-ahead log is first folded
    /// back into the main file, so the file alone holds every committed change.
    pub async fn close(&self) {
        if let Pool::Sqlite(pool) = &self.pool
            && let Err(e) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(pool)
                .await
        {
            tracing::warn!(error = %e, "cannot checkpoint the write-ahead log");
        }
        dispatch!(self, |pool| pool.close().await)
    }

    fn too_new(&self, found: i64) -> StoreError {
        StoreError::SchemaTooNew {
            location: self.location.clone(),
            found,
            supported: SCHEMA_VERSION,
        }
    }
}

fn parse_version(value: Option<&str>, location: &str) -> Result<i64> {
    match value {
        None => Ok(0),
        Some(v) => v
            .parse::<i64>()
            .ok()
            .filter(|v| *v >= 0)
            .ok_or_else(|| StoreError::NotAStore {
                location: location.to_owned(),
                reason: format!("its schema version `{v}` is not a number"),
            }),
    }
}

/// Checks the file before SQLite touches it, then opens a WAL-mode pool.
async fn open_sqlite(path: &Path, display: &str) -> Result<SqlitePool> {
    let io = |source| StoreError::Io {
        path: display.to_owned(),
        source,
    };
    match std::fs::metadata(path) {
        Ok(meta) => {
            if !meta.is_file() {
                return Err(StoreError::NotAStore {
                    location: display.to_owned(),
                    reason: "it is not a regular file".into(),
                });
            }
            // Checked explicitly: SQLite would silently open a write-protected file read-only.
            if meta.permissions().readonly() {
                return Err(StoreError::ReadOnly {
                    location: display.to_owned(),
                    detail: "the file is write-protected".into(),
                });
            }
            if meta.len() > 0 {
                check_sqlite_header(path, display)?;
                probe_sqlite(path, display).await?;
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| map_io(e, display))?;
            }
        }
        Err(e) => return Err(io(e)),
    }
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(SQLITE_BUSY_TIMEOUT)
        .foreign_keys(true)
        .disable_statement_logging();
    SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(options)
        .await
        .map_err(|e| map_sqlite(e, display))
}

fn map_io(e: std::io::Error, display: &str) -> StoreError {
    if e.kind() == std::io::ErrorKind::PermissionDenied || e.raw_os_error() == Some(30) {
        StoreError::ReadOnly {
            location: display.to_owned(),
            detail: e.to_string(),
        }
    } else {
        StoreError::Io {
            path: display.to_owned(),
            source: e,
        }
    }
}

/// Every SQLite file starts with these 16 bytes.
const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

fn check_sqlite_header(path: &Path, display: &str) -> Result<()> {
    use std::io::Read;
    let mut head = [0u8; 16];
    let mut file = std::fs::File::open(path).map_err(|e| map_io(e, display))?;
    let mut read = 0;
    while read < head.len() {
        match file.read(&mut head[read..]) {
            Ok(0) => break,
            Ok(n) => read += n,
            Err(e) => return Err(map_io(e, display)),
        }
    }
    if read < head.len() || &head != SQLITE_MAGIC {
        return Err(StoreError::NotAStore {
            location: display.to_owned(),
            reason: "it is not an SQLite database".into(),
        });
    }
    Ok(())
}

/// Looks at an existing SQLite file without changing it: another application's
/// database, a damaged file or a newer schema are refused here, before the pool
/// switches the file to WAL mode.
async fn probe_sqlite(path: &Path, display: &str) -> Result<()> {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(false)
        // Read-only: closing it never checkpoints a pending log into the file.
        .read_only(true)
        .busy_timeout(SQLITE_BUSY_TIMEOUT)
        .disable_statement_logging();
    let mut conn = options
        .connect()
        .await
        .map_err(|e| map_sqlite(e, display))?;
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
    )
    .fetch_all(&mut conn)
    .await
    .map_err(|e| map_sqlite(e, display))?;
    let version = if tables.iter().any(|t| t == META_TABLE) {
        let v: Option<String> =
            sqlx::query_scalar("SELECT value FROM demarc_meta WHERE key = 'schema_version'")
                .fetch_optional(&mut conn)
                .await
                .map_err(|e| map_sqlite(e, display))?;
        Some(v)
    } else {
        None
    };
    let _ = conn.close().await;
    judge_tables(&tables, version, display)
}

/// Shared verdict of both probes: empty is fine (a new store), demarc's tables
/// are fine unless newer, anything else is someone else's database.
fn judge_tables(tables: &[String], version: Option<Option<String>>, display: &str) -> Result<()> {
    match version {
        Some(v) => {
            let found = parse_version(v.as_deref(), display)?;
            if found > SCHEMA_VERSION {
                return Err(StoreError::SchemaTooNew {
                    location: display.to_owned(),
                    found,
                    supported: SCHEMA_VERSION,
                });
            }
            Ok(())
        }
        None if tables.is_empty() => Ok(()),
        None => {
            let mut names: Vec<&str> = tables.iter().map(String::as_str).take(3).collect();
            if tables.len() > 3 {
                names.push("…");
            }
            Err(StoreError::NotAStore {
                location: display.to_owned(),
                reason: format!(
                    "it holds other tables (`{}`) and no demarc schema",
                    names.join("`, `")
                ),
            })
        }
    }
}

fn map_sqlite(e: sqlx::Error, display: &str) -> StoreError {
    let code = match &e {
        sqlx::Error::Database(db) => db.code().and_then(|c| c.parse::<i32>().ok()),
        _ => None,
    };
    let detail = match &e {
        sqlx::Error::Database(db) => db.message().to_owned(),
        other => other.to_string(),
    };
    // Primary result codes: 8 READONLY, 11 CORRUPT, 14 CANTOPEN, 26 NOTADB.
    match code.map(|c| c & 0xff) {
        Some(11) | Some(26) => StoreError::Corrupt {
            location: display.to_owned(),
            detail,
        },
        Some(8) => StoreError::ReadOnly {
            location: display.to_owned(),
            detail,
        },
        Some(14) => StoreError::ReadOnly {
            location: display.to_owned(),
            detail: format!("{detail} (is the directory writable?)"),
        },
        _ => StoreError::Database(e),
    }
}

async fn open_postgres(url: &str, display: &str) -> Result<PgPool> {
    let unreachable = |detail: String| StoreError::Unreachable {
        location: display.to_owned(),
        detail,
    };
    let options: PgConnectOptions =
        url.parse()
            .map_err(|e: sqlx::Error| StoreError::InvalidUrl {
                url: display.to_owned(),
                reason: e.to_string(),
            })?;
    let options = options.disable_statement_logging();
    // One probe connection first: it gives the real reason when the server is
    // unreachable (a pool would only report a timeout) and checks what is there.
    let mut conn = match tokio::time::timeout(CONNECT_TIMEOUT, options.connect()).await {
        Err(_) => {
            return Err(unreachable(format!(
                "no answer within {} s",
                CONNECT_TIMEOUT.as_secs()
            )));
        }
        Ok(Err(sqlx::Error::Database(db))) => return Err(unreachable(db.message().to_owned())),
        Ok(Err(e)) => return Err(unreachable(e.to_string())),
        Ok(Ok(conn)) => conn,
    };
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables
         WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
    )
    .fetch_all(&mut conn)
    .await?;
    let version = if tables.iter().any(|t| t == META_TABLE) {
        let row = sqlx::query("SELECT value FROM demarc_meta WHERE key = 'schema_version'")
            .fetch_optional(&mut conn)
            .await?;
        Some(row.map(|r| r.try_get::<String, _>(0)).transpose()?)
    } else {
        None
    };
    let _ = conn.close().await;
    judge_tables(&tables, version, display)?;
    PgPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(CONNECT_TIMEOUT)
        .connect_with(options)
        .await
        .map_err(|e| unreachable(e.to_string()))
}

pub(crate) fn to_ms(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

pub(crate) fn from_ms(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Rejects empty or oversized text fields before they reach the database.
pub(crate) fn check_text(field: &'static str, value: &str, max: usize) -> Result<()> {
    if value.is_empty() {
        return Err(StoreError::invalid(field, "it is empty"));
    }
    if value.len() > max {
        return Err(StoreError::invalid(
            field,
            format!("it is {} bytes, the limit is {max}", value.len()),
        ));
    }
    Ok(())
}
