//! `demarc gateway canary list|rotate`: the canaries the gateway generates and injects into
//! applications' system context (`canary: {inject: true}`), kept in the store.

use std::io::Write;

use anyhow::bail;
use demarc_store::time::OffsetDateTime;

use crate::Outcome;
use crate::cmd::db::{Format, StoreArgs, runtime};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(clap::Subcommand, Debug)]
enum Action {
    /// List canaries: id, application, created, age, retired. The token itself only with
    /// `--show` (it is a secret of the system prompt: anyone who has it can test for leaks,
    /// or avoid them).
    List {
        /// Only this application's canaries.
        #[arg(long, value_name = "APP")]
        app: Option<String>,
        /// Print the tokens too.
        #[arg(long)]
        show: bool,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Replace an application's canary now. The previous one stays blocked for the
    /// application's `canary.grace`; a running gateway injects the new one at once on PostgreSQL, within a minute on SQLite.
    Rotate {
        /// The application.
        #[arg(long, value_name = "APP")]
        app: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

pub fn run(args: Args) -> anyhow::Result<Outcome> {
    runtime()?.block_on(async move {
        match args.action {
            Action::List {
                app,
                show,
                format,
                store,
            } => {
                let store = store.open().await?;
                let canaries = store.list_canaries(app.as_deref()).await?;
                let now = OffsetDateTime::now_utc();
                let mut out = std::io::stdout().lock();
                match format {
                    Format::Json => {
                        let rows: Vec<serde_json::Value> = canaries
                            .iter()
                            .map(|c| {
                                let mut row = serde_json::to_value(c)?;
                                row["age_seconds"] = (now - c.created_at).whole_seconds().into();
                                if show {
                                    row["token"] = c.token.clone().into();
                                }
                                Ok(row)
                            })
                            .collect::<serde_json::Result<_>>()?;
                        writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
                    }
                    Format::Table => {
                        let mut header = format!(
                            "{:<18} {:<28} {:<22} {:<8} {:<22}",
                            "ID", "APPLICATION", "CREATED", "AGE", "RETIRED"
                        );
                        if show {
                            header.push_str(" TOKEN");
                        }
                        writeln!(out, "{}", header.trim_end())?;
                        for c in &canaries {
                            let retired = c.retired_at.map_or_else(|| "-".to_string(), date);
                            let mut line = format!(
                                "{:<18} {:<28} {:<22} {:<8} {:<22}",
                                c.id,
                                c.application,
                                date(c.created_at),
                                age(now - c.created_at),
                                retired
                            );
                            if show {
                                line.push(' ');
                                line.push_str(&c.token);
                            }
                            writeln!(out, "{}", line.trim_end())?;
                        }
                    }
                }
                if canaries.is_empty() {
                    eprintln!(
                        "no canaries{}; the gateway creates one for each application whose config says `canary: {{inject: true}}`",
                        match &app {
                            Some(app) => format!(
                                " for application `{app}` ({})",
                                known_applications(app, &store.list_canaries(None).await?)
                            ),
                            None => String::new(),
                        }
                    );
                }
                Ok(Outcome::Success)
            }
            Action::Rotate { app, store } => {
                if app.trim().is_empty() || app.chars().any(char::is_control) {
                    bail!("application id `{app}` is empty or contains control characters");
                }
                let store = store.open().await?;
                let all = store.list_canaries(None).await?;
                if !all.iter().any(|c| c.application == app) {
                    // Only the gateway knows which applications inject a canary: it creates
                    // each one at start-up. A name it never created one for is a mistake.
                    bail!(
                        "application `{app}` has no canary in {}: the gateway creates one at start-up for each application whose config says `canary: {{inject: true}}`; {}",
                        store.location(),
                        known_applications(&app, &all)
                    );
                }
                let previous = all
                    .into_iter()
                    .filter(|c| c.application == app && c.is_current())
                    .map(|c| c.id)
                    .collect::<Vec<_>>();
                let canary = store.rotate_canary(&app).await?;
                match previous.as_slice() {
                    [] => eprintln!(
                        "created canary `{}` for application `{app}` (its last one was retired)",
                        canary.id
                    ),
                    ids => eprintln!(
                        "rotated the canary of application `{app}`: `{}` replaces `{}`, which stays blocked for the application's grace period; a running gateway injects the new one at once on PostgreSQL, within a minute on SQLite",
                        canary.id,
                        ids.join("`, `")
                    ),
                }
                Ok(Outcome::Success)
            }
        }
    })
}

/// The applications that have canaries, and the one `app` was probably meant to be.
fn known_applications(app: &str, canaries: &[demarc_store::Canary]) -> String {
    let mut known: Vec<&str> = canaries.iter().map(|c| c.application.as_str()).collect();
    known.sort_unstable();
    known.dedup();
    if known.is_empty() {
        return "no application has one yet".into();
    }
    let listed: Vec<String> = known.iter().map(|a| format!("`{a}`")).collect();
    match demarc_model::diag::suggest(app, known.iter().copied()) {
        Some(close) => format!(
            "applications with a canary: {}; did you mean `{close}`?",
            listed.join(", ")
        ),
        None => format!("applications with a canary: {}", listed.join(", ")),
    }
}

fn date(t: OffsetDateTime) -> String {
    let t = t.replace_nanosecond(0).unwrap_or(t);
    t.format(&demarc_store::time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// An age in its largest whole unit: `3d`, `5h`, `12m`, `40s`.
fn age(d: demarc_store::time::Duration) -> String {
    let s = d.whole_seconds().max(0);
    match s {
        s if s >= 86_400 => format!("{}d", s / 86_400),
        s if s >= 3600 => format!("{}h", s / 3600),
        s if s >= 60 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}
