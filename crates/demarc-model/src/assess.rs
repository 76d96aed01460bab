//! Assessment: for every duty that falls on the customer, is there an owner, a control and
//! current evidence? Coverage per application and overall, and the list of gaps.

use serde::Serialize;

use crate::catalog::CheckedCatalog;
use crate::date::Date;
use crate::estate::{AppStatus, Application, CheckedEstate, ControlStatus, Evidence};
use crate::observe::ObservationKind;
use crate::resolve::{self, Duty, Party};

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
/// serving it (from the audit trail) or discovery finding it in network logs. Traffic that
/// a claim says cannot happen (an unsanctioned application, a control that blocks it) is a
/// contradiction.
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
    /// The first day of the observation window, when observations were read.
    pub observed_since: Option<Date>,
}

impl AssessOptions {
    pub fn new(today: Date) -> Self {
        Self {
            today,
            expiring_within_days: 30,
            observed: Vec::new(),
            traffic: Vec::new(),
            observed_since: None,
        }
    }
}

/// The state of the evidence for one duty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EvidenceStatus {
    Current,
    Expiring,
    Expired,
    Missing,
}

impl EvidenceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Current => "current",
            Self::Expiring => "expiring",
            Self::Expired => "expired",
            Self::Missing => "missing",
        }
    }
}

/// Why a duty is not covered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Gap {
    /// No internal team owns the customer's part.
    Unowned,
    /// No control statement for the area.
    NoControl,
    /// The control is only planned.
    ControlPlanned,
    /// The control is only partly in place.
    ControlPartial,
    /// No evidence at all.
    EvidenceMissing,
    /// All evidence has expired.
    EvidenceExpired,
}

impl Gap {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unowned => "unowned",
            Self::NoControl => "no-control",
            Self::ControlPlanned => "control-planned",
            Self::ControlPartial => "control-partial",
            Self::EvidenceMissing => "evidence-missing",
            Self::EvidenceExpired => "evidence-expired",
        }
    }
}

/// The control status as assessed: the estate's statement, `observed` when only
/// observed evidence shows the control, or `missing`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AssessedControl {
    Implemented,
    Partial,
    Planned,
    NotApplicable,
    /// No statement, but demarc observed the control working (e.g. gateway enforcement).
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

/// One customer duty of one application, assessed.
#[derive(Debug, Clone, Serialize)]
pub struct DutyAssessment {
    pub area: String,
    pub title: String,
    /// The catalog cell's owner: `customer` or `shared`.
    pub owner: &'static str,
    pub accountable: Party,
    pub also_responsible: Vec<Party>,
    /// The component the area was resolved from.
    pub component: String,
    pub service_model: String,
    pub owner_team: Option<String>,
    pub control: AssessedControl,
    pub evidence: EvidenceStatus,
    /// The latest expiry among the evidence that counts, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence_expires: Option<Date>,
    /// Summaries of observed evidence that counted.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub observed: Vec<String>,
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
}

/// An area that falls wholly on a provider: inherited, nothing for the customer to show.
#[derive(Debug, Clone, Serialize)]
pub struct InheritedArea {
    pub area: String,
    pub provider: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Coverage {
    pub covered: usize,
    pub total: usize,
    /// Covered duties as a percentage of all customer duties (100 when there are none).
    pub percent: f64,
}

impl Coverage {
    fn new(covered: usize, total: usize) -> Self {
        let percent = if total == 0 {
            100.0
        } else {
            (covered as f64 * 1000.0 / total as f64).round() / 10.0
        };
        Self {
            covered,
            total,
            percent,
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
    pub coverage: Coverage,
    pub gaps: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub applications: usize,
    /// Applications not sanctioned (tolerated, unsanctioned or discovered).
    pub unsanctioned_applications: usize,
    pub duties: usize,
    pub coverage: Coverage,
    /// Duties that are not covered.
    pub gaps: usize,
    pub unowned: usize,
    pub evidence_expired: usize,
    pub evidence_expiring: usize,
    pub evidence_missing: usize,
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
    pub applications: Vec<ApplicationAssessment>,
    pub summary: Summary,
}

/// Assess every application of the estate.
pub fn assess(
    estate: &CheckedEstate,
    catalog: &CheckedCatalog,
    options: &AssessOptions,
) -> Assessment {
    let applications: Vec<ApplicationAssessment> = estate
        .applications()
        .iter()
        .map(|app| assess_application(app, catalog, options))
        .collect();
    let duties = applications.iter().flat_map(|a| &a.duties);
    let mut summary = Summary {
        applications: applications.len(),
        unsanctioned_applications: applications
            .iter()
            .filter(|a| a.status != AppStatus::Sanctioned)
            .count(),
        duties: 0,
        coverage: Coverage::new(0, 0),
        gaps: 0,
        unowned: 0,
        evidence_expired: 0,
        evidence_expiring: 0,
        evidence_missing: 0,
    };
    let mut covered = 0;
    for d in duties {
        summary.duties += 1;
        covered += usize::from(d.covered);
        summary.gaps += usize::from(!d.covered);
        summary.unowned += usize::from(d.owner_team.is_none());
        match d.evidence {
            EvidenceStatus::Expired => summary.evidence_expired += 1,
            EvidenceStatus::Expiring => summary.evidence_expiring += 1,
            EvidenceStatus::Missing => summary.evidence_missing += 1,
            EvidenceStatus::Current => {}
        }
    }
    summary.coverage = Coverage::new(covered, summary.duties);
    Assessment {
        catalog: CatalogRef {
            id: catalog.id().to_string(),
            version: catalog.catalog().version.clone(),
        },
        organisation: estate.estate().organisation.name.clone(),
        date: options.today,
        expiring_within_days: options.expiring_within_days,
        applications,
        summary,
    }
}

/// Assess one application.
pub fn assess_application(
    app: &Application,
    catalog: &CheckedCatalog,
    options: &AssessOptions,
) -> ApplicationAssessment {
    let mut duties = Vec::new();
    let mut inherited = Vec::new();
    for duty in resolve::resolve_application(app, catalog) {
        if duty.customer_involved {
            duties.push(assess_duty(app, &duty, options));
        } else if let Party::Provider { id } = &duty.accountable {
            inherited.push(InheritedArea {
                area: duty.area.id.clone(),
                provider: id.clone(),
            });
        }
    }
    let covered = duties.iter().filter(|d| d.covered).count();
    let mut service_models: Vec<String> = Vec::new();
    for c in &app.components {
        if !service_models.contains(&c.service_model) {
            service_models.push(c.service_model.clone());
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
    }
}

fn assess_duty(app: &Application, duty: &Duty<'_>, options: &AssessOptions) -> DutyAssessment {
    let area = duty.area.id.as_str();
    let observed: Vec<&ObservedEvidence> = options
        .observed
        .iter()
        .filter(|o| o.application == app.id && o.area == area && o.expires >= options.today)
        .collect();
    let control = match app.controls.get(area) {
        Some(c) => AssessedControl::from(c.status),
        None if !observed.is_empty() => AssessedControl::Observed,
        None => AssessedControl::Missing,
    };
    let reviewed: Vec<&Evidence> = app.evidence.iter().filter(|e| e.area == area).collect();
    let (evidence, evidence_expires) = evidence_status(&reviewed, &observed, options);

    let mut gaps = Vec::new();
    if duty.team.is_none() {
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
    // A justified not-applicable control needs no evidence.
    if control != AssessedControl::NotApplicable {
        match evidence {
            EvidenceStatus::Missing => gaps.push(Gap::EvidenceMissing),
            EvidenceStatus::Expired => gaps.push(Gap::EvidenceExpired),
            EvidenceStatus::Current | EvidenceStatus::Expiring => {}
        }
    }
    DutyAssessment {
        area: area.to_string(),
        title: duty.area.title.clone(),
        owner: duty.cell.owner.as_str(),
        accountable: duty.accountable.clone(),
        also_responsible: duty.also_responsible.clone(),
        component: duty.component.id.clone(),
        service_model: duty.component.service_model.clone(),
        owner_team: duty.team.map(|(t, _)| t.to_string()),
        control,
        evidence,
        evidence_expires,
        observed: observed
            .iter()
            .map(|o| format!("{}: {}", o.source, o.summary))
            .collect(),
        covered: gaps.is_empty(),
        gaps,
    }
}

/// The best state among the evidence for a duty: current beats expiring beats expired.
fn evidence_status(
    reviewed: &[&Evidence],
    observed: &[&ObservedEvidence],
    options: &AssessOptions,
) -> (EvidenceStatus, Option<Date>) {
    if reviewed.is_empty() && observed.is_empty() {
        return (EvidenceStatus::Missing, None);
    }
    // Evidence without an expiry date never expires.
    let far_future = Date::from_days_since_epoch(i64::MAX / 4);
    let latest = reviewed
        .iter()
        .map(|e| e.expires.unwrap_or(far_future))
        .chain(observed.iter().map(|o| o.expires))
        .max()
        .unwrap_or(far_future);
    let shown = (latest != far_future).then_some(latest);
    if latest < options.today {
        (EvidenceStatus::Expired, shown)
    } else if options.today.days_until(latest) <= options.expiring_within_days {
        (EvidenceStatus::Expiring, shown)
    } else {
        (EvidenceStatus::Current, shown)
    }
}
