//! Every exported document validates against the official JSON schemas in
//! `tests/fixtures/schemas/` (OSCAL 1.2.1, CycloneDX 1.5–1.7; copies of the workplace's
//! `../shared/schemas`), and exports are deterministic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use demarc_interchange::cyclonedx::{self, SpecVersion};
use demarc_interchange::oscal::{catalog, export::EstateExport};
use demarc_model::assess::{AssessOptions, assess};
use demarc_model::{CheckedCatalog, CheckedEstate, Date};
use serde_json::Value;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn schemas() -> PathBuf {
    repo().join("crates/demarc-interchange/tests/fixtures/schemas")
}

fn read_json(path: PathBuf) -> Value {
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// Validate `doc` against a schema file; panic with every error and its path.
fn validate(schema_file: &str, doc: &Value) {
    let errors = errors(schema_file, doc);
    assert!(errors.is_empty(), "{schema_file}:\n{}", errors.join("\n"));
}

fn errors(schema_file: &str, doc: &Value) -> Vec<String> {
    let dir = if schema_file.starts_with("oscal") {
        "oscal"
    } else {
        "cyclonedx"
    };
    let schema = read_json(schemas().join(dir).join(schema_file));
    let registry = jsonschema::Registry::new()
        .add(
            "http://cyclonedx.org/schema/spdx.schema.json",
            read_json(schemas().join("cyclonedx/spdx.schema.json")),
        )
        .unwrap()
        .add(
            "http://cyclonedx.org/schema/jsf-0.82.schema.json",
            read_json(schemas().join("cyclonedx/jsf-0.82.schema.json")),
        )
        .unwrap()
        .add(
            "http://cyclonedx.org/schema/cryptography-defs.schema.json",
            read_json(schemas().join("cyclonedx/cryptography-defs.schema.json")),
        )
        .unwrap()
        .prepare()
        .unwrap();
    let validator = jsonschema::options()
        .with_registry(&registry)
        .should_validate_formats(true)
        .build(&schema)
        .unwrap_or_else(|e| panic!("{schema_file}: {e}"));
    let errors: Vec<String> = validator
        .iter_errors(doc)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .take(20)
        .collect();
    errors
}

#[test]
fn the_validator_rejects_broken_documents() {
    let (catalog, estate) = bank();
    let mut doc = serde_json::to_value(EstateExport::new(&estate, &catalog, day()).ssp()).unwrap();
    doc["system-security-plan"]["metadata"]["last-modified"] = "yesterday".into();
    assert!(!errors("oscal_ssp_schema.json", &doc).is_empty());
    let mut bom = cyclonedx::export(&estate, None, SpecVersion::V1_6, day()).unwrap();
    bom["components"][0]["type"] = "model".into();
    assert!(!errors("bom-1.6.schema.json", &bom).is_empty());
}

fn bank() -> (CheckedCatalog, CheckedEstate) {
    let catalog = CheckedCatalog::default_catalog().unwrap();
    let path = repo().join("examples/bank-estate.yaml");
    let bytes = std::fs::read(&path).unwrap();
    let estate = CheckedEstate::from_bytes("bank-estate.yaml", &bytes, &catalog)
        .unwrap()
        .estate;
    (catalog, estate)
}

fn day() -> Date {
    "2026-11-26".parse().unwrap()
}

#[test]
fn every_builtin_catalog_exports_a_valid_oscal_catalog() {
    for id in CheckedCatalog::builtin_ids() {
        let c = CheckedCatalog::builtin(id).unwrap().unwrap();
        let doc = serde_json::to_value(catalog::catalog(&c)).unwrap();
        validate("oscal_catalog_schema.json", &doc);
        let controls: usize = doc["catalog"]["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["controls"].as_array().map_or(0, Vec::len))
            .sum();
        assert_eq!(controls, c.areas().len(), "{id}: one control per area");
    }
}

#[test]
fn bank_estate_exports_valid_component_definition_ssp_and_assessment_results() {
    let (catalog, estate) = bank();
    let x = EstateExport::new(&estate, &catalog, day());
    let cd = serde_json::to_value(x.component_definition()).unwrap();
    validate("oscal_component_schema.json", &cd);
    let ssp = serde_json::to_value(x.ssp()).unwrap();
    validate("oscal_ssp_schema.json", &ssp);
    let report = assess(&estate, &catalog, &AssessOptions::new(day()));
    let ar = serde_json::to_value(x.assessment_results(&report, None)).unwrap();
    validate("oscal_assessment-results_schema.json", &ar);
    let recorded = x.assessment_results(&report, Some((7, "2026-11-26T09:30:00Z".into())));
    validate(
        "oscal_assessment-results_schema.json",
        &serde_json::to_value(recorded).unwrap(),
    );

    // Inherited statements point at a provided UUID exported in the same SSP; satisfied ones
    // at a responsibility, with the owning team as responsible role.
    let text = ssp.to_string();
    let mut inherited = 0;
    for r in ssp["system-security-plan"]["control-implementation"]["implemented-requirements"]
        .as_array()
        .unwrap()
    {
        for b in r["by-components"].as_array().unwrap() {
            for i in b["inherited"].as_array().into_iter().flatten() {
                let p = i["provided-uuid"].as_str().unwrap();
                assert!(text.matches(p).count() >= 2, "{p} is provided");
                inherited += 1;
            }
        }
    }
    assert!(inherited > 10);
    assert!(text.contains("\"role-id\":\"model-risk\""));
    assert!(text.contains("MRM-2026-044"), "evidence links");
    assert!(ar.to_string().contains("\"findings\""));
}

#[test]
fn cyclonedx_exports_validate_for_every_spec_version() {
    let (_, estate) = bank();
    for (spec, file) in [
        (SpecVersion::V1_5, "bom-1.5.schema.json"),
        (SpecVersion::V1_6, "bom-1.6.schema.json"),
        (SpecVersion::V1_7, "bom-1.7.schema.json"),
    ] {
        let bom = cyclonedx::export(&estate, None, spec, day()).unwrap();
        validate(file, &bom);
        assert_eq!(bom["specVersion"], spec.as_str());
        let one = cyclonedx::export(&estate, Some("complaints-llm"), spec, day()).unwrap();
        validate(file, &one);
        let text = one.to_string();
        assert!(text.contains("mistralai/Mistral-7B-Instruct-v0.3"));
        assert!(text.contains("\"type\":\"data\""));
    }
    assert!(cyclonedx::export(&estate, Some("no-such-app"), SpecVersion::V1_6, day()).is_none());
}

#[test]
fn exports_are_byte_identical_across_runs() {
    let (catalog, estate) = bank();
    let render = || {
        let x = EstateExport::new(&estate, &catalog, day());
        let report = assess(&estate, &catalog, &AssessOptions::new(day()));
        [
            serde_json::to_string_pretty(&catalog::catalog(&catalog)).unwrap(),
            serde_json::to_string_pretty(&x.component_definition()).unwrap(),
            serde_json::to_string_pretty(&x.ssp()).unwrap(),
            serde_json::to_string_pretty(&x.assessment_results(&report, None)).unwrap(),
            serde_json::to_string_pretty(
                &cyclonedx::export(&estate, None, SpecVersion::V1_6, day()).unwrap(),
            )
            .unwrap(),
        ]
    };
    assert_eq!(render(), render());
}
