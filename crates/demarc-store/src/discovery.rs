//! Discovery runs and their findings: which GenAI services each user reached.

use time::OffsetDateTime;

use crate::assessments::ROWS_PER_INSERT;
use crate::error::{Result, StoreError};
use crate::{BeginWrite, RunId, Store, check_text, dispatch, from_ms, to_ms};

const MAX_FIELD: usize = 1024;
/// Most findings in one run.
pub const MAX_FINDINGS: usize = 10_000_000;

/// Usage of one service by one user over a discovery run's logs.
#[derive(
    Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema, serde::Deserialize,
)]
pub struct DiscoveryFinding {
    pub service: String,
    pub user: String,
    pub requests: i64,
    pub bytes_sent: i64,
    pub bytes_received: i64,
    #[schemars(with = "String")]
    #[serde(with = "time::serde::rfc3339")]
    pub first_seen: OffsetDateTime,
    #[schemars(with = "String")]
    #[serde(with = "time::serde::rfc3339")]
    pub last_seen: OffsetDateTime,
}

/// What the estate said of a finding when it was recorded, and what the log said of it.
#[derive(
    Debug, Clone, Default, PartialEq, Eq, serde::Serialize, schemars::JsonSchema, serde::Deserialize,
)]
pub struct FindingClass {
    /// Estate applications whose endpoints cover the finding (empty: no application does).
    pub applications: Vec<String>,
    /// `sanctioned`, `tolerated`, `discovered`, `unsanctioned`, `shadow` or `other-tenant`.
    pub status: String,
    /// The tenant host (an Azure resource, a Bedrock region) for a multi-tenant service.
    pub tenant: Option<String>,
    /// `user`, `ip` or `device`.
    pub user_kind: String,
    /// Host roles seen: `api ui`.
    pub host_kinds: String,
    /// Requests the proxy log says it blocked, and said it allowed.
    pub blocked: i64,
    pub allowed: i64,
    /// Requests to the service's ui, api or auth hosts; `Some(0)`: the identity reached the
    /// service only incidentally (a page's script, telemetry) and is no user of it. `None` in
    /// runs recorded before schema 7, which kept only identities that used the service.
    pub use_requests: Option<i64>,
}

impl FindingClass {
    /// Whether the identity used the service (not only reached it incidentally).
    pub fn used(&self) -> bool {
        self.use_requests.is_none_or(|n| n > 0)
    }
}

/// A finding with its classification.
#[derive(
    Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema, serde::Deserialize,
)]
pub struct ClassifiedFinding {
    #[serde(flatten)]
    pub finding: DiscoveryFinding,
    #[serde(flatten)]
    pub class: FindingClass,
}

/// What recorded discovery runs saw of one application (or of no application: an unlisted
/// service) in a time window, per run, service, tenant and status.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DiscoveryTraffic {
    pub run: RunId,
    /// The run's source (the log files).
    pub source: String,
    /// The estate application the traffic was classified to; `None` for a service that no
    /// application covered when the run was recorded.
    pub application: Option<String>,
    pub service: String,
    pub tenant: Option<String>,
    pub status: String,
    pub requests: i64,
    pub blocked: i64,
    pub allowed: i64,
    /// Distinct identities (users, addresses, devices) that used the service (not only
    /// reached it incidentally).
    pub users: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub first_seen: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub last_seen: OffsetDateTime,
}

/// The order of a page of findings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FindingOrder {
    /// By service, tenant and user: stable, for paging through all of them.
    ByService,
    /// Shadow, unsanctioned and other-tenant use first, then by requests: what to look at.
    RiskFirst,
}

type FindingRow = (
    String,
    String,
    i64,
    i64,
    i64,
    i64,
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    i64,
    i64,
    Option<i64>,
);

fn classified_from_row(r: FindingRow) -> ClassifiedFinding {
    ClassifiedFinding {
        finding: DiscoveryFinding {
            service: r.0,
            user: r.1,
            requests: r.2,
            bytes_sent: r.3,
            bytes_received: r.4,
            first_seen: from_ms(r.5),
            last_seen: from_ms(r.6),
        },
        class: FindingClass {
            applications: split_ids(r.7.as_deref()),
            status: r.8.unwrap_or_default(),
            tenant: r.9.filter(|t| !t.is_empty()),
            user_kind: r.10.unwrap_or_default(),
            host_kinds: r.11.unwrap_or_default(),
            blocked: r.12,
            allowed: r.13,
            use_requests: r.14,
        },
    }
}

/// Where a run's logs came from: its label, the sensor that read them, and each input's
/// content hash (an input already recorded by any run is refused).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunSource {
    /// What was read (file names, a log source label).
    pub source: String,
    /// The sensor (host, site, proxy cluster) that read the logs.
    pub sensor: Option<String>,
    pub inputs: Vec<RecordedInput>,
}

/// The run, sensor and name an input's content was recorded under.
const EARLIER_INPUT: &str = "SELECT r.id, r.sensor, i.name FROM discovery_inputs i
     JOIN discovery_runs r ON r.id = i.run_id WHERE i.sha256 = $1";
type EarlierInput = (i64, Option<String>, String);

fn describe_earlier((run, sensor, name): EarlierInput) -> String {
    let by = sensor
        .map(|s| format!(" from sensor `{s}`"))
        .unwrap_or_default();
    format!("`{name}` in run {run}{by}")
}

/// One input of a run: its name and the SHA-256 of its content as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedInput {
    pub name: String,
    pub sha256: [u8; 32],
    /// Bytes read (after decompression).
    pub bytes: i64,
}

/// A stored discovery run.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct DiscoveryRun {
    pub id: RunId,
    /// What was read (file names, a log source label).
    pub source: String,
    /// The sensor that read the logs, when the run named one.
    pub sensor: Option<String>,
    #[schemars(with = "String")]
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
        let classified: Vec<ClassifiedFinding> = findings
            .iter()
            .map(|f| ClassifiedFinding {
                finding: f.clone(),
                class: FindingClass::default(),
            })
            .collect();
        self.record_discovery_classified(source, at, &classified)
            .await
    }

    /// Records a discovery run whose findings carry what the estate said of them.
    pub async fn record_discovery_classified(
        &self,
        source: &str,
        at: OffsetDateTime,
        findings: &[ClassifiedFinding],
    ) -> Result<RunId> {
        let from = RunSource {
            source: source.to_owned(),
            ..RunSource::default()
        };
        self.record_discovery_from(&from, at, findings).await
    }

    /// Where content with this SHA-256 was recorded before, if it was: "`NAME` in run N from
    /// sensor `S`" (as [`StoreError::AlreadyRecorded`] says it).
    pub async fn earlier_recording(&self, sha256: &[u8; 32]) -> Result<Option<String>> {
        let earlier: Option<EarlierInput> = dispatch!(self, |pool| {
            sqlx::query_as(EARLIER_INPUT)
                .bind(&sha256[..])
                .fetch_optional(pool)
                .await?
        });
        Ok(earlier.map(describe_earlier))
    }

    /// Records a discovery run with its sensor and inputs. Refused with
    /// [`StoreError::AlreadyRecorded`], storing nothing, when an input's content was recorded
    /// before (by any run, any sensor) or appears twice in this run: the same log is never
    /// counted twice.
    pub async fn record_discovery_from(
        &self,
        from: &RunSource,
        at: OffsetDateTime,
        findings: &[ClassifiedFinding],
    ) -> Result<RunId> {
        let source = from.source.as_str();
        check_text("discovery source", source, 4096)?;
        if let Some(sensor) = &from.sensor {
            check_text("discovery sensor", sensor, 256)?;
        }
        for (i, input) in from.inputs.iter().enumerate() {
            check_text("discovery input name", &input.name, 4096)?;
            if let Some(earlier) = from.inputs[..i].iter().find(|e| e.sha256 == input.sha256) {
                return Err(StoreError::AlreadyRecorded {
                    input: input.name.clone(),
                    earlier: format!("`{}` in the same run (same content)", earlier.name),
                });
            }
        }
        if findings.len() > MAX_FINDINGS {
            return Err(StoreError::invalid(
                "discovery findings",
                format!("{} findings, the limit is {MAX_FINDINGS}", findings.len()),
            ));
        }
        for c in findings {
            let f = &c.finding;
            check_text("finding service", &f.service, MAX_FIELD)?;
            check_text("finding user", &f.user, MAX_FIELD)?;
            check_optional(
                "finding applications",
                &c.class.applications.join(" "),
                4096,
            )?;
            check_optional("finding status", &c.class.status, 64)?;
            check_optional(
                "finding tenant",
                c.class.tenant.as_deref().unwrap_or(""),
                MAX_FIELD,
            )?;
            check_optional("finding user kind", &c.class.user_kind, 64)?;
            check_optional("finding host kinds", &c.class.host_kinds, 256)?;
            if f.requests < 0
                || f.bytes_sent < 0
                || f.bytes_received < 0
                || c.class.blocked < 0
                || c.class.allowed < 0
            {
                return Err(StoreError::invalid(
                    "finding counters",
                    "requests and bytes must not be negative",
                ));
            }
        }
        dispatch!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            for input in &from.inputs {
                let earlier: Option<EarlierInput> = sqlx::query_as(EARLIER_INPUT)
                    .bind(&input.sha256[..])
                    .fetch_optional(&mut *tx)
                    .await?;
                if let Some(earlier) = earlier {
                    return Err(StoreError::AlreadyRecorded {
                        input: input.name.clone(),
                        earlier: describe_earlier(earlier),
                    });
                }
            }
            let run: i64 = sqlx::query_scalar(
                "INSERT INTO discovery_runs (source, at_ms, sensor) VALUES ($1, $2, $3) RETURNING id",
            )
            .bind(source)
            .bind(to_ms(at))
            .bind(&from.sensor)
            .fetch_one(&mut *tx)
            .await?;
            for input in &from.inputs {
                sqlx::query(
                    "INSERT INTO discovery_inputs (run_id, name, sha256, bytes) VALUES ($1, $2, $3, $4)",
                )
                .bind(run)
                .bind(&input.name)
                .bind(&input.sha256[..])
                .bind(input.bytes)
                .execute(&mut *tx)
                .await?;
            }
            for chunk in findings.chunks(ROWS_PER_INSERT) {
                let mut insert = sqlx::QueryBuilder::new(
                    "INSERT INTO discovery_findings (run_id, service, user_name, requests, bytes_sent,
                     bytes_received, first_seen_ms, last_seen_ms, applications, status, tenant,
                     user_kind, host_kinds, blocked, allowed, use_requests) ",
                );
                insert.push_values(chunk, |mut row, c| {
                    let f = &c.finding;
                    let k = &c.class;
                    row.push_bind(run)
                        .push_bind(&f.service)
                        .push_bind(&f.user)
                        .push_bind(f.requests)
                        .push_bind(f.bytes_sent)
                        .push_bind(f.bytes_received)
                        .push_bind(to_ms(f.first_seen))
                        .push_bind(to_ms(f.last_seen))
                        .push_bind(k.applications.join(" "))
                        .push_bind(&k.status)
                        .push_bind(&k.tenant)
                        .push_bind(&k.user_kind)
                        .push_bind(&k.host_kinds)
                        .push_bind(k.blocked)
                        .push_bind(k.allowed)
                        .push_bind(k.use_requests);
                });
                insert.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(run)
        })
    }

    /// Discovery runs, newest first, with how many findings each still holds.
    pub async fn discovery_runs(&self) -> Result<Vec<DiscoveryRun>> {
        let rows: Vec<(i64, String, Option<String>, i64, i64)> = dispatch!(self, |pool| {
            sqlx::query_as(
                "SELECT r.id, r.source, r.sensor, r.at_ms, COUNT(f.run_id) FROM discovery_runs r
                 LEFT JOIN discovery_findings f ON f.run_id = r.id
                 GROUP BY r.id, r.source, r.sensor, r.at_ms ORDER BY r.at_ms DESC, r.id DESC",
            )
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(id, source, sensor, at_ms, findings)| DiscoveryRun {
                id,
                source,
                sensor,
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

    /// The findings of one run with their classification, by service, tenant then user.
    pub async fn discovery_findings_classified(
        &self,
        run: RunId,
    ) -> Result<Vec<ClassifiedFinding>> {
        Ok(self
            .discovery_findings_page(run, FindingOrder::ByService, i64::MAX, 0)
            .await?
            .0)
    }

    /// At most `limit` of a run's findings from `offset` on, in `order`, and how many the run
    /// has: a page read from the database, whatever the run's size.
    pub async fn discovery_findings_page(
        &self,
        run: RunId,
        order: FindingOrder,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<ClassifiedFinding>, i64)> {
        let order_by = match order {
            FindingOrder::ByService => "service, tenant, user_name",
            FindingOrder::RiskFirst => {
                "CASE WHEN status IN ('shadow', 'unsanctioned', 'other-tenant') THEN 0 ELSE 1 END,
                 requests DESC, service, user_name"
            }
        };
        let sql = format!(
            "SELECT service, user_name, requests, bytes_sent, bytes_received, first_seen_ms,
             last_seen_ms, applications, status, tenant, user_kind, host_kinds, blocked, allowed,
             use_requests
             FROM discovery_findings WHERE run_id = $1 ORDER BY {order_by} LIMIT $2 OFFSET $3"
        );
        let (rows, total): (Vec<FindingRow>, i64) = dispatch!(self, |pool| {
            let rows = sqlx::query_as(&sql)
                .bind(run)
                .bind(limit)
                .bind(offset)
                .fetch_all(pool)
                .await?;
            let total: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM discovery_findings WHERE run_id = $1")
                    .bind(run)
                    .fetch_one(pool)
                    .await?;
            (rows, total)
        });
        Ok((rows.into_iter().map(classified_from_row).collect(), total))
    }

    /// What recorded discovery runs saw between `since` and `until` (findings whose first and
    /// last sighting overlap the window), per run, application, service, tenant and status.
    /// A finding covered by several applications is listed under each; one covered by none
    /// has `application: None` (an unlisted service). Runs recorded before schema 4 have no
    /// classification (status empty) and are left out.
    pub async fn discovery_traffic(
        &self,
        since: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<Vec<DiscoveryTraffic>> {
        type Row = (
            i64,
            String,
            Option<String>,
            String,
            Option<String>,
            String,
            i64,
            i64,
            i64,
            i64,
            i64,
            i64,
        );
        let rows: Vec<Row> = dispatch!(self, |pool| {
            sqlx::query_as(
                "SELECT r.id, r.source, f.applications, f.service, f.tenant, f.status,
                    CAST(SUM(f.requests) AS BIGINT), CAST(SUM(f.blocked) AS BIGINT),
                    CAST(SUM(f.allowed) AS BIGINT),
                    CAST(SUM(CASE WHEN f.use_requests IS NULL OR f.use_requests > 0 THEN 1 ELSE 0 END) AS BIGINT),
                    MIN(f.first_seen_ms), MAX(f.last_seen_ms)
                 FROM discovery_findings f JOIN discovery_runs r ON r.id = f.run_id
                 WHERE f.last_seen_ms >= $1 AND f.first_seen_ms <= $2
                   AND f.status IS NOT NULL AND f.status NOT IN ('', 'incidental')
                 GROUP BY r.id, r.source, f.applications, f.service, f.tenant, f.status
                 ORDER BY r.id, f.service, f.tenant, f.status",
            )
            .bind(to_ms(since))
            .bind(to_ms(until))
            .fetch_all(pool)
            .await?
        });
        let mut out = Vec::new();
        for (
            run,
            source,
            apps,
            service,
            tenant,
            status,
            requests,
            blocked,
            allowed,
            users,
            first,
            last,
        ) in rows
        {
            let apps = split_ids(apps.as_deref());
            let targets: Vec<Option<String>> = if apps.is_empty() {
                vec![None]
            } else {
                apps.into_iter().map(Some).collect()
            };
            for application in targets {
                out.push(DiscoveryTraffic {
                    run,
                    source: source.clone(),
                    application,
                    service: service.clone(),
                    tenant: tenant.clone().filter(|t| !t.is_empty()),
                    status: status.clone(),
                    requests,
                    blocked,
                    allowed,
                    users,
                    first_seen: from_ms(first),
                    last_seen: from_ms(last),
                });
            }
        }
        Ok(out)
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

fn split_ids(text: Option<&str>) -> Vec<String> {
    text.unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// `check_text` for a field that may be empty.
fn check_optional(what: &'static str, text: &str, max: usize) -> Result<()> {
    if text.is_empty() {
        Ok(())
    } else {
        check_text(what, text, max)
    }
}
