//! Views shared by the dashboard's pages and the static HTML reports the CLI writes
//! (`demarc assess --format html`): the structs they render and, beside them, the template
//! fragments in `templates/shared/` (the CLI's askama configuration reads that folder too).

use demarc_model::CheckedCatalog;
use demarc_model::assess::{Assessment, DutyAssessment};

use demarc_model::catalog::Basis;

use crate::views;

/// `address` when it is an absolute `http`/`https` URL with something after the scheme, and
/// holds no whitespace or control character (browsers drop those inside a scheme, which would
/// let `java\tscript:` through a naive check); any other link is shown as text, never as
/// `href`. Every HTML view, page or file, decides links with this.
pub fn web_address(address: &str) -> Option<&str> {
    let a = address.trim();
    if a.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return None;
    }
    let lower = a.get(..8).map(str::to_ascii_lowercase).unwrap_or_default();
    let rest = if lower.starts_with("https://") {
        &a[8..]
    } else if lower.starts_with("http://") {
        &a[7..]
    } else {
        return None;
    };
    (!rest.is_empty() && !rest.starts_with('/')).then_some(a)
}

/// A link that becomes `<a href>` only when its address is a web address.
pub struct Link {
    pub href: Option<String>,
    pub text: String,
    /// The address shown beside the text when it is not a web address.
    pub address: String,
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

pub struct ModelHead {
    pub title: String,
    pub description: String,
}

pub struct CellView {
    pub class: String,
    pub label: String,
    /// `*` inferred, `!` disputed, empty when stated.
    pub marker: &'static str,
    /// `inferred` or `disputed`, empty when stated.
    pub basis: &'static str,
    pub note: String,
    pub source: String,
}

pub struct AreaRow {
    pub id: String,
    pub title: String,
    pub description: String,
    /// The area's OWASP LLM 2025, NIST AI 600-1 and MITRE ATLAS ids.
    pub ids: String,
    pub cells: Vec<Option<CellView>>,
}

pub struct LayerRows {
    pub title: String,
    pub areas: Vec<AreaRow>,
}

/// The catalog's matrix, as `templates/html/matrix-section.html` shows it.
pub struct MatrixView {
    pub models: Vec<ModelHead>,
    pub columns: usize,
    /// More than three service models: compact cells, notes on hover, focus and in print.
    pub wide: bool,
    /// Some cell is model-dependent (the legend says what that means).
    pub model_dependent: bool,
    pub layers: Vec<LayerRows>,
    pub source: Link,
    pub source_date: String,
}

fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

impl MatrixView {
    /// The catalog's matrix, grouped by layer.
    pub fn new(catalog: &CheckedCatalog) -> MatrixView {
        matrix_view(catalog)
    }
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
                    ids: framework_ids(&area.mappings),
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

/// One piece of declared evidence as a duty section shows it.
pub struct EvidenceView {
    pub description: String,
    /// A web link, for auditors and admins only.
    pub href: Option<String>,
    /// The link as text when it may not be followed or shown as a link.
    pub text_link: String,
    /// The evidence file and its check (`file NAME, sha256 verified`); the name only for
    /// auditors, admins and static reports.
    pub file: Option<String>,
    pub status: String,
    pub reviewed: String,
    pub reviewer: String,
    /// `expires DATE`, `stale after DATE (maximum review age)`, or empty.
    pub validity: String,
}

/// One duty as the dashboard's pages and the static assessment report show it
/// (`templates/shared/duty.html`).
pub struct DutyView {
    pub area: String,
    pub title: String,
    pub accountable: String,
    pub accountable_reason: Spans,
    pub service_model: String,
    pub service_model_reason: Spans,
    pub team: String,
    pub control: String,
    pub control_statement: String,
    pub evidence: String,
    pub covered: bool,
    pub declared: Vec<EvidenceView>,
    pub observed: Vec<(String, String, String)>,
    pub contradictions: Vec<String>,
    pub citation: Option<views::CellCitation>,
    pub ids: String,
    /// The risk acceptance that applies, in one line, with its state.
    pub risk: Option<String>,
    /// The owning team has a page to link to (the dashboard; a static report has none).
    pub team_page: bool,
    /// The section's `id`.
    pub anchor: String,
    /// The component the duty was resolved from.
    pub component: String,
    /// The provider a shared duty is shared with.
    pub shared_with: Option<String>,
    /// `covered`, `risk accepted: GAPS` or the gaps: the verdict in words.
    pub verdict: String,
    /// `true` while a gap stands (not covered, no risk acceptance in force).
    pub open_gap: bool,
}

/// Where a view is shown: on the dashboard (links to its pages) or in a static report about
/// one application (links within the file).
#[derive(Debug, Clone, Copy)]
pub enum Place<'a> {
    Dashboard,
    Report { application: &'a str },
}

impl Place<'_> {
    /// The `id` of a duty's section: unique within the page or the file.
    pub fn duty_anchor(self, area: &str) -> String {
        match self {
            Place::Dashboard => format!("duty-{area}"),
            Place::Report { application } => format!("app-{application}-duty-{area}"),
        }
    }
}

impl DutyView {
    /// `names`: raw evidence links and file names shown (auditors, admins, static reports).
    pub fn new(
        catalog: &CheckedCatalog,
        d: &DutyAssessment,
        names: bool,
        place: Place<'_>,
    ) -> DutyView {
        DutyView {
            area: d.area.clone(),
            title: d.title.clone(),
            accountable: d.accountable.label(),
            accountable_reason: Spans::new(&d.accountable_reason),
            service_model: d.service_model.clone(),
            service_model_reason: Spans::new(&d.service_model_reason),
            team: match &d.owner_team {
                Some(t) => t.clone(),
                None if d.gaps.contains(&demarc_model::assess::Gap::Unresolved) => {
                    "unresolved (model-dependent)".into()
                }
                None => "unowned".into(),
            },
            control: d.control.as_str().to_owned(),
            control_statement: d.control_statement.clone().unwrap_or_default(),
            evidence: match (d.evidence, d.evidence_expires) {
                (demarc_model::assess::EvidenceStatus::NotNeeded, _) => "not needed".into(),
                (e, Some(date)) => format!("{} ({date})", e.as_str()),
                (e, None) => e.as_str().to_owned(),
            },
            covered: d.covered,
            declared: d
                .declared_evidence
                .iter()
                .map(|e| {
                    let href = names
                        .then(|| e.link.as_deref().and_then(web_address).map(str::to_owned))
                        .flatten();
                    let check = match (&e.file_check, &e.sha256) {
                        (Some(c), _) => format!("sha256 {}", c.as_str()),
                        (None, Some(_)) => "sha256 not checked".to_owned(),
                        (None, None) => "no sha256".to_owned(),
                    };
                    EvidenceView {
                        description: e.description.clone(),
                        text_link: match (&e.link, &href) {
                            (Some(link), None) if names => link.clone(),
                            _ => String::new(),
                        },
                        href,
                        file: e.file.as_ref().map(|f| {
                            if names {
                                format!("file {f}, {check}")
                            } else {
                                format!("file, {check}")
                            }
                        }),
                        validity: match (e.expires, e.valid_until) {
                            (Some(x), _) => format!("expires {x}"),
                            (None, Some(v)) => {
                                format!("stale after {v} (maximum review age)")
                            }
                            (None, None) => String::new(),
                        },
                        status: match &e.problem {
                            Some(problem) => format!("{}: {problem}", e.status.as_str()),
                            None => e.status.as_str().to_owned(),
                        },
                        reviewed: e.reviewed.to_string(),
                        reviewer: e.reviewer.clone(),
                    }
                })
                .collect(),
            observed: d
                .observed_evidence
                .iter()
                .map(|o| {
                    (
                        o.kind.as_str().to_owned(),
                        o.summary.clone(),
                        o.observed_at.to_string(),
                    )
                })
                .collect(),
            contradictions: d
                .contradictions
                .iter()
                .map(|c| {
                    format!(
                        "{}: {} ({}, last {})",
                        c.kind.as_str(),
                        c.detail,
                        c.source,
                        c.time
                    )
                })
                .collect(),
            citation: crate::views::citation(catalog, d),
            risk: d.risk_acceptance.as_ref().map(|r| {
                format!(
                    "{} ({}): owner {}, approved by {} on {}, expires {}: {}",
                    if d.risk_accepted {
                        "accepted"
                    } else {
                        "not in force"
                    },
                    r.status.as_str(),
                    r.owner,
                    r.approved_by,
                    r.approved,
                    r.expires,
                    r.reason
                )
            }),
            team_page: matches!(place, Place::Dashboard) && d.owner_team.is_some(),
            anchor: place.duty_anchor(&d.area),
            component: d.component.clone(),
            shared_with: d.shared_with().map(str::to_owned),
            verdict: if d.covered {
                "covered".into()
            } else if d.risk_accepted {
                format!("risk accepted: {}", d.gap_list(", "))
            } else {
                d.gap_list(", ")
            },
            open_gap: !(d.covered || d.risk_accepted),
            ids: catalog
                .areas()
                .iter()
                .find(|a| a.id == d.area)
                .map(|a| crate::report::framework_ids(&a.mappings))
                .unwrap_or_default(),
        }
    }
}

/// A piece of text, set as code or not.
pub struct Span {
    pub code: bool,
    pub text: String,
}

/// Text whose `backticked` spans are code, as the text formats write names.
pub struct Spans(pub Vec<Span>);

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

/// An area's OWASP LLM 2025, NIST AI 600-1 and MITRE ATLAS ids, as one line.
pub fn framework_ids(m: &demarc_model::catalog::Mappings) -> String {
    m.owasp_llm_2025
        .iter()
        .chain(&m.nist_ai_600_1)
        .chain(&m.mitre_atlas)
        .cloned()
        .collect::<Vec<_>>()
        .join(" · ")
}

/// The estate at a glance: one row per application, one column per catalog area.
pub struct HeatMap {
    /// (id, title) of each catalog area, in catalog order.
    pub areas: Vec<(String, String)>,
    pub rows: Vec<HeatRow>,
}

impl HeatMap {
    /// `base` prefixes every link: `/applications/` on the dashboard, `#app-` in a static
    /// report (whose cards carry `id="app-ID"`).
    pub fn new(a: &Assessment, catalog: &CheckedCatalog, base: &str) -> HeatMap {
        let areas: Vec<(String, String)> = catalog
            .areas()
            .iter()
            .map(|x| (x.id.clone(), x.title.clone()))
            .collect();
        let ids: Vec<String> = areas.iter().map(|x| x.0.clone()).collect();
        HeatMap {
            rows: rows(a, &ids, base),
            areas,
        }
    }
}

/// One cell of the application × area heat map.
pub struct HeatCell {
    /// `covered`, `expiring`, `accepted`, `gap`, `provider` or `na`.
    pub class: &'static str,
    pub title: String,
}

pub struct HeatRow {
    pub id: String,
    pub name: String,
    /// Where the row's application is: a page, or an anchor in a static report.
    pub href: String,
    /// (where the duty is, the cell)
    pub cells: Vec<(String, HeatCell)>,
}

/// Every application × area of the estate: covered, expiring, risk-accepted, a gap, wholly
/// on a provider, or not applicable.
fn rows(a: &Assessment, areas: &[String], base: &str) -> Vec<HeatRow> {
    a.applications
        .iter()
        .map(|app| HeatRow {
            id: app.id.clone(),
            name: app.name.clone(),
            href: format!("{base}{}", app.id),
            cells: areas
                .iter()
                .map(|area| {
                    let duties: Vec<&DutyAssessment> =
                        app.duties.iter().filter(|d| &d.area == area).collect();
                    let cell = if duties.is_empty() {
                        match app.inherited.iter().find(|i| &i.area == area) {
                            Some(i) => HeatCell {
                                class: "provider",
                                title: format!("{area}: on {}", i.provider),
                            },
                            None => HeatCell {
                                class: "na",
                                title: format!("{area}: not applicable"),
                            },
                        }
                    } else if duties.iter().any(|d| !d.covered && !d.risk_accepted) {
                        HeatCell {
                            class: "gap",
                            title: format!(
                                "{area}: {}",
                                duties
                                    .iter()
                                    .map(|d| d.gap_list(", "))
                                    .filter(|g| !g.is_empty())
                                    .collect::<Vec<_>>()
                                    .join("; ")
                            ),
                        }
                    } else if duties.iter().any(|d| !d.covered) {
                        HeatCell {
                            class: "accepted",
                            title: format!("{area}: gap under a current risk acceptance"),
                        }
                    } else if duties.iter().any(|d| views::expiring(d)) {
                        HeatCell {
                            class: "expiring",
                            title: format!("{area}: covered, evidence expiring soon"),
                        }
                    } else {
                        HeatCell {
                            class: "covered",
                            title: format!("{area}: covered"),
                        }
                    };
                    // A static report's duty sections are in the same file.
                    let href = if base.starts_with('#') {
                        format!(
                            "#{}",
                            Place::Report {
                                application: &app.id
                            }
                            .duty_anchor(area)
                        )
                    } else {
                        format!("{base}{}#{}", app.id, Place::Dashboard.duty_anchor(area))
                    };
                    (href, cell)
                })
                .collect(),
        })
        .collect()
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
}
