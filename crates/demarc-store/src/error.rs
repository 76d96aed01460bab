//! Typed errors of the store. The CLI maps every error to exit code 2; the
//! [`StoreError::is_unusable_store`] family additionally guarantees that nothing
//! was written to the store or the file named.

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL names no backend demarc knows.
    #[error("invalid store url `{url}`: {reason}")]
    InvalidUrl { url: String, reason: String },
    /// The file or database exists but holds something other than a demarc store.
    #[error("`{location}` is not a demarc store: {reason}; nothing was changed")]
    NotAStore { location: String, reason: String },
    /// The SQLite file is damaged.
    #[error("`{location}` is corrupt ({detail}); nothing was changed, restore it from a backup")]
    Corrupt { location: String, detail: String },
    /// The store cannot be written (file permissions or a read-only file system).
    #[error(
        "`{location}` is read-only ({detail}); nothing was changed, make it writable or use another `--db`"
    )]
    ReadOnly { location: String, detail: String },
    /// The PostgreSQL server could not be reached or refused the connection.
    #[error("cannot reach PostgreSQL at `{location}`: {detail}")]
    Unreachable { location: String, detail: String },
    /// The store was written by a newer demarc.
    #[error(
        "`{location}` has schema version {found}, newer than this demarc supports ({supported}); upgrade demarc, nothing was changed"
    )]
    SchemaTooNew {
        location: String,
        found: i64,
        supported: i64,
    },
    /// A value handed to the store breaks one of its limits.
    #[error("invalid {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    /// The audit chain is broken where an operation needs it intact (e.g. pruning).
    #[error("audit chain `{chain}` is broken at seq {seq}; run `demarc audit verify`")]
    ChainBroken { chain: String, seq: i64 },
    /// A discovery input (by its content hash) or an ingest batch was recorded before.
    #[error(
        "`{input}` was recorded before ({earlier}); a log is recorded once, so nothing was recorded"
    )]
    AlreadyRecorded { input: String, earlier: String },
    /// Any other database error.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// File system error around the SQLite file.
    #[error("cannot access `{path}`: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

impl StoreError {
    /// True for the errors that mean "this store cannot be used at all": not a
    /// demarc store, corrupt, read-only, unreachable, or a newer schema. In each
    /// case the store refused before writing anything.
    pub fn is_unusable_store(&self) -> bool {
        matches!(
            self,
            StoreError::NotAStore { .. }
                | StoreError::Corrupt { .. }
                | StoreError::ReadOnly { .. }
                | StoreError::Unreachable { .. }
                | StoreError::SchemaTooNew { .. }
        )
    }

    /// SQLite's SQLITE_BUSY (primary result code 5): another connection holds a lock that
    /// SQLite would not wait for.
    pub(crate) fn is_sqlite_busy(&self) -> bool {
        match self {
            StoreError::Database(sqlx::Error::Database(db)) => db
                .code()
                .and_then(|c| c.parse::<i32>().ok())
                .is_some_and(|c| c & 0xff == 5),
            _ => false,
        }
    }

    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        StoreError::Invalid {
            field,
            reason: reason.into(),
        }
    }
}

/// Result alias of this crate.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
