//! The CoSAI AI Shared Responsibility Framework 1.0 catalog: every cell read from the source.
//! The expectations below are written from the framework's Section 3 figure, §3.2.1 and A.2
//! (see the catalog header), not from demarc's output.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use demarc_model::CheckedCatalog;
use demarc_model::catalog::{Basis, Owner, Side};

fn cosai() -> CheckedCatalog {
    match CheckedCatalog::builtin("cosai-srf-1.0") {
        Some(Ok(c)) => c,
        Some(Err(d)) => panic!("cosai-srf-1.0 does not load:\n{d}"),
        None => panic!("cosai-srf-1.0 is not built in"),
    }
}

#[test]
fn every_builtin_catalog_loads_without_warnings() {
    for id in CheckedCatalog::builtin_ids() {
        let c = match CheckedCatalog::builtin(id) {
            Some(Ok(c)) => c,
            Some(Err(d)) => panic!("{id} does not load:\n{d}"),
            None => panic!("{id} listed but not built in"),
        };
        assert!(c.warnings().is_empty(), "{id}:\n{}", c.warnings());
    }
}
