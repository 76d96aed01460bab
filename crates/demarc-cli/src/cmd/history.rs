//! `demarc history [APP]`: coverage per application over recorded assessment runs, with the
//! date each run assessed for; `demarc history --diff FROM TO`: what changed per duty between
//! two runs.

use demarc_store::assessments::{ChangeKind, DutyChange, RunDiff, RunInfo};
use demarc_store::time::format_description::well_known::Rfc3339;
use demarc_store::{DutyResult, HistoryPoint};

use super::common::count;
use super::db::{Format, StoreArgs, runtime};
use crate::render::table::{Cell, Style, Table};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Only this application.
    #[arg(value_name = "APP")]
    application: Option<String>,
    /// Compare two recorded runs (ids from `demarc history`): the duties whose accountable
    /// party, owner, control, evidence or verdict changed, and those added or removed.
    #[arg(long, num_args = 2, value_names = ["FROM", "TO"])]
    diff: Option<Vec<i64>>,
    #[command(flatten)]
    store: StoreArgs,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

pub fn run(args: Args) -> anyhow::Result<crate::Outcome> {
    if let Some(runs) = &args.diff {
        let (from, to) = match runs.as_slice() {
            [from, to] => (*from, *to),
            _ => anyhow::bail!("`--diff` takes two run ids: FROM TO"),
        };
        return diff(&args, from, to);
    }
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

fn when(at: demarc_store::time::OffsetDateTime) -> String {
    let at = at.replace_millisecond(0).unwrap_or(at);
    at.format(&Rfc3339).unwrap_or_else(|_| at.to_string())
}

fn day(d: Option<demarc_store::time::Date>) -> String {
    d.map_or_else(
        || "-".into(),
        |d| format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day()),
    )
}

/// One line per run and application, with the coverage trend against the
/// application's previous run.
fn table(points: &[HistoryPoint]) -> String {
    use std::fmt::Write;
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
        "{:<6} {:<20} {:<10} {:<estate_w$} {:<app_w$} {:>9} {:>8}  TREND",
        "RUN", "WHEN", "ASSESSED", "ESTATE", "APPLICATION", "COVERED", "COVERAGE"
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
            "{:<6} {:<20} {:<10} {:<estate_w$} {:<app_w$} {:>9} {:>7.0}%  {trend}",
            p.run,
            when(p.at),
            day(p.assessed_on),
            p.estate,
            p.application,
            format!("{}/{}", p.covered, p.total),
            ratio * 100.0
        );
    }
    out
}

fn diff(args: &Args, from: i64, to: i64) -> anyhow::Result<crate::Outcome> {
    let mut report = runtime()?.block_on(async {
        let store = args.store.open().await?;
        let diff = store.diff_runs(from, to).await;
        store.close().await;
        anyhow::Ok(diff?)
    })?;
    if let Some(app) = &args.application {
        report.changes.retain(|c| &c.application == app);
    }
    let output = match args.format {
        Format::Json => serde_json::to_string_pretty(&report)? + "\n",
        Format::Table => diff_table(&report),
    };
    super::common::emit(None, &output)?;
    Ok(crate::Outcome::Success)
}

fn run_line(r: &RunInfo) -> String {
    format!(
        "run {} at {}, assessed for {}, estate `{}` ({})",
        r.run,
        when(r.at),
        day(r.assessed_on),
        r.estate,
        count(usize::try_from(r.duties).unwrap_or(0), "duty")
    )
}

fn diff_table(d: &RunDiff) -> String {
    let mut s = format!("from {}\n  to {}\n", run_line(&d.from), run_line(&d.to));
    if d.from.estate_sha256 != d.to.estate_sha256 {
        s.push_str("the estate file changed between the two runs\n");
    }
    let n = |k: ChangeKind| d.changes.iter().filter(|c| c.change == k).count();
    s.push_str(&format!(
        "{} changed, {} added, {} removed, {} unchanged\n",
        count(n(ChangeKind::Changed), "duty"),
        n(ChangeKind::Added),
        n(ChangeKind::Removed),
        d.unchanged
    ));
    if d.changes.is_empty() {
        return s;
    }
    let mut t = Table::new(&[
        "application",
        "area",
        "component",
        "change",
        "before",
        "after",
    ]);
    for c in &d.changes {
        let (before, after) = describe_change(c);
        t.row(vec![
            c.application.clone().into(),
            c.area.clone().into(),
            c.component.clone().unwrap_or_else(|| "-".into()).into(),
            Cell::styled(
                match c.change {
                    ChangeKind::Added => "added",
                    ChangeKind::Removed => "removed",
                    ChangeKind::Changed => "changed",
                },
                Style::Bold,
            ),
            before.into(),
            after.into(),
        ]);
    }
    s.push('\n');
    s.push_str(&t.render(crate::ui::stdout_color()));
    s
}

/// The before and after cells: for a changed duty only what changed, for an added or removed
/// one the whole duty.
fn describe_change(c: &DutyChange) -> (String, String) {
    let whole = |r: &Option<DutyResult>| {
        r.as_ref().map_or_else(
            || "-".to_string(),
            |r| {
                ["accountable", "owner", "control", "evidence", "covered"]
                    .iter()
                    .map(|f| format!("{f} {}", field(r, f)))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        )
    };
    match (c.change, &c.before, &c.after) {
        (ChangeKind::Changed, Some(b), Some(a)) => {
            let side = |r: &DutyResult| {
                c.fields
                    .iter()
                    .map(|f| format!("{f} {}", field(r, f)))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            (side(b), side(a))
        }
        _ => (whole(&c.before), whole(&c.after)),
    }
}

fn field(r: &DutyResult, name: &str) -> String {
    match name {
        "accountable" => r.accountable.clone(),
        "owner" => r.owner_team.clone().unwrap_or_else(|| "(none)".into()),
        "control" => r.control_status.clone(),
        "evidence" => r.evidence_status.clone(),
        _ => if r.covered { "yes" } else { "no" }.into(),
    }
}
