//! `demarc audit verify|prune`: the gateway's tamper-evident audit trail.

use anyhow::Context;
use demarc_store::time::{Duration, OffsetDateTime};
use demarc_store::{NewAuditEvent, VerifyReport};

use super::db::{Format, StoreArgs, runtime};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(clap::Subcommand, Debug)]
enum Action {
    /// Check every audit chain (or one) and report the first broken link of each:
    /// an event altered, deleted, inserted or reordered. Exit 1 when one is broken.
    Verify {
        #[command(flatten)]
        store: StoreArgs,
        /// Only this chain (one chain per gateway replica).
        #[arg(long)]
        chain: Option<String>,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Apply retention: remove audit events (and optionally discovery findings and
    /// daily evidence rows) older than a number of days. Each pruned chain gets a sealed
    /// checkpoint so what remains still verifies.
    Prune {
        #[command(flatten)]
        store: StoreArgs,
        /// Remove audit events older than DAYS (and the per-day traffic summaries of
        /// days that ended before then).
        #[arg(
            long,
            value_name = "DAYS",
            env = "DEMARC_AUDIT_RETENTION_DAYS",
            required_unless_present_any = ["findings_older_than", "evidence_older_than"]
        )]
        older_than: Option<u32>,
        /// Remove discovery findings last seen more than DAYS ago.
        #[arg(long, value_name = "DAYS", env = "DEMARC_FINDINGS_RETENTION_DAYS")]
        findings_older_than: Option<u32>,
        /// Remove daily evidence rows of days that ended more than DAYS ago, and latest
        /// observations that expired before then.
        #[arg(long, value_name = "DAYS", env = "DEMARC_EVIDENCE_RETENTION_DAYS")]
        evidence_older_than: Option<u32>,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Test helper: append BATCHES batches of SIZE events to CHAIN, printing the
    /// last seq of each committed batch (used by the crash and concurrency tests).
    #[command(hide = true)]
    WriteTestEvents {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long)]
        chain: String,
        #[arg(long)]
        batches: u32,
        #[arg(long)]
        size: usize,
        /// Write gateway-shaped events for this many applications (`app-00000` ...), as
        /// `bench/gen-estate.py` names them, so that they count as gateway traffic; and the
        /// gateway's observations of each under the seed catalog's areas (benchmarks).
        #[arg(long, default_value_t = 0)]
        applications: usize,
        /// Spread the events' times over this many days back from now.
        #[arg(long, default_value_t = 0)]
        days: u32,
    },
}

pub fn run(args: Args) -> anyhow::Result<crate::Outcome> {
    runtime()?.block_on(async {
        match args.action {
            Action::Verify {
                store,
                chain,
                format,
            } => {
                let store = store.open().await?;
                let report = match &chain {
                    Some(chain) => store.verify_audit_chain(chain).await,
                    None => store.verify_audit().await,
                };
                store.close().await;
                let report = report?;
                if let (Some(chain), true) = (&chain, report.chains.is_empty()) {
                    anyhow::bail!("the store has no audit chain `{chain}`");
                }
                print_verify(&report, format)?;
                Ok(if report.is_intact() {
                    crate::Outcome::Success
                } else {
                    crate::Outcome::CheckFailed
                })
            }
            Action::Prune {
                store,
                older_than,
                findings_older_than,
                evidence_older_than,
                format,
            } => {
                let now = OffsetDateTime::now_utc();
                let cutoff = |days: u32| now - Duration::days(i64::from(days));
                let store = store.open().await?;
                let report = store
                    .prune(
                        older_than.map(cutoff),
                        findings_older_than.map(cutoff),
                        evidence_older_than.map(cutoff),
                    )
                    .await;
                store.close().await;
                let report = report?;
                let output = match format {
                    Format::Json => serde_json::to_string_pretty(&report)? + "\n",
                    Format::Table => {
                        use std::fmt::Write;
                        let mut out = String::new();
                        for p in &report.chains {
                            let _ = writeln!(
                                out,
                                "chain `{}`: removed {}, checkpoint at seq {}",
                                p.chain,
                                super::common::count(p.events_removed, "event"),
                                p.through_seq
                            );
                        }
                        if older_than.is_some() && report.chains.is_empty() {
                            let _ = writeln!(out, "no audit events old enough to prune");
                        }
                        if evidence_older_than.is_some() {
                            let _ = writeln!(
                                out,
                                "evidence: removed {} daily or expired rows",
                                report.evidence_removed
                            );
                        }
                        if findings_older_than.is_some() {
                            let _ = writeln!(
                                out,
                                "discovery findings: removed {}",
                                report.findings_removed
                            );
                        }
                        out
                    }
                };
                super::common::emit(None, &output)?;
                Ok(crate::Outcome::Success)
            }
            Action::WriteTestEvents {
                store,
                chain,
                batches,
                size,
                applications,
                days,
            } => {
                use std::io::Write;
                let store = store.open().await?;
                let mut out = std::io::stdout().lock();
                let now = OffsetDateTime::now_utc();
                let total = u64::from(batches) * size as u64;
                let span_ms = i64::from(days) * 86_400_000;
                for batch in 0..batches {
                    let events: Vec<NewAuditEvent> = (0..size)
                        .map(|i| {
                            let n = u64::from(batch) * size as u64 + i as u64;
                            if applications == 0 {
                                return NewAuditEvent {
                                    at: now,
                                    payload: format!(
                                        r#"{{"writer":"{chain}","batch":{batch},"event":{i}}}"#
                                    ),
                                };
                            }
                            // Oldest first, evenly over the span; one in 50 blocked.
                            let back = span_ms - (span_ms as i128 * n as i128 / total.max(1) as i128) as i64;
                            let (status, error) = if n % 50 == 49 {
                                (400, r#""input_blocked""#)
                            } else {
                                (200, "null")
                            };
                            NewAuditEvent {
                                at: now - Duration::milliseconds(back),
                                payload: format!(
                                    r#"{{"request_id":"req_{n:x}","application":"app-{:05}","endpoint":"chat_completions","model":"gpt-4o","stream":false,"status":{status},"error":{error},"latency_ms":12.5,"attempts":1,"prompt_tokens":120,"completion_tokens":80}}"#,
                                    n as usize % applications
                                ),
                            }
                        })
                        .collect();
                    let receipt = store.append_audit_batch(&chain, &events).await?;
                    writeln!(out, "{}", receipt.last_seq)
                        .and_then(|()| out.flush())
                        .context("cannot write to stdout")?;
                }
                if applications > 0 {
                    let catalog =
                        super::common::load_catalog(demarc_model::catalog::DEFAULT_CATALOG)?;
                    let mut rows = Vec::new();
                    for app in 0..applications {
                        for kind in demarc_model::ObservationKind::ALL {
                            for area in catalog.areas_observed_by(kind) {
                                rows.push(demarc_store::Evidence {
                                    application: format!("app-{app:05}"),
                                    area: area.id.clone(),
                                    kind: kind.as_str().into(),
                                    source: chain.clone(),
                                    observed_at: now,
                                    summary: format!("{kind} observed (benchmark)"),
                                    expires_at: Some(now + Duration::days(45)),
                                });
                            }
                        }
                    }
                    for chunk in rows.chunks(10_000) {
                        store.put_evidence_batch(chunk).await?;
                    }
                }
                store.close().await;
                Ok(crate::Outcome::Success)
            }
        }
    })
}

fn print_verify(report: &VerifyReport, format: Format) -> anyhow::Result<()> {
    use std::fmt::Write;
    let broken = report.chains.iter().filter(|c| c.broken.is_some()).count();
    let mut out = String::new();
    match format {
        Format::Json => {
            let mut json = serde_json::to_value(report)?;
            if let Some(object) = json.as_object_mut() {
                object.insert("intact".into(), (broken == 0).into());
            }
            out = serde_json::to_string_pretty(&json)? + "\n";
        }
        Format::Table => {
            let chain_w = report
                .chains
                .iter()
                .map(|c| c.chain.chars().count())
                .max()
                .unwrap_or(0)
                .max(5);
            let _ = writeln!(
                out,
                "{:<chain_w$} {:>10} {:>21} {:>8}  {:<16}  STATUS",
                "CHAIN", "EVENTS", "SEQ", "PRUNED", "HEAD"
            );
            for c in &report.chains {
                let seqs = match (c.first_seq, c.last_seq) {
                    (Some(a), Some(b)) => format!("{a}..{b}"),
                    _ => "-".into(),
                };
                let pruned = c.pruned_through.map_or("-".into(), |s| s.to_string());
                let head: String = c.head_hash.chars().take(16).collect();
                let status = match &c.broken {
                    None => "ok".to_owned(),
                    Some(b) => format!("broken at seq {}: {}", b.seq, b.reason),
                };
                let _ = writeln!(
                    out,
                    "{:<chain_w$} {:>10} {:>21} {:>8}  {:<16}  {status}",
                    c.chain, c.events, seqs, pruned, head
                );
            }
        }
    }
    super::common::emit(None, &out)?;
    if broken == 0 {
        eprintln!(
            "verified {} in {}: intact",
            super::common::count(report.events, "event"),
            super::common::count(report.chains.len(), "chain")
        );
    } else {
        eprintln!(
            "verified {} in {}: {broken} broken",
            super::common::count(report.events, "event"),
            super::common::count(report.chains.len(), "chain")
        );
    }
    Ok(())
}
