//! Estate loading on arbitrary bytes: never a panic; every problem located inside the file.
#![no_main]

use std::sync::OnceLock;

use demarc_model::{CheckedCatalog, CheckedEstate, Diagnostics};
use libfuzzer_sys::fuzz_target;

fn catalog() -> &'static CheckedCatalog {
    static CATALOG: OnceLock<CheckedCatalog> = OnceLock::new();
    CATALOG.get_or_init(|| CheckedCatalog::default_catalog().expect("the seed catalog loads"))
}

fn check_locations(data: &[u8], diagnostics: &Diagnostics) {
    let lines = data.iter().filter(|b| **b == b'\n').count() + 1;
    for d in &diagnostics.items {
        if let Some(l) = d.location {
            assert!(
                l.line >= 1 && l.line <= lines && l.column >= 1,
                "{d:?} outside {lines} lines"
            );
        }
    }
}

fuzz_target!(|data: &[u8]| {
    match CheckedEstate::from_bytes("fuzz.yaml", data, catalog()) {
        Ok(checked) => check_locations(data, &checked.warnings),
        Err(diagnostics) => {
            assert!(diagnostics.has_errors());
            check_locations(data, &diagnostics);
            // Rendering must not panic either.
            let _ = diagnostics.to_string();
        }
    }
});
