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
                    // Static reports have one anchor per application, pages one per duty.
                    let href = if base.starts_with('#') {
                        format!("{base}{}", app.id)
                    } else {
                        format!("{base}{}#duty-{area}", app.id)
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
}
