//! `demarc`: the one binary. Argument parsing, output and exit codes live here;
//! the domain logic lives in the library crates (see ARCHITECTURE.md).

mod cmd;
mod ui;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Who does what in your GenAI stack, and proof that your part is done.
///
/// demarc applies a shared responsibility model for generative AI (by default the
/// Cloud Security Alliance's proposed model of 2023-07-28) to the applications an
/// organisation runs or uses: which duties are the provider's, which are yours and
/// which internal team owns them, whether they are done, and what evidence shows it.
///
/// Exit codes: 0 success, 1 a check failed (`--fail-on`, `validate` found
/// problems), 2 usage or input error.
#[derive(Parser)]
#[command(name = "demarc", version, propagate_version = true, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {}

/// What a command concluded; `main` maps it onto the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything asked for was done and every check passed (exit 0).
    Success,
    /// The command ran, but a check it was asked to make failed (exit 1).
    CheckFailed,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    ui::init_logging();
    let result: anyhow::Result<Outcome> = match cli.command {};
    match result {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::CheckFailed) => ExitCode::from(1),
        Err(error) => {
            ui::report_error(&error);
            ExitCode::from(2)
        }
    }
}
