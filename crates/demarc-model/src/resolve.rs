//! Resolution: for one application and one area, who is accountable.
//!
//! The rule, in full:
//! 1. The area belongs to a layer. The component that supplies that layer is the first
//!    component that lists the layer under `supplies`; failing that, the first component
//!    whose kind comes earliest in the layer's `supplied_by` list; failing that (no kind
//!    listed), the application's first component.
//! 2. The catalog cell for the area under that component's service model says who owns it.
//! 3. `provider` -> the component's provider is accountable. `customer` -> the internal team
//!    assigned to the area (else the application's default team) is accountable. `shared` ->
//!    the lead side is accountable and the other side is also responsible. `n/a` -> no duty.

use serde::Serialize;

use crate::catalog::{Area, Cell, CheckedCatalog, Owner, Side};
use crate::estate::{Application, Component};

/// A party that can carry a duty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Party {
    /// An AI service provider, by id from the estate.
    Provider { id: String },
    /// An internal team, by id; `None` when no team was assigned (a gap).
    Team { id: Option<String> },
}

impl Party {
    /// `provider:azure`, `team:ai-platform`, or `team:(unowned)`.
    pub fn label(&self) -> String {
        match self {
            Self::Provider { id } => format!("provider:{id}"),
            Self::Team { id: Some(id) } => format!("team:{id}"),
            Self::Team { id: None } => "team:(unowned)".to_string(),
        }
    }
}

/// How the supplying component was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SupplyRule {
    /// The component lists the layer under `supplies`.
    Explicit,
    /// The component's kind is the earliest in the layer's `supplied_by` list.
    KindPriority,
    /// No component's kind is listed; the first component was taken.
    FirstComponent,
}

/// Where the owning team of a customer duty came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TeamSource {
    /// `duties.areas` names a team for this area.
    Area,
    /// `duties.default`.
    Default,
}

/// One area resolved for one application.
#[derive(Debug, Clone)]
pub struct Duty<'a> {
    pub area: &'a Area,
    pub component: &'a Component,
    pub rule: SupplyRule,
    pub cell: &'a Cell,
    /// Exactly one accountable party.
    pub accountable: Party,
    /// Other parties responsible for part of a shared area.
    pub also_responsible: Vec<Party>,
    /// The internal team for the customer's part, if the customer is involved and one is assigned.
    pub team: Option<(&'a str, TeamSource)>,
    /// Whether any part of the area falls on the customer (owner `customer` or `shared`).
    pub customer_involved: bool,
}

/// Resolve every applicable area of `app`, in catalog order. Areas whose cell is `n/a`
/// are left out: they are nobody's duty.
pub fn resolve_application<'a>(app: &'a Application, catalog: &'a CheckedCatalog) -> Vec<Duty<'a>> {
    catalog
        .areas()
        .iter()
        .filter_map(|area| resolve_area(app, catalog, area))
        .collect()
}

/// Resolve one area; `None` when the area is `n/a` for the supplying component or the
/// application has no components.
pub fn resolve_area<'a>(
    app: &'a Application,
    catalog: &'a CheckedCatalog,
    area: &'a Area,
) -> Option<Duty<'a>> {
    let (component, rule) = supplier(app, catalog, &area.layer)?;
    let cell = catalog.cell(area, &component.service_model)?;
    let team = if cell.customer_involved() {
        owning_team(app, &area.id)
    } else {
        None
    };
    let team_party = || Party::Team {
        id: team.map(|(t, _)| t.to_string()),
    };
    let provider_party = || Party::Provider {
        id: component.provider.clone(),
    };
    let (accountable, also_responsible) = match (cell.owner, cell.lead) {
        (Owner::NotApplicable, _) => return None,
        (Owner::Provider, _) => (provider_party(), Vec::new()),
        (Owner::Customer, _) => (team_party(), Vec::new()),
        (Owner::Shared, Some(Side::Provider)) => (provider_party(), vec![team_party()]),
        // Validation guarantees shared cells have a lead; treat a missing one as the customer's.
        (Owner::Shared, Some(Side::Customer) | None) => (team_party(), vec![provider_party()]),
    };
    Some(Duty {
        area,
        component,
        rule,
        cell,
        accountable,
        also_responsible,
        team,
        customer_involved: cell.customer_involved(),
    })
}

/// The component that supplies `layer` for `app`, and why it was chosen.
pub fn supplier<'a>(
    app: &'a Application,
    catalog: &CheckedCatalog,
    layer: &str,
) -> Option<(&'a Component, SupplyRule)> {
    if let Some(c) = app
        .components
        .iter()
        .find(|c| c.supplies.iter().any(|l| l == layer))
    {
        return Some((c, SupplyRule::Explicit));
    }
    if let Some(layer) = catalog.layer(layer) {
        for kind in &layer.supplied_by {
            if let Some(c) = app.components.iter().find(|c| c.kind == *kind) {
                return Some((c, SupplyRule::KindPriority));
            }
        }
    }
    app.components
        .first()
        .map(|c| (c, SupplyRule::FirstComponent))
}

fn owning_team<'a>(app: &'a Application, area: &str) -> Option<(&'a str, TeamSource)> {
    if let Some(team) = app.duties.areas.get(area) {
        return Some((team.as_str(), TeamSource::Area));
    }
    app.duties
        .default
        .as_deref()
        .map(|t| (t, TeamSource::Default))
}
