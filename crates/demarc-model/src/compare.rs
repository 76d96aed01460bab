//! Comparison: one estate under several catalogs, and where they disagree.
//!
//! The rule, in full:
//! 1. Two catalogs are compared only through a crosswalk between them (built in or given);
//!    pairs without one are listed as not compared.
//! 2. For each application and each relation `a RELATION b` of the crosswalk (any of equal,
//!    subset, superset, intersects), the suppliers of area `a`'s layer under the first
//!    catalog and of area `b`'s layer under the second (the resolution rule of `resolve.rs`)
//!    are paired: the two main suppliers with each other (the application's duty, even when
//!    the catalogs' layers pick different components), and every other supplier with itself
//!    when it supplies both. Each cell is read under its component's service model in its
//!    catalog, after the estate's `owners` for cells the catalog leaves model-dependent.
//! 3. They disagree about the **accountable** party when both name a side and the sides
//!    differ (provider vs customer, or the lead of a shared cell); about the **owner** when
//!    the accountable side is the same (or neither has one) but the owner or lead differs
//!    (customer vs shared with the customer leading, provider vs `n/a`).
//! 4. A cell still model-dependent (no `owners` entry) is compared with nothing; every such
//!    cell of every catalog is listed as **unresolved** instead.

use serde::Serialize;

use crate::catalog::{Area, Cell, CheckedCatalog, Owner, Side};
use crate::crosswalk::{CheckedCrosswalk, RelationKind};
use crate::estate::{Application, Component};
use crate::resolve::{catalog_service_model, resolved_owner, suppliers};

/// What two cells disagree about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DisagreementKind {
    /// The accountable side differs.
    Accountable,
    /// Same accountable side (or none), different owner or lead.
    Owner,
}

impl DisagreementKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accountable => "accountable",
            Self::Owner => "owner",
        }
    }
}

/// One catalog's cell for one component and area, after the estate's `owners`.
#[derive(Debug, Clone)]
pub struct CellRead<'a> {
    /// The component whose service model the cell was read under.
    pub component: &'a Component,
    pub catalog: &'a CheckedCatalog,
    pub area: &'a Area,
    /// The catalog service model the cell was read under.
    pub service_model: &'a str,
    pub cell: &'a Cell,
    /// The owner after `owners` (the cell's own unless model-dependent); `ModelDependent`
    /// means unresolved.
    pub owner: Owner,
    pub lead: Option<Side>,
    /// The owner comes from the component's `owners`, not from the catalog.
    pub owner_from_estate: bool,
}

impl CellRead<'_> {
    /// The accountable side: the owner, or the lead of a shared cell; none for `n/a`.
    pub fn accountable_side(&self) -> Option<Side> {
        match self.owner {
            Owner::Provider => Some(Side::Provider),
            Owner::Customer => Some(Side::Customer),
            Owner::Shared => self.lead,
            Owner::NotApplicable | Owner::ModelDependent => None,
        }
    }

    pub fn unresolved(&self) -> bool {
        self.owner == Owner::ModelDependent
    }
}

/// Two catalogs' cells for one component that disagree.
#[derive(Debug, Clone)]
pub struct Disagreement<'a> {
    /// The first catalog's component (`a.component`; `b.component` may differ when the two
    /// catalogs' layers pick different main suppliers).
    pub component: &'a Component,
    pub kind: DisagreementKind,
    /// How area `a` relates to area `b` in the crosswalk (read `a → b`).
    pub relation: RelationKind,
    pub a: CellRead<'a>,
    pub b: CellRead<'a>,
}

/// A model-dependent cell the estate has not resolved.
#[derive(Debug, Clone)]
pub struct Unresolved<'a> {
    pub component: &'a Component,
    pub cell: CellRead<'a>,
}

/// One application's disagreements and unresolved cells.
#[derive(Debug, Clone)]
pub struct ApplicationComparison<'a> {
    pub application: &'a Application,
    pub disagreements: Vec<Disagreement<'a>>,
    pub unresolved: Vec<Unresolved<'a>>,
}

/// Counts over the whole estate.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ComparisonSummary {
    pub applications: usize,
    /// Applications with at least one disagreement or unresolved cell.
    pub applications_listed: usize,
    pub disagreements: usize,
    pub accountable: usize,
    pub owner: usize,
    pub unresolved: usize,
}

/// Two catalogs compared, through which crosswalk.
#[derive(Debug, Clone)]
pub struct ComparedPair<'a> {
    pub a: &'a CheckedCatalog,
    pub b: &'a CheckedCatalog,
    /// Read `a → b`.
    pub crosswalk: CheckedCrosswalk,
}

/// The estate under several catalogs.
#[derive(Debug, Clone)]
pub struct Comparison<'a> {
    pub catalogs: &'a [CheckedCatalog],
    pub pairs: Vec<ComparedPair<'a>>,
    /// Pairs of catalogs (ids) with no crosswalk, so not compared.
    pub not_compared: Vec<(&'a str, &'a str)>,
    /// Applications with something to report, in estate order.
    pub applications: Vec<ApplicationComparison<'a>>,
    pub summary: ComparisonSummary,
}

/// Compare `applications` under `catalogs`, pair by pair through `crosswalk(a, b)` (read
/// `a → b`; `None` when the two have none).
pub fn compare<'a>(
    applications: &'a [Application],
    catalogs: &'a [CheckedCatalog],
    mut crosswalk: impl FnMut(&CheckedCatalog, &CheckedCatalog) -> Option<CheckedCrosswalk>,
) -> Comparison<'a> {
    let mut pairs = Vec::new();
    let mut not_compared = Vec::new();
    for (i, a) in catalogs.iter().enumerate() {
        for b in &catalogs[i + 1..] {
            match crosswalk(a, b) {
                Some(cw) => pairs.push(ComparedPair {
                    a,
                    b,
                    crosswalk: cw,
                }),
                None => not_compared.push((a.id(), b.id())),
            }
        }
    }
    // Each relation's two areas, looked up once.
    let relations: Vec<Vec<(&Area, &Area, RelationKind)>> = pairs
        .iter()
        .map(|p| {
            p.crosswalk
                .relations()
                .iter()
                .filter_map(|r| Some((p.a.area(&r.from)?, p.b.area(&r.to)?, r.relation)))
                .collect()
        })
        .collect();
    let mut summary = ComparisonSummary {
        applications: applications.len(),
        ..ComparisonSummary::default()
    };
    let mut listed = Vec::new();
    for app in applications {
        let mut disagreements = Vec::new();
        for (pair, rels) in pairs.iter().zip(&relations) {
            for &(area_a, area_b, relation) in rels {
                let in_a = suppliers(app, pair.a, &area_a.layer);
                let in_b = suppliers(app, pair.b, &area_b.layer);
                let mut matched: Vec<(&Component, &Component)> = Vec::new();
                if let (Some((ma, _)), Some((mb, _))) = (in_a.first(), in_b.first()) {
                    matched.push((ma, mb));
                }
                for (c, _) in &in_a {
                    if in_b.iter().any(|(d, _)| std::ptr::eq(*c, *d))
                        && !matched
                            .iter()
                            .any(|(x, y)| std::ptr::eq(*x, *c) && std::ptr::eq(*y, *c))
                    {
                        matched.push((c, c));
                    }
                }
                for (component, cb) in matched {
                    let (Some(a), Some(b)) = (
                        read_cell(component, pair.a, area_a),
                        read_cell(cb, pair.b, area_b),
                    ) else {
                        continue;
                    };
                    if a.unresolved() || b.unresolved() {
                        continue;
                    }
                    let kind = match (a.accountable_side(), b.accountable_side()) {
                        (Some(x), Some(y)) if x != y => DisagreementKind::Accountable,
                        _ if (a.owner, a.lead) != (b.owner, b.lead) => DisagreementKind::Owner,
                        _ => continue,
                    };
                    disagreements.push(Disagreement {
                        component,
                        kind,
                        relation,
                        a,
                        b,
                    });
                }
            }
        }
        let mut unresolved = Vec::new();
        for catalog in catalogs {
            for area in catalog.areas() {
                for (component, _) in suppliers(app, catalog, &area.layer) {
                    if let Some(cell) = read_cell(component, catalog, area)
                        && cell.unresolved()
                    {
                        unresolved.push(Unresolved { component, cell });
                    }
                }
            }
        }
        if disagreements.is_empty() && unresolved.is_empty() {
            continue;
        }
        summary.disagreements += disagreements.len();
        summary.accountable += disagreements
            .iter()
            .filter(|d| d.kind == DisagreementKind::Accountable)
            .count();
        summary.unresolved += unresolved.len();
        listed.push(ApplicationComparison {
            application: app,
            disagreements,
            unresolved,
        });
    }
    summary.owner = summary.disagreements - summary.accountable;
    summary.applications_listed = listed.len();
    Comparison {
        catalogs,
        pairs,
        not_compared,
        applications: listed,
        summary,
    }
}

/// The cell of `area` for `component` under `catalog`, after the estate's `owners`; `None`
/// when the catalog cannot take the component's service model.
pub fn read_cell<'a>(
    component: &'a Component,
    catalog: &'a CheckedCatalog,
    area: &'a Area,
) -> Option<CellRead<'a>> {
    let (service_model, _, _) = catalog_service_model(component, catalog)?;
    let cell = catalog.cell(area, service_model)?;
    let (owner, lead, owner_from_estate) = resolved_owner(component, catalog, area, cell);
    Some(CellRead {
        component,
        catalog,
        area,
        service_model,
        cell,
        owner,
        lead,
        owner_from_estate,
    })
}
