//! The gateway audit trail: append-only and tamper-evident.
//!
//! Each writer (a gateway replica) appends to its own *chain*. Event `seq` of a
//! chain stores the SHA-256 of its predecessor (`prev_hash`; 32 zero bytes for
//! seq 1) and its own `hash` over a canonical encoding of (chain, seq, time,
//! payload, prev_hash), see [`event_hash`]. `audit_chains` records each chain's
//! head (last seq and hash), updated in the same transaction as the events, so a
//! truncated tail is detected too.
//!
//! Pruning (retention) removes a prefix of a chain and appends a *checkpoint*
//! (last pruned seq and its hash), sealed by a hash over the checkpoint and the
//! previous checkpoint's seal; the remaining events then verify from it.
//!
//! What this detects: any event altered, deleted, inserted or reordered with SQL,
//! and a truncated chain. What it cannot detect on its own: someone with write
//! access recomputing every hash after a change. Keep a copy of the chain heads
//! (`demarc audit verify --format json` prints them) outside the store to anchor them.

use futures_util::TryStreamExt;
use sha2::{Digest, Sha256};
use sqlx::Row;
use time::OffsetDateTime;

use crate::error::{Result, StoreError};
use crate::{BeginSnapshot, BeginWrite, Pool, Store, check_text, dispatch, from_ms, to_ms};

/// `prev_hash` of a chain's first event.
pub const GENESIS: [u8; 32] = [0; 32];
/// Longest chain id, in bytes.
pub const MAX_CHAIN_LEN: usize = 128;
/// Largest event payload, in bytes.
pub const MAX_PAYLOAD_LEN: usize = 1 << 20;
/// Most events in one [`Store::append_audit_batch`] call.
pub const MAX_BATCH: usize = 100_000;

const EVENT_TAG: &[u8] = b"demarc-audit-event-v1\0";
const CHECKPOINT_TAG: &[u8] = b"demarc-audit-checkpoint-v1\0";
/// Rows per multi-row INSERT on SQLite (6 parameters each, well under its limit);
/// 500 measured faster than 200 with `bench/store.sh`.
const SQLITE_ROWS_PER_INSERT: usize = 500;
/// Rows handed to the hashing threads at a time by `verify`.
const VERIFY_CHUNK: usize = 8192;

/// One event to append: when it happened and its payload (JSON text).
#[derive(Debug, Clone)]
pub struct NewAuditEvent {
    pub at: OffsetDateTime,
    /// A JSON document, stored and hashed byte for byte as given.
    pub payload: String,
}

/// Where a batch landed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AppendReceipt {
    pub chain: String,
    pub first_seq: i64,
    pub last_seq: i64,
    /// Hex SHA-256 of the chain's new head.
    pub head_hash: String,
}

/// One stored event, as read back.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AuditEvent {
    pub chain: String,
    pub seq: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub payload: String,
}

/// What kind of break `verify` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BreakKind {
    /// The event's content no longer matches its hash.
    Altered,
    /// One or more events are missing at this seq.
    Missing,
    /// The event does not link to its predecessor (inserted, removed or reordered).
    Unlinked,
    /// A retention checkpoint is not intact, or the chain does not continue from it.
    Checkpoint,
    /// The chain's end differs from its recorded head (events added outside demarc).
    Head,
    /// Events of a chain that demarc never started.
    UnknownChain,
}

/// The first broken link of a chain.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct BrokenLink {
    pub seq: i64,
    pub kind: BreakKind,
    pub reason: String,
}

/// The verdict on one chain.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct ChainReport {
    pub chain: String,
    /// Events present.
    pub events: u64,
    pub first_seq: Option<i64>,
    pub last_seq: Option<i64>,
    /// Hex hash of the recorded head: anchor it outside the store.
    pub head_hash: String,
    /// Seq through which the chain was pruned, if it was.
    pub pruned_through: Option<i64>,
    /// `None` when the chain verifies.
    pub broken: Option<BrokenLink>,
}

/// The verdict on every chain.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct VerifyReport {
    pub events: u64,
    pub chains: Vec<ChainReport>,
}

impl VerifyReport {
    /// True when every chain verifies.
    pub fn is_intact(&self) -> bool {
        self.chains.iter().all(|c| c.broken.is_none())
    }
}

/// What one prune did to one chain.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ChainPrune {
    pub chain: String,
    /// The new checkpoint: events up to and including this seq are gone.
    pub through_seq: i64,
    pub events_removed: u64,
}

/// What [`Store::prune`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PruneReport {
    pub chains: Vec<ChainPrune>,
    pub findings_removed: u64,
    /// Per-day gateway traffic summaries removed with the audit events.
    pub traffic_days_removed: u64,
    /// Daily evidence rows (and expired latest observations) removed.
    pub evidence_removed: u64,
}

/// SHA-256 over the canonical encoding of one event: a version tag, then each
/// field in a fixed order, variable-length ones prefixed with their length, so
/// that no two different events encode alike.
pub fn event_hash(chain: &str, seq: i64, at_ms: i64, payload: &[u8], prev_hash: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(EVENT_TAG);
    h.update((chain.len() as u64).to_be_bytes());
    h.update(chain.as_bytes());
    h.update(seq.to_be_bytes());
    h.update(at_ms.to_be_bytes());
    h.update((payload.len() as u64).to_be_bytes());
    h.update(payload);
    h.update((prev_hash.len() as u64).to_be_bytes());
    h.update(prev_hash);
    h.finalize().into()
}

/// The seal of a retention checkpoint, chained to the previous checkpoint's seal.
pub fn checkpoint_seal(
    chain: &str,
    seq: i64,
    hash: &[u8],
    pruned_at_ms: i64,
    prev_seal: &[u8],
) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(CHECKPOINT_TAG);
    h.update((chain.len() as u64).to_be_bytes());
    h.update(chain.as_bytes());
    h.update(seq.to_be_bytes());
    h.update((hash.len() as u64).to_be_bytes());
    h.update(hash);
    h.update(pruned_at_ms.to_be_bytes());
    h.update((prev_seal.len() as u64).to_be_bytes());
    h.update(prev_seal);
    h.finalize().into()
}

fn check_chain(chain: &str) -> Result<()> {
    check_text("audit chain id", chain, MAX_CHAIN_LEN)?;
    if chain.chars().any(char::is_control) {
        return Err(StoreError::invalid(
            "audit chain id",
            "it contains control characters",
        ));
    }
    Ok(())
}

/// An event with its place in the chain computed, ready to insert.
struct Linked<'a> {
    seq: i64,
    at_ms: i64,
    payload: &'a str,
    prev: [u8; 32],
    hash: [u8; 32],
}

fn link<'a>(
    chain: &str,
    head_seq: i64,
    head_hash: &[u8],
    events: &'a [NewAuditEvent],
) -> Result<Vec<Linked<'a>>> {
    let mut prev: [u8; 32] = head_hash.try_into().map_err(|_| StoreError::ChainBroken {
        chain: chain.to_owned(),
        seq: head_seq,
    })?;
    let mut out = Vec::with_capacity(events.len());
    for (i, event) in events.iter().enumerate() {
        let seq = head_seq + 1 + i as i64;
        let at_ms = to_ms(event.at);
        let hash = event_hash(chain, seq, at_ms, event.payload.as_bytes(), &prev);
        out.push(Linked {
            seq,
            at_ms,
            payload: &event.payload,
            prev,
            hash,
        });
        prev = hash;
    }
    Ok(out)
}

/// Locks the chain's head row for this transaction (creating it for a new
/// chain) and returns its seq and hash. Works on both backends: an upsert takes
/// the row lock on PostgreSQL; SQLite already holds the write lock.
macro_rules! lock_head {
    ($tx:expr, $chain:expr) => {{
        let row = sqlx::query(
            "INSERT INTO audit_chains (chain, head_seq, head_hash) VALUES ($1, 0, $2)
             ON CONFLICT (chain) DO UPDATE SET head_seq = audit_chains.head_seq
             RETURNING head_seq, head_hash",
        )
        .bind($chain)
        .bind(&GENESIS[..])
        .fetch_one(&mut *$tx)
        .await?;
        let seq: i64 = row.try_get(0)?;
        let hash: Vec<u8> = row.try_get(1)?;
        (seq, hash)
    }};
}

/// Records the chain's new head (last event of `rows`) and returns it.
macro_rules! set_head {
    ($tx:expr, $chain:expr, $rows:expr) => {{
        let (seq, hash) = $rows
            .last()
            .map(|r| (r.seq, r.hash))
            .unwrap_or((0, GENESIS));
        sqlx::query("UPDATE audit_chains SET head_seq = $1, head_hash = $2 WHERE chain = $3")
            .bind(seq)
            .bind(&hash[..])
            .bind($chain)
            .execute(&mut *$tx)
            .await?;
        (seq, hash)
    }};
}

impl Store {
    /// Appends `events` to `chain` in one transaction, continuing its hash chain.
    /// Either the whole batch is stored or none of it (a writer killed mid-batch
    /// loses that batch only). Several processes may append to different chains,
    /// or even the same one, at once: the chain head is locked per batch.
    ///
    /// Each payload must be a JSON document of at most [`MAX_PAYLOAD_LEN`] bytes;
    /// a batch holds 1 to [`MAX_BATCH`] events.
    pub async fn append_audit_batch(
        &self,
        chain: &str,
        events: &[NewAuditEvent],
    ) -> Result<AppendReceipt> {
        check_chain(chain)?;
        if events.is_empty() || events.len() > MAX_BATCH {
            return Err(StoreError::invalid(
                "audit batch",
                format!(
                    "it holds {} events, expected 1 to {MAX_BATCH}",
                    events.len()
                ),
            ));
        }
        // Validates every payload as JSON and tallies the gateway traffic it records.
        let mut tallies = crate::traffic::Tallies::default();
        for (i, event) in events.iter().enumerate() {
            check_text("audit payload", &event.payload, MAX_PAYLOAD_LEN)?;
            match crate::traffic::classify(&event.payload) {
                Ok(Some(seen)) => tallies.add(seen, to_ms(event.at)),
                Ok(None) => {}
                Err(e) => {
                    return Err(StoreError::invalid(
                        "audit payload",
                        format!("event {i} of the batch is not JSON: {e}"),
                    ));
                }
            }
        }
        let (first_seq, last) = match &self.pool {
            Pool::Sqlite(pool) => {
                let mut tx = pool.begin_write().await?;
                let (head_seq, head_hash) = lock_head!(tx, chain);
                let rows = link(chain, head_seq, &head_hash, events)?;
                for chunk in rows.chunks(SQLITE_ROWS_PER_INSERT) {
                    let sql = sqlite_insert_sql(chunk.len());
                    let mut query = sqlx::query(&sql);
                    for r in chunk {
                        query = query
                            .bind(chain)
                            .bind(r.seq)
                            .bind(r.at_ms)
                            .bind(r.payload)
                            .bind(&r.prev[..])
                            .bind(&r.hash[..]);
                    }
                    query.execute(&mut *tx).await?;
                }
                let last = set_head!(tx, chain, rows);
                crate::traffic::upsert_tallies!(tx, chain, tallies);
                tx.commit().await?;
                (head_seq + 1, last)
            }
            Pool::Postgres(pool) => {
                let mut tx = pool.begin_write().await?;
                let (head_seq, head_hash) = lock_head!(tx, chain);
                let rows = link(chain, head_seq, &head_hash, events)?;
                // One statement per batch: arrays unnested server-side.
                let seqs: Vec<i64> = rows.iter().map(|r| r.seq).collect();
                let ats: Vec<i64> = rows.iter().map(|r| r.at_ms).collect();
                let payloads: Vec<&str> = rows.iter().map(|r| r.payload).collect();
                let prevs: Vec<&[u8]> = rows.iter().map(|r| &r.prev[..]).collect();
                let hashes: Vec<&[u8]> = rows.iter().map(|r| &r.hash[..]).collect();
                sqlx::query(
                    "INSERT INTO audit_events (chain, seq, at_ms, payload, prev_hash, hash)
                     SELECT $1, * FROM UNNEST($2::bigint[], $3::bigint[], $4::text[], $5::bytea[], $6::bytea[])",
                )
                .bind(chain)
                .bind(&seqs)
                .bind(&ats)
                .bind(&payloads)
                .bind(&prevs)
                .bind(&hashes)
                .execute(&mut *tx)
                .await?;
                let last = set_head!(tx, chain, rows);
                crate::traffic::upsert_tallies!(tx, chain, tallies);
                tx.commit().await?;
                (head_seq + 1, last)
            }
        };
        Ok(AppendReceipt {
            chain: chain.to_owned(),
            first_seq,
            last_seq: last.0,
            head_hash: hex::encode(last.1),
        })
    }

    /// Events of `chain` with `seq` in `from..=to`, oldest first (at most 10,000).
    pub async fn audit_events(&self, chain: &str, from: i64, to: i64) -> Result<Vec<AuditEvent>> {
        let rows = dispatch!(self, |pool| {
            sqlx::query_as::<_, (String, i64, i64, String)>(
                "SELECT chain, seq, at_ms, payload FROM audit_events
                 WHERE chain = $1 AND seq >= $2 AND seq <= $3 ORDER BY seq LIMIT 10000",
            )
            .bind(chain)
            .bind(from)
            .bind(to)
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(chain, seq, at_ms, payload)| AuditEvent {
                chain,
                seq,
                at: from_ms(at_ms),
                payload,
            })
            .collect())
    }

    /// Checks every chain (or only `chain`) from its start or checkpoint to its
    /// recorded head, and reports the first broken link of each. Rows are
    /// streamed in key order and hashed on all cores; memory stays bounded.
    pub async fn verify_audit(&self) -> Result<VerifyReport> {
        self.verify_chains(None).await
    }

    /// [`Store::verify_audit`] for one chain.
    pub async fn verify_audit_chain(&self, chain: &str) -> Result<VerifyReport> {
        self.verify_chains(Some(chain)).await
    }

    async fn verify_chains(&self, only: Option<&str>) -> Result<VerifyReport> {
        // Two query shapes rather than `$1 OR chain = $2`, so the chain filter uses the key.
        let filter = if only.is_some() {
            "WHERE chain = $1"
        } else {
            ""
        };
        let heads_sql =
            format!("SELECT chain, head_seq, head_hash FROM audit_chains {filter} ORDER BY chain");
        let checkpoints_sql = format!(
            "SELECT chain, seq, hash, pruned_at_ms, prev_seal, seal FROM audit_checkpoints {filter} ORDER BY chain, seq"
        );
        let events_sql = format!(
            "SELECT chain, seq, at_ms, payload, prev_hash, hash FROM audit_events {filter} ORDER BY chain, seq"
        );
        // Heads, checkpoints and events are read in one snapshot: a gateway
        // appending meanwhile must not look like events added outside demarc.
        dispatch!(self, |pool| {
            let mut snapshot = pool.begin_snapshot().await?;
            let mut q = sqlx::query_as(&heads_sql);
            if let Some(chain) = only {
                q = q.bind(chain);
            }
            let heads: Vec<(String, i64, Vec<u8>)> = q.fetch_all(&mut *snapshot).await?;
            let mut q = sqlx::query_as(&checkpoints_sql);
            if let Some(chain) = only {
                q = q.bind(chain);
            }
            let checkpoints: Vec<CheckpointRow> = q.fetch_all(&mut *snapshot).await?;
            let (tx, verifier) = spawn_verifier(Walker::new(heads, checkpoints));
            let fetched: Result<()> = async {
                let mut query = sqlx::query(&events_sql);
                if let Some(chain) = only {
                    query = query.bind(chain);
                }
                let mut rows = query.fetch(&mut *snapshot);
                let mut chunk = Vec::with_capacity(VERIFY_CHUNK);
                while let Some(row) = rows.try_next().await? {
                    chunk.push(RawEvent {
                        chain: row.try_get(0)?,
                        seq: row.try_get(1)?,
                        at_ms: row.try_get(2)?,
                        payload: row.try_get(3)?,
                        prev: row.try_get(4)?,
                        hash: row.try_get(5)?,
                    });
                    if chunk.len() == VERIFY_CHUNK {
                        let full = std::mem::replace(&mut chunk, Vec::with_capacity(VERIFY_CHUNK));
                        if tx.send(full).await.is_err() {
                            break;
                        }
                    }
                }
                if !chunk.is_empty() {
                    let _ = tx.send(chunk).await;
                }
                Ok(())
            }
            .await;
            drop(tx);
            // Read-only: ending the snapshot discards nothing.
            let _ = snapshot.rollback().await;
            let report = verifier.await.map_err(|e| {
                StoreError::invalid("audit verification", format!("the verifier stopped: {e}"))
            })?;
            fetched?;
            Ok(report)
        })
    }

    /// Removes audit events older than `before` from the start of each chain,
    /// and writes a sealed checkpoint so the rest still verifies. A chain is
    /// pruned only up to its first event at or after `before`, and only when
    /// the part to remove verifies (pruning must not hide tampering).
    pub async fn prune_audit(&self, before: OffsetDateTime) -> Result<Vec<ChainPrune>> {
        let cutoff = to_ms(before);
        let chains: Vec<String> = dispatch!(self, |pool| {
            sqlx::query_scalar("SELECT chain FROM audit_chains ORDER BY chain")
                .fetch_all(pool)
                .await?
        });
        let mut pruned = Vec::new();
        for chain in chains {
            let report = self.verify_audit_chain(&chain).await?;
            let broken_at = report
                .chains
                .first()
                .and_then(|c| c.broken.as_ref())
                .map(|b| b.seq);
            let result = async {
                dispatch!(self, |pool| {
                let mut tx = pool.begin_write().await?;
                let (head_seq, _) = lock_head!(tx, chain.as_str());
                let keep_from: Option<i64> = sqlx::query_scalar(
                    "SELECT MIN(seq) FROM audit_events WHERE chain = $1 AND at_ms >= $2",
                )
                .bind(&chain)
                .bind(cutoff)
                .fetch_one(&mut *tx)
                .await?;
                let through = keep_from.map_or(head_seq, |s| s - 1);
                let last_cp: Option<(i64, Vec<u8>)> = sqlx::query_as(
                    "SELECT seq, seal FROM audit_checkpoints WHERE chain = $1 ORDER BY seq DESC LIMIT 1",
                )
                .bind(&chain)
                .fetch_optional(&mut *tx)
                .await?;
                let (cp_seq, prev_seal) = last_cp.unwrap_or((0, GENESIS.to_vec()));
                if through <= cp_seq {
                    return Ok::<_, StoreError>(None);
                }
                if let Some(seq) = broken_at.filter(|s| *s <= through + 1) {
                    return Err(StoreError::ChainBroken { chain: chain.clone(), seq });
                }
                let hash: Vec<u8> = sqlx::query_scalar("SELECT hash FROM audit_events WHERE chain = $1 AND seq = $2")
                    .bind(&chain)
                    .bind(through)
                    .fetch_optional(&mut *tx)
                    .await?
                    .ok_or_else(|| StoreError::ChainBroken { chain: chain.clone(), seq: through })?;
                let removed = sqlx::query("DELETE FROM audit_events WHERE chain = $1 AND seq <= $2")
                    .bind(&chain)
                    .bind(through)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                let now = to_ms(OffsetDateTime::now_utc());
                let seal = checkpoint_seal(&chain, through, &hash, now, &prev_seal);
                sqlx::query(
                    "INSERT INTO audit_checkpoints (chain, seq, hash, pruned_at_ms, prev_seal, seal)
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&chain)
                .bind(through)
                .bind(&hash)
                .bind(now)
                .bind(&prev_seal)
                .bind(&seal[..])
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(Some(ChainPrune { chain: chain.clone(), through_seq: through, events_removed: removed }))
                })
            }
            .await?;
            if let Some(p) = result {
                tracing::info!(chain = %p.chain, through = p.through_seq, removed = p.events_removed, "pruned audit chain");
                pruned.push(p);
            }
        }
        Ok(pruned)
    }

    /// Retention in one call: audit events older than `audit_before` (see
    /// [`Store::prune_audit`]; the per-day traffic summaries of days that ended before it go
    /// too), discovery findings last seen before `findings_before`, and daily evidence rows
    /// older than `evidence_before` (see [`Store::prune_evidence`]); `None` keeps that kind
    /// of record.
    pub async fn prune(
        &self,
        audit_before: Option<OffsetDateTime>,
        findings_before: Option<OffsetDateTime>,
        evidence_before: Option<OffsetDateTime>,
    ) -> Result<PruneReport> {
        let mut report = PruneReport::default();
        if let Some(before) = audit_before {
            report.chains = self.prune_audit(before).await?;
            report.traffic_days_removed = self.prune_traffic(before).await?;
        }
        if let Some(before) = evidence_before {
            report.evidence_removed = self.prune_evidence(before).await?;
        }
        if let Some(before) = findings_before {
            report.findings_removed = self.prune_discovery_findings(before).await?;
        }
        Ok(report)
    }
}

fn sqlite_insert_sql(rows: usize) -> String {
    // Anonymous `?` parameters: SQLite looks up a named one (`$N`) by a linear
    // scan, which makes large multi-row statements quadratic.
    let mut sql = String::with_capacity(80 + rows * 14);
    sql.push_str("INSERT INTO audit_events (chain, seq, at_ms, payload, prev_hash, hash) VALUES ");
    for i in 0..rows {
        if i > 0 {
            sql.push(',');
        }
        sql.push_str("(?,?,?,?,?,?)");
    }
    sql
}

/// An `audit_checkpoints` row: chain, seq, hash, pruned_at_ms, prev_seal, seal.
type CheckpointRow = (String, i64, Vec<u8>, i64, Vec<u8>, Vec<u8>);

struct RawEvent {
    chain: String,
    seq: i64,
    at_ms: i64,
    payload: String,
    prev: Vec<u8>,
    hash: Vec<u8>,
}

/// Starts the blocking side of `verify`: it hashes each chunk received on all
/// cores, then walks it in order.
fn spawn_verifier(
    mut walker: Walker,
) -> (
    tokio::sync::mpsc::Sender<Vec<RawEvent>>,
    tokio::task::JoinHandle<VerifyReport>,
) {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<RawEvent>>(4);
    let handle = tokio::task::spawn_blocking(move || {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        while let Some(chunk) = rx.blocking_recv() {
            let intact = hash_all(&chunk, threads);
            for (event, ok) in chunk.iter().zip(intact) {
                walker.step(event, ok);
            }
        }
        walker.finish()
    });
    (tx, handle)
}

/// Whether each event's stored hash matches its content, computed on `threads` threads.
fn hash_all(chunk: &[RawEvent], threads: usize) -> Vec<bool> {
    let check = |e: &RawEvent| {
        event_hash(&e.chain, e.seq, e.at_ms, e.payload.as_bytes(), &e.prev)[..] == e.hash[..]
    };
    if threads <= 1 || chunk.len() < 256 {
        return chunk.iter().map(check).collect();
    }
    let per = chunk.len().div_ceil(threads);
    let mut out = vec![false; chunk.len()];
    std::thread::scope(|scope| {
        for (events, results) in chunk.chunks(per).zip(out.chunks_mut(per)) {
            scope.spawn(move || {
                for (e, r) in events.iter().zip(results.iter_mut()) {
                    *r = check(e);
                }
            });
        }
    });
    out
}

struct Head {
    seq: i64,
    hash: Vec<u8>,
}

/// Where a chain starts after pruning, or the break its checkpoints show.
enum Base {
    Start { seq: i64, hash: Vec<u8> },
    Broken(BrokenLink),
}

/// Walks events in (chain, seq) order and keeps the first break of each chain.
struct Walker {
    heads: std::collections::BTreeMap<String, Head>,
    bases: std::collections::BTreeMap<String, (Base, Option<i64>)>,
    current: Option<ChainState>,
    done: Vec<ChainReport>,
    events: u64,
}

struct ChainState {
    report: ChainReport,
    head_seq: Option<i64>,
    next_seq: i64,
    prev: Vec<u8>,
}

impl Walker {
    fn new(heads: Vec<(String, i64, Vec<u8>)>, checkpoints: Vec<CheckpointRow>) -> Walker {
        let mut bases = std::collections::BTreeMap::new();
        for (chain, seq, hash, pruned_at, prev_seal, seal) in checkpoints {
            let entry = bases.entry(chain.clone()).or_insert((
                Base::Start {
                    seq: 0,
                    hash: GENESIS.to_vec(),
                },
                None::<(i64, Vec<u8>)>,
            ));
            if matches!(entry.0, Base::Broken(_)) {
                continue;
            }
            let expected_prev = entry.1.as_ref().map_or(&GENESIS[..], |(_, s)| &s[..]);
            let intact = prev_seal == expected_prev
                && checkpoint_seal(&chain, seq, &hash, pruned_at, &prev_seal)[..] == seal[..];
            entry.0 = if intact {
                Base::Start { seq, hash }
            } else {
                Base::Broken(BrokenLink {
                    seq,
                    kind: BreakKind::Checkpoint,
                    reason: format!("the retention checkpoint at seq {seq} was altered or removed"),
                })
            };
            entry.1 = Some((seq, seal));
        }
        let bases = bases
            .into_iter()
            .map(|(chain, (base, last))| (chain, (base, last.map(|(seq, _)| seq))))
            .collect();
        let heads = heads
            .into_iter()
            .map(|(chain, seq, hash)| (chain, Head { seq, hash }))
            .collect();
        Walker {
            heads,
            bases,
            current: None,
            done: Vec::new(),
            events: 0,
        }
    }

    fn start(&mut self, chain: &str) -> ChainState {
        let (base, pruned_through) = match self.bases.remove(chain) {
            Some((base, through)) => (base, through),
            None => (
                Base::Start {
                    seq: 0,
                    hash: GENESIS.to_vec(),
                },
                None,
            ),
        };
        let head_hash = self
            .heads
            .get(chain)
            .map(|h| hex::encode(&h.hash))
            .unwrap_or_default();
        let mut state = ChainState {
            report: ChainReport {
                chain: chain.to_owned(),
                events: 0,
                first_seq: None,
                last_seq: None,
                head_hash,
                pruned_through,
                broken: None,
            },
            head_seq: self.heads.get(chain).map(|h| h.seq),
            next_seq: 1,
            prev: GENESIS.to_vec(),
        };
        match base {
            Base::Start { seq, hash } => {
                state.next_seq = seq + 1;
                state.prev = hash;
            }
            Base::Broken(b) => state.report.broken = Some(b),
        }
        if !self.heads.contains_key(chain) && state.report.broken.is_none() {
            state.report.broken = Some(BrokenLink {
                seq: state.next_seq,
                kind: BreakKind::UnknownChain,
                reason: "events of a chain that has no recorded head (inserted outside demarc)"
                    .into(),
            });
        }
        state
    }

    fn step(&mut self, e: &RawEvent, content_ok: bool) {
        self.events += 1;
        if self
            .current
            .as_ref()
            .is_none_or(|c| c.report.chain != e.chain)
        {
            self.finish_current();
            let state = self.start(&e.chain);
            self.current = Some(state);
        }
        let Some(state) = self.current.as_mut() else {
            return;
        };
        let r = &mut state.report;
        r.events += 1;
        r.first_seq.get_or_insert(e.seq);
        r.last_seq = Some(e.seq);
        if r.broken.is_some() {
            return;
        }
        let expected = state.next_seq;
        let broken = if e.seq < expected {
            Some((
                e.seq,
                BreakKind::Checkpoint,
                format!(
                    "event seq {} lies before the chain's checkpoint (inserted after pruning)",
                    e.seq
                ),
            ))
        } else if e.seq > expected {
            let what = if e.seq == expected + 1 {
                format!("event seq {expected} is missing")
            } else {
                format!("events seq {expected} to {} are missing", e.seq - 1)
            };
            Some((
                expected,
                BreakKind::Missing,
                format!("{what} (deleted or moved)"),
            ))
        } else if state.head_seq.is_some_and(|head| e.seq > head) {
            Some((
                e.seq,
                BreakKind::Head,
                format!(
                    "event seq {} lies after the recorded head (added outside demarc)",
                    e.seq
                ),
            ))
        } else if e.prev != state.prev {
            Some((
                e.seq,
                BreakKind::Unlinked,
                format!(
                    "event seq {} does not link to seq {} (an event was inserted, replaced or reordered)",
                    e.seq,
                    e.seq - 1
                ),
            ))
        } else if !content_ok {
            Some((
                e.seq,
                BreakKind::Altered,
                format!("event seq {} does not match its hash (altered)", e.seq),
            ))
        } else {
            None
        };
        match broken {
            Some((seq, kind, reason)) => r.broken = Some(BrokenLink { seq, kind, reason }),
            None => {
                state.next_seq = e.seq + 1;
                state.prev.clone_from(&e.hash);
            }
        }
    }

    /// Compares the end of the current chain with its recorded head.
    fn finish_current(&mut self) {
        let Some(mut state) = self.current.take() else {
            return;
        };
        if state.report.broken.is_none()
            && let Some(head) = self.heads.get(&state.report.chain)
        {
            let last = state.next_seq - 1;
            state.report.broken = if last < head.seq {
                Some(BrokenLink {
                    seq: last + 1,
                    kind: BreakKind::Missing,
                    reason: format!(
                        "events seq {} to {} are missing at the end of the chain (deleted)",
                        last + 1,
                        head.seq
                    ),
                })
            } else if last > head.seq {
                Some(BrokenLink {
                    seq: head.seq + 1,
                    kind: BreakKind::Head,
                    reason: format!(
                        "events after the recorded head seq {} were added outside demarc",
                        head.seq
                    ),
                })
            } else if state.prev != head.hash {
                Some(BrokenLink {
                    seq: last,
                    kind: BreakKind::Head,
                    reason: format!("the last event, seq {last}, differs from the recorded head"),
                })
            } else {
                None
            };
        }
        self.heads.remove(&state.report.chain);
        self.done.push(state.report);
    }

    fn finish(mut self) -> VerifyReport {
        self.finish_current();
        // Chains with a head but no events left: fully pruned, or emptied.
        let remaining: Vec<String> = self.heads.keys().cloned().collect();
        for chain in remaining {
            let state = self.start(&chain);
            self.current = Some(state);
            self.finish_current();
        }
        self.done.sort_by(|a, b| a.chain.cmp(&b.chain));
        VerifyReport {
            events: self.events,
            chains: self.done,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_depends_on_every_field() {
        let base = event_hash("c", 1, 2, b"{}", &GENESIS);
        assert_ne!(base, event_hash("d", 1, 2, b"{}", &GENESIS));
        assert_ne!(base, event_hash("c", 2, 2, b"{}", &GENESIS));
        assert_ne!(base, event_hash("c", 1, 3, b"{}", &GENESIS));
        assert_ne!(base, event_hash("c", 1, 2, b"[]", &GENESIS));
        assert_ne!(base, event_hash("c", 1, 2, b"{}", &[1; 32]));
        // Length prefixes keep field boundaries apart.
        assert_ne!(
            event_hash("ab", 1, 2, b"c", &GENESIS),
            event_hash("a", 1, 2, b"bc", &GENESIS)
        );
    }

    #[test]
    fn sqlite_insert_numbers_parameters() {
        assert_eq!(
            sqlite_insert_sql(2),
            "INSERT INTO audit_events (chain, seq, at_ms, payload, prev_hash, hash) VALUES (?,?,?,?,?,?),(?,?,?,?,?,?)"
        );
    }

    /// A valid chain of `n` events as `verify` reads them, and its head.
    fn chain(n: usize) -> (Vec<RawEvent>, (String, i64, Vec<u8>)) {
        let mut prev = GENESIS.to_vec();
        let mut out = Vec::new();
        for i in 0..n {
            let seq = i as i64 + 1;
            let payload = format!(r#"{{"n":{i}}}"#);
            let hash = event_hash("c", seq, 1000 + seq, payload.as_bytes(), &prev).to_vec();
            out.push(RawEvent {
                chain: "c".into(),
                seq,
                at_ms: 1000 + seq,
                payload,
                prev: prev.clone(),
                hash: hash.clone(),
            });
            prev = hash;
        }
        (out, ("c".into(), n as i64, prev))
    }

    fn walk(events: &[RawEvent], head: (String, i64, Vec<u8>)) -> Option<BrokenLink> {
        let mut walker = Walker::new(vec![head], Vec::new());
        for (e, ok) in events.iter().zip(hash_all(events, 2)) {
            walker.step(e, ok);
        }
        walker
            .finish()
            .chains
            .into_iter()
            .next()
            .and_then(|c| c.broken)
    }

    proptest::proptest! {
        /// Any single alteration, deletion, insertion or swap is found, at or
        /// just after the place it was made.
        #[test]
        fn every_tampering_is_found(n in 2usize..40, pick in 0usize..1000, kind in 0u8..4) {
            let (mut events, head) = chain(n);
            proptest::prop_assert!(walk(&events, head.clone()).is_none());
            let at = pick % n;
            match kind {
                0 => events[at].payload.push(' '),
                1 => { events.remove(at); }
                2 => {
                    let copy = RawEvent { payload: r#"{"forged":1}"#.into(), ..clone_event(&events[at]) };
                    events.insert(at, copy);
                    for (i, e) in events.iter_mut().enumerate() { e.seq = i as i64 + 1; }
                }
                _ => {
                    let other = if at + 1 < n { at + 1 } else { at - 1 };
                    let (a, b) = (events[at].seq, events[other].seq);
                    events.swap(at, other);
                    events[at].seq = a;
                    events[other].seq = b;
                }
            }
            let broken = walk(&events, head);
            proptest::prop_assert!(broken.is_some(), "kind {} at {} not detected", kind, at);
            let seq = broken.map(|b| b.seq).unwrap_or_default();
            proptest::prop_assert!(seq <= at as i64 + 2, "reported at {} for a change at seq {}", seq, at + 1);
        }
    }

    fn clone_event(e: &RawEvent) -> RawEvent {
        RawEvent {
            chain: e.chain.clone(),
            seq: e.seq,
            at_ms: e.at_ms,
            payload: e.payload.clone(),
            prev: e.prev.clone(),
            hash: e.hash.clone(),
        }
    }
}
