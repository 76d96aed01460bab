//! Views shared by the dashboard's pages and the static HTML reports the CLI writes
//! (`demarc assess --format html`): the structs they render and, beside them, the template
//! fragments in `templates/shared/` (the CLI's askama configuration reads that folder too).

use demarc_model::CheckedCatalog;
use demarc_model::assess::{Assessment, DutyAssessment};

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
