//! The terminal format: aligned plain-text tables with optional ANSI colour per cell, and
//! the `table` output of `assess` and `discover`. Text from estates, catalogs and logs never
//! reaches the terminal raw: control characters (an escape sequence in a user name) and
//! bidirectional overrides are shown as visible escapes (`\u{1b}`), see [`clean`].

use std::borrow::Cow;
use std::fmt::Write;

use demarc_discover::report::{Report, Status};
use demarc_model::assess::{Assessment, EvidenceStatus};

use super::count;
use super::text::{
    app_heading, contradiction_line, duty_name, evidence_label, human_bytes, identities_text,
    inherited_line, proof_lines, shared_with, status_label, summary_sentence,
    unattached_contradictions, unlisted_line,
};

/// Whether a character could move the cursor, recolour or reorder what a terminal shows:
/// C0 and C1 controls, DEL, and the bidirectional marks and overrides.
fn unsafe_on_terminal(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Text for one terminal line: a line break (a YAML block scalar) as a space, every other
/// unsafe character as its visible escape (`\r`, `\t`, `\u{1b}`).
pub fn clean(s: &str) -> Cow<'_, str> {
    if !s.chars().any(unsafe_on_terminal) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c == '\n' {
            out.push(' ');
        } else if unsafe_on_terminal(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Plain text of several lines (no colour in it): like [`clean`], keeping the line breaks.
pub fn clean_text(s: &str) -> String {
    s.split('\n').map(clean).collect::<Vec<_>>().join("\n")
}

/// A terminal style for one cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Plain,
    Bold,
    Dim,
    Red,
    Yellow,
    Green,
    Blue,
    Magenta,
}

impl Style {
    fn code(self) -> &'static str {
        match self {
            Self::Plain => "",
            Self::Bold => "1",
            Self::Dim => "2",
            Self::Red => "31",
            Self::Yellow => "33",
            Self::Green => "32",
            Self::Blue => "34",
            Self::Magenta => "35",
        }
    }

    /// The colour demarc uses for a cell owner.
    pub fn for_owner(owner: &str) -> Self {
        match owner {
            "provider" => Self::Blue,
            "customer" => Self::Yellow,
            "shared" => Self::Magenta,
            _ => Self::Dim,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Cell {
    pub text: String,
    pub style: Style,
}

impl Cell {
    pub fn styled(text: impl Into<String>, style: Style) -> Self {
        Self {
            text: text.into(),
            style,
        }
    }
}

impl<T: Into<String>> From<T> for Cell {
    fn from(text: T) -> Self {
        Self {
            text: text.into(),
            style: Style::Plain,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<Cell>>,
}

impl Table {
    pub fn new(headers: &[&str]) -> Self {
        Self {
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<Cell>) {
        self.rows.push(cells);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Columns separated by two spaces, the header underlined; colour only when asked.
    pub fn render(&self, color: bool) -> String {
        let columns = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| width(h)).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate().take(columns) {
                widths[i] = widths[i].max(width(&clean(&cell.text)));
            }
        }
        let mut out = String::new();
        let header: Vec<Cell> = self
            .headers
            .iter()
            .map(|h| Cell::styled(h.clone(), Style::Bold))
            .collect();
        push_line(&mut out, &header, &widths, color);
        let rule: Vec<Cell> = widths
            .iter()
            .map(|w| Cell::styled("-".repeat(*w), Style::Dim))
            .collect();
        push_line(&mut out, &rule, &widths, color);
        for row in &self.rows {
            push_line(&mut out, row, &widths, color);
        }
        out
    }
}

fn push_line(out: &mut String, cells: &[Cell], widths: &[usize], color: bool) {
    let mut line = String::new();
    for (i, w) in widths.iter().enumerate() {
        let (text, style) = cells.get(i).map_or((Cow::Borrowed(""), Style::Plain), |c| {
            (clean(&c.text), c.style)
        });
        let pad = w.saturating_sub(width(&text));
        let last = i + 1 == widths.len();
        if color && style != Style::Plain {
            line.push_str(&format!("\x1b[{}m{text}\x1b[0m", style.code()));
        } else {
            line.push_str(&text);
        }
        if !last {
            line.push_str(&" ".repeat(pad + 2));
        }
    }
    out.push_str(line.trim_end());
    out.push('\n');
}

/// Display width; our cells are ASCII or simple Unicode, so chars are a fair measure.
fn width(s: &str) -> usize {
    s.chars().count()
}

fn evidence_style(e: EvidenceStatus) -> Style {
    match e {
        EvidenceStatus::Current => Style::Green,
        EvidenceStatus::Expiring => Style::Yellow,
        EvidenceStatus::Expired | EvidenceStatus::Missing => Style::Red,
        EvidenceStatus::NotNeeded => Style::Dim,
    }
}

/// `demarc assess` (the default format).
pub fn assessment(report: &Assessment, color: bool) -> String {
    let mut out = format!(
        "{} — assessed {} against {} {}",
        clean(&report.organisation),
        report.date,
        clean(&report.catalog.id),
        clean(&report.catalog.version)
    );
    if let Some(since) = report.observed_since {
        out.push_str(&format!(", observations since {since}"));
    }
    out.push('\n');
    for app in &report.applications {
        out.push_str(&format!("\n{}\n", clean(&app_heading(app))));
        let mut t = Table::new(&[
            "area",
            "accountable",
            "shared with",
            "team",
            "control",
            "evidence",
            "status",
        ]);
        for d in &app.duties {
            t.row(vec![
                duty_name(app, d).into(),
                d.accountable.label().into(),
                shared_with(d).into(),
                Cell::styled(
                    match d.owner_team.clone() {
                        Some(t) => t,
                        None if crate::render::text::unresolved(d) => "(model-dependent)".into(),
                        None => "(unowned)".into(),
                    },
                    if d.owner_team.is_some() {
                        Style::Plain
                    } else {
                        Style::Red
                    },
                ),
                d.control.as_str().into(),
                Cell::styled(evidence_label(d), evidence_style(d.evidence)),
                if d.covered {
                    Cell::styled("covered", Style::Green)
                } else if d.risk_accepted {
                    Cell::styled(status_label(d), Style::Yellow)
                } else {
                    Cell::styled(status_label(d), Style::Red)
                },
            ]);
        }
        if t.is_empty() {
            out.push_str("  no customer duties\n");
        } else {
            out.push_str(&t.render(color));
        }
        for c in unattached_contradictions(app) {
            out.push_str(&format!("  {}\n", clean(&contradiction_line(c))));
        }
        for d in &app.duties {
            let lines = proof_lines(d);
            if lines.is_empty() {
                continue;
            }
            out.push_str(&format!("  {}:\n", clean(&duty_name(app, d))));
            for l in lines {
                out.push_str(&format!("    - {}\n", clean(&l)));
            }
        }
        if let Some(line) = inherited_line(app) {
            out.push_str(&format!("  inherited from providers: {}\n", clean(&line)));
        }
    }
    if !report.unlisted_services.is_empty() {
        out.push_str("\nGenAI services in use that no application covers (usage governance):\n");
        for u in &report.unlisted_services {
            out.push_str(&format!("  - {}\n", clean(&unlisted_line(u))));
        }
    }
    out.push_str(&format!(
        "\nsummary: {}\n",
        summary_sentence(&report.summary, report.expiring_within_days)
    ));
    out
}

/// `demarc discover` (the default format): the summary first, then one line per finding.
pub fn discovery(report: &Report, color: bool) -> String {
    let mut out = String::new();
    if report.services.is_empty() {
        out.push_str("no GenAI service found in the logs\n");
    } else {
        // Summary first: findings by status, high risk, new since the last run.
        let by: Vec<String> = report
            .summary
            .by_status
            .iter()
            .map(|(s, n)| format!("{n} {s}"))
            .collect();
        let _ = writeln!(
            out,
            "{}: {}; {} high risk",
            count(report.services.len(), "finding"),
            by.join(", "),
            report.summary.high_risk
        );
        if let Some(new) = &report.summary.new_since_last_run {
            let _ = writeln!(
                out,
                "new since the last recorded run: {}",
                if new.is_empty() {
                    "none".to_owned()
                } else {
                    clean(&new.join(", ")).into_owned()
                }
            );
        }
        out.push('\n');
        let _ = writeln!(
            out,
            "{:<13} {:<28} {:>9} {:<24} {:>10} {:>10} {:>5}  TOP USER",
            "STATUS", "SERVICE", "REQUESTS", "WHO", "SENT", "RECEIVED", "RISK"
        );
        for s in &report.services {
            let status = s.status.as_str();
            let painted = match (color, s.status) {
                (true, Status::Shadow | Status::OtherTenant | Status::Unsanctioned) => {
                    format!("\x1b[1;31m{status:<13}\x1b[0m")
                }
                (true, Status::Discovered | Status::Tolerated) => {
                    format!("\x1b[33m{status:<13}\x1b[0m")
                }
                (true, Status::Sanctioned) => format!("\x1b[32m{status:<13}\x1b[0m"),
                (false, _) => format!("{status:<13}"),
            };
            let top = s
                .top_users
                .first()
                .map(|u| format!("{} ({})", clean(&u.user), u.requests))
                .unwrap_or_default();
            let mut name = clean(&s.name).into_owned();
            if name.chars().count() > 28 {
                name = name.chars().take(27).collect::<String>() + "…";
            }
            let _ = writeln!(
                out,
                "{painted} {name:<28} {:>9} {:<24} {:>10} {:>10} {:>5}  {top}",
                s.requests,
                identities_text(&s.identities),
                human_bytes(s.bytes_sent),
                human_bytes(s.bytes_received),
                s.risk.score
            );
            if !s.tenants.is_empty() {
                let _ = writeln!(out, "{:13} tenants: {}", "", clean(&s.tenants.join(", ")));
            }
            if s.blocked > 0 {
                let _ = writeln!(
                    out,
                    "{:13} the proxy blocked {} and allowed {}",
                    "", s.blocked, s.allowed
                );
            }
        }
    }
    if !report.incidental.is_empty() {
        let names: Vec<String> = report
            .incidental
            .iter()
            .map(|i| format!("{} ({})", i.id, i.requests))
            .collect();
        let _ = writeln!(
            out,
            "\nseen only on cdn/telemetry/widget/sdk hosts (not counted as use): {}",
            clean(&names.join(", "))
        );
    }
    out
}

/// `demarc crosswalk --format table`.
pub fn crosswalk(view: &demarc_model::crosswalk::View<'_>, color: bool) -> String {
    let mut t = Table::new(&["from area", "relation", "to area", "rationale"]);
    for r in &view.relations {
        t.row(vec![
            Cell::styled(r.from_area, Style::Bold),
            Cell::styled(r.relation.as_str(), relation_style(r.relation)),
            Cell::styled(r.to_area, Style::Bold),
            r.rationale.into(),
        ]);
    }
    let mut out = clean_text(&format!(
        "{} ({}) -> {} ({})\ncrosswalk: {}",
        view.from.catalog().title,
        view.from.id(),
        view.to.catalog().title,
        view.to.id(),
        view.origin
    ));
    out.push_str("\n\n");
    out.push_str(&t.render(color));
    for (catalog, list) in [
        (view.from, &view.unrelated_from),
        (view.to, &view.unrelated_to),
    ] {
        out.push('\n');
        out.push_str(&clean_text(&super::text::unrelated_line(
            catalog.id(),
            list,
        )));
        out.push('\n');
    }
    out
}

fn relation_style(r: demarc_model::crosswalk::RelationKind) -> Style {
    use demarc_model::crosswalk::RelationKind;
    match r {
        RelationKind::Equal => Style::Green,
        RelationKind::Subset | RelationKind::Superset => Style::Blue,
        RelationKind::Intersects => Style::Yellow,
    }
}

/// `demarc compare --format table`: per application, the disagreements, then the
/// unresolved cells.
pub fn comparison(report: &demarc_model::compare::Comparison<'_>, color: bool) -> String {
    use super::text::{cell_name, cell_owner_label, comparison_summary};
    let mut out = String::new();
    for app in &report.applications {
        out.push_str(&clean_text(&format!(
            "{} ({})",
            app.application.id, app.application.name
        )));
        out.push('\n');
        if !app.disagreements.is_empty() {
            let mut t = Table::new(&[
                "component",
                "about",
                "cell a",
                "owner a",
                "relation",
                "cell b",
                "owner b",
                "sources",
            ]);
            for d in &app.disagreements {
                t.row(vec![
                    super::text::disagreement_components(d).into(),
                    Cell::styled(
                        d.kind.as_str(),
                        if d.kind == demarc_model::compare::DisagreementKind::Accountable {
                            Style::Red
                        } else {
                            Style::Yellow
                        },
                    ),
                    cell_name(&d.a).into(),
                    Cell::styled(cell_owner_label(&d.a), Style::for_owner(d.a.owner.as_str())),
                    d.relation.as_str().into(),
                    cell_name(&d.b).into(),
                    Cell::styled(cell_owner_label(&d.b), Style::for_owner(d.b.owner.as_str())),
                    format!("{} | {}", d.a.cell.source, d.b.cell.source).into(),
                ]);
            }
            out.push_str(&t.render(color));
        }
        if !app.unresolved.is_empty() {
            let mut t = Table::new(&["component", "unresolved cell", "source"]);
            for u in &app.unresolved {
                t.row(vec![
                    u.component.id.clone().into(),
                    cell_name(&u.cell).into(),
                    u.cell.cell.source.clone().into(),
                ]);
            }
            out.push_str(&t.render(color));
        }
        out.push('\n');
    }
    out.push_str(&clean_text(&comparison_summary(report)));
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_columns_without_colour() {
        let mut t = Table::new(&["area", "owner"]);
        t.row(vec![
            "grounding".into(),
            Cell::styled("shared", Style::Magenta),
        ]);
        let s = t.render(false);
        assert_eq!(
            s,
            "area       owner\n---------  ------\ngrounding  shared\n"
        );
        assert!(t.render(true).contains("\x1b[35mshared\x1b[0m"));
    }
}
