//! `demarc discover LOG...`: which GenAI services people use, from proxy, DNS and gateway
//! logs; who uses them, how much data went out, and whether the estate allows them.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use demarc_discover::report::{AppStatus, KnownApplication, Report, Status};
use demarc_discover::{Catalog, FieldMap, Format, Progress, ScanOptions, ScanResult, input, scan};

use super::common;
use super::db::StoreArgs;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Table,
    Json,
    Csv,
    Html,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FailOn {
    /// Services not in the estate at all.
    Shadow,
    /// Shadow services and those the estate marks unsanctioned.
    Unsanctioned,
    /// The above and services the estate lists as discovered (not yet reviewed).
    Discovered,
    /// Every service that is not sanctioned.
    Tolerated,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Log files, globs (`'logs/*.gz'`) or `-` for stdin; gzip and zstd are read as such.
    #[arg(value_name = "LOG", required = true)]
    logs: Vec<String>,
    /// Estate file: its applications' endpoints and status classify each service found.
    #[arg(long, value_name = "FILE")]
    estate: Option<PathBuf>,
    /// Extra GenAI service catalog file(s), YAML or JSON, extending the built-in one.
    #[arg(long = "catalog", value_name = "FILE")]
    catalogs: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Table)]
    format: Output,
    /// Read every log as this format instead of detecting it: zeek, zeek-json, squid,
    /// route53, cloudflare, zscaler, csv, tsv, jsonl.
    #[arg(long, value_name = "FORMAT", value_parser = parse_log_format)]
    log_format: Option<Format>,
    /// Field mapping for csv, tsv and jsonl logs: `host=COL,user=COL,src=COL,time=COL,sent=COL,received=COL,url=COL`.
    #[arg(long, value_name = "MAPPING", value_parser = FieldMap::parse)]
    map: Option<FieldMap>,
    /// Exit 1 when a service at this level or worse is in use.
    #[arg(long, value_enum, value_name = "LEVEL")]
    fail_on: Option<FailOn>,
    /// Stop at the first malformed line or unreadable log (exit 2).
    #[arg(long)]
    strict: bool,
    /// Worker threads (default: the number of CPUs).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// A request sending at least this many bytes is flagged as a large upload.
    #[arg(long, value_name = "BYTES", default_value_t = 10 << 20)]
    large_upload: u64,
    /// Record the findings (service x user) as a discovery run in the store.
    #[arg(long)]
    record: bool,
    #[command(flatten)]
    store: StoreArgs,
}

fn parse_log_format(name: &str) -> Result<Format, String> {
    Format::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = Format::ALL.iter().map(|f| f.name()).collect();
        format!(
            "unknown log format `{name}`; use one of {}",
            names.join(", ")
        )
    })
}

pub fn run(args: Args) -> anyhow::Result<crate::Outcome> {
    let catalog = load_catalog(&args.catalogs)?;
    let apps = match &args.estate {
        Some(path) => known_applications(path)?,
        None => Vec::new(),
    };
    let inputs = input::expand(&args.logs)?;
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .clamp(1, 256);
    let options = ScanOptions {
        threads,
        format: args.log_format,
        map: args.map.clone(),
        large_upload: args.large_upload,
        strict: args.strict,
        ..ScanOptions::default()
    };
    let result = scan_with_progress(&inputs, &catalog, &options);

    for e in &result.errors {
        eprintln!("warning: `{}`: {}", e.file, e.message);
    }
    if result.malformed > 0 {
        let first: Vec<String> = result
            .malformed_examples
            .iter()
            .take(5)
            .map(|m| format!("  `{}` line {}: {}", m.file, m.line, m.reason))
            .collect();
        eprintln!(
            "warning: {} skipped; the first:\n{}",
            common::count(result.malformed, "malformed line"),
            first.join("\n")
        );
    }
    if args.strict && (result.malformed > 0 || !result.errors.is_empty()) {
        match (result.malformed_examples.first(), result.errors.first()) {
            (Some(m), _) => bail!(
                "`{}` line {}: {} (stopped by `--strict`)",
                m.file,
                m.line,
                m.reason
            ),
            (None, Some(e)) => bail!("`{}`: {} (stopped by `--strict`)", e.file, e.message),
            (None, None) => bail!("stopped by `--strict`"),
        }
    }
    if result.files.iter().all(|f| f.format.is_none()) {
        bail!("no log could be read; see the warnings above");
    }

    let report = Report::build(&catalog, &result, &apps);
    let text = match args.format {
        Output::Json => serde_json::to_string_pretty(&report)? + "\n",
        Output::Csv => report.to_csv(),
        Output::Html => report.to_html(),
        Output::Table => table(&report),
    };
    common::emit(None, &text)?;
    eprintln!(
        "{} in {}, {} malformed; {} in use",
        common::count(result.records, "record"),
        common::count(result.files.len(), "file"),
        result.malformed,
        common::count(report.services.len(), "GenAI service")
    );

    if args.record {
        record(&args, &catalog, &result, &report)?;
    }

    let threshold = args.fail_on.map(|f| match f {
        FailOn::Shadow => Status::Shadow,
        FailOn::Unsanctioned => Status::Unsanctioned,
        FailOn::Discovered => Status::Discovered,
        FailOn::Tolerated => Status::Tolerated,
    });
    if let Some(t) = threshold {
        let offending: Vec<&str> = report.at_or_below(t).map(|s| s.id.as_str()).collect();
        if !offending.is_empty() {
            eprintln!(
                "check failed: {} at `{}` or worse: {}",
                common::count(offending.len(), "service"),
                t.as_str(),
                offending.join(", ")
            );
            return Ok(crate::Outcome::CheckFailed);
        }
    }
    Ok(crate::Outcome::Success)
}

fn load_catalog(files: &[PathBuf]) -> anyhow::Result<Catalog> {
    let mut texts = Vec::new();
    for path in files {
        let bytes = common::read_bounded(path)?;
        let text = String::from_utf8(bytes)
            .with_context(|| format!("`{}` is not UTF-8 text", path.display()))?;
        texts.push((path.display().to_string(), text));
    }
    let refs: Vec<(&str, &str)> = texts
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    Ok(Catalog::builtin_with(&refs)?)
}

/// The estate's applications as discovery sees them.
fn known_applications(path: &std::path::Path) -> anyhow::Result<Vec<KnownApplication>> {
    let spec = std::env::var("DEMARC_CATALOG")
        .unwrap_or_else(|_| demarc_model::catalog::DEFAULT_CATALOG.to_owned());
    let responsibility = common::load_catalog(&spec)?;
    let estate = common::load_estate(path, &responsibility)?;
    Ok(estate
        .applications()
        .iter()
        .map(|a| KnownApplication {
            id: a.id.clone(),
            status: match a.status {
                demarc_model::estate::AppStatus::Sanctioned => AppStatus::Sanctioned,
                demarc_model::estate::AppStatus::Tolerated => AppStatus::Tolerated,
                demarc_model::estate::AppStatus::Unsanctioned => AppStatus::Unsanctioned,
                demarc_model::estate::AppStatus::Discovered => AppStatus::Discovered,
            },
            endpoints: a.endpoints.clone(),
        })
        .collect())
}

/// Run the scan; on a terminal, show bytes, records and rate while it runs.
fn scan_with_progress(
    inputs: &[demarc_discover::Input],
    catalog: &Catalog,
    options: &ScanOptions,
) -> ScanResult {
    let progress = Progress::default();
    let bar = crate::ui::progress(None, "{spinner} {msg}");
    if bar.is_hidden() {
        return scan(inputs, catalog, options, &progress);
    }
    let started = Instant::now();
    std::thread::scope(|s| {
        let job = s.spawn(|| scan(inputs, catalog, options, &progress));
        while !job.is_finished() {
            let bytes = progress.bytes.load(Ordering::Relaxed);
            let records = progress.records.load(Ordering::Relaxed);
            let secs = started.elapsed().as_secs_f64().max(1e-3);
            bar.set_message(format!(
                "{:.1} MiB, {records} records, {:.0} MiB/s",
                bytes as f64 / 1048576.0,
                bytes as f64 / 1048576.0 / secs
            ));
            std::thread::sleep(Duration::from_millis(100));
        }
        bar.finish_and_clear();
        job.join().unwrap_or_default()
    })
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

fn table(report: &Report) -> String {
    use std::fmt::Write;
    let color = crate::ui::stdout_color();
    let mut out = String::new();
    if report.services.is_empty() {
        out.push_str("no GenAI service found in the logs\n");
        return out;
    }
    let _ = writeln!(
        out,
        "{:<13} {:<28} {:<18} {:>9} {:>6} {:>10} {:>10} {:>5}  TOP USER",
        "STATUS", "SERVICE", "CATEGORY", "REQUESTS", "USERS", "SENT", "RECEIVED", "RISK"
    );
    for s in &report.services {
        let status = s.status.as_str();
        let painted = match (color, s.status) {
            (true, Status::Shadow | Status::Unsanctioned) => {
                format!("\x1b[1;31m{status:<13}\x1b[0m")
            }
            (true, Status::Discovered | Status::Tolerated) => {
                format!("\x1b[33m{status:<13}\x1b[0m")
            }
            (true, Status::Sanctioned) => format!("\x1b[32m{status:<13}\x1b[0m"),
            (false, _) => format!("{status:<13}"),
        };
        let top = s
            .top_users
            .first()
            .map(|u| format!("{} ({})", u.user, u.requests))
            .unwrap_or_default();
        let mut name = s.name.clone();
        if name.chars().count() > 28 {
            name = name.chars().take(27).collect::<String>() + "…";
        }
        let _ = writeln!(
            out,
            "{painted} {name:<28} {:<18} {:>9} {:>6} {:>10} {:>10} {:>5}  {top}",
            s.category,
            s.requests,
            s.users,
            human_bytes(s.bytes_sent),
            human_bytes(s.bytes_received),
            s.risk.score
        );
    }
    if !report.incidental.is_empty() {
        let names: Vec<String> = report
            .incidental
            .iter()
            .map(|i| format!("{} ({})", i.id, i.requests))
            .collect();
        let _ = writeln!(
            out,
            "\nseen only on cdn/telemetry hosts (not counted as use): {}",
            names.join(", ")
        );
    }
    out
}

/// Record every (service, user) pair of the services in use as one discovery run.
fn record(
    args: &Args,
    catalog: &Catalog,
    result: &ScanResult,
    report: &Report,
) -> anyhow::Result<()> {
    use demarc_store::time::OffsetDateTime;
    let now = OffsetDateTime::now_utc();
    let at = |t: Option<i64>| {
        t.and_then(|us| OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1000).ok())
            .unwrap_or(now)
    };
    let in_use: std::collections::HashSet<&str> =
        report.services.iter().map(|s| s.id.as_str()).collect();
    let mut findings = Vec::new();
    for (index, usage) in result.usage.services.iter().enumerate() {
        let Some(service) = catalog.service(index) else {
            continue;
        };
        if !in_use.contains(service.id.as_str()) {
            continue;
        }
        for (user, u) in &usage.users {
            if u.use_requests == 0 {
                continue;
            }
            findings.push(demarc_store::DiscoveryFinding {
                service: service.id.clone(),
                user: String::from_utf8_lossy(user).chars().take(1024).collect(),
                requests: i64::try_from(u.requests).unwrap_or(i64::MAX),
                bytes_sent: i64::try_from(u.sent).unwrap_or(i64::MAX),
                bytes_received: i64::try_from(u.received).unwrap_or(i64::MAX),
                first_seen: at(u.first),
                last_seen: at(u.last),
            });
        }
    }
    findings.sort_by(|a, b| (&a.service, &a.user).cmp(&(&b.service, &b.user)));
    let mut source: String = result
        .files
        .iter()
        .map(|f| f.name.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    if source.len() > 4000 {
        source = source.chars().take(3990).collect::<String>() + " …";
    }
    let run = super::db::runtime()?.block_on(async {
        let store = args.store.open().await?;
        let run = store.record_discovery(&source, now, &findings).await;
        store.close().await;
        anyhow::Ok(run?)
    })?;
    eprintln!(
        "recorded discovery run {run} ({}) in {}",
        common::count(findings.len(), "finding"),
        demarc_store::redact(&args.store.url())
    );
    Ok(())
}
