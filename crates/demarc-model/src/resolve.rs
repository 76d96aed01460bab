//! Resolution: for one application and one area, who is accountable.
//!
//! The rule, in full:
//! 1. The area belongs to a layer. The component that supplies that layer is the first
//!    component that lists the layer under `supplies`; failing that, the first component
//!    whose kind comes earliest in the layer's `supplied_by` list; failing that (no kind
//!    listed), the application's first component.
//! 2. Other components supply the layer too, each with duties of its own: every other
//!    component that lists the layer under `supplies`, and every component that lists no
//!    layers and whose kind is in the layer's `also_supplied_by` (a plugin feeding context).
//! 3. The catalog cell for the area under each supplying component's service model says who
//!    owns it.
//! 4. `provider` -> the component's provider is accountable. `customer` -> the internal team
//!    assigned to the area, else the application's default team, else the application's
//!    owner team, is accountable. `shared` -> the lead side is accountable and the other side
//!    is also responsible. `n/a` -> no duty.

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
    /// Another component lists the layer under `supplies` too.
    AlsoExplicit,
    /// The component's kind is in the layer's `also_supplied_by` list.
    AlsoKind,
}

/// Where the owning team of a customer duty came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TeamSource {
    /// `duties.areas` names a team for this area.
    Area,
    /// `duties.default`.
    Default,
    /// No team given: the application's `owner` team.
    ApplicationOwner,
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

/// Resolve every applicable area of `app`, in catalog order; within an area, the main
/// supplier first, then the others in component order. Areas whose cell is `n/a` are left
/// out: they are nobody's duty.
pub fn resolve_application<'a>(app: &'a Application, catalog: &'a CheckedCatalog) -> Vec<Duty<'a>> {
    catalog
        .areas()
        .iter()
        .flat_map(|area| resolve_area_all(app, catalog, area))
        .collect()
}

/// Resolve one area from its main supplying component; `None` when the area is `n/a` for
/// that component or the application has no components.
pub fn resolve_area<'a>(
    app: &'a Application,
    catalog: &'a CheckedCatalog,
    area: &'a Area,
) -> Option<Duty<'a>> {
    let (component, rule) = supplier(app, catalog, &area.layer)?;
    duty_for(app, catalog, area, component, rule)
}

/// Resolve one area for every component that supplies its layer (main supplier first).
pub fn resolve_area_all<'a>(
    app: &'a Application,
    catalog: &'a CheckedCatalog,
    area: &'a Area,
) -> Vec<Duty<'a>> {
    suppliers(app, catalog, &area.layer)
        .into_iter()
        .filter_map(|(component, rule)| duty_for(app, catalog, area, component, rule))
        .collect()
}

fn duty_for<'a>(
    app: &'a Application,
    catalog: &'a CheckedCatalog,
    area: &'a Area,
    component: &'a Component,
    rule: SupplyRule,
) -> Option<Duty<'a>> {
    let cell = catalog.cell(area, &component.service_model)?;
    let team = if cell.customer_involved() {
        Some(owning_team(app, &area.id))
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

/// Every component that supplies `layer` for `app`: the main [`supplier`] first, then the
/// others in component order (see the rule at the top of this file).
pub fn suppliers<'a>(
    app: &'a Application,
    catalog: &CheckedCatalog,
    layer: &str,
) -> Vec<(&'a Component, SupplyRule)> {
    let Some(main) = supplier(app, catalog, layer) else {
        return Vec::new();
    };
    let also_kinds = catalog
        .layer(layer)
        .map(|l| l.also_supplied_by.as_slice())
        .unwrap_or_default();
    let mut out = vec![main];
    for c in &app.components {
        if std::ptr::eq(c, main.0) {
            continue;
        }
        if c.supplies.iter().any(|l| l == layer) {
            out.push((c, SupplyRule::AlsoExplicit));
        } else if c.supplies.is_empty() && also_kinds.contains(&c.kind) {
            out.push((c, SupplyRule::AlsoKind));
        }
    }
    out
}

/// The team that owns the customer's part of `area`: the area's team, else the default
/// team, else the application's owner (which validation guarantees is a known team).
fn owning_team<'a>(app: &'a Application, area: &str) -> (&'a str, TeamSource) {
    if let Some(team) = app.duties.areas.get(area) {
        return (team.as_str(), TeamSource::Area);
    }
    match app.duties.default.as_deref() {
        Some(team) => (team, TeamSource::Default),
        None => (app.owner.as_str(), TeamSource::ApplicationOwner),
    }
}

impl Duty<'_> {
    /// Why the accountable party is accountable, in one sentence a reviewer can check.
    pub fn accountable_reason(&self) -> String {
        let sm = &self.component.service_model;
        let cell = match (self.cell.owner, self.cell.lead) {
            (Owner::Shared, Some(Side::Provider)) => {
                format!("the cell under `{sm}` is shared and the provider leads")
            }
            (Owner::Shared, _) => format!("the cell under `{sm}` is shared and the customer leads"),
            (Owner::Provider, _) => format!("the cell under `{sm}` gives the area to the provider"),
            (Owner::Customer, _) => format!("the cell under `{sm}` gives the area to the customer"),
            (Owner::NotApplicable, _) => format!("the cell under `{sm}` is not applicable"),
        };
        match &self.accountable {
            Party::Provider { id } => format!(
                "{cell}, so `{id}`, the provider of component `{}`, is accountable",
                self.component.id
            ),
            Party::Team { id } => {
                let team = id.as_deref().unwrap_or("(none)");
                let why = match self.team.map(|(_, s)| s) {
                    Some(TeamSource::Area) => "assigned to this area in `duties.areas`",
                    Some(TeamSource::Default) => "the application's `duties.default`",
                    Some(TeamSource::ApplicationOwner) => {
                        "the application's owner, as no team is assigned under `duties`"
                    }
                    None => "no team assigned",
                };
                format!("{cell}, so team `{team}` is accountable: {why}")
            }
        }
    }
}

impl SupplyRule {
    /// Why a component supplies a layer, given the component's kind and the layer's id.
    pub fn explain(self, kind: &str, layer: &str) -> String {
        match self {
            Self::Explicit => {
                format!("it is the first component that lists `{layer}` under `supplies`")
            }
            Self::KindPriority => format!(
                "`{kind}` is the first kind in the layer's `supplied_by` list that the application has"
            ),
            Self::FirstComponent => {
                "no component's kind supplies the layer, so the first component was taken".into()
            }
            Self::AlsoExplicit => format!("it also lists `{layer}` under `supplies`"),
            Self::AlsoKind => format!(
                "`{kind}` is in the layer's `also_supplied_by` list: each such component has duties of its own"
            ),
        }
    }
}
