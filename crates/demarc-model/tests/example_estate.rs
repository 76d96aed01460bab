#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The bundled example estate and the `demarc init` starter load against the seed catalog,
//! resolve as their comments say, and assess to a mix of covered duties and gaps.

use demarc_model::assess::{AssessOptions, EvidenceStatus, Gap, assess};
use demarc_model::estate::Checked;
use demarc_model::resolve::{Party, SupplyRule, resolve_application};
use demarc_model::{CheckedCatalog, CheckedEstate, Date};

const BANK: &str = include_str!("../../../examples/bank-estate.yaml");
const STARTER: &str = include_str!("../../demarc-cli/templates/starter-estate.yaml");

/// The day the example's evidence dates are written for.
fn today() -> Date {
    "2026-11-26".parse().unwrap()
}

fn load(file: &str, text: &str) -> (CheckedCatalog, Checked) {
    let catalog = CheckedCatalog::default_catalog().unwrap();
    let checked = CheckedEstate::from_bytes(file, text.as_bytes(), &catalog)
        .unwrap_or_else(|d| panic!("{file} does not load:\n{d}"));
    (catalog, checked)
}

/// The accountable party of `area` in application `app`.
fn accountable(catalog: &CheckedCatalog, estate: &CheckedEstate, app: &str, area: &str) -> Party {
    let app = estate.application(app).unwrap();
    resolve_application(app, catalog)
        .into_iter()
        .find(|d| d.area.id == area)
        .unwrap_or_else(|| panic!("`{area}` does not resolve for `{}`", app.id))
        .accountable
}

fn provider(id: &str) -> Party {
    Party::Provider { id: id.into() }
}

fn team(id: &str) -> Party {
    Party::Team {
        id: Some(id.into()),
    }
}

#[test]
fn bank_estate_is_rich_enough_to_showcase() {
    let (_, checked) = load("examples/bank-estate.yaml", BANK);
    let estate = checked.estate.estate();
    assert!(estate.teams.len() >= 10);
    assert!(estate.applications.len() >= 8);
    assert!(estate.teams.iter().all(|t| !t.contact.is_empty()));
    assert!(estate.applications.iter().all(|a| !a.endpoints.is_empty()));
    let models: std::collections::BTreeSet<&str> = estate
        .applications
        .iter()
        .flat_map(|a| a.components.iter().map(|c| c.service_model.as_str()))
        .collect();
    assert_eq!(
        models.into_iter().collect::<Vec<_>>(),
        ["iaas", "paas", "saas"]
    );
    for status in ["sanctioned", "tolerated", "unsanctioned", "discovered"] {
        assert!(
            estate
                .applications
                .iter()
                .any(|a| a.status.as_str() == status),
            "no `{status}` application"
        );
    }
}

#[test]
fn bank_estate_loads_without_warnings() {
    // The discovered app names no duty teams: its owner team owns them, which is no problem
    // to warn about (`explain` says why).
    let (_, checked) = load("examples/bank-estate.yaml", BANK);
    assert!(checked.warnings.is_empty(), "{}", checked.warnings);
}

#[test]
fn bank_estate_resolves_each_layer_from_its_supplier() {
    let (catalog, checked) = load("examples/bank-estate.yaml", BANK);
    let estate = &checked.estate;
    // IaaS: the bank serves its own tuned model.
    assert_eq!(
        accountable(&catalog, estate, "complaints-llm", "model-hosting"),
        team("ml-engineering")
    );
    assert_eq!(
        accountable(&catalog, estate, "complaints-llm", "training-data"),
        team("data-governance")
    );
    assert_eq!(
        accountable(&catalog, estate, "complaints-llm", "infrastructure"),
        provider("aws")
    );
    // Shared with the customer leading: the bank selects and tunes the open-weights model;
    // Hugging Face, which distributes the base weights, is only also responsible.
    assert_eq!(
        accountable(&catalog, estate, "complaints-llm", "foundation-model"),
        team("ml-engineering")
    );
    // SaaS: the copilot's model is Microsoft's.
    assert_eq!(
        accountable(&catalog, estate, "m365-copilot", "foundation-model"),
        provider("microsoft")
    );
    assert_eq!(
        accountable(&catalog, estate, "m365-copilot", "usage-governance"),
        team("information-security")
    );
    // PaaS: Microsoft hosts the assistant's model.
    assert_eq!(
        accountable(&catalog, estate, "colleague-assistant", "model-hosting"),
        provider("microsoft")
    );

    // The retrieval app: grounding from the IaaS data source, the model from Vertex AI (PaaS).
    let app = estate.application("policy-finder").unwrap();
    let duties = resolve_application(app, &catalog);
    let grounding = duties.iter().find(|d| d.area.id == "grounding").unwrap();
    assert_eq!(grounding.component.id, "policy-index");
    assert_eq!(grounding.rule, SupplyRule::KindPriority);
    assert_eq!(grounding.accountable, team("hr-technology"));
    let hosting = duties
        .iter()
        .find(|d| d.area.id == "model-hosting")
        .unwrap();
    assert_eq!(hosting.component.id, "gemini");
    assert_eq!(hosting.accountable, provider("google"));
    let appsec = duties
        .iter()
        .find(|d| d.area.id == "application-security")
        .unwrap();
    assert_eq!(appsec.component.id, "finder-web");

    // The agent: `supplies: [context]` picks the Lambda tool over the first plugin.
    let app = estate.application("payments-agent").unwrap();
    let duties = resolve_application(app, &catalog);
    let grounding = duties.iter().find(|d| d.area.id == "grounding").unwrap();
    assert_eq!(grounding.component.id, "payment-status-tool");
    assert_eq!(grounding.rule, SupplyRule::Explicit);
    assert_eq!(grounding.accountable, team("payments-operations"));
    assert_eq!(grounding.also_responsible, [provider("aws")]);
    let prompt = duties
        .iter()
        .find(|d| d.area.id == "prompt-filtering")
        .unwrap();
    assert_eq!(prompt.component.id, "exceptions-agent");
}

#[test]
fn bank_estate_assesses_to_a_mix_of_coverage_and_gaps() {
    let (catalog, checked) = load("examples/bank-estate.yaml", BANK);
    let report = assess(&checked.estate, &catalog, &AssessOptions::new(today()));
    let s = &report.summary;
    assert_eq!(s.applications, checked.estate.applications().len());
    // Only `unsanctioned` counts as unsanctioned (tolerated and discovered are their own).
    assert_eq!(s.unsanctioned_applications, 1);
    assert_eq!(s.applications_by_status["tolerated"], 1);
    assert_eq!(s.applications_by_status["discovered"], 1);
    assert!(
        s.gaps > 0 && s.evidence_expired > 0 && s.evidence_expiring > 0 && s.evidence_missing > 0
    );
    let percent = s.coverage.percent.unwrap();
    assert!(percent > 0.0 && percent < 100.0, "{:?}", s.coverage);

    let app = |id: &str| report.applications.iter().find(|a| a.id == id).unwrap();
    // Every duty of the coding assistant is owned, controlled and evidenced.
    assert_eq!(app("github-copilot").coverage.percent, Some(100.0));
    // The discovered app: owned by its owner team (no team assigned), nothing covered.
    let otter = app("otter-notes");
    assert_eq!(otter.coverage.covered, 0);
    assert!(
        otter
            .duties
            .iter()
            .all(|d| d.owner_team.as_deref() == Some("security-operations"))
    );
    assert_eq!(s.unowned, 0);
    // The risk the bank accepted for the overdue revalidation.
    let tuning = app("complaints-llm")
        .duties
        .iter()
        .find(|d| d.area == "model-training-tuning")
        .unwrap();
    assert!(tuning.risk_accepted && !tuning.covered);
    // The payments agent's SaaS case tool brings duties of its own (application layer).
    assert!(
        app("payments-agent")
            .duties
            .iter()
            .any(|d| d.component == "case-tool" && d.area == "prompt-filtering")
    );
    // Evidence states as the file's comments say.
    let duty = |app_id: &str, area: &str| {
        app(app_id)
            .duties
            .iter()
            .find(|d| d.area == area)
            .unwrap_or_else(|| panic!("{app_id} {area}"))
            .clone()
    };
    assert_eq!(
        duty("colleague-assistant", "prompt-filtering").evidence,
        EvidenceStatus::Expiring
    );
    assert_eq!(
        duty("complaints-llm", "model-training-tuning").evidence,
        EvidenceStatus::Expired
    );
    assert!(
        duty("complaints-llm", "model-training-tuning")
            .gaps
            .contains(&Gap::EvidenceExpired)
    );
    assert_eq!(
        duty("complaints-llm", "foundation-model").evidence,
        EvidenceStatus::Current
    );
    assert_eq!(
        duty("crm-einstein", "usage-governance").gaps,
        [Gap::NoControl, Gap::EvidenceMissing]
    );
    // A justified not-applicable control needs no evidence.
    assert!(duty("colleague-assistant", "grounding").covered);
}

#[test]
fn starter_estate_loads_cleanly_with_one_duty_covered() {
    let (catalog, checked) = load("starter-estate.yaml", STARTER);
    assert!(checked.warnings.is_empty(), "{}", checked.warnings);
    let estate = checked.estate.estate();
    assert_eq!(
        (
            estate.teams.len(),
            estate.providers.len(),
            estate.applications.len()
        ),
        (1, 1, 1)
    );
    assert_eq!(estate.applications[0].components[0].service_model, "paas");
    let report = assess(&checked.estate, &catalog, &AssessOptions::new(today()));
    assert!(
        report.summary.coverage.covered >= 1,
        "{:?}",
        report.summary.coverage
    );
    assert!(
        report.summary.gaps >= 1,
        "a starter should leave work to do"
    );
}
