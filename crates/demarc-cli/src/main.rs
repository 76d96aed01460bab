//! `demarc`: the one binary. Argument parsing, output and exit codes live here;
//! the domain logic lives in the library crates (see ARCHITECTURE.md).

mod cmd;
mod render;
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
/// Exit codes: 0 success, 1 a check failed (`--fail-on`, `validate` found errors, `scan`
/// blocked, `audit verify` found a broken chain), 2 usage or input error (a file that cannot
/// be read or parsed, in `validate` too).
#[derive(Parser)]
#[command(
    name = "demarc",
    version,
    propagate_version = true,
    max_term_width = 100,
    after_help = "Reference: docs/cli.md (commands, exit codes, environment); every topic: docs/README.md"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the responsibility catalogs built into demarc.
    #[command(after_help = "Reference: docs/catalogs.md")]
    Catalogs(cmd::catalogs::Args),
    /// Show a catalog's responsibility matrix: areas by service models, who owns each.
    #[command(after_help = "Reference: docs/catalogs.md; JSON: docs/json.md")]
    Matrix(cmd::matrix::Args),
    /// Show how the areas of two catalogs relate (equal, subset, superset, intersects), and
    /// the areas with no counterpart.
    #[command(after_help = "Reference: docs/catalogs.md#crosswalks; JSON: docs/json.md")]
    Crosswalk(cmd::crosswalk::Args),
    /// Check an estate file and report every problem at once (exit 1 on errors, or on
    /// warnings with `--strict`; 2 when the file cannot be read as an estate at all).
    #[command(after_help = "Reference: docs/estate.md (the format and every check)")]
    Validate(cmd::validate::Args),
    /// Assess an estate: owner, control and evidence for every customer duty; coverage and gaps.
    #[command(after_help = "Reference: docs/assessment.md; JSON: docs/json.md")]
    Assess(cmd::assess::Args),
    /// Assess the estate under several catalogs at once and list, per application and
    /// component, where they disagree about who is accountable or owns a duty.
    #[command(after_help = "Reference: docs/catalogs.md#comparing-catalogs; JSON: docs/json.md")]
    Compare(cmd::compare::Args),
    /// Explain why each duty of an application resolves as it does (component, cell, citation).
    #[command(after_help = "Reference: docs/assessment.md (resolution)")]
    Explain(cmd::explain::Args),
    /// Show which duties would move, and to whom, if an application changed service model or provider.
    #[command(after_help = "Reference: docs/what-if.md")]
    WhatIf(cmd::what_if::Args),
    /// Write a catalog or an estate as OSCAL (catalog, component definition, SSP, assessment
    /// results) or as a CycloneDX ML-BOM.
    #[command(after_help = "Reference: docs/interchange.md")]
    Export(cmd::export::Args),
    /// Read an OSCAL component definition or SSP (a provider's responsibilities, checked
    /// against the catalog) or a CycloneDX ML-BOM (model lineage, checked against the estate).
    #[command(after_help = "Reference: docs/interchange.md")]
    Import(cmd::import::Args),
    /// Write a starter estate file.
    #[command(after_help = "Reference: docs/estate.md")]
    Init(cmd::init::Args),
    /// Print the JSON Schema of the catalog or estate file format.
    #[command(after_help = "Reference: docs/estate.md, docs/catalogs.md")]
    Schema(cmd::schema::Args),
    /// The store: create or migrate it, show its backend, schema version and contents.
    #[command(after_help = "Reference: docs/store.md")]
    Db(cmd::db::Args),
    /// Coverage per application over the recorded assessment runs.
    #[command(after_help = "Reference: docs/history.md")]
    History(cmd::history::Args),
    /// Verify or prune the gateway's tamper-evident audit trail.
    #[command(after_help = "Reference: docs/store.md")]
    Audit(cmd::audit::Args),
    /// Grounding: index approved document sources and query them as a caller would.
    #[command(after_help = "Reference: docs/grounding.md")]
    Ground(cmd::ground::Args),
    /// Find the GenAI services people use, from proxy, DNS and gateway logs: who, how much, and
    /// whether the estate allows them (sanctioned, tolerated, unsanctioned or shadow).
    #[command(after_help = "Reference: docs/discovery.md; JSON: docs/json.md")]
    Discover(cmd::discover::Args),
    /// Run the guard detectors (secrets, personal data, prompt injection, invisible text, deny
    /// lists, canaries, protected content) over a file, stdin or a JSONL batch; exit 1 when the
    /// policy blocks.
    #[command(after_help = "Reference: docs/guard.md; policies: docs/policy.md")]
    Scan(cmd::scan::Args),
    /// Run the OpenAI-compatible gateway: per-application keys, guard policy on input and
    /// output (streams included), upstream routing with retries and failover, rate limits,
    /// a tamper-evident audit log, metrics, and evidence for the assessment.
    #[command(after_help = "Reference: docs/gateway.md; the config file: docs/gateway-config.md")]
    Gateway(cmd::gateway::Args),
    /// Create, list and revoke the gateway keys applications call the gateway with.
    #[command(after_help = "Reference: docs/gateway.md")]
    Keys(cmd::keys::Args),
    /// Serve the dashboard and its HTTP API over the store: the estate assessed now,
    /// recorded runs, evidence, discovery, gateway activity, the audit trail; access by token.
    #[command(after_help = "Reference: docs/serve.md")]
    Serve(cmd::serve::Args),
    /// Create, list and revoke the access tokens of `demarc serve` (roles ingest, viewer, auditor, admin).
    #[command(after_help = "Reference: docs/serve.md#access")]
    Tokens(cmd::tokens::Args),
    /// A fake OpenAI-compatible upstream for trying the gateway and for its tests and
    /// benchmarks (latency, chunking and fault injection).
    #[command(after_help = "Reference: docs/development.md")]
    FakeUpstream(cmd::fake_upstream::Args),
}

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
    let result: anyhow::Result<Outcome> = match cli.command {
        Command::Catalogs(args) => cmd::catalogs::run(args),
        Command::Matrix(args) => cmd::matrix::run(args),
        Command::Crosswalk(args) => cmd::crosswalk::run(args),
        Command::Validate(args) => cmd::validate::run(args),
        Command::Assess(args) => cmd::assess::run(args),
        Command::Compare(args) => cmd::compare::run(args),
        Command::Explain(args) => cmd::explain::run(args),
        Command::WhatIf(args) => cmd::what_if::run(args),
        Command::Export(args) => cmd::export::run(args),
        Command::Import(args) => cmd::import::run(args),
        Command::Init(args) => cmd::init::run(args),
        Command::Schema(args) => cmd::schema::run(args),
        Command::Db(args) => cmd::db::run(args),
        Command::History(args) => cmd::history::run(args),
        Command::Audit(args) => cmd::audit::run(args),
        Command::Ground(args) => cmd::ground::run(args),
        Command::Discover(args) => cmd::discover::run(args),
        Command::Scan(args) => cmd::scan::run(args),
        Command::Gateway(args) => cmd::gateway::run(args),
        Command::Keys(args) => cmd::keys::run(args),
        Command::Serve(args) => cmd::serve::run(args),
        Command::Tokens(args) => cmd::tokens::run(args),
        Command::FakeUpstream(args) => cmd::fake_upstream::run(args),
    };
    match result {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::CheckFailed) => ExitCode::from(1),
        Err(error) => {
            ui::report_error(&error);
            ExitCode::from(2)
        }
    }
}
