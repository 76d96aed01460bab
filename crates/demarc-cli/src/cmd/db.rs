//! `demarc db migrate|status`, and the `--db URL` option every store command shares.

use anyhow::Context;
use demarc_store::Store;

/// Where the store is: shared by every command that reads or writes it.
#[derive(clap::Args, Debug, Clone)]
pub struct StoreArgs {
    /// Store URL: `sqlite://PATH` or a file path (SQLite), or
    /// `postgres://USER[:PASSWORD]@HOST[:PORT]/DB`. Default: the SQLite file
    /// `$XDG_DATA_HOME/demarc/demarc.db` (`~/.local/share/demarc/demarc.db`).
    #[arg(
        long = "db",
        env = "DEMARC_DB",
        value_name = "URL",
        hide_env_values = true
    )]
    pub db: Option<String>,
}

impl StoreArgs {
    /// The URL given, or [`demarc_store::default_url`].
    pub fn url(&self) -> String {
        self.db
            .clone()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(demarc_store::default_url)
    }

    /// Opens the store (migrating it); the error names the store.
    pub async fn open(&self) -> anyhow::Result<Store> {
        let url = self.url();
        tracing::debug!(store = %demarc_store::redact(&url), "opening store");
        Ok(Store::open(&url).await?)
    }
}

/// Output format of the store commands.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
}

/// A runtime for one command: store commands are async, the CLI is not.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(clap::Subcommand, Debug)]
enum Action {
    /// Create the store, or bring its schema up to date (idempotent; every store
    /// command also does this on open).
    Migrate {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Show the backend, schema version and how many rows each table holds.
    Status {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
}

pub fn run(args: Args) -> anyhow::Result<crate::Outcome> {
    runtime()?.block_on(async {
        match args.action {
            Action::Migrate { store } => {
                let store = store.open().await?;
                let status = store.status().await?;
                let line = format!(
                    "{} store `{}` is at schema version {}\n",
                    status.backend, status.location, status.schema_version
                );
                super::common::emit(None, &line)?;
                store.close().await;
            }
            Action::Status { store, format } => {
                let store = store.open().await?;
                let status = store.status().await?;
                store.close().await;
                match format {
                    Format::Json => {
                        let counts: serde_json::Map<String, serde_json::Value> = status
                            .counts
                            .iter()
                            .map(|(t, n)| (t.clone(), (*n).into()))
                            .collect();
                        let json = serde_json::json!({
                            "backend": status.backend,
                            "location": status.location,
                            "schema_version": status.schema_version,
                            "counts": counts,
                        });
                        super::common::emit(None, &(serde_json::to_string_pretty(&json)? + "\n"))?;
                    }
                    Format::Table => {
                        use std::fmt::Write;
                        let mut out = String::new();
                        let _ = writeln!(out, "backend         {}", status.backend);
                        let _ = writeln!(out, "location        {}", status.location);
                        let _ = writeln!(out, "schema version  {}", status.schema_version);
                        for (table, rows) in &status.counts {
                            let _ = writeln!(out, "{table:<18}{rows:>10}");
                        }
                        super::common::emit(None, &out)?;
                    }
                }
            }
        }
        Ok(crate::Outcome::Success)
    })
}
