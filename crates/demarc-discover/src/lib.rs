//! demarc-discover: find the GenAI services people use, from the logs an organisation
//! already keeps (Zeek, Squid, DNS resolver and secure-web-gateway logs).
//!
//! - [`catalog`]: the GenAI service catalog (compiled in, user-extendable) and risk scores.
//! - [`matcher`]: host -> service by hash lookups on domain-label suffixes.
//! - [`formats`]: format detection and one byte-level parser per log format.
//! - [`input`]: files, stdin, globs, gzip and zstd.
//! - [`scan`]: the streaming, multi-threaded scan with per-thread aggregates.
//! - [`report`]: classification against the estate and the stable report.
//! - [`loggen`]: a reproducible log generator with known ground truth.

pub mod catalog;
pub mod formats;
pub mod input;
pub mod loggen;
pub mod matcher;
pub mod report;
pub mod scan;
pub mod time;

pub use catalog::{BadPattern, Catalog, CatalogError};
pub use formats::{FieldMap, Format, MappingError};
pub use input::Input;
pub use report::{AppStatus, KnownApplication, Report, Status};
pub use scan::{Progress, ScanOptions, ScanResult, scan};
