//! Reading OSCAL: a provider's component definition or SSP, compared area by area with a
//! catalog; demarc's own SSP read back into the responsibilities it states.
//!
//! What a document states about an area, per component:
//! - an SSP by-component with an `export`: `provided` alone is the provider's, `responsibilities`
//!   alone the customer's, both shared (the `lead` property, when present, says who leads);
//! - a component definition's implemented requirement, or any by-component, with a
//!   `responsibility` property (`provider`, `customer`, `shared`, `n/a`, `model-dependent`).
//!
//! A statement maps to an area when its control id is the area's id (or its `area-id`
//! property names one). The service model it is compared under is the component's
//! `catalog-service-model` or `service-model` property, else the one the caller gives.

use demarc_model::CheckedCatalog;
use demarc_model::catalog::{Owner, Side};
use serde::Serialize;

use crate::error::{At, ImportError, Result, kind};

/// Which OSCAL document was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DocumentKind {
    ComponentDefinition,
    SystemSecurityPlan,
}

/// A component of the document (a provider offering, or an application's component).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImportedComponent {
    pub uuid: String,
    pub title: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// demarc's (or a compatible) properties, when present.
    pub provider: Option<String>,
    pub offering: Option<String>,
    pub service_model: Option<String>,
    pub catalog_service_model: Option<String>,
    pub application: Option<String>,
    pub component: Option<String>,
}

/// What a document states about one control for one component.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Statement {
    /// JSON path of the statement in the document.
    pub path: String,
    pub control_id: String,
    /// The catalog area it maps to, if any.
    pub area: Option<String>,
    pub component_uuid: String,
    /// `provider`, `customer`, `shared`, `n/a` or `model-dependent`.
    pub owner: Owner,
    pub lead: Option<Side>,
    /// The internal team named (demarc's `team` property), if any.
    pub team: Option<String>,
    /// Whether this is a provider's statement (an `export`, or a component definition)
    /// rather than an application's.
    pub from_provider: bool,
}

/// Everything read from one document.
#[derive(Debug, Clone, Serialize)]
pub struct OscalImport {
    pub kind: DocumentKind,
    pub title: String,
    pub components: Vec<ImportedComponent>,
    pub statements: Vec<Statement>,
    /// Controls stated about that no area of the catalog matches.
    pub unmapped_controls: Vec<String>,
}

/// One provider statement compared with the catalog's cell.
#[derive(Debug, Clone, Serialize)]
pub struct Agreement {
    pub path: String,
    pub component: String,
    pub area: String,
    pub service_model: Option<String>,
    pub stated: String,
    /// The catalog's cell (`owner` or `shared/<lead>`), when there is a service model.
    pub catalog: Option<String>,
    /// `agrees`, `disagrees`, or `no-service-model` (the document does not say which).
    pub verdict: &'static str,
}

/// One application duty as demarc's SSP states it (for reading back demarc's own export).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct ImportedDuty {
    pub application: String,
    pub component: String,
    pub area: String,
    pub owner: &'static str,
    pub lead: Option<&'static str>,
    pub team: Option<String>,
}

/// Read a component definition or SSP (JSON). Areas are mapped against `catalog`.
pub fn read(bytes: &[u8], catalog: &CheckedCatalog) -> Result<OscalImport> {
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| ImportError::new("$", format!("not JSON: {e}")))?;
    let root = At::root(&value);
    let obj = value.as_object().ok_or_else(|| {
        root.err(format!(
            "expected an OSCAL document (an object), found {}",
            kind(&value)
        ))
    })?;
    if let Some(v) = obj.get("component-definition") {
        let at = At {
            value: v,
            path: "$.component-definition",
        };
        return read_component_definition(at, catalog);
    }
    if let Some(v) = obj.get("system-security-plan") {
        let at = At {
            value: v,
            path: "$.system-security-plan",
        };
        return read_ssp(at, catalog);
    }
    for other in [
        "catalog",
        "profile",
        "assessment-results",
        "assessment-plan",
        "plan-of-action-and-milestones",
    ] {
        if obj.contains_key(other) {
            return Err(root.err(format!(
                "an OSCAL {other}: import reads a component-definition or a system-security-plan"
            )));
        }
    }
    Err(root.err("no `component-definition` or `system-security-plan` at the top level"))
}

fn title(at: At<'_, '_>) -> Result<String> {
    match at.get("metadata")? {
        Some((path, v)) => Ok(At {
            value: v,
            path: &path,
        }
        .required_str("title")?
        .to_string()),
        None => Err(ImportError::new(format!("{}.metadata", at.path), "missing")),
    }
}

/// The value of property `name` (any namespace) among `props`, with its class.
fn props(at: At<'_, '_>) -> Result<Vec<(String, String, Option<String>)>> {
    let mut out = Vec::new();
    for (path, p) in at.items("props")? {
        let p = At {
            value: p,
            path: &path,
        };
        out.push((
            p.required_str("name")?.to_string(),
            p.required_str("value")?.to_string(),
            p.str_field("class")?.map(str::to_string),
        ));
    }
    Ok(out)
}

fn prop<'p>(props: &'p [(String, String, Option<String>)], name: &str) -> Option<&'p str> {
    props
        .iter()
        .find(|(n, _, _)| n == name)
        .map(|(_, v, _)| v.as_str())
}

fn component(at: At<'_, '_>) -> Result<ImportedComponent> {
    let p = props(at)?;
    let get = |n: &str| prop(&p, n).map(str::to_string);
    Ok(ImportedComponent {
        uuid: at.required_str("uuid")?.to_string(),
        title: at.required_str("title")?.to_string(),
        kind: at.required_str("type")?.to_string(),
        provider: get("provider"),
        offering: get("offering"),
        service_model: get("service-model"),
        catalog_service_model: get("catalog-service-model"),
        application: get("application"),
        component: get("component"),
    })
}

fn owner_of(
    p: &[(String, String, Option<String>)],
    path: &str,
) -> Result<Option<(Owner, Option<Side>)>> {
    let Some(v) = prop(p, "responsibility") else {
        return Ok(None);
    };
    let owner = parse_owner(v).ok_or_else(|| {
        ImportError::new(
            format!("{path}.props"),
            format!("responsibility `{v}` is not one of provider, customer, shared, n/a, model-dependent"),
        )
    })?;
    Ok(Some((owner, lead_of(p, path)?)))
}

fn lead_of(p: &[(String, String, Option<String>)], path: &str) -> Result<Option<Side>> {
    match prop(p, "lead") {
        None => Ok(None),
        Some("provider") => Ok(Some(Side::Provider)),
        Some("customer") => Ok(Some(Side::Customer)),
        Some(other) => Err(ImportError::new(
            format!("{path}.props"),
            format!("lead `{other}` is not provider or customer"),
        )),
    }
}

fn parse_owner(s: &str) -> Option<Owner> {
    Some(match s {
        "provider" => Owner::Provider,
        "customer" => Owner::Customer,
        "shared" => Owner::Shared,
        "n/a" => Owner::NotApplicable,
        "model-dependent" => Owner::ModelDependent,
        _ => return None,
    })
}

fn area_of(
    control_id: &str,
    p: &[(String, String, Option<String>)],
    catalog: &CheckedCatalog,
) -> Option<String> {
    let id = prop(p, "area-id").unwrap_or(control_id);
    catalog
        .areas()
        .iter()
        .find(|a| a.id == id || super::model::token(&a.id) == id)
        .map(|a| a.id.clone())
}

fn read_component_definition(at: At<'_, '_>, catalog: &CheckedCatalog) -> Result<OscalImport> {
    at.required_str("uuid")?;
    let mut out = OscalImport {
        kind: DocumentKind::ComponentDefinition,
        title: title(at)?,
        components: Vec::new(),
        statements: Vec::new(),
        unmapped_controls: Vec::new(),
    };
    for (cpath, c) in at.items("components")? {
        let c = At {
            value: c,
            path: &cpath,
        };
        let comp = component(c)?;
        for (ipath, ci) in c.items("control-implementations")? {
            let ci = At {
                value: ci,
                path: &ipath,
            };
            ci.required_str("source")?;
            let ci_props = props(ci)?;
            for (rpath, r) in ci.items("implemented-requirements")? {
                let r = At {
                    value: r,
                    path: &rpath,
                };
                let control_id = r.required_str("control-id")?.to_string();
                let p = props(r)?;
                let area = area_of(&control_id, &p, catalog);
                if area.is_none() && !out.unmapped_controls.contains(&control_id) {
                    out.unmapped_controls.push(control_id.clone());
                }
                if let Some((owner, lead)) = owner_of(&p, &rpath)? {
                    let mut comp_sm = comp.clone();
                    if comp_sm.catalog_service_model.is_none() {
                        comp_sm.catalog_service_model =
                            prop(&ci_props, "service-model").map(str::to_string);
                    }
                    out.statements.push(Statement {
                        path: rpath.clone(),
                        control_id,
                        area,
                        component_uuid: comp.uuid.clone(),
                        owner,
                        lead,
                        team: None,
                        from_provider: true,
                    });
                    if comp_sm != comp && !out.components.iter().any(|x| x.uuid == comp.uuid) {
                        out.components.push(comp_sm);
                    }
                }
            }
        }
        if !out.components.iter().any(|x| x.uuid == comp.uuid) {
            out.components.push(comp);
        }
    }
    Ok(out)
}

fn read_ssp(at: At<'_, '_>, catalog: &CheckedCatalog) -> Result<OscalImport> {
    at.required_str("uuid")?;
    let mut out = OscalImport {
        kind: DocumentKind::SystemSecurityPlan,
        title: title(at)?,
        components: Vec::new(),
        statements: Vec::new(),
        unmapped_controls: Vec::new(),
    };
    let Some((ipath, imp)) = at.get("system-implementation")? else {
        return Err(ImportError::new(
            format!("{}.system-implementation", at.path),
            "missing",
        ));
    };
    let imp = At {
        value: imp,
        path: &ipath,
    };
    for (cpath, c) in imp.items("components")? {
        out.components.push(component(At {
            value: c,
            path: &cpath,
        })?);
    }
    let Some((cpath, ci)) = at.get("control-implementation")? else {
        return Err(ImportError::new(
            format!("{}.control-implementation", at.path),
            "missing",
        ));
    };
    let ci = At {
        value: ci,
        path: &cpath,
    };
    for (rpath, r) in ci.items("implemented-requirements")? {
        let r = At {
            value: r,
            path: &rpath,
        };
        let control_id = r.required_str("control-id")?.to_string();
        let rp = props(r)?;
        let area = area_of(&control_id, &rp, catalog);
        let mut stated = false;
        let mut by_components = r.items("by-components")?;
        // Statements' by-components too (OSCAL allows both places).
        for (spath, s) in r.items("statements")? {
            by_components.extend(
                At {
                    value: s,
                    path: &spath,
                }
                .items("by-components")?,
            );
        }
        for (bpath, b) in by_components {
            let b = At {
                value: b,
                path: &bpath,
            };
            let component_uuid = b.required_str("component-uuid")?.to_string();
            let p = props(b)?;
            let exported = match b.get("export")? {
                None => None,
                Some((epath, e)) => {
                    let e = At {
                        value: e,
                        path: &epath,
                    };
                    let provided = !e.items("provided")?.is_empty();
                    let responsibilities = !e.items("responsibilities")?.is_empty();
                    for (xpath, x) in e
                        .items("provided")?
                        .into_iter()
                        .chain(e.items("responsibilities")?)
                    {
                        At {
                            value: x,
                            path: &xpath,
                        }
                        .required_str("uuid")?;
                    }
                    match (provided, responsibilities) {
                        (true, false) => Some(Owner::Provider),
                        (false, true) => Some(Owner::Customer),
                        (true, true) => Some(Owner::Shared),
                        (false, false) => None,
                    }
                }
            };
            let (owner, lead, from_provider) = match (exported, owner_of(&p, &bpath)?) {
                (Some(o), _) => (o, lead_of(&p, &bpath)?, true),
                (None, Some((o, l))) => (o, l, false),
                (None, None) => continue,
            };
            stated = true;
            out.statements.push(Statement {
                path: bpath.clone(),
                control_id: control_id.clone(),
                area: area.clone(),
                component_uuid,
                owner,
                lead,
                team: prop(&p, "team").map(str::to_string),
                from_provider,
            });
        }
        if stated && area.is_none() && !out.unmapped_controls.contains(&control_id) {
            out.unmapped_controls.push(control_id);
        }
    }
    Ok(out)
}

fn cell_label(owner: Owner, lead: Option<Side>) -> String {
    match (owner, lead) {
        (Owner::Shared, Some(l)) => format!("shared/{}", l.as_str()),
        (o, _) => o.as_str().to_string(),
    }
}

impl OscalImport {
    fn component(&self, uuid: &str) -> Option<&ImportedComponent> {
        self.components.iter().find(|c| c.uuid == uuid)
    }

    /// Each provider statement about a catalog area, compared with the catalog's cell under
    /// the component's service model (or `service_model` when the document names none).
    /// A shared statement without a lead agrees with a shared cell of either lead.
    pub fn compare(&self, catalog: &CheckedCatalog, service_model: Option<&str>) -> Vec<Agreement> {
        self.statements
            .iter()
            .filter(|s| s.from_provider)
            .filter_map(|s| {
                let area_id = s.area.as_ref()?;
                let area = catalog.area(area_id)?;
                let comp = self.component(&s.component_uuid);
                let sm = comp
                    .and_then(|c| {
                        c.catalog_service_model
                            .clone()
                            .or_else(|| c.service_model.clone())
                    })
                    .filter(|sm| catalog.has_service_model(sm))
                    .or_else(|| service_model.map(str::to_string));
                let cell = sm.as_deref().and_then(|sm| catalog.cell(area, sm));
                let verdict = match cell {
                    None => "no-service-model",
                    Some(c) => {
                        let agrees = c.owner == s.owner
                            && (s.lead.is_none() || c.lead.is_none() || s.lead == c.lead);
                        if agrees { "agrees" } else { "disagrees" }
                    }
                };
                Some(Agreement {
                    path: s.path.clone(),
                    component: comp.map_or_else(|| s.component_uuid.clone(), |c| c.title.clone()),
                    area: area_id.clone(),
                    service_model: sm,
                    stated: cell_label(s.owner, s.lead),
                    catalog: cell.map(|c| cell_label(c.owner, c.lead)),
                    verdict,
                })
            })
            .collect()
    }

    /// The application duties the document states (demarc's own SSP export), sorted.
    pub fn duties(&self) -> Vec<ImportedDuty> {
        let mut out: Vec<ImportedDuty> = self
            .statements
            .iter()
            .filter(|s| !s.from_provider)
            .filter_map(|s| {
                let c = self.component(&s.component_uuid)?;
                Some(ImportedDuty {
                    application: c.application.clone()?,
                    component: c.component.clone()?,
                    area: s.area.clone()?,
                    owner: s.owner.as_str(),
                    lead: s.lead.map(|l| l.as_str()),
                    team: s.team.clone(),
                })
            })
            .collect();
        out.sort();
        out
    }
}
