//! The resolution rule for applications made of several components.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use demarc_model::resolve::{Party, SupplyRule, resolve_application};
use demarc_model::whatif::{Change, what_if};
use demarc_model::{CheckedCatalog, CheckedEstate};

const ESTATE: &str = r#"format: 1
organisation: {name: T}
teams: [{id: ml, name: ML, contact: ml@example.com}, {id: data, name: Data, contact: d@example.com}]
providers: [{id: aws, name: AWS}, {id: azure, name: Azure}, {id: pinecone, name: Pinecone}]
applications:
  - id: rag
    name: Retrieval app
    owner: ml
    data_classification: confidential
    status: sanctioned
    components:
      - {id: app, kind: application, service_model: paas, provider: azure}
      - {id: llm, kind: model, service_model: iaas, provider: aws}
      - {id: gpus, kind: platform, service_model: paas, provider: azure}
      - {id: store, kind: data-source, service_model: saas, provider: pinecone, supplies: [governance]}
    duties: {default: ml, areas: {grounding: data}}
"#;

fn load() -> (CheckedCatalog, CheckedEstate) {
    let catalog = CheckedCatalog::default_catalog().unwrap();
    let estate = CheckedEstate::from_bytes("t.yaml", ESTATE.as_bytes(), &catalog)
        .unwrap()
        .estate;
    (catalog, estate)
}

#[test]
fn each_layer_resolves_from_the_component_that_supplies_it() {
    let (catalog, estate) = load();
    let app = estate.application("rag").unwrap();
    let duties = resolve_application(app, &catalog);
    let by_area = |id: &str| duties.iter().find(|d| d.area.id == id);

    // infrastructure: platform beats model in the layer's `supplied_by` list.
    let infra = by_area("infrastructure").unwrap();
    assert_eq!(
        (infra.component.id.as_str(), infra.rule),
        ("gpus", SupplyRule::KindPriority)
    );
    assert_eq!(infra.accountable, Party::Provider { id: "azure".into() });
    // model layer: the IaaS model component, so hosting is the customer's (team ml).
    let hosting = by_area("model-hosting").unwrap();
    assert_eq!(hosting.component.id, "llm");
    assert_eq!(
        hosting.accountable,
        Party::Team {
            id: Some("ml".into())
        }
    );
    // context: the data-source component (SaaS) supplies grounding: provider's.
    let grounding = by_area("grounding").unwrap();
    assert_eq!(grounding.component.id, "store");
    assert_eq!(
        grounding.accountable,
        Party::Provider {
            id: "pinecone".into()
        }
    );
    assert!(!grounding.customer_involved);
    // application layer: the PaaS application component; shared with the customer leading.
    let pf = by_area("prompt-filtering").unwrap();
    assert_eq!(pf.component.id, "app");
    assert_eq!(
        pf.accountable,
        Party::Team {
            id: Some("ml".into())
        }
    );
    assert_eq!(
        pf.also_responsible,
        vec![Party::Provider { id: "azure".into() }]
    );
    // governance: `supplies` overrides the kind order.
    let gov = by_area("usage-governance").unwrap();
    assert_eq!(
        (gov.component.id.as_str(), gov.rule),
        ("store", SupplyRule::Explicit)
    );
    // Exactly one accountable party for every applicable area.
    assert_eq!(duties.len(), catalog.areas().len());
}

#[test]
fn what_if_on_one_component_moves_only_its_layers() {
    let (catalog, estate) = load();
    let change = Change {
        service_model: "paas".into(),
        provider: Some("azure".into()),
        component: Some("llm".into()),
    };
    let options =
        demarc_model::assess::AssessOptions::new(demarc_model::Date::from_ymd(2026, 6, 1).unwrap());
    let result = what_if(&estate, &catalog, "rag", &change, &options).unwrap();
    let moved: Vec<&str> = result
        .areas
        .iter()
        .filter(|a| a.moved)
        .map(|a| a.area.as_str())
        .collect();
    assert_eq!(
        moved,
        [
            "foundation-model",
            "model-selection-lineage",
            "model-training-tuning",
            "training-data",
            "model-hosting"
        ]
    );
    let unknown = Change {
        service_model: "paas".into(),
        provider: None,
        component: Some("lm".into()),
    };
    let err = what_if(&estate, &catalog, "rag", &unknown, &options)
        .unwrap_err()
        .to_string();
    assert!(err.contains("did you mean `llm`?"), "{err}");
}
