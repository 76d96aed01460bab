//! `demarc history [APP]`: coverage per application over recorded assessment runs.

use demarc_store::time::format_description::well_known::Rfc3339;

use super::db::{Format, StoreArgs, runtime};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Only this application.
    #[arg(value_name = "APP")]
    application: Option<String>,
    #[command(flatten)]
    store: StoreArgs,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

pub fn run(args: Args) -> anyhow::Result<crate::Outcome> {
    let points = runtime()?.block_on(async {
        let store = args.store.open().await?;
        let points = store.history(args.application.as_deref()).await;
        store.close().await;
        anyhow::Ok(points?)
    })?;
    if let (Some(app), true) = (&args.application, points.is_empty()) {
        anyhow::bail!(
            "no recorded assessment covers application `{app}`; record one with `demarc assess ESTATE --record`"
        );
    }
    let output = match args.format {
        Format::Json => serde_json::to_string_pretty(&points)? + "\n",
        Format::Table if points.is_empty() => {
            eprintln!(
                "no assessments recorded yet; record one with `demarc assess ESTATE --record`"
            );
            return Ok(crate::Outcome::Success);
        }
        Format::Table => table(&points),
    };
    super::common::emit(None, &output)?;
    Ok(crate::Outcome::Success)
}

/// One line per run and application, with the coverage trend against the
/// application's previous run.
fn table(points: &[demarc_store::HistoryPoint]) -> String {
    use std::fmt::Write;
    let when = |p: &demarc_store::HistoryPoint| {
        let at = p.at.replace_millisecond(0).unwrap_or(p.at);
        at.format(&Rfc3339).unwrap_or_else(|_| at.to_string())
    };
    let estate_w = points
        .iter()
        .map(|p| p.estate.chars().count())
        .max()
        .unwrap_or(0)
        .max(6);
    let app_w = points
        .iter()
        .map(|p| p.application.chars().count())
        .max()
        .unwrap_or(0)
        .max(11);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<6} {:<20} {:<estate_w$} {:<app_w$} {:>9} {:>8}  TREND",
        "RUN", "WHEN", "ESTATE", "APPLICATION", "COVERED", "COVERAGE"
    );
    let mut previous: std::collections::HashMap<&str, f64> = std::collections::HashMap::new();
    for p in points {
        let ratio = if p.total == 0 {
            0.0
        } else {
            p.covered as f64 / p.total as f64
        };
        let trend = match previous.insert(&p.application, ratio) {
            None => "",
            Some(before) if ratio > before => "up",
            Some(before) if ratio < before => "down",
            Some(_) => "=",
        };
        let _ = writeln!(
            out,
            "{:<6} {:<20} {:<estate_w$} {:<app_w$} {:>9} {:>7.0}%  {trend}",
            p.run,
            when(p),
            p.estate,
            p.application,
            format!("{}/{}", p.covered, p.total),
            ratio * 100.0
        );
    }
    out
}
