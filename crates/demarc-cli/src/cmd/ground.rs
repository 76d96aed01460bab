//! `demarc ground index|query`: build a grounding index from approved sources and try it.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use demarc_ground::{GroundingIndex, IndexBuilder, Limits, Passage, Source, format_context};

use crate::Outcome;
use crate::cmd::common;
use crate::render::table::{Cell, Style, Table};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand, Debug)]
enum Command {
    /// Index approved grounding sources (folders of .md, .txt and .html documents).
    ///
    /// Building into a folder that already holds an index updates it in place: unchanged
    /// documents are kept, changed ones re-read, deleted ones removed.
    Index(IndexArgs),
    /// Retrieve the passages that best answer a question, as a caller in the given groups.
    Query(QueryArgs),
}

#[derive(clap::Args, Debug)]
struct IndexArgs {
    /// A grounding source: `ID=DIR` (every caller may read it) or `ID=DIR:group1,group2`
    /// (only callers in one of the groups). Repeat for several sources.
    #[arg(long = "source", value_name = "ID=DIR[:GROUPS]")]
    sources: Vec<String>,
    /// Also index the grounding sources the estate file's applications name (their
    /// folders are relative to the estate file).
    #[arg(long, value_name = "FILE")]
    estate: Option<PathBuf>,
    /// With `--estate`: only this application's grounding sources.
    #[arg(long, value_name = "APP", requires = "estate")]
    app: Option<String>,
    #[command(flatten)]
    catalog: common::CatalogArg,
    /// Folder of the index: created when missing; an index already there is updated.
    #[arg(long, value_name = "DIR")]
    index: PathBuf,
    /// Skip documents larger than this many bytes (with a warning).
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().max_file_bytes)]
    max_file_bytes: u64,
}

#[derive(clap::Args, Debug)]
struct QueryArgs {
    /// Folder of an index built by `demarc ground index`.
    #[arg(long, value_name = "DIR")]
    index: PathBuf,
    /// The question to find passages for.
    question: String,
    /// A group the caller belongs to; repeat for several. Without any, only sources
    /// open to every caller are searched.
    #[arg(long = "group", value_name = "GROUP")]
    groups: Vec<String>,
    /// How many passages to return (at most 50).
    #[arg(short = 'k', long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..=50))]
    k: u16,
    /// Output: a table, JSON, or the context block the gateway adds to the system message.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum Format {
    Table,
    Json,
    Context,
}

pub fn run(args: Args) -> anyhow::Result<Outcome> {
    match args.command {
        Command::Index(args) => index(args),
        Command::Query(args) => query(args),
    }
}

fn index(args: IndexArgs) -> anyhow::Result<Outcome> {
    let mut sources = Vec::new();
    for spec in &args.sources {
        sources.push(spec.parse::<Source>()?);
    }
    if let Some(estate) = &args.estate {
        sources.extend(estate_sources(estate, args.app.as_deref(), &args.catalog)?);
    }
    if sources.is_empty() {
        bail!("no grounding source given; add `--source ID=DIR` or `--estate FILE`");
    }
    let limits = Limits {
        max_file_bytes: args.max_file_bytes,
        ..Limits::default()
    };
    let bar = crate::ui::progress(
        None,
        "{spinner} indexing {pos}/{len} documents {wide_bar} {elapsed}",
    );
    let (index, report) = IndexBuilder::new(&sources)
        .limits(limits)
        .on_progress(|p| {
            bar.set_length(p.total as u64);
            bar.set_position(p.done as u64);
        })
        .build(&args.index)?;
    bar.finish_and_clear();
    let skipped = if report.warnings.is_empty() {
        String::new()
    } else {
        format!("; {} (above)", plural(report.warnings.len(), "warning"))
    };
    println!(
        "indexed {} ({}) from {} into `{}`: {} read, {} unchanged, {} removed{skipped}",
        plural(report.documents, "document"),
        plural(report.passages, "passage"),
        plural(index.sources().len(), "source"),
        args.index.display(),
        report.indexed,
        report.unchanged,
        report.removed,
    );
    Ok(Outcome::Success)
}

/// The grounding sources an estate's applications name, with folders resolved against
/// the estate file's folder. The same source named by two applications is indexed once.
fn estate_sources(
    path: &Path,
    app: Option<&str>,
    catalog: &common::CatalogArg,
) -> anyhow::Result<Vec<Source>> {
    let catalog = catalog.load()?;
    // Only the warnings about the application asked for (all of them without one).
    let estate = match app {
        Some(id) => common::load_estate_for(path, &catalog, id)?,
        None => common::load_estate(path, &catalog)?,
    };
    let base = path.parent().unwrap_or(Path::new("."));
    let applications: Vec<_> = match app {
        Some(id) => {
            let application = estate.application(id).with_context(|| {
                let ids: Vec<&str> = estate
                    .applications()
                    .iter()
                    .map(|a| a.id.as_str())
                    .collect();
                format!(
                    "no application `{id}` in `{}`; {}",
                    path.display(),
                    demarc_model::diag::did_you_mean(id, ids.iter().copied())
                )
            })?;
            vec![application]
        }
        None => estate.applications().iter().collect(),
    };
    let mut sources: Vec<Source> = Vec::new();
    for application in applications {
        for grounding in &application.grounding_sources {
            let source = Source::new(grounding.id.clone(), base.join(&grounding.path))
                .and_then(|s| s.readable_by(grounding.groups.iter().cloned()))
                .with_context(|| {
                    format!("`{}`: application `{}`", path.display(), application.id)
                })?;
            match sources.iter().find(|s| s.id() == source.id()) {
                Some(existing) if *existing == source => {}
                Some(_) => bail!(
                    "`{}`: grounding source `{}` is named twice with different folders or groups; give each its own id",
                    path.display(),
                    source.id()
                ),
                None => sources.push(source),
            }
        }
    }
    if sources.is_empty() {
        bail!(
            "`{}` names no grounding sources{}",
            path.display(),
            app.map(|a| format!(" for `{a}`")).unwrap_or_default()
        );
    }
    Ok(sources)
}

fn query(args: QueryArgs) -> anyhow::Result<Outcome> {
    let index = GroundingIndex::open(&args.index)?;
    let passages = index.retrieve(&args.question, &args.groups, usize::from(args.k))?;
    if passages.is_empty() {
        eprintln!("no passages match the question among the sources these groups may read");
    }
    let out = match args.format {
        Format::Json => format!("{}\n", serde_json::to_string_pretty(&passages)?),
        Format::Context => format_context(&passages),
        Format::Table => table(&passages),
    };
    common::emit(None, &out)?;
    Ok(Outcome::Success)
}

fn table(passages: &[Passage]) -> String {
    if passages.is_empty() {
        return String::new();
    }
    let mut table = Table::new(&["#", "score", "source", "document", "heading", "excerpt"]);
    for (rank, passage) in passages.iter().enumerate() {
        table.row(vec![
            Cell::from((rank + 1).to_string()),
            Cell::from(format!("{:.2}", passage.score)),
            Cell::styled(passage.source.clone(), Style::Bold),
            Cell::from(passage.document.clone()),
            Cell::from(shorten(&passage.heading, 50)),
            Cell::styled(shorten(&passage.text, 60), Style::Dim),
        ]);
    }
    table.render(crate::ui::stdout_color())
}

/// One line of at most `max` characters, whitespace collapsed and control characters
/// dropped, with an ellipsis when cut.
fn shorten(text: &str, max: usize) -> String {
    let line: String = text
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .filter(|c| !c.is_control())
        .collect();
    if line.chars().count() <= max {
        return line;
    }
    let mut cut: String = line.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

fn plural(n: usize, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}
