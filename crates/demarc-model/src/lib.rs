//! demarc's domain: responsibility catalogs, the estate file, resolution and assessment.
//!
//! Pure logic: parsing from text, no file system, network, database or async runtime.
//!
//! ```
//! use demarc_model::{CheckedCatalog, CheckedEstate, assess::{assess, AssessOptions}, Date};
//! let catalog = CheckedCatalog::default_catalog().unwrap();
//! let yaml = br#"
//! format: 1
//! organisation: {name: Example}
//! teams: [{id: platform, name: Platform, contact: platform@example.com}]
//! providers: [{id: azure, name: Microsoft Azure}]
//! applications:
//!   - id: assistant
//!     name: Internal assistant
//!     owner: platform
//!     data_classification: internal
//!     status: sanctioned
//!     components: [{id: llm, kind: model, service_model: paas, provider: azure}]
//!     duties: {default: platform}
//! "#;
//! let checked = CheckedEstate::from_bytes("estate.yaml", yaml, &catalog).unwrap();
//! let today: Date = "2026-01-01".parse().unwrap();
//! let report = assess(&checked.estate, &catalog, &AssessOptions::new(today));
//! assert_eq!(report.summary.applications, 1);
//! assert!(report.summary.gaps > 0); // no controls, no evidence yet
//! ```

pub mod assess;
pub mod catalog;
pub mod compare;
pub mod crosswalk;
pub mod date;
pub mod diag;
pub mod estate;
pub mod observe;
pub mod parse;
pub mod resolve;
pub mod schema;
pub mod whatif;

pub use catalog::{Catalog, CheckedCatalog};
pub use date::Date;
pub use diag::{Diagnostic, Diagnostics, Severity};
pub use estate::{CheckedEstate, Estate};
pub use observe::ObservationKind;
