//! Grounding from approved sources: the customer's share of the *grounding* duty.
//!
//! An application may only ground its model's answers in sources the organisation has
//! approved, and each caller may only see what its groups may read. This crate indexes
//! folders of Markdown, text and HTML documents with BM25 ([tantivy]), retrieves the best
//! passages for a question while honouring per-source access by caller group, and
//! renders them as numbered citations for a system message.
//!
//! # Usage (what the gateway does)
//!
//! ```
//! use demarc_ground::{GroundingIndex, Source, format_context};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let docs = tempfile::tempdir()?;
//! # std::fs::create_dir_all(docs.path().join("policies"))?;
//! # std::fs::create_dir_all(docs.path().join("hr"))?;
//! # std::fs::write(docs.path().join("policies/travel.md"),
//! #     "# Travel policy\n\n## Hotels\n\nHotel stays are reimbursed up to 180 EUR a night.\n")?;
//! # std::fs::write(docs.path().join("hr/salaries.md"), "# Salary bands\n\nHotel staff band C.\n")?;
//! # let index_dir = tempfile::tempdir()?;
//! # let (policies_dir, hr_dir) = (docs.path().join("policies"), docs.path().join("hr"));
//! // Approved sources: an id, a folder, and optionally the caller groups that may read it.
//! let sources = [
//!     Source::new("policies", policies_dir)?,                     // every caller
//!     Source::new("hr", hr_dir)?.readable_by(["hr-staff"])?,      // only group `hr-staff`
//! ];
//!
//! // Build once (or at start-up); rebuilding in place re-reads only changed documents.
//! let (index, report) = GroundingIndex::build(&sources, index_dir.path())?;
//! for warning in &report.warnings {
//!     eprintln!("warning: {warning}"); // skipped files: too large, binary, ...
//! }
//! // Later, or in another process: `GroundingIndex::open(index_dir)`.
//!
//! // Per request: the user's question, the caller's groups, how many passages.
//! let passages = index.retrieve("hotel reimbursement per night", &["engineering"], 3)?;
//! assert_eq!(passages[0].source, "policies");
//! assert!(passages.iter().all(|p| p.source != "hr")); // not readable by `engineering`
//!
//! // Added to the system message; the model cites [1], [2], ...
//! let context = format_context(&passages);
//! assert!(context.contains("[1] policies/travel.md § Travel policy > Hotels"));
//! # Ok(()) }
//! ```
//!
//! # What is indexed
//!
//! Files ending in `.md`/`.markdown`, `.txt`/`.text` and `.html`/`.htm`/`.xhtml`, found
//! recursively below each source's folder; hidden entries and symbolic links are not
//! followed. Documents are split into passages at headings and paragraphs (at most
//! [`Limits::max_passage_bytes`] each); every passage keeps its source, document, heading
//! path and the byte range of the document it came from. Files over
//! [`Limits::max_file_bytes`], binary files, non-UTF-8 files and empty files are skipped
//! and reported in [`BuildReport::warnings`]; nothing in a document can make a build
//! fail or panic.
//!
//! # Access
//!
//! A [`Source`] without groups is readable by every caller. A source with groups is
//! readable only by callers in at least one of them. [`GroundingIndex::retrieve`] never
//! returns a passage of a source the caller's groups cannot read.
//!
//! [tantivy]: https://docs.rs/tantivy

mod build;
mod collect;
mod context;
mod error;
pub mod extract;
mod index;
mod schema;
mod source;
pub mod split;

pub use build::{BuildReport, IndexBuilder, Limits, Progress, Warning, WarningKind};
pub use context::{CONTEXT_PREAMBLE, format_context};
pub use error::GroundError;
pub use index::{GroundingIndex, MAX_K, Passage};
pub use source::Source;
