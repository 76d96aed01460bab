//! Verdicts an auditor can trust: observation adds and never hides, claims are checked
//! against what demarc saw, evidence is verified, every component gets its duties.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use demarc_model::assess::{
    AssessOptions, AssessedControl, Assessment, ContradictionKind, DutyAssessment, EvidenceStatus,
    FileCheck, Gap, ObservedEvidence, ObservedTraffic, assess, evidence_diagnostics,
};
use demarc_model::resolve::{Party, SupplyRule, TeamSource, resolve_application};
use demarc_model::{CheckedCatalog, CheckedEstate, Date, ObservationKind};

const ESTATE: &str = r#"format: 1
organisation: {name: T}
teams:
  - {id: sec, name: Security, contact: sec@example.com}
  - {id: apps, name: Apps, contact: apps@example.com}
providers: [{id: azure, name: Azure}, {id: bing, name: Bing}, {id: openai, name: OpenAI}]
applications:
  - id: assistant
    name: Assistant
    owner: apps
    data_classification: internal
    status: sanctioned
    components:
      - {id: llm, kind: model, service_model: paas, provider: azure}
      - {id: app, kind: application, service_model: iaas, provider: azure}
      - {id: search, kind: plugin, service_model: saas, provider: bing}
    duties: {areas: {prompt-filtering: sec}}
    controls:
      prompt-filtering: {status: implemented, statement: Every prompt goes through the gateway.}
      application-security: {status: implemented, statement: SSO and per-app keys.}
      ip-copyright: {status: not-applicable, justification: Internal notes only.}
    evidence:
      - area: prompt-filtering
        description: Quarterly guardrail review
        link: https://grc.example/pf
        reviewer: R. Viewer
        reviewed: 2025-06-01
        expires: 2025-12-31
      - area: application-security
        description: Pen test report
        file: evidence/pentest.md
        sha256: 0000000000000000000000000000000000000000000000000000000000000000
        reviewer: R. Viewer
        reviewed: 2026-10-01
        expires: 2027-10-01
      - area: usage-governance
        description: Access list
        link: https://grc.example/ug
        reviewer: R. Viewer
        reviewed: 2025-01-01
  - id: chatgpt
    name: Consumer chatbot
    owner: sec
    data_classification: confidential
    status: unsanctioned
    components: [{id: chat, kind: application, service_model: saas, provider: openai}]
    controls:
      usage-governance: {status: implemented, statement: Blocked at the proxy., blocked: true}
      prompt-filtering: {status: not-applicable, justification: Blocked; nothing to filter.}
  - id: tolerated-app
    name: Tolerated
    owner: sec
    data_classification: public
    status: tolerated
    components: [{id: t, kind: application, service_model: saas, provider: openai}]
"#;

fn day(s: &str) -> Date {
    s.parse().unwrap()
}

fn load(text: &str) -> (CheckedCatalog, CheckedEstate) {
    let catalog = CheckedCatalog::default_catalog().unwrap();
    let estate = CheckedEstate::from_bytes("t.yaml", text.as_bytes(), &catalog)
        .unwrap()
        .estate;
    (catalog, estate)
}

fn options() -> AssessOptions {
    AssessOptions::new(day("2026-12-02"))
}

fn observation(app: &str, area: &str, kind: ObservationKind) -> ObservedEvidence {
    ObservedEvidence {
        application: app.into(),
        area: area.into(),
        kind,
        source: "gateway".into(),
        observed_at: day("2026-12-01"),
        summary: "input scanned by policy `default` on every request; 2 requests, 0 blocked".into(),
        expires: day("2027-01-15"),
    }
}

fn traffic(app: &str, kind: ObservationKind) -> ObservedTraffic {
    ObservedTraffic {
        application: app.into(),
        kind,
        source: "gateway@host:8080:1".into(),
        requests: 1,
        first_seen: day("2026-12-01"),
        last_seen: day("2026-12-01"),
        detail: None,
    }
}

fn duty<'a>(r: &'a Assessment, app: &str, area: &str) -> &'a DutyAssessment {
    r.applications
        .iter()
        .find(|a| a.id == app)
        .unwrap()
        .duties
        .iter()
        .find(|d| d.area == area)
        .unwrap_or_else(|| panic!("no duty {app} {area}"))
}

#[test]
fn current_observation_never_hides_an_expired_review() {
    let (catalog, estate) = load(ESTATE);
    let mut o = options();
    o.observed.push(observation(
        "assistant",
        "prompt-filtering",
        ObservationKind::GatewayInputScan,
    ));
    let r = assess(&estate, &catalog, &o);
    let d = duty(&r, "assistant", "prompt-filtering");
    assert_eq!(d.evidence, EvidenceStatus::Expired);
    assert!(d.gaps.contains(&Gap::EvidenceExpired), "{:?}", d.gaps);
    assert!(!d.covered);
    // The observation is listed beside the review, not instead of it.
    assert_eq!(d.declared_evidence.len(), 1);
    assert_eq!(d.observed_evidence.len(), 1);
    assert!(!d.observed_evidence[0].accepted);
    assert_eq!(d.observed_evidence[0].status, EvidenceStatus::Current);
}

#[test]
fn observation_alone_counts_only_where_the_estate_accepts_it() {
    let text = ESTATE.replace(
        "    duties: {areas: {prompt-filtering: sec}}",
        "    duties: {areas: {prompt-filtering: sec}}\n    accept_observed: [prompt-filtering]",
    );
    let (catalog, estate) = load(&text);
    let mut o = options();
    o.observed.push(observation(
        "assistant",
        "prompt-filtering",
        ObservationKind::GatewayInputScan,
    ));
    let r = assess(&estate, &catalog, &o);
    let d = duty(&r, "assistant", "prompt-filtering");
    assert_eq!(d.evidence, EvidenceStatus::Current);
    assert!(d.covered, "{:?}", d.gaps);
    assert!(d.observed_evidence[0].accepted);

    // Expired observation shows as expired, even where accepted.
    let mut o = options();
    let mut old = observation(
        "assistant",
        "prompt-filtering",
        ObservationKind::GatewayInputScan,
    );
    old.expires = day("2026-11-01");
    o.observed.push(old);
    let r = assess(&estate, &catalog, &o);
    let d = duty(&r, "assistant", "prompt-filtering");
    assert_eq!(d.observed_evidence[0].status, EvidenceStatus::Expired);
    assert!(!d.covered);
}

#[test]
fn traffic_for_an_unsanctioned_or_blocked_application_is_a_contradiction() {
    let (catalog, estate) = load(ESTATE);
    let mut o = options();
    o.traffic
        .push(traffic("chatgpt", ObservationKind::GatewayTraffic));
    o.observed.push(observation(
        "chatgpt",
        "prompt-filtering",
        ObservationKind::GatewayInputScan,
    ));
    let r = assess(&estate, &catalog, &o);
    let governance = duty(&r, "chatgpt", "usage-governance");
    assert!(governance.gaps.contains(&Gap::Contradicted));
    let kinds: Vec<_> = governance.contradictions.iter().map(|c| c.kind).collect();
    assert!(kinds.contains(&ContradictionKind::UnsanctionedTraffic));
    assert!(kinds.contains(&ContradictionKind::BlockedTraffic));
    assert!(!governance.covered);
    // A not-applicable control with observed filtering is contradicted too, never covered.
    let pf = duty(&r, "chatgpt", "prompt-filtering");
    assert_eq!(pf.control, AssessedControl::NotApplicable);
    assert!(pf.gaps.contains(&Gap::Contradicted));
    assert!(!pf.covered);
    assert_eq!(
        pf.contradictions[0].kind,
        ContradictionKind::NotApplicableObserved
    );
    let app = r.applications.iter().find(|a| a.id == "chatgpt").unwrap();
    assert!(!app.contradictions.is_empty());
    assert_eq!(r.summary.contradicted, 2);

    // Without traffic nothing is contradicted.
    let r = assess(&estate, &catalog, &options());
    assert_eq!(r.summary.contradicted, 0);
}

#[test]
fn evidence_files_and_review_dates_are_verified() {
    let (catalog, estate) = load(ESTATE);
    let mut o = options();
    o.files.insert(
        "evidence/pentest.md".into(),
        FileCheck::Mismatch {
            actual: "ab".repeat(32),
        },
    );
    let r = assess(&estate, &catalog, &o);
    let d = duty(&r, "assistant", "application-security");
    assert!(d.gaps.contains(&Gap::EvidenceMismatch), "{:?}", d.gaps);
    assert_eq!(
        d.evidence,
        EvidenceStatus::Missing,
        "a changed file does not count"
    );
    assert!(d.declared_evidence[0].problem.is_some());
    let diags = evidence_diagnostics(&estate, o.today, &o.files);
    assert!(
        diags
            .iter()
            .any(|d| d.path == "applications[0].evidence[1].sha256"),
        "{diags:?}"
    );

    let mut o = options();
    o.files.insert(
        "evidence/pentest.md".into(),
        FileCheck::Missing {
            reason: "no such file".into(),
        },
    );
    let r = assess(&estate, &catalog, &o);
    assert!(
        duty(&r, "assistant", "application-security")
            .gaps
            .contains(&Gap::EvidenceMismatch)
    );

    let mut o = options();
    o.files
        .insert("evidence/pentest.md".into(), FileCheck::Verified);
    let r = assess(&estate, &catalog, &o);
    let d = duty(&r, "assistant", "application-security");
    assert!(d.covered, "{:?}", d.gaps);

    // A review dated after the assessment date does not count and is an error.
    let mut o = options();
    o.today = day("2026-09-01");
    let r = assess(&estate, &catalog, &o);
    let d = duty(&r, "assistant", "application-security");
    assert!(d.gaps.contains(&Gap::EvidenceMismatch));
    let diags = evidence_diagnostics(&estate, o.today, &BTreeMap::new());
    assert!(
        diags.iter().any(|d| d.path.ends_with(".reviewed")),
        "{diags:?}"
    );
}

#[test]
fn evidence_without_expiry_goes_stale_after_the_maximum_review_age() {
    let (catalog, estate) = load(ESTATE);
    // usage-governance: reviewed 2025-01-01, no expiry, seed default 365 days.
    let r = assess(&estate, &catalog, &options());
    let d = duty(&r, "assistant", "usage-governance");
    assert_eq!(d.declared_evidence[0].valid_until, Some(day("2026-01-01")));
    assert_eq!(d.evidence, EvidenceStatus::Expired);
    // The estate can allow longer.
    let text = ESTATE.replace(
        "applications:\n",
        "evidence_policy: {areas: {usage-governance: 1000}}\napplications:\n",
    );
    let (catalog, estate) = load(&text);
    let r = assess(&estate, &catalog, &options());
    assert_eq!(
        duty(&r, "assistant", "usage-governance").evidence,
        EvidenceStatus::Current
    );
}

#[test]
fn risk_acceptances_are_shown_as_such_and_expire() {
    let text = ESTATE.replace(
        "    duties: {areas: {prompt-filtering: sec}}",
        "    duties: {areas: {prompt-filtering: sec}}\n    exceptions:\n      - {area: prompt-filtering, owner: sec, reason: Review booked for January, approved_by: CISO, approved: 2026-01-10, expires: 2027-01-31}",
    );
    let (catalog, estate) = load(&text);
    let r = assess(&estate, &catalog, &options());
    let d = duty(&r, "assistant", "prompt-filtering");
    assert!(!d.covered);
    assert!(d.risk_accepted);
    assert_eq!(
        d.risk_acceptance.as_ref().unwrap().status,
        EvidenceStatus::Current
    );
    // Without `component`, the acceptance covers the area's duty of every component (the
    // application and its search plugin).
    assert_eq!(r.summary.risk_accepted, 2);

    let mut o = options();
    o.today = day("2027-02-01");
    let r = assess(&estate, &catalog, &o);
    let d = duty(&r, "assistant", "prompt-filtering");
    assert!(!d.risk_accepted);
    assert_eq!(
        d.risk_acceptance.as_ref().unwrap().status,
        EvidenceStatus::Expired
    );
}

#[test]
fn every_component_that_supplies_a_layer_gets_its_duties() {
    let (catalog, estate) = load(ESTATE);
    let app = estate.application("assistant").unwrap();
    let duties = resolve_application(app, &catalog);
    let pf: Vec<_> = duties
        .iter()
        .filter(|d| d.area.id == "prompt-filtering")
        .collect();
    assert_eq!(pf.len(), 2, "the application and the search plugin");
    assert_eq!(pf[0].component.id, "app");
    assert_eq!(pf[1].component.id, "search");
    assert_eq!(pf[1].rule, SupplyRule::AlsoKind);
    // The SaaS plugin's prompt filtering is shared, led by the customer.
    assert_eq!(
        pf[1].accountable,
        Party::Team {
            id: Some("sec".into())
        }
    );
    assert_eq!(
        pf[1].also_responsible,
        vec![Party::Provider { id: "bing".into() }]
    );
    // Its grounding is the provider's: inherited, with the component named.
    let r = assess(&estate, &catalog, &options());
    let a = &r.applications[0];
    assert!(
        a.inherited
            .iter()
            .any(|i| i.area == "grounding" && i.provider == "bing" && i.component == "search")
    );
    assert_eq!(
        a.duties
            .iter()
            .filter(|d| d.area == "prompt-filtering")
            .count(),
        2
    );
}

#[test]
fn the_owner_team_owns_duties_nobody_was_assigned_and_the_reason_says_why() {
    let (catalog, estate) = load(ESTATE);
    let app = estate.application("assistant").unwrap();
    let duties = resolve_application(app, &catalog);
    let security = duties
        .iter()
        .find(|d| d.area.id == "application-security")
        .unwrap();
    assert_eq!(security.team, Some(("apps", TeamSource::ApplicationOwner)));
    assert!(
        security
            .accountable_reason()
            .contains("application's owner"),
        "{}",
        security.accountable_reason()
    );
    let pf = duties
        .iter()
        .find(|d| d.area.id == "prompt-filtering")
        .unwrap();
    assert!(pf.accountable_reason().contains("duties.areas"));
    // A provider-led shared cell names the provider and why, not a team assignment.
    let text = ESTATE.replace(
        "      - {id: llm, kind: model, service_model: paas, provider: azure}",
        "      - {id: llm, kind: model, service_model: paas, provider: azure}\n      - {id: ds, kind: data-source, service_model: paas, provider: azure}",
    );
    let (catalog, estate) = load(&text);
    let app = estate.application("assistant").unwrap();
    let g = resolve_application(app, &catalog)
        .into_iter()
        .find(|d| d.area.id == "grounding")
        .unwrap();
    assert!(
        g.accountable_reason().contains("customer leads"),
        "{}",
        g.accountable_reason()
    );
}

#[test]
fn not_applicable_needs_no_evidence_and_counts_are_consistent() {
    let (catalog, estate) = load(ESTATE);
    let r = assess(&estate, &catalog, &options());
    let ip = duty(&r, "assistant", "ip-copyright");
    assert_eq!(ip.evidence, EvidenceStatus::NotNeeded);
    assert!(ip.covered);
    let missing = r
        .applications
        .iter()
        .flat_map(|a| &a.duties)
        .filter(|d| d.evidence == EvidenceStatus::Missing)
        .count();
    assert_eq!(r.summary.evidence_missing, missing);
    assert_eq!(
        r.summary.unsanctioned_applications, 1,
        "tolerated is not unsanctioned"
    );
    assert_eq!(r.summary.applications_by_status["tolerated"], 1);
    assert!(r.summary.not_applicable >= 2);
}

#[test]
fn an_empty_estate_is_not_fully_covered() {
    let (catalog, estate) = load("format: 1\norganisation: {name: Empty}\n");
    let r = assess(&estate, &catalog, &options());
    assert_eq!(r.summary.coverage.percent, None);
    assert_eq!(r.summary.coverage.percent_label(), "n/a");
    let json = serde_json::to_value(&r).unwrap();
    assert!(json["summary"]["coverage"]["percent"].is_null());
}

#[test]
fn discovery_shows_bypasses_and_services_no_application_covers() {
    let text = ESTATE.replace(
        "    duties: {areas: {prompt-filtering: sec}}",
        "    duties: {areas: {prompt-filtering: sec}}\n    through_gateway: true",
    );
    let (catalog, estate) = load(&text);
    let mut o = options();
    let mut seen = traffic("assistant", ObservationKind::Discovery);
    seen.source = "discovery run 3 (proxy.log)".into();
    seen.detail = Some("hosts nordlicht.openai.azure.com".into());
    o.traffic.push(seen);
    o.unlisted.push(demarc_model::assess::UnlistedService {
        service: "otter".into(),
        tenant: None,
        status: "shadow".into(),
        requests: 40,
        blocked: 0,
        identities: 3,
        first_seen: day("2026-11-20"),
        last_seen: day("2026-12-01"),
        source: "discovery run 3 (proxy.log)".into(),
    });
    let r = assess(&estate, &catalog, &o);
    let governance = duty(&r, "assistant", "usage-governance");
    assert_eq!(
        governance.contradictions[0].kind,
        ContradictionKind::GatewayBypass
    );
    assert!(
        governance.contradictions[0]
            .detail
            .contains("seen in network logs")
    );
    assert_eq!(r.summary.unlisted_services, 1);
    assert_eq!(r.unlisted_services[0].service, "otter");
    // Without `through_gateway`, seeing the sanctioned application in logs is no contradiction.
    let (catalog, estate) = load(ESTATE);
    let r = assess(&estate, &catalog, &o);
    assert!(
        duty(&r, "assistant", "usage-governance")
            .contradictions
            .is_empty()
    );
}
