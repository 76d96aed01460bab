//! The self-contained HTML reports (matrix, assessment, discovery): one file, inline CSS, no
//! scripts or outside resources, a strict Content-Security-Policy, readable in any browser
//! and safe to attach to an audit.
//!
//! Pages are askama templates under `templates/html/`, compiled into the binary and checked
//! at build time. Every value is escaped by the template engine (the templates never mark a
//! value safe); the Rust side only prepares plain-text views. A link becomes `<a href>` only
//! for an `http`/`https` address ([`Link`]); any other (`javascript:`, `data:`, relative
//! text) is shown as text.

use askama::Template;
use demarc_discover::report::{HIGH_RISK, Report};
use demarc_model::CheckedCatalog;
use demarc_model::assess::{ApplicationAssessment, Assessment, EvidenceStatus};
use demarc_model::catalog::Basis;

use super::count;
use super::text::{
    evidence_label, human_bytes, human_time, identities_text, model_name, proof_lines, proxy_text,
    roles_text, shared_with, status_label, unlisted_line,
};

/// A link that becomes `<a href>` only when its address is a web address.
pub struct Link {
    href: Option<String>,
    text: String,
    /// The address shown beside the text when it is not a web address.
    address: String,
}

impl Link {
    pub fn new(address: &str, text: &str) -> Self {
        let href = web_address(address).map(str::to_owned);
        Self {
            address: if href.is_some() {
                String::new()
            } else {
                address.trim().to_owned()
            },
            href,
            text: text.to_owned(),
        }
    }
}

pub use demarc_serve::report::web_address;

/// A piece of text, set as code or not.
pub struct Span {
    code: bool,
    text: String,
}

/// Text whose `backticked` spans are code, as the text formats write names.
pub struct Spans(Vec<Span>);

impl Spans {
    pub fn new(s: &str) -> Self {
        let parts: Vec<&str> = s.split('`').collect();
        if parts.len().is_multiple_of(2) {
            // An unmatched backtick: the text as it is.
            return Self(vec![Span {
                code: false,
                text: s.to_owned(),
            }]);
        }
        Self(
            parts
                .iter()
                .enumerate()
                .filter(|(_, p)| !p.is_empty())
                .map(|(i, p)| Span {
                    code: i % 2 == 1,
                    text: (*p).to_owned(),
                })
                .collect(),
        )
    }
}

struct ModelHead {
    title: String,
    description: String,
}

struct CellView {
    class: String,
    label: String,
    /// `*` inferred, `!` disputed, empty when stated.
    marker: &'static str,
    /// `inferred` or `disputed`, empty when stated.
    basis: &'static str,
    note: String,
    source: String,
}

struct AreaRow {
    id: String,
    title: String,
    description: String,
    /// The area's OWASP LLM 2025, NIST AI 600-1 and MITRE ATLAS ids.
    ids: String,
    cells: Vec<Option<CellView>>,
}

struct LayerRows {
    title: String,
    areas: Vec<AreaRow>,
}

/// The catalog's matrix, as `templates/html/matrix-section.html` shows it.
struct MatrixView {
    models: Vec<ModelHead>,
    columns: usize,
    /// More than three service models: compact cells, notes on hover, focus and in print.
    wide: bool,
    /// Some cell is model-dependent (the legend says what that means).
    model_dependent: bool,
    layers: Vec<LayerRows>,
    source: Link,
    source_date: String,
}

fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

fn matrix_view(catalog: &CheckedCatalog) -> MatrixView {
    let c = catalog.catalog();
    let models = catalog.service_models();
    let layers = catalog
        .layers()
        .iter()
        .map(|layer| LayerRows {
            title: layer.title.clone(),
            areas: catalog
                .areas()
                .iter()
                .filter(|a| a.layer == layer.id)
                .map(|area| AreaRow {
                    id: area.id.clone(),
                    title: area.title.clone(),
                    description: area.description.clone(),
                    ids: demarc_serve::report::framework_ids(&area.mappings),
                    cells: models
                        .iter()
                        .map(|m| {
                            catalog.cell(area, &m.id).map(|cell| {
                                let (class, label) = match (cell.owner.as_str(), cell.lead) {
                                    ("shared", Some(l)) => (
                                        format!("shared lead-{}", l.as_str()),
                                        format!("Shared, {} leads", l.as_str()),
                                    ),
                                    ("n/a", _) => ("na".to_owned(), "n/a".to_owned()),
                                    ("model-dependent", _) => {
                                        ("model-dependent".to_owned(), "Model-dependent".to_owned())
                                    }
                                    (o, _) => (o.to_owned(), capitalise(o)),
                                };
                                let basis = match cell.basis {
                                    Basis::Stated => "",
                                    b => b.as_str(),
                                };
                                let class = if basis.is_empty() {
                                    class
                                } else {
                                    format!("{class} basis-{basis}")
                                };
                                CellView {
                                    class,
                                    label,
                                    marker: cell.basis.marker(),
                                    basis,
                                    note: cell.note.clone(),
                                    source: cell.source.clone(),
                                }
                            })
                        })
                        .collect(),
                })
                .collect(),
        })
        .filter(|l| !l.areas.is_empty())
        .collect();
    MatrixView {
        models: models
            .iter()
            .map(|m| ModelHead {
                title: m.title.clone(),
                description: m.description.clone(),
            })
            .collect(),
        columns: models.len() + 1,
        wide: models.len() > 3,
        model_dependent: catalog.areas().iter().any(|a| {
            a.cells
                .values()
                .any(|c| c.owner == demarc_model::catalog::Owner::ModelDependent)
        }),
        layers,
        source: Link::new(&c.source.url, &c.source.title),
        source_date: c.source.date.clone(),
    }
}

fn footer() -> String {
    format!("Generated by demarc {}.", env!("CARGO_PKG_VERSION"))
}

#[derive(Template)]
#[template(path = "html/matrix.html")]
struct MatrixPage {
    title: String,
    footer: String,
    heading: String,
    catalog_id: String,
    catalog_version: String,
    matrix: MatrixView,
}

/// `demarc matrix --format html`.
pub fn matrix_page(catalog: &CheckedCatalog) -> Result<String, askama::Error> {
    let c = catalog.catalog();
    MatrixPage {
        title: c.title.clone(),
        footer: footer(),
        heading: c.title.clone(),
        catalog_id: c.id.clone(),
        catalog_version: c.version.clone(),
        matrix: matrix_view(catalog),
    }
    .render()
}

struct ContradictionView {
    kind: &'static str,
    detail: String,
    source: String,
    time: String,
}

struct DutyRow {
    gap: bool,
    area: String,
    title: String,
    component: String,
    accountable: String,
    reason: Spans,
    shared_with: String,
    team: String,
    control: &'static str,
    evidence_class: &'static str,
    evidence: String,
    status_class: &'static str,
    status: String,
    proof: Vec<Spans>,
}

struct InheritedView {
    area: String,
    provider: String,
    component: String,
}

struct AppCard {
    id: String,
    name: String,
    status: &'static str,
    models: String,
    data: String,
    owner: String,
    covered: u64,
    total: String,
    percent: String,
    bar: f64,
    contradictions: Vec<ContradictionView>,
    duties: Vec<DutyRow>,
    inherited: Vec<InheritedView>,
}

fn app_card(app: &ApplicationAssessment) -> AppCard {
    AppCard {
        id: app.id.clone(),
        name: app.name.clone(),
        status: app.status.as_str(),
        models: app.service_models.join(" + "),
        data: app.data_classification.to_string(),
        owner: app.owner.clone(),
        covered: app.coverage.covered as u64,
        total: count(app.coverage.total, "customer duty"),
        percent: app.coverage.percent_label(),
        bar: app.coverage.percent.unwrap_or(0.0),
        contradictions: app
            .contradictions
            .iter()
            .map(|c| ContradictionView {
                kind: c.kind.as_str(),
                detail: c.detail.clone(),
                source: c.source.clone(),
                time: c.time.to_string(),
            })
            .collect(),
        duties: app
            .duties
            .iter()
            .map(|d| DutyRow {
                gap: !(d.covered || d.risk_accepted),
                area: d.area.clone(),
                title: d.title.clone(),
                component: d.component.clone(),
                accountable: d.accountable.label(),
                reason: Spans::new(&d.accountable_reason),
                shared_with: shared_with(d),
                team: match d.owner_team.clone() {
                    Some(t) => t,
                    None if crate::render::text::unresolved(d) => {
                        "unresolved (model-dependent)".into()
                    }
                    None => "unowned".into(),
                },
                control: d.control.as_str(),
                evidence_class: match d.evidence {
                    EvidenceStatus::NotNeeded => "ev-na",
                    EvidenceStatus::Current => "ev-current",
                    EvidenceStatus::Expiring => "ev-expiring",
                    EvidenceStatus::Expired => "ev-expired",
                    EvidenceStatus::Missing => "ev-missing",
                },
                evidence: evidence_label(d),
                status_class: if d.covered {
                    "ok"
                } else if d.risk_accepted {
                    "accepted"
                } else {
                    "gaps"
                },
                status: status_label(d),
                proof: proof_lines(d).iter().map(|l| Spans::new(l)).collect(),
            })
            .collect(),
        inherited: app
            .inherited
            .iter()
            .map(|i| InheritedView {
                area: i.area.clone(),
                provider: i.provider.clone(),
                component: i.component.clone(),
            })
            .collect(),
    }
}

#[derive(Template)]
#[template(path = "html/assessment.html")]
struct AssessmentPage {
    title: String,
    footer: String,
    organisation: String,
    date: String,
    catalog_id: String,
    catalog_version: String,
    observed_since: Option<String>,
    kpis: Vec<(String, String)>,
    matrix: MatrixView,
    heat: demarc_serve::report::HeatMap,
    unlisted: Vec<String>,
    apps: Vec<AppCard>,
}

/// `demarc assess --format html`: summary, the estate's application × area heat map (the
/// dashboard's), the matrix, then a card per application.
pub fn assessment_page(
    report: &Assessment,
    catalog: &CheckedCatalog,
) -> Result<String, askama::Error> {
    let s = &report.summary;
    let mut kpis = vec![
        (
            s.coverage.percent_label(),
            "customer duties covered".to_owned(),
        ),
        (s.applications.to_string(), "applications".to_owned()),
    ];
    for (status, n) in &s.applications_by_status {
        kpis.push((n.to_string(), status.to_string()));
    }
    for (n, label) in [
        (s.gaps, "duties not covered".to_owned()),
        (s.contradicted, "contradicted by observation".to_owned()),
        (s.evidence_mismatch, "evidence not matching".to_owned()),
        (s.evidence_missing, "evidence missing".to_owned()),
        (s.evidence_expired, "evidence expired".to_owned()),
        (
            s.evidence_expiring,
            format!("expiring within {} days", report.expiring_within_days),
        ),
        (s.risk_accepted, "risk accepted".to_owned()),
        (s.not_applicable, "not applicable".to_owned()),
        (s.inherited, "areas inherited".to_owned()),
        (s.unlisted_services, "unlisted GenAI services".to_owned()),
    ] {
        kpis.push((n.to_string(), label));
    }
    AssessmentPage {
        title: format!("demarc assessment: {}", report.organisation),
        footer: footer(),
        organisation: report.organisation.clone(),
        date: report.date.to_string(),
        catalog_id: report.catalog.id.clone(),
        catalog_version: report.catalog.version.clone(),
        observed_since: report.observed_since.map(|d| d.to_string()),
        kpis,
        matrix: matrix_view(catalog),
        heat: demarc_serve::report::HeatMap::new(report, catalog, "#app-"),
        unlisted: report.unlisted_services.iter().map(unlisted_line).collect(),
        apps: report.applications.iter().map(app_card).collect(),
    }
    .render()
}

struct FindingCard {
    name: String,
    key: String,
    status: &'static str,
    vendor: String,
    category: String,
    model: &'static str,
    risk_parts: String,
    score: u32,
    apps: String,
    requests: u64,
    proxy: String,
    who: String,
    sent: String,
    received: String,
    first_seen: String,
    last_seen: String,
    hosts: String,
    tenants: String,
    top_users: String,
}

struct InputRow {
    name: String,
    format: &'static str,
    size: String,
    records: u64,
    malformed: u64,
}

#[derive(Template)]
#[template(path = "html/discovery.html")]
struct DiscoveryPage {
    title: String,
    footer: String,
    records: String,
    files: String,
    malformed: u64,
    untimed: u64,
    catalog_version: String,
    by_status: Vec<(&'static str, u64)>,
    high_risk: u64,
    high_risk_at: u32,
    new_since_last_run: Option<Vec<String>>,
    findings: Vec<FindingCard>,
    incidental: String,
    inputs: Vec<InputRow>,
}

/// `demarc discover --format html`: the summary first (findings by status, high risk, new
/// since the last run), then one card per finding; readable at phone width.
pub fn discovery_page(report: &Report) -> Result<String, askama::Error> {
    let findings = report
        .services
        .iter()
        .map(|s| FindingCard {
            name: s.name.clone(),
            key: s.key(),
            status: s.status.as_str(),
            vendor: s.vendor.clone(),
            category: s.category.clone(),
            model: model_name(s.service_model),
            risk_parts: s
                .risk
                .parts
                .iter()
                .map(|p| format!("{} {} (+{})", p.factor, p.value, p.points))
                .collect::<Vec<_>>()
                .join("; "),
            score: s.risk.score,
            apps: s.estate_applications.join(", "),
            requests: s.requests,
            proxy: proxy_text(s.blocked, s.allowed),
            who: identities_text(&s.identities),
            sent: human_bytes(s.bytes_sent),
            received: human_bytes(s.bytes_received),
            first_seen: human_time(s.first_seen.as_deref()),
            last_seen: human_time(s.last_seen.as_deref()),
            hosts: roles_text(&s.host_kinds),
            tenants: s.tenants.join(", "),
            top_users: s
                .top_users
                .iter()
                .map(|u| format!("{} ({} {})", u.user, u.kind.as_str(), u.requests))
                .collect::<Vec<_>>()
                .join(", "),
        })
        .collect();
    DiscoveryPage {
        title: "demarc discover".to_owned(),
        footer: "Generated by demarc discover.".to_owned(),
        records: count(report.records, "record"),
        files: count(report.files.len(), "file"),
        malformed: report.malformed,
        untimed: report.untimed,
        catalog_version: report.catalog_version.clone(),
        by_status: report
            .summary
            .by_status
            .iter()
            .map(|(k, v)| (*k, *v))
            .collect(),
        high_risk: report.summary.high_risk,
        high_risk_at: HIGH_RISK,
        new_since_last_run: report.summary.new_since_last_run.clone(),
        findings,
        incidental: report
            .incidental
            .iter()
            .map(|i| format!("{} ({}, {})", i.id, i.requests, roles_text(&i.host_kinds)))
            .collect::<Vec<_>>()
            .join(", "),
        inputs: report
            .files
            .iter()
            .map(|f| InputRow {
                name: f.name.clone(),
                format: f.format.unwrap_or("not recognised"),
                size: human_bytes(Some(f.bytes)),
                records: f.records,
                malformed: f.malformed,
            })
            .collect(),
    }
    .render()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_web_addresses_become_links() {
        for ok in [
            "https://example.com/a?b=c",
            "HTTP://example.com",
            "  https://x.y  ",
        ] {
            assert!(web_address(ok).is_some(), "{ok}");
        }
        for bad in [
            "javascript:alert(1)",
            "JaVaScRiPt:alert(1)",
            "java\tscript:alert(1)",
            "data:text/html,<script>alert(1)</script>",
            "vbscript:msgbox(1)",
            "//evil.example/x",
            "/relative/path",
            "https:///path",
            "https://",
            "https://exa mple.com",
            "https://x\u{0}y",
            "",
        ] {
            assert!(web_address(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn backticked_spans_become_code() {
        let s = Spans::new("team `a<b>` via `duties`");
        let parts: Vec<(bool, &str)> = s.0.iter().map(|p| (p.code, p.text.as_str())).collect();
        assert_eq!(
            parts,
            [
                (false, "team "),
                (true, "a<b>"),
                (false, " via "),
                (true, "duties")
            ]
        );
        assert_eq!(Spans::new("one ` alone").0.len(), 1);
    }

    #[test]
    fn matrix_page_is_self_contained() {
        let catalog = CheckedCatalog::default_catalog().unwrap();
        let html = matrix_page(&catalog).unwrap();
        assert!(html.starts_with("<!doctype html>"));
        assert!(!html.contains("<script"), "no scripts");
        assert!(!html.contains("src=\"http"), "no external assets");
        assert!(html.contains("Content-Security-Policy"));
        assert!(html.contains("cell shared lead-customer"));
        assert!(html.contains("<a href=\"https://"), "the source is a link");
    }
}

struct CrosswalkRow {
    from_area: String,
    from_title: String,
    relation: &'static str,
    to_area: String,
    to_title: String,
    rationale: String,
}

struct UnrelatedList {
    catalog: String,
    areas: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "html/crosswalk.html")]
struct CrosswalkPage {
    title: String,
    footer: String,
    heading: String,
    from_id: String,
    from_version: String,
    to_id: String,
    to_version: String,
    origin: String,
    relations: Vec<CrosswalkRow>,
    unrelated: Vec<UnrelatedList>,
}

/// `demarc crosswalk --format html`.
pub fn crosswalk_page(view: &demarc_model::crosswalk::View<'_>) -> Result<String, askama::Error> {
    let heading = format!(
        "Crosswalk: {} → {}",
        view.from.catalog().title,
        view.to.catalog().title
    );
    let list = |c: &CheckedCatalog, areas: &[(&str, &str)]| UnrelatedList {
        catalog: c.id().to_owned(),
        areas: areas
            .iter()
            .map(|(id, title)| ((*id).to_owned(), (*title).to_owned()))
            .collect(),
    };
    CrosswalkPage {
        title: heading.clone(),
        footer: footer(),
        heading,
        from_id: view.from.id().to_owned(),
        from_version: view.from.catalog().version.clone(),
        to_id: view.to.id().to_owned(),
        to_version: view.to.catalog().version.clone(),
        origin: view.origin.to_owned(),
        relations: view
            .relations
            .iter()
            .map(|r| CrosswalkRow {
                from_area: r.from_area.to_owned(),
                from_title: r.from_title.to_owned(),
                relation: r.relation.as_str(),
                to_area: r.to_area.to_owned(),
                to_title: r.to_title.to_owned(),
                rationale: r.rationale.to_owned(),
            })
            .collect(),
        unrelated: vec![
            list(view.from, &view.unrelated_from),
            list(view.to, &view.unrelated_to),
        ],
    }
    .render()
}

struct CompareCell {
    name: String,
    owner: String,
    note: String,
    source: String,
}

struct CompareRow {
    component: String,
    kind: &'static str,
    relation: &'static str,
    a: CompareCell,
    b: CompareCell,
}

struct CompareApp {
    id: String,
    name: String,
    rows: Vec<CompareRow>,
    unresolved: Vec<(String, CompareCell)>,
}

#[derive(Template)]
#[template(path = "html/compare.html")]
struct ComparePage {
    title: String,
    footer: String,
    estate: String,
    catalogs: Vec<String>,
    summary: String,
    apps: Vec<CompareApp>,
}

/// `demarc compare --format html`.
pub fn comparison_page(
    report: &demarc_model::compare::Comparison<'_>,
    estate: &str,
) -> Result<String, askama::Error> {
    use super::text::{cell_name, cell_owner_label, comparison_summary};
    let cell = |c: &demarc_model::compare::CellRead<'_>| CompareCell {
        name: cell_name(c),
        owner: cell_owner_label(c),
        note: c.cell.note.clone(),
        source: c.cell.source.clone(),
    };
    ComparePage {
        title: "Where the catalogs disagree".to_owned(),
        footer: footer(),
        estate: estate.to_owned(),
        catalogs: report.catalogs.iter().map(|c| c.id().to_owned()).collect(),
        summary: comparison_summary(report).replace('`', ""),
        apps: report
            .applications
            .iter()
            .map(|app| CompareApp {
                id: app.application.id.clone(),
                name: app.application.name.clone(),
                rows: app
                    .disagreements
                    .iter()
                    .map(|d| CompareRow {
                        component: super::text::disagreement_components(d),
                        kind: d.kind.as_str(),
                        relation: d.relation.as_str(),
                        a: cell(&d.a),
                        b: cell(&d.b),
                    })
                    .collect(),
                unresolved: app
                    .unresolved
                    .iter()
                    .map(|u| (u.component.id.clone(), cell(&u.cell)))
                    .collect(),
            })
            .collect(),
    }
    .render()
}
