//! What-if: which duties move, and between whom, if an application changes service model
//! or provider.

use serde::Serialize;

use crate::assess::{self, AssessOptions, Coverage};
use crate::catalog::CheckedCatalog;
use crate::diag::did_you_mean;
use crate::estate::{CheckedEstate, Offering, Provider};
use crate::resolve::{self, Party};

/// A hypothetical change to one application.
#[derive(Debug, Clone)]
pub struct Change {
    /// The new service model of the changed components.
    pub service_model: String,
    /// The new provider of the changed components, if it changes.
    pub provider: Option<String>,
    /// The component to change; every component when `None`.
    pub component: Option<String>,
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum WhatIfError {
    #[error("unknown application `{given}`; {help}")]
    UnknownApplication { given: String, help: String },
    #[error("unknown service model `{given}`; {help}")]
    UnknownServiceModel { given: String, help: String },
    #[error("unknown provider `{given}`; {help}")]
    UnknownProvider { given: String, help: String },
    #[error("application `{application}` has no component `{given}`; {help}")]
    UnknownComponent {
        application: String,
        given: String,
        help: String,
    },
    #[error(
        "provider `{provider}` offers nothing consumed as `{service_model}`; it offers {}{}",
        offers.join(", "),
        if *.given { "" } else { " (give `--provider` to move to another provider)" }
    )]
    ProviderLacksServiceModel {
        provider: String,
        service_model: String,
        /// `offering (service model)` for each offering that declares one.
        offers: Vec<String>,
        /// Whether the provider was named in the change (else it is the component's own).
        given: bool,
    },
}

/// One component the change moves, as it is and as it would be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ComponentMove {
    pub component: String,
    pub kind: &'static str,
    pub before: Placement,
    pub after: Placement,
}

/// Where a component comes from: service model, provider and offering.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Placement {
    pub service_model: String,
    pub provider: String,
    pub offering: Option<String>,
}

/// A gap of one duty (area, component) that the change opens or closes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GapChange {
    pub area: String,
    pub component: String,
    pub gap: &'static str,
}

/// One area's resolution before and after the change.
#[derive(Debug, Clone, Serialize)]
pub struct AreaChange {
    pub area: String,
    pub before: Side,
    pub after: Side,
    /// Whether the accountable party or the cell owner changed.
    pub moved: bool,
}

/// One side of an [`AreaChange`]: `None` fields mean the area is `n/a` there.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Side {
    pub owner: Option<&'static str>,
    pub accountable: Option<Party>,
    pub also_responsible: Vec<Party>,
    pub service_model: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct WhatIf {
    pub application: String,
    pub service_model: String,
    pub provider: Option<String>,
    pub component: Option<String>,
    /// The components the change moves, before and after.
    pub components: Vec<ComponentMove>,
    pub areas: Vec<AreaChange>,
    /// How many areas move.
    pub moved: usize,
    /// The application's coverage of its customer duties as it is, and after the change
    /// (the estate's declared controls and evidence, judged on `options.today`).
    pub coverage_before: Coverage,
    pub coverage_after: Coverage,
    /// Gaps that the change would open (present after, not before), per duty.
    pub gaps_opened: Vec<GapChange>,
    /// Gaps that the change would close (present before, not after), per duty.
    pub gaps_closed: Vec<GapChange>,
}

/// Resolve `application` as it is and as it would be after `change`, area by area, and assess
/// both with `options` (coverage and the gaps that open or close).
pub fn what_if(
    estate: &CheckedEstate,
    catalog: &CheckedCatalog,
    application: &str,
    change: &Change,
    options: &AssessOptions,
) -> Result<WhatIf, WhatIfError> {
    let ids = || estate.applications().iter().map(|a| a.id.as_str());
    let before_app =
        estate
            .application(application)
            .ok_or_else(|| WhatIfError::UnknownApplication {
                given: application.to_string(),
                help: did_you_mean(application, ids()),
            })?;
    if !catalog.has_service_model(&change.service_model) {
        return Err(WhatIfError::UnknownServiceModel {
            given: change.service_model.clone(),
            help: did_you_mean(
                &change.service_model,
                catalog.service_models().iter().map(|s| s.id.as_str()),
            ),
        });
    }
    if let Some(p) = &change.provider
        && estate.provider(p).is_none()
    {
        return Err(WhatIfError::UnknownProvider {
            given: p.clone(),
            help: did_you_mean(p, estate.estate().providers.iter().map(|p| p.id.as_str())),
        });
    }
    if let Some(c) = &change.component
        && !before_app.components.iter().any(|x| &x.id == c)
    {
        return Err(WhatIfError::UnknownComponent {
            application: application.to_string(),
            given: c.clone(),
            help: did_you_mean(c, before_app.components.iter().map(|x| x.id.as_str())),
        });
    }
    let mut after_app = before_app.clone();
    let mut components = Vec::new();
    for component in &mut after_app.components {
        if change.component.as_ref().is_none_or(|c| c == &component.id) {
            let before = Placement {
                service_model: component.service_model.clone(),
                provider: component.provider.clone(),
                offering: component.offering.clone(),
            };
            let provider_id = change.provider.as_ref().unwrap_or(&component.provider);
            let offering = match estate.provider(provider_id) {
                Some(provider) => offering_for(provider, change, component.offering.as_deref())?,
                None => None,
            };
            component.service_model = change.service_model.clone();
            component.provider = provider_id.clone();
            component.offering = offering;
            components.push(ComponentMove {
                component: component.id.clone(),
                kind: component.kind.as_str(),
                before,
                after: Placement {
                    service_model: component.service_model.clone(),
                    provider: component.provider.clone(),
                    offering: component.offering.clone(),
                },
            });
        }
    }
    let side = |app, area| match resolve::resolve_area(app, catalog, area) {
        Some(d) => Side {
            owner: Some(d.owner.as_str()),
            accountable: Some(d.accountable),
            also_responsible: d.also_responsible,
            service_model: Some(d.service_model.to_string()),
        },
        None => Side {
            owner: None,
            accountable: None,
            also_responsible: Vec::new(),
            service_model: None,
        },
    };
    let areas: Vec<AreaChange> = catalog
        .areas()
        .iter()
        .map(|area| {
            let before = side(before_app, area);
            let after = side(&after_app, area);
            let moved = before.owner != after.owner
                || before.accountable != after.accountable
                || before.also_responsible != after.also_responsible;
            AreaChange {
                area: area.id.clone(),
                before,
                after,
                moved,
            }
        })
        .collect();
    let before = assess::assess_application(estate, before_app, catalog, options);
    let after = assess::assess_application(estate, &after_app, catalog, options);
    let gaps = |a: &assess::ApplicationAssessment| -> Vec<GapChange> {
        a.duties
            .iter()
            .flat_map(|d| {
                d.gaps.iter().map(|g| GapChange {
                    area: d.area.clone(),
                    component: d.component.clone(),
                    gap: g.as_str(),
                })
            })
            .collect()
    };
    let (gaps_before, gaps_after) = (gaps(&before), gaps(&after));
    Ok(WhatIf {
        application: application.to_string(),
        service_model: change.service_model.clone(),
        provider: change.provider.clone(),
        component: change.component.clone(),
        components,
        moved: areas.iter().filter(|a| a.moved).count(),
        areas,
        coverage_before: before.coverage,
        coverage_after: after.coverage,
        gaps_opened: gaps_after
            .iter()
            .filter(|g| !gaps_before.contains(g))
            .cloned()
            .collect(),
        gaps_closed: gaps_before
            .into_iter()
            .filter(|g| !gaps_after.contains(g))
            .collect(),
    })
}

/// The offering a moved component would use: its own when it still fits the target service
/// model, else the provider's first offering consumed that way. A provider whose offerings
/// declare service models, none of them the target, cannot take the component.
fn offering_for(
    provider: &Provider,
    change: &Change,
    current: Option<&str>,
) -> Result<Option<String>, WhatIfError> {
    let target = change.service_model.as_str();
    let declared: Vec<&Offering> = provider
        .offerings
        .iter()
        .filter(|o| o.service_model.is_some())
        .collect();
    let fits = |o: &&Offering| o.service_model.as_deref() == Some(target);
    let same_provider = change.provider.as_ref().is_none_or(|p| p == &provider.id);
    if let Some(current) = current.filter(|_| same_provider)
        && let Some(o) = provider.offerings.iter().find(|o| o.id == current)
        && o.service_model.as_deref().is_none_or(|sm| sm == target)
    {
        return Ok(Some(o.id.clone()));
    }
    if declared.is_empty() {
        // The provider declares no service models: nothing to check against.
        return Ok(None);
    }
    match declared.iter().copied().find(fits) {
        Some(o) => Ok(Some(o.id.clone())),
        None => Err(WhatIfError::ProviderLacksServiceModel {
            provider: provider.id.clone(),
            service_model: target.to_string(),
            offers: declared
                .iter()
                .map(|o| {
                    format!(
                        "`{}` ({})",
                        o.id,
                        o.service_model.as_deref().unwrap_or_default()
                    )
                })
                .collect(),
            given: change.provider.is_some(),
        }),
    }
}
