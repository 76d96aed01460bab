//! Pieces several commands share: loading the catalog and the estate, writing output.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use demarc_model::catalog::DEFAULT_CATALOG;
use demarc_model::{CheckedCatalog, CheckedEstate, Diagnostics, Severity};

/// `--catalog`: a builtin catalog id or the path of a catalog file.
#[derive(clap::Args, Debug, Clone)]
pub struct CatalogArg {
    /// Responsibility catalog: a builtin id (see `demarc catalogs`) or a YAML/JSON file.
    #[arg(long, value_name = "ID|PATH", default_value = DEFAULT_CATALOG, env = "DEMARC_CATALOG")]
    pub catalog: String,
}

impl CatalogArg {
    pub fn load(&self) -> anyhow::Result<CheckedCatalog> {
        load_catalog(&self.catalog)
    }
}

pub fn load_catalog(spec: &str) -> anyhow::Result<CheckedCatalog> {
    if let Some(builtin) = CheckedCatalog::builtin(spec) {
        return builtin.or_else(|d| fail_with(&d));
    }
    let path = Path::new(spec);
    if !path.exists() {
        let ids: Vec<&str> = CheckedCatalog::builtin_ids().collect();
        bail!(
            "no builtin catalog or file named `{spec}`; {}",
            demarc_model::diag::did_you_mean(spec, ids.iter().copied())
        );
    }
    let bytes = read_bounded(path)?;
    CheckedCatalog::from_bytes(&path.display().to_string(), &bytes).or_else(|d| fail_with(&d))
}

/// Load and check an estate; warnings go to stderr, errors abort with every problem listed.
pub fn load_estate(path: &Path, catalog: &CheckedCatalog) -> anyhow::Result<CheckedEstate> {
    check_estate(path, &read_bounded(path)?, catalog)
}

/// Check estate bytes already read from `path`.
pub fn check_estate(
    path: &Path,
    bytes: &[u8],
    catalog: &CheckedCatalog,
) -> anyhow::Result<CheckedEstate> {
    match CheckedEstate::from_bytes(&path.display().to_string(), bytes, catalog) {
        Ok(checked) => {
            if !checked.warnings.is_empty() {
                print_diagnostics(&checked.warnings);
            }
            Ok(checked.estate)
        }
        Err(d) => fail_with(&d),
    }
}

/// Read a user's file, refusing ones larger than the parser accepts before reading them.
pub fn read_bounded(path: &Path) -> anyhow::Result<Vec<u8>> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot read `{}`", path.display()))?;
    if meta.is_dir() {
        bail!("`{}` is a directory, not a file", path.display());
    }
    let limit = demarc_model::parse::MAX_FILE_BYTES as u64;
    if meta.len() > limit {
        bail!(
            "`{}` is {} bytes; the limit is {limit} bytes (is this the right file?)",
            path.display(),
            meta.len()
        );
    }
    std::fs::read(path).with_context(|| format!("cannot read `{}`", path.display()))
}

/// Print diagnostics to stderr, coloured on a terminal.
pub fn print_diagnostics(diagnostics: &Diagnostics) {
    let color = crate::ui::stderr_color();
    let text = diagnostics.to_string();
    let mut stderr = std::io::stderr().lock();
    for line in text.lines() {
        let painted = if !color {
            line.to_string()
        } else if line.contains(": error: ") {
            line.replacen(": error: ", ": \x1b[1;31merror\x1b[0m: ", 1)
        } else if line.contains(": warning: ") {
            line.replacen(": warning: ", ": \x1b[1;33mwarning\x1b[0m: ", 1)
        } else if let Some(rest) = line.strip_prefix("  = help: ") {
            format!("  = \x1b[1;36mhelp\x1b[0m: {rest}")
        } else {
            line.to_string()
        };
        let _ = writeln!(stderr, "{painted}");
    }
}

/// Print the diagnostics and fail with a one-line summary (exit code 2).
fn fail_with<T>(diagnostics: &Diagnostics) -> anyhow::Result<T> {
    print_diagnostics(diagnostics);
    bail!("{}", summary_line(diagnostics))
}

pub fn summary_line(d: &Diagnostics) -> String {
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    let errors = d
        .items
        .iter()
        .filter(|i| i.severity == Severity::Error)
        .count();
    let warnings = d.items.len() - errors;
    match (errors, warnings) {
        (0, w) => format!("`{}`: {}", d.file, plural(w, "warning")),
        (e, 0) => format!("`{}` could not be used: {}", d.file, plural(e, "error")),
        (e, w) => format!(
            "`{}` could not be used: {}, {}",
            d.file,
            plural(e, "error"),
            plural(w, "warning")
        ),
    }
}

/// Write a value as pretty JSON to `--out FILE` or stdout, streaming: a large report is
/// never held in memory twice.
pub fn emit_json<T: serde::Serialize>(out: Option<&PathBuf>, value: &T) -> anyhow::Result<()> {
    let write = |w: &mut dyn Write| -> std::io::Result<()> {
        let mut w = std::io::BufWriter::with_capacity(64 * 1024, w);
        serde_json::to_writer_pretty(&mut w, value)?;
        w.write_all(b"\n")?;
        w.flush()
    };
    match out {
        Some(path) => {
            let mut file = std::fs::File::create(path)
                .with_context(|| format!("cannot write `{}`", path.display()))?;
            write(&mut file).with_context(|| format!("cannot write `{}`", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
        None => {
            if let Err(e) = write(&mut std::io::stdout().lock()) {
                if e.kind() != std::io::ErrorKind::BrokenPipe {
                    return Err(e).context("cannot write to stdout");
                }
            }
        }
    }
    Ok(())
}

/// Write a command's output to `--out FILE` or stdout.
pub fn emit(out: Option<&PathBuf>, content: &str) -> anyhow::Result<()> {
    match out {
        Some(path) => {
            std::fs::write(path, content)
                .with_context(|| format!("cannot write `{}`", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
        None => {
            let mut stdout = std::io::stdout().lock();
            // A closed pipe (`| head`) is not an error worth reporting.
            if let Err(e) = stdout
                .write_all(content.as_bytes())
                .and_then(|()| stdout.flush())
            {
                if e.kind() != std::io::ErrorKind::BrokenPipe {
                    return Err(e).context("cannot write to stdout");
                }
            }
        }
    }
    Ok(())
}
