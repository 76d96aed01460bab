//! Resolution: for one application and one area, who is accountable.
//!
//! The rule, in full:
//! 1. The area belongs to a layer. The component that supplies that layer is the first
//!    component that lists the layer under `supplies`; failing that, the first component
//!    whose kind comes earliest in the layer's `supplied_by` list; failing that (no kind
//!    listed), the application's first component. A layer with `only_with` kinds applies
//!    only to applications that have a component of one of them (or that name it in
//!    `supplies`); for others its areas resolve to no duty.
//! 2. Other components supply the layer too, each with duties of its own: every other
//!    component that lists the layer under `supplies`, and every component that lists no
//!    layers and whose kind is in the layer's `also_supplied_by` (a plugin feeding context).
//! 3. The catalog cell for the area under each supplying component's *catalog* service model
//!    says who owns it. That service model is the component's `service_model` when the
//!    catalog has that id (`direct`); else the component's `service_models` entry for the
//!    catalog (`override`); else the first catalog service model, in catalog order, whose
//!    `maps_from` takes the component's service model and kind (`mapped`).
//! 4. `provider` -> the component's provider is accountable. `customer` -> the internal team
//!    assigned to the area, else the application's default team, else the application's
//!    owner team, is accountable. `shared` -> the lead side is accountable and the other side
//!    is also responsible. `n/a` -> no duty. `model-dependent` -> the component's `owners`
//!    entry for the catalog and area gives the owner (then as above); without one the duty is
//!    unresolved: nobody is accountable, and the assessment reports it as a gap.

use serde::Serialize;

use crate::catalog::{Area, Cell, CheckedCatalog, MapsFrom, Owner, Side};
use crate::estate::{Application, Component};

/// A party that can carry a duty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Party {
    /// An AI service provider, by id from the estate.
    Provider { id: String },
    /// An internal team, by id; `None` when no team was assigned (a gap).
    Team { id: Option<String> },
    /// Nobody yet: the catalog leaves the cell to the model or the contract and the estate
    /// does not say who owns it (`owners`).
    Unresolved,
}

impl Party {
    /// `provider:azure`, `team:ai-platform`, or `team:(unowned)`.
    pub fn label(&self) -> String {
        match self {
            Self::Provider { id } => format!("provider:{id}"),
            Self::Team { id: Some(id) } => format!("team:{id}"),
            Self::Team { id: None } => "team:(unowned)".to_string(),
            Self::Unresolved => "(model-dependent, unresolved)".to_string(),
        }
    }
}

/// How a component's catalog service model was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServiceModelRule {
    /// The component's `service_model` is an id of the catalog.
    Direct,
    /// The component's `service_models` names one for the catalog.
    Override,
    /// The catalog's `maps_from` takes the component's service model (and kind).
    Mapped,
}

impl ServiceModelRule {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::Override => "override",
            Self::Mapped => "mapped",
        }
    }
}

/// The catalog service model `component` is assessed under, how it was found, and the
/// `maps_from` entry when mapped. `None` when the catalog cannot take the component (estate
/// validation reports it).
pub fn catalog_service_model<'a>(
    component: &'a Component,
    catalog: &'a CheckedCatalog,
) -> Option<(&'a str, ServiceModelRule, Option<&'a MapsFrom>)> {
    if catalog.has_service_model(&component.service_model) {
        return Some((
            component.service_model.as_str(),
            ServiceModelRule::Direct,
            None,
        ));
    }
    if let Some(sm) = component.service_models.get(catalog.id())
        && catalog.has_service_model(sm)
    {
        return Some((sm.as_str(), ServiceModelRule::Override, None));
    }
    catalog
        .map_service_model(&component.service_model, component.kind)
        .map(|(sm, m)| (sm.id.as_str(), ServiceModelRule::Mapped, m))
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
    /// The catalog service model the cell was read under, and how it was found.
    pub service_model: &'a str,
    pub service_model_rule: ServiceModelRule,
    /// The `maps_from` entry, when the service model was mapped.
    pub mapping: Option<&'a MapsFrom>,
    /// The owner after the estate's `owners` (the cell's own owner unless it is
    /// model-dependent); `model-dependent` here means unresolved.
    pub owner: Owner,
    pub lead: Option<Side>,
    /// The owner comes from the component's `owners`, not from the catalog.
    pub owner_from_estate: bool,
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

/// The cell's owner and lead after the component's `owners` entry for this catalog and area
/// (only a model-dependent cell takes one), and whether the estate gave them. A model-dependent
/// cell without an entry stays `ModelDependent`: unresolved.
pub fn resolved_owner(
    component: &Component,
    catalog: &CheckedCatalog,
    area: &Area,
    cell: &Cell,
) -> (Owner, Option<Side>, bool) {
    if cell.owner != Owner::ModelDependent {
        return (cell.owner, cell.lead, false);
    }
    match component
        .owners
        .get(catalog.id())
        .and_then(|areas| areas.get(&area.id))
    {
        Some(o) => {
            let (owner, lead) = o.owner_lead();
            (owner, lead, true)
        }
        None => (Owner::ModelDependent, None, false),
    }
}

fn duty_for<'a>(
    app: &'a Application,
    catalog: &'a CheckedCatalog,
    area: &'a Area,
    component: &'a Component,
    rule: SupplyRule,
) -> Option<Duty<'a>> {
    let (service_model, service_model_rule, mapping) = catalog_service_model(component, catalog)?;
    let cell = catalog.cell(area, service_model)?;
    let (owner, lead, owner_from_estate) = resolved_owner(component, catalog, area, cell);
    let customer_involved = matches!(
        owner,
        Owner::Customer | Owner::Shared | Owner::ModelDependent
    );
    let team = if matches!(owner, Owner::Customer | Owner::Shared) {
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
    let (accountable, also_responsible) = match (owner, lead) {
        (Owner::NotApplicable, _) => return None,
        (Owner::ModelDependent, _) => (Party::Unresolved, Vec::new()),
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
        service_model,
        service_model_rule,
        mapping,
        owner,
        lead,
        owner_from_estate,
        accountable,
        also_responsible,
        team,
        customer_involved,
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
        if !layer.only_with.is_empty()
            && !app
                .components
                .iter()
                .any(|c| layer.only_with.contains(&c.kind))
        {
            return None;
        }
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
        let sm = self.service_model_label();
        let what = if self.owner_from_estate {
            format!("the cell under {sm} is model-dependent and the component's `owners`")
        } else {
            format!("the cell under {sm}")
        };
        let cell = match (self.owner, self.lead, self.owner_from_estate) {
            (Owner::Shared, Some(Side::Provider), false) => {
                format!("{what} is shared and the provider leads")
            }
            (Owner::Shared, _, false) => format!("{what} is shared and the customer leads"),
            (Owner::Shared, Some(Side::Provider), true) => {
                format!("{what} makes it shared with the provider leading")
            }
            (Owner::Shared, _, true) => {
                format!("{what} makes it shared with the customer leading")
            }
            (Owner::Provider, _, _) => format!("{what} gives the area to the provider"),
            (Owner::Customer, _, _) => format!("{what} gives the area to the customer"),
            (Owner::NotApplicable, _, _) => format!("{what} is not applicable"),
            (Owner::ModelDependent, _, _) => {
                return format!(
                    "the cell under {sm} is model-dependent (left to the model or the contract) and component `{}` has no `owners` entry for `{}`, so nobody is accountable until the estate says who owns it",
                    self.component.id, self.area.id
                );
            }
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
            Party::Unresolved => cell,
        }
    }

    /// `` `ai-paas` `` with how it was found when not direct: `` `ai-paas` (mapped from
    /// `paas`) `` or `` `agent-paas` (the component's override) ``.
    pub fn service_model_label(&self) -> String {
        let sm = self.service_model;
        match self.service_model_rule {
            ServiceModelRule::Direct => format!("`{sm}`"),
            ServiceModelRule::Override => format!("`{sm}` (the component's override)"),
            ServiceModelRule::Mapped => {
                format!("`{sm}` (mapped from `{}`)", self.component.service_model)
            }
        }
    }

    /// Why the component is assessed under its catalog service model, in one sentence.
    pub fn service_model_reason(&self) -> String {
        let sm = self.service_model;
        let given = &self.component.service_model;
        match self.service_model_rule {
            ServiceModelRule::Direct => format!("`{sm}` is the component's own service model"),
            ServiceModelRule::Override => format!(
                "the component's `service_models` names `{sm}` for this catalog (instead of `{given}`)"
            ),
            ServiceModelRule::Mapped => match self.mapping {
                Some(m) => format!("the catalog maps `{given}` to `{sm}`: {}", m.note.trim()),
                None => format!("the catalog maps `{given}` to `{sm}`"),
            },
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
