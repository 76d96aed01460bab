//! `demarc tokens create|list|revoke`: the access tokens of `demarc serve` (the dashboard and
//! its API), each with a role: `ingest` (log shippers), `viewer`, `auditor` or `admin`.

use std::io::Write;

use anyhow::bail;

use crate::Outcome;
use crate::cmd::db::{Format, StoreArgs, runtime};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum RoleArg {
    /// Only `POST /api/v1/discovery/ingest`: a log shipper's token; reads nothing.
    Ingest,
    /// Every page and endpoint but the admin ones; user names pseudonymised.
    Viewer,
    /// As viewer, plus user names and raw evidence links.
    Auditor,
    /// As auditor, plus gateway keys and recording assessment runs.
    Admin,
}

#[derive(clap::Subcommand, Debug)]
enum Action {
    /// Create a token and print it, alone, on stdout. It is shown only once: the store keeps
    /// only its SHA-256 hash.
    Create {
        #[arg(long, value_enum)]
        role: RoleArg,
        /// Who or what the token is for (shown in lists and in the audit trail).
        #[arg(long, value_name = "TEXT", default_value = "dashboard")]
        label: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List tokens (never the secrets): id, role, label, visible prefix, created, revoked.
    List {
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Revoke a token; its browser sessions end at once.
    Revoke {
        /// The token's id (see `demarc tokens list`).
        id: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

pub fn run(args: Args) -> anyhow::Result<Outcome> {
    runtime()?.block_on(async move {
        match args.action {
            Action::Create { role, label, store } => {
                let role = match role {
                    RoleArg::Ingest => demarc_store::Role::Ingest,
                    RoleArg::Viewer => demarc_store::Role::Viewer,
                    RoleArg::Auditor => demarc_store::Role::Auditor,
                    RoleArg::Admin => demarc_store::Role::Admin,
                };
                if label.trim().is_empty() || label.chars().any(char::is_control) {
                    bail!("label `{label}` is empty or contains control characters");
                }
                let store = store.open().await?;
                let created = store.create_serve_token(role, &label).await?;
                let mut out = std::io::stdout().lock();
                writeln!(out, "{}", created.secret)?;
                out.flush()?;
                eprintln!(
                    "created {role} token `{}` ({label}) in {}; it is shown only once, keep it now",
                    created.token.id,
                    store.location()
                );
                Ok(Outcome::Success)
            }
            Action::List { format, store } => {
                let store = store.open().await?;
                let tokens = store.list_serve_tokens().await?;
                let mut out = std::io::stdout().lock();
                match format {
                    Format::Json => writeln!(out, "{}", serde_json::to_string_pretty(&tokens)?)?,
                    Format::Table => {
                        writeln!(
                            out,
                            "{:<18} {:<8} {:<24} {:<14} {:<12} REVOKED",
                            "ID", "ROLE", "LABEL", "PREFIX", "CREATED"
                        )?;
                        for t in &tokens {
                            let revoked = t
                                .revoked_at
                                .map_or_else(|| "-".to_owned(), |r| r.date().to_string());
                            writeln!(
                                out,
                                "{:<18} {:<8} {:<24} {:<14} {:<12} {revoked}",
                                t.id,
                                t.role,
                                t.label,
                                t.prefix,
                                t.created_at.date()
                            )?;
                        }
                    }
                }
                if tokens.is_empty() {
                    eprintln!("no tokens; create one with `demarc tokens create --role viewer`");
                }
                Ok(Outcome::Success)
            }
            Action::Revoke { id, store } => {
                let store = store.open().await?;
                if !store.list_serve_tokens().await?.iter().any(|t| t.id == id) {
                    bail!(
                        "no token `{id}` in {}; see `demarc tokens list`",
                        store.location()
                    );
                }
                if store.revoke_serve_token(&id).await? {
                    eprintln!("revoked token `{id}`; its sessions ended");
                } else {
                    eprintln!("token `{id}` was already revoked");
                }
                Ok(Outcome::Success)
            }
        }
    })
}
