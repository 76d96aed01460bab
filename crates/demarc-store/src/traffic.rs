//! Gateway traffic per application and day, derived from the audit trail.
//!
//! Each audit batch, as it is appended, is summarised into `audit_traffic`: one row per
//! day × application × chain with the number of requests and what became of them
//! (served, blocked by policy, refused, failed). The summary is written in the same
//! transaction as the events, read from the payload's top-level `application`, `status`
//! and `error` fields, and is not part of the hash chain: it is an index that lets
//! `demarc assess` read a month of traffic without parsing a million payloads.
//! Stores migrated from schema 1 get it backfilled from the events they hold.

use std::collections::HashMap;

use time::OffsetDateTime;

use crate::error::Result;
use crate::{Store, dispatch, from_ms, to_ms};

/// Milliseconds in a day.
pub(crate) const DAY_MS: i64 = 86_400_000;

/// Error codes of requests a policy blocked.
const BLOCKED_CODES: &[&str] = &["input_blocked", "output_blocked"];

/// What became of one request, from its audit event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Answered (status below 400, no error code).
    Served,
    /// Its input or output was blocked by the application's policy.
    Blocked,
    /// Refused by the gateway before or instead of serving it: keys, limits, size, an
    /// application the gateway does not serve, a malformed request (other 4xx).
    Refused,
    /// Upstream or gateway failure (5xx).
    Failed,
}

/// The fields of an audit payload the summary reads; everything else is ignored.
#[derive(serde::Deserialize)]
struct Probe<'a> {
    #[serde(borrow, default)]
    application: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    status: Option<u16>,
    #[serde(borrow, default)]
    error: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    latency_ms: Option<f64>,
    #[serde(default)]
    verdicts: Option<ProbeVerdicts>,
}

/// What counts an event for an application: read again alone when the figures beside it
/// (`latency_ms`, `verdicts`) have another shape, so that an odd figure never hides a
/// request from the summary.
#[derive(serde::Deserialize)]
struct OutcomeProbe<'a> {
    #[serde(borrow, default)]
    application: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    status: Option<u16>,
    #[serde(borrow, default)]
    error: Option<std::borrow::Cow<'a, str>>,
}

#[derive(serde::Deserialize)]
struct ProbeVerdicts {
    #[serde(default)]
    redactions: u64,
}

/// What one gateway event says for the daily summary.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Seen {
    pub application: String,
    pub outcome: Outcome,
    /// The request's latency, when the event gives one.
    pub latency_ms: Option<f64>,
    /// Values the policy redacted, input and output.
    pub redactions: u64,
}

/// How one payload counts: its application (`None` when it names none, or is not an
/// object in the gateway's shape) and its outcome. `Err` when it is not JSON at all.
pub(crate) fn classify(payload: &str) -> std::result::Result<Option<Seen>, String> {
    // Only an object names an application (serde would also read a struct from an array).
    let is_object = payload.trim_start().starts_with('{');
    let probe = serde_json::from_str::<Probe<'_>>(payload).or_else(|_| {
        serde_json::from_str::<OutcomeProbe<'_>>(payload).map(|p| Probe {
            application: p.application,
            status: p.status,
            error: p.error,
            latency_ms: None,
            verdicts: None,
        })
    });
    match probe
        .map_err(|_| ())
        .and_then(|p| if is_object { Ok(p) } else { Err(()) })
    {
        Ok(p) => Ok(p.application.filter(|a| !a.is_empty()).map(|app| {
            let error = p.error.as_deref();
            let status = p.status.unwrap_or(200);
            let outcome = if error.is_some_and(|e| BLOCKED_CODES.contains(&e)) {
                Outcome::Blocked
            } else if status >= 500 {
                Outcome::Failed
            } else if status >= 400 || error.is_some() {
                Outcome::Refused
            } else {
                Outcome::Served
            };
            Seen {
                application: app.into_owned(),
                outcome,
                latency_ms: p.latency_ms.filter(|l| l.is_finite() && *l >= 0.0),
                redactions: p.verdicts.map_or(0, |v| v.redactions),
            }
        })),
        // Valid JSON of another shape counts for no application.
        Err(_) => serde_json::from_str::<serde::de::IgnoredAny>(payload)
            .map(|_| None)
            .map_err(|e| e.to_string()),
    }
}

/// One summary row being built: counts and first/last time.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Tally {
    pub requests: i64,
    pub served: i64,
    pub blocked: i64,
    pub refused: i64,
    pub failed: i64,
    pub first_ms: i64,
    pub last_ms: i64,
    pub redactions: i64,
    /// Requests with a latency, and their latencies' sum in microseconds.
    pub timed: i64,
    pub latency_us_total: i64,
}

impl Tally {
    fn add(&mut self, seen: &Seen, at_ms: i64) {
        let outcome = seen.outcome;
        self.redactions = self
            .redactions
            .saturating_add(i64::try_from(seen.redactions).unwrap_or(i64::MAX));
        if let Some(ms) = seen.latency_ms {
            self.timed += 1;
            // Saturating: a latency is at most hours; a nonsense value must not wrap the sum.
            self.latency_us_total = self
                .latency_us_total
                .saturating_add((ms * 1000.0).round().min(i64::MAX as f64) as i64);
        }
        if self.requests == 0 {
            self.first_ms = at_ms;
            self.last_ms = at_ms;
        } else {
            self.first_ms = self.first_ms.min(at_ms);
            self.last_ms = self.last_ms.max(at_ms);
        }
        self.requests += 1;
        match outcome {
            Outcome::Served => self.served += 1,
            Outcome::Blocked => self.blocked += 1,
            Outcome::Refused => self.refused += 1,
            Outcome::Failed => self.failed += 1,
        }
    }
}

/// Tallies keyed by (application, day), for one chain.
#[derive(Debug, Default)]
pub(crate) struct Tallies(pub HashMap<(String, i64), Tally>);

impl Tallies {
    pub fn add(&mut self, seen: Seen, at_ms: i64) {
        self.0
            .entry((seen.application.clone(), at_ms.div_euclid(DAY_MS)))
            .or_default()
            .add(&seen, at_ms);
    }
}

/// Adds tallies of `chain` into `audit_traffic`, inside the caller's transaction.
macro_rules! upsert_tallies {
    ($tx:expr, $chain:expr, $tallies:expr) => {{
        for ((application, day), t) in &$tallies.0 {
            sqlx::query(
                "INSERT INTO audit_traffic (application, chain, day, requests, served, blocked,
                    refused, failed, first_ms, last_ms, redactions, timed, latency_us_total)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
                 ON CONFLICT (application, chain, day) DO UPDATE SET
                    requests = audit_traffic.requests + excluded.requests,
                    redactions = audit_traffic.redactions + excluded.redactions,
                    timed = audit_traffic.timed + excluded.timed,
                    latency_us_total = audit_traffic.latency_us_total + excluded.latency_us_total,
                    served = audit_traffic.served + excluded.served,
                    blocked = audit_traffic.blocked + excluded.blocked,
                    refused = audit_traffic.refused + excluded.refused,
                    failed = audit_traffic.failed + excluded.failed,
                    first_ms = CASE WHEN excluded.first_ms < audit_traffic.first_ms
                                    THEN excluded.first_ms ELSE audit_traffic.first_ms END,
                    last_ms = CASE WHEN excluded.last_ms > audit_traffic.last_ms
                                   THEN excluded.last_ms ELSE audit_traffic.last_ms END",
            )
            .bind(application)
            .bind($chain)
            .bind(*day)
            .bind(t.requests)
            .bind(t.served)
            .bind(t.blocked)
            .bind(t.refused)
            .bind(t.failed)
            .bind(t.first_ms)
            .bind(t.last_ms)
            .bind(t.redactions)
            .bind(t.timed)
            .bind(t.latency_us_total)
            .execute(&mut *$tx)
            .await?;
        }
    }};
}
pub(crate) use upsert_tallies;

/// Fills `audit_traffic` from the events a schema-1 store holds, inside the migration's
/// transaction. Streams the events; memory is bounded by the number of summary rows.
macro_rules! backfill_traffic {
    ($tx:expr) => {{
        use futures_util::TryStreamExt;
        let mut per_chain: std::collections::HashMap<String, $crate::traffic::Tallies> =
            std::collections::HashMap::new();
        {
            let mut rows = sqlx::query_as::<_, (String, i64, String)>(
                "SELECT chain, at_ms, payload FROM audit_events",
            )
            .fetch(&mut *$tx);
            while let Some((chain, at_ms, payload)) = rows.try_next().await? {
                if let Ok(Some(seen)) = $crate::traffic::classify(&payload) {
                    per_chain.entry(chain).or_default().add(seen, at_ms);
                }
            }
        }
        for (chain, tallies) in &per_chain {
            $crate::traffic::upsert_tallies!($tx, chain.as_str(), tallies);
        }
    }};
}
pub(crate) use backfill_traffic;

/// Gateway traffic of one application on one audit chain within a window.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Traffic {
    pub application: String,
    /// The audit chain (one per gateway process) that recorded it.
    pub chain: String,
    /// Requests attributed to the application (authenticated with its key).
    pub requests: u64,
    /// Answered.
    pub served: u64,
    /// Blocked by the application's policy (input or output).
    pub blocked: u64,
    /// Refused by the gateway: limits, size, an application it does not serve, bad requests.
    pub refused: u64,
    /// Upstream or gateway failures.
    pub failed: u64,
    /// First and last request in the window.
    #[serde(with = "time::serde::rfc3339")]
    pub first_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub last_at: OffsetDateTime,
    /// First and last UTC day (days since 1970-01-01) with a served request, if any.
    pub first_served_day: Option<i64>,
    pub last_served_day: Option<i64>,
}

/// Gateway traffic of one application on one UTC day, over every audit chain.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TrafficDay {
    pub application: String,
    /// Days since 1970-01-01 (UTC).
    pub day: i64,
    pub requests: u64,
    pub served: u64,
    pub blocked: u64,
    pub refused: u64,
    pub failed: u64,
    /// Values the policies redacted (input and output).
    pub redactions: u64,
    /// Requests that recorded a latency, and their mean latency in milliseconds (`None`
    /// when none did: days summarised before schema 6).
    pub timed: u64,
    pub mean_latency_ms: Option<f64>,
}

type TrafficRow = (
    String,
    String,
    i64,
    i64,
    i64,
    i64,
    i64,
    i64,
    i64,
    Option<i64>,
    Option<i64>,
);

impl Store {
    /// Gateway traffic per application and audit chain from the start of `since`'s UTC day
    /// on, sorted by application then chain. Reads the per-day summary, never the payloads.
    pub async fn gateway_traffic(&self, since: OffsetDateTime) -> Result<Vec<Traffic>> {
        let since_day = to_ms(since).div_euclid(DAY_MS);
        let rows: Vec<TrafficRow> = dispatch!(self, |pool| {
            sqlx::query_as(
                "SELECT application, chain, CAST(SUM(requests) AS BIGINT),
                    CAST(SUM(served) AS BIGINT), CAST(SUM(blocked) AS BIGINT),
                    CAST(SUM(refused) AS BIGINT), CAST(SUM(failed) AS BIGINT),
                    MIN(first_ms), MAX(last_ms),
                    MIN(CASE WHEN served > 0 THEN day END),
                    MAX(CASE WHEN served > 0 THEN day END)
                 FROM audit_traffic WHERE day >= $1
                 GROUP BY application, chain ORDER BY application, chain",
            )
            .bind(since_day)
            .fetch_all(pool)
            .await?
        });
        let n = |v: i64| u64::try_from(v).unwrap_or(0);
        Ok(rows
            .into_iter()
            .map(
                |(
                    application,
                    chain,
                    requests,
                    served,
                    blocked,
                    refused,
                    failed,
                    first,
                    last,
                    fs,
                    ls,
                )| {
                    Traffic {
                        application,
                        chain,
                        requests: n(requests),
                        served: n(served),
                        blocked: n(blocked),
                        refused: n(refused),
                        failed: n(failed),
                        first_at: from_ms(first),
                        last_at: from_ms(last),
                        first_served_day: fs,
                        last_served_day: ls,
                    }
                },
            )
            .collect())
    }

    /// Gateway traffic per application and UTC day (summed over audit chains) from the start
    /// of `since`'s day on, sorted by day then application: what the dashboard charts.
    pub async fn gateway_traffic_by_day(&self, since: OffsetDateTime) -> Result<Vec<TrafficDay>> {
        let since_day = to_ms(since).div_euclid(DAY_MS);
        type Row = (String, i64, i64, i64, i64, i64, i64, i64, i64, i64);
        let rows: Vec<Row> = dispatch!(self, |pool| {
            sqlx::query_as(
                "SELECT application, day, CAST(SUM(requests) AS BIGINT),
                    CAST(SUM(served) AS BIGINT), CAST(SUM(blocked) AS BIGINT),
                    CAST(SUM(refused) AS BIGINT), CAST(SUM(failed) AS BIGINT),
                    CAST(SUM(redactions) AS BIGINT), CAST(SUM(timed) AS BIGINT),
                    CAST(SUM(latency_us_total) AS BIGINT)
                 FROM audit_traffic WHERE day >= $1
                 GROUP BY application, day ORDER BY day, application",
            )
            .bind(since_day)
            .fetch_all(pool)
            .await?
        });
        let n = |v: i64| u64::try_from(v).unwrap_or(0);
        Ok(rows
            .into_iter()
            .map(
                |(
                    application,
                    day,
                    requests,
                    served,
                    blocked,
                    refused,
                    failed,
                    redactions,
                    timed,
                    latency_us,
                )| TrafficDay {
                    application,
                    day,
                    requests: n(requests),
                    served: n(served),
                    blocked: n(blocked),
                    refused: n(refused),
                    failed: n(failed),
                    redactions: n(redactions),
                    timed: n(timed),
                    mean_latency_ms: (timed > 0).then(|| latency_us as f64 / timed as f64 / 1000.0),
                },
            )
            .collect())
    }

    /// Removes traffic summaries of days that ended before `before`.
    pub(crate) async fn prune_traffic(&self, before: OffsetDateTime) -> Result<u64> {
        let day = to_ms(before).div_euclid(DAY_MS);
        Ok(dispatch!(self, |pool| {
            sqlx::query("DELETE FROM audit_traffic WHERE day < $1")
                .bind(day)
                .execute(pool)
                .await?
                .rows_affected()
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_follow_status_and_error() {
        let c = |p: &str| classify(p).unwrap().map(|s| (s.application, s.outcome));
        assert_eq!(
            c(r#"{"application":"a","status":200,"error":null}"#),
            Some(("a".into(), Outcome::Served))
        );
        assert_eq!(
            c(r#"{"application":"a","status":400,"error":"input_blocked"}"#),
            Some(("a".into(), Outcome::Blocked))
        );
        assert_eq!(
            c(r#"{"application":"a","status":200,"error":"output_blocked"}"#),
            Some(("a".into(), Outcome::Blocked))
        );
        assert_eq!(
            c(r#"{"application":"a","status":403,"error":"application_not_served"}"#),
            Some(("a".into(), Outcome::Refused))
        );
        assert_eq!(
            c(r#"{"application":"a","status":502,"error":"upstream_error"}"#),
            Some(("a".into(), Outcome::Failed))
        );
        assert_eq!(c(r#"{"application":null,"status":401}"#), None);
        assert_eq!(c(r#"{"application":"","status":200}"#), None);
        assert_eq!(c(r#"{"application":7}"#), None);
        assert_eq!(c("[1,2]"), None);
        assert_eq!(c(r#"["a", 200]"#), None);
        assert_eq!(
            c(r#"{"application":"\u00e9t\u00e9"}"#),
            Some(("été".into(), Outcome::Served))
        );
        assert!(classify("{not json").is_err());
        // Figures of another shape beside the outcome: the request still counts, without them.
        let odd =
            classify(r#"{"application":"a","status":200,"latency_ms":"fast","verdicts":"none"}"#)
                .unwrap()
                .unwrap();
        assert_eq!(
            (odd.outcome, odd.latency_ms, odd.redactions),
            (Outcome::Served, None, 0)
        );
        let full = classify(
            r#"{"application":"a","status":200,"latency_ms":12.5,"verdicts":{"redactions":3,"detectors":{"pii":3}}}"#,
        )
        .unwrap()
        .unwrap();
        assert_eq!((full.latency_ms, full.redactions), (Some(12.5), 3));
    }
}
