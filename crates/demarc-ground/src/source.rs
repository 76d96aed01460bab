//! Approved grounding sources: a folder of documents, an id, and who may read it.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::GroundError;

/// The reader value stored for a source open to every caller. Group names cannot
/// contain `*`, so it never collides with a real group.
pub(crate) const EVERYONE: &str = "*";

/// An approved grounding source: a folder of `.md`, `.txt` and `.html` documents.
///
/// A source with no groups may be read by every caller; a source with groups only by
/// callers that belong to at least one of them. Construction validates the id and the
/// group names; the folder itself is checked when an index is built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    id: String,
    root: PathBuf,
    groups: Vec<String>,
}

impl Source {
    /// A source readable by every caller.
    ///
    /// # Errors
    /// [`GroundError::InvalidSourceId`] when `id` is empty, longer than 64 bytes or uses
    /// characters outside `[A-Za-z0-9._-]` (it must start with a letter or digit).
    pub fn new(id: impl Into<String>, root: impl Into<PathBuf>) -> Result<Self, GroundError> {
        let id = id.into();
        if !valid_id(&id) {
            return Err(GroundError::InvalidSourceId { id });
        }
        Ok(Source {
            id,
            root: root.into(),
            groups: Vec::new(),
        })
    }

    /// Restrict the source to callers in at least one of `groups` (an empty list keeps
    /// it open to everyone). Duplicates are dropped.
    ///
    /// # Errors
    /// [`GroundError::InvalidGroup`] for a group that is empty, longer than 128 bytes or
    /// uses characters outside `[A-Za-z0-9._@-]`.
    pub fn readable_by<I, S>(mut self, groups: I) -> Result<Self, GroundError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut checked: Vec<String> = Vec::new();
        for group in groups {
            let group = group.into();
            if !valid_group(&group) {
                return Err(GroundError::InvalidGroup {
                    source_id: self.id,
                    group,
                });
            }
            if !checked.contains(&group) {
                checked.push(group);
            }
        }
        checked.sort();
        self.groups = checked;
        Ok(self)
    }

    /// The source id, as cited in passages.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The folder of documents.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The caller groups allowed to read it; empty means everyone.
    pub fn groups(&self) -> &[String] {
        &self.groups
    }

    /// The values stored with each passage for access filtering.
    pub(crate) fn readers(&self) -> Vec<&str> {
        if self.groups.is_empty() {
            vec![EVERYONE]
        } else {
            self.groups.iter().map(String::as_str).collect()
        }
    }
}

/// Parses `ID=DIR` or `ID=DIR:group1,group2`. The groups follow the *last* `:`, so a
/// folder whose name contains `:` needs a trailing `:` (no groups) to be read whole.
impl FromStr for Source {
    type Err = GroundError;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let invalid = |reason| GroundError::InvalidSourceSpec {
            spec: spec.to_string(),
            reason,
        };
        let (id, rest) = spec
            .split_once('=')
            .ok_or_else(|| invalid("no `=` between id and folder"))?;
        let (dir, groups) = match rest.rsplit_once(':') {
            Some((dir, groups)) => (
                dir,
                groups
                    .split(',')
                    .filter(|g| !g.is_empty())
                    .collect::<Vec<_>>(),
            ),
            None => (rest, Vec::new()),
        };
        if dir.is_empty() {
            return Err(invalid("the folder is empty"));
        }
        Source::new(id, dir)?.readable_by(groups)
    }
}

fn valid_id(id: &str) -> bool {
    id.len() <= 64
        && id.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

fn valid_group(group: &str) -> bool {
    !group.is_empty()
        && group.len() <= 128
        && group
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._@-".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_id_folder_and_groups() {
        let source: Source = "hr=docs/hr:hr-staff,managers".parse().unwrap();
        assert_eq!(source.id(), "hr");
        assert_eq!(source.root(), Path::new("docs/hr"));
        assert_eq!(source.groups(), ["hr-staff", "managers"]);
        assert_eq!(source.readers(), ["hr-staff", "managers"]);
    }

    #[test]
    fn a_source_without_groups_is_open_to_everyone() {
        let source: Source = "policies=/srv/policies".parse().unwrap();
        assert!(source.groups().is_empty());
        assert_eq!(source.readers(), [EVERYONE]);
        let trailing: Source = "odd=/srv/a:b:".parse().unwrap();
        assert_eq!(trailing.root(), Path::new("/srv/a:b"));
        assert!(trailing.groups().is_empty());
    }

    #[test]
    fn rejects_bad_ids_groups_and_specs() {
        for spec in ["policies", "=dir", "-x=dir", "a b=dir", "x=", "x=:g"] {
            assert!(spec.parse::<Source>().is_err(), "{spec} should be rejected");
        }
        let error = "hr=dir:fin ance".parse::<Source>().unwrap_err().to_string();
        assert!(error.contains("`fin ance`"), "{error}");
        assert!(Source::new("x", "d").unwrap().readable_by(["*"]).is_err());
    }

    #[test]
    fn duplicate_groups_are_dropped() {
        let source = Source::new("x", "d")
            .unwrap()
            .readable_by(["b", "a", "b"])
            .unwrap();
        assert_eq!(source.groups(), ["a", "b"]);
    }
}
