//! `demarc explain ESTATE APP [AREA]`: why each duty resolves as it does.

use std::path::PathBuf;

use anyhow::bail;
use demarc_model::catalog::Basis;
use demarc_model::diag::did_you_mean;
use demarc_model::resolve::{self, Party, ServiceModelRule, SupplyRule, TeamSource};
use serde::Serialize;

use super::common::{CatalogArg, emit, load_estate_for};
use crate::Outcome;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The estate file (YAML or JSON).
    pub estate: PathBuf,
    /// The application's id.
    pub app: String,
    /// Explain only this area (default: every area).
    pub area: Option<String>,
    #[command(flatten)]
    pub catalog: CatalogArg,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum Format {
    Text,
    Json,
}

#[derive(Serialize)]
struct Explanation<'a> {
    area: &'a str,
    title: &'a str,
    layer: &'a str,
    /// `None` when the area is `n/a` for this application.
    component: Option<&'a str>,
    component_kind: Option<&'a str>,
    /// The catalog service model the cell is read under.
    service_model: Option<&'a str>,
    /// How it was found: `direct`, `override` (the component's `service_models`) or
    /// `mapped` (the catalog's `maps_from`).
    #[serde(skip_serializing_if = "Option::is_none")]
    service_model_rule: Option<ServiceModelRule>,
    /// Why, in one sentence.
    #[serde(skip_serializing_if = "Option::is_none")]
    service_model_reason: Option<String>,
    supply_rule: Option<SupplyRule>,
    /// The owner: the cell's, or the component's `owners` entry for a model-dependent cell
    /// (`model-dependent` while unresolved).
    owner: &'a str,
    lead: Option<&'a str>,
    /// The owner comes from the component's `owners`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    owner_from_estate: bool,
    /// How the cell rests on its source: `stated`, `inferred` or `disputed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    basis: Option<Basis>,
    note: Option<&'a str>,
    citation: Option<&'a str>,
    accountable: Option<Party>,
    also_responsible: Vec<Party>,
    team_source: Option<TeamSource>,
    /// Why the accountable party is accountable, in one sentence.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    /// Why this component supplies the area's layer.
    #[serde(skip_serializing_if = "Option::is_none")]
    supplied_because: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let catalog = args.catalog.load()?;
    let estate = load_estate_for(&args.estate, &catalog, &args.app)?;
    let Some(app) = estate.application(&args.app) else {
        let ids = estate.applications().iter().map(|a| a.id.as_str());
        bail!(
            "no application `{}` in `{}`; {}",
            args.app,
            args.estate.display(),
            did_you_mean(&args.app, ids)
        );
    };
    let areas: Vec<_> = match &args.area {
        Some(id) => match catalog.area(id) {
            Some(a) => vec![a],
            None => bail!(
                "no area `{id}` in catalog `{}`; {}",
                catalog.id(),
                did_you_mean(id, catalog.areas().iter().map(|a| a.id.as_str()))
            ),
        },
        None => catalog.areas().iter().collect(),
    };
    // An area supplied by several components explains each component's duty.
    let explanations: Vec<Explanation<'_>> = areas
        .iter()
        .flat_map(|area| {
            let duties = resolve::resolve_area_all(app, &catalog, area);
            if duties.is_empty() {
                let supplier = resolve::supplier(app, &catalog, &area.layer);
                let sm = supplier.and_then(|(c, _)| resolve::catalog_service_model(c, &catalog));
                let cell = sm.and_then(|(sm, _, _)| catalog.cell(area, sm));
                return vec![Explanation {
                    area: &area.id,
                    title: &area.title,
                    layer: &area.layer,
                    component: supplier.map(|(c, _)| c.id.as_str()),
                    component_kind: supplier.map(|(c, _)| c.kind.as_str()),
                    service_model: sm.map(|(sm, _, _)| sm),
                    service_model_rule: sm.map(|(_, r, _)| r),
                    service_model_reason: None,
                    supply_rule: supplier.map(|(_, r)| r),
                    owner: "n/a",
                    lead: None,
                    owner_from_estate: false,
                    basis: cell.map(|c| c.basis),
                    note: cell.map(|c| c.note.as_str()),
                    citation: cell.map(|c| c.source.as_str()),
                    accountable: None,
                    also_responsible: Vec::new(),
                    team_source: None,
                    reason: None,
                    supplied_because: supplier
                        .map(|(c, r)| r.explain(c.kind.as_str(), &area.layer)),
                }];
            }
            duties
                .into_iter()
                .map(|d| Explanation {
                    area: &area.id,
                    title: &area.title,
                    layer: &area.layer,
                    component: Some(&d.component.id),
                    component_kind: Some(d.component.kind.as_str()),
                    service_model: Some(d.service_model),
                    service_model_rule: Some(d.service_model_rule),
                    service_model_reason: Some(d.service_model_reason()),
                    supply_rule: Some(d.rule),
                    owner: d.owner.as_str(),
                    lead: d.lead.map(|l| l.as_str()),
                    owner_from_estate: d.owner_from_estate,
                    basis: Some(d.cell.basis),
                    note: Some(&d.cell.note),
                    citation: Some(&d.cell.source),
                    accountable: Some(d.accountable.clone()),
                    also_responsible: d.also_responsible.clone(),
                    team_source: d.team.map(|(_, s)| s),
                    reason: Some(d.accountable_reason()),
                    supplied_because: Some(d.rule.explain(d.component.kind.as_str(), &area.layer)),
                })
                .collect()
        })
        .collect();

    let out = match args.format {
        Format::Json => format!("{}\n", serde_json::to_string_pretty(&explanations)?),
        Format::Text => {
            let source = &catalog.catalog().source;
            let mut s = format!(
                "{} ({}), owner {}, {}\n",
                app.name,
                app.id,
                app.owner,
                app.status.as_str()
            );
            for c in &app.components {
                s.push_str(&format!(
                    "  component `{}`: {} consumed as {} from {}\n",
                    c.id,
                    c.kind.as_str(),
                    c.service_model,
                    c.provider
                ));
            }
            for e in &explanations {
                s.push_str(&format!(
                    "\n{} — {} (layer `{}`)\n",
                    e.area, e.title, e.layer
                ));
                if let (Some(component), Some(kind), Some(sm), Some(rule)) = (
                    e.component,
                    e.component_kind,
                    e.service_model,
                    e.supply_rule,
                ) {
                    let why = e
                        .supplied_because
                        .clone()
                        .unwrap_or_else(|| rule.explain(kind, e.layer));
                    s.push_str(&format!(
                        "  supplied by: `{component}` ({kind}, {sm}), because {why}\n"
                    ));
                    if let (Some(rule), Some(reason)) =
                        (e.service_model_rule, &e.service_model_reason)
                        && rule != ServiceModelRule::Direct
                    {
                        s.push_str(&format!("  service model: {reason}\n"));
                    }
                    let owner = crate::render::owner_label(e.owner, e.lead);
                    let basis = match e.basis {
                        Some(b) if b != Basis::Stated => format!(" ({})", b.as_str()),
                        _ => String::new(),
                    };
                    let from = if e.owner_from_estate {
                        " (from the component's `owners`)"
                    } else {
                        ""
                    };
                    s.push_str(&format!(
                        "  cell: {} × {sm} = {owner}{from}{basis}\n",
                        e.area
                    ));
                }
                if let Some(note) = e.note {
                    s.push_str(&format!("  note: {note}\n"));
                }
                if let Some(c) = e.citation {
                    s.push_str(&format!(
                        "  source: {c} — \"{}\", {}\n",
                        source.title, source.date
                    ));
                }
                match (&e.accountable, &e.reason) {
                    (Some(p), Some(reason)) => {
                        s.push_str(&format!("  accountable: {} — {reason}\n", p.label()));
                    }
                    (Some(p), None) => s.push_str(&format!("  accountable: {}\n", p.label())),
                    (None, _) => s.push_str("  accountable: nobody (not applicable)\n"),
                }
                if !e.also_responsible.is_empty() {
                    let others: Vec<String> = e.also_responsible.iter().map(Party::label).collect();
                    s.push_str(&format!("  also responsible: {}\n", others.join(", ")));
                }
            }
            crate::render::table::clean_text(&s)
        }
    };
    emit(None, &out)?;
    Ok(Outcome::Success)
}
