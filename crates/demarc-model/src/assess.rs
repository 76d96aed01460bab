//! Assessment: for every duty that falls on the customer, is there an owner, a control and
//! current evidence? Coverage per application and overall, and the list of gaps.
//!
//! The rules that make a verdict safe to show an auditor:
//! - Reviewed (declared) evidence decides a duty's evidence status. What demarc observed is
//!   listed beside it and never replaces it, unless the estate accepts observation alone for
//!   that application and area (`accept_observed`).
//! - Evidence whose file is missing or whose content no longer matches its `sha256`, or whose
//!   review date lies in the future, does not count, and the duty gets `evidence-mismatch`.
//! - Reviewed evidence without `expires` goes stale after the area's maximum review age.
//! - Observed traffic that a claim says cannot happen (an unsanctioned application, a control
//!   that blocks the traffic, an area declared not applicable) is a `contradicted` gap.
//! - A risk acceptance is shown as such: the duty stays uncovered, but its gaps are accepted
//!   until the acceptance expires.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::catalog::{Area, Basis, CheckedCatalog, Owner};
use crate::date::Date;
use crate::estate::{
    AppStatus, Application, CheckedEstate, Control, ControlStatus, Evidence, EvidencePolicy,
    RiskAcceptance,
};
use crate::observe::ObservationKind;
use crate::resolve::{self, Duty, Party, ServiceModelRule, TeamSource};

/// A fact demarc observed itself about one application and area (the gateway scanning every
/// request with a policy, discovery seeing the service in logs), as kept in the store. It is
/// listed beside reviewed evidence and never replaces it: see [`AssessOptions`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObservedEvidence {
    pub application: String,
    /// The area it supports; the catalog's `observed_by` maps `kind` to areas.
    pub area: String,
    pub kind: ObservationKind,
    /// What saw it: `gateway` (with the audit chain when known) or a discovery run.
    pub source: String,
    pub observed_at: Date,
    /// The fact in words, e.g. "input scanned by policy `strict` on every request; 812
    /// requests, 3 blocked, since 2026-11-02".
    pub summary: String,
    pub expires: Date,
}

/// Traffic demarc saw for an application within the observation window: the gateway
/// serving it (from the audit trail) or discovery finding it in network logs (only requests
/// that went through: a proxy's own refusals confirm a block). Traffic that a claim says
/// cannot happen (an unsanctioned application, a control that blocks it, direct traffic for an
/// application routed through the gateway) is a contradiction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObservedTraffic {
    pub application: String,
    /// `gateway-traffic` or `discovery`.
    pub kind: ObservationKind,
    /// Where it was seen: the gateway's audit chain, or the discovery run and log file.
    pub source: String,
    /// Requests served (gateway) or seen (discovery) in the window.
    pub requests: u64,
    pub first_seen: Date,
    pub last_seen: Date,
    /// One line of detail (hosts, users, blocked counts), already free of secrets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// What was found at a reviewed evidence file's path (the path as written in the estate).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FileCheck {
    /// The file's SHA-256 equals the estate's `sha256`.
    Verified,
    /// The file exists; the estate gives no `sha256` to compare with.
    Unpinned,
    /// The file's SHA-256 differs from the estate's `sha256`.
    Mismatch { actual: String },
    /// No readable file at the path.
    Missing { reason: String },
}

impl FileCheck {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Verified => "verified",
            Self::Unpinned => "unpinned",
            Self::Mismatch { .. } => "mismatch",
            Self::Missing { .. } => "missing",
        }
    }

    /// Whether the file shows what the estate claims (verified or at least present).
    fn holds(&self) -> bool {
        matches!(self, Self::Verified | Self::Unpinned)
    }
}

/// A GenAI service that discovery saw in use and that no application of the estate covers:
/// shadow use, or another tenant (resource, region) of a service whose other tenants the
/// estate names. Reported at organisation level, under usage governance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnlistedService {
    /// The service's id in discovery's service catalog.
    pub service: String,
    /// The tenant host, for another tenant of a multi-tenant service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// `shadow` or `other-tenant`.
    pub status: String,
    /// Requests seen in the window, blocked ones included.
    pub requests: u64,
    /// Requests the proxy log says it blocked.
    pub blocked: u64,
    /// Distinct identities seen using it (users, addresses, devices).
    pub identities: u64,
    pub first_seen: Date,
    pub last_seen: Date,
    /// The discovery run that saw it.
    pub source: String,
}

/// Settings of one assessment.
#[derive(Debug, Clone)]
pub struct AssessOptions {
    /// The day the assessment is made for; evidence expiry is judged against it.
    pub today: Date,
    /// Evidence expiring within this many days is reported as `expiring`.
    pub expiring_within_days: i64,
    /// Evidence observed automatically, from the store (within the observation window).
    pub observed: Vec<ObservedEvidence>,
    /// Traffic observed for applications, from the store (within the observation window).
    pub traffic: Vec<ObservedTraffic>,
    /// GenAI services discovery saw that no application covers (within the window).
    pub unlisted: Vec<UnlistedService>,
    /// The first day of the observation window, when observations were read.
    pub observed_since: Option<Date>,
    /// Evidence files checked on disk, by the path written in the estate. A file not in the
    /// map was not checked (a library caller without a file system).
    pub files: BTreeMap<String, FileCheck>,
}

impl AssessOptions {
    pub fn new(today: Date) -> Self {
        Self {
            today,
            expiring_within_days: 30,
            observed: Vec::new(),
            traffic: Vec::new(),
            unlisted: Vec::new(),
            observed_since: None,
            files: BTreeMap::new(),
        }
    }
}

/// The state of the evidence for one duty, or of one piece of evidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EvidenceStatus {
    Missing,
    Expired,
    Expiring,
    Current,
    /// The control is justified as not applicable: no evidence is needed.
    NotNeeded,
}

impl EvidenceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Current => "current",
            Self::Expiring => "expiring",
            Self::Expired => "expired",
            Self::Missing => "missing",
            Self::NotNeeded => "not-needed",
        }
    }

    fn of(valid_until: Option<Date>, options: &AssessOptions) -> Self {
        match valid_until {
            None => Self::Current,
            Some(d) if d < options.today => Self::Expired,
            Some(d) if options.today.days_until(d) <= options.expiring_within_days => {
                Self::Expiring
            }
            Some(_) => Self::Current,
        }
    }

    fn counts(self) -> bool {
        matches!(self, Self::Current | Self::Expiring)
    }
}

/// Why a duty is not covered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Gap {
    /// The catalog leaves the area to the model or the contract (`model-dependent`) and the
    /// estate does not say who owns it for the component (`owners`).
    Unresolved,
    /// No internal team owns the customer's part.
    Unowned,
    /// No control statement for the area.
    NoControl,
    /// The control is only planned.
    ControlPlanned,
    /// The control is only partly in place.
    ControlPartial,
    /// No evidence that counts.
    EvidenceMissing,
    /// All evidence has expired (or gone stale past the maximum review age).
    EvidenceExpired,
    /// An evidence file is missing or no longer matches its `sha256`, or a review date lies
    /// in the future.
    EvidenceMismatch,
    /// What demarc observed contradicts what the estate claims.
    Contradicted,
}

impl Gap {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unresolved => "unresolved",
            Self::Unowned => "unowned",
            Self::NoControl => "no-control",
            Self::ControlPlanned => "control-planned",
            Self::ControlPartial => "control-partial",
            Self::EvidenceMissing => "evidence-missing",
            Self::EvidenceExpired => "evidence-expired",
            Self::EvidenceMismatch => "evidence-mismatch",
            Self::Contradicted => "contradicted",
        }
    }

    /// Gaps a risk acceptance cannot waive: they say the estate's claims are untrue.
    fn is_untruth(self) -> bool {
        matches!(self, Self::EvidenceMismatch | Self::Contradicted)
    }
}

/// The control status as assessed: the estate's statement, `observed` when the estate
/// accepts observation alone for the area and demarc observed the control working, or
/// `missing`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AssessedControl {
    Implemented,
    Partial,
    Planned,
    NotApplicable,
    /// No statement, observation accepted for the area, and demarc observed the control.
    Observed,
    Missing,
}

impl AssessedControl {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Implemented => "implemented",
            Self::Partial => "partial",
            Self::Planned => "planned",
            Self::NotApplicable => "not-applicable",
            Self::Observed => "observed",
            Self::Missing => "missing",
        }
    }
}

impl From<ControlStatus> for AssessedControl {
    fn from(s: ControlStatus) -> Self {
        match s {
            ControlStatus::Implemented => Self::Implemented,
            ControlStatus::Partial => Self::Partial,
            ControlStatus::Planned => Self::Planned,
            ControlStatus::NotApplicable => Self::NotApplicable,
        }
    }
}

/// One piece of reviewed evidence from the estate, as judged.
#[derive(Debug, Clone, Serialize)]
pub struct DeclaredEvidence {
    pub description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// What was found at `file`; absent when there is no file or it was not checked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_check: Option<FileCheck>,
    pub reviewer: String,
    pub reviewed: Date,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires: Option<Date>,
    /// When it stops counting: `expires`, else the review date plus the maximum review age.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<Date>,
    pub status: EvidenceStatus,
    /// Why it does not count although its dates are fine (file missing or changed, review
    /// date in the future).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

impl DeclaredEvidence {
    /// Whether it counts for the duty.
    pub fn counts(&self) -> bool {
        self.problem.is_none() && self.status.counts()
    }
}

/// One observation demarc made itself, for the duty's application and area.
#[derive(Debug, Clone, Serialize)]
pub struct ObservedItem {
    pub kind: ObservationKind,
    pub source: String,
    pub observed_at: Date,
    pub summary: String,
    pub expires: Date,
    pub status: EvidenceStatus,
    /// Whether it counts as evidence on its own (the estate's `accept_observed`).
    pub accepted: bool,
}

/// A risk acceptance that applies to a duty, as judged.
#[derive(Debug, Clone, Serialize)]
pub struct AcceptedRisk {
    pub owner: String,
    pub reason: String,
    pub approved_by: String,
    pub approved: Date,
    pub expires: Date,
    pub status: EvidenceStatus,
}

/// What kind of claim an observation contradicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ContradictionKind {
    /// Traffic for an application whose status is `unsanctioned`.
    UnsanctionedTraffic,
    /// Traffic for an application whose control for the area says it is blocked.
    BlockedTraffic,
    /// Observation in an area whose control says it does not apply.
    NotApplicableObserved,
    /// Discovery saw direct traffic to the provider endpoints of an application that the
    /// estate says goes through the gateway.
    GatewayBypass,
}

impl ContradictionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UnsanctionedTraffic => "unsanctioned-traffic",
            Self::BlockedTraffic => "blocked-traffic",
            Self::NotApplicableObserved => "not-applicable-observed",
            Self::GatewayBypass => "gateway-bypass",
        }
    }
}

/// Something demarc saw that disagrees with the estate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Contradiction {
    pub kind: ContradictionKind,
    /// What was seen, in one line.
    pub detail: String,
    /// Where it was seen (the gateway's audit chain, a discovery run).
    pub source: String,
    /// The last day it was seen.
    pub time: Date,
    pub first_seen: Date,
}

/// One customer duty of one application, assessed.
#[derive(Debug, Clone, Serialize)]
pub struct DutyAssessment {
    pub area: String,
    pub title: String,
    /// The owner: `customer` or `shared`, or `model-dependent` while unresolved (the cell's
    /// owner, or the component's `owners` entry for a model-dependent cell).
    pub owner: &'static str,
    /// The owner comes from the component's `owners` (the cell is model-dependent).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub owner_from_estate: bool,
    /// How the catalog cell rests on its source: `stated`, `inferred` or `disputed`.
    pub basis: Basis,
    pub accountable: Party,
    pub also_responsible: Vec<Party>,
    /// Why the accountable party is accountable (cell, lead, team assignment).
    pub accountable_reason: String,
    /// The component the area was resolved from (an area supplied by several components has
    /// one duty per component).
    pub component: String,
    /// The catalog service model the cell was read under.
    pub service_model: String,
    /// How it was found: `direct` (the component's own), `override` (the component's
    /// `service_models`) or `mapped` (the catalog's `maps_from`).
    pub service_model_rule: ServiceModelRule,
    /// Why, in one sentence (for `mapped`, the catalog's note).
    pub service_model_reason: String,
    pub owner_team: Option<String>,
    /// Where the owning team comes from: `area`, `default` or `application-owner`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner_team_source: Option<TeamSource>,
    pub control: AssessedControl,
    /// The control statement, or the justification of a not-applicable control.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub control_statement: Option<String>,
    pub evidence: EvidenceStatus,
    /// The latest validity date among the evidence that counts, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence_expires: Option<Date>,
    /// Summaries of current observations (also in `observed_evidence`, with details).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub observed: Vec<String>,
    /// Reviewed evidence from the estate, each judged.
    pub declared_evidence: Vec<DeclaredEvidence>,
    /// What demarc observed for this application and area.
    pub observed_evidence: Vec<ObservedItem>,
    /// A risk acceptance for the duty, if any (current or expired).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub risk_acceptance: Option<AcceptedRisk>,
    /// The duty's gaps are accepted by a current risk acceptance.
    pub risk_accepted: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub contradictions: Vec<Contradiction>,
    pub covered: bool,
    pub gaps: Vec<Gap>,
}

impl DutyAssessment {
    /// The gap names joined by `separator` (empty when the duty is covered).
    pub fn gap_list(&self, separator: &str) -> String {
        self.gaps
            .iter()
            .map(|g| g.as_str())
            .collect::<Vec<_>>()
            .join(separator)
    }

    /// The provider a shared duty is shared with, if any.
    pub fn shared_with(&self) -> Option<&str> {
        self.also_responsible
            .iter()
            .chain(std::iter::once(&self.accountable))
            .find_map(|p| match p {
                Party::Provider { id } if self.owner == "shared" => Some(id.as_str()),
                _ => None,
            })
    }
}

/// An area that falls wholly on a provider: inherited, nothing for the customer to show.
#[derive(Debug, Clone, Serialize)]
pub struct InheritedArea {
    pub area: String,
    pub provider: String,
    /// The component the area was resolved from.
    pub component: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Coverage {
    pub covered: usize,
    pub total: usize,
    /// Covered duties as a percentage of all customer duties; `None` (JSON `null`) when there
    /// are no duties: nothing assessed is not "100% covered".
    pub percent: Option<f64>,
}

impl Coverage {
    pub fn new(covered: usize, total: usize) -> Self {
        let percent = (total > 0).then(|| (covered as f64 * 1000.0 / total as f64).round() / 10.0);
        Self {
            covered,
            total,
            percent,
        }
    }

    /// `83.3%`, or `n/a` when there are no duties.
    pub fn percent_label(&self) -> String {
        match self.percent {
            Some(p) => format!("{p}%"),
            None => "n/a".to_string(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ApplicationAssessment {
    pub id: String,
    pub name: String,
    pub owner: String,
    pub status: AppStatus,
    pub data_classification: &'static str,
    /// Service models of the application's components, deduplicated, in component order.
    pub service_models: Vec<String>,
    pub duties: Vec<DutyAssessment>,
    pub inherited: Vec<InheritedArea>,
    /// Everything demarc saw that disagrees with the estate for this application.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub contradictions: Vec<Contradiction>,
    pub coverage: Coverage,
    pub gaps: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub applications: usize,
    /// Applications whose status is `unsanctioned`.
    pub unsanctioned_applications: usize,
    /// Applications per status (`sanctioned`, `tolerated`, `unsanctioned`, `discovered`).
    pub applications_by_status: BTreeMap<&'static str, usize>,
    pub duties: usize,
    pub coverage: Coverage,
    /// Duties that are not covered (risk-accepted ones included).
    pub gaps: usize,
    /// Duties not covered whose gaps a current risk acceptance accepts.
    pub risk_accepted: usize,
    /// Duties whose cell is model-dependent and not resolved by the estate's `owners`.
    pub unresolved: usize,
    pub unowned: usize,
    pub evidence_expired: usize,
    pub evidence_expiring: usize,
    /// Duties with no evidence that counts (not-applicable duties need none).
    pub evidence_missing: usize,
    pub evidence_mismatch: usize,
    /// Duties whose control is justified as not applicable.
    pub not_applicable: usize,
    /// Duties with a `contradicted` gap.
    pub contradicted: usize,
    /// Areas wholly on a provider, over all applications.
    pub inherited: usize,
    /// GenAI services seen in use that no application covers (usage governance).
    pub unlisted_services: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct CatalogRef {
    pub id: String,
    pub version: String,
}

/// The whole assessment of an estate.
#[derive(Debug, Clone, Serialize)]
pub struct Assessment {
    pub catalog: CatalogRef,
    pub organisation: String,
    pub date: Date,
    pub expiring_within_days: i64,
    /// The first day of the observation window, when observations were read from a store.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed_since: Option<Date>,
    pub applications: Vec<ApplicationAssessment>,
    /// GenAI services seen in use that no application covers (organisation-level
    /// usage-governance findings, `unlisted-service`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unlisted_services: Vec<UnlistedService>,
    pub summary: Summary,
}

/// Assess every application of the estate.
pub fn assess(
    estate: &CheckedEstate,
    catalog: &CheckedCatalog,
    options: &AssessOptions,
) -> Assessment {
    let mut applications = Vec::with_capacity(estate.applications().len());
    let summary = assess_each(estate, catalog, options, |app| applications.push(app));
    Assessment {
        catalog: CatalogRef {
            id: catalog.id().to_string(),
            version: catalog.catalog().version.clone(),
        },
        organisation: estate.estate().organisation.name.clone(),
        date: options.today,
        expiring_within_days: options.expiring_within_days,
        observed_since: options.observed_since,
        applications,
        unlisted_services: options.unlisted.clone(),
        summary,
    }
}

/// Assess the applications one at a time, in estate order, handing each to `each`, and
/// return the summary. A caller that writes each application out as it comes (the JSON report)
/// never holds the whole assessment: only the summary accumulates.
pub fn assess_each(
    estate: &CheckedEstate,
    catalog: &CheckedCatalog,
    options: &AssessOptions,
    mut each: impl FnMut(ApplicationAssessment),
) -> Summary {
    // Observations grouped by application once, so each duty looks only at its own.
    let mut seen = AppObservations::index(options);
    let mut summary = Summary::empty();
    let mut covered = 0;
    for app in estate.applications() {
        let own = seen.remove(app.id.as_str()).unwrap_or_default();
        let assessed = assess_with(estate, app, catalog, options, &own);
        covered += summary.add(&assessed);
        each(assessed);
    }
    summary.coverage = Coverage::new(covered, summary.duties);
    summary.unlisted_services = options.unlisted.len();
    summary
}

impl Summary {
    fn empty() -> Self {
        Self {
            applications: 0,
            unsanctioned_applications: 0,
            applications_by_status: BTreeMap::new(),
            duties: 0,
            coverage: Coverage::new(0, 0),
            gaps: 0,
            risk_accepted: 0,
            unresolved: 0,
            unowned: 0,
            evidence_expired: 0,
            evidence_expiring: 0,
            evidence_missing: 0,
            evidence_mismatch: 0,
            not_applicable: 0,
            contradicted: 0,
            inherited: 0,
            unlisted_services: 0,
        }
    }

    /// Count one application in; returns its covered duties.
    fn add(&mut self, a: &ApplicationAssessment) -> usize {
        self.applications += 1;
        *self
            .applications_by_status
            .entry(a.status.as_str())
            .or_insert(0) += 1;
        self.unsanctioned_applications += usize::from(a.status == AppStatus::Unsanctioned);
        self.inherited += a.inherited.len();
        let mut covered = 0;
        for d in &a.duties {
            self.duties += 1;
            covered += usize::from(d.covered);
            self.gaps += usize::from(!d.covered);
            self.risk_accepted += usize::from(d.risk_accepted);
            self.unresolved += usize::from(d.gaps.contains(&Gap::Unresolved));
            self.unowned += usize::from(d.gaps.contains(&Gap::Unowned));
            self.not_applicable += usize::from(d.control == AssessedControl::NotApplicable);
            self.contradicted += usize::from(d.gaps.contains(&Gap::Contradicted));
            self.evidence_mismatch += usize::from(d.gaps.contains(&Gap::EvidenceMismatch));
            match d.evidence {
                EvidenceStatus::Expired => self.evidence_expired += 1,
                EvidenceStatus::Expiring => self.evidence_expiring += 1,
                EvidenceStatus::Missing => self.evidence_missing += 1,
                EvidenceStatus::Current | EvidenceStatus::NotNeeded => {}
            }
        }
        covered
    }
}

/// The observations of one application.
#[derive(Default)]
struct AppObservations<'a> {
    evidence: Vec<&'a ObservedEvidence>,
    /// Only entries with requests.
    traffic: Vec<&'a ObservedTraffic>,
}

impl<'a> AppObservations<'a> {
    fn index(options: &'a AssessOptions) -> HashMap<&'a str, AppObservations<'a>> {
        let mut out: HashMap<&str, AppObservations<'_>> = HashMap::new();
        for o in &options.observed {
            out.entry(o.application.as_str())
                .or_default()
                .evidence
                .push(o);
        }
        for t in options.traffic.iter().filter(|t| t.requests > 0) {
            out.entry(t.application.as_str())
                .or_default()
                .traffic
                .push(t);
        }
        out
    }
}

/// Assess one application of `estate`.
pub fn assess_application(
    estate: &CheckedEstate,
    app: &Application,
    catalog: &CheckedCatalog,
    options: &AssessOptions,
) -> ApplicationAssessment {
    let own = AppObservations {
        evidence: options
            .observed
            .iter()
            .filter(|o| o.application == app.id)
            .collect(),
        traffic: options
            .traffic
            .iter()
            .filter(|t| t.application == app.id && t.requests > 0)
            .collect(),
    };
    assess_with(estate, app, catalog, options, &own)
}

fn assess_with(
    estate: &CheckedEstate,
    app: &Application,
    catalog: &CheckedCatalog,
    options: &AssessOptions,
    seen: &AppObservations<'_>,
) -> ApplicationAssessment {
    let policy = estate.estate().evidence_policy.as_ref();
    let mut duties = Vec::new();
    let mut inherited = Vec::new();
    for duty in resolve::resolve_application(app, catalog) {
        if duty.customer_involved {
            duties.push(assess_duty(app, &duty, policy, options, seen));
        } else if let Party::Provider { id } = &duty.accountable {
            inherited.push(InheritedArea {
                area: duty.area.id.clone(),
                provider: id.clone(),
                component: duty.component.id.clone(),
            });
        }
    }
    let mut contradictions: Vec<Contradiction> = duties
        .iter()
        .flat_map(|d| d.contradictions.iter().cloned())
        .collect();
    // Unsanctioned traffic and gateway bypasses are contradictions of the application even
    // where the catalog maps the observation to none of its duties.
    for &t in &seen.traffic {
        if app.status == AppStatus::Unsanctioned {
            contradictions.push(contradiction(ContradictionKind::UnsanctionedTraffic, t));
        }
        if app.through_gateway && t.kind == ObservationKind::Discovery {
            contradictions.push(contradiction(ContradictionKind::GatewayBypass, t));
        }
    }
    contradictions.sort_by(|a, b| (a.kind, &a.source).cmp(&(b.kind, &b.source)));
    contradictions.dedup();
    let covered = duties.iter().filter(|d| d.covered).count();
    let mut service_models: Vec<String> = Vec::new();
    for c in &app.components {
        let sm = resolve::catalog_service_model(c, catalog)
            .map_or(c.service_model.as_str(), |(sm, _, _)| sm);
        if !service_models.iter().any(|s| s == sm) {
            service_models.push(sm.to_string());
        }
    }
    ApplicationAssessment {
        id: app.id.clone(),
        name: app.name.clone(),
        owner: app.owner.clone(),
        status: app.status,
        data_classification: app.data_classification.as_str(),
        service_models,
        coverage: Coverage::new(covered, duties.len()),
        gaps: duties.len() - covered,
        duties,
        inherited,
        contradictions,
    }
}

fn contradiction(kind: ContradictionKind, t: &ObservedTraffic) -> Contradiction {
    let what = match t.kind {
        ObservationKind::Discovery => "seen in network logs",
        _ => "served by the gateway",
    };
    let mut detail = format!(
        "{} {} {what} between {} and {}",
        t.requests,
        if t.requests == 1 {
            "request"
        } else {
            "requests"
        },
        t.first_seen,
        t.last_seen
    );
    if let Some(more) = &t.detail {
        detail.push_str(&format!(" ({more})"));
    }
    Contradiction {
        kind,
        detail,
        source: t.source.clone(),
        time: t.last_seen,
        first_seen: t.first_seen,
    }
}

/// The maximum review age for `area`: the estate's per-area value, its global value, then
/// the catalog's default.
fn max_review_age(area: &Area, policy: Option<&EvidencePolicy>) -> Option<u32> {
    policy
        .and_then(|p| p.areas.get(&area.id).copied().or(p.max_review_age_days))
        .or(area.max_review_age_days)
}

fn assess_duty(
    app: &Application,
    duty: &Duty<'_>,
    policy: Option<&EvidencePolicy>,
    options: &AssessOptions,
    seen: &AppObservations<'_>,
) -> DutyAssessment {
    let area = duty.area;
    let component = duty.component.id.as_str();
    let accepted = app.accept_observed.contains(&area.id);
    let observed: Vec<ObservedItem> = seen
        .evidence
        .iter()
        .filter(|o| o.area == area.id)
        .map(|o| ObservedItem {
            kind: o.kind,
            source: o.source.clone(),
            observed_at: o.observed_at,
            summary: o.summary.clone(),
            expires: o.expires,
            status: EvidenceStatus::of(Some(o.expires), options),
            accepted,
        })
        .collect();
    let declared: Vec<DeclaredEvidence> = app
        .evidence
        .iter()
        .filter(|e| e.area == area.id && e.applies_to(component))
        .map(|e| judge_declared(e, max_review_age(area, policy), options))
        .collect();
    let statement = app.controls.get(&area.id);
    let observed_counts = accepted && observed.iter().any(|o| o.status.counts());
    let control = match statement {
        Some(c) => AssessedControl::from(c.status),
        None if observed_counts => AssessedControl::Observed,
        None => AssessedControl::Missing,
    };

    // The evidence status: the best among what counts. Observation counts only where the
    // estate accepts it for this area.
    let mut best: Option<(EvidenceStatus, Option<Date>)> = None;
    let candidates = declared
        .iter()
        .filter(|e| e.problem.is_none())
        .map(|e| (e.status, e.valid_until))
        .chain(
            observed
                .iter()
                .filter(|o| o.accepted)
                .map(|o| (o.status, Some(o.expires))),
        );
    for (status, until) in candidates {
        // Later validity wins; no end date at all is best.
        let key = |u: Option<Date>| u.map_or(i64::MAX, Date::days_since_epoch);
        if best.is_none_or(|(_, b)| key(until) > key(b)) {
            best = Some((status, until));
        }
    }
    let (mut evidence, evidence_expires) = best.unwrap_or((EvidenceStatus::Missing, None));

    let contradictions = contradictions_for(app, area, statement, &observed, &seen.traffic);

    let mut gaps = Vec::new();
    if duty.owner == Owner::ModelDependent {
        gaps.push(Gap::Unresolved);
    } else if duty.team.is_none() {
        gaps.push(Gap::Unowned);
    }
    match control {
        AssessedControl::Missing => gaps.push(Gap::NoControl),
        AssessedControl::Planned => gaps.push(Gap::ControlPlanned),
        AssessedControl::Partial => gaps.push(Gap::ControlPartial),
        AssessedControl::Implemented
        | AssessedControl::NotApplicable
        | AssessedControl::Observed => {}
    }
    if control == AssessedControl::NotApplicable {
        // A justified not-applicable control needs no evidence.
        evidence = EvidenceStatus::NotNeeded;
    } else {
        match evidence {
            EvidenceStatus::Missing => gaps.push(Gap::EvidenceMissing),
            EvidenceStatus::Expired => gaps.push(Gap::EvidenceExpired),
            EvidenceStatus::Current | EvidenceStatus::Expiring | EvidenceStatus::NotNeeded => {}
        }
    }
    if declared.iter().any(|e| e.problem.is_some()) {
        gaps.push(Gap::EvidenceMismatch);
    }
    if !contradictions.is_empty() {
        gaps.push(Gap::Contradicted);
    }

    let risk_acceptance = app
        .exceptions
        .iter()
        .filter(|x| x.area == area.id && x.applies_to(component))
        .max_by_key(|x| x.expires)
        .map(|x| judge_acceptance(x, options));
    let risk_accepted = !gaps.is_empty()
        && !gaps.iter().any(|g| g.is_untruth() || *g == Gap::Unresolved)
        && risk_acceptance.as_ref().is_some_and(|r| r.status.counts());

    DutyAssessment {
        area: area.id.clone(),
        title: area.title.clone(),
        owner: duty.owner.as_str(),
        owner_from_estate: duty.owner_from_estate,
        basis: duty.cell.basis,
        accountable: duty.accountable.clone(),
        also_responsible: duty.also_responsible.clone(),
        accountable_reason: duty.accountable_reason(),
        component: component.to_string(),
        service_model: duty.service_model.to_string(),
        service_model_rule: duty.service_model_rule,
        service_model_reason: duty.service_model_reason(),
        owner_team: duty.team.map(|(t, _)| t.to_string()),
        owner_team_source: duty.team.map(|(_, s)| s),
        control,
        control_statement: statement.and_then(control_text),
        evidence,
        evidence_expires: if evidence == EvidenceStatus::NotNeeded {
            None
        } else {
            evidence_expires
        },
        observed: observed
            .iter()
            .filter(|o| o.status.counts())
            .map(|o| format!("{}: {}", o.source, o.summary))
            .collect(),
        declared_evidence: declared,
        observed_evidence: observed,
        risk_acceptance,
        risk_accepted,
        contradictions,
        covered: gaps.is_empty(),
        gaps,
    }
}

fn control_text(c: &Control) -> Option<String> {
    match c.status {
        ControlStatus::NotApplicable => c.justification.clone().or_else(|| c.statement.clone()),
        _ => c.statement.clone(),
    }
}

fn judge_declared(e: &Evidence, max_age: Option<u32>, options: &AssessOptions) -> DeclaredEvidence {
    let valid_until = e
        .expires
        .or_else(|| max_age.map(|days| e.reviewed.add_days(i64::from(days))));
    let file_check = e.file.as_ref().and_then(|f| options.files.get(f)).cloned();
    let problem = if e.reviewed > options.today {
        Some(format!(
            "reviewed on {}, after the assessment date {}",
            e.reviewed, options.today
        ))
    } else {
        match &file_check {
            Some(FileCheck::Mismatch { actual }) => Some(format!(
                "file `{}` changed: its sha256 is {actual}, not the recorded one",
                e.file.as_deref().unwrap_or_default()
            )),
            Some(FileCheck::Missing { reason }) => Some(format!(
                "file `{}` cannot be read: {reason}",
                e.file.as_deref().unwrap_or_default()
            )),
            Some(c) if !c.holds() => Some("file check failed".to_string()),
            _ => None,
        }
    };
    DeclaredEvidence {
        description: e.description.clone(),
        link: e.link.clone(),
        file: e.file.clone(),
        sha256: e.sha256.clone(),
        file_check,
        reviewer: e.reviewer.clone(),
        reviewed: e.reviewed,
        expires: e.expires,
        valid_until,
        status: EvidenceStatus::of(valid_until, options),
        problem,
    }
}

fn judge_acceptance(x: &RiskAcceptance, options: &AssessOptions) -> AcceptedRisk {
    AcceptedRisk {
        owner: x.owner.clone(),
        reason: x.reason.clone(),
        approved_by: x.approved_by.clone(),
        approved: x.approved,
        expires: x.expires,
        status: EvidenceStatus::of(Some(x.expires), options),
    }
}

/// What demarc saw that disagrees with the estate's claims for one duty.
fn contradictions_for(
    app: &Application,
    area: &Area,
    control: Option<&Control>,
    observed: &[ObservedItem],
    traffic: &[&ObservedTraffic],
) -> Vec<Contradiction> {
    let mut out = Vec::new();
    for &t in traffic {
        let maps_here = area.observed_by.contains(&t.kind);
        if app.status == AppStatus::Unsanctioned && maps_here {
            out.push(contradiction(ContradictionKind::UnsanctionedTraffic, t));
        }
        if control.is_some_and(|c| c.blocked) {
            out.push(contradiction(ContradictionKind::BlockedTraffic, t));
        }
        if control.is_some_and(|c| c.status == ControlStatus::NotApplicable) && maps_here {
            out.push(contradiction(ContradictionKind::NotApplicableObserved, t));
        }
        if app.through_gateway && t.kind == ObservationKind::Discovery && maps_here {
            out.push(contradiction(ContradictionKind::GatewayBypass, t));
        }
    }
    if control.is_some_and(|c| c.status == ControlStatus::NotApplicable) {
        for o in observed.iter().filter(|o| o.status.counts()) {
            out.push(Contradiction {
                kind: ContradictionKind::NotApplicableObserved,
                detail: format!("{} observed: {}", o.kind, o.summary),
                source: o.source.clone(),
                time: o.observed_at,
                first_seen: o.observed_at,
            });
        }
    }
    out
}

/// Problems with reviewed evidence and risk acceptances that need the file system or the
/// date to see: an evidence file that is missing or changed, a review or approval date in the
/// future. `validate` reports them as errors, located in the estate file; `assess` reports the
/// affected duties as `evidence-mismatch`.
pub fn evidence_diagnostics(
    estate: &CheckedEstate,
    today: Date,
    files: &BTreeMap<String, FileCheck>,
) -> Vec<crate::Diagnostic> {
    use crate::Diagnostic;
    let mut out = Vec::new();
    for (i, app) in estate.applications().iter().enumerate() {
        for (j, e) in app.evidence.iter().enumerate() {
            let at = format!("applications[{i}].evidence[{j}]");
            if e.reviewed > today {
                out.push(
                    Diagnostic::error(
                        format!("{at}.reviewed"),
                        format!(
                            "evidence reviewed on {}, which is after today ({today})",
                            e.reviewed
                        ),
                    )
                    .with_help(
                        "a review date cannot lie in the future; write the day the review happened",
                    ),
                );
            }
            let Some(file) = &e.file else { continue };
            match files.get(file) {
                Some(FileCheck::Missing { reason }) => out.push(
                    Diagnostic::error(
                        format!("{at}.file"),
                        format!("evidence file `{file}` cannot be read: {reason}"),
                    )
                    .with_help("paths are relative to the estate file"),
                ),
                Some(FileCheck::Mismatch { actual }) => out.push(
                    Diagnostic::error(
                        format!("{at}.sha256"),
                        format!("evidence file `{file}` does not match its sha256: the file's is {actual}"),
                    )
                    .with_help("the file changed after its review: review it again and record the new sha256"),
                ),
                Some(FileCheck::Verified | FileCheck::Unpinned) | None => {}
            }
        }
        for (j, x) in app.exceptions.iter().enumerate() {
            if x.approved > today {
                out.push(Diagnostic::error(
                    format!("applications[{i}].exceptions[{j}].approved"),
                    format!(
                        "risk acceptance approved on {}, which is after today ({today})",
                        x.approved
                    ),
                ));
            }
        }
    }
    out
}
