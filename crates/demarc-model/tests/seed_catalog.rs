//! The seed catalog (`csa-genai-2023`): one test per cell the post does not state outright
//! (inferred) or states against itself (disputed). Expectations come from the post's text
//! (../shared/seed), section and sentence as cited in the catalog, not from output.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use demarc_model::CheckedCatalog;
use demarc_model::catalog::{Basis, Owner, Side};

fn seed() -> CheckedCatalog {
    CheckedCatalog::builtin("csa-genai-2023")
        .expect("the seed is built in")
        .unwrap_or_else(|d| panic!("seed does not load:\n{d}"))
}

fn cell(area: &str, sm: &str) -> (Owner, Option<Side>, Basis) {
    let catalog = seed();
    let a = catalog.area(area).unwrap();
    let c = catalog.cell(a, sm).unwrap();
    (c.owner, c.lead, c.basis)
}

/// SaaS responsibilities say everything below the application is abstracted away; the post
/// names no owner of infrastructure for SaaS, so the provider is demarc's inference.
#[test]
fn infrastructure_saas_is_the_providers_by_inference() {
    assert_eq!(
        cell("infrastructure", "saas"),
        (Owner::Provider, None, Basis::Inferred)
    );
}

/// IaaS responsibilities, s1 gives the provider the infrastructure; s2 gives the customer
/// the security of the physical and virtual infrastructure. Encoded as s2 says, disputed.
#[test]
fn infrastructure_security_iaas_is_the_customers_and_disputed() {
    assert_eq!(
        cell("infrastructure-security", "iaas"),
        (Owner::Customer, None, Basis::Disputed)
    );
}

/// Not named for PaaS or SaaS; the provider supplies (and hides) the infrastructure there.
#[test]
fn infrastructure_security_paas_and_saas_are_the_providers_by_inference() {
    for sm in ["paas", "saas"] {
        assert_eq!(
            cell("infrastructure-security", sm),
            (Owner::Provider, None, Basis::Inferred),
            "{sm}"
        );
    }
}

/// IaaS users pick foundation models and train them on their own data; a provider may
/// supply curated ones. The post names no owner of the model itself: shared, customer leads.
#[test]
fn foundation_model_iaas_is_shared_customer_led_by_inference() {
    assert_eq!(
        cell("foundation-model", "iaas"),
        (Owner::Shared, Some(Side::Customer), Basis::Inferred)
    );
}

/// PaaS: the provider secures the pretrained model; the post is silent on choosing among
/// the offered models, which the customer does.
#[test]
fn model_selection_paas_is_shared_customer_led_by_inference() {
    assert_eq!(
        cell("model-selection-lineage", "paas"),
        (Owner::Shared, Some(Side::Customer), Basis::Inferred)
    );
}

/// PaaS responsibilities give hosting to the provider; the PaaS use case hosts the model in
/// the tenant's own infrastructure. The responsibilities win, marked disputed.
#[test]
fn model_hosting_paas_is_the_providers_and_disputed() {
    assert_eq!(
        cell("model-hosting", "paas"),
        (Owner::Provider, None, Basis::Disputed)
    );
}

/// No other seed cell is inferred or disputed (a new one needs its own test above).
#[test]
fn the_seven_are_all() {
    let catalog = seed();
    let mut found: Vec<(String, String)> = Vec::new();
    for area in catalog.areas() {
        for (sm, c) in &area.cells {
            if c.basis != Basis::Stated {
                found.push((area.id.clone(), sm.clone()));
            }
        }
    }
    found.sort();
    let mut expected: Vec<(String, String)> = [
        ("foundation-model", "iaas"),
        ("infrastructure", "saas"),
        ("infrastructure-security", "iaas"),
        ("infrastructure-security", "paas"),
        ("infrastructure-security", "saas"),
        ("model-hosting", "paas"),
        ("model-selection-lineage", "paas"),
    ]
    .iter()
    .map(|(a, s)| (a.to_string(), s.to_string()))
    .collect();
    expected.sort();
    assert_eq!(found, expected);
}
