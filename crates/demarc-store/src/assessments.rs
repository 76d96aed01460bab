//! Estates imported and assessment runs with their per-duty results, for
//! `demarc history`: coverage over time, per application, the date each run assessed
//! for, and what changed per duty between two runs.

use sha2::{Digest, Sha256};
use time::{Date, OffsetDateTime};

use crate::error::{Result, StoreError};
use crate::{BeginWrite, Store, check_text, dispatch, from_ms, to_ms};

/// Most duty results in one run.
pub const MAX_RESULTS: usize = 1_000_000;
const MAX_FIELD: usize = 1024;
/// Rows per multi-row INSERT (9 parameters each, under both backends' limits).
pub(crate) const ROWS_PER_INSERT: usize = 1000;

/// A `duty_results` row as selected by [`Store::duty_results`].
type DutyRow = (
    String,
    String,
    Option<String>,
    String,
    Option<String>,
    String,
    String,
    bool,
);

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
#[derive(
    Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema, serde::Deserialize,
)]
pub struct DutyResult {
    pub application: String,
    /// Responsibility area id.
    pub area: String,
    /// The component the duty was resolved from (one area may have several); `None` in runs
    /// recorded before demarc kept it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
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
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct HistoryPoint {
    pub run: RunId,
    #[schemars(with = "String")]
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub estate: String,
    /// The date the run assessed for (`demarc assess --today`, else the day it ran);
    /// `None` for runs recorded before demarc kept it.
    #[schemars(with = "Option<String>")]
    #[serde(with = "iso_date")]
    pub assessed_on: Option<Date>,
    pub application: String,
    pub covered: i64,
    pub total: i64,
}

/// One recorded run: when, for which date, on which estate.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct RunInfo {
    pub run: RunId,
    #[schemars(with = "String")]
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    #[schemars(with = "Option<String>")]
    #[serde(with = "iso_date")]
    pub assessed_on: Option<Date>,
    pub estate: String,
    /// SHA-256 of the estate file the run assessed.
    pub estate_sha256: String,
    pub duties: i64,
}

/// How one duty differs between two runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    /// Only in the later run.
    Added,
    /// Only in the earlier run.
    Removed,
    /// In both, with a different owner, accountable party, control, evidence or verdict.
    Changed,
}

/// One duty that differs between two runs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct DutyChange {
    pub application: String,
    pub area: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
    pub change: ChangeKind,
    /// What changed, for `changed`: any of `accountable`, `owner`, `control`, `evidence`,
    /// `covered`.
    pub fields: Vec<&'static str>,
    pub before: Option<DutyResult>,
    pub after: Option<DutyResult>,
}

/// What changed per duty from one run to another.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct RunDiff {
    pub from: RunInfo,
    pub to: RunInfo,
    /// Changed, added and removed duties, by application, area and component.
    pub changes: Vec<DutyChange>,
    /// Duties present in both runs with nothing changed.
    pub unchanged: usize,
}

/// `YYYY-MM-DD` for an optional [`Date`].
mod iso_date {
    use time::Date;

    pub fn serialize<S: serde::Serializer>(d: &Option<Date>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&super::format_date(*d)),
            None => s.serialize_none(),
        }
    }
}

fn format_date(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

fn parse_date(s: &str) -> Option<Date> {
    let mut parts = s.splitn(3, '-');
    let year = parts.next()?.parse().ok()?;
    let month = time::Month::try_from(parts.next()?.parse::<u8>().ok()?).ok()?;
    let day = parts.next()?.parse().ok()?;
    Date::from_calendar_date(year, month, day).ok()
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
        self.record_assessment_on(estate, at, at.date(), results)
            .await
    }

    /// [`Store::record_assessment`] for an assessment made as of `assessed_on`
    /// (`demarc assess --today`), which may differ from the day it ran (`at`).
    pub async fn record_assessment_on(
        &self,
        estate: &EstateRecord,
        at: OffsetDateTime,
        assessed_on: Date,
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
            if let Some(component) = &r.component {
                check_text("duty component", component, MAX_FIELD)?;
            }
        }
        let assessed_on = format_date(assessed_on);
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
                "INSERT INTO assessment_runs (estate_id, at_ms, assessed_on) VALUES ($1, $2, $3)
                 RETURNING id",
            )
            .bind(estate_id)
            .bind(at_ms)
            .bind(&assessed_on)
            .fetch_one(&mut *tx)
            .await?;
            // Multi-row inserts: one round trip per chunk, not per duty.
            for chunk in results.chunks(ROWS_PER_INSERT) {
                let mut insert = sqlx::QueryBuilder::new(
                    "INSERT INTO duty_results (run_id, application, area, component, accountable,
                     owner_team, control_status, evidence_status, covered) ",
                );
                insert.push_values(chunk, |mut row, r| {
                    row.push_bind(run)
                        .push_bind(&r.application)
                        .push_bind(&r.area)
                        .push_bind(&r.component)
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
        type Row = (i64, i64, Option<String>, String, String, i64, i64);
        let rows: Vec<Row> = dispatch!(self, |pool| {
            sqlx::query_as(
                "SELECT r.id, r.at_ms, r.assessed_on, e.name, d.application,
                        SUM(CASE WHEN d.covered THEN 1 ELSE 0 END), COUNT(*)
                 FROM assessment_runs r
                 JOIN estates e ON e.id = r.estate_id
                 JOIN duty_results d ON d.run_id = r.id
                 WHERE $1 OR d.application = $2
                 GROUP BY r.id, r.at_ms, r.assessed_on, e.name, d.application
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
                |(run, at_ms, assessed_on, estate, application, covered, total)| HistoryPoint {
                    run,
                    at: from_ms(at_ms),
                    assessed_on: assessed_on.as_deref().and_then(parse_date),
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
                "SELECT application, area, component, accountable, owner_team, control_status,
                        evidence_status, covered
                 FROM duty_results WHERE run_id = $1 ORDER BY application, area, component",
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
                    component,
                    accountable,
                    owner_team,
                    control_status,
                    evidence_status,
                    covered,
                )| DutyResult {
                    application,
                    area,
                    component,
                    accountable,
                    owner_team,
                    control_status,
                    evidence_status,
                    covered,
                },
            )
            .collect())
    }

    /// One recorded run, or `None` when there is no run `run`.
    pub async fn run_info(&self, run: RunId) -> Result<Option<RunInfo>> {
        type Row = (i64, i64, Option<String>, String, String, i64);
        let row: Option<Row> = dispatch!(self, |pool| {
            sqlx::query_as(
                "SELECT r.id, r.at_ms, r.assessed_on, e.name, e.content_sha256,
                        (SELECT COUNT(*) FROM duty_results d WHERE d.run_id = r.id)
                 FROM assessment_runs r JOIN estates e ON e.id = r.estate_id
                 WHERE r.id = $1",
            )
            .bind(run)
            .fetch_optional(pool)
            .await?
        });
        Ok(row.map(
            |(run, at_ms, assessed_on, estate, estate_sha256, duties)| RunInfo {
                run,
                at: from_ms(at_ms),
                assessed_on: assessed_on.as_deref().and_then(parse_date),
                estate,
                estate_sha256,
                duties,
            },
        ))
    }

    /// What changed per duty from run `from` to run `to`: duties added, removed, or whose
    /// accountable party, owner team, control, evidence or verdict changed. Duties are
    /// matched by application, area and component (by application and area alone when
    /// either run was recorded before components were kept).
    pub async fn diff_runs(&self, from: RunId, to: RunId) -> Result<RunDiff> {
        let missing = |run| {
            StoreError::invalid(
                "assessment run",
                format!("no recorded run {run} (see `demarc history`)"),
            )
        };
        let from_info = self.run_info(from).await?.ok_or_else(|| missing(from))?;
        let to_info = self.run_info(to).await?.ok_or_else(|| missing(to))?;
        let before = self.duty_results(from).await?;
        let after = self.duty_results(to).await?;
        let by_component = before.iter().chain(&after).all(|d| d.component.is_some());
        let key = |d: &DutyResult| {
            (
                d.application.clone(),
                d.area.clone(),
                if by_component {
                    d.component.clone()
                } else {
                    None
                },
            )
        };
        // Several duties under one key (older runs: several components of one area) are
        // paired in the order they were recorded.
        let mut old: std::collections::BTreeMap<_, std::collections::VecDeque<DutyResult>> =
            std::collections::BTreeMap::new();
        for d in before {
            old.entry(key(&d)).or_default().push_back(d);
        }
        let mut changes = Vec::new();
        let mut unchanged = 0;
        for d in after {
            let k = key(&d);
            match old
                .get_mut(&k)
                .and_then(std::collections::VecDeque::pop_front)
            {
                Some(b) => {
                    let fields: Vec<&'static str> = [
                        ("accountable", b.accountable != d.accountable),
                        ("owner", b.owner_team != d.owner_team),
                        ("control", b.control_status != d.control_status),
                        ("evidence", b.evidence_status != d.evidence_status),
                        ("covered", b.covered != d.covered),
                    ]
                    .into_iter()
                    .filter_map(|(f, differs)| differs.then_some(f))
                    .collect();
                    if fields.is_empty() {
                        unchanged += 1;
                    } else {
                        changes.push(DutyChange {
                            application: k.0,
                            area: k.1,
                            component: d.component.clone(),
                            change: ChangeKind::Changed,
                            fields,
                            before: Some(b),
                            after: Some(d),
                        });
                    }
                }
                None => changes.push(DutyChange {
                    application: k.0,
                    area: k.1,
                    component: d.component.clone(),
                    change: ChangeKind::Added,
                    fields: Vec::new(),
                    before: None,
                    after: Some(d),
                }),
            }
        }
        for (k, rest) in old {
            for b in rest {
                changes.push(DutyChange {
                    application: k.0.clone(),
                    area: k.1.clone(),
                    component: b.component.clone(),
                    change: ChangeKind::Removed,
                    fields: Vec::new(),
                    before: Some(b),
                    after: None,
                });
            }
        }
        changes.sort_by(|a, b| {
            (&a.application, &a.area, &a.component).cmp(&(&b.application, &b.area, &b.component))
        });
        Ok(RunDiff {
            from: from_info,
            to: to_info,
            changes,
            unchanged,
        })
    }
}
