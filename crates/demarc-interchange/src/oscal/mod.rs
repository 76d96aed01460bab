//! OSCAL 1.2.1 (JSON): catalogs, component definitions, system security plans and
//! assessment results.

pub mod catalog;
pub mod export;
pub mod import;
mod model;

pub use model::{DEMARC_NS, OSCAL_VERSION};
