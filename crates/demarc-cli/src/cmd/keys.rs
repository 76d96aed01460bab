//! `demarc keys create|list|revoke APP`: the gateway keys each application calls with.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::bail;
use demarc_gateway::GatewayConfig;
use demarc_model::estate::AppStatus;

use crate::Outcome;
use crate::cmd::common::{CatalogArg, load_estate};
use crate::cmd::db::{Format, StoreArgs, runtime};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(clap::Subcommand, Debug)]
enum Action {
    /// Create a key for an application and print it, alone, on stdout. It is shown only
    /// once: the store keeps only its SHA-256 hash. The application must be in the estate
    /// (exit 2 otherwise); a warning says when the gateway will not serve it.
    Create {
        /// The application (its id in the estate).
        app: String,
        /// The estate the application must be in.
        #[arg(long, value_name = "FILE", env = "DEMARC_ESTATE")]
        estate: Option<PathBuf>,
        /// A gateway config instead: its `estate:` (or, without one, its `applications`)
        /// decides, and its `serve:` list counts. Takes precedence over `--estate`.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        #[command(flatten)]
        catalog: CatalogArg,
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
    /// Revoke an application's keys (all of them, or only `--key ID`). Running gateways
    /// refuse them within a second (on PostgreSQL at once: the store announces it).
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
            Action::Create {
                app,
                estate,
                config,
                catalog,
                store,
            } => {
                if app.trim().is_empty() || app.chars().any(char::is_control) {
                    bail!("application id `{app}` is empty or contains control characters");
                }
                check_application(&app, estate.as_deref(), config.as_deref(), &catalog)?;
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
                    match &app {
                        Some(app) => eprintln!(
                            "no keys for application `{app}` ({}); create one with `demarc keys create {app}`",
                            known_applications(app, &store.list_api_keys(None).await?)
                        ),
                        None => eprintln!("no keys; create one with `demarc keys create APP`"),
                    }
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
                if keys.is_empty() {
                    bail!(
                        "application `{app}` has no keys in {}; {}",
                        store.location(),
                        known_applications(&app, &store.list_api_keys(None).await?)
                    );
                }
                if targets.is_empty() {
                    match &key {
                        Some(id) => bail!("application `{app}` has no active key `{id}`; see `demarc keys list {app}`"),
                        None => bail!("application `{app}` has no active keys; see `demarc keys list {app}`"),
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

/// Refuses (exit 2) an application the estate, or the gateway config, does not know, and
/// warns on stderr when the gateway will not serve it.
fn check_application(
    app: &str,
    estate: Option<&Path>,
    config: Option<&Path>,
    catalog: &CatalogArg,
) -> anyhow::Result<()> {
    let config = config.map(GatewayConfig::load_applications).transpose()?;
    let estate_path = config.as_ref().and_then(|c| c.estate.clone()).or_else(|| {
        if config.is_none() {
            estate.map(Path::to_path_buf)
        } else {
            None
        }
    });
    let serve_listed = config
        .as_ref()
        .is_some_and(|c| c.serve.iter().any(|s| s == app));
    if let Some(config) = &config {
        let configured: Vec<&str> = config.applications.iter().map(|a| a.id.as_str()).collect();
        if !configured.contains(&app) {
            if estate_path.is_none() {
                bail!(
                    "application `{app}` is not in the gateway config's applications; {}",
                    demarc_model::diag::did_you_mean(app, configured.iter().copied())
                );
            }
            eprintln!(
                "warning: application `{app}` is not among the gateway config's applications: the gateway will not serve it"
            );
        }
    }
    let Some(path) = estate_path else {
        if config.is_some() {
            return Ok(());
        }
        bail!(
            "`demarc keys create` needs the estate the application is in: `--estate FILE` (or `DEMARC_ESTATE`), or the gateway's `--config FILE`"
        );
    };
    let estate = load_estate(&path, &catalog.load()?)?;
    let Some(application) = estate.application(app) else {
        let ids: Vec<&str> = estate
            .applications()
            .iter()
            .map(|a| a.id.as_str())
            .collect();
        bail!(
            "application `{app}` is not in the estate `{}`; {}",
            path.display(),
            demarc_model::diag::did_you_mean(app, ids.iter().copied())
        );
    };
    match application.status {
        AppStatus::Sanctioned | AppStatus::Tolerated => {}
        status if serve_listed => eprintln!(
            "note: application `{app}` is `{}` in the estate; the gateway config's `serve:` lists it, so it will be served",
            status.as_str()
        ),
        status => eprintln!(
            "warning: application `{app}` is `{}` in the estate: the gateway will not serve it unless started with `--serve {app}` or its config's `serve:` lists it",
            status.as_str()
        ),
    }
    Ok(())
}

/// The applications that have keys, and the one `app` was probably meant to be.
fn known_applications(app: &str, keys: &[demarc_store::ApiKey]) -> String {
    let mut known: Vec<&str> = keys.iter().map(|k| k.application.as_str()).collect();
    known.sort_unstable();
    known.dedup();
    if known.is_empty() {
        return "no application has a key yet".into();
    }
    let listed: Vec<String> = known.iter().map(|a| format!("`{a}`")).collect();
    match demarc_model::diag::suggest(app, known.iter().copied()) {
        Some(close) => format!(
            "applications with keys: {}; did you mean `{close}`?",
            listed.join(", ")
        ),
        None => format!("applications with keys: {}", listed.join(", ")),
    }
}

fn date(t: demarc_store::time::OffsetDateTime) -> String {
    let t = t.replace_nanosecond(0).unwrap_or(t);
    t.format(&demarc_store::time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
