//! The CoSAI AI Shared Responsibility Framework 1.0 catalog: every cell read from the source.
//! The expectations below are written from the framework's Section 3 figure, §3.2.1 and A.2
//! (see the catalog header), not from demarc's output.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use demarc_model::CheckedCatalog;
use demarc_model::catalog::{Basis, Owner, Side};

fn cosai() -> CheckedCatalog {
    match CheckedCatalog::builtin("cosai-srf-1.0") {
        Some(Ok(c)) => c,
        Some(Err(d)) => panic!("cosai-srf-1.0 does not load:\n{d}"),
        None => panic!("cosai-srf-1.0 is not built in"),
    }
}

#[test]
fn every_builtin_catalog_loads_without_warnings() {
    for id in CheckedCatalog::builtin_ids() {
        let c = match CheckedCatalog::builtin(id) {
            Some(Ok(c)) => c,
            Some(Err(d)) => panic!("{id} does not load:\n{d}"),
            None => panic!("{id} listed but not built in"),
        };
        assert!(c.warnings().is_empty(), "{id}:\n{}", c.warnings());
    }
}

/// Owner, lead and basis of one cell.
fn cell(area: &str, sm: &str) -> (Owner, Option<Side>, Basis) {
    let catalog = cosai();
    let a = catalog
        .area(area)
        .unwrap_or_else(|| panic!("no area {area}"));
    let c = catalog
        .cell(a, sm)
        .unwrap_or_else(|| panic!("no cell {area} x {sm}"));
    assert!(!c.note.trim().is_empty() && !c.source.trim().is_empty());
    (c.owner, c.lead, c.basis)
}

use Basis::{Disputed, Inferred, Stated};
use Owner::{Customer, ModelDependent, Provider, Shared};
const C: Option<Side> = Some(Side::Customer);
const P: Option<Side> = Some(Side::Provider);

/// One test per cell whose basis is not simply `stated`, and the model-dependent ones. The
/// owner is the Section 3 figure's value for the component ("AI & Agent PaaS" is one column,
/// so both PaaS variants get it, `inferred`); `disputed` where §3.2.1's per-layer row (or
/// A.2) says otherwise for the same operating model. Leads of shared cells follow A.2.
macro_rules! cells {
    ($($name:ident: $area:literal x $sm:literal = $owner:expr, $lead:expr, $basis:expr;)*) => {
        $(
            #[test]
            fn $name() {
                assert_eq!(cell($area, $sm), ($owner, $lead, $basis));
            }
        )*
    };
}

cells! {
    // §3.2.1 calls L1 Shared under AI-SaaS; the figure gives two of its three components to
    // the customer (consistency note of the extraction).
    l1_strategy_saas_disputed: "capabilities-business-strategy" x "ai-saas" = Customer, None, Disputed;
    l1_processes_saas_disputed: "processes-governance" x "ai-saas" = Customer, None, Disputed;
    l1_units_saas_stated: "business-units-accountability" x "ai-saas" = Shared, C, Stated;
    l1_strategy_paas_inferred: "capabilities-business-strategy" x "ai-paas" = Customer, None, Inferred;
    l1_strategy_agent_inferred: "capabilities-business-strategy" x "agent-paas" = Customer, None, Inferred;
    l1_processes_paas_inferred: "processes-governance" x "ai-paas" = Customer, None, Inferred;
    l1_processes_agent_inferred: "processes-governance" x "agent-paas" = Customer, None, Inferred;
    l1_units_paas_inferred: "business-units-accountability" x "ai-paas" = Customer, None, Inferred;
    l1_units_agent_inferred: "business-units-accountability" x "agent-paas" = Customer, None, Inferred;
    // L2: the figure agrees with §3.2.1 (Shared under the PaaS variants, customer-owned IaaS).
    l2_mdm_paas_inferred: "master-data-management" x "ai-paas" = Customer, None, Inferred;
    l2_mdm_agent_inferred: "master-data-management" x "agent-paas" = Customer, None, Inferred;
    l2_privacy_paas_inferred: "privacy-controls-policies" x "ai-paas" = Shared, C, Inferred;
    l2_privacy_agent_inferred: "privacy-controls-policies" x "agent-paas" = Shared, C, Inferred;
    l2_training_paas_inferred: "ai-training-data" x "ai-paas" = Shared, C, Inferred;
    l2_training_agent_inferred: "ai-training-data" x "agent-paas" = Shared, C, Inferred;
    l2_training_saas_stated: "ai-training-data" x "ai-saas" = Provider, None, Stated;
    // L3 and L4 under AI-SaaS: §3.2.1 says Shared (A.2.1 leaves the customer configuration,
    // rules, model selection and limits) but the figure gives every component to the provider.
    l3_agents_saas_disputed: "agents-orchestration-models" x "ai-saas" = Provider, None, Disputed;
    l3_apis_saas_disputed: "apis-fine-tuned-models" x "ai-saas" = Provider, None, Disputed;
    l3_platforms_saas_disputed: "application-platforms" x "ai-saas" = Provider, None, Disputed;
    l3_agents_paas_inferred: "agents-orchestration-models" x "ai-paas" = Shared, C, Inferred;
    l3_agents_agent_inferred: "agents-orchestration-models" x "agent-paas" = Shared, C, Inferred;
    l3_apis_paas_inferred: "apis-fine-tuned-models" x "ai-paas" = Shared, C, Inferred;
    l3_apis_agent_inferred: "apis-fine-tuned-models" x "agent-paas" = Shared, C, Inferred;
    l3_platforms_paas_inferred: "application-platforms" x "ai-paas" = Provider, None, Inferred;
    l3_platforms_agent_inferred: "application-platforms" x "agent-paas" = Provider, None, Inferred;
    l4_guardrails_saas_disputed: "guardrails-safety-systems" x "ai-saas" = Provider, None, Disputed;
    l4_compute_saas_disputed: "compute-infrastructure" x "ai-saas" = Provider, None, Disputed;
    l4_routers_saas_disputed: "llm-routers-gateways" x "ai-saas" = Provider, None, Disputed;
    // A.2.2.1 gives the provider basic guardrails and A.1.4.1 the model provider accountability
    // for safety systems: the provider leads.
    l4_guardrails_paas_inferred: "guardrails-safety-systems" x "ai-paas" = Shared, P, Inferred;
    l4_guardrails_agent_inferred: "guardrails-safety-systems" x "agent-paas" = Shared, P, Inferred;
    l4_compute_paas_inferred: "compute-infrastructure" x "ai-paas" = Provider, None, Inferred;
    l4_compute_agent_inferred: "compute-infrastructure" x "agent-paas" = Provider, None, Inferred;
    l4_routers_paas_inferred: "llm-routers-gateways" x "ai-paas" = Provider, None, Inferred;
    l4_routers_agent_inferred: "llm-routers-gateways" x "agent-paas" = Provider, None, Inferred;
    // L4 under IaaS: §3.2.1 customer-owned; the figure marks guardrails and compute Shared
    // (A.2.3: guardrails are the customer's, compute the provider's).
    l4_guardrails_iaas_disputed: "guardrails-safety-systems" x "iaas" = Shared, C, Disputed;
    l4_compute_iaas_disputed: "compute-infrastructure" x "iaas" = Shared, P, Disputed;
    l4_routers_iaas_stated: "llm-routers-gateways" x "iaas" = Customer, None, Stated;
    // L5: §3.2.1 gives the customer "model evaluation" under AI-PaaS and Shared under
    // Agent-PaaS; the figure's PaaS column gives distribution and governance to the provider.
    l5_distribution_paas_inferred: "model-distribution" x "ai-paas" = Provider, None, Inferred;
    l5_governance_paas_disputed: "model-governance" x "ai-paas" = Provider, None, Disputed;
    l5_distribution_agent_disputed: "model-distribution" x "agent-paas" = Provider, None, Disputed;
    l5_governance_agent_disputed: "model-governance" x "agent-paas" = Provider, None, Disputed;
    // Model Dependent in the figure (PaaS column: inferred split).
    l5_foundation_paas_model_dependent: "foundation-models" x "ai-paas" = ModelDependent, None, Inferred;
    l5_foundation_agent_model_dependent: "foundation-models" x "agent-paas" = ModelDependent, None, Inferred;
    // Model Dependent in the figure under IaaS, customer-owned in §3.2.1.
    l5_governance_iaas_disputed: "model-governance" x "iaas" = ModelDependent, None, Disputed;
    l5_foundation_iaas_disputed: "foundation-models" x "iaas" = ModelDependent, None, Disputed;
    l5_foundation_saas_stated: "foundation-models" x "ai-saas" = Provider, None, Stated;
}

#[test]
fn cosai_has_five_layers_fifteen_components_and_four_operating_models() {
    let c = cosai();
    assert_eq!(c.layers().len(), 5);
    assert_eq!(c.areas().len(), 15);
    let models: Vec<&str> = c.service_models().iter().map(|s| s.id.as_str()).collect();
    assert_eq!(models, ["ai-saas", "ai-paas", "agent-paas", "iaas"]);
    // Every cell of the two PaaS variants is at least inferred (one figure column).
    for a in c.areas() {
        for sm in ["ai-paas", "agent-paas"] {
            assert_ne!(
                c.cell(a, sm).map(|x| x.basis),
                Some(Basis::Stated),
                "{}",
                a.id
            );
        }
    }
}

#[test]
fn the_seed_marks_its_readings_and_contradictions() {
    let seed = match CheckedCatalog::default_catalog() {
        Ok(c) => c,
        Err(d) => panic!("{d}"),
    };
    let mut inferred = 0;
    for a in seed.areas() {
        for (sm, c) in &a.cells {
            let reading = c.source.contains("(inferred)") || c.source.contains("demarc's reading");
            assert_eq!(
                c.basis == Basis::Inferred,
                reading,
                "{} x {sm}: basis {:?}, source {}",
                a.id,
                c.basis,
                c.source
            );
            inferred += usize::from(reading);
        }
    }
    assert_eq!(inferred, 5);
    let basis = |area: &str, sm: &str| {
        seed.area(area)
            .and_then(|a| seed.cell(a, sm))
            .map(|c| c.basis)
    };
    // The seed's IaaS text gives the customer physical security against the sentence before
    // it, and its PaaS use case hosts the model in the tenant against the responsibilities.
    assert_eq!(
        basis("infrastructure-security", "iaas"),
        Some(Basis::Disputed)
    );
    assert_eq!(basis("model-hosting", "paas"), Some(Basis::Disputed));
}
