//! Interchange: demarc's catalogs and estates as OSCAL (NIST) and CycloneDX ML-BOM
//! documents, and those documents read back.
//!
//! - [`oscal::catalog`]: a responsibility catalog as an OSCAL catalog (areas as controls,
//!   grouped by layer; one parameter and one set of properties per cell).
//! - [`oscal::export`]: an estate as an OSCAL component definition (one component per
//!   provider offering), a system security plan (`export` / `inherited` / `satisfied` per
//!   area) and assessment results (observations from evidence, findings for gaps).
//! - [`oscal::import`]: a provider's component definition or SSP, compared cell by cell
//!   with a catalog; demarc's own SSP read back into responsibilities.
//! - [`cyclonedx`]: model components as a CycloneDX ML-BOM (1.5, 1.6, 1.7) and back.
//!
//! Pure: values in, values out; no file system. UUIDs are name-based (version 5), so the
//! same input gives byte-identical documents. Import never panics on malformed input; its
//! errors name the JSON path in the document.

pub mod cyclonedx;
mod error;
mod ids;
pub mod oscal;

pub use error::ImportError;
