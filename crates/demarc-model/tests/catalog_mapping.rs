//! One estate under several catalogs: which catalog service model each component is assessed
//! under (direct, override, mapped), and model-dependent cells (unresolved until the estate's
//! `owners` resolves them).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use demarc_model::assess::{AssessOptions, Gap, assess};
use demarc_model::catalog::Owner;
use demarc_model::diag::Severity;
use demarc_model::resolve::{Party, ServiceModelRule, resolve_application};
use demarc_model::{CheckedCatalog, CheckedEstate};

const COSAI: &str = "cosai-srf-1.0";

fn builtin(id: &str) -> CheckedCatalog {
    CheckedCatalog::builtin(id).unwrap().unwrap()
}

/// An estate written for the seed; `extra` is YAML appended to the `llm` component.
fn estate(extra: &str) -> String {
    format!(
        r#"format: 1
organisation: {{name: T}}
teams: [{{id: ml, name: ML, contact: ml@example.com}}]
providers: [{{id: aws, name: AWS}}, {{id: hf, name: Hugging Face}}, {{id: saasco, name: SaaS Co}}]
applications:
  - id: app
    name: App
    owner: ml
    data_classification: internal
    status: sanctioned
    components:
      - id: llm
        kind: model
        service_model: paas
        provider: aws
{extra}
      - {{id: bot, kind: agent, service_model: paas, provider: aws}}
      - {{id: ui, kind: application, service_model: saas, provider: saasco}}
    controls:
      prompt-filtering: {{status: implemented}}
  - id: own
    name: Own model
    owner: ml
    data_classification: internal
    status: sanctioned
    components:
      - {{id: weights, kind: model, service_model: iaas, provider: hf}}
"#
    )
}

fn check(text: &str, catalog: &CheckedCatalog) -> demarc_model::estate::Checked {
    match CheckedEstate::from_bytes("e.yaml", text.as_bytes(), catalog) {
        Ok(c) => c,
        Err(d) => panic!("{d}"),
    }
}

fn sm_of<'a>(
    estate: &'a CheckedEstate,
    catalog: &'a CheckedCatalog,
    app: &str,
    component: &str,
) -> (String, ServiceModelRule) {
    let c = estate
        .application(app)
        .unwrap()
        .components
        .iter()
        .find(|c| c.id == component)
        .unwrap();
    let (sm, rule, _) = demarc_model::resolve::catalog_service_model(c, catalog).unwrap();
    (sm.to_string(), rule)
}

#[test]
fn the_seed_takes_its_own_ids_directly() {
    let seed = CheckedCatalog::default_catalog().unwrap();
    let e = check(&estate(""), &seed).estate;
    assert_eq!(
        sm_of(&e, &seed, "app", "llm"),
        ("paas".into(), ServiceModelRule::Direct)
    );
}

#[test]
fn cosai_maps_estate_service_models_by_kind() {
    let cosai = builtin(COSAI);
    let e = check(&estate(""), &cosai).estate;
    // paas -> ai-paas for a model, agent-paas for an agent (A.2.2.1, A.2.2.2); saas -> ai-saas.
    assert_eq!(
        sm_of(&e, &cosai, "app", "llm"),
        ("ai-paas".into(), ServiceModelRule::Mapped)
    );
    assert_eq!(
        sm_of(&e, &cosai, "app", "bot"),
        ("agent-paas".into(), ServiceModelRule::Mapped)
    );
    assert_eq!(
        sm_of(&e, &cosai, "app", "ui"),
        ("ai-saas".into(), ServiceModelRule::Mapped)
    );
    // iaas is an id of CoSAI: direct.
    assert_eq!(
        sm_of(&e, &cosai, "own", "weights"),
        ("iaas".into(), ServiceModelRule::Direct)
    );
}

#[test]
fn a_component_override_wins_over_the_mapping_and_is_checked() {
    let cosai = builtin(COSAI);
    let e = check(
        &estate("        service_models: {cosai-srf-1.0: agent-paas, aws-genai-scoping: scope-4}"),
        &cosai,
    )
    .estate;
    assert_eq!(
        sm_of(&e, &cosai, "app", "llm"),
        ("agent-paas".into(), ServiceModelRule::Override)
    );
    let bad = estate("        service_models: {cosai-srf-1.0: agent-pass}");
    let err = CheckedEstate::from_bytes("e.yaml", bad.as_bytes(), &cosai)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("has no service model `agent-pass`"), "{err}");
    assert!(err.contains("agent-paas"), "{err}");
    // An unknown catalog id is a warning (it may name a catalog file).
    let odd = estate("        service_models: {no-such-catalog: x}");
    let w = check(&odd, &cosai).warnings.to_string();
    assert!(w.contains("`no-such-catalog` is neither"), "{w}");
}

#[test]
fn a_model_dependent_cell_stays_unresolved_and_is_never_covered() {
    let cosai = builtin(COSAI);
    let checked = check(&estate(""), &cosai);
    let e = checked.estate;
    let duties = resolve_application(e.application("app").unwrap(), &cosai);
    let fm = duties
        .iter()
        .find(|d| d.area.id == "foundation-models" && d.component.id == "llm")
        .unwrap();
    assert_eq!(fm.owner, Owner::ModelDependent);
    assert_eq!(fm.accountable, Party::Unresolved);
    assert!(fm.team.is_none());

    let report = assess(
        &e,
        &cosai,
        &AssessOptions::new("2026-12-01".parse().unwrap()),
    );
    let d = report.applications[0]
        .duties
        .iter()
        .find(|d| d.area == "foundation-models" && d.component == "llm")
        .unwrap();
    assert_eq!(d.owner, "model-dependent");
    assert_eq!(d.gaps.first(), Some(&Gap::Unresolved));
    assert!(!d.gaps.contains(&Gap::Unowned));
    assert!(!d.covered);
    // The PaaS model (foundation-models) and the self-run IaaS model (foundation-models and
    // model-governance).
    assert_eq!(report.summary.unresolved, 3, "{:?}", report.summary);
    assert_eq!(report.summary.unowned, 0);
}

#[test]
fn owners_resolve_a_model_dependent_cell_per_component() {
    let cosai = builtin(COSAI);
    let e = check(
        &estate("        owners: {cosai-srf-1.0: {foundation-models: provider}}"),
        &cosai,
    )
    .estate;
    let duties = resolve_application(e.application("app").unwrap(), &cosai);
    let fm = duties
        .iter()
        .find(|d| d.area.id == "foundation-models" && d.component.id == "llm")
        .unwrap();
    assert_eq!(fm.owner, Owner::Provider);
    assert!(fm.owner_from_estate);
    assert_eq!(fm.accountable, Party::Provider { id: "aws".into() });
    assert!(!fm.customer_involved);
    assert!(fm.accountable_reason().contains("`owners`"));

    let e = check(
        &estate(
            "        owners: {cosai-srf-1.0: {foundation-models: {owner: shared, lead: customer}}}",
        ),
        &cosai,
    )
    .estate;
    let report = assess(
        &e,
        &cosai,
        &AssessOptions::new("2026-12-01".parse().unwrap()),
    );
    let d = report.applications[0]
        .duties
        .iter()
        .find(|d| d.area == "foundation-models")
        .unwrap();
    assert_eq!(d.owner, "shared");
    assert!(d.owner_from_estate);
    assert_eq!(d.owner_team.as_deref(), Some("ml"));
    assert!(!d.gaps.contains(&Gap::Unresolved));
}

#[test]
fn owners_are_checked() {
    let cosai = builtin(COSAI);
    // Shared without a lead, an unknown area: errors.
    for (extra, expected) in [
        (
            "        owners: {cosai-srf-1.0: {foundation-models: shared}}",
            "a shared owner must say which side leads",
        ),
        (
            "        owners: {cosai-srf-1.0: {foundation-model: customer}}",
            "unknown area `foundation-model` of catalog `cosai-srf-1.0`",
        ),
        (
            "        owners: {cosai-srf-1.0: {foundation-models: {owner: customer, lead: customer}}}",
            "only a shared owner has a lead",
        ),
    ] {
        let text = estate(extra);
        let err = CheckedEstate::from_bytes("e.yaml", text.as_bytes(), &cosai)
            .err()
            .unwrap_or_else(|| panic!("accepted: {extra}"))
            .to_string();
        assert!(err.contains(expected), "{extra}: {err}");
    }
    // A cell that is not model-dependent where the component is assessed: a warning.
    let checked = check(
        &estate("        owners: {cosai-srf-1.0: {model-distribution: customer}}"),
        &cosai,
    );
    let w = &checked.warnings;
    assert!(
        w.items
            .iter()
            .any(|d| d.severity == Severity::Warning && d.message.contains("not model-dependent")),
        "{w}"
    );
}

#[test]
fn an_estate_for_the_seed_is_checked_under_cosai_with_one_warning_for_its_areas() {
    let cosai = builtin(COSAI);
    let checked = check(&estate(""), &cosai);
    let w = checked.warnings.to_string();
    assert!(
        w.contains("1 reference to areas of `csa-genai-2023`"),
        "{w}"
    );
    // A typo is still an error.
    let typo = estate("").replace("prompt-filtering:", "prompt-filterin:");
    let err = CheckedEstate::from_bytes("e.yaml", typo.as_bytes(), &cosai)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("unknown area `prompt-filterin`"), "{err}");
}

#[test]
fn a_catalog_that_cannot_take_an_estate_service_model_warns() {
    let text = r#"format: 1
id: tiny
title: Tiny
version: "1"
source: {title: T, url: "https://example.com", date: "2026-01-01", licence: none}
roles: []
service_models:
  - id: hosted
    title: Hosted
    description: d
    maps_from:
      - {service_model: paas, kinds: [model], note: "demarc's reading"}
      - {service_model: saas, note: "demarc's reading"}
layers: [{id: l, title: L, description: d, supplied_by: [model]}]
areas: []
"#;
    let c = CheckedCatalog::from_bytes("tiny.yaml", text.as_bytes()).unwrap();
    let w = c.warnings().to_string();
    assert!(w.contains("estate service model `iaas`"), "{w}");
    assert!(
        w.contains("estate service model `paas` for component kinds platform"),
        "{w}"
    );
    assert!(!w.contains("`saas`"), "{w}");
    let bad = text.replace("service_model: saas", "service_model: sass");
    let err = CheckedCatalog::from_bytes("tiny.yaml", bad.as_bytes())
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("`sass` is not an estate service model"),
        "{err}"
    );
}
