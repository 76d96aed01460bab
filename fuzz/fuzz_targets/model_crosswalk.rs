//! Crosswalk loading on arbitrary bytes, against the seed and CoSAI catalogs: never a panic;
//! every problem located inside the file.
#![no_main]

use std::sync::OnceLock;

use demarc_model::CheckedCatalog;
use demarc_model::crosswalk::CheckedCrosswalk;
use libfuzzer_sys::fuzz_target;

fn catalogs() -> &'static (CheckedCatalog, CheckedCatalog) {
    static CATALOGS: OnceLock<(CheckedCatalog, CheckedCatalog)> = OnceLock::new();
    CATALOGS.get_or_init(|| {
        let load = |id: &str| match CheckedCatalog::builtin(id) {
            Some(Ok(c)) => c,
            _ => std::process::abort(),
        };
        (load("csa-genai-2023"), load("cosai-srf-1.0"))
    })
}

fuzz_target!(|data: &[u8]| {
    let (a, b) = catalogs();
    if let Err(diagnostics) = CheckedCrosswalk::from_bytes("fuzz.yaml", data, a, b) {
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
