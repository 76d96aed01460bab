//! The self-contained HTML report: one file, inline CSS, no scripts or external assets,
//! readable in any browser and safe to attach to an audit.

use std::fmt::Write;

use demarc_model::CheckedCatalog;
use demarc_model::assess::{ApplicationAssessment, Assessment, EvidenceStatus};

const STYLE: &str = r#"
:root{--provider:#2f6fb3;--customer:#d9822b;--shared:#8e5bb5;--na:#9aa3ad;--ok:#2e8540;--bad:#c62828;--warn:#b7791f;--ink:#1f2933;--muted:#5f6b7a;--line:#d9dee4;--bg:#f6f8fa}
*{box-sizing:border-box}body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--ink);margin:0;background:#fff}
main{max-width:1180px;margin:0 auto;padding:28px 24px 60px}h1{font-size:26px;margin:0 0 4px}h2{font-size:20px;margin:36px 0 12px}h3{margin:0;font-size:17px}
.sub{color:var(--muted);margin:0 0 18px}a{color:var(--provider)}
table.matrix{border-collapse:separate;border-spacing:4px;width:100%;table-layout:fixed}.matrix th:first-child{width:30%}
.matrix th{font-size:13px;text-transform:uppercase;letter-spacing:.04em;color:var(--muted);text-align:left;padding:6px 8px}
.matrix th.sm{text-align:center;font-size:15px;color:var(--ink)}
.matrix td.area{padding:8px 10px;background:var(--bg);border-radius:6px;width:30%}
.matrix td.area small{display:block;color:var(--muted)}
.matrix tr.layer td{padding:14px 4px 2px;font-weight:600;color:var(--muted);font-size:13px;text-transform:uppercase;letter-spacing:.05em}
.cell{color:#fff;border-radius:6px;padding:8px 10px;text-align:center;font-weight:600;vertical-align:top}
.cell small{display:block;font-weight:400;font-size:12px;opacity:.95;text-align:left;margin-top:4px}
.cell.provider{background:var(--provider)}.cell.customer{background:var(--customer)}
.cell.shared{background:linear-gradient(135deg,var(--provider) 0 50%,var(--customer) 50% 100%)}
.cell.shared.lead-customer{background:linear-gradient(135deg,var(--customer) 0 62%,var(--provider) 62% 100%)}
.cell.shared.lead-provider{background:linear-gradient(135deg,var(--provider) 0 62%,var(--customer) 62% 100%)}
.cell.na{background:var(--na)}
.legend{display:flex;gap:16px;flex-wrap:wrap;margin:10px 0 0;font-size:13px;color:var(--muted)}
.legend span::before{content:"";display:inline-block;width:14px;height:14px;border-radius:3px;margin-right:6px;vertical-align:-2px;background:var(--c)}
.kpis{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:12px;margin:8px 0 8px}
.kpi{background:var(--bg);border:1px solid var(--line);border-radius:8px;padding:12px 14px}.kpi b{display:block;font-size:24px}.kpi span{color:var(--muted);font-size:13px}
.cards{display:grid;grid-template-columns:1fr;gap:16px}
.card{border:1px solid var(--line);border-radius:10px;padding:16px 18px;break-inside:avoid}
.card header{display:flex;justify-content:space-between;align-items:baseline;gap:12px;flex-wrap:wrap}
.meta{color:var(--muted);font-size:13px;margin:4px 0 10px}
.badge{display:inline-block;font-size:12px;font-weight:600;border-radius:999px;padding:2px 9px;background:var(--bg);border:1px solid var(--line)}
.badge.sanctioned{color:var(--ok);border-color:var(--ok)}.badge.tolerated{color:var(--warn);border-color:var(--warn)}
.badge.unsanctioned,.badge.discovered{color:#fff;background:var(--bad);border-color:var(--bad)}
.bar{height:8px;background:#e9edf1;border-radius:4px;overflow:hidden;margin:6px 0 12px}.bar i{display:block;height:100%;background:var(--ok)}
table.duties{border-collapse:collapse;width:100%;font-size:14px}
.duties th{text-align:left;font-size:12px;color:var(--muted);text-transform:uppercase;letter-spacing:.04em;border-bottom:1px solid var(--line);padding:6px 8px}
.duties td{border-bottom:1px solid #eef1f4;padding:6px 8px;vertical-align:top}
.duties tr.gap td{background:#fdf0ef}.duties tr.gap td:first-child{box-shadow:inset 3px 0 var(--bad)}
.ev-current{color:var(--ok)}.ev-na{color:var(--muted)}.ev-expiring{color:var(--warn);font-weight:600}.ev-expired,.ev-missing{color:var(--bad);font-weight:600}
.gaps{color:var(--bad);font-size:13px}.ok{color:var(--ok)}.accepted{color:var(--warn);font-size:13px}
.duties tr.proof td{border-bottom:1px solid var(--line);padding:0 8px 8px 20px;font-size:13px;color:var(--muted);overflow-wrap:anywhere}.contra li,.inherited{overflow-wrap:anywhere}.duties tr.proof ul{margin:0;padding-left:16px}
.contra{border:1px solid var(--bad);background:#fdf0ef;border-radius:8px;padding:8px 12px;margin:0 0 10px;font-size:13px}.contra ul{margin:4px 0 0;padding-left:18px}
@media(max-width:700px){table.duties,table.duties tbody,table.duties tr,table.duties td{display:block;width:100%}table.duties thead{display:none}.duties td{border:0;padding:2px 8px}.duties tr{border-bottom:1px solid var(--line);padding:6px 0}}
.inherited{font-size:13px;color:var(--muted);margin-top:8px}
footer{margin-top:40px;color:var(--muted);font-size:12px}
@media print{main{padding:0}.card{page-break-inside:avoid}}
"#;

/// Escape text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Escape text and set its `backticked` spans as code, as the text formats write them.
fn escape_with_code(s: &str) -> String {
    let parts: Vec<&str> = s.split('`').collect();
    if parts.len() % 2 == 0 {
        // An unmatched backtick: show the text as it is.
        return escape(s);
    }
    parts
        .iter()
        .enumerate()
        .map(|(i, part)| {
            if i % 2 == 1 {
                format!("<code>{}</code>", escape(part))
            } else {
                escape(part)
            }
        })
        .collect()
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{}</title><style>{STYLE}</style></head><body><main>\n{body}\n<footer>Generated by demarc {}.</footer></main></body></html>\n",
        escape(title),
        env!("CARGO_PKG_VERSION")
    )
}

/// The catalog's matrix as a colour-coded grid, grouped by layer, like the seed's figure.
fn matrix_section(catalog: &CheckedCatalog) -> String {
    let c = catalog.catalog();
    let mut s = String::new();
    let _ = write!(s, "<table class=\"matrix\"><thead><tr><th>Area</th>");
    for m in catalog.service_models() {
        let _ = write!(
            s,
            "<th class=\"sm\" title=\"{}\">{}</th>",
            escape(&m.description),
            escape(&m.title)
        );
    }
    s.push_str("</tr></thead><tbody>");
    for layer in catalog.layers() {
        let areas: Vec<_> = catalog
            .areas()
            .iter()
            .filter(|a| a.layer == layer.id)
            .collect();
        if areas.is_empty() {
            continue;
        }
        let _ = write!(
            s,
            "<tr class=\"layer\"><td colspan=\"{}\">{}</td></tr>",
            catalog.service_models().len() + 1,
            escape(&layer.title)
        );
        for area in areas {
            let _ = write!(
                s,
                "<tr><td class=\"area\"><b>{}</b> <code>{}</code><small>{}</small></td>",
                escape(&area.title),
                escape(&area.id),
                escape(&area.description)
            );
            for m in catalog.service_models() {
                match catalog.cell(area, &m.id) {
                    Some(cell) => {
                        let (class, label) = match (cell.owner.as_str(), cell.lead) {
                            ("shared", Some(l)) => (
                                format!("shared lead-{}", l.as_str()),
                                format!("Shared, {} leads", l.as_str()),
                            ),
                            ("n/a", _) => ("na".to_string(), "n/a".to_string()),
                            (o, _) => (o.to_string(), capitalise(o)),
                        };
                        let _ = write!(
                            s,
                            "<td class=\"cell {class}\" title=\"{}\">{}<small>{}</small></td>",
                            escape(&cell.source),
                            escape(&label),
                            escape(&cell.note)
                        );
                    }
                    None => s.push_str("<td class=\"cell na\">?</td>"),
                }
            }
            s.push_str("</tr>");
        }
    }
    s.push_str("</tbody></table>");
    s.push_str(
        "<div class=\"legend\"><span style=\"--c:var(--provider)\">AI service provider</span>\
         <span style=\"--c:var(--customer)\">AI service user (customer)</span>\
         <span style=\"--c:linear-gradient(135deg,var(--provider) 50%,var(--customer) 50%)\">shared (larger colour leads)</span>\
         <span style=\"--c:var(--na)\">not applicable</span></div>",
    );
    let _ = write!(
        s,
        "<p class=\"sub\">Source: <a href=\"{}\">{}</a> ({}). Hover a cell for the cited passage.</p>",
        escape(&c.source.url),
        escape(&c.source.title),
        escape(&c.source.date)
    );
    s
}

fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// `demarc matrix --format html`.
pub fn matrix_page(catalog: &CheckedCatalog) -> String {
    let c = catalog.catalog();
    let body = format!(
        "<h1>{}</h1><p class=\"sub\">Catalog <code>{}</code> version {}</p>{}",
        escape(&c.title),
        escape(&c.id),
        escape(&c.version),
        matrix_section(catalog)
    );
    page(&c.title, &body)
}

fn app_card(app: &ApplicationAssessment) -> String {
    use super::assessment::{evidence_label, proof_lines, shared_with, status_label};
    let mut s = String::new();
    let _ = write!(
        s,
        "<section class=\"card\" id=\"app-{}\"><header><h3>{} <code>{}</code></h3><span class=\"badge {}\">{}</span></header>\
         <div class=\"meta\">{} · data {} · owner <code>{}</code> · {} of {} covered ({})</div>\
         <div class=\"bar\"><i style=\"width:{}%\"></i></div>",
        escape(&app.id),
        escape(&app.name),
        escape(&app.id),
        app.status.as_str(),
        app.status.as_str(),
        escape(&app.service_models.join(" + ")),
        app.data_classification,
        escape(&app.owner),
        app.coverage.covered,
        super::count(app.coverage.total, "customer duty"),
        app.coverage.percent_label(),
        app.coverage.percent.unwrap_or(0.0)
    );
    if !app.contradictions.is_empty() {
        s.push_str("<div class=\"contra\"><b>Contradicted by what demarc observed</b><ul>");
        for c in &app.contradictions {
            let _ = write!(
                s,
                "<li><code>{}</code> {} <small>({}, last {})</small></li>",
                c.kind.as_str(),
                escape(&c.detail),
                escape(&c.source),
                c.time
            );
        }
        s.push_str("</ul></div>");
    }
    if app.duties.is_empty() {
        s.push_str("<p>No customer duties.</p>");
    } else {
        s.push_str("<table class=\"duties\"><thead><tr><th>Area</th><th>Accountable</th><th>Shared with</th><th>Team</th><th>Control</th><th>Evidence</th><th>Status</th></tr></thead><tbody>");
        for d in &app.duties {
            let ev_class = match d.evidence {
                EvidenceStatus::NotNeeded => "ev-na",
                EvidenceStatus::Current => "ev-current",
                EvidenceStatus::Expiring => "ev-expiring",
                EvidenceStatus::Expired => "ev-expired",
                EvidenceStatus::Missing => "ev-missing",
            };
            let status = if d.covered {
                "<span class=\"ok\">covered</span>".to_string()
            } else if d.risk_accepted {
                format!(
                    "<span class=\"accepted\">{}</span>",
                    escape(&status_label(d))
                )
            } else {
                format!("<span class=\"gaps\">{}</span>", escape(&status_label(d)))
            };
            let proof: String = proof_lines(d)
                .iter()
                .map(|l| format!("<li>{}</li>", escape_with_code(l)))
                .collect();
            let _ = write!(
                s,
                "<tr class=\"{}\"><td><code>{}</code><br><small>{} · component <code>{}</code></small></td><td>{}<br><small>{}</small></td><td>{}</td><td>{}</td><td>{}</td><td class=\"{ev_class}\">{}</td><td>{status}</td></tr>",
                if d.covered || d.risk_accepted {
                    ""
                } else {
                    "gap"
                },
                escape(&d.area),
                escape(&d.title),
                escape(&d.component),
                escape(&d.accountable.label()),
                escape_with_code(&d.accountable_reason),
                escape(&shared_with(d)),
                escape(d.owner_team.as_deref().unwrap_or("unowned")),
                d.control.as_str(),
                escape(&evidence_label(d))
            );
            if !proof.is_empty() {
                let _ = write!(
                    s,
                    "<tr class=\"proof\"><td colspan=\"7\"><ul>{proof}</ul></td></tr>"
                );
            }
        }
        s.push_str("</tbody></table>");
    }
    if !app.inherited.is_empty() {
        let list: Vec<String> = app
            .inherited
            .iter()
            .map(|i| {
                format!(
                    "<code>{}</code> ({}, via <code>{}</code>)",
                    escape(&i.area),
                    escape(&i.provider),
                    escape(&i.component)
                )
            })
            .collect();
        let _ = write!(
            s,
            "<div class=\"inherited\">Inherited from providers: {}</div>",
            list.join(", ")
        );
    }
    s.push_str("</section>");
    s
}

/// `demarc assess --format html`: summary, the matrix, then a card per application.
pub fn assessment_page(report: &Assessment, catalog: &CheckedCatalog) -> String {
    let s = &report.summary;
    let mut body = format!(
        "<h1>GenAI responsibility assessment: {}</h1><p class=\"sub\">Assessed {} against catalog <code>{}</code> {}{}</p>",
        escape(&report.organisation),
        report.date,
        escape(&report.catalog.id),
        escape(&report.catalog.version),
        report
            .observed_since
            .map(|d| format!(", observations since {d}"))
            .unwrap_or_default()
    );
    let kpi = |value: String, label: &str| {
        format!("<div class=\"kpi\"><b>{value}</b><span>{label}</span></div>")
    };
    body.push_str("<div class=\"kpis\">");
    body.push_str(&kpi(s.coverage.percent_label(), "customer duties covered"));
    body.push_str(&kpi(s.applications.to_string(), "applications"));
    for (status, n) in &s.applications_by_status {
        body.push_str(&kpi(n.to_string(), status));
    }
    body.push_str(&kpi(s.gaps.to_string(), "duties not covered"));
    body.push_str(&kpi(
        s.contradicted.to_string(),
        "contradicted by observation",
    ));
    body.push_str(&kpi(
        s.evidence_mismatch.to_string(),
        "evidence not matching",
    ));
    body.push_str(&kpi(s.evidence_missing.to_string(), "evidence missing"));
    body.push_str(&kpi(s.evidence_expired.to_string(), "evidence expired"));
    body.push_str(&kpi(
        s.evidence_expiring.to_string(),
        &format!("expiring within {} days", report.expiring_within_days),
    ));
    body.push_str(&kpi(s.risk_accepted.to_string(), "risk accepted"));
    body.push_str(&kpi(s.not_applicable.to_string(), "not applicable"));
    body.push_str(&kpi(s.inherited.to_string(), "areas inherited"));
    body.push_str(&kpi(
        s.unlisted_services.to_string(),
        "unlisted GenAI services",
    ));
    body.push_str("</div>");
    body.push_str("<h2>Responsibility matrix</h2>");
    body.push_str(&matrix_section(catalog));
    if !report.unlisted_services.is_empty() {
        body.push_str(
            "<h2>GenAI services in use that no application covers</h2><div class=\"contra\"><ul>",
        );
        for u in &report.unlisted_services {
            let _ = write!(
                body,
                "<li>{}</li>",
                escape(&super::assessment::unlisted_line(u))
            );
        }
        body.push_str("</ul></div>");
    }
    body.push_str("<h2>Applications</h2><div class=\"cards\">");
    for app in &report.applications {
        body.push_str(&app_card(app));
    }
    body.push_str("</div>");
    page(
        &format!("demarc assessment: {}", report.organisation),
        &body,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn backticked_spans_become_code() {
        assert_eq!(
            escape_with_code("team `a<b>` via `duties`"),
            "team <code>a&lt;b&gt;</code> via <code>duties</code>"
        );
        assert_eq!(escape_with_code("one ` alone"), "one ` alone");
    }

    #[test]
    fn matrix_page_is_self_contained() {
        let catalog = CheckedCatalog::default_catalog().unwrap();
        let html = matrix_page(&catalog);
        assert!(html.starts_with("<!doctype html>"));
        assert!(!html.contains("<script"), "no scripts");
        assert!(!html.contains("src=\"http"), "no external assets");
        assert!(html.contains("cell shared lead-customer"));
    }
}
