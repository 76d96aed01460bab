//! Catalog loading on arbitrary bytes: never a panic; every problem located inside the file.
#![no_main]

use demarc_model::CheckedCatalog;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(diagnostics) = CheckedCatalog::from_bytes("fuzz.yaml", data) {
        assert!(diagnostics.has_errors());
        let lines = data.iter().filter(|b| **b == b'\n').count() + 1;
        for d in &diagnostics.items {
            if let Some(l) = d.location {
                assert!(
                    l.line >= 1 && l.line <= lines && l.column >= 1,
                    "{d:?} outside {lines} lines"
                );
            }
        }
        let _ = diagnostics.to_string();
    }
});
