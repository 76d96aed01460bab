//! OSCAL import on arbitrary bytes: never a panic; every error names a JSON path from `$`.
#![no_main]

use std::sync::OnceLock;

use demarc_interchange::oscal::import;
use demarc_model::CheckedCatalog;
use libfuzzer_sys::fuzz_target;

fn catalog() -> &'static CheckedCatalog {
    static CATALOG: OnceLock<CheckedCatalog> = OnceLock::new();
    CATALOG.get_or_init(|| match CheckedCatalog::default_catalog() {
        Ok(c) => c,
        Err(_) => std::process::abort(),
    })
}

fuzz_target!(|data: &[u8]| {
    match import::read(data, catalog()) {
        Ok(doc) => {
            let _ = doc.compare(catalog(), Some("paas"));
            let _ = doc.duties();
        }
        Err(e) => assert!(e.path.starts_with('$'), "{e}"),
    }
});
