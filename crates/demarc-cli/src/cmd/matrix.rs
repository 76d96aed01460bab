//! `demarc matrix`: the responsibility matrix of a catalog, areas by service models.

use std::path::PathBuf;

use anyhow::Context;

use demarc_model::CheckedCatalog;
use demarc_model::catalog::{Area, Layer, Mappings, ServiceModel};
use serde::Serialize;

use super::common::{CatalogArg, emit};
use crate::Outcome;
use crate::render::table::{Cell, Style, Table, clean_text};
use crate::render::{BASIS_LEGEND, cell_label, csv, html, markdown};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub catalog: CatalogArg,
    /// Output format; `table` is colour-coded on a terminal (NO_COLOR respected).
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Write to this file instead of stdout.
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

/// The JSON shape of `demarc matrix --format json` (stable; see docs/json.md#matrix).
#[derive(Serialize)]
pub struct MatrixJson<'a> {
    pub catalog: CatalogInfo<'a>,
    pub service_models: &'a [ServiceModel],
    pub layers: &'a [Layer],
    pub areas: Vec<AreaJson<'a>>,
}

#[derive(Serialize)]
pub struct CatalogInfo<'a> {
    pub id: &'a str,
    pub title: &'a str,
    pub version: &'a str,
    pub source: &'a demarc_model::catalog::Source,
}

#[derive(Serialize)]
pub struct AreaJson<'a> {
    pub id: &'a str,
    pub title: &'a str,
    pub description: &'a str,
    pub layer: &'a str,
    pub mappings: &'a Mappings,
    pub cells: &'a std::collections::BTreeMap<String, demarc_model::catalog::Cell>,
}

pub fn matrix_json(catalog: &CheckedCatalog) -> MatrixJson<'_> {
    let c = catalog.catalog();
    MatrixJson {
        catalog: CatalogInfo {
            id: &c.id,
            title: &c.title,
            version: &c.version,
            source: &c.source,
        },
        service_models: &c.service_models,
        layers: &c.layers,
        areas: c
            .areas
            .iter()
            .map(|a: &Area| AreaJson {
                id: &a.id,
                title: &a.title,
                description: &a.description,
                layer: &a.layer,
                mappings: &a.mappings,
                cells: &a.cells,
            })
            .collect(),
    }
}

pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let catalog = args.catalog.load()?;
    let models: Vec<&str> = catalog
        .service_models()
        .iter()
        .map(|s| s.id.as_str())
        .collect();
    let out = match args.format {
        Format::Json => format!(
            "{}\n",
            serde_json::to_string_pretty(&matrix_json(&catalog))?
        ),
        Format::Html => html::matrix_page(&catalog).context("cannot write the HTML matrix")?,
        Format::Table => {
            let mut headers = vec!["area", "layer"];
            headers.extend(models.iter().copied());
            let mut t = Table::new(&headers);
            for area in catalog.areas() {
                let mut row: Vec<Cell> = vec![
                    Cell::styled(area.id.clone(), Style::Bold),
                    area.layer.clone().into(),
                ];
                for m in &models {
                    row.push(match catalog.cell(area, m) {
                        Some(c) => Cell::styled(cell_label(c), Style::for_owner(c.owner.as_str())),
                        None => "?".into(),
                    });
                }
                t.row(row);
            }
            let source = &catalog.catalog().source;
            let head = format!(
                "{} ({} {})\nsource: {}, {}",
                catalog.catalog().title,
                catalog.id(),
                catalog.catalog().version,
                source.title,
                source.date,
            );
            format!(
                "{}\n\n{}\n{BASIS_LEGEND}\n",
                clean_text(&head),
                t.render(crate::ui::stdout_color()).trim_end()
            )
        }
        Format::Markdown => markdown::matrix(&catalog),
        Format::Csv => csv::matrix(&catalog).context("cannot write the CSV matrix")?,
    };
    emit(args.out.as_ref(), &out)?;
    Ok(Outcome::Success)
}
