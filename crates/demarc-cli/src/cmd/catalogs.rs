//! `demarc catalogs`: the responsibility catalogs built into this binary.

use demarc_model::CheckedCatalog;
use serde::Serialize;

use crate::Outcome;
use crate::render::table::{Style, Table};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum Format {
    Table,
    Json,
}

#[derive(Serialize)]
struct Entry<'a> {
    id: &'a str,
    title: &'a str,
    version: &'a str,
    service_models: Vec<&'a str>,
    areas: usize,
    source: &'a demarc_model::catalog::Source,
    /// The source's licence in a few words: the first clause of `source.licence`.
    licence_note: &'a str,
    default: bool,
}

/// The first clause of a licence statement (up to the first `(`, `,` or `;`).
fn licence_note(licence: &str) -> &str {
    let end = licence.find(['(', ',', ';']).unwrap_or(licence.len());
    licence[..end].trim()
}

pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let mut catalogs = Vec::new();
    for id in CheckedCatalog::builtin_ids() {
        if let Some(c) = CheckedCatalog::builtin(id) {
            catalogs
                .push(c.map_err(|d| anyhow::anyhow!("builtin catalog `{id}` is invalid:\n{d}"))?);
        }
    }
    let entries: Vec<Entry<'_>> = catalogs
        .iter()
        .map(|c| Entry {
            id: c.id(),
            title: &c.catalog().title,
            version: &c.catalog().version,
            service_models: c.service_models().iter().map(|s| s.id.as_str()).collect(),
            areas: c.areas().len(),
            source: &c.catalog().source,
            licence_note: licence_note(&c.catalog().source.licence),
            default: c.id() == demarc_model::catalog::DEFAULT_CATALOG,
        })
        .collect();
    let out = match args.format {
        Format::Json => format!("{}\n", serde_json::to_string_pretty(&entries)?),
        Format::Table => {
            let mut t = Table::new(&[
                "id",
                "version",
                "areas",
                "service models",
                "title",
                "source",
                "licence",
            ]);
            for e in &entries {
                let id = if e.default {
                    format!("{} (default)", e.id)
                } else {
                    e.id.to_string()
                };
                t.row(vec![
                    crate::render::table::Cell::styled(id, Style::Bold),
                    e.version.into(),
                    e.areas.to_string().into(),
                    e.service_models.join(", ").into(),
                    e.title.into(),
                    format!("{} ({})", e.source.url, e.source.date).into(),
                    e.licence_note.into(),
                ]);
            }
            t.render(crate::ui::stdout_color())
        }
    };
    super::common::emit(None, &out)?;
    Ok(Outcome::Success)
}
