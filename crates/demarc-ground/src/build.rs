//! Building an index: walk the sources, read and split each document, write passages,
//! and keep unchanged documents as they are when rebuilding in place.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tantivy::directory::error::LockError;
use tantivy::{Index, IndexWriter, TantivyDocument, TantivyError, Term};

use crate::extract::{Format, extract};
use crate::schema::{self, DocumentRecord, FORMAT, Fields, Manifest, SourceRecord};
use crate::split::split;
use crate::{GroundError, GroundingIndex, Source};

/// Bounds on what one build reads and writes. Raise them with care: they bound memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Larger documents are skipped with a warning (default 4 MiB).
    pub max_file_bytes: u64,
    /// Passages are cut to at most this many bytes of text (default 1,200; at least 64).
    pub max_passage_bytes: usize,
    /// Passages beyond this many per document are dropped with a warning (default 2,000).
    pub max_passages_per_document: usize,
    /// Documents beyond this many over all sources are left out with a warning
    /// (default 100,000).
    pub max_documents: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_file_bytes: 4 * 1024 * 1024,
            max_passage_bytes: 1200,
            max_passages_per_document: 2000,
            max_documents: 100_000,
        }
    }
}

/// Folders deeper than this below a source's root are not read.
const MAX_DEPTH: usize = 32;
/// A NUL byte in the first this many bytes marks a file as binary.
const BINARY_PROBE: usize = 8192;
/// Memory the index writer may use before it flushes a segment.
const WRITER_MEMORY: usize = 32 * 1024 * 1024;

/// How far a build has got, for progress bars.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Documents handled so far.
    pub done: usize,
    /// Documents found in all sources.
    pub total: usize,
}

/// What a build did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BuildReport {
    /// Documents now in the index.
    pub documents: usize,
    /// Of those, documents read and split in this build.
    pub indexed: usize,
    /// Of those, documents kept from the previous build because they did not change.
    pub unchanged: usize,
    /// Documents of the previous build that are gone and were removed.
    pub removed: usize,
    /// Passages now in the index.
    pub passages: usize,
    /// Files skipped or cut short, each with the reason.
    pub warnings: Vec<Warning>,
}

/// A file the build skipped or cut short.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The source it belongs to.
    pub source: String,
    /// The file (or folder).
    pub path: PathBuf,
    /// What happened.
    pub kind: WarningKind,
}

/// Why a file was skipped or cut short.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WarningKind {
    /// Larger than [`Limits::max_file_bytes`].
    TooLarge {
        /// The file's size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// Holds NUL bytes: not a text document.
    Binary,
    /// Not valid UTF-8.
    NotUtf8,
    /// No text to index.
    Empty,
    /// Could not be read.
    Unreadable(String),
    /// Only the first [`Limits::max_passages_per_document`] passages were kept.
    PassagesCapped {
        /// Passages kept.
        kept: usize,
    },
    /// [`Limits::max_documents`] was reached; this folder and the rest were not read.
    TooManyDocuments {
        /// The limit.
        limit: usize,
    },
    /// Folders nested deeper than the walker reads.
    TooDeep,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path.display();
        match &self.kind {
            WarningKind::TooLarge { size, limit } => {
                write!(
                    f,
                    "skipped `{path}`: {size} bytes is over the {limit}-byte limit"
                )
            }
            WarningKind::Binary => {
                write!(f, "skipped `{path}`: binary content, not a text document")
            }
            WarningKind::NotUtf8 => {
                write!(f, "skipped `{path}`: not UTF-8 text; convert it to UTF-8")
            }
            WarningKind::Empty => write!(f, "skipped `{path}`: no text to index"),
            WarningKind::Unreadable(error) => {
                write!(f, "skipped `{path}`: cannot read it: {error}")
            }
            WarningKind::PassagesCapped { kept } => {
                write!(
                    f,
                    "cut `{path}` short: only its first {kept} passages are indexed"
                )
            }
            WarningKind::TooManyDocuments { limit } => {
                write!(
                    f,
                    "stopped at `{path}`: the limit of {limit} documents is reached"
                )
            }
            WarningKind::TooDeep => write!(
                f,
                "skipped `{path}`: folders nested deeper than {MAX_DEPTH} levels"
            ),
        }
    }
}

/// Builds a [`GroundingIndex`] from sources, with limits and a progress callback.
///
/// ```no_run
/// # fn main() -> Result<(), demarc_ground::GroundError> {
/// use demarc_ground::{IndexBuilder, Limits, Source};
/// let sources = [Source::new("policies", "docs/policies")?];
/// let (index, report) = IndexBuilder::new(&sources)
///     .limits(Limits { max_file_bytes: 1 << 20, ..Limits::default() })
///     .on_progress(|p| eprintln!("{}/{}", p.done, p.total))
///     .build(std::path::Path::new("grounding-index"))?;
/// # let _ = (index, report); Ok(()) }
/// ```
pub struct IndexBuilder<'a> {
    sources: &'a [Source],
    limits: Limits,
    progress: Option<Box<dyn FnMut(Progress) + 'a>>,
}

impl<'a> IndexBuilder<'a> {
    /// A builder over `sources` with default [`Limits`].
    pub fn new(sources: &'a [Source]) -> Self {
        IndexBuilder {
            sources,
            limits: Limits::default(),
            progress: None,
        }
    }

    /// Use these limits.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Call `report` after each document.
    pub fn on_progress(mut self, report: impl FnMut(Progress) + 'a) -> Self {
        self.progress = Some(Box::new(report));
        self
    }

    /// Build into `index_dir`: created when missing; an index already there is updated
    /// in place (unchanged documents are not read again). A folder that is not empty and
    /// holds no grounding index is refused rather than written into.
    ///
    /// # Errors
    /// Invalid or missing source folders, an index folder that is not ours, a lock held
    /// by another writer, I/O and index errors. Unreadable or oversized *files* are not
    /// errors: they are skipped and listed in [`BuildReport::warnings`].
    pub fn build(self, index_dir: &Path) -> Result<(GroundingIndex, BuildReport), GroundError> {
        check_sources(self.sources)?;
        let (index, previous) = open_or_create(index_dir)?;
        self.write(index, previous, index_dir, true)
    }

    /// Build in memory: nothing is written to disk.
    ///
    /// # Errors
    /// As [`IndexBuilder::build`], less the index folder's.
    pub fn build_in_ram(self) -> Result<(GroundingIndex, BuildReport), GroundError> {
        check_sources(self.sources)?;
        let index = Index::create_in_ram(schema::schema());
        schema::register_analyzer(&index);
        self.write(index, None, Path::new("(memory)"), false)
    }

    fn write(
        mut self,
        index: Index,
        previous: Option<Manifest>,
        index_dir: &Path,
        on_disk: bool,
    ) -> Result<(GroundingIndex, BuildReport), GroundError> {
        let fields = Fields::of(&index.schema(), index_dir)?;
        let mut writer: IndexWriter<TantivyDocument> = index
            .writer_with_num_threads(1, WRITER_MEMORY)
            .map_err(|error| match error {
                TantivyError::LockFailure(LockError::LockBusy, _) => GroundError::Busy {
                    path: index_dir.to_path_buf(),
                },
                other => GroundError::Index {
                    context: "opening the index for writing",
                    source: other,
                },
            })?;

        // Documents of a build with other limits were split differently: start afresh.
        let mut previous_documents = match previous {
            Some(manifest) if manifest.limits == self.limits => manifest.documents,
            Some(_) => {
                writer
                    .delete_all_documents()
                    .map_err(GroundError::index("clearing the index"))?;
                BTreeMap::new()
            }
            None => BTreeMap::new(),
        };

        let mut report = BuildReport::default();
        let found = discover(self.sources, &self.limits, &mut report.warnings);
        let total = found.len();
        let mut documents = BTreeMap::new();
        for (done, file) in found.iter().enumerate() {
            let source = &self.sources[file.source];
            let key = format!("{}/{}", source.id(), file.relative);
            let warn = |kind| Warning {
                source: source.id().to_string(),
                path: file.path.clone(),
                kind,
            };
            match read_document(&file.path, self.limits.max_file_bytes) {
                Err(kind) => report.warnings.push(warn(kind)),
                Ok(content) => {
                    let hash = content_hash(source, &content);
                    match previous_documents.remove(&key) {
                        Some(record) if record.hash == hash => {
                            report.unchanged += 1;
                            documents.insert(key, record);
                        }
                        earlier => {
                            if earlier.is_some() {
                                writer
                                    .delete_term(Term::from_field_text(fields.document_key, &key));
                            }
                            let (passages, capped) = add_document(
                                &writer,
                                &fields,
                                source,
                                file,
                                &key,
                                &content,
                                &self.limits,
                            )?;
                            if capped {
                                report
                                    .warnings
                                    .push(warn(WarningKind::PassagesCapped { kept: passages }));
                            }
                            if passages == 0 {
                                report.warnings.push(warn(WarningKind::Empty));
                            } else {
                                report.indexed += 1;
                                documents.insert(key, DocumentRecord { hash, passages });
                            }
                        }
                    }
                }
            }
            if let Some(progress) = self.progress.as_mut() {
                progress(Progress {
                    done: done + 1,
                    total,
                });
            }
        }
        // Whatever the previous build held and this one did not find is gone.
        for key in previous_documents.keys() {
            writer.delete_term(Term::from_field_text(fields.document_key, key));
            report.removed += 1;
        }
        for warning in &report.warnings {
            tracing::warn!(source = %warning.source, "{warning}");
        }

        report.documents = documents.len();
        report.passages = documents.values().map(|d| d.passages).sum();
        let manifest = Manifest {
            format: FORMAT,
            limits: self.limits,
            sources: self
                .sources
                .iter()
                .map(|s| SourceRecord {
                    id: s.id().to_string(),
                    root: s.root().to_path_buf(),
                    groups: s.groups().to_vec(),
                })
                .collect(),
            documents,
        };
        let payload = serde_json::to_string(&manifest).map_err(|error| GroundError::Io {
            action: "write the manifest of",
            path: index_dir.to_path_buf(),
            source: error.into(),
        })?;
        let mut commit = writer
            .prepare_commit()
            .map_err(GroundError::index("preparing the commit"))?;
        commit.set_payload(&payload);
        commit.commit().map_err(GroundError::index("committing"))?;
        writer
            .wait_merging_threads()
            .map_err(GroundError::index("merging segments"))?;
        tracing::info!(
            documents = report.documents,
            indexed = report.indexed,
            unchanged = report.unchanged,
            removed = report.removed,
            passages = report.passages,
            "grounding index built"
        );
        let index =
            GroundingIndex::from_parts(index, fields, self.sources.to_vec(), index_dir, on_disk)?;
        Ok((index, report))
    }
}

fn check_sources(sources: &[Source]) -> Result<(), GroundError> {
    if sources.is_empty() {
        return Err(GroundError::NoSources);
    }
    let mut seen = BTreeSet::new();
    for source in sources {
        if !seen.insert(source.id()) {
            return Err(GroundError::DuplicateSource {
                id: source.id().to_string(),
            });
        }
        let problem = match std::fs::metadata(source.root()) {
            Ok(meta) if meta.is_dir() => continue,
            Ok(_) => "is not a folder".to_string(),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                "does not exist".to_string()
            }
            Err(error) => format!("cannot be read: {error}"),
        };
        return Err(GroundError::SourceFolder {
            id: source.id().to_string(),
            path: source.root().to_path_buf(),
            problem,
        });
    }
    Ok(())
}

/// Open the index in `dir`, or create one when `dir` is missing or empty.
fn open_or_create(dir: &Path) -> Result<(Index, Option<Manifest>), GroundError> {
    if dir.join("meta.json").is_file() {
        let index = Index::open_in_dir(dir).map_err(GroundError::index("opening the index"))?;
        let manifest = Manifest::read(&index, dir)?;
        schema::register_analyzer(&index);
        return Ok((index, Some(manifest)));
    }
    std::fs::create_dir_all(dir).map_err(GroundError::io("create", dir))?;
    let mut entries = std::fs::read_dir(dir).map_err(GroundError::io("read", dir))?;
    if entries.next().is_some() {
        return Err(GroundError::NotEmpty {
            path: dir.to_path_buf(),
        });
    }
    let index = Index::create_in_dir(dir, schema::schema())
        .map_err(GroundError::index("creating the index"))?;
    schema::register_analyzer(&index);
    Ok((index, None))
}

/// A document file found in a source.
struct Found {
    source: usize,
    path: PathBuf,
    /// Relative to the source's root, `/`-separated: what passages cite.
    relative: String,
    format: Format,
}

/// Every document of every source, in a stable order. Hidden entries and symbolic links
/// are not followed (a link could leave the approved folder).
fn discover(sources: &[Source], limits: &Limits, warnings: &mut Vec<Warning>) -> Vec<Found> {
    let mut found = Vec::new();
    for (index, source) in sources.iter().enumerate() {
        let mut stack = vec![(source.root().to_path_buf(), 0usize)];
        while let Some((dir, depth)) = stack.pop() {
            let warn = |kind| Warning {
                source: source.id().to_string(),
                path: dir.clone(),
                kind,
            };
            if found.len() >= limits.max_documents {
                warnings.push(warn(WarningKind::TooManyDocuments {
                    limit: limits.max_documents,
                }));
                return found;
            }
            if depth > MAX_DEPTH {
                warnings.push(warn(WarningKind::TooDeep));
                continue;
            }
            let entries = match std::fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(error) => {
                    warnings.push(warn(WarningKind::Unreadable(error.to_string())));
                    continue;
                }
            };
            let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
            entries.sort_by_key(|entry| entry.file_name());
            let mut subdirs = Vec::new();
            for entry in entries {
                let name = entry.file_name();
                if name.to_string_lossy().starts_with('.') {
                    continue;
                }
                let Ok(kind) = entry.file_type() else {
                    continue;
                };
                let path = entry.path();
                if kind.is_dir() {
                    subdirs.push((path, depth + 1));
                } else if kind.is_file() {
                    let format = path
                        .extension()
                        .and_then(|e| e.to_str())
                        .and_then(Format::from_extension);
                    if let Some(format) = format {
                        if found.len() >= limits.max_documents {
                            warnings.push(warn(WarningKind::TooManyDocuments {
                                limit: limits.max_documents,
                            }));
                            return found;
                        }
                        let relative = relative_path(source.root(), &path);
                        found.push(Found {
                            source: index,
                            path,
                            relative,
                            format,
                        });
                    }
                }
            }
            // Depth first, in name order.
            stack.extend(subdirs.into_iter().rev());
        }
    }
    found
}

fn relative_path(root: &Path, path: &Path) -> String {
    let relative = path.strip_prefix(root).unwrap_or(path);
    let parts: Vec<_> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect();
    parts.join("/")
}

/// A document's text, or why it is skipped. Reads at most `limit + 1` bytes, so a file
/// growing while it is read cannot blow the bound.
fn read_document(path: &Path, limit: u64) -> Result<String, WarningKind> {
    let unreadable = |error: std::io::Error| WarningKind::Unreadable(error.to_string());
    let file = std::fs::File::open(path).map_err(unreadable)?;
    let size = file.metadata().map_err(unreadable)?.len();
    if size > limit {
        return Err(WarningKind::TooLarge { size, limit });
    }
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    if bytes.len() as u64 > limit {
        return Err(WarningKind::TooLarge {
            size: bytes.len() as u64,
            limit,
        });
    }
    if bytes.iter().take(BINARY_PROBE).any(|&b| b == 0) {
        return Err(WarningKind::Binary);
    }
    let text = String::from_utf8(bytes).map_err(|_| WarningKind::NotUtf8)?;
    if text.trim().is_empty() {
        return Err(WarningKind::Empty);
    }
    Ok(text)
}

fn content_hash(source: &Source, content: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(FORMAT.to_le_bytes());
    for group in source.groups() {
        hasher.update(group.as_bytes());
        hasher.update(b"\n");
    }
    hasher.update(b"\0");
    hasher.update(content.as_bytes());
    hex::encode(hasher.finalize())
}

/// Split one document and add its passages; returns how many, and whether the cap cut it.
fn add_document(
    writer: &IndexWriter<TantivyDocument>,
    fields: &Fields,
    source: &Source,
    file: &Found,
    key: &str,
    content: &str,
    limits: &Limits,
) -> Result<(usize, bool), GroundError> {
    let extracted = extract(content, file.format);
    let (passages, capped) = split(
        &extracted,
        limits.max_passage_bytes,
        limits.max_passages_per_document,
    );
    for passage in &passages {
        let mut doc = TantivyDocument::default();
        doc.add_text(fields.source, source.id());
        doc.add_text(fields.document, &file.relative);
        doc.add_text(fields.document_key, key);
        for reader in source.readers() {
            doc.add_text(fields.readers, reader);
        }
        doc.add_text(fields.heading, &passage.heading);
        doc.add_text(fields.text, &passage.text);
        doc.add_text(
            fields.body,
            format!("{}\n\n{}", passage.heading, passage.text),
        );
        doc.add_u64(fields.start, passage.source_range.start as u64);
        doc.add_u64(fields.end, passage.source_range.end as u64);
        writer
            .add_document(doc)
            .map_err(GroundError::index("adding a passage"))?;
    }
    Ok((passages.len(), capped))
}
