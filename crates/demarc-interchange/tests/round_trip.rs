//! Round trip on generated estates: export -> import gives back the same responsibilities
//! (OSCAL SSP: per application, component and area the owner, lead and team resolution
//! gives) and the same lineage (CycloneDX: base model, datasets, notes, hash).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use demarc_interchange::cyclonedx::{self, SpecVersion};
use demarc_interchange::oscal::export::EstateExport;
use demarc_interchange::oscal::import::{self, ImportedDuty};
use demarc_model::resolve::resolve_application;
use demarc_model::{CheckedCatalog, CheckedEstate, Date};
use proptest::prelude::*;
use serde_json::{Value, json};

const KINDS: [&str; 6] = [
    "model",
    "platform",
    "application",
    "data-source",
    "plugin",
    "agent",
];
const SERVICE_MODELS: [&str; 3] = ["iaas", "paas", "saas"];
const TEAMS: [&str; 3] = ["ml", "platform", "7-security"];

fn lineage() -> impl Strategy<Value = Value> {
    (
        "[A-Za-z][A-Za-z0-9/._ -]{0,20}",
        proptest::collection::vec("[a-z][a-z0-9 ,()-]{0,15}", 0..3),
        proptest::option::of("[A-Za-z][A-Za-z .;\n]{0,30}"),
        proptest::option::of("[0-9a-f]{64}"),
    )
        .prop_map(|(base, datasets, notes, sha)| {
            let mut m = json!({"base_model": base, "tuning_datasets": datasets});
            if let Some(n) = notes {
                m["lineage"] = json!(n);
            }
            if let Some(s) = sha {
                m["sha256"] = json!(s);
            }
            m
        })
}

fn component() -> impl Strategy<Value = Value> {
    (
        0..KINDS.len(),
        0..SERVICE_MODELS.len(),
        0..2usize,
        proptest::option::of(lineage()),
        any::<bool>(),
    )
        .prop_map(|(k, sm, provider, model, offering)| {
            let provider = ["acme", "9-cloud"][provider];
            let mut c = json!({
                "kind": KINDS[k],
                "service_model": SERVICE_MODELS[sm],
                "provider": provider,
            });
            if offering {
                c["offering"] = json!(format!("{}-offer", SERVICE_MODELS[sm]));
            }
            if KINDS[k] == "model"
                && let Some(m) = model
            {
                c["model"] = m;
            }
            c
        })
}

fn application() -> impl Strategy<Value = Value> {
    (
        proptest::collection::vec(component(), 1..4),
        0..TEAMS.len(),
        proptest::option::of(0..TEAMS.len()),
        proptest::collection::btree_map(
            prop_oneof![Just("prompt-filtering"), Just("model-selection-lineage"), Just("grounding")],
            0..TEAMS.len(),
            0..3,
        ),
    )
        .prop_map(|(components, owner, default, areas)| {
            let components: Vec<Value> = components
                .into_iter()
                .enumerate()
                .map(|(i, mut c)| {
                    c["id"] = json!(format!("c{i}"));
                    c
                })
                .collect();
            let mut duties = json!({
                "areas": areas.into_iter().map(|(a, t)| (a.to_string(), json!(TEAMS[t]))).collect::<serde_json::Map<_, _>>()
            });
            if let Some(d) = default {
                duties["default"] = json!(TEAMS[d]);
            }
            json!({
                "name": "Generated application",
                "owner": TEAMS[owner],
                "data_classification": "internal",
                "status": "sanctioned",
                "components": components,
                "duties": duties,
            })
        })
}

fn estate() -> impl Strategy<Value = Value> {
    proptest::collection::vec(application(), 1..4).prop_map(|apps| {
        let apps: Vec<Value> = apps
            .into_iter()
            .enumerate()
            .map(|(i, mut a)| {
                a["id"] = json!(format!("app-{i}"));
                a
            })
            .collect();
        let offerings = |_: &str| {
            SERVICE_MODELS
                .iter()
                .map(|sm| json!({"id": format!("{sm}-offer"), "name": format!("{sm} offering"), "service_model": sm}))
                .collect::<Vec<_>>()
        };
        json!({
            "format": 1,
            "organisation": {"name": "Generated Ltd"},
            "teams": TEAMS.iter().map(|t| json!({"id": t, "name": format!("Team {t}"), "contact": "team@example.com"})).collect::<Vec<_>>(),
            "providers": [
                {"id": "acme", "name": "Acme AI", "offerings": offerings("acme")},
                {"id": "9-cloud", "name": "Nine Cloud", "offerings": offerings("9-cloud")},
            ],
            "applications": apps,
        })
    })
}

fn day() -> Date {
    "2026-11-26".parse().unwrap()
}

fn check(catalog_id: &str, doc: &Value) -> Result<(CheckedCatalog, CheckedEstate), TestCaseError> {
    let catalog = CheckedCatalog::builtin(catalog_id).unwrap().unwrap();
    let bytes = serde_json::to_vec(doc).unwrap();
    let checked = CheckedEstate::from_bytes("generated.json", &bytes, &catalog);
    prop_assume!(
        checked.is_ok(),
        "generated estate does not load: {:?}",
        checked.err()
    );
    Ok((catalog, checked.unwrap().estate))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn oscal_ssp_round_trips_the_responsibilities(
        doc in estate(),
        catalog_id in prop_oneof![Just("csa-genai-2023"), Just("cosai-srf-1.0"), Just("microsoft-ai-srm")],
    ) {
        let (catalog, estate) = check(catalog_id, &doc)?;
        let ssp = serde_json::to_vec(&EstateExport::new(&estate, &catalog, day()).ssp()).unwrap();
        let read = import::read(&ssp, &catalog).unwrap();
        let mut expected: Vec<ImportedDuty> = estate
            .applications()
            .iter()
            .flat_map(|app| {
                resolve_application(app, &catalog).into_iter().map(|d| ImportedDuty {
                    application: app.id.clone(),
                    component: d.component.id.clone(),
                    area: d.area.id.clone(),
                    owner: d.owner.as_str(),
                    lead: d.lead.map(|l| l.as_str()),
                    team: d.team.map(|(t, _)| t.to_string()),
                })
            })
            .collect();
        expected.sort();
        prop_assert_eq!(read.duties(), expected);
        // The provider's exports agree with the catalog, except where the estate's `owners`
        // resolve a model-dependent cell.
        for a in read.compare(&catalog, None) {
            prop_assert!(
                a.verdict == "agrees" || a.catalog.as_deref() == Some("model-dependent"),
                "{:?}", a
            );
        }
    }

    #[test]
    fn cyclonedx_round_trips_the_lineage(doc in estate(), spec in 0..3usize) {
        let (_, estate) = check("csa-genai-2023", &doc)?;
        let spec = [SpecVersion::V1_5, SpecVersion::V1_6, SpecVersion::V1_7][spec];
        let bom = cyclonedx::export(&estate, None, spec, day()).unwrap();
        let read = cyclonedx::import(&serde_json::to_vec(&bom).unwrap()).unwrap();
        let checks = cyclonedx::check(&read, &estate);
        let mut models = 0;
        for app in estate.applications() {
            for c in app.components.iter().filter(|c| c.kind.as_str() == "model") {
                models += 1;
                let i = read
                    .models
                    .iter()
                    .position(|m| m.application.as_deref() == Some(app.id.as_str()) && m.component.as_deref() == Some(c.id.as_str()))
                    .unwrap();
                let (m, ch) = (&read.models[i], &checks[i]);
                prop_assert!(ch.differences.is_empty() && ch.fills.is_empty(), "{:?}", ch);
                match &c.model {
                    Some(l) => {
                        prop_assert_eq!(m.base_model.as_ref(), Some(&l.base_model));
                        prop_assert_eq!(&m.datasets, &l.tuning_datasets);
                        prop_assert_eq!(&m.lineage, &l.lineage);
                        prop_assert_eq!(&m.sha256, &l.sha256);
                        prop_assert_eq!(ch.hash, if l.sha256.is_some() { "match" } else { "none" });
                    }
                    None => prop_assert!(m.base_model.is_none() && m.datasets.is_empty()),
                }
            }
        }
        prop_assert_eq!(read.models.len(), models);
    }
}
