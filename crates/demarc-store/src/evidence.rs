//! Evidence that other parts of demarc observe by themselves (the gateway scanning input,
//! enforcing limits, grounding answers; discovery seeing a service), which `demarc assess`
//! consults alongside the evidence declared in the estate.
//!
//! Each observation names its *kind* (an observation kind such as `gateway-input-scan`, see
//! `demarc_model::ObservationKind`) and the catalog area it supports. The store keeps it
//! bounded however often it is written:
//!
//! - `evidence`: the latest observation per application × area × kind (an upsert; an
//!   older observation never replaces a newer one);
//! - `evidence_days`: one row per application × area × kind × UTC day, with how many
//!   observations were written that day, the first and last time and the day's latest
//!   summary. [`Store::prune_evidence`] applies the retention (`demarc audit prune
//!   --evidence-older-than DAYS`).
//!
//! So a gateway writing every minute adds no rows after the first write of the day.

use time::OffsetDateTime;

use crate::error::{Result, StoreError};
use crate::traffic::DAY_MS;
use crate::{BeginWrite, Store, check_text, dispatch, from_ms, to_ms};

const MAX_FIELD: usize = 1024;
const MAX_SUMMARY: usize = 16 * 1024;

/// The kind given to rows stored before observations had kinds (schema 1). No catalog maps
/// it to an area, so such rows are listed but support no duty.
pub const UNCLASSIFIED_KIND: &str = "unclassified";

/// One observation supporting a duty (application × area).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Evidence {
    pub application: String,
    /// Responsibility area id, as in the catalog.
    pub area: String,
    /// The observation kind (`gateway-input-scan`, ...): what fact was observed.
    pub kind: String,
    /// What produced it, e.g. `gateway`.
    pub source: String,
    #[serde(with = "time::serde::rfc3339")]
    pub observed_at: OffsetDateTime,
    /// The fact in one line a reviewer reads.
    pub summary: String,
    /// When it stops counting; `None` never expires.
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
}

impl Evidence {
    /// Whether it still counts at `now` (not expired).
    pub fn is_current(&self, now: OffsetDateTime) -> bool {
        self.expires_at.is_none_or(|e| e > now)
    }

    fn check(&self) -> Result<()> {
        check_text("evidence application", &self.application, MAX_FIELD)?;
        check_text("evidence area", &self.area, MAX_FIELD)?;
        check_text("evidence kind", &self.kind, MAX_FIELD)?;
        check_text("evidence source", &self.source, MAX_FIELD)?;
        check_text("evidence summary", &self.summary, MAX_SUMMARY)?;
        if self.expires_at.is_some_and(|e| e < self.observed_at) {
            return Err(StoreError::invalid(
                "evidence expiry",
                "it expires before it was observed",
            ));
        }
        Ok(())
    }
}

/// The summary of one day of observations of one kind for one duty.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EvidenceDay {
    pub application: String,
    pub area: String,
    pub kind: String,
    /// The UTC day, as days since 1970-01-01.
    pub day: i64,
    /// How many times it was observed (written) that day.
    pub observations: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub first_observed_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub last_observed_at: OffsetDateTime,
    pub source: String,
    /// The day's latest summary.
    pub summary: String,
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
}

type EvidenceRow = (String, String, String, String, i64, String, Option<i64>);

fn evidence_from(row: EvidenceRow) -> Evidence {
    let (application, area, kind, source, observed, summary, expires) = row;
    Evidence {
        application,
        area,
        kind,
        source,
        observed_at: from_ms(observed),
        summary,
        expires_at: expires.map(from_ms),
    }
}

impl Store {
    /// Stores one observation: see [`Store::put_evidence_batch`].
    pub async fn put_evidence(&self, evidence: &Evidence) -> Result<()> {
        self.put_evidence_batch(std::slice::from_ref(evidence))
            .await
    }

    /// Stores observations in one transaction: each becomes the latest of its application ×
    /// area × kind (unless a newer one is stored) and is counted in its day's row.
    pub async fn put_evidence_batch(&self, items: &[Evidence]) -> Result<()> {
        for e in items {
            e.check()?;
        }
        if items.is_empty() {
            return Ok(());
        }
        dispatch!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            for e in items {
                let at = to_ms(e.observed_at);
                let expires = e.expires_at.map(to_ms);
                sqlx::query(
                    "INSERT INTO evidence (application, area, kind, source, observed_at_ms,
                        summary, expires_at_ms)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)
                     ON CONFLICT (application, area, kind) DO UPDATE SET
                        source = excluded.source, observed_at_ms = excluded.observed_at_ms,
                        summary = excluded.summary, expires_at_ms = excluded.expires_at_ms
                     WHERE excluded.observed_at_ms >= evidence.observed_at_ms",
                )
                .bind(&e.application)
                .bind(&e.area)
                .bind(&e.kind)
                .bind(&e.source)
                .bind(at)
                .bind(&e.summary)
                .bind(expires)
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "INSERT INTO evidence_days (application, area, kind, day, observations,
                        first_observed_ms, last_observed_ms, source, summary, expires_at_ms)
                     VALUES ($1, $2, $3, $4, 1, $5, $5, $6, $7, $8)
                     ON CONFLICT (application, area, kind, day) DO UPDATE SET
                        observations = evidence_days.observations + 1,
                        first_observed_ms = CASE
                            WHEN excluded.first_observed_ms < evidence_days.first_observed_ms
                            THEN excluded.first_observed_ms
                            ELSE evidence_days.first_observed_ms END,
                        last_observed_ms = CASE
                            WHEN excluded.last_observed_ms >= evidence_days.last_observed_ms
                            THEN excluded.last_observed_ms
                            ELSE evidence_days.last_observed_ms END,
                        source = CASE
                            WHEN excluded.last_observed_ms >= evidence_days.last_observed_ms
                            THEN excluded.source ELSE evidence_days.source END,
                        summary = CASE
                            WHEN excluded.last_observed_ms >= evidence_days.last_observed_ms
                            THEN excluded.summary ELSE evidence_days.summary END,
                        expires_at_ms = CASE
                            WHEN excluded.last_observed_ms >= evidence_days.last_observed_ms
                            THEN excluded.expires_at_ms ELSE evidence_days.expires_at_ms END",
                )
                .bind(&e.application)
                .bind(&e.area)
                .bind(&e.kind)
                .bind(at.div_euclid(DAY_MS))
                .bind(at)
                .bind(&e.source)
                .bind(&e.summary)
                .bind(expires)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// The latest observation per application × area × kind, for every application or only
    /// `application`; sorted by application, area, kind. Expired observations are returned
    /// too: check [`Evidence::is_current`] (`demarc assess` reports expired evidence as such
    /// rather than ignoring it).
    pub async fn latest_evidence(&self, application: Option<&str>) -> Result<Vec<Evidence>> {
        let rows: Vec<EvidenceRow> = dispatch!(self, |pool| {
            sqlx::query_as(
                "SELECT application, area, kind, source, observed_at_ms, summary, expires_at_ms
                 FROM evidence WHERE ($1 OR application = $2)
                 ORDER BY application, area, kind",
            )
            .bind(application.is_none())
            .bind(application.unwrap_or(""))
            .fetch_all(pool)
            .await?
        });
        Ok(rows.into_iter().map(evidence_from).collect())
    }

    /// The latest observations made at or after `since` (the observation window of
    /// `demarc assess`), sorted like [`Store::latest_evidence`]. Rows of the kind
    /// [`UNCLASSIFIED_KIND`] are left out.
    pub async fn observed_evidence(&self, since: OffsetDateTime) -> Result<Vec<Evidence>> {
        let rows: Vec<EvidenceRow> = dispatch!(self, |pool| {
            sqlx::query_as(
                "SELECT application, area, kind, source, observed_at_ms, summary, expires_at_ms
                 FROM evidence WHERE observed_at_ms >= $1 AND kind <> $2
                 ORDER BY application, area, kind",
            )
            .bind(to_ms(since))
            .bind(UNCLASSIFIED_KIND)
            .fetch_all(pool)
            .await?
        });
        Ok(rows.into_iter().map(evidence_from).collect())
    }

    /// The daily rows of one application (or all) from `since`'s UTC day on, sorted by
    /// application, area, kind, day.
    pub async fn evidence_days(
        &self,
        application: Option<&str>,
        since: OffsetDateTime,
    ) -> Result<Vec<EvidenceDay>> {
        type Row = (
            String,
            String,
            String,
            i64,
            i64,
            i64,
            i64,
            String,
            String,
            Option<i64>,
        );
        let rows: Vec<Row> = dispatch!(self, |pool| {
            sqlx::query_as(
                "SELECT application, area, kind, day, observations, first_observed_ms,
                    last_observed_ms, source, summary, expires_at_ms
                 FROM evidence_days WHERE ($1 OR application = $2) AND day >= $3
                 ORDER BY application, area, kind, day",
            )
            .bind(application.is_none())
            .bind(application.unwrap_or(""))
            .bind(to_ms(since).div_euclid(DAY_MS))
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(
                |(application, area, kind, day, n, first, last, source, summary, expires)| {
                    EvidenceDay {
                        application,
                        area,
                        kind,
                        day,
                        observations: u64::try_from(n).unwrap_or(0),
                        first_observed_at: from_ms(first),
                        last_observed_at: from_ms(last),
                        source,
                        summary,
                        expires_at: expires.map(from_ms),
                    }
                },
            )
            .collect())
    }

    /// Retention: removes the daily rows of days that ended before `before`, and latest
    /// observations that expired before it (they no longer count and are older than the
    /// retention). Returns the rows removed.
    pub async fn prune_evidence(&self, before: OffsetDateTime) -> Result<u64> {
        let cutoff = to_ms(before);
        dispatch!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let days = sqlx::query("DELETE FROM evidence_days WHERE day < $1")
                .bind(cutoff.div_euclid(DAY_MS))
                .execute(&mut *tx)
                .await?
                .rows_affected();
            let latest = sqlx::query("DELETE FROM evidence WHERE expires_at_ms < $1")
                .bind(cutoff)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
            Ok(days + latest)
        })
    }
}
