//! `demarc compare ESTATE --catalog A --catalog B ...`: the estate once, under several
//! catalogs, and where they disagree about who is accountable or who owns a duty (through
//! the crosswalk between each pair); model-dependent cells the estate has not resolved.

use std::path::PathBuf;

use anyhow::{Context, bail};
use demarc_model::CheckedCatalog;
use demarc_model::compare::{CellRead, Comparison, ComparisonSummary, compare};
use serde::Serialize;

use super::common::{check_estate, emit, emit_json, load_catalog, read_bounded};
use super::crosswalk::{CatalogRef, crosswalk_between, read_user_crosswalks};
use crate::Outcome;
use crate::render::{csv, html, markdown, table};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The estate file (YAML or JSON).
    pub estate: PathBuf,
    /// A catalog to compare: a builtin id or a catalog file; repeat for each (at least two).
    /// The estate is checked against the first. Default: every built-in catalog, the seed
    /// first.
    #[arg(long = "catalog", value_name = "ID|PATH")]
    pub catalogs: Vec<String>,
    /// A crosswalk file to use for the pair of catalogs it joins instead of the built-in one.
    #[arg(long = "crosswalk", value_name = "FILE")]
    pub crosswalks: Vec<PathBuf>,
    /// Output format. `json` is a stable interface (docs/json.md#compare).
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Write the report to this file instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum Format {
    Table,
    Markdown,
    Csv,
    Json,
    Html,
}

pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let specs: Vec<String> = if args.catalogs.is_empty() {
        CheckedCatalog::builtin_ids().map(str::to_owned).collect()
    } else {
        args.catalogs.clone()
    };
    let catalogs = specs
        .iter()
        .map(|s| load_catalog(s))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if catalogs.len() < 2 {
        bail!("compare needs at least two catalogs (`--catalog A --catalog B`)");
    }
    for (i, c) in catalogs.iter().enumerate() {
        if catalogs[..i].iter().any(|d| d.id() == c.id()) {
            bail!("catalog `{}` is named twice", c.id());
        }
    }
    let user = read_user_crosswalks(&args.crosswalks)?;
    // Pick every pair's crosswalk before reading the estate, so that a bad file stops early.
    let mut chosen = Vec::new();
    for (i, a) in catalogs.iter().enumerate() {
        for b in &catalogs[i + 1..] {
            chosen.push((
                (a.id().to_owned(), b.id().to_owned()),
                crosswalk_between(a, b, &user)?,
            ));
        }
    }
    // The estate is parsed and checked once, against the first catalog.
    let bytes = read_bounded(&args.estate)?;
    let estate = check_estate(&args.estate, &bytes, &catalogs[0])?;
    drop(bytes);
    let report = compare(estate.applications(), &catalogs, |a, b| {
        chosen
            .iter()
            .find(|((x, y), _)| x == a.id() && y == b.id())
            .and_then(|(_, cw)| cw.clone())
    });
    let estate_name = args.estate.display().to_string();
    match args.format {
        Format::Json => emit_json(args.out.as_ref(), &compare_json(&report, &estate_name))?,
        Format::Table => emit(
            args.out.as_ref(),
            &table::comparison(&report, crate::ui::stdout_color()),
        )?,
        Format::Markdown => emit(args.out.as_ref(), &markdown::comparison(&report))?,
        Format::Csv => emit(
            args.out.as_ref(),
            &csv::comparison(&report).context("cannot write the CSV comparison")?,
        )?,
        Format::Html => emit(
            args.out.as_ref(),
            &html::comparison_page(&report, &estate_name)
                .context("cannot write the HTML comparison")?,
        )?,
    }
    Ok(Outcome::Success)
}

/// The JSON shape of `demarc compare --format json` (stable; see docs/json.md#compare).
#[derive(Serialize)]
pub struct CompareJson<'a> {
    pub estate: &'a str,
    pub catalogs: Vec<CatalogRef<'a>>,
    pub pairs: Vec<PairJson<'a>>,
    pub not_compared: Vec<PairJson<'a>>,
    pub summary: &'a ComparisonSummary,
    pub applications: Vec<AppJson<'a>>,
}

#[derive(Serialize)]
pub struct PairJson<'a> {
    pub a: &'a str,
    pub b: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crosswalk: Option<&'a str>,
}

#[derive(Serialize)]
pub struct AppJson<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub disagreements: Vec<DisagreementJson<'a>>,
    pub unresolved: Vec<UnresolvedJson<'a>>,
}

#[derive(Serialize)]
pub struct DisagreementJson<'a> {
    pub component: &'a str,
    pub kind: &'static str,
    pub relation: &'static str,
    pub a: CellJson<'a>,
    pub b: CellJson<'a>,
}

#[derive(Serialize)]
pub struct UnresolvedJson<'a> {
    pub component: &'a str,
    pub cell: CellJson<'a>,
}

#[derive(Serialize)]
pub struct CellJson<'a> {
    pub component: &'a str,
    pub catalog: &'a str,
    pub area: &'a str,
    pub area_title: &'a str,
    pub service_model: &'a str,
    pub owner: &'static str,
    pub lead: Option<&'static str>,
    pub accountable: Option<&'static str>,
    pub owner_from_estate: bool,
    pub basis: &'static str,
    pub note: &'a str,
    pub source: &'a str,
}

pub fn cell_json<'a>(c: &CellRead<'a>) -> CellJson<'a> {
    CellJson {
        component: &c.component.id,
        catalog: c.catalog.id(),
        area: &c.area.id,
        area_title: &c.area.title,
        service_model: c.service_model,
        owner: c.owner.as_str(),
        lead: c.lead.map(|l| l.as_str()),
        accountable: c.accountable_side().map(|s| s.as_str()),
        owner_from_estate: c.owner_from_estate,
        basis: c.cell.basis.as_str(),
        note: &c.cell.note,
        source: &c.cell.source,
    }
}

pub fn compare_json<'a>(report: &'a Comparison<'a>, estate: &'a str) -> CompareJson<'a> {
    CompareJson {
        estate,
        catalogs: report.catalogs.iter().map(CatalogRef::of).collect(),
        pairs: report
            .pairs
            .iter()
            .map(|p| PairJson {
                a: p.a.id(),
                b: p.b.id(),
                crosswalk: Some(p.crosswalk.origin()),
            })
            .collect(),
        not_compared: report
            .not_compared
            .iter()
            .map(|(a, b)| PairJson {
                a,
                b,
                crosswalk: None,
            })
            .collect(),
        summary: &report.summary,
        applications: report
            .applications
            .iter()
            .map(|app| AppJson {
                id: &app.application.id,
                name: &app.application.name,
                disagreements: app
                    .disagreements
                    .iter()
                    .map(|d| DisagreementJson {
                        component: &d.component.id,
                        kind: d.kind.as_str(),
                        relation: d.relation.as_str(),
                        a: cell_json(&d.a),
                        b: cell_json(&d.b),
                    })
                    .collect(),
                unresolved: app
                    .unresolved
                    .iter()
                    .map(|u| UnresolvedJson {
                        component: &u.component.id,
                        cell: cell_json(&u.cell),
                    })
                    .collect(),
            })
            .collect(),
    }
}
