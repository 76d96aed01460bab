//! The Microsoft AI shared responsibility model and the AWS Generative AI Security Scoping
//! Matrix catalogs: each inferred or disputed cell, and how estate service models map onto
//! them. Expectations are written from the sources (see the catalog headers), not from output.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use demarc_model::CheckedCatalog;
use demarc_model::catalog::{Basis, ComponentKind, Owner, Side};

const MICROSOFT: &str = include_str!("../catalogs/microsoft-ai-srm.yaml");
const AWS: &str = include_str!("../catalogs/aws-genai-scoping.yaml");

fn load(name: &str, text: &str) -> CheckedCatalog {
    match CheckedCatalog::from_bytes(name, text.as_bytes()) {
        Ok(c) => c,
        Err(d) => panic!("{name} does not load:\n{d}"),
    }
}

fn microsoft() -> CheckedCatalog {
    load("microsoft-ai-srm.yaml", MICROSOFT)
}

fn aws() -> CheckedCatalog {
    load("aws-genai-scoping.yaml", AWS)
}

/// Owner, lead and basis of one cell.
fn cell(catalog: &CheckedCatalog, area: &str, sm: &str) -> (Owner, Option<Side>, Basis) {
    let a = catalog
        .area(area)
        .unwrap_or_else(|| panic!("{}: area {area} missing", catalog.id()));
    let c = catalog
        .cell(a, sm)
        .unwrap_or_else(|| panic!("{}: cell {area} x {sm} missing", catalog.id()));
    (c.owner, c.lead, c.basis)
}

/// One test per cell: `name: catalog, area, service model => owner, lead, basis;`
macro_rules! cells {
    ($($name:ident: $cat:ident, $area:literal, $sm:literal => $owner:ident, $lead:expr, $basis:ident;)*) => {
        $(
            #[test]
            fn $name() {
                assert_eq!(
                    cell(&$cat(), $area, $sm),
                    (Owner::$owner, $lead, Basis::$basis),
                    "{} x {}",
                    $area,
                    $sm
                );
            }
        )*
        /// Every cell that is not `stated` has a test above, and no other.
        const NOT_STATED: &[(&str, &str, &str)] = &[$((stringify!($cat), $area, $sm)),*];
    };
}

const C: Option<Side> = Some(Side::Customer);
const P: Option<Side> = Some(Side::Provider);
const NO: Option<Side> = None;

cells! {
    // --- Microsoft: the agent article's PaaS bullet says the customer owns "the agent's
    // identity and authorization" and its "memory design"; its own matrix marks the same rows
    // S (shared) for the PaaS agent. The always-retain list keeps agent identity and the
    // authorization of actions with the customer. Shared, customer leading, disputed.
    ms_agent_identity_paas_disputed: microsoft, "agent-identity", "paas" => Shared, C, Disputed;
    ms_per_action_authorization_paas_disputed: microsoft, "per-action-authorization", "paas" => Shared, C, Disputed;
    ms_agent_memory_paas_disputed: microsoft, "agent-memory-isolation", "paas" => Shared, C, Disputed;

    // --- AWS, scopes 1-2 ("buying"): the post says the customer neither owns nor sees the
    // model or its training data and cannot change it (scope 1), or uses a vendor's app with
    // the AI built in (scope 2); who owns the rest is implied, not stated.
    aws_application_access_s1: aws, "application-access", "scope-1" => Provider, NO, Inferred;
    aws_application_access_s2: aws, "application-access", "scope-2" => Shared, P, Inferred;
    // Prompt injection is named only as a threat of scopes 3-5.
    aws_prompt_injection_s1: aws, "prompt-injection-defence", "scope-1" => Provider, NO, Inferred;
    aws_prompt_injection_s2: aws, "prompt-injection-defence", "scope-2" => Provider, NO, Inferred;
    // Resilience, scopes 1-2: the customer checks the provider's availability and plans for
    // outages; the provider runs the service.
    aws_resilience_s1: aws, "resilience", "scope-1" => Shared, P, Inferred;
    aws_resilience_s2: aws, "resilience", "scope-2" => Shared, P, Inferred;
    // RAG and its authorisation filtering are described for the building scopes only.
    aws_grounding_s1: aws, "grounding-data-access", "scope-1" => NotApplicable, NO, Inferred;
    aws_grounding_s2: aws, "grounding-data-access", "scope-2" => Shared, C, Inferred;
    aws_model_s1: aws, "foundation-model", "scope-1" => Provider, NO, Inferred;
    aws_model_s2: aws, "foundation-model", "scope-2" => Provider, NO, Inferred;
    aws_pretraining_data_s1: aws, "pretraining-data", "scope-1" => Provider, NO, Inferred;
    aws_pretraining_data_s2: aws, "pretraining-data", "scope-2" => Provider, NO, Inferred;
    aws_tuning_data_s1: aws, "tuning-data", "scope-1" => NotApplicable, NO, Inferred;
    aws_tuning_data_s2: aws, "tuning-data", "scope-2" => NotApplicable, NO, Inferred;
    aws_model_access_s1: aws, "model-access", "scope-1" => Provider, NO, Inferred;
    aws_model_access_s2: aws, "model-access", "scope-2" => Provider, NO, Inferred;
    aws_model_hosting_s1: aws, "model-hosting", "scope-1" => Provider, NO, Inferred;
    aws_model_hosting_s2: aws, "model-hosting", "scope-2" => Provider, NO, Inferred;
    aws_infrastructure_s1: aws, "infrastructure", "scope-1" => Provider, NO, Inferred;
    aws_infrastructure_s2: aws, "infrastructure", "scope-2" => Provider, NO, Inferred;

    // --- AWS, scope 3: an existing third-party model used through an API, unchanged.
    aws_model_s3: aws, "foundation-model", "scope-3" => Provider, NO, Inferred;
    aws_pretraining_data_s3: aws, "pretraining-data", "scope-3" => Provider, NO, Inferred;
    // The governance part says data may train or tune the model in scopes 3-5; the scope
    // definition (and the controls part: models fixed at inference) says scope 3 does not
    // change the model. demarc follows the definition.
    aws_tuning_data_s3_disputed: aws, "tuning-data", "scope-3" => NotApplicable, NO, Disputed;
    aws_model_hosting_s3: aws, "model-hosting", "scope-3" => Provider, NO, Inferred;
    aws_infrastructure_s3: aws, "infrastructure", "scope-3" => Provider, NO, Inferred;

    // --- AWS, scope 4: a third-party base model tuned on the customer's data.
    aws_model_s4: aws, "foundation-model", "scope-4" => Shared, C, Inferred;
    aws_pretraining_data_s4: aws, "pretraining-data", "scope-4" => Provider, NO, Inferred;
    aws_model_hosting_s4: aws, "model-hosting", "scope-4" => Shared, P, Inferred;
    aws_infrastructure_s4: aws, "infrastructure", "scope-4" => Provider, NO, Inferred;

    // --- AWS, scope 5: the customer owns every aspect of the model; the post says nothing of
    // who runs its serving or the infrastructure beyond naming SageMaker.
    aws_model_hosting_s5: aws, "model-hosting", "scope-5" => Customer, NO, Inferred;
    aws_infrastructure_s5: aws, "infrastructure", "scope-5" => Shared, C, Inferred;
}

#[test]
fn every_inferred_or_disputed_cell_has_a_test() {
    for (name, catalog) in [("microsoft", microsoft()), ("aws", aws())] {
        let mut found = Vec::new();
        for area in catalog.areas() {
            for (sm, c) in &area.cells {
                if c.basis != Basis::Stated {
                    found.push((area.id.clone(), sm.clone()));
                }
            }
        }
        let mut expected: Vec<(String, String)> = NOT_STATED
            .iter()
            .filter(|(cat, _, _)| *cat == name)
            .map(|(_, a, s)| (a.to_string(), s.to_string()))
            .collect();
        found.sort();
        expected.sort();
        assert_eq!(
            found, expected,
            "{name}: inferred/disputed cells without a test"
        );
    }
}

#[test]
fn non_stated_notes_say_so() {
    for catalog in [microsoft(), aws()] {
        for area in catalog.areas() {
            for (sm, c) in &area.cells {
                match c.basis {
                    Basis::Inferred => assert!(
                        c.note.contains("demarc's reading")
                            && c.source.contains("demarc's reading"),
                        "{} {} x {sm}: an inferred cell says it is demarc's reading",
                        catalog.id(),
                        area.id
                    ),
                    Basis::Disputed => assert!(
                        c.source.contains("contrast"),
                        "{} {} x {sm}: a disputed cell cites both sides",
                        catalog.id(),
                        area.id
                    ),
                    Basis::Stated => {}
                }
            }
        }
    }
}

#[test]
fn both_load_without_warnings() {
    for catalog in [microsoft(), aws()] {
        assert!(
            catalog.warnings().is_empty(),
            "{}: {}",
            catalog.id(),
            catalog.warnings()
        );
    }
}

/// The diagram's "Model dependent" value: four AI platform items under PaaS, no other cell.
#[test]
fn microsoft_model_dependent_cells_are_the_diagrams() {
    let catalog = microsoft();
    let mut found = Vec::new();
    for area in catalog.areas() {
        for (sm, c) in &area.cells {
            if c.owner == Owner::ModelDependent {
                found.push(format!("{} x {sm}", area.id));
            }
        }
    }
    found.sort();
    assert_eq!(
        found,
        [
            "model-accountability x paas",
            "model-design x paas",
            "model-training-data x paas",
            "model-tuning x paas",
        ]
    );
}

fn mapped(catalog: &CheckedCatalog, estate_sm: &str, kind: ComponentKind) -> String {
    catalog
        .map_service_model(estate_sm, kind)
        .map(|(sm, _)| sm.id.clone())
        .unwrap_or_else(|| panic!("{}: {estate_sm} / {kind:?} maps nowhere", catalog.id()))
}

/// Microsoft's columns are the same three deployment models as the estate's.
#[test]
fn microsoft_maps_each_estate_service_model_to_itself() {
    let catalog = microsoft();
    for kind in ComponentKind::ALL {
        for sm in ["iaas", "paas", "saas"] {
            assert_eq!(mapped(&catalog, sm, kind), sm, "{sm} / {kind:?}");
        }
    }
}

/// SaaS is an enterprise app (scope 2; a consumer app, scope 1, only by override), PaaS a
/// pre-trained model through an API (scope 3; a tuned model, scope 4, only by override, since
/// kind alone cannot tell a tuned model), IaaS a self-trained model (scope 5).
#[test]
fn aws_maps_estate_service_models_to_scopes() {
    let catalog = aws();
    for kind in ComponentKind::ALL {
        assert_eq!(mapped(&catalog, "saas", kind), "scope-2", "saas / {kind:?}");
        assert_eq!(mapped(&catalog, "paas", kind), "scope-3", "paas / {kind:?}");
        assert_eq!(mapped(&catalog, "iaas", kind), "scope-5", "iaas / {kind:?}");
    }
    let note = catalog
        .map_service_model("paas", ComponentKind::Model)
        .and_then(|(_, m)| m)
        .map(|m| m.note.clone())
        .unwrap();
    assert!(
        note.contains("service_models: {aws-genai-scoping: scope-4}"),
        "the paas note tells how to mark a tuned model: {note}"
    );
    let ids: Vec<&str> = catalog
        .service_models()
        .iter()
        .map(|s| s.id.as_str())
        .collect();
    assert_eq!(ids, ["scope-1", "scope-2", "scope-3", "scope-4", "scope-5"]);
}

#[test]
fn both_are_built_in() {
    for id in ["microsoft-ai-srm", "aws-genai-scoping"] {
        let catalog = CheckedCatalog::builtin(id)
            .unwrap_or_else(|| panic!("{id} is not built in"))
            .unwrap_or_else(|d| panic!("{id} does not load:\n{d}"));
        assert_eq!(catalog.id(), id);
    }
}

/// The agent article's layers apply only to applications with an agent: in the bank example,
/// the payments exceptions agent has agent-orchestration duties, the applications without an
/// agent have none (before `only_with`, they got all 13 from their application component).
#[test]
fn microsoft_agent_layers_only_for_applications_with_an_agent() {
    use demarc_model::CheckedEstate;
    use demarc_model::resolve::resolve_application;

    let catalog = microsoft();
    let text = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/bank-estate.yaml"
    ))
    .unwrap();
    let checked = CheckedEstate::from_bytes("bank-estate.yaml", &text, &catalog)
        .unwrap_or_else(|d| panic!("bank estate under microsoft-ai-srm:\n{d}"));
    let agent_layers = ["agent-orchestration", "tools-actions", "agent-memory"];
    let (mut with_agent, mut without_agent) = (0, 0);
    for app in checked.estate.applications() {
        let has_agent = app
            .components
            .iter()
            .any(|c| c.kind == ComponentKind::Agent);
        let agent_duties = resolve_application(app, &catalog)
            .iter()
            .filter(|d| agent_layers.contains(&d.area.layer.as_str()))
            .count();
        if has_agent {
            with_agent += 1;
            assert!(
                agent_duties > 0,
                "{} has an agent but no agent duties",
                app.id
            );
        } else {
            without_agent += 1;
            assert_eq!(agent_duties, 0, "{} has no agent but agent duties", app.id);
        }
    }
    assert!(
        with_agent > 0 && without_agent > 0,
        "{with_agent} / {without_agent}"
    );
}
