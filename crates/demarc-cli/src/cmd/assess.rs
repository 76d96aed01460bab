//! `demarc assess ESTATE`: for every customer duty, owner, control and evidence; coverage
//! and gaps; exit 1 when a `--fail-on` check fails.

use std::path::PathBuf;

use anyhow::Context;
use demarc_model::Date;
use demarc_model::assess::{AssessOptions, Assessment, Summary, assess, assess_each};

use super::common::{CatalogArg, check_estate, emit, emit_json, read_bounded};
use crate::Outcome;
use crate::render::{csv, html, markdown, table};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The estate file (YAML or JSON).
    pub estate: PathBuf,
    #[command(flatten)]
    pub catalog: CatalogArg,
    /// Output format. `json` is a stable interface (docs/json.md).
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
    /// Any duty whose catalog cell is model-dependent and not resolved by the estate's
    /// `owners`.
    Unresolved,
}

pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let catalog = args.catalog.load()?;
    let today = args.today.unwrap_or_else(Date::today);
    let since = args.observed_since.first_day(today);
    // The store is read on its own thread while the estate is parsed and its evidence files
    // hashed: the two take comparable time on a large estate.
    let reading = uses_store(&args).then(|| {
        let store_args = args.store.clone();
        std::thread::spawn(move || -> anyhow::Result<_> {
            let store = StoreSession::open(&store_args)?;
            let observations =
                store
                    .runtime
                    .block_on(demarc_serve::assessing::StoreObservations::read(
                        &store.store,
                        since,
                        today,
                    ))?;
            Ok((store, observations))
        })
    });
    let estate_bytes = read_bounded(&args.estate)?;
    let estate = check_estate(&args.estate, &estate_bytes, &catalog)?;
    let mut options = AssessOptions::new(today);
    options.expiring_within_days = args.expiring_days;
    options.files = demarc_serve::assessing::check_evidence_files(&args.estate, &estate);
    let store = match reading {
        None => None,
        Some(thread) => {
            let (store, observations) = thread
                .join()
                .map_err(|_| anyhow::anyhow!("reading the store failed"))??;
            observations.apply(&estate, &mut options);
            Some(store)
        }
    };
    let recording = args.record && store.is_some();
    let (summary, results) = match args.format {
        // JSON is written while the assessment runs: a report of any size is never held.
        Format::Json => {
            let streamed = StreamedJson::new(&estate, &catalog, &options, recording);
            emit_json(args.out.as_ref(), &streamed)?;
            streamed.finish()?
        }
        format => {
            let report = assess(&estate, &catalog, &options);
            emit(args.out.as_ref(), &render(&report, &catalog, format)?)?;
            let results = report
                .applications
                .iter()
                .flat_map(demarc_serve::assessing::duty_results)
                .collect();
            (report.summary, results)
        }
    };
    if let (true, Some(store)) = (args.record, &store) {
        let run = store.record(
            &args.estate.display().to_string(),
            &estate_bytes,
            options.today,
            &results,
        )?;
        eprintln!(
            "recorded assessment run {run} in {}",
            demarc_store::redact(&args.store.url())
        );
    }
    Ok(check(&summary, &args.fail_on))
}

/// The JSON report, serialised while the assessment runs: each application is written as
/// soon as it is assessed, then the summary. The same document as serialising [`Assessment`]
/// (a test compares the two).
struct StreamedJson<'a> {
    estate: &'a demarc_model::CheckedEstate,
    catalog: &'a demarc_model::CheckedCatalog,
    options: &'a AssessOptions,
    /// Per-duty results kept for `--record`.
    recording: bool,
    done: std::cell::RefCell<Option<(Summary, Vec<demarc_store::DutyResult>)>>,
}

impl<'a> StreamedJson<'a> {
    fn new(
        estate: &'a demarc_model::CheckedEstate,
        catalog: &'a demarc_model::CheckedCatalog,
        options: &'a AssessOptions,
        recording: bool,
    ) -> Self {
        Self {
            estate,
            catalog,
            options,
            recording,
            done: std::cell::RefCell::new(None),
        }
    }

    fn finish(self) -> anyhow::Result<(Summary, Vec<demarc_store::DutyResult>)> {
        self.done
            .into_inner()
            .context("the report was not written to the end")
    }
}

impl serde::Serialize for StreamedJson<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let o = self.options;
        let mut doc = serializer.serialize_struct("Assessment", 8)?;
        doc.serialize_field(
            "catalog",
            &demarc_model::assess::CatalogRef {
                id: self.catalog.id().to_string(),
                version: self.catalog.catalog().version.clone(),
            },
        )?;
        doc.serialize_field("organisation", &self.estate.estate().organisation.name)?;
        doc.serialize_field("date", &o.today)?;
        doc.serialize_field("expiring_within_days", &o.expiring_within_days)?;
        match &o.observed_since {
            Some(since) => doc.serialize_field("observed_since", since)?,
            None => doc.skip_field("observed_since")?,
        }
        doc.serialize_field("applications", &Applications(self))?;
        if o.unlisted.is_empty() {
            doc.skip_field("unlisted_services")?;
        } else {
            doc.serialize_field("unlisted_services", &o.unlisted)?;
        }
        match &*self.done.borrow() {
            Some((summary, _)) => doc.serialize_field("summary", summary)?,
            None => return Err(serde::ser::Error::custom("no summary")),
        }
        doc.end()
    }
}

/// The `applications` array of [`StreamedJson`]: assessed and written one by one.
struct Applications<'r, 'a>(&'r StreamedJson<'a>);

impl serde::Serialize for Applications<'_, '_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let report = self.0;
        let mut seq = serializer.serialize_seq(Some(report.estate.applications().len()))?;
        let mut failed = None;
        let mut results = Vec::new();
        let summary = assess_each(report.estate, report.catalog, report.options, |app| {
            if failed.is_none()
                && let Err(e) = seq.serialize_element(&app)
            {
                failed = Some(e);
            }
            if report.recording {
                results.extend(demarc_serve::assessing::duty_results(&app));
            }
        });
        if let Some(e) = failed {
            return Err(e);
        }
        *report.done.borrow_mut() = Some((summary, results));
        seq.end()
    }
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
        date: Date,
        results: &[demarc_store::DutyResult],
    ) -> anyhow::Result<i64> {
        let estate = demarc_store::EstateRecord::from_content(estate_name, estate_bytes);
        let now = demarc_store::time::OffsetDateTime::now_utc();
        // The date the run assessed for (`--today`), kept beside the wall clock.
        let assessed_on = demarc_store::time::Date::from_julian_day(i32::try_from(
            date.days_since_epoch() + 2_440_588,
        )?)?;
        Ok(self.runtime.block_on(self.store.record_assessment_on(
            &estate,
            now,
            assessed_on,
            results,
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
        Format::Html => {
            html::assessment_page(report, catalog).context("cannot write the HTML report")?
        }
        Format::Table => table::assessment(report, crate::ui::stdout_color()),
        Format::Markdown => markdown::assessment(report),
        Format::Csv => csv::assessment(report).context("cannot write the CSV report")?,
    })
}

/// Apply the `--fail-on` checks, saying on stderr which failed.
fn check(s: &Summary, fail_on: &[FailOn]) -> Outcome {
    let mut failed = false;
    for check in fail_on {
        let (count, what) = match check {
            // A current risk acceptance answers for its duty's gaps.
            FailOn::Gaps => (s.gaps - s.risk_accepted, "duties with gaps"),
            FailOn::Expired => (s.evidence_expired, "duties whose evidence expired"),
            FailOn::Unowned => (s.unowned, "customer duties with no owning team"),
            FailOn::Unresolved => (
                s.unresolved,
                "duties whose model-dependent owner the estate does not resolve",
            ),
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use demarc_model::assess::{ObservedTraffic, UnlistedService};
    use demarc_model::{CheckedCatalog, CheckedEstate, ObservationKind};

    #[test]
    fn the_streamed_report_is_the_assessment() {
        let catalog = CheckedCatalog::default_catalog().unwrap();
        let estate = CheckedEstate::from_bytes(
            "bank-estate.yaml",
            include_bytes!("../../../../examples/bank-estate.yaml"),
            &catalog,
        )
        .unwrap()
        .estate;
        let day: Date = "2026-12-02".parse().unwrap();
        let mut options = AssessOptions::new(day);
        options.observed_since = Some(day.add_days(-30));
        options.traffic.push(ObservedTraffic {
            application: "consumer-chatgpt".into(),
            kind: ObservationKind::GatewayTraffic,
            source: "gateway@host:1:2".into(),
            requests: 3,
            first_seen: day,
            last_seen: day,
            detail: None,
        });
        options.unlisted.push(UnlistedService {
            service: "deepseek".into(),
            tenant: None,
            status: "shadow".into(),
            requests: 1,
            blocked: 0,
            identities: 1,
            first_seen: day,
            last_seen: day,
            source: "discovery run 1 (access.log)".into(),
        });
        for with_window in [true, false] {
            if !with_window {
                options.observed_since = None;
                options.unlisted.clear();
            }
            let streamed = StreamedJson::new(&estate, &catalog, &options, true);
            let text = serde_json::to_string(&streamed).unwrap();
            let (summary, results) = streamed.finish().unwrap();
            let whole = assess(&estate, &catalog, &options);
            assert_eq!(
                serde_json::from_str::<serde_json::Value>(&text).unwrap(),
                serde_json::to_value(&whole).unwrap()
            );
            assert_eq!(summary.duties, results.len());
        }
    }
}
