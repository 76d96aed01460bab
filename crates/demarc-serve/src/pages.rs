//! The dashboard's pages: server-rendered HTML (askama templates under `templates/`, every
//! value escaped by the engine), usable without JavaScript, one stylesheet, charts drawn as
//! inline SVG. State changes are POST forms carrying the session's anti-forgery value.

use std::collections::BTreeMap;
use std::sync::Arc;

use askama::Template;
use axum::Form;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use demarc_model::assess::{ApplicationAssessment, DutyAssessment, EvidenceStatus};
use demarc_store::Role;
use serde::Deserialize;

use crate::auth::{PageUser, Principal, SESSION_COOKIE, SESSION_TTL, Via};
use crate::error::{PageError, ServeError};
use crate::state::App;
use crate::views;

type PageResult = Result<Html<String>, PageError>;

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/", get(overview))
        .route("/login", get(login_form).post(login))
        .route("/logout", post(logout))
        .route("/matrix", get(matrix))
        .route("/applications", get(applications))
        .route("/applications/{id}", get(application))
        .route("/applications/{id}/what-if", get(what_if))
        .route("/teams", get(teams))
        .route("/teams/{team}", get(team))
        .route("/discovery", get(discovery))
        .route("/gateway", get(gateway))
        .route("/audit", get(audit))
        .route("/admin/keys", get(keys).post(create_key))
        .route("/admin/keys/{id}/revoke", post(revoke_key))
        .route("/admin/assess", post(record_assessment))
}

/// What the layout shows of the caller: the menu, who is signed in, the logout form.
pub struct Nav {
    pub current: &'static str,
    pub label: String,
    pub role: &'static str,
    pub admin: bool,
    pub signed_in: bool,
    pub csrf: String,
}

impl Nav {
    fn new(who: &Principal, current: &'static str) -> Nav {
        Nav {
            current,
            label: who.label.clone(),
            role: who.role.as_str(),
            admin: who.role >= Role::Admin,
            signed_in: who.via == Via::Session,
            csrf: who.csrf.clone().unwrap_or_default(),
        }
    }

    /// `aria-current="page"` for the menu entry of this page.
    pub fn is(&self, page: &str) -> bool {
        self.current == page
    }
}

/// Points of a line chart in a 600 × 160 box, with axis labels.
pub struct LineChart {
    pub points: String,
    pub dots: Vec<(f64, f64, String)>,
    pub first: String,
    pub last: String,
}

fn line_chart(values: &[(String, f64)]) -> Option<LineChart> {
    let (first, last) = (values.first()?, values.last()?);
    let n = values.len().max(2) - 1;
    let dots: Vec<(f64, f64, String)> = values
        .iter()
        .enumerate()
        .map(|(i, (label, v))| {
            let x = 20.0 + 560.0 * i as f64 / n as f64;
            let y = 150.0 - 140.0 * v.clamp(0.0, 100.0) / 100.0;
            (x.round(), y.round(), format!("{label}: {v:.0}%"))
        })
        .collect();
    Some(LineChart {
        points: dots
            .iter()
            .map(|(x, y, _)| format!("{x},{y}"))
            .collect::<Vec<_>>()
            .join(" "),
        dots,
        first: first.0.clone(),
        last: last.0.clone(),
    })
}

/// Bars of a daily chart in a 600 × 160 box: (x, y, width, height, title) per bar.
pub struct BarChart {
    pub bars: Vec<(f64, f64, f64, f64, String)>,
    pub blocked: Vec<(f64, f64, f64, f64)>,
    pub max: u64,
    pub first: String,
    pub last: String,
}

fn bar_chart(days: &[(String, u64, u64)]) -> Option<BarChart> {
    let max = days.iter().map(|d| d.1).max()?.max(1);
    let width = 560.0 / days.len() as f64;
    let mut bars = Vec::new();
    let mut blocked = Vec::new();
    for (i, (day, requests, blocked_n)) in days.iter().enumerate() {
        let x = 20.0 + width * i as f64;
        let h = 140.0 * *requests as f64 / max as f64;
        let hb = 140.0 * *blocked_n as f64 / max as f64;
        let w = (width - 2.0).max(1.0);
        bars.push((
            x.round(),
            (150.0 - h).round(),
            w.round(),
            h.round(),
            format!("{day}: {requests} requests, {blocked_n} blocked"),
        ));
        blocked.push((x.round(), (150.0 - hb).round(), w.round(), hb.round()));
    }
    Some(BarChart {
        bars,
        blocked,
        max,
        first: days.first()?.0.clone(),
        last: days.last()?.0.clone(),
    })
}

fn percent(covered: usize, total: usize) -> String {
    if total == 0 {
        "n/a".into()
    } else {
        format!("{:.0}%", 100.0 * covered as f64 / total as f64)
    }
}

// --- login ---------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    error: Option<String>,
}

async fn login_form() -> PageResult {
    Ok(Html(LoginPage { error: None }.render()?))
}

#[derive(Deserialize)]
struct LoginForm {
    token: String,
}

async fn login(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Result<Response, PageError> {
    // Another site must not sign a browser in (login forgery): the same origin check as
    // every other form.
    if !crate::auth::same_origin(&headers) {
        return Err(ServeError::Csrf.into());
    }
    let Some(token) = crate::auth::token_for(&app, form.token.trim()).await? else {
        let page = LoginPage {
            error: Some("That token is not valid, or it was revoked.".into()),
        };
        return Ok((StatusCode::UNAUTHORIZED, Html(page.render()?)).into_response());
    };
    if token.role < Role::Viewer {
        let page = LoginPage {
            error: Some("That token only sends logs (role ingest); sign in with a viewer, auditor or admin token.".into()),
        };
        return Ok((StatusCode::FORBIDDEN, Html(page.render()?)).into_response());
    }
    let session = app
        .store
        .create_serve_session(&token.id, SESSION_TTL)
        .await?;
    let who = Principal {
        role: token.role,
        token_id: token.id,
        label: token.label,
        via: Via::Session,
        csrf: None,
    };
    app.audit(&who, "login", serde_json::json!({})).await?;
    // `Secure` when the request reached us over TLS (a proxy in front says so).
    let secure = headers
        .get("x-forwarded-proto")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"));
    let cookie = format!(
        "{SESSION_COOKIE}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        session.secret,
        SESSION_TTL.whole_seconds(),
        if secure { "; Secure" } else { "" }
    );
    let mut response = Redirect::to("/").into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(response)
}

async fn logout(
    State(app): State<Arc<App>>,
    PageUser(who): PageUser,
    headers: HeaderMap,
    Form(form): Form<crate::api::CsrfForm>,
) -> Result<Response, PageError> {
    who.check_csrf(form.csrf.as_deref())?;
    if let Some(secret) = crate::auth::cookie(&headers, SESSION_COOKIE) {
        app.store
            .delete_serve_session(&demarc_store::keys::hash_api_key(secret))
            .await?;
    }
    let mut response = Redirect::to("/login").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("demarc_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    Ok(response)
}

// --- overview ------------------------------------------------------------------------------

struct DutyRef {
    application: String,
    area: String,
    title: String,
    team: String,
    detail: String,
}

impl DutyRef {
    fn new(a: &ApplicationAssessment, d: &DutyAssessment, detail: String) -> DutyRef {
        DutyRef {
            application: a.id.clone(),
            area: d.area.clone(),
            title: d.title.clone(),
            team: d.owner_team.clone().unwrap_or_else(|| "no team".into()),
            detail,
        }
    }
}

#[derive(Template)]
#[template(path = "overview.html")]
struct OverviewPage {
    nav: Nav,
    heat: crate::report::HeatMap,
    organisation: String,
    date: String,
    coverage: String,
    covered: usize,
    total: usize,
    applications: usize,
    gaps: usize,
    history: Option<LineChart>,
    gaps_by_kind: Vec<(String, usize)>,
    gaps_by_team: Vec<(String, usize)>,
    expiring: Vec<DutyRef>,
    contradictions: Vec<DutyRef>,
    unlisted: Vec<(String, String, u64, String)>,
}

async fn overview(State(app): State<Arc<App>>, PageUser(who): PageUser) -> PageResult {
    let live = app.live().await?;
    let a = &live.assessment;
    let mut gaps_by_kind: BTreeMap<&str, usize> = BTreeMap::new();
    let mut gaps_by_team: BTreeMap<String, usize> = BTreeMap::new();
    let mut expiring = Vec::new();
    let mut contradictions = Vec::new();
    for app_a in &a.applications {
        for d in &app_a.duties {
            for g in &d.gaps {
                *gaps_by_kind.entry(g.as_str()).or_default() += 1;
            }
            if !d.covered {
                *gaps_by_team
                    .entry(d.owner_team.clone().unwrap_or_else(|| "(no team)".into()))
                    .or_default() += 1;
            }
            if views::expiring(d) {
                let until = d
                    .evidence_expires
                    .map(|e| format!("evidence expires {e}"))
                    .unwrap_or_default();
                expiring.push(DutyRef::new(app_a, d, until));
            }
            for c in &d.contradictions {
                let detail = format!("{}: {}", c.kind.as_str(), c.detail);
                contradictions.push(DutyRef::new(app_a, d, detail));
            }
        }
    }
    // Coverage over time: every recorded run, all applications together.
    let mut runs: BTreeMap<i64, (String, i64, i64)> = BTreeMap::new();
    for p in app.history().await?.iter() {
        let day = p
            .assessed_on
            .map(|d| d.to_string())
            .unwrap_or_else(|| p.at.date().to_string());
        let e = runs.entry(p.run).or_insert((day, 0, 0));
        e.1 += p.covered;
        e.2 += p.total;
    }
    let points: Vec<(String, f64)> = runs
        .into_iter()
        .filter(|(_, (_, _, total))| *total > 0)
        .map(|(run, (day, c, t))| (format!("run {run} ({day})"), 100.0 * c as f64 / t as f64))
        .collect();
    let mut unlisted: Vec<_> = a
        .unlisted_services
        .iter()
        .map(|u| {
            (
                u.service.clone(),
                u.tenant.clone().unwrap_or_default(),
                u.requests,
                u.last_seen.to_string(),
            )
        })
        .collect();
    unlisted.sort_by(|x, y| y.3.cmp(&x.3));
    unlisted.truncate(10);
    let page = OverviewPage {
        nav: Nav::new(&who, "overview"),
        heat: crate::report::HeatMap::new(a, app.catalog(), "/applications/"),
        organisation: a.organisation.clone(),
        date: a.date.to_string(),
        coverage: a.summary.coverage.percent_label(),
        covered: a.summary.coverage.covered,
        total: a.summary.coverage.total,
        applications: a.summary.applications,
        gaps: a.summary.gaps,
        history: line_chart(&points),
        gaps_by_kind: gaps_by_kind
            .into_iter()
            .map(|(k, n)| (k.to_owned(), n))
            .collect(),
        gaps_by_team: gaps_by_team.into_iter().collect(),
        expiring,
        contradictions,
        unlisted,
    };
    Ok(Html(page.render()?))
}

// --- matrix --------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "matrix.html")]
struct MatrixPage {
    nav: Nav,
    title: String,
    id: String,
    version: String,
    matrix: crate::report::MatrixView,
}

async fn matrix(State(app): State<Arc<App>>, PageUser(who): PageUser) -> PageResult {
    let c = app.catalog().catalog();
    let page = MatrixPage {
        nav: Nav::new(&who, "matrix"),
        title: c.title.clone(),
        id: c.id.clone(),
        version: c.version.clone(),
        matrix: crate::report::MatrixView::new(app.catalog()),
    };
    Ok(Html(page.render()?))
}

// --- applications --------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "applications.html")]
struct ApplicationsPage {
    nav: Nav,
    apps: Vec<crate::api::ApplicationSummary>,
}

async fn applications(State(app): State<Arc<App>>, PageUser(who): PageUser) -> PageResult {
    let live = app.live().await?;
    let page = ApplicationsPage {
        nav: Nav::new(&who, "applications"),
        apps: live
            .assessment
            .applications
            .iter()
            .map(crate::api::ApplicationSummary::of)
            .collect(),
    };
    Ok(Html(page.render()?))
}

#[derive(Template)]
#[template(path = "application.html")]
struct ApplicationPage {
    nav: Nav,
    app: crate::api::ApplicationSummary,
    models: Vec<String>,
    duties: Vec<crate::report::DutyView>,
    inherited: Vec<(String, String)>,
}

async fn application(
    State(app): State<Arc<App>>,
    PageUser(who): PageUser,
    Path(id): Path<String>,
) -> PageResult {
    let live = app.live().await?;
    let a = crate::api::find_app(&live, &id)?;
    let page = ApplicationPage {
        nav: Nav::new(&who, "applications"),
        app: crate::api::ApplicationSummary::of(a),
        models: app
            .catalog()
            .service_models()
            .iter()
            .map(|m| m.id.clone())
            .collect(),
        duties: a
            .duties
            .iter()
            .map(|d| {
                crate::report::DutyView::new(
                    app.catalog(),
                    d,
                    who.sees_names(),
                    crate::report::Place::Dashboard,
                )
            })
            .collect(),
        inherited: a
            .inherited
            .iter()
            .map(|i| (i.area.clone(), i.provider.clone()))
            .collect(),
    };
    Ok(Html(page.render()?))
}

struct AreaMove {
    area: String,
    before: String,
    after: String,
    moved: bool,
}

#[derive(Template)]
#[template(path = "what-if.html")]
struct WhatIfPage {
    nav: Nav,
    app: crate::api::ApplicationSummary,
    models: Vec<String>,
    chosen: String,
    provider: String,
    components: Vec<String>,
    moves: Vec<String>,
    areas: Vec<AreaMove>,
    moved: usize,
    before: String,
    after: String,
    opened: Vec<String>,
    closed: Vec<String>,
}

fn side_label(side: &demarc_model::whatif::Side) -> String {
    match (&side.accountable, side.owner) {
        (Some(p), Some(owner)) => format!("{} ({owner})", p.label()),
        (Some(p), None) => p.label(),
        (None, _) => "n/a".into(),
    }
}

async fn what_if(
    State(app): State<Arc<App>>,
    PageUser(who): PageUser,
    Path(id): Path<String>,
    axum::extract::Query(q): axum::extract::Query<views::WhatIfQuery>,
) -> PageResult {
    let live = app.live().await?;
    let a = crate::api::find_app(&live, &id)?;
    let result = views::what_if(&app, &live, &id, &q)?;
    let placement =
        |p: &demarc_model::whatif::Placement| format!("{} from {}", p.service_model, p.provider);
    let gap =
        |g: &demarc_model::whatif::GapChange| format!("{} ({}): {}", g.area, g.component, g.gap);
    let page = WhatIfPage {
        nav: Nav::new(&who, "applications"),
        app: crate::api::ApplicationSummary::of(a),
        models: app
            .catalog()
            .service_models()
            .iter()
            .map(|m| m.id.clone())
            .collect(),
        chosen: result.service_model.clone(),
        provider: result.provider.clone().unwrap_or_default(),
        components: live
            .estate
            .applications()
            .iter()
            .find(|x| x.id == id)
            .map(|x| x.components.iter().map(|c| c.id.clone()).collect())
            .unwrap_or_default(),
        moves: result
            .components
            .iter()
            .map(|m| {
                format!(
                    "{} ({}): {} → {}",
                    m.component,
                    m.kind,
                    placement(&m.before),
                    placement(&m.after)
                )
            })
            .collect(),
        areas: result
            .areas
            .iter()
            .map(|x| AreaMove {
                area: x.area.clone(),
                before: side_label(&x.before),
                after: side_label(&x.after),
                moved: x.moved,
            })
            .collect(),
        moved: result.moved,
        before: result.coverage_before.percent_label(),
        after: result.coverage_after.percent_label(),
        opened: result.gaps_opened.iter().map(gap).collect(),
        closed: result.gaps_closed.iter().map(gap).collect(),
    };
    Ok(Html(page.render()?))
}

// --- teams ---------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "teams.html")]
struct TeamsPage {
    nav: Nav,
    teams: Vec<crate::api::TeamSummary>,
}

async fn teams(State(app): State<Arc<App>>, PageUser(who): PageUser) -> PageResult {
    let live = app.live().await?;
    let page = TeamsPage {
        nav: Nav::new(&who, "teams"),
        teams: views::teams(&live.assessment),
    };
    Ok(Html(page.render()?))
}

#[derive(Template)]
#[template(path = "team.html")]
struct TeamPage {
    nav: Nav,
    team: String,
    duties: Vec<(String, crate::report::DutyView)>,
}

async fn team(
    State(app): State<Arc<App>>,
    PageUser(who): PageUser,
    Path(team): Path<String>,
) -> PageResult {
    let live = app.live().await?;
    let mut duties: Vec<(String, crate::report::DutyView)> =
        views::team_duties(&live.assessment, &team)
            .map(|(a, d)| {
                (
                    a.id.clone(),
                    crate::report::DutyView::new(
                        app.catalog(),
                        d,
                        who.sees_names(),
                        crate::report::Place::Dashboard,
                    ),
                )
            })
            .collect();
    if duties.is_empty() {
        return Err(ServeError::NotFound(format!("no duty is owned by team `{team}`")).into());
    }
    // What needs doing first: gaps, then expiring evidence, then the rest.
    duties.sort_by_key(|(_, d)| (d.covered, d.evidence != EvidenceStatus::Expiring.as_str()));
    let page = TeamPage {
        nav: Nav::new(&who, "teams"),
        team,
        duties,
    };
    Ok(Html(page.render()?))
}

// --- discovery -----------------------------------------------------------------------------

struct FindingView {
    service: String,
    user: String,
    status: String,
    requests: i64,
    last_seen: String,
}

#[derive(Template)]
#[template(path = "discovery.html")]
struct DiscoveryPage {
    nav: Nav,
    runs: Vec<demarc_store::DiscoveryRun>,
    latest: Option<i64>,
    findings: Vec<FindingView>,
    pseudonymised: bool,
    shown: usize,
    total: usize,
}

/// Findings shown on the page; the API pages through all of them.
const FINDINGS_ON_PAGE: usize = 200;

async fn discovery(State(app): State<Arc<App>>, PageUser(who): PageUser) -> PageResult {
    let mut runs = app.store.discovery_runs().await?;
    runs.sort_by_key(|r| std::cmp::Reverse(r.id));
    let latest = runs.first().map(|r| r.id);
    let mut findings = Vec::new();
    let mut total = 0;
    if let Some(run) = latest {
        // Shadow and unsanctioned use first, then by requests; one page, read as such.
        let (page, count) = app
            .store
            .discovery_findings_page(
                run,
                demarc_store::FindingOrder::RiskFirst,
                FINDINGS_ON_PAGE as i64,
                0,
            )
            .await?;
        total = usize::try_from(count).unwrap_or(0);
        let key = if who.sees_names() {
            None
        } else {
            Some(app.store.pseudonym_key().await?)
        };
        findings = page
            .into_iter()
            .map(|f| FindingView {
                user: match &key {
                    Some(k) => views::pseudonym(k, &f.finding.user),
                    None => f.finding.user.clone(),
                },
                service: f.finding.service,
                status: f.class.status,
                requests: f.finding.requests,
                last_seen: f.finding.last_seen.date().to_string(),
            })
            .collect();
    }
    let page = DiscoveryPage {
        nav: Nav::new(&who, "discovery"),
        shown: findings.len(),
        runs,
        latest,
        findings,
        pseudonymised: !who.sees_names(),
        total,
    };
    Ok(Html(page.render()?))
}

// --- gateway and audit ---------------------------------------------------------------------

/// One application's gateway activity over the window.
#[derive(Default)]
struct AppActivity {
    application: String,
    requests: u64,
    served: u64,
    blocked: u64,
    refused: u64,
    failed: u64,
    redactions: u64,
    timed: u64,
    latency_total_ms: f64,
}

impl AppActivity {
    fn mean_latency(&self) -> String {
        if self.timed == 0 {
            "–".into()
        } else {
            format!("{:.0} ms", self.latency_total_ms / self.timed as f64)
        }
    }
}

#[derive(Template)]
#[template(path = "gateway.html")]
struct GatewayPage {
    nav: Nav,
    chart: Option<BarChart>,
    per_app: Vec<AppActivity>,
    days: Vec<crate::api::ActivityDay>,
}

async fn gateway(State(app): State<Arc<App>>, PageUser(who): PageUser) -> PageResult {
    let days = views::activity(&app, 30).await?;
    let mut per_day: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut per_app: BTreeMap<String, AppActivity> = BTreeMap::new();
    for d in &days {
        let e = per_day.entry(d.day.clone()).or_default();
        e.0 += d.requests;
        e.1 += d.blocked;
        let a = per_app
            .entry(d.application.clone())
            .or_insert_with(|| AppActivity {
                application: d.application.clone(),
                ..AppActivity::default()
            });
        a.requests += d.requests;
        a.served += d.served;
        a.blocked += d.blocked;
        a.refused += d.refused;
        a.failed += d.failed;
        a.redactions += d.redactions;
        a.timed += d.timed;
        a.latency_total_ms += d.mean_latency_ms.unwrap_or(0.0) * d.timed as f64;
    }
    // One bar per day of the window, days without traffic included.
    let today = demarc_model::Date::today();
    let series: Vec<(String, u64, u64)> = (0..30)
        .rev()
        .map(|back| {
            let day = today.add_days(-back).to_string();
            let (r, b) = per_day.get(&day).copied().unwrap_or_default();
            (day, r, b)
        })
        .collect();
    let chart = if days.is_empty() {
        None
    } else {
        bar_chart(&series)
    };
    let page = GatewayPage {
        nav: Nav::new(&who, "gateway"),
        chart,
        per_app: per_app.into_values().collect(),
        days,
    };
    Ok(Html(page.render()?))
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    nav: Nav,
    intact: bool,
    events: u64,
    chains: Vec<demarc_store::ChainReport>,
    verified_at: String,
}

async fn audit(State(app): State<Arc<App>>, PageUser(who): PageUser) -> PageResult {
    let (at, report) = app.verified_audit().await?;
    let page = AuditPage {
        nav: Nav::new(&who, "audit"),
        intact: report.is_intact(),
        events: report.events,
        chains: report.chains.clone(),
        verified_at: at
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
    };
    Ok(Html(page.render()?))
}

// --- admin ---------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "keys.html")]
struct KeysPage {
    nav: Nav,
    keys: Vec<demarc_store::ApiKey>,
    applications: Vec<String>,
    created: Option<(String, String)>,
    message: Option<String>,
}

async fn keys_page(
    app: &App,
    who: &Principal,
    created: Option<(String, String)>,
    message: Option<String>,
) -> PageResult {
    who.require(Role::Admin)?;
    let applications = match app.live().await {
        Ok(live) => live
            .estate
            .applications()
            .iter()
            .map(|a| a.id.clone())
            .collect(),
        Err(_) => Vec::new(),
    };
    let page = KeysPage {
        nav: Nav::new(who, "keys"),
        keys: app.store.list_api_keys(None).await?,
        applications,
        created,
        message,
    };
    Ok(Html(page.render()?))
}

async fn keys(State(app): State<Arc<App>>, PageUser(who): PageUser) -> PageResult {
    keys_page(&app, &who, None, None).await
}

#[derive(Deserialize)]
struct NewKeyForm {
    csrf: Option<String>,
    application: String,
}

async fn create_key(
    State(app): State<Arc<App>>,
    PageUser(who): PageUser,
    headers: HeaderMap,
    Form(form): Form<NewKeyForm>,
) -> Result<Response, PageError> {
    who.require(Role::Admin)?;
    if !crate::auth::same_origin(&headers) {
        return Err(ServeError::Csrf.into());
    }
    who.check_csrf(form.csrf.as_deref())?;
    let created = crate::views::create_key(&app, &who, &form.application).await?;
    // The secret is shown in this answer only; `no-store` keeps it out of the cache.
    let mut response = keys_page(
        &app,
        &who,
        Some((created.key.application, created.secret)),
        None,
    )
    .await?
    .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

async fn revoke_key(
    State(app): State<Arc<App>>,
    PageUser(who): PageUser,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<crate::api::CsrfForm>,
) -> PageResult {
    who.require(Role::Admin)?;
    if !crate::auth::same_origin(&headers) {
        return Err(ServeError::Csrf.into());
    }
    who.check_csrf(form.csrf.as_deref())?;
    let revoked = crate::views::revoke_key(&app, &who, &id).await?;
    let message = if revoked {
        format!("Key {id} revoked. Gateways refuse it within a second.")
    } else {
        format!("Key {id} was already revoked.")
    };
    keys_page(&app, &who, None, Some(message)).await
}

async fn record_assessment(
    State(app): State<Arc<App>>,
    PageUser(who): PageUser,
    headers: HeaderMap,
    Form(form): Form<crate::api::CsrfForm>,
) -> Result<Response, PageError> {
    who.require(Role::Admin)?;
    if !crate::auth::same_origin(&headers) {
        return Err(ServeError::Csrf.into());
    }
    who.check_csrf(form.csrf.as_deref())?;
    crate::views::record_run(&app, &who).await?;
    Ok(Redirect::to("/").into_response())
}

// --- errors --------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    status: u16,
    reason: String,
    message: String,
}

pub fn error_page(status: StatusCode, message: &str) -> Result<Html<String>, askama::Error> {
    Ok(Html(
        ErrorPage {
            status: status.as_u16(),
            reason: status.canonical_reason().unwrap_or("Error").to_owned(),
            message: message.to_owned(),
        }
        .render()?,
    ))
}

/// Coverage as a percentage label, for templates.
pub fn coverage_label(covered: &usize, total: &usize) -> String {
    percent(*covered, *total)
}
