//! User GenAI service catalogs: loading arbitrary text extends or rejects, never panics.
#![no_main]
use demarc_discover::Catalog;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(catalog) = Catalog::builtin_with(&[("fuzz.yaml", text)]) {
            for i in 0..catalog.services().len() {
                let _ = catalog.risk_score(i);
            }
        }
    }
});
