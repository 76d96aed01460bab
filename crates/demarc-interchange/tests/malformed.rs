//! Import of damaged documents: demarc's own exports with values replaced at random places
//! (wrong types, nulls, empty arrays and objects) and cut short. Never a panic; an error
//! always names a JSON path in the document.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use demarc_interchange::cyclonedx::{self, SpecVersion};
use demarc_interchange::oscal::{export::EstateExport, import};
use demarc_model::{CheckedCatalog, CheckedEstate, Date};
use proptest::prelude::*;
use serde_json::{Value, json};

fn documents() -> &'static (CheckedCatalog, Vec<Value>) {
    static DOCS: std::sync::OnceLock<(CheckedCatalog, Vec<Value>)> = std::sync::OnceLock::new();
    DOCS.get_or_init(|| {
        let catalog = CheckedCatalog::default_catalog().unwrap();
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../examples/bank-estate.yaml"
        );
        let estate =
            CheckedEstate::from_bytes("bank.yaml", &std::fs::read(path).unwrap(), &catalog)
                .unwrap()
                .estate;
        let date: Date = "2026-11-26".parse().unwrap();
        let x = EstateExport::new(&estate, &catalog, date);
        let docs = vec![
            serde_json::to_value(x.ssp()).unwrap(),
            serde_json::to_value(x.component_definition()).unwrap(),
            cyclonedx::export(&estate, None, SpecVersion::V1_6, date).unwrap(),
        ];
        (catalog, docs)
    })
}

/// The JSON pointer of every node of `v`, in document order.
fn nodes(v: &Value, at: &str, out: &mut Vec<String>) {
    out.push(at.to_string());
    match v {
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                nodes(x, &format!("{at}/{i}"), out);
            }
        }
        Value::Object(o) => {
            for (k, x) in o {
                nodes(
                    x,
                    &format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                    out,
                );
            }
        }
        _ => {}
    }
}

fn replacement() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        Just(json!(7)),
        Just(json!(true)),
        Just(json!("")),
        Just(json!([])),
        Just(json!({})),
        Just(json!([1, "x"])),
        Just(json!({"type": 3})),
    ]
}

fn import_any(bytes: &[u8], catalog: &CheckedCatalog) {
    if let Err(e) = import::read(bytes, catalog) {
        assert!(e.path.starts_with('$'), "{e}");
    }
    if let Err(e) = cyclonedx::import(bytes) {
        assert!(e.path.starts_with('$'), "{e}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn damaged_documents_never_panic(
        which in 0..3usize,
        picks in proptest::collection::vec((any::<prop::sample::Index>(), replacement()), 1..4),
        cut in proptest::option::of(any::<prop::sample::Index>()),
    ) {
        let (catalog, docs) = documents();
        let mut doc = docs[which].clone();
        for (index, value) in picks {
            let mut all = Vec::new();
            nodes(&doc, "", &mut all);
            let pointer = &all[index.index(all.len())];
            if let Some(target) = doc.pointer_mut(pointer) {
                *target = value;
            }
        }
        let mut bytes = serde_json::to_vec(&doc).unwrap();
        if let Some(c) = cut {
            bytes.truncate(c.index(bytes.len()));
        }
        import_any(&bytes, catalog);
    }
}
