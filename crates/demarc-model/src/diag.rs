//! Problems found in a user's file, each with where it is and, when obvious, a fix.
//!
//! Validation collects every problem before reporting (never just the first), so a
//! user can fix a file in one pass.

use std::fmt;

/// A position in a source file: 1-based line and column (demarc-yaml's, shared by every
/// file kind).
pub use demarc_yaml::Location;
/// "did you mean" help, shared with every other file kind.
pub use demarc_yaml::{did_you_mean, help_for_serde_message, suggest};

/// How bad a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The file cannot be used as it is.
    Error,
    /// The file can be used, but something a reviewer should fix is wrong
    /// (for example a customer duty with no owning team).
    Warning,
}

/// One problem in one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    /// Where in the document, as a path such as `applications[2].components[0].provider`.
    pub path: String,
    pub message: String,
    pub help: Option<String>,
    pub location: Option<Location>,
}

impl Diagnostic {
    pub fn error(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            path: path.into(),
            message: message.into(),
            help: None,
            location: None,
        }
    }

    pub fn warning(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            ..Self::error(path, message)
        }
    }

    #[must_use]
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

/// Every problem found in one file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Diagnostics {
    pub file: String,
    pub items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn new(file: impl Into<String>) -> Self {
        Self {
            file: file.into(),
            items: Vec::new(),
        }
    }

    pub fn single(file: impl Into<String>, diagnostic: Diagnostic) -> Self {
        Self {
            file: file.into(),
            items: vec![diagnostic],
        }
    }

    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.items.push(diagnostic);
    }

    pub fn has_errors(&self) -> bool {
        self.items.iter().any(|d| d.severity == Severity::Error)
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn error_count(&self) -> usize {
        self.items
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count()
    }

    pub fn warning_count(&self) -> usize {
        self.items
            .iter()
            .filter(|d| d.severity == Severity::Warning)
            .count()
    }

    /// Fill in line and column for every diagnostic that lacks them, from the source text.
    /// Locating costs a second parse, so it is done only when there is something to report.
    pub fn locate_in(&mut self, text: &str) {
        if self.items.iter().all(|d| d.location.is_some()) {
            return;
        }
        let map = demarc_yaml::SourceMap::build(text);
        let end = Location::end_of(text);
        for item in &mut self.items {
            if item.location.is_none() {
                item.location = map.find(&item.path).map(|l| l.clamp_to(end));
            }
        }
        self.items.sort_by_key(|d| d.location);
    }
}

impl fmt::Display for Diagnostics {
    /// Compiler style: `file:line:col: error: message`, then `  = help: ...`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.items.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            let level = match d.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            };
            match d.location {
                Some(l) => write!(
                    f,
                    "{}:{}:{}: {level}: {}",
                    self.file, l.line, l.column, d.message
                )?,
                None => write!(f, "{}: {level}: {}", self.file, d.message)?,
            }
            if !d.path.is_empty() {
                write!(f, " (at `{}`)", d.path)?;
            }
            if let Some(help) = &d.help {
                write!(f, "\n  = help: {help}")?;
            }
        }
        Ok(())
    }
}
