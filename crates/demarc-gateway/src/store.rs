//! The gateway on top of `demarc-store`: keys looked up by hash, audit events appended to a
//! hash-chained log (one chain per gateway process), and evidence of what the gateway enforced.
//!
//! Evidence is reported as observation kinds ([`observations`]), each only where its fact
//! holds; the catalog's `observed_by` maps kinds to areas ([`evidence`]), so no area id is
//! written here.

use demarc_model::{CheckedCatalog, ObservationKind};
use demarc_store::{Evidence, NewAuditEvent, Store};
use std::sync::Arc;
use time::OffsetDateTime;

use crate::audit::{AuditEvent, AuditSink, SinkFuture};
use crate::canary::{CanaryFuture, CanarySource};
use crate::error::BackendError;
use crate::gateway::Gateway;
use crate::keys::{KeyRecord, KeySource, LookupFuture};
use crate::limits::CountFuture;
use crate::limits::batched::{AddAllFuture, BatchedCounters, CounterTable};

/// How long gateway evidence counts after it was written. A running gateway rewrites it every
/// minute; one that stopped shows as expiring after 15 days (assess warns 30 days ahead) and
/// expired after 45.
pub const EVIDENCE_VALID_FOR: time::Duration = time::Duration::days(45);

/// Keys from the store's `api_keys` table.
pub struct StoreKeys(pub Store);

impl KeySource for StoreKeys {
    fn lookup<'a>(&'a self, hash: &'a [u8; 32]) -> LookupFuture<'a> {
        Box::pin(async move {
            let key = self
                .0
                .lookup_api_key_with_hash(hash)
                .await
                .map_err(BackendError::from)?;
            // The store finds the row by an index lookup on the SHA-256 (which reveals
            // nothing about the key); the authenticator then compares the stored hash
            // with the presented one in constant time.
            Ok(key.and_then(|(k, stored)| {
                let stored: [u8; 32] = stored.try_into().ok()?;
                Some(KeyRecord {
                    hash: stored,
                    active: k.is_active(),
                    application: k.application,
                })
            }))
        })
    }
}

/// Canaries from the store's `canaries` table.
pub struct StoreCanaries(pub Store);

impl CanarySource for StoreCanaries {
    fn live<'a>(
        &'a self,
        application: &'a str,
        retired_since: OffsetDateTime,
    ) -> CanaryFuture<'a, Vec<demarc_store::Canary>> {
        Box::pin(async move {
            self.0
                .live_canaries(application, retired_since)
                .await
                .map_err(BackendError::from)
        })
    }

    fn rotate_if_current<'a>(
        &'a self,
        application: &'a str,
        expected: Option<&'a str>,
    ) -> CanaryFuture<'a, Option<demarc_store::Canary>> {
        Box::pin(async move {
            self.0
                .rotate_canary_if_current(application, expected)
                .await
                .map_err(BackendError::from)
        })
    }
}

/// Rate and token counters shared by every gateway on the same store: the `rate_counters`
/// table, written through [`BatchedCounters`] (see [`StoreCounters::batched`]).
pub struct StoreCounters(pub Store);

impl StoreCounters {
    /// The store's counters behind the task that batches concurrent requests into one
    /// statement (call inside a tokio runtime).
    pub fn batched(store: Store) -> BatchedCounters {
        BatchedCounters::start(Arc::new(Self(store)))
    }
}

fn window_time(ms: i64) -> Result<OffsetDateTime, BackendError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map_err(BackendError::from)
}

impl CounterTable for StoreCounters {
    fn add_all<'a>(&'a self, adds: &'a [(&'a str, i64, i64)]) -> AddAllFuture<'a> {
        Box::pin(async move {
            let adds = adds
                .iter()
                .map(|&(key, window, by)| Ok((key, window_time(window)?, by)))
                .collect::<Result<Vec<_>, BackendError>>()?;
            self.0
                .add_to_rate_counters(&adds)
                .await
                .map_err(BackendError::from)
        })
    }

    fn prune(&self, before_ms: i64) -> CountFuture<'_> {
        Box::pin(async move {
            let removed = self
                .0
                .prune_rate_counters(window_time(before_ms)?)
                .await
                .map_err(BackendError::from)?;
            Ok(i64::try_from(removed).unwrap_or(i64::MAX))
        })
    }
}

/// Audit events into one hash chain of the store.
pub struct StoreSink {
    store: Store,
    chain: String,
}

impl StoreSink {
    pub fn new(store: Store, chain: String) -> Self {
        Self { store, chain }
    }

    /// A chain id unique to this gateway process: host, listening port and process id.
    pub fn default_chain(port: u16) -> String {
        let host = demarc_store::host_name();
        format!("gateway@{host}:{port}:{}", std::process::id())
    }
}

impl AuditSink for StoreSink {
    /// Invalid data and a broken chain are refused whatever is tried again; a store that is
    /// down, busy or unreachable may take the batch later.
    fn refuses_for_good(&self, error: &BackendError) -> bool {
        error.downcast_ref::<serde_json::Error>().is_some()
            || matches!(
                error.downcast_ref::<demarc_store::StoreError>(),
                Some(
                    demarc_store::StoreError::Invalid { .. }
                        | demarc_store::StoreError::ChainBroken { .. }
                )
            )
    }

    fn write<'a>(&'a self, batch: &'a [AuditEvent]) -> SinkFuture<'a> {
        Box::pin(async move {
            let events: Vec<NewAuditEvent> = batch
                .iter()
                .map(|e| {
                    Ok(NewAuditEvent {
                        at: e.time,
                        payload: serde_json::to_string(e).map_err(BackendError::from)?,
                    })
                })
                .collect::<Result<_, BackendError>>()?;
            self.store
                .append_audit_batch(&self.chain, &events)
                .await
                .map(|_| ())
                .map_err(BackendError::from)
        })
    }
}

/// One fact the gateway observed for one application, before the catalog maps it to areas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    pub application: String,
    pub kind: ObservationKind,
    /// The fact and its window in one line.
    pub summary: String,
}

/// What the gateway observed for each application since it started. Each kind is reported
/// only where its fact holds:
///
/// - `gateway-input-scan`: the application's policy scans input and at least one request's
///   input was scanned;
/// - `gateway-output-scan`: the policy scans output, or a generated canary guards the
///   application's system context, and at least one answer was scanned (the canary's part
///   of the summary: answers checked for a system-prompt leak and leaks blocked);
/// - `gateway-protected-content`: the policy checks output against registered protected
///   content or canary tokens, and at least one answer was checked;
/// - `gateway-access-control`: per-application keys (always), a request or token limit for
///   the application, and a request size bound are all enforced, and requests came in;
/// - `gateway-grounding`: the application has approved sources and at least one request was
///   grounded in them;
/// - `gateway-traffic`: the gateway answered at least one of the application's requests.
pub fn observations(gateway: &Gateway) -> Vec<Observation> {
    let since = window_start(gateway.started_at);
    let max_body = gateway.config.max_body_bytes;
    let mut out = Vec::new();
    for (app, coverage, a) in gateway.activity() {
        if a.requests == 0 {
            continue;
        }
        let mut push = |kind, summary: String| {
            out.push(Observation {
                application: app.clone(),
                kind,
                summary,
            });
        };
        let policy = &coverage.name;
        if coverage.input && a.input_scanned > 0 {
            push(
                ObservationKind::GatewayInputScan,
                format!(
                    "input scanned by policy `{policy}` on every request that reached it: {} of {} requests scanned, {} blocked, {} values redacted, since {since}",
                    a.input_scanned, a.requests, a.input_blocked, a.redactions
                ),
            );
        }
        // A leaked system prompt is caught on output: the canary is part of prompt filtering.
        let canary = coverage.canary.as_ref().map(|words| {
            format!(
                "system-prompt leaks checked against {words}: {} requests carried it, {} leaks blocked",
                a.canary_injected, a.canary_blocked
            )
        });
        match (&canary, coverage.output) {
            (_, true) if a.output_scanned > 0 => push(
                ObservationKind::GatewayOutputScan,
                format!(
                    "output scanned by policy `{policy}` on every answer, streamed ones event by event: {} answers scanned, {} blocked{}, since {since}",
                    a.output_scanned,
                    a.output_blocked,
                    canary
                        .as_ref()
                        .map(|c| format!("; {c}"))
                        .unwrap_or_default()
                ),
            ),
            (Some(canary), false) if a.canary_injected > 0 => push(
                ObservationKind::GatewayOutputScan,
                format!(
                    "output checked on every answer, streamed ones event by event: {canary}, since {since}"
                ),
            ),
            _ => {}
        }
        if coverage.ip && a.output_scanned > 0 {
            push(
                ObservationKind::GatewayProtectedContent,
                format!(
                    "output checked by policy `{policy}` against {}: {} answers checked, {} blocked, since {since}",
                    coverage.ip_checks.join(" and "),
                    a.output_scanned,
                    a.output_blocked
                ),
            );
        }
        if let Some(limits) = limit_words(gateway, &app).filter(|_| max_body > 0) {
            push(
                ObservationKind::GatewayAccessControl,
                format!(
                    "every request authenticated with a per-application key; limits enforced: {limits}; request bodies at most {max_body} bytes: {} requests, {} refused by limits, since {since}",
                    a.requests, a.rate_limited
                ),
            );
        }
        if let (Some(sources), true) = (&coverage.grounding, a.grounded > 0) {
            push(
                ObservationKind::GatewayGrounding,
                format!(
                    "answers grounded in approved sources ({}) with per-group access: {} of {} requests grounded, since {since}",
                    sources.join(", "),
                    a.grounded,
                    a.requests
                ),
            );
        }
        if a.served > 0 {
            push(
                ObservationKind::GatewayTraffic,
                format!(
                    "served through the demarc gateway: {} requests answered of {} received, since {since}",
                    a.served, a.requests
                ),
            );
        }
    }
    out
}

/// The application's request or token limits in words; `None` when it has neither.
fn limit_words(gateway: &Gateway, app: &str) -> Option<String> {
    let limits = gateway
        .config
        .applications
        .iter()
        .find(|a| a.id == app)?
        .limits;
    let mut words = Vec::new();
    if let Some(n) = limits.requests_per_minute {
        words.push(format!("{n} requests/min"));
    }
    if let Some(n) = limits.tokens_per_minute {
        words.push(format!("{n} tokens/min"));
    }
    if words.is_empty() {
        return None;
    }
    if let Some(n) = limits.user_requests_per_minute {
        words.push(format!("{n} requests/min per user"));
    }
    if let Some(n) = limits.user_tokens_per_minute {
        words.push(format!("{n} tokens/min per user"));
    }
    Some(words.join(", "))
}

/// The start of the observation window as written in summaries: `2026-11-02 14:03 UTC`.
fn window_start(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!("{} {:02}:{:02} UTC", t.date(), t.hour(), t.minute())
}

/// The observations as evidence rows: one per area of `catalog` whose `observed_by` lists the
/// observation's kind (an observation no area lists is not stored). `source` names the
/// observer, e.g. the gateway's audit chain.
pub fn evidence(
    observations: &[Observation],
    catalog: &CheckedCatalog,
    source: &str,
    now: OffsetDateTime,
) -> Vec<Evidence> {
    let mut out = Vec::new();
    for o in observations {
        for area in catalog.areas_observed_by(o.kind) {
            out.push(Evidence {
                application: o.application.clone(),
                area: area.id.clone(),
                kind: o.kind.as_str().into(),
                source: source.into(),
                observed_at: now,
                summary: o.summary.clone(),
                expires_at: Some(now + EVIDENCE_VALID_FOR),
            });
        }
    }
    out
}

/// Write what the gateway observed so far to the store, as evidence under `catalog`'s areas,
/// in one transaction. Returns the number of rows written.
pub async fn write_evidence(
    store: &Store,
    gateway: &Gateway,
    catalog: &CheckedCatalog,
    source: &str,
) -> Result<usize, demarc_store::StoreError> {
    let items = evidence(
        &observations(gateway),
        catalog,
        source,
        OffsetDateTime::now_utc(),
    );
    store.put_evidence_batch(&items).await?;
    Ok(items.len())
}
