//! Terminal conventions shared by every command: colour, progress, logging, errors.
//! stdout carries data; everything here writes to stderr.

use std::io::IsTerminal;

/// Whether to colour output written to stdout: a terminal, and `NO_COLOR` unset or empty.
pub fn stdout_color() -> bool {
    no_color_unset() && std::io::stdout().is_terminal()
}

/// Whether to colour diagnostics written to stderr.
pub fn stderr_color() -> bool {
    no_color_unset() && std::io::stderr().is_terminal()
}

fn no_color_unset() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// A progress bar on stderr when it is a terminal; hidden (and free) when piped.
/// `total` of `None` gives a spinner that still shows counts and rate.
#[allow(dead_code)]
pub fn progress(total: Option<u64>, template: &str) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = match total {
        Some(n) => indicatif::ProgressBar::new(n),
        None => indicatif::ProgressBar::new_spinner(),
    };
    if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    bar
}

/// Logs go to stderr; `DEMARC_LOG` sets the filter (default `warn`),
/// `DEMARC_LOG_FORMAT=json` switches to one JSON object per line.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("DEMARC_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(stderr_color());
    let json = std::env::var("DEMARC_LOG_FORMAT").is_ok_and(|v| v == "json");
    // A second initialisation (tests) is harmless; ignore it.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Print an error and its causes to stderr, lowercase, compiler style.
pub fn report_error(error: &anyhow::Error) {
    let prefix = if stderr_color() {
        "\x1b[1;31merror\x1b[0m"
    } else {
        "error"
    };
    eprintln!("{prefix}: {error}");
    for cause in error.chain().skip(1) {
        eprintln!("  caused by: {cause}");
    }
}
