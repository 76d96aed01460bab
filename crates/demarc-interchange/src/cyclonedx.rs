//! CycloneDX ML-BOM (JSON, spec 1.5, 1.6 or 1.7): an estate's model components and back.
//!
//! Export: each `kind: model` component becomes a `machine-learning-model` component
//! (`bom-ref` `model:<application>/<component>`) with what the estate knows: its provider as
//! supplier, its `sha256` as a SHA-256 hash, a model card whose datasets are the tuning
//! datasets (each a `data` component, `data:<name>`), the lineage note as `pedigree.notes`, the
//! base model as a `machine-learning-model` component of its own (`base:<name>`), named as the
//! pedigree's ancestor and depended on; `demarc:*` properties carry the ids.
//!
//! Import: every `machine-learning-model` component (nested ones too) with its hash, base
//! model (pedigree ancestor, else a model it depends on), datasets (model card references
//! or inline datasets, else data components it depends on) and lineage note.

use std::collections::BTreeMap;

use demarc_model::catalog::ComponentKind;
use demarc_model::{CheckedEstate, Date};
use serde::Serialize;
use serde_json::{Value, json};

use crate::error::{At, ImportError, Result, kind};
use crate::ids::Scope;

/// The CycloneDX spec versions demarc writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecVersion {
    V1_5,
    V1_6,
    V1_7,
}

impl SpecVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V1_5 => "1.5",
            Self::V1_6 => "1.6",
            Self::V1_7 => "1.7",
        }
    }
}

/// The BOM of the estate's model components (of one application when `app` is given).
/// `None` when `app` names no application of the estate.
pub fn export(
    estate: &CheckedEstate,
    app: Option<&str>,
    spec: SpecVersion,
    date: Date,
) -> Option<Value> {
    let org = &estate.estate().organisation.name;
    let apps: Vec<_> = match app {
        Some(id) => vec![estate.application(id)?],
        None => estate.applications().iter().collect(),
    };
    let scope = Scope::new("cyclonedx", org);
    let mut components = Vec::new();
    let mut dependencies = Vec::new();
    // Base models and datasets, once each however many models share them.
    let mut bases: BTreeMap<String, Value> = BTreeMap::new();
    let mut datasets: BTreeMap<String, Value> = BTreeMap::new();
    for a in &apps {
        for c in a
            .components
            .iter()
            .filter(|c| c.kind == ComponentKind::Model)
        {
            let bom_ref = format!("model:{}/{}", a.id, c.id);
            let provider = estate
                .provider(&c.provider)
                .map_or(c.provider.as_str(), |p| p.name.as_str());
            let mut props = vec![
                prop("demarc:application", &a.id),
                prop("demarc:component", &c.id),
                prop("demarc:provider", &c.provider),
                prop("demarc:service-model", &c.service_model),
            ];
            if let Some(o) = &c.offering {
                props.push(prop("demarc:offering", o));
            }
            let mut comp = json!({
                "type": "machine-learning-model",
                "bom-ref": bom_ref,
                "supplier": {"name": provider},
                "name": c.id,
                "description": c.description.clone().unwrap_or_else(|| format!("The model of {}.", a.name)),
            });
            let mut depends = Vec::new();
            let mut card_datasets = Vec::new();
            if let Some(m) = &c.model {
                if let Some(h) = &m.sha256 {
                    comp["hashes"] = json!([{"alg": "SHA-256", "content": h.to_ascii_lowercase()}]);
                }
                let base_ref = format!("base:{}", m.base_model);
                bases.entry(base_ref.clone()).or_insert_with(|| {
                    json!({
                        "type": "machine-learning-model",
                        "bom-ref": base_ref,
                        "name": m.base_model,
                        "description": "Base model, as the estate names it.",
                    })
                });
                let mut pedigree = json!({"ancestors": [{
                    "type": "machine-learning-model",
                    "name": m.base_model,
                }]});
                if let Some(l) = &m.lineage {
                    pedigree["notes"] = json!(l);
                }
                comp["pedigree"] = pedigree;
                depends.push(base_ref);
                for d in &m.tuning_datasets {
                    let data_ref = format!("data:{d}");
                    datasets.entry(data_ref.clone()).or_insert_with(|| {
                        json!({
                            "type": "data",
                            "bom-ref": data_ref,
                            "name": d,
                            "data": [{"type": "dataset", "name": d, "classification": a.data_classification.as_str()}],
                        })
                    });
                    card_datasets.push(json!({"ref": data_ref}));
                    depends.push(data_ref);
                }
            }
            let mut params = serde_json::Map::new();
            if !card_datasets.is_empty() {
                // Tuning on the organisation's data: the estate says datasets, not how.
                params.insert("approach".into(), json!({"type": "supervised"}));
                props.push(prop(
                    "demarc:approach-basis",
                    "inferred from the tuning datasets",
                ));
                params.insert("datasets".into(), Value::Array(card_datasets));
            }
            comp["modelCard"] = json!({
                "bom-ref": format!("model-card:{}/{}", a.id, c.id),
                "modelParameters": Value::Object(params),
            });
            comp["properties"] = Value::Array(props);
            if !depends.is_empty() {
                dependencies.push(json!({"ref": bom_ref, "dependsOn": depends}));
            }
            components.push(comp);
        }
    }
    components.extend(bases.into_values());
    components.extend(datasets.into_values());
    let mut metadata = json!({
        "timestamp": format!("{date}T00:00:00Z"),
        "tools": {"components": [{"type": "application", "name": "demarc", "version": env!("CARGO_PKG_VERSION")}]},
        "supplier": {"name": org},
    });
    if let Some(a) = apps.first().filter(|_| app.is_some()) {
        metadata["component"] = json!({
            "type": "application",
            "bom-ref": format!("application:{}", a.id),
            "name": a.name,
            "properties": [prop("demarc:application", &a.id)],
        });
    }
    let serial = scope.uuid(&[app.unwrap_or("*"), spec.as_str(), &date.to_string()]);
    let mut bom = json!({
        "bomFormat": "CycloneDX",
        "specVersion": spec.as_str(),
        "serialNumber": format!("urn:uuid:{serial}"),
        "version": 1,
        "metadata": metadata,
        "components": components,
    });
    if !dependencies.is_empty() {
        bom["dependencies"] = Value::Array(dependencies);
    }
    Some(bom)
}

fn prop(name: &str, value: &str) -> Value {
    json!({"name": name, "value": value})
}

/// One model read from a BOM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportedModel {
    /// JSON path of the component in the BOM.
    pub path: String,
    pub bom_ref: Option<String>,
    pub name: String,
    /// demarc's ids, when the BOM carries them (`demarc:application`, `demarc:component`).
    pub application: Option<String>,
    pub component: Option<String>,
    pub base_model: Option<String>,
    pub datasets: Vec<String>,
    pub lineage: Option<String>,
    /// The SHA-256 hash, lowercase, if the BOM gives one.
    pub sha256: Option<String>,
}

/// A BOM read: its spec version and models.
#[derive(Debug, Clone, Serialize)]
pub struct BomImport {
    pub spec_version: String,
    pub models: Vec<ImportedModel>,
}

struct Flat<'a> {
    path: String,
    value: &'a Value,
}

/// Read a CycloneDX JSON BOM (any 1.x spec version).
pub fn import(bytes: &[u8]) -> Result<BomImport> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| ImportError::new("$", format!("not JSON: {e}")))?;
    let root = At::root(&value);
    if !value.is_object() {
        return Err(root.err(format!(
            "expected a CycloneDX BOM (an object), found {}",
            kind(&value)
        )));
    }
    match root.str_field("bomFormat")? {
        Some("CycloneDX") => {}
        Some(other) => {
            return Err(ImportError::new(
                "$.bomFormat",
                format!("`{other}` is not `CycloneDX`"),
            ));
        }
        None => {
            return Err(ImportError::new(
                "$.bomFormat",
                "missing: not a CycloneDX BOM",
            ));
        }
    }
    let spec_version = root.required_str("specVersion")?.to_string();
    if !spec_version.starts_with("1.") {
        return Err(ImportError::new(
            "$.specVersion",
            format!("spec version `{spec_version}` is not 1.x"),
        ));
    }
    // Every component, nested ones and the metadata's own, flattened with its path.
    let mut flat = Vec::new();
    if let Some((path, v)) = root.get("metadata")?
        && let Some((cpath, c)) = (At {
            value: v,
            path: &path,
        })
        .get("component")?
    {
        flat.push(Flat {
            path: cpath,
            value: c,
        });
    }
    let mut stack: Vec<(String, &Value)> = root.items("components")?;
    stack.reverse();
    while let Some((path, c)) = stack.pop() {
        let at = At {
            value: c,
            path: &path,
        };
        let mut nested = at.items("components")?;
        nested.reverse();
        flat.push(Flat {
            path: path.clone(),
            value: c,
        });
        stack.extend(nested);
    }
    // bom-ref -> (type, name)
    let mut refs: BTreeMap<String, (String, String)> = BTreeMap::new();
    for f in &flat {
        let at = At {
            value: f.value,
            path: &f.path,
        };
        let t = at.required_str("type")?;
        let name = at.required_str("name")?;
        if let Some(r) = at.str_field("bom-ref")? {
            refs.insert(r.to_string(), (t.to_string(), name.to_string()));
        }
    }
    let mut depends: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (path, d) in root.items("dependencies")? {
        let at = At {
            value: d,
            path: &path,
        };
        let r = at.required_str("ref")?;
        let mut on = Vec::new();
        for (p, x) in at.items("dependsOn")? {
            on.push(
                x.as_str()
                    .ok_or_else(|| {
                        ImportError::new(p, format!("expected a string, found {}", kind(x)))
                    })?
                    .to_string(),
            );
        }
        depends.entry(r.to_string()).or_default().extend(on);
    }
    let mut models = Vec::new();
    for f in &flat {
        let at = At {
            value: f.value,
            path: &f.path,
        };
        if at.required_str("type")? != "machine-learning-model" {
            continue;
        }
        let bom_ref = at.str_field("bom-ref")?.map(str::to_string);
        // A base model listed only as another model's ancestor is not a model of the estate.
        if bom_ref.as_deref().is_some_and(|r| r.starts_with("base:")) {
            continue;
        }
        let mut props = BTreeMap::new();
        for (path, p) in at.items("properties")? {
            let p = At {
                value: p,
                path: &path,
            };
            if let (Some(n), Some(v)) = (p.str_field("name")?, p.str_field("value")?) {
                props.insert(n.to_string(), v.to_string());
            }
        }
        let mut sha256 = None;
        for (path, h) in at.items("hashes")? {
            let h = At {
                value: h,
                path: &path,
            };
            if h.required_str("alg")? == "SHA-256" {
                sha256 = Some(h.required_str("content")?.to_ascii_lowercase());
            }
        }
        let mut base_model = None;
        let mut lineage = None;
        if let Some((path, p)) = at.get("pedigree")? {
            let p = At {
                value: p,
                path: &path,
            };
            lineage = p.str_field("notes")?.map(str::to_string);
            if let Some((apath, a)) = p.items("ancestors")?.into_iter().next() {
                base_model = Some(
                    At {
                        value: a,
                        path: &apath,
                    }
                    .required_str("name")?
                    .to_string(),
                );
            }
        }
        let deps = bom_ref.as_ref().and_then(|r| depends.get(r));
        if base_model.is_none() {
            base_model = deps.into_iter().flatten().find_map(|d| {
                refs.get(d)
                    .filter(|(t, _)| t == "machine-learning-model")
                    .map(|(_, n)| n.clone())
            });
        }
        let mut datasets = Vec::new();
        if let Some((cpath, card)) = at.get("modelCard")? {
            let card = At {
                value: card,
                path: &cpath,
            };
            if let Some((ppath, params)) = card.get("modelParameters")? {
                let params = At {
                    value: params,
                    path: &ppath,
                };
                for (dpath, d) in params.items("datasets")? {
                    let d = At {
                        value: d,
                        path: &dpath,
                    };
                    if let Some(r) = d.str_field("ref")? {
                        datasets.push(
                            refs.get(r)
                                .map_or_else(|| r.to_string(), |(_, n)| n.clone()),
                        );
                    } else if let Some(n) = d.str_field("name")? {
                        datasets.push(n.to_string());
                    }
                }
            }
        }
        if datasets.is_empty() {
            datasets = deps
                .into_iter()
                .flatten()
                .filter_map(|d| {
                    refs.get(d)
                        .filter(|(t, _)| t == "data")
                        .map(|(_, n)| n.clone())
                })
                .collect();
        }
        models.push(ImportedModel {
            path: f.path.clone(),
            bom_ref,
            name: at.required_str("name")?.to_string(),
            application: props.get("demarc:application").cloned(),
            component: props.get("demarc:component").cloned(),
            base_model,
            datasets,
            lineage,
            sha256,
        });
    }
    Ok(BomImport {
        spec_version,
        models,
    })
}

/// How one BOM model compares with the estate.
#[derive(Debug, Clone, Serialize)]
pub struct ModelCheck {
    pub path: String,
    pub name: String,
    /// The estate's application and component it was matched to, if any.
    pub application: Option<String>,
    pub component: Option<String>,
    /// Fields where the BOM and the estate differ: (field, estate, bom).
    pub differences: Vec<Difference>,
    /// Fields the estate leaves empty and the BOM fills.
    pub fills: Vec<Difference>,
    /// `match` (the BOM's SHA-256 equals the estate's), `mismatch`, or `none`.
    pub hash: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct Difference {
    pub field: &'static str,
    pub estate: Option<String>,
    pub bom: Option<String>,
}

/// Match each model of the BOM to an estate model component (by the `demarc:` ids, else by
/// a component id or base model equal to the model's name) and compare.
pub fn check(bom: &BomImport, estate: &CheckedEstate) -> Vec<ModelCheck> {
    bom.models
        .iter()
        .map(|m| {
            let found = estate.applications().iter().find_map(|a| {
                let by_ids = m.application.as_deref() == Some(a.id.as_str());
                a.components
                    .iter()
                    .filter(|c| c.kind == ComponentKind::Model)
                    .find(|c| {
                        if by_ids {
                            m.component.as_deref() == Some(c.id.as_str())
                        } else {
                            m.application.is_none()
                                && (c.id == m.name
                                    || c.model.as_ref().is_some_and(|l| l.base_model == m.name))
                        }
                    })
                    .map(|c| (a, c))
            });
            let Some((a, c)) = found else {
                return ModelCheck {
                    path: m.path.clone(),
                    name: m.name.clone(),
                    application: None,
                    component: None,
                    differences: Vec::new(),
                    fills: Vec::new(),
                    hash: "none",
                };
            };
            let lineage = c.model.as_ref();
            let mut differences = Vec::new();
            let mut fills = Vec::new();
            let mut compare =
                |field: &'static str, estate: Option<String>, bom: Option<String>| match (
                    &estate, &bom,
                ) {
                    (_, None) => {}
                    (None, Some(_)) => fills.push(Difference { field, estate, bom }),
                    (Some(e), Some(b)) if e != b => {
                        differences.push(Difference { field, estate, bom })
                    }
                    _ => {}
                };
            compare(
                "base_model",
                lineage.map(|l| l.base_model.clone()),
                m.base_model.clone(),
            );
            let join = |v: &[String]| (!v.is_empty()).then(|| v.join("; "));
            compare(
                "tuning_datasets",
                lineage.and_then(|l| join(&l.tuning_datasets)),
                join(&m.datasets),
            );
            compare(
                "lineage",
                lineage.and_then(|l| l.lineage.clone()),
                m.lineage.clone(),
            );
            let estate_hash = lineage
                .and_then(|l| l.sha256.as_ref())
                .map(|h| h.to_ascii_lowercase());
            // The hash is never a fill: a hash copied from the BOM would later "match" the same
            // BOM and prove nothing. Only the estate's own record of the weights counts.
            if estate_hash.is_some() {
                compare("sha256", estate_hash.clone(), m.sha256.clone());
            }
            let hash = match (&estate_hash, &m.sha256) {
                (Some(e), Some(b)) if e == b => "match",
                (Some(_), Some(_)) => "mismatch",
                _ => "none",
            };
            ModelCheck {
                path: m.path.clone(),
                name: m.name.clone(),
                application: Some(a.id.clone()),
                component: Some(c.id.clone()),
                differences,
                fills,
                hash,
            }
        })
        .collect()
}
