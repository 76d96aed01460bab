//! demarc's one YAML stack: every YAML (and JSON) file demarc reads — estates, catalogs,
//! guard policies, the gateway config, the discovery service catalog — goes through
//! [`from_text`], with the same limits and the same located errors.
//!
//! - [`from_text`] deserializes YAML with a streaming serde deserializer over yaml-rust2's
//!   event parser (JSON files with serde_json), under the limits in [`limits`]: file size,
//!   nesting depth, alias expansion; duplicate keys refused, merge keys expanded.
//! - [`Error`] carries the message, the line and column, and a "did you mean" help for
//!   unknown fields and variants ([`did_you_mean`], [`suggest`]).
//! - [`SourceMap`] maps document paths (`applications[2].components[0].provider`) back to
//!   lines and columns, for problems found later on typed values.
//!
//! What demarc accepts and refuses is documented in `docs/yaml.md`.

mod de;
mod load;
mod source_map;
mod suggest;

pub use load::{Error, Syntax, from_text, limits, location_of, null_as_default};
pub use source_map::SourceMap;
pub use suggest::{did_you_mean, help_for_serde_message, suggest};

/// A position in a source file: 1-based line and column (columns count characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    pub line: usize,
    pub column: usize,
}

impl Location {
    /// The location just past the last character of `text`.
    pub fn end_of(text: &str) -> Self {
        location_of(text.as_bytes(), text.len())
    }

    /// `self`, or `end` when `self` lies past it (parsers report end of input one line past a
    /// last line that has no newline; every reported location stays inside the file).
    #[must_use]
    pub fn clamp_to(self, end: Location) -> Self {
        if self > end { end } else { self }
    }
}
