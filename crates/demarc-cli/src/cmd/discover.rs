//! `demarc discover LOG...`: which GenAI services people use, from proxy, DNS and gateway
//! logs; who uses them, how much data went out, and whether the estate allows them.
//! `demarc discover runs|show|diff` revisit recorded runs.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use demarc_discover::report::{KnownApplication, Report, ReportOptions, Status};
use demarc_discover::{Catalog, FieldMap, Format, Progress, ScanOptions, ScanResult, input, scan};

use super::common;
use super::db::StoreArgs;
use crate::render;
use crate::render::table::clean;
use crate::render::text::{human_time, identities_text};

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
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    #[command(subcommand)]
    command: Option<Box<Sub>>,
    /// Log files, globs (`'logs/*.gz'`) or `-` for stdin; gzip and zstd are read as such.
    /// (A log file named like a subcommand: write `./runs`.)
    #[arg(value_name = "LOG")]
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
    #[arg(long, value_name = "MAPPING", value_parser = parse_map)]
    map: Option<Box<FieldMap>>,
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
    /// Record the findings (service x user) as a discovery run in the store, with each log's
    /// SHA-256: a log whose content was recorded before (by any sensor) is refused (exit 2),
    /// so nothing is counted twice.
    #[arg(long)]
    record: bool,
    /// The sensor whose logs these are (a host, a site, a proxy cluster), recorded with the
    /// run (default: this machine's name).
    #[arg(long, value_name = "NAME", requires = "record")]
    sensor: Option<String>,
    /// Exit 2 when more than this percentage of a file's lines are malformed (0-100).
    #[arg(long, value_name = "PERCENT", default_value_t = 5.0)]
    max_malformed: f64,
    /// DNS lookups of one name by one client within this many seconds of the last one counted
    /// count once (0: count every lookup).
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    dns_window: u32,
    /// CSV of `address,user` (a DHCP or VPN export; a header line is skipped): addresses are
    /// counted as those users.
    #[arg(long, value_name = "FILE")]
    identities: Option<PathBuf>,
    /// Write estate YAML stubs for the services no application covers (shadow, other-tenant),
    /// ready to review and paste into the estate's `applications`.
    #[arg(long, value_name = "FILE")]
    emit_estate: Option<PathBuf>,
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(clap::Subcommand, Debug)]
pub enum Sub {
    /// List recorded discovery runs, newest first.
    Runs {
        #[arg(long, value_enum, default_value_t = RunsOutput::Table)]
        format: RunsOutput,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Show one recorded run: its findings by service, tenant and status.
    Show {
        /// The run id (see `demarc discover runs`).
        run: i64,
        #[arg(long, value_enum, default_value_t = RunsOutput::Table)]
        format: RunsOutput,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Merge recorded runs, of every sensor or of those named, into one view: findings by
    /// service, tenant and status with their requests and users added up. A finding counts
    /// when its logs' time span overlaps the period (its counts are not cut at the edges).
    Report {
        /// Only findings seen on or after this day (YYYY-MM-DD, UTC).
        #[arg(long, value_name = "DATE")]
        since: Option<demarc_model::Date>,
        /// Only findings seen before this day (YYYY-MM-DD, UTC; the day itself excluded).
        #[arg(long, value_name = "DATE")]
        until: Option<demarc_model::Date>,
        /// Only runs recorded by this sensor (repeatable).
        #[arg(long = "sensor", value_name = "NAME")]
        sensors: Vec<String>,
        #[arg(long, value_enum, default_value_t = RunsOutput::Table)]
        format: RunsOutput,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Compare two recorded runs: services and users that are new, gone or grew.
    Diff {
        /// The earlier run.
        a: i64,
        /// The later run.
        b: i64,
        #[arg(long, value_enum, default_value_t = RunsOutput::Table)]
        format: RunsOutput,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum RunsOutput {
    Table,
    Json,
}

fn parse_map(text: &str) -> Result<Box<FieldMap>, demarc_discover::MappingError> {
    FieldMap::parse(text).map(Box::new)
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
    if let Some(sub) = args.command {
        return super::discovery_runs::run(*sub);
    }
    if args.logs.is_empty() {
        bail!(
            "give at least one LOG (a file, a glob or `-` for stdin), or a subcommand: runs, show, diff"
        );
    }
    if !(0.0..=100.0).contains(&args.max_malformed) {
        bail!("`--max-malformed` is a percentage from 0 to 100");
    }
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
        map: args.map.as_deref().cloned(),
        large_upload: args.large_upload,
        strict: args.strict,
        dns_window: i64::from(args.dns_window) * 1_000_000,
        hash_inputs: args.record,
        ..ScanOptions::default()
    };
    let report_options = ReportOptions {
        ip_users: match &args.identities {
            Some(path) => load_identities(path)?,
            None => HashMap::new(),
        },
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
    no_silent_clean(&result, args.max_malformed)?;

    let mut report = Report::build_with(&catalog, &result, &apps, &report_options);
    if args.record || args.store.db.is_some() {
        let sensor = sensor_name(&args);
        report.summary.new_since_last_run = new_since_last_run(&args.store, &sensor, &report)?;
    }
    let text = match args.format {
        Output::Json => serde_json::to_string_pretty(&report)? + "\n",
        Output::Csv => render::csv::discovery(&report).context("cannot write the CSV report")?,
        Output::Html => {
            render::html::discovery_page(&report).context("cannot write the HTML report")?
        }
        Output::Table => render::table::discovery(&report, crate::ui::stdout_color()),
    };
    common::emit(None, &text)?;
    eprintln!(
        "{} in {}, {} malformed{}; {} in use",
        common::count(result.records, "record"),
        common::count(result.files.len(), "file"),
        result.malformed,
        if result.untimed > 0 {
            format!(", {} without a readable time (kept)", result.untimed)
        } else {
            String::new()
        },
        common::count(report.services.len(), "GenAI finding")
    );

    if let Some(path) = &args.emit_estate {
        let stubs = estate_stubs(&catalog, &report);
        std::fs::write(path, &stubs.0)
            .with_context(|| format!("cannot write `{}`", path.display()))?;
        eprintln!(
            "wrote {} to `{}`",
            common::count(stubs.1, "estate stub"),
            path.display()
        );
    }
    if args.record {
        record(&args, &catalog, &result, &report, &report_options)?;
    }

    let threshold = args.fail_on.map(|f| match f {
        // Another tenant of a sanctioned service is shadow use.
        FailOn::Shadow => Status::Shadow,
        FailOn::Unsanctioned => Status::Unsanctioned,
        FailOn::Discovered => Status::Discovered,
        FailOn::Tolerated => Status::Tolerated,
    });
    if let Some(t) = threshold {
        let offending: Vec<String> = report
            .at_or_below(t)
            .map(|s| format!("{} ({})", s.key(), s.status.as_str()))
            .collect();
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
    Ok(demarc_serve::recording::known_applications(&estate))
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

/// A scan that read nothing, or mostly garbage, must not look like a clean result: exit 2
/// naming the file, its detected format and its first bad line.
fn no_silent_clean(result: &ScanResult, max_malformed: f64) -> anyhow::Result<()> {
    let first_bad = |name: &str| {
        result
            .malformed_examples
            .iter()
            .find(|m| m.file == name)
            .map(|m| format!("; first bad line {}: {}", m.line, m.reason))
            .unwrap_or_default()
    };
    for f in &result.files {
        let Some(format) = f.format else { continue };
        let lines = f.records + f.malformed;
        if lines > 0 && f.malformed as f64 * 100.0 > max_malformed * lines as f64 {
            bail!(
                "`{}` (read as {format}): {} of {} lines are malformed, more than --max-malformed {}%{}",
                f.name,
                f.malformed,
                lines,
                max_malformed,
                first_bad(&f.name)
            );
        }
    }
    if result.records == 0 {
        let f = result.files.iter().find(|f| f.format.is_some());
        match f {
            Some(f) => bail!(
                "no record could be read: `{}` (read as {}) has {}{}",
                f.name,
                f.format.map_or("?", |x| x.name()),
                common::count(f.lines, "line"),
                first_bad(&f.name)
            ),
            None => bail!("no record could be read; see the warnings above"),
        }
    }
    Ok(())
}

/// `address,user` lines (a header line and blank lines are skipped).
fn load_identities(path: &std::path::Path) -> anyhow::Result<HashMap<Vec<u8>, Vec<u8>>> {
    let bytes = common::read_bounded(path)?;
    let text = String::from_utf8(bytes)
        .with_context(|| format!("`{}` is not UTF-8 text", path.display()))?;
    let mut map = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((ip, user)) = line.split_once(',') else {
            bail!(
                "`{}` line {}: expected `address,user`, found `{line}`",
                path.display(),
                i + 1
            );
        };
        let (ip, user) = (ip.trim().trim_matches('"'), user.trim().trim_matches('"'));
        if i == 0 && ip.parse::<std::net::IpAddr>().is_err() {
            continue; // a header
        }
        if ip.parse::<std::net::IpAddr>().is_err() {
            bail!(
                "`{}` line {}: field `address`: `{ip}` is not an IP address",
                path.display(),
                i + 1
            );
        }
        if user.is_empty() {
            bail!("`{}` line {}: field `user` is empty", path.display(), i + 1);
        }
        map.insert(ip.as_bytes().to_vec(), user.as_bytes().to_vec());
    }
    Ok(map)
}

/// Findings not in the newest recorded run; `None` when there is none.
/// The sensor these logs are recorded for: `--sensor`, or this machine's name.
fn sensor_name(args: &Args) -> String {
    args.sensor.clone().unwrap_or_else(demarc_store::host_name)
}

/// Findings in use now that the last recorded run of this sensor (or, when it has none, the
/// last run of any) did not have in use.
fn new_since_last_run(
    store: &StoreArgs,
    sensor: &str,
    report: &Report,
) -> anyhow::Result<Option<Vec<String>>> {
    let previous = super::db::runtime()?.block_on(async {
        let store = store.open().await?;
        let runs = store.discovery_runs().await?;
        let last = runs
            .iter()
            .find(|r| r.sensor.as_deref() == Some(sensor))
            .or(runs.first());
        let out = match last {
            Some(r) => Some(store.discovery_findings_classified(r.id).await?),
            None => None,
        };
        store.close().await;
        anyhow::Ok(out)
    })?;
    Ok(previous.map(|findings| {
        let seen = super::discovery_runs::summarise(&findings);
        report
            .finding_keys()
            .into_iter()
            .filter(|k| !seen.contains_key(k))
            .collect()
    }))
}

/// YAML stubs for findings no application covers, and how many.
fn estate_stubs(catalog: &Catalog, report: &Report) -> (String, usize) {
    use std::fmt::Write;
    let mut out = String::from(
        "# Estate stubs written by `demarc discover --emit-estate` for GenAI services no\n\
         # application covers. Review each, fill in owner and components, and paste it under\n\
         # `applications:` in the estate. Risk facts are from demarc's service catalog, with\n\
         # their sources: check them before relying on them.\n",
    );
    let mut n = 0;
    let mut seen = std::collections::HashSet::new();
    for s in report
        .services
        .iter()
        .filter(|s| matches!(s.status, Status::Shadow | Status::OtherTenant))
    {
        if !seen.insert(s.key()) {
            continue;
        }
        n += 1;
        let index = catalog.services().iter().position(|c| c.id == s.id);
        let mut id = s.id.clone();
        if s.status == Status::OtherTenant
            && let Some(t) = s.tenants.first()
        {
            let label: String = t
                .split('.')
                .next()
                .unwrap_or_default()
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            id = format!("{id}-{}", label.to_ascii_lowercase());
        }
        let endpoints: Vec<String> = if s.tenants.is_empty() {
            index
                .map(|i| {
                    catalog
                        .patterns(i)
                        .iter()
                        .filter(|(r, p)| r.counts_as_use() && p.tenant.is_none())
                        .map(|(_, p)| p.domain.clone())
                        .collect()
                })
                .unwrap_or_default()
        } else {
            s.tenants.clone()
        };
        let model = match s.service_model {
            demarc_discover::catalog::ServiceModel::Saas => "saas",
            demarc_discover::catalog::ServiceModel::Paas => "paas",
            demarc_discover::catalog::ServiceModel::Iaas => "iaas",
        };
        let _ = writeln!(
            out,
            "\n  # {} ({}), {} by {}.",
            clean(&s.name),
            clean(&s.vendor),
            s.status.as_str(),
            identities_text(&s.identities)
        );
        let _ = writeln!(
            out,
            "  # Seen: {} requests, {} to {}.",
            s.requests,
            human_time(s.first_seen.as_deref()),
            human_time(s.last_seen.as_deref())
        );
        let _ = writeln!(out, "  # Risk score {}/100:", s.risk.score);
        for p in &s.risk.parts {
            let _ = writeln!(
                out,
                "  #   {} = {} (+{}/{})",
                p.factor,
                clean(&p.value),
                p.points,
                p.max
            );
        }
        if let Some(service) = index.and_then(|i| catalog.service(i)) {
            let risk = &service.risk;
            for (name, source) in [
                (
                    "trains_on_user_data",
                    risk.trains_on_user_data
                        .as_ref()
                        .map(|f| (&f.source, &f.as_of)),
                ),
                (
                    "retention",
                    risk.retention.as_ref().map(|f| (&f.source, &f.as_of)),
                ),
                ("sso", risk.sso.as_ref().map(|f| (&f.source, &f.as_of))),
            ] {
                if let Some((src, as_of)) = source {
                    let _ = writeln!(out, "  #   {name}: source {src} (as of {as_of})");
                }
            }
        }
        let _ = writeln!(out, "  - id: {}", yaml_str(&id));
        let _ = writeln!(out, "    name: {}", yaml_str(&s.name));
        let _ = writeln!(out, "    owner: TODO-team");
        let _ = writeln!(
            out,
            "    data_classification: internal  # TODO: what data goes there?"
        );
        let _ = writeln!(out, "    status: discovered");
        let _ = writeln!(out, "    endpoints:");
        for e in &endpoints {
            let _ = writeln!(out, "      - {}", yaml_str(e));
        }
        let _ = writeln!(out, "    components:");
        let _ = writeln!(out, "      - id: {}", yaml_str(&s.id));
        let _ = writeln!(
            out,
            "        kind: application  # TODO: model, application, agent, ..."
        );
        let _ = writeln!(out, "        service_model: {model}");
        let _ = writeln!(out, "        provider: TODO-provider  # {}", s.vendor);
    }
    if n == 0 {
        out.push_str("\n# No unlisted GenAI service was found.\n");
    }
    (out, n)
}

fn yaml_str(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | ' ' | '(' | ')'))
        && !s.starts_with(' ')
    {
        s.to_owned()
    } else {
        serde_json::to_string(s).unwrap_or_default()
    }
}

/// Record every (finding, identity) pair of the services in use as one discovery run, with
/// what the estate said of each finding.
fn record(
    args: &Args,
    _catalog: &Catalog,
    result: &ScanResult,
    report: &Report,
    _options: &ReportOptions,
) -> anyhow::Result<()> {
    use demarc_store::time::OffsetDateTime;
    let now = OffsetDateTime::now_utc();
    // Every identity is kept, those that only reached a service incidentally too: a later
    // merge of runs decides who used what, exactly as one scan of all their logs would.
    let findings = demarc_serve::recording::findings_of(report, now);
    let mut source: String = result
        .files
        .iter()
        .map(|f| f.name.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    if source.len() > 4000 {
        source = source.chars().take(3990).collect::<String>() + " …";
    }
    let from = demarc_store::RunSource {
        source,
        sensor: Some(sensor_name(args)),
        inputs: demarc_serve::recording::inputs_of(result),
    };
    let run = super::db::runtime()?.block_on(async {
        let store = args.store.open().await?;
        let run = store.record_discovery_from(&from, now, &findings).await;
        store.close().await;
        anyhow::Ok(run?)
    })?;
    eprintln!(
        "recorded discovery run {run} ({}, sensor `{}`) in {}",
        common::count(findings.len(), "finding"),
        from.sensor.as_deref().unwrap_or_default(),
        demarc_store::redact(&args.store.url())
    );
    Ok(())
}
