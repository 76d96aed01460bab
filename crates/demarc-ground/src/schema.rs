//! The on-disk shape of a grounding index: the tantivy schema, the analyzer, and the
//! manifest kept in each commit's payload (so it changes atomically with the passages).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tantivy::schema::{
    FAST, Field, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing, TextOptions,
};
use tantivy::tokenizer::{
    AsciiFoldingFilter, Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer,
    StopWordFilter, TextAnalyzer,
};

use crate::{GroundError, Limits, Source};

/// Bumped whenever the schema, the analyzer, extraction or splitting change in a way
/// that makes an existing index wrong for this code.
pub(crate) const FORMAT: u32 = 3;

/// The field listing who may read a passage (also a fast field, for the collector).
pub(crate) const READERS: &str = "readers";

/// The name the analyzer is registered under in every index.
const ANALYZER: &str = "demarc_en";

/// Field handles, looked up once.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fields {
    pub source: Field,
    pub document: Field,
    /// `source/document`: what incremental rebuilds delete by.
    pub document_key: Field,
    /// Groups that may read the passage, or [`crate::source::EVERYONE`].
    pub readers: Field,
    pub heading: Field,
    pub text: Field,
    /// What is searched: the heading path, a blank line, the text.
    pub body: Field,
    pub start: Field,
    pub end: Field,
}

pub(crate) fn schema() -> Schema {
    let mut builder = Schema::builder();
    // One searched field, heading path and text together: one term scorer per question
    // term, and a query of term scorers alone is eligible for block-max WAND pruning.
    let searchable = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(ANALYZER)
            .set_index_option(IndexRecordOption::WithFreqs),
    );
    builder.add_text_field("source", STRING | STORED);
    builder.add_text_field("document", STRING | STORED);
    builder.add_text_field("document_key", STRING);
    builder.add_text_field(READERS, STRING | STORED | FAST);
    builder.add_text_field("heading", STORED);
    builder.add_text_field("text", STORED);
    builder.add_text_field("body", searchable);
    builder.add_u64_field("start", STORED);
    builder.add_u64_field("end", STORED);
    builder.build()
}

impl Fields {
    pub(crate) fn of(schema: &Schema, path: &Path) -> Result<Fields, GroundError> {
        let field = |name: &str| {
            schema.get_field(name).map_err(|_| GroundError::NotAnIndex {
                path: path.to_path_buf(),
                reason: format!("the index has no `{name}` field"),
            })
        };
        Ok(Fields {
            source: field("source")?,
            document: field("document")?,
            document_key: field("document_key")?,
            readers: field(READERS)?,
            heading: field("heading")?,
            text: field("text")?,
            body: field("body")?,
            start: field("start")?,
            end: field("end")?,
        })
    }
}

/// Words split on non-alphanumerics, over-long tokens dropped, lowercased, accents
/// folded, English stop words removed, stemmed: "Hotels" and "hotel" meet.
pub(crate) fn analyzer() -> TextAnalyzer {
    let stop_words = StopWordFilter::new(Language::English)
        .unwrap_or_else(|| StopWordFilter::remove(Vec::new()));
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .filter(stop_words)
        .filter(Stemmer::new(Language::English))
        .build()
}

pub(crate) fn register_analyzer(index: &tantivy::Index) {
    index.tokenizers().register(ANALYZER, analyzer());
}

/// What the index holds, stored as the payload of its last commit.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Manifest {
    pub format: u32,
    pub limits: Limits,
    pub sources: Vec<SourceRecord>,
    /// By document key (`source/relative/path`).
    pub documents: BTreeMap<String, DocumentRecord>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SourceRecord {
    pub id: String,
    pub root: PathBuf,
    pub groups: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DocumentRecord {
    /// SHA-256 over the format, the source's groups and the document's bytes.
    pub hash: String,
    pub passages: usize,
}

impl Manifest {
    pub(crate) fn read(index: &tantivy::Index, path: &Path) -> Result<Manifest, GroundError> {
        let metas = index
            .load_metas()
            .map_err(GroundError::index("reading the index's metadata"))?;
        let not_ours = |reason: &str| GroundError::NotAnIndex {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        };
        let payload = metas
            .payload
            .ok_or_else(|| not_ours("no demarc manifest in its last commit"))?;
        let manifest: Manifest = serde_json::from_str(&payload)
            .map_err(|_| not_ours("its last commit's manifest is not demarc's"))?;
        if manifest.format != FORMAT {
            return Err(GroundError::IncompatibleFormat {
                path: path.to_path_buf(),
                found: manifest.format,
                expected: FORMAT,
            });
        }
        Ok(manifest)
    }

    pub(crate) fn sources(&self, path: &Path) -> Result<Vec<Source>, GroundError> {
        self.sources
            .iter()
            .map(|s| {
                Source::new(s.id.clone(), s.root.clone())?.readable_by(s.groups.iter().cloned())
            })
            .collect::<Result<_, _>>()
            .map_err(|error| GroundError::NotAnIndex {
                path: path.to_path_buf(),
                reason: error.to_string(),
            })
    }
}
