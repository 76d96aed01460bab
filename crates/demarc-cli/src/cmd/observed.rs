//! What demarc observed by itself, read from the store for `demarc assess`: the latest
//! observation per application × area × kind, and the gateway's traffic per application from
//! the audit trail's per-day summary, both within the observation window
//! (`--observed-since`), in the model's terms.

use std::collections::BTreeMap;
use std::str::FromStr;

use demarc_model::assess::{ObservedEvidence, ObservedTraffic};
use demarc_model::{Date, ObservationKind};
use demarc_store::time::OffsetDateTime;

/// `--observed-since`: a number of days back from the assessment date, or a date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Since {
    Days(u32),
    Date(Date),
}

impl FromStr for Since {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Ok(days) = s.parse::<u32>() {
            return Ok(Since::Days(days));
        }
        s.parse::<Date>()
            .map(Since::Date)
            .map_err(|_| format!("`{s}` is neither a number of days nor a date (YYYY-MM-DD)"))
    }
}

impl Since {
    /// The first day of the window for an assessment made on `today`.
    pub fn first_day(self, today: Date) -> Date {
        match self {
            Since::Days(days) => today.add_days(-i64::from(days)),
            Since::Date(date) => date,
        }
    }
}

/// The start (00:00 UTC) of `day`.
pub fn start_of(day: Date) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(day.days_since_epoch().saturating_mul(86_400))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn day_of(t: OffsetDateTime) -> Date {
    Date::from_days_since_epoch(t.unix_timestamp().div_euclid(86_400))
}

/// Observations made from `since` on: the evidence (rows whose kind this build does not know
/// are left out) and the gateway traffic of each application that had requests answered.
pub fn read_observations(
    runtime: &tokio::runtime::Runtime,
    store: &demarc_store::Store,
    since: OffsetDateTime,
) -> anyhow::Result<(Vec<ObservedEvidence>, Vec<ObservedTraffic>)> {
    let started = std::time::Instant::now();
    let (evidence, traffic) = runtime.block_on(async {
        let evidence = store.observed_evidence(since).await?;
        let traffic = store.gateway_traffic(since).await?;
        Ok::<_, demarc_store::StoreError>((evidence, traffic))
    })?;
    let out = (to_evidence(evidence), to_traffic(traffic));
    tracing::debug!(
        evidence = out.0.len(),
        traffic = out.1.len(),
        elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
        "observations read from the store"
    );
    Ok(out)
}

fn to_evidence(rows: Vec<demarc_store::Evidence>) -> Vec<ObservedEvidence> {
    rows.into_iter()
        .filter_map(|e| {
            let Ok(kind) = e.kind.parse::<ObservationKind>() else {
                tracing::debug!(kind = %e.kind, "observation of an unknown kind left out");
                return None;
            };
            Some(ObservedEvidence {
                application: e.application,
                area: e.area,
                kind,
                source: e.source,
                observed_at: day_of(e.observed_at),
                summary: e.summary,
                // Evidence without an expiry counts for as long as it is the latest.
                expires: e
                    .expires_at
                    .map_or(Date::from_days_since_epoch(i64::MAX / 4), day_of),
            })
        })
        .collect()
}

/// One entry per application with answered requests, over every audit chain.
fn to_traffic(rows: Vec<demarc_store::Traffic>) -> Vec<ObservedTraffic> {
    #[derive(Default)]
    struct Sum {
        requests: u64,
        served: u64,
        blocked: u64,
        refused: u64,
        failed: u64,
        first: Option<i64>,
        last: Option<i64>,
        chains: Vec<String>,
    }
    let mut per_app: BTreeMap<String, Sum> = BTreeMap::new();
    for t in rows {
        let s = per_app.entry(t.application).or_default();
        s.requests += t.requests;
        s.served += t.served;
        s.blocked += t.blocked;
        s.refused += t.refused;
        s.failed += t.failed;
        s.first = match (s.first, t.first_served_day) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        s.last = s.last.max(t.last_served_day);
        s.chains.push(t.chain);
    }
    per_app
        .into_iter()
        .filter_map(|(application, s)| {
            let (first, last) = (s.first?, s.last?);
            if s.served == 0 {
                return None;
            }
            let source = match s.chains.as_slice() {
                [one] => format!("gateway audit chain `{one}`"),
                [first_chain, rest @ ..] => format!(
                    "gateway audit chains `{first_chain}` and {} more",
                    rest.len()
                ),
                [] => "gateway audit".to_string(),
            };
            Some(ObservedTraffic {
                application,
                kind: ObservationKind::GatewayTraffic,
                source,
                requests: s.served,
                first_seen: Date::from_days_since_epoch(first),
                last_seen: Date::from_days_since_epoch(last),
                detail: Some(format!(
                    "{} requests answered of {} received; {} blocked by policy, {} refused, {} failed",
                    s.served, s.requests, s.blocked, s.refused, s.failed
                )),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_reads_days_or_a_date() {
        let today = Date::from_ymd(2026, 3, 31).unwrap();
        let since: Since = "30".parse().unwrap();
        assert_eq!(since.first_day(today), Date::from_ymd(2026, 3, 1).unwrap());
        let since: Since = "2026-01-15".parse().unwrap();
        assert_eq!(since.first_day(today), Date::from_ymd(2026, 1, 15).unwrap());
        assert!("last week".parse::<Since>().is_err());
        assert_eq!(
            start_of(Date::from_ymd(1970, 1, 2).unwrap()).unix_timestamp(),
            86_400
        );
    }

    #[test]
    fn traffic_is_summed_over_chains_and_needs_answers() {
        let t = |app: &str, chain: &str, served: u64, day: Option<i64>| demarc_store::Traffic {
            application: app.into(),
            chain: chain.into(),
            requests: served + 1,
            served,
            blocked: 1,
            refused: 0,
            failed: 0,
            first_at: OffsetDateTime::UNIX_EPOCH,
            last_at: OffsetDateTime::UNIX_EPOCH,
            first_served_day: day,
            last_served_day: day,
        };
        let out = to_traffic(vec![
            t("a", "gw-1", 3, Some(10)),
            t("a", "gw-2", 2, Some(12)),
            t("refused-only", "gw-1", 0, None),
        ]);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].requests, 5);
        assert_eq!(out[0].first_seen, Date::from_days_since_epoch(10));
        assert_eq!(out[0].last_seen, Date::from_days_since_epoch(12));
        assert_eq!(out[0].source, "gateway audit chains `gw-1` and 1 more");
        assert_eq!(
            out[0].detail.as_deref(),
            Some("5 requests answered of 7 received; 2 blocked by policy, 0 refused, 0 failed")
        );
    }
}
