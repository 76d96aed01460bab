//! Evidence that other parts of demarc produce automatically (the gateway
//! enforcing a control, a scan, a discovery run), which `demarc assess`
//! consults alongside the evidence declared in the estate.

use time::OffsetDateTime;

use crate::error::{Result, StoreError};
use crate::{Store, check_text, dispatch, from_ms, to_ms};

const MAX_FIELD: usize = 1024;
const MAX_SUMMARY: usize = 16 * 1024;

/// One piece of automatic evidence for a duty (application × area).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Evidence {
    pub application: String,
    /// Responsibility area id, as in the catalog.
    pub area: String,
    /// What produced it, e.g. `gateway:prompt-filter`.
    pub source: String,
    #[serde(with = "time::serde::rfc3339")]
    pub observed_at: OffsetDateTime,
    /// One line a reviewer reads.
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
}

impl Store {
    /// Stores one piece of evidence. Older evidence for the same application and
    /// area is kept (history); [`Store::latest_evidence`] returns the newest.
    pub async fn put_evidence(&self, evidence: &Evidence) -> Result<()> {
        check_text("evidence application", &evidence.application, MAX_FIELD)?;
        check_text("evidence area", &evidence.area, MAX_FIELD)?;
        check_text("evidence source", &evidence.source, MAX_FIELD)?;
        check_text("evidence summary", &evidence.summary, MAX_SUMMARY)?;
        if evidence
            .expires_at
            .is_some_and(|e| e < evidence.observed_at)
        {
            return Err(StoreError::invalid(
                "evidence expiry",
                "it expires before it was observed",
            ));
        }
        dispatch!(self, |pool| {
            sqlx::query(
                "INSERT INTO evidence (application, area, source, observed_at_ms, summary, expires_at_ms)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&evidence.application)
            .bind(&evidence.area)
            .bind(&evidence.source)
            .bind(to_ms(evidence.observed_at))
            .bind(&evidence.summary)
            .bind(evidence.expires_at.map(to_ms))
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// The newest evidence per (application, area), for every application or
    /// only `application`; sorted by application then area. Expired evidence is
    /// returned too: check [`Evidence::is_current`] (`demarc assess` reports
    /// expired evidence as such rather than ignoring it).
    pub async fn latest_evidence(&self, application: Option<&str>) -> Result<Vec<Evidence>> {
        // Newest by observed time; among equal times the last stored wins.
        let rows: Vec<(String, String, String, i64, String, Option<i64>)> = dispatch!(
            self,
            |pool| {
                sqlx::query_as(
                "SELECT e.application, e.area, e.source, e.observed_at_ms, e.summary, e.expires_at_ms
                 FROM evidence e
                 WHERE ($1 OR e.application = $2)
                   AND NOT EXISTS (
                     SELECT 1 FROM evidence n
                     WHERE n.application = e.application AND n.area = e.area
                       AND (n.observed_at_ms > e.observed_at_ms
                            OR (n.observed_at_ms = e.observed_at_ms AND n.id > e.id)))
                 ORDER BY e.application, e.area",
            )
            .bind(application.is_none())
            .bind(application.unwrap_or(""))
            .fetch_all(pool)
            .await?
            }
        );
        Ok(rows
            .into_iter()
            .map(
                |(application, area, source, observed, summary, expires)| Evidence {
                    application,
                    area,
                    source,
                    observed_at: from_ms(observed),
                    summary,
                    expires_at: expires.map(from_ms),
                },
            )
            .collect())
    }
}
