//! CycloneDX import on arbitrary bytes, checked against a small estate: never a panic; every
//! error names a JSON path from `$`.
#![no_main]

use std::sync::OnceLock;

use demarc_interchange::cyclonedx;
use demarc_model::{CheckedCatalog, CheckedEstate};
use libfuzzer_sys::fuzz_target;

const ESTATE: &[u8] = br#"
format: 1
organisation: {name: Fuzz}
teams: [{id: ml, name: ML, contact: ml@example.com}]
providers: [{id: hf, name: Hugging Face}]
applications:
  - id: app
    name: App
    owner: ml
    data_classification: internal
    status: sanctioned
    components:
      - id: llm
        kind: model
        service_model: iaas
        provider: hf
        model: {base_model: base/model, tuning_datasets: [d1], sha256: "0000000000000000000000000000000000000000000000000000000000000000"}
"#;

fn estate() -> &'static CheckedEstate {
    static ESTATE_CHECKED: OnceLock<CheckedEstate> = OnceLock::new();
    ESTATE_CHECKED.get_or_init(|| {
        let Ok(catalog) = CheckedCatalog::default_catalog() else {
            std::process::abort()
        };
        match CheckedEstate::from_bytes("fuzz.yaml", ESTATE, &catalog) {
            Ok(c) => c.estate,
            Err(_) => std::process::abort(),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    match cyclonedx::import(data) {
        Ok(bom) => {
            let _ = cyclonedx::check(&bom, estate());
        }
        Err(e) => assert!(e.path.starts_with('$'), "{e}"),
    }
});
