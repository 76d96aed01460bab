//! `demarc assess ESTATE`: for every customer duty, owner, control and evidence; coverage
//! and gaps; exit 1 when a `--fail-on` check fails.

use std::path::PathBuf;

use anyhow::Context;
use demarc_model::Date;
use demarc_model::assess::{AssessOptions, Assessment, assess};

use super::common::{CatalogArg, check_estate, emit, emit_json, read_bounded};
use crate::Outcome;
use crate::render::{assessment, html};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The estate file (YAML or JSON).
    pub estate: PathBuf,
    #[command(flatten)]
    pub catalog: CatalogArg,
    /// Output format. `json` is a stable interface (see the README).
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Write the report to this file instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Exit with status 1 when the check fails; repeat or separate with commas for several.
    #[arg(long, value_enum, value_delimiter = ',', value_name = "CHECK")]
    pub fail_on: Vec<FailOn>,
    /// Assess as of this date (YYYY-MM-DD) instead of today.
    #[arg(long, value_name = "DATE")]
    pub today: Option<Date>,
    /// Evidence expiring within this many days is reported as expiring.
    #[arg(long, value_name = "DAYS", default_value_t = 30)]
    pub expiring_days: i64,
    /// Keep this run and its per-duty results in the store, for `demarc history`.
    #[arg(long)]
    pub record: bool,
    /// Observations (automatic evidence, gateway traffic) count from this many days before
    /// the assessment date, or from this date (YYYY-MM-DD).
    #[arg(long, value_name = "DAYS|DATE", default_value = "30")]
    pub observed_since: super::observed::Since,
    /// Ignore the store: no automatic evidence, nothing recorded.
    #[arg(long, conflicts_with = "record")]
    pub no_store: bool,
    #[command(flatten)]
    pub store: super::db::StoreArgs,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum Format {
    Table,
    Markdown,
    Csv,
    Json,
    Html,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailOn {
    /// Any customer duty not covered (no owner, no control, no current evidence, evidence
    /// that does not match, a contradiction), unless a current risk acceptance covers it.
    Gaps,
    /// Any duty whose evidence has all expired.
    Expired,
    /// Any customer duty with no owning team.
    Unowned,
}

pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let catalog = args.catalog.load()?;
    let estate_bytes = read_bounded(&args.estate)?;
    let estate = check_estate(&args.estate, &estate_bytes, &catalog)?;
    let mut options = AssessOptions::new(args.today.unwrap_or_else(Date::today));
    options.expiring_within_days = args.expiring_days;
    options.files = super::evidence_files::check(&args.estate, &estate);
    let store = if uses_store(&args) {
        Some(StoreSession::open(&args.store)?)
    } else {
        None
    };
    if let Some(store) = &store {
        let since = args.observed_since.first_day(options.today);
        let (observed, traffic) = super::observed::read_observations(
            &store.runtime,
            &store.store,
            super::observed::start_of(since),
        )?;
        options.observed = observed;
        options.traffic = traffic;
        options.observed_since = Some(since);
        // What recorded discovery runs saw in the same window: traffic per application (for
        // contradictions and bypasses) and services no application covers.
        let seen = store.runtime.block_on(store.store.discovery_traffic(
            super::observed::start_of(since),
            super::observed::start_of(options.today.add_days(1)),
        ))?;
        let through_gateway = estate
            .applications()
            .iter()
            .filter(|a| a.through_gateway)
            .map(|a| a.id.clone())
            .collect();
        let (traffic, unlisted) =
            super::discovery_observed::from_discovery(&seen, &through_gateway);
        options.traffic.extend(traffic);
        options.unlisted = unlisted;
    }
    let report = assess(&estate, &catalog, &options);
    match args.format {
        Format::Json => emit_json(args.out.as_ref(), &report)?,
        format => emit(args.out.as_ref(), &render(&report, &catalog, format)?)?,
    }
    if let (true, Some(store)) = (args.record, &store) {
        let run = store.record(&args.estate.display().to_string(), &estate_bytes, &report)?;
        eprintln!(
            "recorded assessment run {run} in {}",
            demarc_store::redact(&args.store.url())
        );
    }
    Ok(check(&report, &args.fail_on))
}

/// The store is consulted when asked for (`--record`, `--db`, `DEMARC_DB`) or when the
/// default store file exists (the gateway may have written evidence there).
fn uses_store(args: &Args) -> bool {
    if args.no_store {
        return false;
    }
    if args.record || args.store.db.as_deref().is_some_and(|u| !u.is_empty()) {
        return true;
    }
    let url = demarc_store::default_url();
    url.strip_prefix("sqlite://")
        .is_some_and(|path| std::path::Path::new(path).exists())
}

/// An open store and the runtime that drives it, for one command.
struct StoreSession {
    runtime: tokio::runtime::Runtime,
    store: demarc_store::Store,
}

impl StoreSession {
    fn open(args: &super::db::StoreArgs) -> anyhow::Result<Self> {
        let runtime = super::db::runtime()?;
        let store = runtime.block_on(args.open())?;
        Ok(Self { runtime, store })
    }

    /// Keep the run: one result per customer duty.
    fn record(
        &self,
        estate_name: &str,
        estate_bytes: &[u8],
        report: &Assessment,
    ) -> anyhow::Result<i64> {
        let results: Vec<demarc_store::DutyResult> = report
            .applications
            .iter()
            .flat_map(|app| {
                app.duties.iter().map(|d| demarc_store::DutyResult {
                    application: app.id.clone(),
                    area: d.area.clone(),
                    component: Some(d.component.clone()),
                    accountable: d.accountable.label(),
                    owner_team: d.owner_team.clone(),
                    control_status: d.control.as_str().to_string(),
                    evidence_status: d.evidence.as_str().to_string(),
                    covered: d.covered,
                })
            })
            .collect();
        let estate = demarc_store::EstateRecord::from_content(estate_name, estate_bytes);
        let now = demarc_store::time::OffsetDateTime::now_utc();
        // The date the run assessed for (`--today`), kept beside the wall clock.
        let assessed_on = demarc_store::time::Date::from_julian_day(i32::try_from(
            report.date.days_since_epoch() + 2_440_588,
        )?)?;
        Ok(self.runtime.block_on(self.store.record_assessment_on(
            &estate,
            now,
            assessed_on,
            &results,
        ))?)
    }
}

impl Drop for StoreSession {
    fn drop(&mut self) {
        self.runtime.block_on(self.store.close());
    }
}

pub fn render(
    report: &Assessment,
    catalog: &demarc_model::CheckedCatalog,
    format: Format,
) -> anyhow::Result<String> {
    Ok(match format {
        Format::Json => format!(
            "{}\n",
            serde_json::to_string_pretty(report).context("cannot encode the report")?
        ),
        Format::Html => html::assessment_page(report, catalog),
        Format::Table => assessment::table(report, crate::ui::stdout_color()),
        Format::Markdown => assessment::markdown(report),
        Format::Csv => assessment::csv(report),
    })
}

/// Apply the `--fail-on` checks, saying on stderr which failed.
fn check(report: &Assessment, fail_on: &[FailOn]) -> Outcome {
    let s = &report.summary;
    let mut failed = false;
    for check in fail_on {
        let (count, what) = match check {
            // A current risk acceptance answers for its duty's gaps.
            FailOn::Gaps => (s.gaps - s.risk_accepted, "duties with gaps"),
            FailOn::Expired => (s.evidence_expired, "duties whose evidence expired"),
            FailOn::Unowned => (s.unowned, "customer duties with no owning team"),
        };
        if count > 0 {
            eprintln!("check failed: {count} {what}");
            failed = true;
        }
    }
    if failed {
        Outcome::CheckFailed
    } else {
        Outcome::Success
    }
}
