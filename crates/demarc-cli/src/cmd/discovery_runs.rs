//! `demarc discover runs|show RUN|diff A B`: revisit recorded discovery runs.

use std::collections::BTreeMap;

use anyhow::bail;
use demarc_store::{ClassifiedFinding, FindingClass};
use serde::Serialize;

use super::common;
use super::discover::{RunsOutput, Sub};
use crate::render::table::clean_text;

/// The key a finding is compared by across runs: `service`, or `service@tenant` for another
/// tenant of a service.
pub fn finding_key(service: &str, class: &FindingClass) -> String {
    match &class.tenant {
        Some(t) if class.status == "other-tenant" && !t.contains(' ') => format!("{service}@{t}"),
        _ => service.to_owned(),
    }
}

/// One finding of a run, with its users added up.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RunFinding {
    pub key: String,
    pub service: String,
    pub status: String,
    pub applications: Vec<String>,
    pub tenant: Option<String>,
    pub requests: i64,
    pub blocked: i64,
    pub users: BTreeMap<String, i64>,
}

/// Findings by key, of one run or merged from several: requests add up; an identity counts
/// as a user of a finding when, over all the findings merged, it reached the service's ui,
/// api or auth hosts; a finding no one used (only reached incidentally) is left out. The
/// result of merging runs is the result of one run over all of their logs.
pub fn summarise(findings: &[ClassifiedFinding]) -> BTreeMap<String, RunFinding> {
    let mut merger = Merger::default();
    merger.add(findings);
    merger.finish()
}

/// [`summarise`] fed a run at a time: memory grows with the distinct findings and
/// identities, not with the runs read.
#[derive(Default)]
pub struct Merger(BTreeMap<String, Merged>);

struct Merged {
    finding: RunFinding,
    used: bool,
    /// Per identity: requests, and whether it used the service.
    users: BTreeMap<String, (i64, bool)>,
}

impl Merger {
    pub fn add(&mut self, findings: &[ClassifiedFinding]) {
        for f in findings {
            let key = finding_key(&f.finding.service, &f.class);
            let entry = self.0.entry(key.clone()).or_insert_with(|| Merged {
                finding: RunFinding {
                    key,
                    service: f.finding.service.clone(),
                    status: f.class.status.clone(),
                    applications: f.class.applications.clone(),
                    tenant: f.class.tenant.clone(),
                    requests: 0,
                    blocked: 0,
                    users: BTreeMap::new(),
                },
                used: false,
                users: BTreeMap::new(),
            });
            // A service only reached incidentally in one log takes its status from another.
            if entry.finding.status == INCIDENTAL && f.class.status != INCIDENTAL {
                entry.finding.status = f.class.status.clone();
                entry.finding.applications = f.class.applications.clone();
                entry.finding.tenant = f.class.tenant.clone();
            }
            entry.finding.requests += f.finding.requests;
            entry.finding.blocked += f.class.blocked;
            entry.used |= f.class.used();
            let user = if f.class.user_kind.is_empty() || f.class.user_kind == "user" {
                f.finding.user.clone()
            } else {
                format!("{} ({})", f.finding.user, f.class.user_kind)
            };
            let u = entry.users.entry(user).or_default();
            u.0 += f.finding.requests;
            u.1 |= f.class.used();
        }
    }

    pub fn finish(self) -> BTreeMap<String, RunFinding> {
        self.0
            .into_iter()
            .filter(|(_, m)| m.used)
            .map(|(key, mut m)| {
                m.finding.users = m
                    .users
                    .into_iter()
                    .filter(|(_, (_, used))| *used)
                    .map(|(user, (requests, _))| (user, requests))
                    .collect();
                (key, m.finding)
            })
            .collect()
    }
}

/// The status recorded for a service that a run's logs only reached incidentally.
const INCIDENTAL: &str = "incidental";

/// What changed between two runs.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunDiff {
    pub from: i64,
    pub to: i64,
    /// Findings in `to` and not in `from`.
    pub new: Vec<String>,
    /// Findings in `from` and not in `to`.
    pub gone: Vec<String>,
    /// Findings in both whose requests grew: (key, before, after).
    pub grown: Vec<(String, i64, i64)>,
    /// Users of a finding in both runs that are new in `to`: (key, user).
    pub new_users: Vec<(String, String)>,
    /// Users gone from a finding in both runs.
    pub gone_users: Vec<(String, String)>,
}

pub fn diff(
    from: i64,
    to: i64,
    a: &BTreeMap<String, RunFinding>,
    b: &BTreeMap<String, RunFinding>,
) -> RunDiff {
    let mut d = RunDiff {
        from,
        to,
        ..RunDiff::default()
    };
    for (k, f) in b {
        match a.get(k) {
            None => d.new.push(k.clone()),
            Some(old) => {
                if f.requests > old.requests {
                    d.grown.push((k.clone(), old.requests, f.requests));
                }
                for u in f.users.keys().filter(|u| !old.users.contains_key(*u)) {
                    d.new_users.push((k.clone(), u.clone()));
                }
                for u in old.users.keys().filter(|u| !f.users.contains_key(*u)) {
                    d.gone_users.push((k.clone(), u.clone()));
                }
            }
        }
    }
    d.gone = a.keys().filter(|k| !b.contains_key(*k)).cloned().collect();
    d
}

pub fn run(sub: Sub) -> anyhow::Result<crate::Outcome> {
    let rt = super::db::runtime()?;
    match sub {
        Sub::Runs { format, store } => {
            let runs = rt.block_on(async {
                let s = store.open().await?;
                let runs = s.discovery_runs().await;
                s.close().await;
                anyhow::Ok(runs?)
            })?;
            match format {
                RunsOutput::Json => common::emit_json(None, &runs)?,
                RunsOutput::Table => {
                    let mut out = String::new();
                    if runs.is_empty() {
                        out.push_str(
                            "no discovery run recorded (`demarc discover LOG... --record`)\n",
                        );
                    } else {
                        let sensor_w = runs
                            .iter()
                            .map(|r| r.sensor.as_deref().unwrap_or("-").chars().count())
                            .max()
                            .unwrap_or(0)
                            .clamp(6, 32);
                        out.push_str(&format!(
                            "{:>5}  {:<20}  {:<sensor_w$}  {:>9}  SOURCE\n",
                            "RUN", "AT (UTC)", "SENSOR", "FINDINGS"
                        ));
                        for r in &runs {
                            out.push_str(&format!(
                                "{:>5}  {:<20}  {:<sensor_w$}  {:>9}  {}\n",
                                r.id,
                                short_time(r.at),
                                r.sensor.as_deref().unwrap_or("-"),
                                r.findings,
                                r.source
                            ));
                        }
                    }
                    common::emit(None, &clean_text(&out))?;
                }
            }
        }
        Sub::Show { run, format, store } => {
            let findings = rt.block_on(async {
                let s = store.open().await?;
                let exists = s.discovery_runs().await?.iter().any(|r| r.id == run);
                let f = if exists {
                    Some(s.discovery_findings_classified(run).await?)
                } else {
                    None
                };
                s.close().await;
                anyhow::Ok(f)
            })?;
            let Some(findings) = findings else {
                bail!("no discovery run {run} in the store; `demarc discover runs` lists them");
            };
            emit_summary(&summarise(&findings), format)?;
        }
        Sub::Report {
            since,
            until,
            sensors,
            format,
            store,
        } => {
            let day = |d: demarc_model::Date| {
                demarc_store::time::OffsetDateTime::from_unix_timestamp(
                    d.days_since_epoch() * 86_400,
                )
            };
            let since = since.map(day).transpose()?;
            let until = until.map(day).transpose()?;
            let (merger, runs) = rt.block_on(async {
                let s = store.open().await?;
                let mut merger = Merger::default();
                let mut runs = Vec::new();
                for r in s.discovery_runs().await? {
                    let sensor = r.sensor.as_deref().unwrap_or("");
                    if !sensors.is_empty() && !sensors.iter().any(|n| n == sensor) {
                        continue;
                    }
                    // One run's findings at a time: the merge holds only what it adds up.
                    let findings: Vec<ClassifiedFinding> = s
                        .discovery_findings_classified(r.id)
                        .await?
                        .into_iter()
                        .filter(|f| {
                            since.is_none_or(|t| f.finding.last_seen >= t)
                                && until.is_none_or(|t| f.finding.first_seen < t)
                        })
                        .collect();
                    if !findings.is_empty() {
                        merger.add(&findings);
                        runs.push(r);
                    }
                }
                s.close().await;
                anyhow::Ok((merger, runs))
            })?;
            let mut seen: Vec<&str> = runs
                .iter()
                .map(|r| r.sensor.as_deref().unwrap_or("-"))
                .collect();
            seen.sort_unstable();
            seen.dedup();
            eprintln!(
                "merged {} from {} ({})",
                common::count(runs.len(), "recorded run"),
                common::count(seen.len(), "sensor"),
                seen.join(", ")
            );
            emit_summary(&merger.finish(), format)?;
        }
        Sub::Diff {
            a,
            b,
            format,
            store,
        } => {
            let (fa, fb) = rt.block_on(async {
                let s = store.open().await?;
                let runs = s.discovery_runs().await?;
                for id in [a, b] {
                    if !runs.iter().any(|r| r.id == id) {
                        s.close().await;
                        bail!(
                            "no discovery run {id} in the store; `demarc discover runs` lists them"
                        );
                    }
                }
                let fa = s.discovery_findings_classified(a).await?;
                let fb = s.discovery_findings_classified(b).await?;
                s.close().await;
                anyhow::Ok((fa, fb))
            })?;
            let d = diff(a, b, &summarise(&fa), &summarise(&fb));
            match format {
                RunsOutput::Json => common::emit_json(None, &d)?,
                RunsOutput::Table => {
                    let mut out = format!("run {a} -> run {b}\n");
                    let list = |v: &[String]| {
                        if v.is_empty() {
                            "none".to_owned()
                        } else {
                            v.join(", ")
                        }
                    };
                    out.push_str(&format!("new services:  {}\n", list(&d.new)));
                    out.push_str(&format!("gone services: {}\n", list(&d.gone)));
                    let grown: Vec<String> = d
                        .grown
                        .iter()
                        .map(|(k, x, y)| format!("{k} ({x} -> {y} requests)"))
                        .collect();
                    out.push_str(&format!("grown:         {}\n", list(&grown)));
                    let nu: Vec<String> = d
                        .new_users
                        .iter()
                        .map(|(k, u)| format!("{u} on {k}"))
                        .collect();
                    out.push_str(&format!("new users:     {}\n", list(&nu)));
                    let gu: Vec<String> = d
                        .gone_users
                        .iter()
                        .map(|(k, u)| format!("{u} on {k}"))
                        .collect();
                    out.push_str(&format!("gone users:    {}\n", list(&gu)));
                    common::emit(None, &clean_text(&out))?;
                }
            }
        }
    }
    Ok(crate::Outcome::Success)
}

/// Findings summarised by key, as a table (worst status first) or JSON.
fn emit_summary(summary: &BTreeMap<String, RunFinding>, format: RunsOutput) -> anyhow::Result<()> {
    match format {
        RunsOutput::Json => {
            let list: Vec<&RunFinding> = summary.values().collect();
            common::emit_json(None, &list)?
        }
        RunsOutput::Table => {
            let mut out = format!(
                "{:<13} {:<40} {:>9} {:>6}  APPLICATIONS\n",
                "STATUS", "FINDING", "REQUESTS", "USERS"
            );
            let mut rows: Vec<&RunFinding> = summary.values().collect();
            rows.sort_by(|a, b| {
                (&a.status, std::cmp::Reverse(a.requests))
                    .cmp(&(&b.status, std::cmp::Reverse(b.requests)))
            });
            for f in rows {
                out.push_str(&format!(
                    "{:<13} {:<40} {:>9} {:>6}  {}\n",
                    if f.status.is_empty() {
                        "(unknown)"
                    } else {
                        &f.status
                    },
                    f.key,
                    f.requests,
                    f.users.len(),
                    f.applications.join(", ")
                ));
            }
            common::emit(None, &clean_text(&out))?;
        }
    }
    Ok(())
}

fn short_time(t: demarc_store::time::OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}
