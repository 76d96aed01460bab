//! `demarc validate ESTATE`: every problem in an estate file at once.

use std::path::PathBuf;

use demarc_model::{CheckedEstate, Diagnostics, Estate, parse};
use serde::Serialize;

use super::common::{CatalogArg, print_diagnostics, read_bounded, summary_line};
use crate::Outcome;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The estate file (YAML or JSON).
    pub estate: PathBuf,
    #[command(flatten)]
    pub catalog: CatalogArg,
    /// `text` lists problems on stderr like a compiler; `json` writes them to stdout.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum Format {
    Text,
    Json,
}

#[derive(Serialize)]
struct Report<'a> {
    file: &'a str,
    valid: bool,
    errors: usize,
    warnings: usize,
    applications: usize,
    problems: Vec<Problem<'a>>,
}

#[derive(Serialize)]
struct Problem<'a> {
    severity: demarc_model::Severity,
    line: Option<usize>,
    column: Option<usize>,
    path: &'a str,
    message: &'a str,
    help: Option<&'a str>,
}

pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let catalog = args.catalog.load()?;
    let file = args.estate.display().to_string();
    let bytes = read_bounded(&args.estate)?;
    // A file that is not a readable document is an input error (exit 2), not a finding.
    let text = parse::as_text(&file, &bytes).map_err(fail)?;
    let estate: Estate = parse::from_text(&file, text).map_err(fail)?;
    let (diagnostics, applications) =
        match CheckedEstate::check(&file, Some(text), estate, &catalog) {
            Ok(checked) => (checked.warnings, checked.estate.applications().len()),
            Err(d) => (d, 0),
        };
    match args.format {
        Format::Text => {
            if diagnostics.is_empty() {
                println!(
                    "{file}: ok ({applications} applications checked against `{}`)",
                    catalog.id()
                );
            } else {
                print_diagnostics(&diagnostics);
                eprintln!("{}", summary_line(&diagnostics));
            }
        }
        Format::Json => {
            let report = Report {
                file: &file,
                valid: diagnostics.is_empty(),
                errors: diagnostics.error_count(),
                warnings: diagnostics.warning_count(),
                applications,
                problems: diagnostics
                    .items
                    .iter()
                    .map(|d| Problem {
                        severity: d.severity,
                        line: d.location.map(|l| l.line),
                        column: d.location.map(|l| l.column),
                        path: &d.path,
                        message: &d.message,
                        help: d.help.as_deref(),
                    })
                    .collect(),
            };
            super::common::emit(
                None,
                &format!("{}\n", serde_json::to_string_pretty(&report)?),
            )?;
        }
    }
    Ok(if diagnostics.is_empty() {
        Outcome::Success
    } else {
        Outcome::CheckFailed
    })
}

fn fail(d: Diagnostics) -> anyhow::Error {
    print_diagnostics(&d);
    anyhow::anyhow!("{}", summary_line(&d))
}
