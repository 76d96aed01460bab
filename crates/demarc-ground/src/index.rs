//! The index the gateway queries: open, retrieve with access filtering.

use std::path::{Path, PathBuf};

use serde::Serialize;
use tantivy::query::{BooleanQuery, Occur, Query, TermQuery};
use tantivy::schema::{IndexRecordOption, Value};
use tantivy::tokenizer::TextAnalyzer;
use tantivy::{Index, IndexReader, ReloadPolicy, TantivyDocument, Term};

use crate::collect::ReadableTopDocs;
use crate::schema::{self, Fields, Manifest};
use crate::source::EVERYONE;
use crate::split::floor_char_boundary;
use crate::{GroundError, IndexBuilder, Source};

/// The most passages one retrieval returns.
pub const MAX_K: usize = 50;
/// Only this much of a question is read (bytes).
const MAX_QUESTION_BYTES: usize = 8 * 1024;
/// Only this many distinct terms of a question are searched.
const MAX_TERMS: usize = 64;
/// Only this many caller groups are considered.
const MAX_GROUPS: usize = 64;

/// A passage retrieved for a question, with what its citation needs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Passage {
    /// The id of the grounding source it comes from.
    pub source: String,
    /// The document, relative to the source's folder, `/`-separated.
    pub document: String,
    /// The heading path above it (`Travel policy > Hotels`), empty when there is none.
    pub heading: String,
    /// The passage's text.
    pub text: String,
    /// BM25 relevance; higher is better. Comparable within one retrieval only.
    pub score: f32,
    /// Where the passage starts in the document (byte offset).
    pub start: u64,
    /// Where it ends (byte offset, exclusive).
    pub end: u64,
}

/// A BM25 index of approved grounding sources, with per-source access by caller group.
///
/// Cheap to share: `Send + Sync`, and every method takes `&self`. An index opened from a
/// folder picks up a rebuild of that folder by another process within about a second.
#[derive(Clone)]
pub struct GroundingIndex {
    reader: IndexReader,
    fields: Fields,
    analyzer: TextAnalyzer,
    sources: Vec<Source>,
    location: Option<PathBuf>,
}

impl std::fmt::Debug for GroundingIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroundingIndex")
            .field("location", &self.location)
            .field("sources", &self.sources)
            .field("passages", &self.passage_count())
            .finish_non_exhaustive()
    }
}

impl GroundingIndex {
    /// Build (or update in place) the index in `index_dir` from `sources` with default
    /// limits. See [`IndexBuilder`] for limits and progress.
    ///
    /// # Errors
    /// See [`IndexBuilder::build`].
    pub fn build(
        sources: &[Source],
        index_dir: &Path,
    ) -> Result<(GroundingIndex, crate::BuildReport), GroundError> {
        IndexBuilder::new(sources).build(index_dir)
    }

    /// Build an index in memory from `sources` with default limits.
    ///
    /// # Errors
    /// See [`IndexBuilder::build_in_ram`].
    pub fn build_in_ram(
        sources: &[Source],
    ) -> Result<(GroundingIndex, crate::BuildReport), GroundError> {
        IndexBuilder::new(sources).build_in_ram()
    }

    /// Open the index a build wrote to `index_dir`.
    ///
    /// # Errors
    /// [`GroundError::NotAnIndex`] when the folder is missing or holds no grounding index,
    /// [`GroundError::IncompatibleFormat`] for an index of another format, index errors.
    pub fn open(index_dir: &Path) -> Result<GroundingIndex, GroundError> {
        if !index_dir.join("meta.json").is_file() {
            let reason = if index_dir.is_dir() {
                "no `meta.json` in it"
            } else {
                "no such folder"
            };
            return Err(GroundError::NotAnIndex {
                path: index_dir.to_path_buf(),
                reason: reason.to_string(),
            });
        }
        let index =
            Index::open_in_dir(index_dir).map_err(GroundError::index("opening the index"))?;
        let manifest = Manifest::read(&index, index_dir)?;
        schema::register_analyzer(&index);
        let fields = Fields::of(&index.schema(), index_dir)?;
        let sources = manifest.sources(index_dir)?;
        GroundingIndex::from_parts(index, fields, sources, index_dir, true)
    }

    pub(crate) fn from_parts(
        index: Index,
        fields: Fields,
        sources: Vec<Source>,
        location: &Path,
        on_disk: bool,
    ) -> Result<GroundingIndex, GroundError> {
        // On disk, follow commits by other processes; in memory, only our own build.
        let policy = if on_disk {
            ReloadPolicy::OnCommitWithDelay
        } else {
            ReloadPolicy::Manual
        };
        let reader = index
            .reader_builder()
            .reload_policy(policy)
            .try_into()
            .map_err(GroundError::index("opening a reader"))?;
        reader
            .reload()
            .map_err(GroundError::index("loading the index"))?;
        Ok(GroundingIndex {
            reader,
            fields,
            analyzer: schema::analyzer(),
            sources,
            location: on_disk.then(|| location.to_path_buf()),
        })
    }

    /// The sources the index was built from (as of its build or opening).
    pub fn sources(&self) -> &[Source] {
        &self.sources
    }

    /// The folder the index lives in; `None` for an index in memory.
    pub fn location(&self) -> Option<&Path> {
        self.location.as_deref()
    }

    /// Passages in the index, over all sources.
    pub fn passage_count(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// The `k` passages (at most [`MAX_K`]) that best answer `question`, best first,
    /// drawn only from sources the caller may read: sources open to everyone, and
    /// sources restricted to a group in `caller_groups`.
    ///
    /// Access is enforced twice: inside the search, where a candidate of a source the
    /// caller cannot read is never ranked (so it cannot crowd out readable passages), and
    /// again on every stored passage before it is returned. A question with no searchable words (empty, or only stop words)
    /// returns no passages. Only the first 8 KiB and 64 distinct terms of a question, and
    /// the first 64 caller groups, are used, which bounds the cost of any one call.
    ///
    /// # Errors
    /// Index read errors only (an I/O failure under the index).
    pub fn retrieve<G: AsRef<str>>(
        &self,
        question: &str,
        caller_groups: &[G],
        k: usize,
    ) -> Result<Vec<Passage>, GroundError> {
        let k = k.min(MAX_K);
        let terms = self.terms(question);
        if k == 0 || terms.is_empty() {
            return Ok(Vec::new());
        }
        let allowed: Vec<&str> = std::iter::once(EVERYONE)
            .chain(
                caller_groups
                    .iter()
                    .map(AsRef::as_ref)
                    .filter(|g| !g.is_empty() && *g != EVERYONE)
                    .take(MAX_GROUPS),
            )
            .collect();

        // BM25 over heading path and text together: a heading's words count for every
        // passage under it, so "hotels" finds the passages of the Hotels section.
        let relevance: Vec<(Occur, Box<dyn Query>)> = terms
            .iter()
            .map(|term| {
                let term = Term::from_field_text(self.fields.body, term);
                let query = TermQuery::new(term, IndexRecordOption::WithFreqs);
                (Occur::Should, Box::new(query) as Box<dyn Query>)
            })
            .collect();
        // Access is checked for every candidate inside the search loop (see `collect`).
        let query = BooleanQuery::new(relevance);
        let readable = ReadableTopDocs {
            k,
            readers_field: schema::READERS,
            allowed: &allowed,
        };
        let searcher = self.reader.searcher();
        let top = searcher
            .search(&query, &readable)
            .map_err(GroundError::index("searching"))?;
        let mut passages = Vec::with_capacity(top.len());
        for (score, address) in top {
            let doc: TantivyDocument = searcher
                .doc(address)
                .map_err(GroundError::index("reading a passage"))?;
            let readable = doc
                .get_all(self.fields.readers)
                .filter_map(|v| v.as_str())
                .any(|r| allowed.contains(&r));
            if !readable {
                // Unreachable unless the collector is wrong; never hand the passage out.
                tracing::error!(
                    "a passage outside the caller's groups matched the access filter; dropped"
                );
                continue;
            }
            let text = |field| {
                doc.get_first(field)
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_string()
            };
            let number = |field| {
                doc.get_first(field)
                    .and_then(|v| v.as_u64())
                    .unwrap_or_default()
            };
            passages.push(Passage {
                source: text(self.fields.source),
                document: text(self.fields.document),
                heading: text(self.fields.heading),
                text: text(self.fields.text),
                score,
                start: number(self.fields.start),
                end: number(self.fields.end),
            });
        }
        Ok(passages)
    }

    /// The question's distinct analyzed terms, in order of first appearance.
    fn terms(&self, question: &str) -> Vec<String> {
        let question = question
            .get(..floor_char_boundary(question, MAX_QUESTION_BYTES))
            .unwrap_or_default();
        let mut analyzer = self.analyzer.clone();
        let mut stream = analyzer.token_stream(question);
        let mut terms: Vec<String> = Vec::new();
        while terms.len() < MAX_TERMS && stream.advance() {
            let term = &stream.token().text;
            if !terms.iter().any(|t| t == term) {
                terms.push(term.clone());
            }
        }
        terms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_index_can_be_shared_across_threads() {
        fn assert_send_sync<T: Send + Sync + Clone>() {}
        assert_send_sync::<GroundingIndex>();
    }
}
