//! The JSON API under `/api/v1`. Every endpoint is declared once in [`endpoints`], with the
//! metadata the OpenAPI document is generated from ([`crate::openapi`]) beside its handler,
//! so the document cannot drift from the routes.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{MethodRouter, get, post};
use demarc_model::assess::{ApplicationAssessment, DutyAssessment};
use demarc_store::Role;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};

use crate::auth::Principal;
use crate::error::ServeError;
use crate::extract::{JsonBody, Path, Query};
use crate::state::App;
use crate::views;

/// Most items one list page returns.
pub const MAX_LIMIT: usize = 1000;
const DEFAULT_LIMIT: usize = 100;

/// One endpoint: what the OpenAPI document says of it.
pub struct Endpoint {
    pub method: Method,
    pub path: &'static str,
    pub summary: &'static str,
    /// The least role that may call it.
    pub role: Role,
    /// Query parameters: name and meaning.
    pub query: &'static [(&'static str, &'static str)],
    pub body: Option<fn(&mut SchemaGenerator) -> Schema>,
    pub response: fn(&mut SchemaGenerator) -> Schema,
}

fn schema<T: JsonSchema>(g: &mut SchemaGenerator) -> Schema {
    g.subschema_for::<T>()
}

/// A value whose shape is documented elsewhere (the CLI's JSON interfaces, docs/json.md).
macro_rules! described {
    ($text:expr) => {{
        fn described(_: &mut SchemaGenerator) -> Schema {
            schemars::json_schema!({ "type": "object", "description": $text })
        }
        described
    }};
}

const PAGING: &[(&str, &str)] = &[
    ("limit", "items per page, 1 to 1000 (default 100)"),
    ("offset", "items to skip (default 0)"),
];
const WHAT_IF_QUERY: &[(&str, &str)] = &[
    ("service_model", "the new service model (required)"),
    ("provider", "the new provider"),
    ("component", "change only this component"),
];
const HISTORY_QUERY: &[(&str, &str)] = &[
    ("application", "only this application"),
    ("limit", "items per page, 1 to 1000 (default 100)"),
    ("offset", "items to skip (default 0)"),
];

/// Every endpoint of the API with its handler.
pub fn endpoints() -> Vec<(Endpoint, MethodRouter<Arc<App>>)> {
    use Role::{Admin, Viewer};
    let e = |method, path, summary, role, query, body, response| Endpoint {
        method,
        path,
        summary,
        role,
        query,
        body,
        response,
    };
    vec![
        (
            e(
                Method::GET,
                "/api/v1/openapi.json",
                "This document (OpenAPI 3.1).",
                Viewer,
                &[],
                None,
                described!("An OpenAPI 3.1 document."),
            ),
            get(openapi),
        ),
        (
            e(
                Method::GET,
                "/api/v1/catalogs",
                "The builtin responsibility catalogs and the one in use.",
                Viewer,
                &[],
                None,
                schema::<Vec<CatalogInfo>>,
            ),
            get(catalogs),
        ),
        (
            e(
                Method::GET,
                "/api/v1/matrix",
                "The catalog in use: areas, service models and each cell's owner, note and citation.",
                Viewer,
                &[],
                None,
                schema::<demarc_model::catalog::Catalog>,
            ),
            get(matrix),
        ),
        (
            e(
                Method::GET,
                "/api/v1/assessment",
                "The estate assessed now, with the store's observations: summary only.",
                Viewer,
                &[],
                None,
                schema::<LiveSummary>,
            ),
            get(assessment),
        ),
        (
            e(
                Method::GET,
                "/api/v1/applications",
                "The estate's applications with coverage and gaps.",
                Viewer,
                &[
                    ("status", "only applications with this status"),
                    ("team", "only applications where this team owns a duty"),
                ],
                None,
                schema::<Vec<ApplicationSummary>>,
            ),
            get(applications),
        ),
        (
            e(
                Method::GET,
                "/api/v1/applications/{id}",
                "One application assessed: its duties, accountable parties, controls, evidence and why each resolves as it does.",
                Viewer,
                &[],
                None,
                described!(
                    "An application of `demarc assess --format json` (docs/json.md): id, name, owner, status, duties[], inherited[], contradictions[], coverage, gaps."
                ),
            ),
            get(application),
        ),
        (
            e(
                Method::GET,
                "/api/v1/applications/{id}/duties/{area}",
                "One duty explained, with the catalog cell's note and citation.",
                Viewer,
                &[],
                None,
                described!(
                    "{application, duty (a duty of `demarc assess --format json`), cell: {owner, lead, note, source, basis}, mappings}."
                ),
            ),
            get(duty),
        ),
        (
            e(
                Method::GET,
                "/api/v1/applications/{id}/what-if",
                "Which duties would move, and to whom, if the application (or one component) changed service model or provider; coverage before and after.",
                Viewer,
                WHAT_IF_QUERY,
                None,
                described!(
                    "As `demarc what-if --format json`: {application, service_model, components[], areas[], moved, coverage_before, coverage_after, gaps_opened[], gaps_closed[]}."
                ),
            ),
            get(what_if),
        ),
        (
            e(
                Method::GET,
                "/api/v1/teams",
                "Teams that own duties, with their coverage.",
                Viewer,
                &[],
                None,
                schema::<Vec<TeamSummary>>,
            ),
            get(teams),
        ),
        (
            e(
                Method::GET,
                "/api/v1/teams/{team}/duties",
                "A team's duties across applications (\"my duties\").",
                Viewer,
                &[],
                None,
                described!("{team, duties: [{application, duty}]}."),
            ),
            get(team_duties),
        ),
        (
            e(
                Method::GET,
                "/api/v1/assessments",
                "Recorded assessment runs (coverage per application and run), newest first.",
                Viewer,
                HISTORY_QUERY,
                None,
                schema::<Page<demarc_store::HistoryPoint>>,
            ),
            get(assessments),
        ),
        (
            e(
                Method::GET,
                "/api/v1/assessments/{run}",
                "One recorded run: when, which estate, and every duty's result.",
                Viewer,
                &[],
                None,
                schema::<RunResults>,
            ),
            get(assessment_run),
        ),
        (
            e(
                Method::GET,
                "/api/v1/assessments/diff",
                "What changed per duty between two recorded runs.",
                Viewer,
                &[("from", "the earlier run id"), ("to", "the later run id")],
                None,
                schema::<demarc_store::assessments::RunDiff>,
            ),
            get(assessment_diff),
        ),
        (
            e(
                Method::POST,
                "/api/v1/assessments",
                "Assess the estate now and record the run (admin; an audit event).",
                Admin,
                &[],
                None,
                schema::<RecordedRun>,
            ),
            post(record_assessment),
        ),
        (
            e(
                Method::GET,
                "/api/v1/evidence",
                "Evidence, declared and observed: each duty's reviewed evidence as the estate declares it and as assessed today, and the latest observation per application, area and kind from the store.",
                Viewer,
                &[("application", "only this application")],
                None,
                described!(
                    "{declared: [{application, area, component, description, link, file, reviewer, reviewed, expires, valid_until, status, problem}], observed: [{application, area, kind, source, observed_at, summary, expires_at}]}; `link`, `file` and `source` only for auditors and admins."
                ),
            ),
            get(evidence),
        ),
        (
            e(
                Method::GET,
                "/api/v1/discovery/runs",
                "Recorded discovery runs, newest first.",
                Viewer,
                PAGING,
                None,
                schema::<Page<demarc_store::DiscoveryRun>>,
            ),
            get(discovery_runs),
        ),
        (
            e(
                Method::GET,
                "/api/v1/discovery/runs/{run}/findings",
                "One run's findings: service, user (pseudonymised unless the token is auditor or admin), requests, status.",
                Viewer,
                PAGING,
                None,
                schema::<Page<demarc_store::ClassifiedFinding>>,
            ),
            get(discovery_findings),
        ),
        (
            e(
                Method::GET,
                "/api/v1/gateway/activity",
                "Gateway requests per application and day from the audit trail's daily summary.",
                Viewer,
                &[("days", "days back from today (default 30, at most 400)")],
                None,
                schema::<Vec<ActivityDay>>,
            ),
            get(gateway_activity),
        ),
        (
            e(
                Method::GET,
                "/api/v1/audit",
                "Every audit chain verified: events, head hash, breaks.",
                Viewer,
                &[],
                None,
                schema::<AuditStatus>,
            ),
            get(audit),
        ),
        (
            e(
                Method::GET,
                "/api/v1/admin/keys",
                "Gateway keys (never their secrets).",
                Admin,
                &[],
                None,
                schema::<Vec<demarc_store::ApiKey>>,
            ),
            get(list_keys),
        ),
        (
            e(
                Method::POST,
                "/api/v1/admin/keys",
                "Create a gateway key for an application; the secret is in this answer only (an audit event).",
                Admin,
                &[],
                Some(schema::<NewKeyRequest>),
                schema::<NewKeyResponse>,
            ),
            post(create_key),
        ),
        (
            e(
                Method::POST,
                "/api/v1/admin/keys/{id}/revoke",
                "Revoke a gateway key (an audit event).",
                Admin,
                &[],
                None,
                schema::<Revoked>,
            ),
            post(revoke_key),
        ),
        (
            e(
                Method::POST,
                "/api/v1/discovery/ingest",
                "Record a batch of log lines (any format `demarc discover` reads, NDJSON included; at most 16 MiB) for `sensor` (a token of role `ingest` or `admin`). Batches of a sensor that come while the previous run is being recorded are gathered into the next discovery run; the answer (201) comes once that run is stored. A batch whose content was recorded before (a shipper's retry) is not counted again: 200 with `duplicate: true`.",
                Role::Ingest,
                &[
                    ("sensor", "the sensor the lines come from (required)"),
                    ("batch", "the shipper's batch id, kept in the run's source"),
                    (
                        "format",
                        "the log format, as `demarc discover --log-format` (default: detected)",
                    ),
                    (
                        "map",
                        "fields of csv, tsv or jsonl lines, as `demarc discover --map` (`host=…,user=…,time=…`)",
                    ),
                ],
                None,
                schema::<IngestResult>,
            ),
            post(ingest).layer(axum::extract::DefaultBodyLimit::max(MAX_INGEST)),
        ),
    ]
}

async fn openapi(_: Principal) -> impl IntoResponse {
    Json(crate::openapi::document())
}

#[derive(Serialize, JsonSchema)]
pub struct CatalogInfo {
    pub id: String,
    pub title: String,
    pub version: String,
    /// The catalog this server assesses with.
    pub in_use: bool,
}

async fn catalogs(State(app): State<Arc<App>>, _: Principal) -> Json<Vec<CatalogInfo>> {
    let in_use = app.catalog().id().to_owned();
    let mut out: Vec<CatalogInfo> = demarc_model::CheckedCatalog::builtin_ids()
        .filter_map(|id| demarc_model::CheckedCatalog::builtin(id)?.ok())
        .map(|c| CatalogInfo {
            id: c.id().to_owned(),
            title: c.catalog().title.clone(),
            version: c.catalog().version.clone(),
            in_use: c.id() == in_use,
        })
        .collect();
    if !out.iter().any(|c| c.in_use) {
        let c = app.catalog();
        out.push(CatalogInfo {
            id: c.id().to_owned(),
            title: c.catalog().title.clone(),
            version: c.catalog().version.clone(),
            in_use: true,
        });
    }
    Json(out)
}

async fn matrix(State(app): State<Arc<App>>, _: Principal) -> impl IntoResponse {
    Json(app.catalog().catalog().clone())
}

#[derive(Serialize, JsonSchema)]
pub struct LiveSummary {
    pub organisation: String,
    /// The day assessed (today, UTC).
    pub date: String,
    pub catalog: String,
    /// The first day observations count from.
    pub observed_since: Option<String>,
    /// The model's summary (docs/json.md, `summary`).
    #[schemars(with = "serde_json::Value")]
    pub summary: serde_json::Value,
}

async fn assessment(
    State(app): State<Arc<App>>,
    _: Principal,
) -> Result<Json<LiveSummary>, ServeError> {
    let live = app.live().await?;
    let a = &live.assessment;
    Ok(Json(LiveSummary {
        organisation: a.organisation.clone(),
        date: a.date.to_string(),
        catalog: a.catalog.id.clone(),
        observed_since: a.observed_since.map(|d| d.to_string()),
        summary: serde_json::to_value(&a.summary).unwrap_or_default(),
    }))
}

#[derive(Serialize, JsonSchema)]
pub struct ApplicationSummary {
    pub id: String,
    pub name: String,
    pub owner: String,
    pub status: String,
    pub service_models: Vec<String>,
    pub duties: usize,
    pub covered: usize,
    pub gaps: usize,
    /// Covered duties as a percentage; `null` when the application has no customer duty.
    pub coverage_percent: Option<f64>,
    pub contradictions: usize,
}

impl ApplicationSummary {
    pub fn of(a: &ApplicationAssessment) -> Self {
        ApplicationSummary {
            id: a.id.clone(),
            name: a.name.clone(),
            owner: a.owner.clone(),
            status: a.status.as_str().to_owned(),
            service_models: a.service_models.clone(),
            duties: a.coverage.total,
            covered: a.coverage.covered,
            gaps: a.gaps,
            coverage_percent: a.coverage.percent,
            contradictions: a.contradictions.len(),
        }
    }
}

#[derive(Deserialize)]
struct AppFilter {
    status: Option<String>,
    team: Option<String>,
}

async fn applications(
    State(app): State<Arc<App>>,
    _: Principal,
    Query(filter): Query<AppFilter>,
) -> Result<Json<Vec<ApplicationSummary>>, ServeError> {
    let live = app.live().await?;
    Ok(Json(
        live.assessment
            .applications
            .iter()
            .filter(|a| {
                filter
                    .status
                    .as_deref()
                    .is_none_or(|s| a.status.as_str() == s)
            })
            .filter(|a| {
                filter
                    .team
                    .as_deref()
                    .is_none_or(|t| a.duties.iter().any(|d| d.owner_team.as_deref() == Some(t)))
            })
            .map(ApplicationSummary::of)
            .collect(),
    ))
}

pub(crate) fn find_app<'a>(
    live: &'a crate::state::Live,
    id: &str,
) -> Result<&'a ApplicationAssessment, ServeError> {
    live.assessment
        .applications
        .iter()
        .find(|a| a.id == id)
        .ok_or_else(|| ServeError::NotFound(format!("no application `{id}` in the estate")))
}

async fn application(
    State(app): State<Arc<App>>,
    _: Principal,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ServeError> {
    let live = app.live().await?;
    let a = find_app(&live, &id)?;
    // Serialised here, while the live assessment it borrows from is held.
    Ok(Json(a).into_response())
}

/// A duty with its catalog cell: what `explain` prints, as JSON.
#[derive(Serialize)]
struct DutyDetail<'a> {
    application: &'a str,
    duty: &'a DutyAssessment,
    cell: Option<views::CellCitation>,
    mappings: Option<&'a demarc_model::catalog::Mappings>,
}

async fn duty(
    State(app): State<Arc<App>>,
    _: Principal,
    Path((id, area)): Path<(String, String)>,
) -> Result<impl IntoResponse, ServeError> {
    let live = app.live().await?;
    let a = find_app(&live, &id)?;
    let d =
        a.duties.iter().find(|d| d.area == area).ok_or_else(|| {
            ServeError::NotFound(format!("application `{id}` has no duty `{area}`"))
        })?;
    let detail = DutyDetail {
        application: &a.id,
        duty: d,
        cell: views::citation(app.catalog(), d),
        mappings: app
            .catalog()
            .areas()
            .iter()
            .find(|x| x.id == d.area)
            .map(|x| &x.mappings),
    };
    Ok(Json(detail).into_response())
}

async fn what_if(
    State(app): State<Arc<App>>,
    _: Principal,
    Path(id): Path<String>,
    Query(q): Query<views::WhatIfQuery>,
) -> Result<impl IntoResponse, ServeError> {
    let live = app.live().await?;
    find_app(&live, &id)?;
    Ok(Json(views::what_if(&app, &live, &id, &q)?))
}

#[derive(Serialize, JsonSchema)]
pub struct TeamSummary {
    pub team: String,
    pub duties: usize,
    pub covered: usize,
    pub expiring: usize,
}

async fn teams(
    State(app): State<Arc<App>>,
    _: Principal,
) -> Result<Json<Vec<TeamSummary>>, ServeError> {
    let live = app.live().await?;
    Ok(Json(views::teams(&live.assessment)))
}

async fn team_duties(
    State(app): State<Arc<App>>,
    _: Principal,
    Path(team): Path<String>,
) -> Result<impl IntoResponse, ServeError> {
    let live = app.live().await?;
    let duties: Vec<serde_json::Value> = views::team_duties(&live.assessment, &team)
        .map(|(a, d)| serde_json::json!({"application": a.id, "duty": d}))
        .collect();
    if duties.is_empty() {
        return Err(ServeError::NotFound(format!(
            "no duty is owned by team `{team}`"
        )));
    }
    Ok(Json(serde_json::json!({"team": team, "duties": duties})))
}

#[derive(Deserialize)]
pub(crate) struct Paging {
    limit: Option<usize>,
    offset: Option<usize>,
    application: Option<String>,
}

/// One page of a long list.
#[derive(Serialize, JsonSchema)]
#[schemars(rename = "Page_of_{T}")]
pub(crate) struct Page<T> {
    items: Vec<T>,
    total: usize,
    limit: usize,
    offset: usize,
}

impl Paging {
    /// The page asked for: `limit` (checked) and `offset`.
    fn window(&self) -> Result<(usize, usize), ServeError> {
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if limit == 0 || limit > MAX_LIMIT {
            return Err(ServeError::BadRequest(format!(
                "`limit` is {limit}; it must be 1 to {MAX_LIMIT}"
            )));
        }
        Ok((limit, self.offset.unwrap_or(0)))
    }

    /// One page of a list held whole (lists bounded by what the store keeps per run).
    fn page<T>(&self, all: Vec<T>) -> Result<Page<T>, ServeError> {
        let (limit, offset) = self.window()?;
        let total = all.len();
        let items = all.into_iter().skip(offset).take(limit).collect();
        Ok(Page {
            items,
            total,
            limit,
            offset,
        })
    }
}

async fn assessments(
    State(app): State<Arc<App>>,
    _: Principal,
    Query(paging): Query<Paging>,
) -> Result<impl IntoResponse, ServeError> {
    let mut history = app.store.history(paging.application.as_deref()).await?;
    history.sort_by(|a, b| b.run.cmp(&a.run).then(a.application.cmp(&b.application)));
    Ok(Json(paging.page(history)?))
}

async fn assessment_run(
    State(app): State<Arc<App>>,
    _: Principal,
    Path(run): Path<i64>,
) -> Result<impl IntoResponse, ServeError> {
    let info = app
        .store
        .run_info(run)
        .await?
        .ok_or_else(|| ServeError::NotFound(format!("no recorded assessment run {run}")))?;
    let results = app.store.duty_results(run).await?;
    Ok(Json(RunResults { run: info, results }))
}

/// One recorded run and every duty's result in it.
#[derive(Serialize, JsonSchema)]
pub struct RunResults {
    pub run: demarc_store::assessments::RunInfo,
    pub results: Vec<demarc_store::DutyResult>,
}

#[derive(Deserialize)]
struct DiffQuery {
    from: Option<i64>,
    to: Option<i64>,
}

async fn assessment_diff(
    State(app): State<Arc<App>>,
    _: Principal,
    Query(q): Query<DiffQuery>,
) -> Result<impl IntoResponse, ServeError> {
    let (Some(from), Some(to)) = (q.from, q.to) else {
        return Err(ServeError::BadRequest(
            "give both `from` and `to` (recorded run ids)".into(),
        ));
    };
    for run in [from, to] {
        if app.store.run_info(run).await?.is_none() {
            return Err(ServeError::NotFound(format!(
                "no recorded assessment run {run}"
            )));
        }
    }
    Ok(Json(app.store.diff_runs(from, to).await?))
}

#[derive(Serialize, JsonSchema)]
pub struct RecordedRun {
    pub run: i64,
    pub duties: usize,
    pub covered: usize,
}

#[derive(Deserialize, Default)]
pub(crate) struct CsrfForm {
    pub csrf: Option<String>,
}

/// The anti-forgery value of an API call from a session: the `X-CSRF-Token` header.
fn csrf_header(headers: &HeaderMap) -> Option<&str> {
    headers.get("x-csrf-token").and_then(|v| v.to_str().ok())
}

async fn record_assessment(
    State(app): State<Arc<App>>,
    who: Principal,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ServeError> {
    who.require(Role::Admin)?;
    who.check_csrf(csrf_header(&headers))?;
    let run = views::record_run(&app, &who).await?;
    Ok((StatusCode::CREATED, Json(run)))
}

async fn evidence(
    State(app): State<Arc<App>>,
    who: Principal,
    Query(paging): Query<Paging>,
) -> Result<impl IntoResponse, ServeError> {
    let live = app.live().await?;
    let names = who.sees_names();
    let declared: Vec<serde_json::Value> = live
        .assessment
        .applications
        .iter()
        .filter(|a| paging.application.as_deref().is_none_or(|id| a.id == id))
        .flat_map(|a| {
            a.duties.iter().flat_map(move |d| {
                d.declared_evidence.iter().map(move |e| {
                    let mut v = serde_json::to_value(e).unwrap_or_default();
                    if let Some(o) = v.as_object_mut() {
                        o.insert("application".into(), a.id.clone().into());
                        o.insert("area".into(), d.area.clone().into());
                        o.insert("component".into(), d.component.clone().into());
                        if !names {
                            o.remove("link");
                            o.remove("file");
                        }
                    }
                    v
                })
            })
        })
        .collect();
    let rows = app
        .store
        .latest_evidence(paging.application.as_deref())
        .await?;
    let observed: Vec<serde_json::Value> = rows
        .iter()
        .map(|e| {
            let mut v = serde_json::to_value(e).unwrap_or_default();
            if !who.sees_names()
                && let Some(o) = v.as_object_mut()
            {
                o.remove("source");
            }
            v
        })
        .collect();
    Ok(Json(
        serde_json::json!({"declared": declared, "observed": observed}),
    ))
}

async fn discovery_runs(
    State(app): State<Arc<App>>,
    _: Principal,
    Query(paging): Query<Paging>,
) -> Result<impl IntoResponse, ServeError> {
    let mut runs = app.store.discovery_runs().await?;
    runs.sort_by_key(|r| std::cmp::Reverse(r.id));
    Ok(Json(paging.page(runs)?))
}

async fn discovery_findings(
    State(app): State<Arc<App>>,
    who: Principal,
    Path(run): Path<i64>,
    Query(paging): Query<Paging>,
) -> Result<impl IntoResponse, ServeError> {
    if !app
        .store
        .discovery_runs()
        .await?
        .iter()
        .any(|r| r.id == run)
    {
        return Err(ServeError::NotFound(format!(
            "no recorded discovery run {run}"
        )));
    }
    // Paged in the database: a run may hold millions of findings.
    let (limit, offset) = paging.window()?;
    let as_i64 = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
    let (mut findings, total) = app
        .store
        .discovery_findings_page(
            run,
            demarc_store::FindingOrder::ByService,
            as_i64(limit),
            as_i64(offset),
        )
        .await?;
    if !who.sees_names() {
        let key = app.store.pseudonym_key().await?;
        for f in &mut findings {
            f.finding.user = views::pseudonym(&key, &f.finding.user);
        }
    }
    Ok(Json(Page {
        items: findings,
        total: usize::try_from(total).unwrap_or(0),
        limit,
        offset,
    }))
}

#[derive(Serialize, JsonSchema)]
pub struct ActivityDay {
    pub application: String,
    /// The UTC day, `YYYY-MM-DD`.
    pub day: String,
    pub requests: u64,
    pub served: u64,
    pub blocked: u64,
    pub refused: u64,
    pub failed: u64,
    /// Values the application's policies redacted, input and output.
    pub redactions: u64,
    /// Requests that recorded a latency, and their mean latency in milliseconds (`null` when
    /// none did).
    pub timed: u64,
    pub mean_latency_ms: Option<f64>,
}

#[derive(Deserialize)]
struct DaysQuery {
    days: Option<u32>,
}

async fn gateway_activity(
    State(app): State<Arc<App>>,
    _: Principal,
    Query(q): Query<DaysQuery>,
) -> Result<Json<Vec<ActivityDay>>, ServeError> {
    let days = q.days.unwrap_or(30);
    if days > 400 {
        return Err(ServeError::BadRequest(format!(
            "`days` is {days}; at most 400"
        )));
    }
    Ok(Json(views::activity(&app, days).await?))
}

async fn audit(State(app): State<Arc<App>>, _: Principal) -> Result<impl IntoResponse, ServeError> {
    let (at, report) = app.verified_audit().await?;
    Ok(Json(AuditStatus {
        verified_at: at
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        report: (*report).clone(),
    }))
}

/// Every audit chain verified, and when (a verification is reused for a minute).
#[derive(Serialize, JsonSchema)]
pub struct AuditStatus {
    pub verified_at: String,
    #[serde(flatten)]
    pub report: demarc_store::VerifyReport,
}

async fn list_keys(
    State(app): State<Arc<App>>,
    who: Principal,
) -> Result<impl IntoResponse, ServeError> {
    who.require(Role::Admin)?;
    Ok(Json(app.store.list_api_keys(None).await?))
}

#[derive(Deserialize, JsonSchema)]
pub struct NewKeyRequest {
    /// The application's id in the estate.
    pub application: String,
}

#[derive(Serialize, JsonSchema)]
pub struct NewKeyResponse {
    pub id: String,
    pub application: String,
    /// The key itself: shown here once, never stored.
    pub secret: String,
}

async fn create_key(
    State(app): State<Arc<App>>,
    who: Principal,
    headers: HeaderMap,
    JsonBody(req): JsonBody<NewKeyRequest>,
) -> Result<impl IntoResponse, ServeError> {
    who.require(Role::Admin)?;
    who.check_csrf(csrf_header(&headers))?;
    let created = views::create_key(&app, &who, &req.application).await?;
    Ok((
        StatusCode::CREATED,
        Json(NewKeyResponse {
            id: created.key.id,
            application: created.key.application,
            secret: created.secret,
        }),
    ))
}

#[derive(Serialize, JsonSchema)]
pub struct Revoked {
    pub id: String,
    /// False when the key was already revoked.
    pub revoked: bool,
}

async fn revoke_key(
    State(app): State<Arc<App>>,
    who: Principal,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Revoked>, ServeError> {
    who.require(Role::Admin)?;
    who.check_csrf(csrf_header(&headers))?;
    let revoked = views::revoke_key(&app, &who, &id).await?;
    Ok(Json(Revoked { id, revoked }))
}

/// The largest batch `POST /api/v1/discovery/ingest` takes.
pub const MAX_INGEST: usize = 16 << 20;

#[derive(Deserialize)]
struct IngestQuery {
    sensor: String,
    batch: Option<String>,
    format: Option<String>,
    map: Option<String>,
}

/// What became of an ingested batch.
#[derive(Serialize, JsonSchema)]
struct IngestResult {
    /// The run it was recorded as; `null` for a duplicate.
    run: Option<i64>,
    /// Records read from the batch.
    records: u64,
    /// Findings (service and identity) recorded in the run.
    findings: usize,
    /// Batches of the sensor gathered into the run, this one included (those that came while
    /// the run before was being recorded).
    batches: usize,
    /// The batch's content was recorded before (nothing was counted again).
    duplicate: bool,
    /// For a duplicate: which run already holds it.
    message: Option<String>,
}

async fn ingest(
    State(app): State<Arc<App>>,
    crate::auth::Shipper(_who): crate::auth::Shipper,
    Query(q): Query<IngestQuery>,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<impl IntoResponse, ServeError> {
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ServeError::TooLarge(MAX_INGEST)
        } else {
            ServeError::BadRequest(format!("the batch could not be read: {e}"))
        }
    })?;
    let printable = |v: &str, most: usize| {
        !v.is_empty() && v.len() <= most && v.chars().all(|c| !c.is_control())
    };
    if !printable(&q.sensor, 256) {
        return Err(ServeError::BadRequest(
            "`sensor` must be 1 to 256 printable characters".into(),
        ));
    }
    if q.batch.as_deref().is_some_and(|b| !printable(b, 200)) {
        return Err(ServeError::BadRequest(
            "`batch` must be 1 to 200 printable characters".into(),
        ));
    }
    if body.is_empty() {
        return Err(ServeError::BadRequest("the batch is empty".into()));
    }
    let format = match q.format.as_deref() {
        None => None,
        Some(name) => Some(demarc_discover::Format::from_name(name).ok_or_else(|| {
            let names: Vec<&str> = demarc_discover::Format::ALL
                .iter()
                .map(|f| f.name())
                .collect();
            ServeError::BadRequest(format!(
                "`format`: unknown log format `{name}`; use one of {}",
                names.join(", ")
            ))
        })?),
    };
    let map = q
        .map
        .as_deref()
        .map(demarc_discover::FieldMap::parse)
        .transpose()
        .map_err(|e| ServeError::BadRequest(format!("`map`: {e}")))?;
    // Without an estate every finding is classified as no application's (as `discover`
    // without `--estate`).
    let apps = match app.live().await {
        Ok(live) => crate::recording::known_applications(&live.estate),
        Err(ServeError::NoEstate) => Vec::new(),
        Err(e) => return Err(e),
    };
    let name = match &q.batch {
        Some(id) => format!("ingest {} batch {id}", q.sensor),
        None => format!("ingest {}", q.sensor),
    };
    let data: Arc<[u8]> = Arc::from(body.as_ref());
    let catalog = discovery_catalog()?;
    let result = tokio::task::spawn_blocking(move || {
        crate::recording::scan_batch(&name, data, catalog, format, map)
    })
    .await
    .map_err(|e| ServeError::Internal(format!("the batch could not be scanned: {e}")))?;
    // A gate never passes on what it could not read: an unreadable batch is an error, not an
    // empty run.
    if let Some(e) = result.errors.first() {
        return Err(ServeError::BadRequest(format!(
            "the batch could not be read: {}",
            e.message
        )));
    }
    let lines: u64 = result.files.iter().map(|f| f.lines).sum();
    if result.records == 0 || result.malformed * 20 > lines {
        return Err(ServeError::BadRequest(format!(
            "the batch could not be read: {} of {lines} lines malformed, {} records (at most 5% may be malformed)",
            result.malformed, result.records
        )));
    }
    // A batch recorded before (a shipper's retry) is answered as a duplicate by the
    // gathering, which checks every batch just before its run is written.
    let records = result.records;
    let batch = crate::gathering::Batch {
        sensor: q.sensor.clone(),
        scan: result,
        apps,
    };
    match app.gatherer(catalog).submit(batch).await {
        crate::gathering::Outcome::Recorded {
            run,
            batches,
            findings,
        } => Ok((
            StatusCode::CREATED,
            Json(IngestResult {
                run: Some(run),
                records,
                findings,
                batches,
                duplicate: false,
                message: None,
            }),
        )),
        crate::gathering::Outcome::Duplicate(message) => Ok((
            StatusCode::OK,
            Json(IngestResult {
                run: None,
                records,
                findings: 0,
                batches: 0,
                duplicate: true,
                message: Some(message),
            }),
        )),
        crate::gathering::Outcome::Failed(message) => Err(ServeError::Internal(format!(
            "the batch was not recorded: {message}"
        ))),
    }
}

/// The built-in GenAI service catalog, read once.
fn discovery_catalog() -> Result<&'static demarc_discover::Catalog, ServeError> {
    static CATALOG: std::sync::OnceLock<Result<demarc_discover::Catalog, String>> =
        std::sync::OnceLock::new();
    CATALOG
        .get_or_init(|| demarc_discover::Catalog::builtin().map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| ServeError::Internal(format!("the built-in service catalog: {e}")))
}
