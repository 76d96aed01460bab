//! `demarc keys create|list|revoke APP`: the gateway keys each application calls with.

use std::io::Write;

use anyhow::bail;

use crate::Outcome;
use crate::cmd::db::{Format, StoreArgs, runtime};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(clap::Subcommand, Debug)]
enum Action {
    /// Create a key for an application and print it, alone, on stdout. It is shown only
    /// once: the store keeps only its SHA-256 hash.
    Create {
        /// The application (its id in the estate).
        app: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List keys (never the secrets): id, application, visible prefix, created, revoked.
    List {
        /// Only this application's keys.
        app: Option<String>,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Revoke an application's keys (all of them, or only `--key ID`). A running gateway
    /// refuses them within a second.
    Revoke {
        /// The application.
        app: String,
        /// Only the key with this id (see `demarc keys list`).
        #[arg(long, value_name = "ID")]
        key: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
}

pub fn run(args: Args) -> anyhow::Result<Outcome> {
    runtime()?.block_on(async move {
        match args.action {
            Action::Create { app, store } => {
                if app.trim().is_empty() || app.chars().any(char::is_control) {
                    bail!("application id `{app}` is empty or contains control characters");
                }
                let store = store.open().await?;
                let created = store.create_api_key(&app).await?;
                let mut out = std::io::stdout().lock();
                writeln!(out, "{}", created.secret)?;
                out.flush()?;
                eprintln!(
                    "created key `{}` for application `{app}` in {}; it is shown only once, keep it now",
                    created.key.id,
                    store.location()
                );
                Ok(Outcome::Success)
            }
            Action::List { app, format, store } => {
                let store = store.open().await?;
                let keys = store.list_api_keys(app.as_deref()).await?;
                let mut out = std::io::stdout().lock();
                match format {
                    Format::Json => writeln!(out, "{}", serde_json::to_string_pretty(&keys)?)?,
                    Format::Table => {
                        writeln!(out, "{:<18} {:<28} {:<14} {:<22} REVOKED", "ID", "APPLICATION", "PREFIX", "CREATED")?;
                        for k in &keys {
                            let revoked = k.revoked_at.map_or_else(|| "-".to_string(), date);
                            writeln!(out, "{:<18} {:<28} {:<14} {:<22} {revoked}", k.id, k.application, k.prefix, date(k.created_at))?;
                        }
                    }
                }
                if keys.is_empty() {
                    eprintln!("no keys; create one with `demarc keys create APP`");
                }
                Ok(Outcome::Success)
            }
            Action::Revoke { app, key, store } => {
                let store = store.open().await?;
                let keys = store.list_api_keys(Some(&app)).await?;
                let targets: Vec<_> = keys
                    .iter()
                    .filter(|k| k.is_active() && key.as_ref().is_none_or(|id| *id == k.id))
                    .collect();
                if targets.is_empty() {
                    match &key {
                        Some(id) => bail!("application `{app}` has no active key `{id}`; see `demarc keys list {app}`"),
                        None => bail!("application `{app}` has no active keys; see `demarc keys list`"),
                    }
                }
                for k in &targets {
                    store.revoke_api_key(&k.id).await?;
                    eprintln!("revoked key `{}` ({}) of application `{app}`", k.id, k.prefix);
                }
                Ok(Outcome::Success)
            }
        }
    })
}

fn date(t: demarc_store::time::OffsetDateTime) -> String {
    let t = t.replace_nanosecond(0).unwrap_or(t);
    t.format(&demarc_store::time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
