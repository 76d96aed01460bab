//! `demarc crosswalk A B`: how the areas of two catalogs relate (equal, subset, superset,
//! intersects), from a crosswalk built in or given with `--crosswalk FILE`.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use demarc_model::CheckedCatalog;
use demarc_model::crosswalk::{CheckedCrosswalk, Crosswalk, View};
use serde::Serialize;

use super::common::{emit, emit_json, load_catalog, print_diagnostics, read_bounded};
use crate::Outcome;
use crate::render::{csv, html, markdown, table};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The catalog on the left of each relation: a builtin id or a catalog file.
    #[arg(value_name = "A")]
    pub from: String,
    /// The catalog on the right: a builtin id or a catalog file.
    #[arg(value_name = "B")]
    pub to: String,
    /// A crosswalk file (YAML or JSON) to use instead of the built-in one; repeatable, the
    /// file that joins A and B (in either direction) is used.
    #[arg(long = "crosswalk", value_name = "FILE")]
    pub crosswalks: Vec<PathBuf>,
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

/// A crosswalk file the user gave, parsed but not yet checked against its catalogs.
pub struct UserCrosswalk {
    pub path: PathBuf,
    pub bytes: Vec<u8>,
    pub crosswalk: Crosswalk,
}

/// Read the `--crosswalk` files (each checked once its two catalogs are known).
pub fn read_user_crosswalks(paths: &[PathBuf]) -> anyhow::Result<Vec<UserCrosswalk>> {
    paths
        .iter()
        .map(|path| {
            let bytes = read_bounded(path)?;
            let file = path.display().to_string();
            let parsed = demarc_model::parse::as_text(&file, &bytes)
                .and_then(|text| demarc_model::parse::from_text::<Crosswalk>(&file, text));
            match parsed {
                Ok(crosswalk) => Ok(UserCrosswalk {
                    path: path.clone(),
                    bytes,
                    crosswalk,
                }),
                Err(d) => {
                    print_diagnostics(&d);
                    bail!("{}", super::common::summary_line(&d))
                }
            }
        })
        .collect()
}

/// The crosswalk between `a` and `b`, read `a → b`: the user's file that joins them if any
/// (two such files must agree), else the built-in one; `None` when there is neither. A
/// user file that contradicts the built-in crosswalk is used, with a warning per pair.
pub fn crosswalk_between(
    a: &CheckedCatalog,
    b: &CheckedCatalog,
    user: &[UserCrosswalk],
) -> anyhow::Result<Option<CheckedCrosswalk>> {
    let mut chosen: Option<CheckedCrosswalk> = None;
    for u in user {
        let joins = (u.crosswalk.from == a.id() && u.crosswalk.to == b.id())
            || (u.crosswalk.from == b.id() && u.crosswalk.to == a.id());
        if !joins {
            continue;
        }
        let checked = CheckedCrosswalk::from_bytes(&u.path.display().to_string(), &u.bytes, a, b)
            .or_else(|d| {
            print_diagnostics(&d);
            bail!("{}", super::common::summary_line(&d))
        })?;
        if let Some(first) = &chosen {
            let conflicts = first.conflicts_with(&checked);
            if !conflicts.is_empty() {
                let list: Vec<String> = conflicts
                    .iter()
                    .map(|(x, y)| {
                        format!(
                            "`{}` {} `{}` in {}, but {} in {}",
                            x.from,
                            x.relation.as_str(),
                            x.to,
                            first.origin(),
                            y.relation.as_str(),
                            checked.origin()
                        )
                    })
                    .collect();
                bail!(
                    "two crosswalks between `{}` and `{}` disagree: {}",
                    a.id(),
                    b.id(),
                    list.join("; ")
                );
            }
            continue;
        }
        chosen = Some(checked);
    }
    let builtin = match CheckedCrosswalk::builtin_between(a, b) {
        Some(Ok(cw)) => Some(cw),
        // A user's catalog file under a built-in id may not fit the built-in crosswalk;
        // the user's crosswalk is used.
        Some(Err(_)) if chosen.is_some() => None,
        Some(Err(d)) => {
            print_diagnostics(&d);
            bail!("{}", super::common::summary_line(&d))
        }
        None => None,
    };
    match (chosen, builtin) {
        (Some(user), Some(builtin)) => {
            for (x, y) in user.conflicts_with(&builtin) {
                eprintln!(
                    "warning: {} relates `{}` {} `{}`; the built-in crosswalk says {}",
                    user.origin(),
                    x.from,
                    x.relation.as_str(),
                    x.to,
                    y.relation.as_str()
                );
            }
            Ok(Some(user))
        }
        (Some(user), None) => Ok(Some(user)),
        (None, builtin) => Ok(builtin),
    }
}

/// The JSON shape of `demarc crosswalk --format json` (stable; see docs/json.md#crosswalk).
#[derive(Serialize)]
pub struct CrosswalkJson<'a> {
    pub from: CatalogRef<'a>,
    pub to: CatalogRef<'a>,
    /// `<builtin:FROM--TO>` or the file's path.
    pub origin: &'a str,
    pub relations: Vec<RelationJson<'a>>,
    pub unrelated: Unrelated<'a>,
}

#[derive(Serialize)]
pub struct CatalogRef<'a> {
    pub id: &'a str,
    pub title: &'a str,
    pub version: &'a str,
}

impl<'a> CatalogRef<'a> {
    pub fn of(c: &'a CheckedCatalog) -> Self {
        Self {
            id: c.id(),
            title: &c.catalog().title,
            version: &c.catalog().version,
        }
    }
}

#[derive(Serialize)]
pub struct RelationJson<'a> {
    pub from_area: &'a str,
    pub from_title: &'a str,
    pub relation: &'static str,
    pub to_area: &'a str,
    pub to_title: &'a str,
    pub rationale: &'a str,
}

#[derive(Serialize)]
pub struct Unrelated<'a> {
    pub from: Vec<AreaRef<'a>>,
    pub to: Vec<AreaRef<'a>>,
}

#[derive(Serialize)]
pub struct AreaRef<'a> {
    pub id: &'a str,
    pub title: &'a str,
}

pub fn crosswalk_json<'a>(view: &'a View<'a>) -> CrosswalkJson<'a> {
    let areas = |list: &[(&'a str, &'a str)]| -> Vec<AreaRef<'a>> {
        list.iter()
            .map(|(id, title)| AreaRef { id, title })
            .collect()
    };
    CrosswalkJson {
        from: CatalogRef::of(view.from),
        to: CatalogRef::of(view.to),
        origin: view.origin,
        relations: view
            .relations
            .iter()
            .map(|r| RelationJson {
                from_area: r.from_area,
                from_title: r.from_title,
                relation: r.relation.as_str(),
                to_area: r.to_area,
                to_title: r.to_title,
                rationale: r.rationale,
            })
            .collect(),
        unrelated: Unrelated {
            from: areas(&view.unrelated_from),
            to: areas(&view.unrelated_to),
        },
    }
}

pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let from = load_catalog(&args.from)?;
    let to = load_catalog(&args.to)?;
    if from.id() == to.id() {
        bail!(
            "both catalogs are `{}`; a crosswalk joins two different catalogs",
            from.id()
        );
    }
    let user = read_user_crosswalks(&args.crosswalks)?;
    let Some(cw) = crosswalk_between(&from, &to, &user)? else {
        let pairs: Vec<String> = CheckedCrosswalk::builtin_pairs()
            .map(|(a, b)| format!("{a} ↔ {b}"))
            .collect();
        bail!(
            "no crosswalk between `{}` and `{}`; built in: {}; give one with `--crosswalk FILE` (docs/catalogs.md#crosswalks)",
            from.id(),
            to.id(),
            if pairs.is_empty() {
                "none".to_string()
            } else {
                pairs.join(", ")
            }
        );
    };
    let view = cw.view(&from, &to);
    let out = args.out.as_deref();
    match args.format {
        Format::Json => emit_json(args.out.as_ref(), &crosswalk_json(&view))?,
        Format::Table => emit_to(out, &table::crosswalk(&view, crate::ui::stdout_color()))?,
        Format::Markdown => emit_to(out, &markdown::crosswalk(&view))?,
        Format::Csv => emit_to(
            out,
            &csv::crosswalk(&view).context("cannot write the CSV crosswalk")?,
        )?,
        Format::Html => emit_to(
            out,
            &html::crosswalk_page(&view).context("cannot write the HTML crosswalk")?,
        )?,
    }
    Ok(Outcome::Success)
}

fn emit_to(out: Option<&Path>, content: &str) -> anyhow::Result<()> {
    emit(out.map(Path::to_path_buf).as_ref(), content)
}
