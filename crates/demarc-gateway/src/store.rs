//! The gateway on top of `demarc-store`: keys looked up by hash, audit events appended to a
//! hash-chained log (one chain per gateway process), and evidence of what the gateway enforced.

use demarc_store::{Evidence, NewAuditEvent, Store};
use time::OffsetDateTime;

use crate::audit::{AuditEvent, AuditSink, SinkFuture};
use crate::keys::{KeyRecord, KeySource, LookupFuture};
use crate::limits::{CountFuture, SharedCounters};
use crate::server::Gateway;

/// How long gateway evidence counts after it was written. A running gateway rewrites it every
/// minute; one that stopped shows as expiring after 15 days (assess warns 30 days ahead) and
/// expired after 45.
pub const EVIDENCE_VALID_FOR: time::Duration = time::Duration::days(45);
/// What produced the evidence.
pub const EVIDENCE_SOURCE: &str = "gateway";

/// Keys from the store's `api_keys` table.
pub struct StoreKeys(pub Store);

impl KeySource for StoreKeys {
    fn lookup<'a>(&'a self, hash: &'a [u8; 32]) -> LookupFuture<'a> {
        Box::pin(async move {
            let key = self
                .0
                .lookup_api_key_with_hash(hash)
                .await
                .map_err(|e| e.to_string())?;
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

/// Rate and token counters shared by every gateway on the same store.
pub struct StoreCounters(pub Store);

impl SharedCounters for StoreCounters {
    fn add<'a>(&'a self, key: &'a str, window_start_ms: i64, by: i64) -> CountFuture<'a> {
        Box::pin(async move {
            let start =
                OffsetDateTime::from_unix_timestamp_nanos(i128::from(window_start_ms) * 1_000_000)
                    .map_err(|e| e.to_string())?;
            self.0
                .increment_rate_counter(key, start, by)
                .await
                .map_err(|e| e.to_string())
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
        let host = std::env::var("HOSTNAME")
            .ok()
            .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
            .map(|h| {
                h.trim()
                    .chars()
                    .filter(|c| c.is_ascii_graphic())
                    .take(64)
                    .collect::<String>()
            })
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".into());
        format!("gateway@{host}:{port}:{}", std::process::id())
    }
}

impl AuditSink for StoreSink {
    fn write<'a>(&'a self, batch: &'a [AuditEvent]) -> SinkFuture<'a> {
        Box::pin(async move {
            let events: Vec<NewAuditEvent> = batch
                .iter()
                .map(|e| {
                    Ok(NewAuditEvent {
                        at: e.time,
                        payload: serde_json::to_string(e).map_err(|e| e.to_string())?,
                    })
                })
                .collect::<Result<_, String>>()?;
            self.store
                .append_audit_batch(&self.chain, &events)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
    }
}

/// Evidence for each application the gateway served: `prompt-filtering` when its policy scans
/// input, `application-security` always (keys, limits), `ip-copyright` when output is checked
/// against protected content. Applications with no requests yet get none.
pub fn evidence(gateway: &Gateway, now: OffsetDateTime) -> Vec<Evidence> {
    let since = gateway.started_at.date();
    let max_body = gateway.config.max_body_bytes;
    let mut out = Vec::new();
    for (app, coverage, a) in gateway.activity() {
        if a.requests == 0 {
            continue;
        }
        let item = |area: &str, summary: String| Evidence {
            application: app.clone(),
            area: area.into(),
            source: EVIDENCE_SOURCE.into(),
            observed_at: now,
            summary,
            expires_at: Some(now + EVIDENCE_VALID_FOR),
        };
        if coverage.input {
            out.push(item(
                "prompt-filtering",
                format!(
                    "enforced by the demarc gateway (policy `{}`): {} requests scanned on input since {since}, {} blocked, {} values redacted; {} responses scanned on output, {} blocked",
                    coverage.name, a.input_scanned, a.input_blocked, a.redactions, a.output_scanned, a.output_blocked
                ),
            ));
        }
        out.push(item(
            "application-security",
            format!(
                "enforced by the demarc gateway: every request authenticated with a per-application key; {} requests since {since}, {} refused by rate limits; request bodies limited to {max_body} bytes",
                a.requests, a.rate_limited
            ),
        ));
        if let Some(sources) = &coverage.grounding {
            out.push(item(
                "grounding",
                format!(
                    "enforced by the demarc gateway: answers grounded only in approved sources ({}) with per-group access; {} of {} requests grounded since {since}",
                    sources.join(", "), a.grounded, a.requests
                ),
            ));
        }
        if coverage.ip {
            out.push(item(
                "ip-copyright",
                format!(
                    "enforced by the demarc gateway: output checked against registered protected content; {} responses scanned since {since}, {} blocked",
                    a.output_scanned, a.output_blocked
                ),
            ));
        }
    }
    out
}

/// Write the current evidence to the store.
pub async fn write_evidence(
    store: &Store,
    gateway: &Gateway,
) -> Result<usize, demarc_store::StoreError> {
    let items = evidence(gateway, OffsetDateTime::now_utc());
    for e in &items {
        store.put_evidence(e).await?;
    }
    Ok(items.len())
}
