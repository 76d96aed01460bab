//! What-if: which duties move, and between whom, if an application changes service model
//! or provider.

use serde::Serialize;

use crate::catalog::CheckedCatalog;
use crate::diag::did_you_mean;
use crate::estate::CheckedEstate;
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
    pub areas: Vec<AreaChange>,
    /// How many areas move.
    pub moved: usize,
}

/// Resolve `application` as it is and as it would be after `change`, area by area.
pub fn what_if(
    estate: &CheckedEstate,
    catalog: &CheckedCatalog,
    application: &str,
    change: &Change,
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
    if let Some(p) = &change.provider {
        if estate.provider(p).is_none() {
            return Err(WhatIfError::UnknownProvider {
                given: p.clone(),
                help: did_you_mean(p, estate.estate().providers.iter().map(|p| p.id.as_str())),
            });
        }
    }
    if let Some(c) = &change.component {
        if !before_app.components.iter().any(|x| &x.id == c) {
            return Err(WhatIfError::UnknownComponent {
                application: application.to_string(),
                given: c.clone(),
                help: did_you_mean(c, before_app.components.iter().map(|x| x.id.as_str())),
            });
        }
    }
    let mut after_app = before_app.clone();
    for component in &mut after_app.components {
        if change.component.as_ref().is_none_or(|c| c == &component.id) {
            component.service_model = change.service_model.clone();
            if let Some(p) = &change.provider {
                component.provider = p.clone();
                component.offering = None;
            }
        }
    }
    let side = |app, area| match resolve::resolve_area(app, catalog, area) {
        Some(d) => Side {
            owner: Some(d.cell.owner.as_str()),
            accountable: Some(d.accountable),
            also_responsible: d.also_responsible,
            service_model: Some(d.component.service_model.clone()),
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
    Ok(WhatIf {
        application: application.to_string(),
        service_model: change.service_model.clone(),
        provider: change.provider.clone(),
        component: change.component.clone(),
        moved: areas.iter().filter(|a| a.moved).count(),
        areas,
    })
}
