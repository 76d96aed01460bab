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
    let catalog = CheckedCatalog::from_bytes(&path.display().to_string(), &bytes)
        .or_else(|d| fail_with(&d))?;
    // A catalog file's warnings (e.g. an estate service model it cannot take) go to stderr;
    // the built-in catalogs have none (tested).
    if !catalog.warnings().is_empty() {
        print_diagnostics(catalog.warnings());
    }
    Ok(catalog)
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
            if let Err(e) = write(&mut std::io::stdout().lock())
                && e.kind() != std::io::ErrorKind::BrokenPipe
            {
                return Err(e).context("cannot write to stdout");
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
                && e.kind() != std::io::ErrorKind::BrokenPipe
            {
                return Err(e).context("cannot write to stdout");
            }
        }
    }
    Ok(())
}

pub use crate::render::count;

/// Load and check an estate for a command about one application: only the warnings about
/// that application and those about the estate as a whole are printed.
pub fn load_estate_for(
    path: &Path,
    catalog: &CheckedCatalog,
    application: &str,
) -> anyhow::Result<CheckedEstate> {
    let bytes = read_bounded(path)?;
    match CheckedEstate::from_bytes(&path.display().to_string(), &bytes, catalog) {
        Ok(checked) => {
            let index = checked
                .estate
                .applications()
                .iter()
                .position(|a| a.id == application);
            let mut shown = Diagnostics::new(checked.warnings.file.clone());
            shown.items = checked
                .warnings
                .items
                .into_iter()
                .filter(|d| concerns(&d.path, index))
                .collect();
            if !shown.is_empty() {
                print_diagnostics(&shown);
            }
            Ok(checked.estate)
        }
        Err(d) => fail_with(&d),
    }
}

/// Whether a diagnostic at document path `path` concerns the application at `index` (or the
/// estate as a whole, which concerns every application).
pub fn concerns(path: &str, index: Option<usize>) -> bool {
    let Some(rest) = path.strip_prefix("applications[") else {
        return true;
    };
    let Some((i, _)) = rest.split_once(']') else {
        return true;
    };
    i.parse::<usize>().ok() == index || i.parse::<usize>().is_err()
}

/// Compiled estate guard policies by value and folder: applications that name the same policy
/// share one compiled guard (a compile takes milliseconds; an estate may list thousands of
/// applications). Usable from shared references, as the gateway's policy factory is.
#[derive(Default)]
pub struct PolicyCache(std::sync::Mutex<CompiledPolicies>);

/// Keyed by the value's JSON text (serde_json's values have no `Hash`).
type CompiledPolicies = std::collections::HashMap<
    (String, PathBuf),
    Result<std::sync::Arc<dyn demarc_gateway::Policy>, PolicyProblem>,
>;

impl PolicyCache {
    /// [`estate_guard_policy`], compiled once per distinct value and folder.
    pub fn get(
        &self,
        value: &demarc_gateway::YamlValue,
        estate_dir: &Path,
    ) -> Result<std::sync::Arc<dyn demarc_gateway::Policy>, PolicyProblem> {
        let key = (value.to_string(), estate_dir.to_path_buf());
        if let Some(done) = self.0.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return done;
        }
        let result = estate_guard_policy(value, estate_dir);
        if let Ok(mut map) = self.0.lock() {
            map.insert(key, result.clone());
        }
        result
    }
}

/// A problem with an application's `guard_policy`, as `demarc gateway` meets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyProblem {
    /// Where inside `guard_policy` (`input.secretz#key`, `injection.threshold`), when known.
    pub field: Option<String>,
    pub message: String,
    pub help: Option<String>,
}

impl std::fmt::Display for PolicyProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)?;
        if let Some(help) = &self.help {
            write!(f, " ({help})")?;
        }
        Ok(())
    }
}

/// Compile an estate application's `guard_policy` exactly as `demarc gateway` runs it: `off`,
/// a builtin name, a policy file (a relative path is relative to the estate file's folder),
/// or an inline policy (its relative paths, e.g. protected documents, resolved against the
/// estate file's folder too). `demarc validate` calls this same function, so the two never
/// disagree.
pub fn estate_guard_policy(
    value: &demarc_gateway::YamlValue,
    estate_dir: &Path,
) -> Result<std::sync::Arc<dyn demarc_gateway::Policy>, PolicyProblem> {
    use demarc_gateway::YamlValue;
    use demarc_guard::BUILTIN_POLICIES;
    let problem = |field: Option<String>, message: String, help: Option<String>| PolicyProblem {
        field,
        message,
        help,
    };
    let policy = match value {
        YamlValue::String(name) if name == "off" => {
            return Ok(std::sync::Arc::new(demarc_gateway::Off));
        }
        YamlValue::String(name) => match demarc_guard::Policy::builtin(name) {
            Some(policy) => policy,
            None => {
                let path = estate_dir.join(name);
                let looks_like_path = name.contains('/')
                    || name.contains('\\')
                    || [".yaml", ".yml", ".json"]
                        .iter()
                        .any(|ext| name.to_ascii_lowercase().ends_with(ext));
                if path.is_file() {
                    demarc_guard::Policy::from_file(&path)
                        .map_err(|e| policy_error(&e, None, Some(&path)))?
                } else if path.exists() {
                    return Err(problem(
                        None,
                        format!("guard policy `{name}` is not a file"),
                        Some("name a builtin policy or a policy file (YAML or JSON)".into()),
                    ));
                } else if looks_like_path {
                    return Err(problem(
                        None,
                        format!("guard policy file `{name}` does not exist"),
                        Some(format!(
                            "a relative path is read from the estate file's folder (`{}`)",
                            shown_dir(estate_dir)
                        )),
                    ));
                } else {
                    return Err(problem(
                        None,
                        format!("unknown builtin guard policy `{name}`"),
                        Some(format!(
                            "{} (or give the path of a policy file, relative to the estate file)",
                            demarc_model::diag::did_you_mean(
                                name,
                                BUILTIN_POLICIES.iter().copied()
                            )
                        )),
                    ));
                }
            }
        },
        YamlValue::Object(_) => {
            let mut policy = demarc_guard::Policy::from_value(value.clone())
                .map_err(|e| policy_error(&e, Some(value), None))?;
            policy.base_dir = Some(estate_dir.to_path_buf());
            policy
        }
        _ => {
            return Err(problem(
                None,
                "`guard_policy` must be a builtin policy name, a policy file path or a policy mapping".into(),
                Some(format!("builtins: {}", BUILTIN_POLICIES.join(", "))),
            ));
        }
    };
    match demarc_guard::Guard::new(&policy) {
        Ok(guard) => Ok(std::sync::Arc::new(demarc_gateway::GuardPolicy::new(guard))),
        Err(e) => Err(policy_error(
            &e,
            matches!(value, YamlValue::Object(_)).then_some(value),
            None,
        )),
    }
}

fn shown_dir(dir: &Path) -> String {
    if dir.as_os_str().is_empty() {
        ".".into()
    } else {
        dir.display().to_string()
    }
}

/// A guard `PolicyError` in the estate's terms: the field inside `guard_policy` when it can be
/// found in the inline document, a "did you mean" for unknown names.
fn policy_error(
    error: &demarc_guard::PolicyError,
    inline: Option<&demarc_gateway::YamlValue>,
    file: Option<&Path>,
) -> PolicyProblem {
    use demarc_guard::PolicyError;
    let (field, message) = match error {
        PolicyError::Invalid { field, message } => (
            Some(field.clone()),
            format!("guard policy field `{field}`: {message}"),
        ),
        PolicyError::Yaml {
            origin,
            line,
            column,
            message,
            ..
        } => (
            None,
            format!("guard policy {origin}:{line}:{column}: {message}"),
        ),
        PolicyError::Syntax { origin, message } if file.is_some() => {
            (None, format!("guard policy {origin}: {message}"))
        }
        PolicyError::Syntax { message, .. } => (None, format!("guard policy: {message}")),
        other => (None, format!("guard policy: {other}")),
    };
    let unknown = unknown_name(&message);
    let help = unknown.and_then(|_| serde_help(&message));
    // Point at the offending key or value of an inline policy when the message names it.
    let field = field.or_else(|| {
        let name = unknown?;
        inline.and_then(|v| find_in_yaml(v, name, ""))
    });
    PolicyProblem {
        field,
        message,
        help,
    }
}

/// The name in "unknown field `x`" / "unknown variant `x`".
fn unknown_name(message: &str) -> Option<&str> {
    ["unknown field `", "unknown variant `"]
        .iter()
        .find_map(|p| message.find(p).map(|i| &message[i + p.len()..]))
        .and_then(|rest| rest.find('`').map(|end| &rest[..end]))
}

/// "did you mean" from serde's "unknown ... `x`, expected one of `a`, `b`" (the same reading
/// every file kind's loader uses).
fn serde_help(message: &str) -> Option<String> {
    demarc_model::diag::help_for_serde_message(message)
}

/// The document path (`input.secretz#key`, `input.secrets`) of the first mapping key or
/// string value equal to `name`.
fn find_in_yaml(value: &demarc_gateway::YamlValue, name: &str, at: &str) -> Option<String> {
    use demarc_gateway::YamlValue;
    let join = |key: &str| {
        if at.is_empty() {
            key.to_string()
        } else {
            format!("{at}.{key}")
        }
    };
    match value {
        YamlValue::Object(map) => map.iter().find_map(|(k, v)| {
            let key = k.as_str();
            if key == name {
                return Some(format!("{}#key", join(key)));
            }
            find_in_yaml(v, name, &join(key))
        }),
        YamlValue::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, v)| find_in_yaml(v, name, &format!("{at}[{i}]"))),
        YamlValue::String(s) if s == name => Some(at.to_string()),
        _ => None,
    }
}

/// Check an application's grounding source the way the gateway will index it: a valid id and
/// groups, and a folder (relative paths against the estate file's folder) that exists.
pub fn grounding_source_problem(
    source: &demarc_model::estate::GroundingSource,
    estate_dir: &Path,
) -> Option<(&'static str, String, Option<String>)> {
    let root = estate_dir.join(&source.path);
    let checked = demarc_ground::Source::new(source.id.clone(), root.clone()).and_then(|s| {
        if source.groups.is_empty() {
            Ok(s)
        } else {
            s.readable_by(source.groups.iter().cloned())
        }
    });
    if let Err(e) = checked {
        let field = match e {
            demarc_ground::GroundError::InvalidGroup { .. } => "groups",
            _ => "id",
        };
        return Some((field, e.to_string(), None));
    }
    let problem = match std::fs::metadata(&root) {
        Ok(meta) if meta.is_dir() => return None,
        Ok(_) => "is not a folder".to_string(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => "does not exist".to_string(),
        Err(e) => format!("cannot be read: {e}"),
    };
    Some((
        "path",
        format!(
            "grounding source `{}`: folder `{}` {problem}",
            source.id,
            root.display()
        ),
        Some(format!(
            "a relative path is read from the estate file's folder (`{}`)",
            shown_dir(estate_dir)
        )),
    ))
}

/// The folder an estate file's relative paths are read from.
pub fn estate_dir(path: &Path) -> PathBuf {
    path.parent().map_or_else(PathBuf::new, Path::to_path_buf)
}
