//! CSV for every command, written by the `csv` crate (RFC 4180 quoting), with spreadsheet
//! formula neutralisation: a text cell that begins with `=`, `+`, `-`, `@`, a tab or a
//! carriage return (or their full-width forms, which some spreadsheets also evaluate) gets
//! a leading `'`, so a user name or catalog field from a log or a user file is shown as text
//! instead of being run as a formula. Numbers demarc computes itself are written as they are.
//! The rule is documented in `docs/output-formats.md`.

use std::borrow::Cow;

use demarc_discover::report::Report;
use demarc_model::CheckedCatalog;
use demarc_model::assess::Assessment;

use super::text::{
    acceptance_line, contradiction_line, declared_line, model_name, observed_line, roles_text,
    unlisted_line,
};

/// One cell: text (neutralised) or a number demarc computed (written as it is).
#[derive(Debug, Clone)]
pub enum Field<'a> {
    Text(Cow<'a, str>),
    Number(String),
}

impl<'a> Field<'a> {
    pub fn text(s: impl Into<Cow<'a, str>>) -> Self {
        Self::Text(s.into())
    }

    pub fn num(n: impl std::fmt::Display) -> Self {
        Self::Number(n.to_string())
    }

    /// An optional count: empty when unknown.
    pub fn opt(n: Option<u64>) -> Self {
        Self::Number(n.map(|n| n.to_string()).unwrap_or_default())
    }

    pub fn empty() -> Self {
        Self::Number(String::new())
    }
}

impl<'a> From<&'a str> for Field<'a> {
    fn from(s: &'a str) -> Self {
        Self::text(s)
    }
}

impl<'a> From<&'a String> for Field<'a> {
    fn from(s: &'a String) -> Self {
        Self::text(s.as_str())
    }
}

impl From<String> for Field<'_> {
    fn from(s: String) -> Self {
        Self::text(s)
    }
}

/// Whether a spreadsheet could read this text as a formula (OWASP's list, and the
/// full-width `＝ ＋ － ＠`).
fn formula_like(s: &str) -> bool {
    s.starts_with([
        '=', '+', '-', '@', '\t', '\r', '\u{FF1D}', '\u{FF0B}', '\u{FF0D}', '\u{FF20}',
    ])
}

/// Text as a spreadsheet will show it, never run it: a leading `'` before a formula-like
/// start.
pub fn neutralise(s: &str) -> Cow<'_, str> {
    if formula_like(s) {
        Cow::Owned(format!("'{s}"))
    } else {
        Cow::Borrowed(s)
    }
}

/// A CSV document being written: a header, then rows.
pub struct Csv {
    writer: csv::Writer<Vec<u8>>,
}

impl Csv {
    pub fn new(header: &[&str]) -> Result<Self, csv::Error> {
        let mut csv = Self {
            writer: csv::WriterBuilder::new()
                .flexible(false)
                .terminator(csv::Terminator::Any(b'\n'))
                .from_writer(Vec::new()),
        };
        csv.writer.write_record(header)?;
        Ok(csv)
    }

    pub fn row<'a>(
        &mut self,
        cells: impl IntoIterator<Item = Field<'a>>,
    ) -> Result<(), csv::Error> {
        let cells: Vec<Cow<'_, str>> = cells
            .into_iter()
            .map(|c| match c {
                Field::Text(t) => match neutralise(&t) {
                    Cow::Owned(n) => Cow::Owned(n),
                    Cow::Borrowed(_) => t,
                },
                Field::Number(n) => Cow::Owned(n),
            })
            .collect();
        self.writer.write_record(cells.iter().map(|c| c.as_bytes()))
    }

    pub fn finish(self) -> Result<String, csv::Error> {
        let bytes = self
            .writer
            .into_inner()
            .map_err(|e| csv::Error::from(e.into_error()))?;
        // Every cell was a `str`, so the document is UTF-8.
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }
}

/// `demarc assess --format csv`: one row per duty, then one per inherited area
/// (`row` = `duty` or `inherited`), then one per unlisted GenAI service (`row` =
/// `unlisted-service`, the service id in `application`). Lists inside a field are separated
/// by ` | `.
pub fn assessment(report: &Assessment) -> Result<String, csv::Error> {
    let mut out = Csv::new(&[
        "application",
        "area",
        "owner",
        "accountable",
        "also_responsible",
        "owner_team",
        "control",
        "evidence",
        "evidence_expires",
        "covered",
        "gaps",
        "component",
        "shared_with",
        "control_statement",
        "declared_evidence",
        "observed_evidence",
        "contradictions",
        "risk_acceptance",
        "risk_accepted",
        "row",
    ])?;
    let join = |v: Vec<String>| v.join(" | ");
    for app in &report.applications {
        for d in &app.duties {
            out.row([
                Field::from(&app.id),
                Field::from(&d.area),
                Field::text(d.owner.to_string()),
                Field::text(d.accountable.label()),
                Field::text(join(d.also_responsible.iter().map(|p| p.label()).collect())),
                Field::text(d.owner_team.as_deref().unwrap_or_default()),
                Field::text(d.control.as_str()),
                Field::text(d.evidence.as_str()),
                Field::text(
                    d.evidence_expires
                        .map(|e| e.to_string())
                        .unwrap_or_default(),
                ),
                Field::num(d.covered),
                Field::text(d.gap_list(" ")),
                Field::from(&d.component),
                Field::text(d.shared_with().unwrap_or_default()),
                Field::text(d.control_statement.as_deref().unwrap_or_default()),
                Field::text(join(
                    d.declared_evidence.iter().map(declared_line).collect(),
                )),
                Field::text(join(
                    d.observed_evidence.iter().map(observed_line).collect(),
                )),
                Field::text(join(
                    d.contradictions.iter().map(contradiction_line).collect(),
                )),
                Field::text(
                    d.risk_acceptance
                        .as_ref()
                        .map(acceptance_line)
                        .unwrap_or_default(),
                ),
                Field::num(d.risk_accepted),
                Field::text("duty"),
            ])?;
        }
        for i in &app.inherited {
            let mut row = vec![Field::empty(); 20];
            row[0] = Field::from(&app.id);
            row[1] = Field::from(&i.area);
            row[2] = Field::text("provider");
            row[3] = Field::text(format!("provider:{}", i.provider));
            row[11] = Field::from(&i.component);
            row[19] = Field::text("inherited");
            out.row(row)?;
        }
    }
    for u in &report.unlisted_services {
        let mut row = vec![Field::empty(); 20];
        row[0] = Field::from(&u.service);
        row[10] = Field::text("unlisted-service");
        row[16] = Field::text(unlisted_line(u));
        row[19] = Field::text("unlisted-service");
        out.row(row)?;
    }
    out.finish()
}

/// `demarc matrix --format csv`: one row per area and service model.
pub fn matrix(catalog: &CheckedCatalog) -> Result<String, csv::Error> {
    let mut out = Csv::new(&[
        "area",
        "title",
        "layer",
        "service_model",
        "owner",
        "lead",
        "note",
        "source",
        "basis",
    ])?;
    for a in catalog.areas() {
        for m in catalog.service_models() {
            if let Some(c) = catalog.cell(a, &m.id) {
                out.row([
                    Field::from(&a.id),
                    Field::from(&a.title),
                    Field::from(&a.layer),
                    Field::from(&m.id),
                    Field::text(c.owner.as_str()),
                    Field::text(c.lead.map(|l| l.as_str()).unwrap_or_default()),
                    Field::from(&c.note),
                    Field::from(&c.source),
                    Field::text(c.basis.as_str()),
                ])?;
            }
        }
    }
    out.finish()
}

/// `demarc discover --format csv`: one row per finding; unknown byte counts are empty cells.
pub fn discovery(report: &Report) -> Result<String, csv::Error> {
    let mut out = Csv::new(&[
        "id",
        "name",
        "vendor",
        "category",
        "service_model",
        "status",
        "requests",
        "users",
        "bytes_sent",
        "bytes_received",
        "first_seen",
        "last_seen",
        "large_uploads",
        "risk_score",
        "top_user",
        "ips",
        "devices",
        "tenants",
        "host_kinds",
        "blocked",
        "allowed",
        "untimed",
        "estate_applications",
    ])?;
    for s in &report.services {
        out.row([
            Field::from(&s.id),
            Field::from(&s.name),
            Field::from(&s.vendor),
            Field::from(&s.category),
            Field::text(model_name(s.service_model)),
            Field::text(s.status.as_str()),
            Field::num(s.requests),
            Field::num(s.users),
            Field::opt(s.bytes_sent),
            Field::opt(s.bytes_received),
            Field::text(s.first_seen.as_deref().unwrap_or_default()),
            Field::text(s.last_seen.as_deref().unwrap_or_default()),
            Field::num(s.large_uploads),
            Field::num(s.risk.score),
            Field::text(
                s.top_users
                    .first()
                    .map(|u| u.user.as_str())
                    .unwrap_or_default(),
            ),
            Field::num(s.identities.ip),
            Field::num(s.identities.device),
            Field::text(s.tenants.join(" ")),
            Field::text(roles_text(&s.host_kinds)),
            Field::num(s.blocked),
            Field::num(s.allowed),
            Field::num(s.untimed),
            Field::text(s.estate_applications.join(" ")),
        ])?;
    }
    out.finish()
}

/// `demarc crosswalk --format csv`: one row per relation, then one per unrelated area (its
/// relation `none`, the other side empty).
pub fn crosswalk(view: &demarc_model::crosswalk::View<'_>) -> Result<String, csv::Error> {
    let mut csv = Csv::new(&[
        "from_catalog",
        "from_area",
        "from_title",
        "relation",
        "to_catalog",
        "to_area",
        "to_title",
        "rationale",
    ])?;
    let (from, to) = (view.from.id(), view.to.id());
    for r in &view.relations {
        csv.row([
            from.into(),
            r.from_area.into(),
            r.from_title.into(),
            r.relation.as_str().into(),
            to.into(),
            r.to_area.into(),
            r.to_title.into(),
            r.rationale.into(),
        ])?;
    }
    for (id, title) in &view.unrelated_from {
        csv.row([
            from.into(),
            (*id).into(),
            (*title).into(),
            "none".into(),
            to.into(),
            Field::empty(),
            Field::empty(),
            Field::empty(),
        ])?;
    }
    for (id, title) in &view.unrelated_to {
        csv.row([
            from.into(),
            Field::empty(),
            Field::empty(),
            "none".into(),
            to.into(),
            (*id).into(),
            (*title).into(),
            Field::empty(),
        ])?;
    }
    csv.finish()
}

/// `demarc compare --format csv`: one row per disagreement and per unresolved cell (kind
/// `unresolved`, the b columns empty).
pub fn comparison(report: &demarc_model::compare::Comparison<'_>) -> Result<String, csv::Error> {
    use demarc_model::compare::CellRead;
    let side = [
        "component",
        "catalog",
        "area",
        "service_model",
        "owner",
        "lead",
        "basis",
        "note",
        "source",
    ];
    let mut header = vec!["application", "kind", "relation"];
    let a: Vec<String> = side.iter().map(|s| format!("a_{s}")).collect();
    let b: Vec<String> = side.iter().map(|s| format!("b_{s}")).collect();
    header.extend(a.iter().map(String::as_str));
    header.extend(b.iter().map(String::as_str));
    let mut csv = Csv::new(&header)?;
    let cells = |c: &CellRead<'_>| -> Vec<Field<'static>> {
        vec![
            Field::text(c.component.id.clone()),
            Field::text(c.catalog.id().to_owned()),
            Field::text(c.area.id.clone()),
            Field::text(c.service_model.to_owned()),
            Field::text(c.owner.as_str()),
            Field::text(c.lead.map_or("", |l| l.as_str())),
            Field::text(c.cell.basis.as_str()),
            Field::text(c.cell.note.clone()),
            Field::text(c.cell.source.clone()),
        ]
    };
    for app in &report.applications {
        for d in &app.disagreements {
            let mut row: Vec<Field<'_>> = vec![
                (&app.application.id).into(),
                d.kind.as_str().into(),
                d.relation.as_str().into(),
            ];
            row.extend(cells(&d.a));
            row.extend(cells(&d.b));
            csv.row(row)?;
        }
        for u in &app.unresolved {
            let mut row: Vec<Field<'_>> = vec![
                (&app.application.id).into(),
                "unresolved".into(),
                Field::empty(),
            ];
            row.extend(cells(&u.cell));
            row.extend((0..side.len()).map(|_| Field::empty()));
            csv.row(row)?;
        }
    }
    csv.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_row(cells: Vec<Field<'_>>) -> String {
        let mut csv = Csv::new(&["a", "b", "c"]).unwrap();
        csv.row(cells).unwrap();
        csv.finish().unwrap()
    }

    #[test]
    fn quotes_only_when_needed() {
        assert_eq!(
            one_row(vec!["a".into(), "b,c".into(), "say \"hi\"".into()]),
            "a,b,c\na,\"b,c\",\"say \"\"hi\"\"\"\n"
        );
    }

    #[test]
    fn formula_cells_are_neutralised() {
        for (cell, want) in [
            (
                "=HYPERLINK(\"http://x\")",
                "\"'=HYPERLINK(\"\"http://x\"\")\"",
            ),
            ("+1", "'+1"),
            ("-2+3", "'-2+3"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tcmd", "'\tcmd"),
            ("\r=1", "\"'\r=1\""),
            ("\u{FF1D}1+1", "'\u{FF1D}1+1"),
            ("alice", "alice"),
            ("a=b", "a=b"),
        ] {
            let out = one_row(vec![cell.into(), Field::num(-5), Field::empty()]);
            assert_eq!(out, format!("a,b,c\n{want},-5,\n"), "cell {cell:?}");
        }
    }

    #[test]
    fn line_breaks_stay_inside_a_quoted_cell() {
        let out = one_row(vec!["x\ny".into(), "z".into(), "".into()]);
        assert_eq!(out, "a,b,c\n\"x\ny\",z,\n");
    }
}
