//! Discovery runs and their findings: which GenAI services each user reached.

use time::OffsetDateTime;

use crate::assessments::ROWS_PER_INSERT;
use crate::error::{Result, StoreError};
use crate::{BeginWrite, RunId, Store, check_text, dispatch, from_ms, to_ms};

const MAX_FIELD: usize = 1024;
/// Most findings in one run.
pub const MAX_FINDINGS: usize = 10_000_000;

/// Usage of one service by one user over a discovery run's logs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DiscoveryFinding {
    pub service: String,
    pub user: String,
    pub requests: i64,
    pub bytes_sent: i64,
    pub bytes_received: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub first_seen: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub last_seen: OffsetDateTime,
}

/// A stored discovery run.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DiscoveryRun {
    pub id: RunId,
    /// What was read (file names, a log source label).
    pub source: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub findings: i64,
}

impl Store {
    /// Records a discovery run over `source` at `at` with its findings, in one transaction.
    pub async fn record_discovery(
        &self,
        source: &str,
        at: OffsetDateTime,
        findings: &[DiscoveryFinding],
    ) -> Result<RunId> {
        check_text("discovery source", source, 4096)?;
        if findings.len() > MAX_FINDINGS {
            return Err(StoreError::invalid(
                "discovery findings",
                format!("{} findings, the limit is {MAX_FINDINGS}", findings.len()),
            ));
        }
        for f in findings {
            check_text("finding service", &f.service, MAX_FIELD)?;
            check_text("finding user", &f.user, MAX_FIELD)?;
            if f.requests < 0 || f.bytes_sent < 0 || f.bytes_received < 0 {
                return Err(StoreError::invalid(
                    "finding counters",
                    "requests and bytes must not be negative",
                ));
            }
        }
        dispatch!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let run: i64 = sqlx::query_scalar(
                "INSERT INTO discovery_runs (source, at_ms) VALUES ($1, $2) RETURNING id",
            )
            .bind(source)
            .bind(to_ms(at))
            .fetch_one(&mut *tx)
            .await?;
            for chunk in findings.chunks(ROWS_PER_INSERT) {
                let mut insert = sqlx::QueryBuilder::new(
                    "INSERT INTO discovery_findings (run_id, service, user_name, requests, bytes_sent,
                     bytes_received, first_seen_ms, last_seen_ms) ",
                );
                insert.push_values(chunk, |mut row, f| {
                    row.push_bind(run)
                        .push_bind(&f.service)
                        .push_bind(&f.user)
                        .push_bind(f.requests)
                        .push_bind(f.bytes_sent)
                        .push_bind(f.bytes_received)
                        .push_bind(to_ms(f.first_seen))
                        .push_bind(to_ms(f.last_seen));
                });
                insert.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(run)
        })
    }

    /// Discovery runs, newest first, with how many findings each still holds.
    pub async fn discovery_runs(&self) -> Result<Vec<DiscoveryRun>> {
        let rows: Vec<(i64, String, i64, i64)> = dispatch!(self, |pool| {
            sqlx::query_as(
                "SELECT r.id, r.source, r.at_ms, COUNT(f.run_id) FROM discovery_runs r
                 LEFT JOIN discovery_findings f ON f.run_id = r.id
                 GROUP BY r.id, r.source, r.at_ms ORDER BY r.at_ms DESC, r.id DESC",
            )
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(id, source, at_ms, findings)| DiscoveryRun {
                id,
                source,
                at: from_ms(at_ms),
                findings,
            })
            .collect())
    }

    /// The findings of one run, by service then user.
    pub async fn discovery_findings(&self, run: RunId) -> Result<Vec<DiscoveryFinding>> {
        let rows: Vec<(String, String, i64, i64, i64, i64, i64)> = dispatch!(self, |pool| {
            sqlx::query_as(
                "SELECT service, user_name, requests, bytes_sent, bytes_received, first_seen_ms, last_seen_ms
                 FROM discovery_findings WHERE run_id = $1 ORDER BY service, user_name",
            )
            .bind(run)
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(
                |(service, user, requests, bytes_sent, bytes_received, first, last)| {
                    DiscoveryFinding {
                        service,
                        user,
                        requests,
                        bytes_sent,
                        bytes_received,
                        first_seen: from_ms(first),
                        last_seen: from_ms(last),
                    }
                },
            )
            .collect())
    }

    /// Deletes findings last seen before `before`; returns how many.
    pub async fn prune_discovery_findings(&self, before: OffsetDateTime) -> Result<u64> {
        let removed = dispatch!(self, |pool| {
            sqlx::query("DELETE FROM discovery_findings WHERE last_seen_ms < $1")
                .bind(to_ms(before))
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(removed)
    }
}
