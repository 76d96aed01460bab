//! Problems found in a user's file, each with where it is and, when obvious, a fix.
//!
//! Validation collects every problem before reporting (never just the first), so a
//! user can fix a file in one pass.

use std::fmt;

/// A position in a source file: 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Location {
    pub line: usize,
    pub column: usize,
}

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
        let map = crate::locate::SourceMap::build(text);
        let end = crate::parse::end_of(text);
        for item in &mut self.items {
            if item.location.is_none() {
                item.location = map
                    .find(&item.path)
                    .map(|l| crate::parse::clamp_to_end(end, l));
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

/// The candidate closest to `given` when it is close enough to be a likely typo.
pub fn suggest<'a>(given: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let given_lower = given.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| (edit_distance(&given_lower, &c.to_ascii_lowercase()), c))
        .filter(|(d, c)| *d <= (c.len().max(given.len()) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// `did you mean `x`?` help text, or a list of what is allowed when nothing is close.
pub fn did_you_mean<'a>(
    given: &str,
    candidates: impl IntoIterator<Item = &'a str> + Clone,
) -> String {
    match suggest(given, candidates.clone()) {
        Some(s) => format!("did you mean `{s}`?"),
        None => {
            let all: Vec<String> = candidates.into_iter().map(|c| format!("`{c}`")).collect();
            if all.is_empty() {
                "nothing of that kind is defined".to_string()
            } else if all.len() <= 12 {
                format!("expected one of {}", all.join(", "))
            } else {
                format!(
                    "expected one of {}, ... ({} in all)",
                    all[..12].join(", "),
                    all.len()
                )
            }
        }
    }
}

/// Edit distance counting a swap of neighbours as one edit (optimal string alignment),
/// since transposed letters are the commonest typo. Inputs are short identifiers.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_ids_only() {
        assert_eq!(suggest("pass", ["iaas", "paas", "saas"]), Some("paas"));
        assert_eq!(suggest("PaaS", ["iaas", "paas", "saas"]), Some("paas"));
        assert_eq!(suggest("mainframe", ["iaas", "paas", "saas"]), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("modle", "model"), 1);
    }
}
