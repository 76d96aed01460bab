//! Estates imported and assessment runs with their per-duty results, for
//! `demarc history`: coverage over time, per application.

use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::error::{Result, StoreError};
use crate::{BeginWrite, Store, check_text, dispatch, from_ms, to_ms};

/// Most duty results in one run.
pub const MAX_RESULTS: usize = 1_000_000;
const MAX_FIELD: usize = 1024;
/// Rows per multi-row INSERT (8 parameters each, under both backends' limits).
pub(crate) const ROWS_PER_INSERT: usize = 1000;

/// A `duty_results` row as selected by [`Store::duty_results`].
type DutyRow = (String, String, String, Option<String>, String, String, bool);

/// Identifies a stored run.
pub type RunId = i64;

/// The estate an assessment was run on: its name and the SHA-256 of its file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EstateRecord {
    pub name: String,
    /// Lowercase hex SHA-256 of the estate file's bytes.
    pub content_sha256: String,
}

impl EstateRecord {
    /// Names an estate and hashes its file content (the bytes as read from disk).
    pub fn from_content(name: impl Into<String>, content: &[u8]) -> EstateRecord {
        EstateRecord {
            name: name.into(),
            content_sha256: hex::encode(Sha256::digest(content)),
        }
    }
}

/// The verdict on one duty of one application, as the store keeps it. The CLI
/// converts from demarc-model's assessment; the store does not interpret the
/// status strings.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DutyResult {
    pub application: String,
    /// Responsibility area id.
    pub area: String,
    /// The accountable party (a provider or a team).
    pub accountable: String,
    /// The internal team owning the duty, when there is one.
    pub owner_team: Option<String>,
    pub control_status: String,
    pub evidence_status: String,
    /// Whether the duty counts as covered (owner, control and current evidence).
    pub covered: bool,
}

/// Coverage of one application in one run.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HistoryPoint {
    pub run: RunId,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub estate: String,
    pub application: String,
    pub covered: i64,
    pub total: i64,
}

impl Store {
    /// Records one assessment run: the estate it ran on (created on first sight,
    /// reused when the same name and content were recorded before), the time it
    /// ran, and every duty result, in one transaction. Returns the run id.
    ///
    /// `demarc assess ESTATE --record` calls this with
    /// [`EstateRecord::from_content`] of the estate file and one [`DutyResult`]
    /// per (application, area) duty that falls on the organisation.
    /// Text fields must be 1 to 1024 bytes (`owner_team` may be `None`).
    pub async fn record_assessment(
        &self,
        estate: &EstateRecord,
        at: OffsetDateTime,
        results: &[DutyResult],
    ) -> Result<RunId> {
        check_text("estate name", &estate.name, MAX_FIELD)?;
        if estate.content_sha256.len() != 64
            || !estate.content_sha256.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(StoreError::invalid(
                "estate content hash",
                "expected 64 hex digits (SHA-256)",
            ));
        }
        if results.len() > MAX_RESULTS {
            return Err(StoreError::invalid(
                "duty results",
                format!("{} results, the limit is {MAX_RESULTS}", results.len()),
            ));
        }
        for r in results {
            check_text("duty application", &r.application, MAX_FIELD)?;
            check_text("duty area", &r.area, MAX_FIELD)?;
            check_text("duty accountable party", &r.accountable, MAX_FIELD)?;
            check_text("duty control status", &r.control_status, MAX_FIELD)?;
            check_text("duty evidence status", &r.evidence_status, MAX_FIELD)?;
            if let Some(team) = &r.owner_team {
                check_text("duty owner team", team, MAX_FIELD)?;
            }
        }
        let at_ms = to_ms(at);
        dispatch!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let estate_id: i64 = sqlx::query_scalar(
                "INSERT INTO estates (name, content_sha256, imported_at_ms) VALUES ($1, $2, $3)
                 ON CONFLICT (name, content_sha256) DO UPDATE SET name = excluded.name
                 RETURNING id",
            )
            .bind(&estate.name)
            .bind(&estate.content_sha256)
            .bind(at_ms)
            .fetch_one(&mut *tx)
            .await?;
            let run: i64 = sqlx::query_scalar(
                "INSERT INTO assessment_runs (estate_id, at_ms) VALUES ($1, $2) RETURNING id",
            )
            .bind(estate_id)
            .bind(at_ms)
            .fetch_one(&mut *tx)
            .await?;
            // Multi-row inserts: one round trip per chunk, not per duty.
            for chunk in results.chunks(ROWS_PER_INSERT) {
                let mut insert = sqlx::QueryBuilder::new(
                    "INSERT INTO duty_results (run_id, application, area, accountable, owner_team,
                     control_status, evidence_status, covered) ",
                );
                insert.push_values(chunk, |mut row, r| {
                    row.push_bind(run)
                        .push_bind(&r.application)
                        .push_bind(&r.area)
                        .push_bind(&r.accountable)
                        .push_bind(&r.owner_team)
                        .push_bind(&r.control_status)
                        .push_bind(&r.evidence_status)
                        .push_bind(r.covered);
                });
                insert.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(run)
        })
    }

    /// Coverage (covered / total duties) per run and application, oldest run
    /// first; only `application` when given.
    pub async fn history(&self, application: Option<&str>) -> Result<Vec<HistoryPoint>> {
        let rows: Vec<(i64, i64, String, String, i64, i64)> = dispatch!(self, |pool| {
            sqlx::query_as(
                "SELECT r.id, r.at_ms, e.name, d.application,
                        SUM(CASE WHEN d.covered THEN 1 ELSE 0 END), COUNT(*)
                 FROM assessment_runs r
                 JOIN estates e ON e.id = r.estate_id
                 JOIN duty_results d ON d.run_id = r.id
                 WHERE $1 OR d.application = $2
                 GROUP BY r.id, r.at_ms, e.name, d.application
                 ORDER BY r.at_ms, r.id, d.application",
            )
            .bind(application.is_none())
            .bind(application.unwrap_or(""))
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(
                |(run, at_ms, estate, application, covered, total)| HistoryPoint {
                    run,
                    at: from_ms(at_ms),
                    estate,
                    application,
                    covered,
                    total,
                },
            )
            .collect())
    }

    /// The duty results of one run, in the order they were recorded.
    pub async fn duty_results(&self, run: RunId) -> Result<Vec<DutyResult>> {
        let rows: Vec<DutyRow> = dispatch!(self, |pool| {
            sqlx::query_as(
                "SELECT application, area, accountable, owner_team, control_status, evidence_status, covered
                 FROM duty_results WHERE run_id = $1 ORDER BY application, area",
            )
            .bind(run)
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(
                |(
                    application,
                    area,
                    accountable,
                    owner_team,
                    control_status,
                    evidence_status,
                    covered,
                )| DutyResult {
                    application,
                    area,
                    accountable,
                    owner_team,
                    control_status,
                    evidence_status,
                    covered,
                },
            )
            .collect())
    }
}
