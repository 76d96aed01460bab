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
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&points)?),
        Format::Table => {
            if points.is_empty() {
                eprintln!(
                    "no assessments recorded yet; record one with `demarc assess ESTATE --record`"
                );
                return Ok(crate::Outcome::Success);
            }
            println!(
                "{:<6} {:<20} {:<16} {:<24} {:>9} {:>9}  TREND",
                "RUN", "WHEN", "ESTATE", "APPLICATION", "COVERED", "COVERAGE"
            );
            let mut previous: std::collections::HashMap<&str, f64> =
                std::collections::HashMap::new();
            for p in &points {
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
                let when = p.at.format(&Rfc3339).unwrap_or_else(|_| p.at.to_string());
                println!(
                    "{:<6} {:<20} {:<16} {:<24} {:>9} {:>8.0}%  {trend}",
                    p.run,
                    when,
                    p.estate,
                    p.application,
                    format!("{}/{}", p.covered, p.total),
                    ratio * 100.0
                );
            }
        }
    }
    Ok(crate::Outcome::Success)
}
