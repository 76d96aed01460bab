//! Markdown for every command (`assess`, `matrix`). Text from estates, catalogs and logs is
//! escaped so that it stays text: `<`, `>`, `[`, `]`, `|` and `\` are backslash-escaped (no
//! raw HTML, no links, no broken tables), line breaks become spaces and control characters
//! visible escapes. A span between backticks (how demarc writes names in its sentences)
//! stays code, fenced so that a backtick inside cannot end it early.

use demarc_model::CheckedCatalog;
use demarc_model::assess::Assessment;

use super::table::clean;
use super::text::{
    app_heading, contradiction_line, duty_name, evidence_label, inherited_line, proof_lines,
    shared_with, status_label, summary_sentence, unattached_contradictions, unlisted_line,
};

/// Plain text made safe for one Markdown line.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\\' | '<' | '>' | '[' | ']' | '|' | '`' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    clean(&out).into_owned()
}

/// A code span around `s`, whatever backticks it holds.
pub fn code(s: &str) -> String {
    let s = clean(s);
    let longest = s.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    let pad = if s.starts_with('`') || s.ends_with('`') || s.is_empty() {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{s}{pad}{fence}")
}

/// A code span for a table cell: a `|` inside would end the cell.
fn cell_code(s: &str) -> String {
    code(s).replace('|', "\\|")
}

/// A sentence that may hold `backticked` names: the names as code, the rest escaped. An
/// unmatched backtick is text.
pub fn inline(s: &str) -> String {
    let parts: Vec<&str> = s.split('`').collect();
    if parts.len().is_multiple_of(2) {
        return escape(s);
    }
    parts
        .iter()
        .enumerate()
        .map(|(i, part)| {
            if i % 2 == 1 {
                cell_code(part)
            } else {
                escape(part)
            }
        })
        .collect()
}

/// A Markdown table of cells already written as Markdown (see [`inline`], [`code`]).
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = format!("| {} |\n", headers.join(" | "));
    out.push_str(&format!("|{}\n", " --- |".repeat(headers.len())));
    for row in rows {
        out.push_str(&format!("| {} |\n", row.join(" | ")));
    }
    out
}

/// `demarc matrix --format markdown`.
pub fn matrix(catalog: &CheckedCatalog) -> String {
    let models: Vec<&str> = catalog
        .service_models()
        .iter()
        .map(|s| s.id.as_str())
        .collect();
    let mut headers = vec!["Area", "Layer"];
    headers.extend(models.iter().copied());
    let headers: Vec<String> = headers.iter().map(|h| inline(h)).collect();
    let rows: Vec<Vec<String>> = catalog
        .areas()
        .iter()
        .map(|a| {
            let mut row = vec![
                format!("{} ({})", inline(&a.title), cell_code(&a.id)),
                inline(&a.layer),
            ];
            for m in &models {
                row.push(
                    catalog
                        .cell(a, m)
                        .map_or_else(|| "?".into(), |c| inline(&super::cell_label(c))),
                );
            }
            row
        })
        .collect();
    let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
    format!(
        "# {}\n\n{}\n{}\n",
        inline(&catalog.catalog().title),
        table(&headers, &rows),
        inline(super::BASIS_LEGEND)
    )
}

/// `demarc assess --format markdown`.
pub fn assessment(report: &Assessment) -> String {
    let mut out = format!(
        "# GenAI responsibility assessment: {}\n\nAssessed {} against {} {}{}. **{} covered**.\n\n{}.\n",
        inline(&report.organisation),
        report.date,
        code(&report.catalog.id),
        inline(&report.catalog.version),
        report
            .observed_since
            .map(|d| format!(", observations since {d}"))
            .unwrap_or_default(),
        report.summary.coverage.percent_label(),
        summary_sentence(&report.summary, report.expiring_within_days)
    );
    for app in &report.applications {
        out.push_str(&format!("\n## {}\n\n", inline(&app_heading(app))));
        let rows: Vec<Vec<String>> = app
            .duties
            .iter()
            .map(|d| {
                vec![
                    cell_code(&duty_name(app, d)),
                    inline(&d.accountable.label()),
                    inline(&shared_with(d)),
                    match d.owner_team.as_deref() {
                        Some(t) => inline(t),
                        None if crate::render::text::unresolved(d) => {
                            "**unresolved (model-dependent)**".into()
                        }
                        None => "**unowned**".into(),
                    },
                    inline(d.control.as_str()),
                    inline(&evidence_label(d)),
                    inline(&status_label(d)),
                ]
            })
            .collect();
        if rows.is_empty() {
            out.push_str("No customer duties.\n");
        } else {
            out.push_str(&table(
                &[
                    "Area",
                    "Accountable",
                    "Shared with",
                    "Team",
                    "Control",
                    "Evidence",
                    "Status",
                ],
                &rows,
            ));
        }
        let mut proof: String = unattached_contradictions(app)
            .map(|c| format!("- {}\n", inline(&contradiction_line(c))))
            .collect();
        for d in &app.duties {
            let lines = proof_lines(d);
            if lines.is_empty() {
                continue;
            }
            proof.push_str(&format!("- {}\n", code(&duty_name(app, d))));
            for l in lines {
                proof.push_str(&format!("  - {}\n", inline(&l)));
            }
        }
        if !proof.is_empty() {
            out.push_str(&format!("\n**Proof**\n\n{proof}"));
        }
        if let Some(line) = inherited_line(app) {
            out.push_str(&format!("\nInherited from providers: {}.\n", inline(&line)));
        }
    }
    if !report.unlisted_services.is_empty() {
        out.push_str("\n## GenAI services in use that no application covers\n\n");
        for u in &report.unlisted_services {
            out.push_str(&format!("- {}\n", inline(&unlisted_line(u))));
        }
    }
    out
}

/// `demarc crosswalk --format markdown`.
pub fn crosswalk(view: &demarc_model::crosswalk::View<'_>) -> String {
    let rows: Vec<Vec<String>> = view
        .relations
        .iter()
        .map(|r| {
            vec![
                format!("{} ({})", escape(r.from_title), cell_code(r.from_area)),
                r.relation.as_str().to_string(),
                format!("{} ({})", escape(r.to_title), cell_code(r.to_area)),
                inline(r.rationale),
            ]
        })
        .collect();
    let mut out = format!(
        "# Crosswalk: {} → {}\n\n{} {} → {} {}; crosswalk {}\n\n",
        escape(&view.from.catalog().title),
        escape(&view.to.catalog().title),
        code(view.from.id()),
        escape(&view.from.catalog().version),
        code(view.to.id()),
        escape(&view.to.catalog().version),
        code(view.origin),
    );
    out.push_str(&table(
        &[
            &format!("Area of {}", code(view.from.id())),
            "Relation",
            &format!("Area of {}", code(view.to.id())),
            "Rationale",
        ],
        &rows,
    ));
    for (catalog, list) in [
        (view.from, &view.unrelated_from),
        (view.to, &view.unrelated_to),
    ] {
        out.push('\n');
        out.push_str(&inline(&super::text::unrelated_line(catalog.id(), list)));
        out.push('\n');
    }
    out
}

/// `demarc compare --format markdown`.
pub fn comparison(report: &demarc_model::compare::Comparison<'_>) -> String {
    use super::text::{cell_owner_label, comparison_summary};
    let ids: Vec<String> = report.catalogs.iter().map(|c| code(c.id())).collect();
    let mut out = format!(
        "# Where the catalogs disagree\n\nCatalogs: {}\n\n",
        ids.join(", ")
    );
    let cell = |c: &demarc_model::compare::CellRead<'_>| {
        format!(
            "{} {} under {}: **{}**: {} ({})",
            code(c.catalog.id()),
            cell_code(&c.area.id),
            cell_code(c.service_model),
            escape(&cell_owner_label(c)),
            escape(&c.cell.note),
            escape(&c.cell.source)
        )
    };
    for app in &report.applications {
        out.push_str(&format!(
            "## {} ({})\n\n",
            escape(&app.application.name),
            code(&app.application.id)
        ));
        if !app.disagreements.is_empty() {
            let rows: Vec<Vec<String>> = app
                .disagreements
                .iter()
                .map(|d| {
                    vec![
                        cell_code(&super::text::disagreement_components(d)),
                        d.kind.as_str().to_string(),
                        cell(&d.a),
                        d.relation.as_str().to_string(),
                        cell(&d.b),
                    ]
                })
                .collect();
            out.push_str(&table(
                &["Component", "About", "Cell A", "Relation", "Cell B"],
                &rows,
            ));
            out.push('\n');
        }
        if !app.unresolved.is_empty() {
            let rows: Vec<Vec<String>> = app
                .unresolved
                .iter()
                .map(|u| vec![cell_code(&u.component.id), cell(&u.cell)])
                .collect();
            out.push_str(&table(&["Component", "Unresolved cell"], &rows));
            out.push('\n');
        }
    }
    out.push_str(&inline(&comparison_summary(report)));
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_text_stays_text() {
        assert_eq!(
            inline("<script>alert(1)</script> [x](javascript:alert(1)) a|b"),
            "\\<script\\>alert(1)\\</script\\> \\[x\\](javascript:alert(1)) a\\|b"
        );
        assert_eq!(inline("two\nlines\u{1b}[2J"), "two lines\\u{1b}\\[2J");
        assert_eq!(inline("team `a|b` here"), "team `a\\|b` here");
        assert_eq!(inline("one ` alone"), "one \\` alone");
    }

    #[test]
    fn code_spans_survive_backticks() {
        assert_eq!(code("a``b"), "```a``b```");
        assert_eq!(code("`x"), "`` `x ``");
        assert_eq!(code("plain"), "`plain`");
    }

    #[test]
    fn tables_have_a_rule() {
        let t = table(&["x"], &[vec![inline("a|b")]]);
        assert_eq!(t, "| x |\n| --- |\n| a\\|b |\n");
    }
}
