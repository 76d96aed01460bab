//! The one error type of the crate. Messages are lowercase, name the file or value at
//! fault in backticks, and suggest the fix where it is obvious.

use std::path::PathBuf;

/// Why building, opening or querying a grounding index failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GroundError {
    /// A source id is empty, too long or uses characters outside `[A-Za-z0-9._-]`.
    #[error(
        "invalid source id `{id}`: use 1 to 64 letters, digits, `.`, `_` or `-`, starting with a letter or digit"
    )]
    InvalidSourceId {
        /// The id as given.
        id: String,
    },
    /// A caller group name is empty, too long or uses unexpected characters.
    #[error(
        "invalid group `{group}` for source `{source_id}`: use 1 to 128 letters, digits, `.`, `_`, `@` or `-`"
    )]
    InvalidGroup {
        /// The source the group was given for.
        source_id: String,
        /// The group as given.
        group: String,
    },
    /// A `ID=DIR[:GROUPS]` source specification could not be parsed.
    #[error("invalid source `{spec}`: {reason} (expected `ID=DIR` or `ID=DIR:group1,group2`)")]
    InvalidSourceSpec {
        /// The specification as given.
        spec: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Two sources share one id.
    #[error("source id `{id}` is given twice; each grounding source needs its own id")]
    DuplicateSource {
        /// The repeated id.
        id: String,
    },
    /// No source was given to build from.
    #[error("no grounding source given; name at least one folder of documents")]
    NoSources,
    /// A source folder does not exist or is not a folder.
    #[error("grounding source `{id}`: folder `{path}` {problem}", path = .path.display())]
    SourceFolder {
        /// The source id.
        id: String,
        /// The folder as given.
        path: PathBuf,
        /// `does not exist`, `is not a folder`, ...
        problem: String,
    },
    /// The index folder exists, is not empty and holds no grounding index.
    #[error(
        "`{path}` is not empty and holds no grounding index; choose a new or empty folder for the index",
        path = .path.display()
    )]
    NotEmpty {
        /// The folder as given.
        path: PathBuf,
    },
    /// The folder holds no grounding index (or not one written by this crate).
    #[error("`{path}` holds no grounding index ({reason}); build one with `demarc ground index`", path = .path.display())]
    NotAnIndex {
        /// The folder as given.
        path: PathBuf,
        /// What is missing.
        reason: String,
    },
    /// The index was written by a version of demarc with another index format.
    #[error(
        "the grounding index in `{path}` has format {found}, this demarc reads format {expected}; remove the folder and index again",
        path = .path.display()
    )]
    IncompatibleFormat {
        /// The index folder.
        path: PathBuf,
        /// The format found in the index.
        found: u32,
        /// The format this crate writes.
        expected: u32,
    },
    /// Another process holds the index's write lock.
    #[error("another process is writing the grounding index in `{path}`; wait for it to finish", path = .path.display())]
    Busy {
        /// The index folder.
        path: PathBuf,
    },
    /// Reading or writing a file or folder failed.
    #[error("cannot {action} `{path}`", path = .path.display())]
    Io {
        /// What was being done: `read`, `create`, ...
        action: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The search engine failed.
    #[error("grounding index: {context}")]
    Index {
        /// What was being done.
        context: &'static str,
        /// The underlying error.
        #[source]
        source: tantivy::TantivyError,
    },
}

impl GroundError {
    pub(crate) fn index(context: &'static str) -> impl FnOnce(tantivy::TantivyError) -> Self {
        move |source| GroundError::Index { context, source }
    }

    pub(crate) fn io(
        action: &'static str,
        path: &std::path::Path,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.to_path_buf();
        move |source| GroundError::Io {
            action,
            path,
            source,
        }
    }
}
