//! `demarc import oscal|cyclonedx FILE`: read a provider's OSCAL component definition or SSP
//! and say, per catalog area, whether its statement agrees with the catalog cell; read a
//! CycloneDX ML-BOM and check the estate's model components against it
//! (docs/interchange.md). Optionally write the estate with what the document adds.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use demarc_interchange::cyclonedx;
use demarc_interchange::oscal::import::{self as oscal_import, Agreement};
use demarc_model::catalog::ESTATE_SERVICE_MODELS;
use demarc_model::estate::{Estate, Evidence, ModelLineage, Offering, Provider};
use demarc_model::{CheckedCatalog, CheckedEstate, Date};
use serde::Serialize;

use super::common::{CatalogArg, check_estate, emit, emit_json, read_bounded};
use crate::Outcome;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(clap::Subcommand, Debug)]
enum What {
    /// A component definition or SSP: per catalog area, does the provider's statement
    /// (`export.provided` / `export.responsibilities`, or a `responsibility` property) agree
    /// with the catalog cell?
    Oscal(OscalArgs),
    /// A CycloneDX ML-BOM: its models (base model, datasets, lineage, hash) against the
    /// estate's model components; a matching SHA-256 is lineage evidence.
    Cyclonedx(CycloneDxArgs),
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Table,
    Json,
}

#[derive(clap::Args, Debug)]
struct OscalArgs {
    /// The OSCAL JSON document.
    file: PathBuf,
    #[command(flatten)]
    catalog: CatalogArg,
    /// The catalog service model to compare under when the document's components name none.
    #[arg(long, value_name = "ID")]
    service_model: Option<String>,
    /// The estate to add the document's provider offerings to (with `--write-estate`).
    #[arg(long, value_name = "FILE", requires = "write_estate")]
    estate: Option<PathBuf>,
    /// Write the estate, with the providers and offerings the document names added, to this
    /// file (JSON, which demarc reads like YAML).
    #[arg(long, value_name = "FILE", requires = "estate")]
    write_estate: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

#[derive(clap::Args, Debug)]
struct CycloneDxArgs {
    /// The CycloneDX JSON BOM.
    file: PathBuf,
    /// The estate to check the BOM's models against.
    #[arg(long, value_name = "FILE")]
    estate: Option<PathBuf>,
    #[command(flatten)]
    catalog: CatalogArg,
    /// The area a matching model hash is evidence for.
    #[arg(long, value_name = "AREA", default_value = "model-selection-lineage")]
    lineage_area: String,
    /// Write the estate with empty lineage fields filled from the BOM and the evidence of
    /// matching hashes added to this file (JSON).
    #[arg(long, value_name = "FILE", requires = "estate")]
    write_estate: Option<PathBuf>,
    /// The review date of evidence added by `--write-estate` (YYYY-MM-DD). Default: today.
    #[arg(long, value_name = "DATE")]
    date: Option<Date>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

pub fn run(args: Args) -> anyhow::Result<Outcome> {
    match args.what {
        What::Oscal(a) => oscal(a),
        What::Cyclonedx(a) => cyclonedx_import(a),
    }
}

#[derive(Serialize)]
struct OscalReport<'a> {
    file: String,
    kind: oscal_import::DocumentKind,
    title: &'a str,
    catalog: &'a str,
    /// Provider statements read, about catalog areas or not.
    provider_statements: usize,
    agrees: usize,
    disagrees: usize,
    not_compared: usize,
    agreements: &'a [Agreement],
    unmapped_controls: &'a [String],
    duties: Vec<oscal_import::ImportedDuty>,
}

fn oscal(a: OscalArgs) -> anyhow::Result<Outcome> {
    let catalog = a.catalog.load()?;
    if let Some(sm) = &a.service_model
        && !catalog.has_service_model(sm)
    {
        let ids: Vec<&str> = catalog
            .service_models()
            .iter()
            .map(|s| s.id.as_str())
            .collect();
        bail!(
            "catalog `{}` has no service model `{sm}`; {}",
            catalog.id(),
            demarc_model::diag::did_you_mean(sm, ids.iter().copied())
        );
    }
    let bytes = read_bounded(&a.file)?;
    let doc = oscal_import::read(&bytes, &catalog)
        .map_err(|e| anyhow::anyhow!("`{}`: {e}", a.file.display()))?;
    let agreements = doc.compare(&catalog, a.service_model.as_deref());
    let n = |v: &str| agreements.iter().filter(|x| x.verdict == v).count();
    let report = OscalReport {
        file: a.file.display().to_string(),
        kind: doc.kind,
        title: &doc.title,
        catalog: catalog.id(),
        provider_statements: doc.statements.iter().filter(|s| s.from_provider).count(),
        agrees: n("agrees"),
        disagrees: n("disagrees"),
        not_compared: n("no-service-model"),
        agreements: &agreements,
        unmapped_controls: &doc.unmapped_controls,
        duties: doc.duties(),
    };
    match a.format {
        Format::Json => emit_json(None, &report)?,
        Format::Table => emit(None, &oscal_table(&report))?,
    }
    if let (Some(estate_path), Some(out)) = (&a.estate, &a.write_estate) {
        let (mut estate, _) = load(estate_path, &catalog)?;
        let added = add_offerings(&mut estate, &doc);
        write_estate(out, &estate, &catalog)?;
        eprintln!(
            "wrote {} ({} added)",
            out.display(),
            super::common::count(added, "offering")
        );
    }
    Ok(Outcome::Success)
}

fn oscal_table(r: &OscalReport<'_>) -> String {
    let mut out = format!(
        "{} ({}): {}, {} about areas of {}: {} agree, {} disagree, {} without a service model\n",
        r.file,
        match r.kind {
            oscal_import::DocumentKind::ComponentDefinition => "component definition",
            oscal_import::DocumentKind::SystemSecurityPlan => "system security plan",
        },
        super::common::count(r.provider_statements, "provider statement"),
        r.agreements.len(),
        r.catalog,
        r.agrees,
        r.disagrees,
        r.not_compared
    );
    for x in r.agreements.iter().filter(|x| x.verdict != "agrees") {
        out.push_str(&format!(
            "  {}: {} / {} under {}: states {}, catalog {}  ({})\n",
            x.verdict,
            clean(&x.component),
            x.area,
            x.service_model.as_deref().unwrap_or("?"),
            x.stated,
            x.catalog.as_deref().unwrap_or("?"),
            x.path
        ));
    }
    if !r.unmapped_controls.is_empty() {
        out.push_str(&format!(
            "  {} no area of {} matches: {}\n",
            super::common::count(r.unmapped_controls.len(), "control"),
            r.catalog,
            r.unmapped_controls
                .iter()
                .map(|c| clean(c))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if !r.duties.is_empty() {
        out.push_str(&format!(
            "  {} of applications (a demarc SSP)\n",
            super::common::count(r.duties.len(), "duty")
        ));
    }
    out
}

/// Text from the document, shown with control characters escaped.
fn clean(s: &str) -> String {
    s.chars().flat_map(char::escape_debug).collect()
}

fn load(path: &Path, catalog: &CheckedCatalog) -> anyhow::Result<(Estate, CheckedEstate)> {
    let bytes = read_bounded(path)?;
    let checked = check_estate(path, &bytes, catalog)?;
    Ok((checked.estate().clone(), checked))
}

/// Write `estate` as JSON after checking that it still loads.
fn write_estate(out: &Path, estate: &Estate, catalog: &CheckedCatalog) -> anyhow::Result<()> {
    let json = serde_json::to_vec_pretty(estate).context("cannot serialise the estate")?;
    let name = out.display().to_string();
    if let Err(d) = CheckedEstate::from_bytes(&name, &json, catalog) {
        super::common::print_diagnostics(&d);
        bail!("the updated estate would not load; `{name}` not written");
    }
    std::fs::write(out, [json.as_slice(), b"\n"].concat())
        .with_context(|| format!("cannot write `{name}`"))
}

fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let out = out.trim_end_matches('-').to_string();
    if out.is_empty() {
        "imported".into()
    } else {
        out
    }
}

/// Add each provider offering that made a provider statement; the number added.
fn add_offerings(estate: &mut Estate, doc: &oscal_import::OscalImport) -> usize {
    let mut added = 0;
    for c in &doc.components {
        if !doc
            .statements
            .iter()
            .any(|s| s.from_provider && s.component_uuid == c.uuid)
        {
            continue;
        }
        let provider_id = c.provider.clone().unwrap_or_else(|| slug(&c.title));
        let offering_id = c.offering.clone().unwrap_or_else(|| slug(&c.title));
        let service_model = c
            .service_model
            .clone()
            .filter(|sm| ESTATE_SERVICE_MODELS.contains(&sm.as_str()));
        let idx = match estate.providers.iter().position(|p| p.id == provider_id) {
            Some(i) => i,
            None => {
                estate.providers.push(Provider {
                    id: provider_id.clone(),
                    name: c.title.clone(),
                    offerings: Vec::new(),
                });
                estate.providers.len() - 1
            }
        };
        let p = &mut estate.providers[idx];
        if !p.offerings.iter().any(|o| o.id == offering_id) {
            p.offerings.push(Offering {
                id: offering_id,
                name: c.title.clone(),
                service_model,
                description: Some(format!("Imported from the OSCAL document `{}`.", doc.title)),
            });
            added += 1;
        }
    }
    added
}

#[derive(Serialize)]
struct BomReport<'a> {
    file: String,
    spec_version: &'a str,
    models: &'a [cyclonedx::ImportedModel],
    #[serde(skip_serializing_if = "Option::is_none")]
    checks: Option<&'a [cyclonedx::ModelCheck]>,
    /// Evidence for the lineage area: one per model whose hash matches the estate's.
    evidence: Vec<EvidenceJson<'a>>,
}

#[derive(Serialize)]
struct EvidenceJson<'a> {
    application: &'a str,
    component: &'a str,
    area: &'a str,
    sha256: &'a str,
}

fn cyclonedx_import(a: CycloneDxArgs) -> anyhow::Result<Outcome> {
    let bytes = read_bounded(&a.file)?;
    let bom =
        cyclonedx::import(&bytes).map_err(|e| anyhow::anyhow!("`{}`: {e}", a.file.display()))?;
    let loaded = match &a.estate {
        Some(path) => {
            let catalog = a.catalog.load()?;
            if catalog.area(&a.lineage_area).is_none() {
                let ids: Vec<&str> = catalog.areas().iter().map(|x| x.id.as_str()).collect();
                bail!(
                    "catalog `{}` has no area `{}`; {}",
                    catalog.id(),
                    a.lineage_area,
                    demarc_model::diag::did_you_mean(&a.lineage_area, ids.iter().copied())
                );
            }
            let (estate, checked) = load(path, &catalog)?;
            Some((catalog, estate, checked))
        }
        None => None,
    };
    let checks = loaded
        .as_ref()
        .map(|(_, _, checked)| cyclonedx::check(&bom, checked));
    let evidence: Vec<EvidenceJson<'_>> = checks
        .iter()
        .flatten()
        .filter(|c| c.hash == "match")
        .filter_map(|c| {
            let m = bom.models.iter().find(|m| m.path == c.path)?;
            Some(EvidenceJson {
                application: c.application.as_deref()?,
                component: c.component.as_deref()?,
                area: &a.lineage_area,
                sha256: m.sha256.as_deref()?,
            })
        })
        .collect();
    let report = BomReport {
        file: a.file.display().to_string(),
        spec_version: &bom.spec_version,
        models: &bom.models,
        checks: checks.as_deref(),
        evidence,
    };
    match a.format {
        Format::Json => emit_json(None, &report)?,
        Format::Table => emit(None, &bom_table(&report))?,
    }
    if let (Some((catalog, mut estate, _)), Some(out), Some(checks)) =
        (loaded, &a.write_estate, &checks)
    {
        let date = a.date.unwrap_or_else(Date::today);
        let bom_sha = demarc_store::EstateRecord::from_content("", &bytes).content_sha256;
        let bom_path = std::fs::canonicalize(&a.file).unwrap_or_else(|_| a.file.clone());
        let mut changed = 0;
        for (check, model) in checks.iter().zip(&bom.models) {
            let (Some(app_id), Some(comp_id)) = (&check.application, &check.component) else {
                continue;
            };
            let Some(app) = estate.applications.iter_mut().find(|x| &x.id == app_id) else {
                continue;
            };
            if let Some(comp) = app.components.iter_mut().find(|x| &x.id == comp_id) {
                let lineage = comp.model.get_or_insert_with(|| ModelLineage {
                    base_model: model
                        .base_model
                        .clone()
                        .unwrap_or_else(|| model.name.clone()),
                    tuning_datasets: Vec::new(),
                    lineage: None,
                    sha256: None,
                });
                if lineage.tuning_datasets.is_empty() && !model.datasets.is_empty() {
                    lineage.tuning_datasets = model.datasets.clone();
                }
                if lineage.lineage.is_none() {
                    lineage.lineage = model.lineage.clone();
                }
                changed += check.fills.len();
            }
            if check.hash == "match" {
                app.evidence.push(Evidence {
                    area: a.lineage_area.clone(),
                    description: format!(
                        "CycloneDX ML-BOM: model `{}` has the SHA-256 the estate records",
                        model.name
                    ),
                    link: None,
                    file: Some(bom_path.display().to_string()),
                    sha256: Some(bom_sha.clone()),
                    reviewer: "demarc import cyclonedx".into(),
                    reviewed: date,
                    expires: None,
                    component: Some(comp_id.clone()),
                });
                changed += 1;
            }
        }
        write_estate(out, &estate, &catalog)?;
        eprintln!(
            "wrote {} ({})",
            out.display(),
            super::common::count(changed, "change")
        );
    }
    Ok(Outcome::Success)
}

fn bom_table(r: &BomReport<'_>) -> String {
    let mut out = format!(
        "{} (CycloneDX {}): {}\n",
        r.file,
        clean(r.spec_version),
        super::common::count(r.models.len(), "model")
    );
    for (i, m) in r.models.iter().enumerate() {
        out.push_str(&format!(
            "  {}: base model {}, {}, hash {}  ({})\n",
            clean(&m.name),
            m.base_model.as_deref().map_or("unknown".into(), clean),
            super::common::count(m.datasets.len(), "dataset"),
            m.sha256.as_deref().map_or("none", |_| "SHA-256"),
            m.path
        ));
        let Some(c) = r.checks.and_then(|c| c.get(i)) else {
            continue;
        };
        match (&c.application, &c.component) {
            (Some(app), Some(comp)) => {
                out.push_str(&format!("    estate: {app}/{comp}; hash {}\n", c.hash));
                for d in &c.differences {
                    out.push_str(&format!(
                        "    differs: {}: estate {}, BOM {}\n",
                        d.field,
                        d.estate.as_deref().map_or("-".into(), clean),
                        d.bom.as_deref().map_or("-".into(), clean)
                    ));
                }
                for d in &c.fills {
                    out.push_str(&format!(
                        "    fills: {}: {}\n",
                        d.field,
                        d.bom.as_deref().map_or("-".into(), clean)
                    ));
                }
            }
            _ => out.push_str("    estate: no matching model component\n"),
        }
    }
    for e in &r.evidence {
        out.push_str(&format!(
            "evidence: {}/{} {}: the BOM's model hash matches the estate's\n",
            e.application, e.component, e.area
        ));
    }
    out
}
