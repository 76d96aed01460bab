//! A responsibility catalog as an OSCAL catalog: one group per layer, one control per area.
//!
//! Each control carries, per service model, a parameter `<area>_<service-model>` whose value
//! is the cell's owner (`provider`, `customer`, `shared`, `n/a`, `model-dependent`), with the
//! cell's note and citation as its guideline; properties `responsibility`, `lead` and
//! `basis` in demarc's namespace, classed by service model; the area's description as the
//! statement; framework mappings as properties; a link to the source in the back matter.

use demarc_model::CheckedCatalog;
use demarc_model::catalog::Owner;
use serde::Serialize;

use super::model::{
    BackMatter, Citation, Link, Metadata, Part, Prop, Resource, Rlink, Role, line, token,
};
use crate::ids::Scope;

/// `{"catalog": ...}`.
#[derive(Serialize)]
pub struct CatalogDocument {
    pub catalog: Catalog,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Catalog {
    pub uuid: String,
    pub metadata: Metadata,
    pub groups: Vec<Group>,
    pub back_matter: BackMatter,
}

#[derive(Serialize)]
pub struct Group {
    pub id: String,
    pub class: &'static str,
    pub title: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub props: Vec<Prop>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<Part>,
    pub controls: Vec<Control>,
}

#[derive(Serialize)]
pub struct Control {
    pub id: String,
    pub class: &'static str,
    pub title: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<Param>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub props: Vec<Prop>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<Link>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<Part>,
}

#[derive(Serialize)]
pub struct Param {
    pub id: String,
    pub class: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub props: Vec<Prop>,
    pub label: String,
    pub guidelines: Vec<Guideline>,
    pub values: Vec<String>,
}

#[derive(Serialize)]
pub struct Guideline {
    pub prose: String,
}

/// The OSCAL group id of a layer.
pub fn group_id(layer: &str) -> String {
    token(&format!("layer-{layer}"))
}

/// The OSCAL parameter id of an area's cell under a service model.
pub fn param_id(area: &str, service_model: &str) -> String {
    token(&format!("{area}_{service_model}"))
}

/// The catalog as an OSCAL catalog document. Deterministic: the UUIDs come from the catalog
/// id and version, `last-modified` from the source's date.
pub fn catalog(catalog: &CheckedCatalog) -> CatalogDocument {
    let c = catalog.catalog();
    let scope = Scope::new("catalog", &c.id);
    let source_uuid = scope.uuid(&["source"]);
    let modified = match c.source.date.parse::<demarc_model::Date>() {
        Ok(d) => super::model::midnight(d),
        Err(_) => "1970-01-01T00:00:00Z".to_string(),
    };
    let mut metadata = Metadata::new(c.title.clone(), modified, c.version.clone());
    metadata.props.push(Prop::demarc("catalog-id", &c.id));
    metadata.roles = c
        .roles
        .iter()
        .map(|r| Role {
            id: token(&r.id),
            title: line(&r.title),
        })
        .collect();
    metadata.remarks = c.description.clone();
    let sm_title = |id: &str| {
        catalog
            .service_model(id)
            .map_or_else(|| id.to_string(), |s| s.title.clone())
    };
    let groups = catalog
        .layers()
        .iter()
        .map(|layer| Group {
            id: group_id(&layer.id),
            class: "layer",
            title: line(&layer.title),
            props: vec![Prop::demarc("layer-id", &layer.id)],
            parts: vec![Part {
                id: Some(format!("{}_ovw", group_id(&layer.id))),
                name: "overview",
                ns: None,
                class: None,
                title: None,
                props: Vec::new(),
                prose: Some(layer.description.clone()),
                links: Vec::new(),
            }],
            controls: catalog
                .areas()
                .iter()
                .filter(|a| a.layer == layer.id)
                .map(|area| {
                    let mut props = vec![Prop::demarc("area-id", &area.id)];
                    let mut params = Vec::new();
                    let mut parts = vec![Part {
                        id: Some(format!("{}_smt", token(&area.id))),
                        name: "statement",
                        ns: None,
                        class: None,
                        title: None,
                        props: Vec::new(),
                        prose: Some(area.description.clone()),
                        links: Vec::new(),
                    }];
                    // Cells in catalog service-model order.
                    for sm in catalog.service_models() {
                        let Some(cell) = area.cells.get(&sm.id) else {
                            continue;
                        };
                        let mut cell_props =
                            vec![Prop::demarc("responsibility", cell.owner.as_str()).class(&sm.id)];
                        if let Some(lead) = cell.lead {
                            cell_props.push(Prop::demarc("lead", lead.as_str()).class(&sm.id));
                        }
                        if !cell.basis.is_stated() {
                            cell_props
                                .push(Prop::demarc("basis", cell.basis.as_str()).class(&sm.id));
                        }
                        props.extend(cell_props.iter().cloned());
                        params.push(Param {
                            id: param_id(&area.id, &sm.id),
                            class: token(&sm.id),
                            props: cell_props,
                            label: format!("who owns {} under {}", area.title, sm_title(&sm.id)),
                            guidelines: vec![Guideline {
                                prose: format!("{}\n\nSource: {}", cell.note, cell.source),
                            }],
                            values: vec![cell.owner.as_str().to_string()],
                        });
                        if cell.owner != Owner::NotApplicable {
                            parts.push(Part {
                                id: Some(format!("{}_gdn_{}", token(&area.id), token(&sm.id))),
                                name: "guidance",
                                ns: None,
                                class: Some(token(&sm.id)),
                                title: Some(format!("Under {}", line(&sm_title(&sm.id)))),
                                props: Vec::new(),
                                prose: Some(format!(
                                    "{} ({}{}): {}\n\nSource: {}",
                                    cell.owner.as_str(),
                                    cell.lead.map_or("", |_| "lead "),
                                    cell.lead.map_or("", |l| l.as_str()),
                                    cell.note,
                                    cell.source
                                )),
                                links: Vec::new(),
                            });
                        }
                    }
                    let m = &area.mappings;
                    for (name, ids) in [
                        ("owasp-llm-2025", &m.owasp_llm_2025),
                        ("nist-ai-600-1", &m.nist_ai_600_1),
                        ("mitre-atlas", &m.mitre_atlas),
                        ("csa-aicm", &m.csa_aicm),
                        ("iso-42001", &m.iso_42001),
                    ] {
                        props.extend(ids.iter().map(|id| Prop::demarc(name, id)));
                    }
                    Control {
                        id: token(&area.id),
                        class: "area",
                        title: line(&area.title),
                        params,
                        props,
                        links: vec![Link {
                            href: format!("#{source_uuid}"),
                            rel: Some("reference"),
                            text: Some(line(&c.source.title)),
                        }],
                        parts,
                    }
                })
                .collect(),
        })
        .collect();
    CatalogDocument {
        catalog: Catalog {
            uuid: scope.uuid(&[&c.version]),
            metadata,
            groups,
            back_matter: BackMatter {
                resources: vec![Resource {
                    uuid: source_uuid,
                    title: Some(line(&c.source.title)),
                    description: Some(format!("Licence: {}", c.source.licence)),
                    citation: Some(Citation {
                        text: line(&format!(
                            "{}{}, {} ({})",
                            c.source.author.as_deref().unwrap_or(""),
                            if c.source.author.is_some() { ":" } else { "" },
                            c.source.title,
                            c.source.date
                        )),
                    }),
                    rlinks: vec![Rlink {
                        href: super::model::href(&c.source.url),
                    }],
                }],
            },
        },
    }
}
