//! `demarc validate ESTATE`: every problem in an estate file at once, including those only
//! the other commands would meet: each application's guard policy (compiled exactly as
//! `demarc gateway` compiles it) and its grounding folders.

use std::path::{Path, PathBuf};

use demarc_model::{CheckedEstate, Diagnostic, Diagnostics, Estate, parse};
use serde::Serialize;

use super::common::{
    CatalogArg, PolicyCache, count, estate_dir, grounding_source_problem, print_diagnostics,
    read_bounded, summary_line,
};
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
    /// Fail (exit 1) on warnings too, not only on errors.
    #[arg(long)]
    pub strict: bool,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum Format {
    Text,
    Json,
}

#[derive(Serialize)]
struct Report<'a> {
    file: &'a str,
    /// Whether the estate passed: no errors (and, with `--strict`, no warnings).
    valid: bool,
    strict: bool,
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
    let outside = outside_checks(&estate, &estate_dir(&args.estate));
    let (mut diagnostics, applications) =
        match CheckedEstate::check(&file, Some(text), estate, &catalog) {
            Ok(checked) => {
                // Evidence files and dates: a missing or changed file, a review in the future.
                let files =
                    demarc_serve::assessing::check_evidence_files(&args.estate, &checked.estate);
                let mut warnings = checked.warnings;
                warnings
                    .items
                    .extend(demarc_model::assess::evidence_diagnostics(
                        &checked.estate,
                        demarc_model::Date::today(),
                        &files,
                    ));
                (warnings, checked.estate.applications().len())
            }
            Err(d) => (d, 0),
        };
    diagnostics.items.extend(outside);
    diagnostics.locate_in(text);
    let passed = !diagnostics.has_errors() && (!args.strict || diagnostics.warning_count() == 0);
    match args.format {
        Format::Text => {
            if !diagnostics.is_empty() {
                print_diagnostics(&diagnostics);
            }
            let checked = format!(
                "{} checked against `{}`",
                count(applications, "application"),
                catalog.id()
            );
            if diagnostics.is_empty() {
                println!("{file}: ok ({checked})");
            } else if passed {
                println!(
                    "{file}: ok with {} ({checked})",
                    count(diagnostics.warning_count(), "warning")
                );
            } else if diagnostics.has_errors() {
                eprintln!("{}", summary_line(&diagnostics));
            } else {
                eprintln!(
                    "{} (`--strict` fails on warnings)",
                    summary_line(&diagnostics)
                );
            }
        }
        Format::Json => {
            let report = Report {
                file: &file,
                valid: passed,
                strict: args.strict,
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
            super::common::emit_json(None, &report)?;
        }
    }
    Ok(if passed {
        Outcome::Success
    } else {
        Outcome::CheckFailed
    })
}

/// What the model cannot check because it needs files: each application's guard policy, as
/// the gateway compiles it, and its grounding folders, both relative to the estate file.
pub fn outside_checks(estate: &Estate, estate_dir: &Path) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let policies = PolicyCache::default();
    for (i, app) in estate.applications.iter().enumerate() {
        let at = format!("applications[{i}]");
        if let Some(value) = &app.guard_policy
            && let Err(p) = policies.get(value, estate_dir)
        {
            let path = match &p.field {
                Some(field) => format!("{at}.guard_policy.{field}"),
                None => format!("{at}.guard_policy"),
            };
            let d = Diagnostic::error(path, format!("application `{}`: {}", app.id, p.message));
            out.push(match p.help {
                Some(help) => d.with_help(help),
                None => d,
            });
        }
        for (j, source) in app.grounding_sources.iter().enumerate() {
            if let Some((field, message, help)) = grounding_source_problem(source, estate_dir) {
                let d = Diagnostic::error(
                    format!("{at}.grounding_sources[{j}].{field}"),
                    format!("application `{}`: {message}", app.id),
                );
                out.push(match help {
                    Some(help) => d.with_help(help),
                    None => d,
                });
            }
        }
    }
    out
}

fn fail(d: Diagnostics) -> anyhow::Error {
    print_diagnostics(&d);
    anyhow::anyhow!("{}", summary_line(&d))
}
