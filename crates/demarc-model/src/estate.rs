//! The estate file: the organisation, its teams, its providers and its GenAI applications,
//! with who owns which duty, what controls exist and what evidence shows them working.
//!
//! [`Estate`] is the file's shape (public fields, JSON Schema); [`CheckedEstate`] is one that
//! was validated against a catalog, which resolution and assessment take.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::catalog::{CheckedCatalog, ComponentKind, Owner, Side, check_id, unique_ids};
use crate::date::Date;
use crate::diag::{Diagnostic, Diagnostics, did_you_mean};
use crate::parse;

/// The version of the estate data format this build reads.
pub const ESTATE_FORMAT: u32 = 1;

/// An organisation's GenAI estate, as written in an estate file.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Estate {
    /// Version of the estate data format; this build reads format 1.
    pub format: u32,
    /// The catalog this estate is written against (default `csa-genai-2023`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog: Option<String>,
    pub organisation: Organisation,
    #[serde(default, deserialize_with = "demarc_yaml::null_as_default")]
    pub teams: Vec<Team>,
    #[serde(default, deserialize_with = "demarc_yaml::null_as_default")]
    pub providers: Vec<Provider>,
    #[serde(default, deserialize_with = "demarc_yaml::null_as_default")]
    pub applications: Vec<Application>,
    /// How old reviewed evidence may be; overrides the catalog's per-area defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence_policy: Option<EvidencePolicy>,
}

/// How long reviewed evidence without an `expires` date counts after its review.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EvidencePolicy {
    /// For every area (overrides the catalog's `max_review_age_days`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_review_age_days: Option<u32>,
    /// Area id -> days, for single areas (overrides the line above).
    #[serde(
        default,
        deserialize_with = "demarc_yaml::null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub areas: BTreeMap<String, u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Organisation {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// An internal team that can own applications and duties.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Team {
    pub id: String,
    pub name: String,
    /// How to reach the team (mail address, channel, ...).
    pub contact: String,
}

/// An AI service provider and what it offers.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Provider {
    pub id: String,
    pub name: String,
    #[serde(default, deserialize_with = "demarc_yaml::null_as_default")]
    pub offerings: Vec<Offering>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Offering {
    pub id: String,
    pub name: String,
    /// The service model the offering is consumed as (an id from the catalog).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// One GenAI application the organisation builds, runs or uses.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Application {
    pub id: String,
    pub name: String,
    /// The team accountable for the application (a team id).
    pub owner: String,
    #[serde(default)]
    pub description: String,
    pub data_classification: DataClassification,
    pub status: AppStatus,
    /// Network endpoints (domains) the application is reached at; discovery matches on them.
    #[serde(default, deserialize_with = "demarc_yaml::null_as_default")]
    pub endpoints: Vec<String>,
    pub components: Vec<Component>,
    #[serde(default, deserialize_with = "demarc_yaml::null_as_default")]
    pub grounding_sources: Vec<GroundingSource>,
    #[serde(default)]
    pub duties: DutyAssignments,
    /// Area id -> the control the organisation has for it.
    #[serde(default, deserialize_with = "demarc_yaml::null_as_default")]
    pub controls: BTreeMap<String, Control>,
    #[serde(default, deserialize_with = "demarc_yaml::null_as_default")]
    pub evidence: Vec<Evidence>,
    /// Risks the organisation accepted instead of closing a gap: each with an owner, a reason
    /// and an expiry.
    #[serde(
        default,
        deserialize_with = "demarc_yaml::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub exceptions: Vec<RiskAcceptance>,
    /// The application's model traffic goes through the demarc gateway: discovery seeing its
    /// users reach the provider's endpoints directly is a bypass (`contradicted`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub through_gateway: bool,
    /// Areas for which what demarc observes (gateway enforcement, discovery) is accepted as
    /// evidence on its own, without a reviewed piece of evidence. Elsewhere observation is
    /// listed beside reviewed evidence and never replaces it.
    #[serde(
        default,
        deserialize_with = "demarc_yaml::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub accept_observed: Vec<String>,
    /// The guard policy the gateway applies: a policy mapping, or the name of a builtin
    /// policy or policy file. Checked by the guard, not here (the model does not depend on
    /// it), so it is kept as a generic value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guard_policy: Option<serde_json::Value>,
}

#[derive(
    Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq, Hash, PartialOrd, Ord,
)]
#[serde(rename_all = "lowercase")]
pub enum DataClassification {
    Public,
    Internal,
    Confidential,
    Restricted,
}

/// Whether the organisation approved the application.
#[derive(
    Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq, Hash, PartialOrd, Ord,
)]
#[serde(rename_all = "lowercase")]
pub enum AppStatus {
    /// Approved for use.
    Sanctioned,
    /// Not approved, but allowed for now (under review, limited use).
    Tolerated,
    /// Known and not allowed.
    Unsanctioned,
    /// Found in use (e.g. by `demarc discover`) and not yet reviewed.
    Discovered,
}

impl AppStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sanctioned => "sanctioned",
            Self::Tolerated => "tolerated",
            Self::Unsanctioned => "unsanctioned",
            Self::Discovered => "discovered",
        }
    }
}

impl DataClassification {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Internal => "internal",
            Self::Confidential => "confidential",
            Self::Restricted => "restricted",
        }
    }
}

/// A part of an application supplied by one provider under one service model.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Component {
    pub id: String,
    pub kind: ComponentKind,
    /// How the organisation consumes GenAI through this component (a catalog service model id).
    pub service_model: String,
    /// The provider of the component (a provider id).
    pub provider: String,
    /// The provider's offering, if listed (an offering id of that provider).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offering: Option<String>,
    /// Layers this component supplies, overriding the catalog's default by component kind.
    #[serde(
        default,
        deserialize_with = "demarc_yaml::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub supplies: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// For models: where the model comes from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelLineage>,
    /// Catalog id -> the catalog's service model this component is assessed under, instead
    /// of the one `service_model` maps to (e.g. `cosai-srf-1.0: agent-paas`).
    #[serde(
        default,
        deserialize_with = "demarc_yaml::null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub service_models: BTreeMap<String, String>,
    /// Catalog id -> area id -> the owner this organisation's contract or model gives, for
    /// cells the catalog leaves `model-dependent` (e.g.
    /// `cosai-srf-1.0: {foundation-models: customer}`).
    #[serde(
        default,
        deserialize_with = "demarc_yaml::null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub owners: BTreeMap<String, BTreeMap<String, ContractOwner>>,
}

/// Who owns a model-dependent area for one component: `provider`, `customer`, or
/// `{owner: shared, lead: provider|customer}`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(untagged)]
pub enum ContractOwner {
    /// `provider` or `customer` (or `shared`, which then lacks its lead: an error).
    Plain(ContractSide),
    /// `{owner: shared, lead: customer}`.
    Spec(ContractOwnerSpec),
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ContractSide {
    Provider,
    Customer,
    Shared,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ContractOwnerSpec {
    pub owner: ContractSide,
    /// For `shared`: the side that leads (and is accountable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lead: Option<Side>,
}

impl ContractOwner {
    /// The owner and lead it gives, as a catalog cell would.
    pub fn owner_lead(self) -> (Owner, Option<Side>) {
        let (owner, lead) = match self {
            Self::Plain(o) => (o, None),
            Self::Spec(s) => (s.owner, s.lead),
        };
        let owner = match owner {
            ContractSide::Provider => Owner::Provider,
            ContractSide::Customer => Owner::Customer,
            ContractSide::Shared => Owner::Shared,
        };
        (owner, lead)
    }

    /// What is wrong with it: a shared owner without a lead, or a lead on a side owner.
    fn problem(self) -> Option<&'static str> {
        match self.owner_lead() {
            (Owner::Shared, None) => Some("a shared owner must say which side leads"),
            (Owner::Shared, Some(_)) | (_, None) => None,
            (_, Some(_)) => Some("only a shared owner has a lead"),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelLineage {
    pub base_model: String,
    #[serde(default, deserialize_with = "demarc_yaml::null_as_default")]
    pub tuning_datasets: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lineage: Option<String>,
    /// SHA-256 of the model weights as deployed (64 hex digits), when the organisation holds
    /// them: a CycloneDX ML-BOM whose model hash matches counts as lineage evidence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// An approved source of grounding documents.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GroundingSource {
    pub id: String,
    /// A folder of text, Markdown and HTML documents (relative to the estate file).
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Caller groups allowed to read this source; empty means everyone.
    #[serde(default, deserialize_with = "demarc_yaml::null_as_default")]
    pub groups: Vec<String>,
}

/// Which internal team owns each of the application's customer duties.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DutyAssignments {
    /// The team for every customer duty not assigned below.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    /// Area id -> team id.
    #[serde(default, deserialize_with = "demarc_yaml::null_as_default")]
    pub areas: BTreeMap<String, String>,
}

/// A control statement for one area.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Control {
    pub status: ControlStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statement: Option<String>,
    /// Required when the status is `not-applicable`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub justification: Option<String>,
    /// The control blocks the application's traffic (e.g. at a web proxy): any traffic demarc
    /// observes for the application contradicts it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub blocked: bool,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum ControlStatus {
    Implemented,
    Partial,
    Planned,
    NotApplicable,
}

impl ControlStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Implemented => "implemented",
            Self::Partial => "partial",
            Self::Planned => "planned",
            Self::NotApplicable => "not-applicable",
        }
    }
}

/// Something that shows a control works, reviewed by a person.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Evidence {
    /// The area it is evidence for.
    pub area: String,
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// A file path (relative to the estate file); give its sha256 too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    pub reviewer: String,
    pub reviewed: Date,
    /// After this date the evidence no longer counts. Without it, evidence goes stale after
    /// the maximum review age (catalog default per area, estate `evidence_policy`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<Date>,
    /// Only for this component's duty (a component id); without it, for every component's
    /// duty in the area.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
}

/// A risk accepted instead of closing a duty's gaps: shown as such, never as covered, and
/// it expires like evidence.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RiskAcceptance {
    /// The area whose gaps are accepted.
    pub area: String,
    /// Only for this component's duty; without it, for every component's duty in the area.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
    /// The team that owns the risk (a team id).
    pub owner: String,
    /// Why the risk is accepted, and what limits it.
    pub reason: String,
    /// Who accepted it (a person or body).
    pub approved_by: String,
    pub approved: Date,
    /// After this date the acceptance no longer counts.
    pub expires: Date,
}

impl Evidence {
    /// Whether this evidence is for `component`'s duty.
    pub fn applies_to(&self, component: &str) -> bool {
        self.component.as_deref().is_none_or(|c| c == component)
    }
}

impl RiskAcceptance {
    /// Whether this acceptance is for `component`'s duty.
    pub fn applies_to(&self, component: &str) -> bool {
        self.component.as_deref().is_none_or(|c| c == component)
    }
}

/// An estate validated against a catalog: every reference resolves, so resolution and
/// assessment never meet a dangling id.
#[derive(Debug, Clone)]
pub struct CheckedEstate {
    estate: Estate,
}

/// The result of checking an estate: usable (with warnings) or not.
pub struct Checked {
    pub estate: CheckedEstate,
    /// Problems that do not stop the estate from being used (e.g. an unowned duty).
    pub warnings: Diagnostics,
}

impl CheckedEstate {
    /// Parse and validate an estate file against `catalog`. Errors (dangling ids, wrong
    /// types) reject the file; every problem found is reported at once.
    pub fn from_bytes(
        file: &str,
        bytes: &[u8],
        catalog: &CheckedCatalog,
    ) -> Result<Checked, Diagnostics> {
        let text = parse::as_text(file, bytes)?;
        let estate: Estate = parse::from_text(file, text)?;
        Self::check(file, Some(text), estate, catalog)
    }

    /// Validate an estate already in memory. `text`, when given, is used to locate problems.
    pub fn check(
        file: &str,
        text: Option<&str>,
        estate: Estate,
        catalog: &CheckedCatalog,
    ) -> Result<Checked, Diagnostics> {
        let mut diagnostics = Diagnostics::new(file);
        for d in validate(&estate, catalog) {
            diagnostics.push(d);
        }
        for d in offering_service_models(&estate) {
            diagnostics.push(d);
        }
        if !diagnostics.is_empty()
            && let Some(text) = text
        {
            diagnostics.locate_in(text);
        }
        if diagnostics.has_errors() {
            return Err(diagnostics);
        }
        Ok(Checked {
            estate: CheckedEstate { estate },
            warnings: diagnostics,
        })
    }

    pub fn estate(&self) -> &Estate {
        &self.estate
    }

    pub fn applications(&self) -> &[Application] {
        &self.estate.applications
    }

    pub fn application(&self, id: &str) -> Option<&Application> {
        self.estate.applications.iter().find(|a| a.id == id)
    }

    pub fn provider(&self, id: &str) -> Option<&Provider> {
        self.estate.providers.iter().find(|p| p.id == id)
    }

    pub fn team(&self, id: &str) -> Option<&Team> {
        self.estate.teams.iter().find(|t| t.id == id)
    }

    /// Replace one application (for what-if analysis), re-validating the result.
    pub fn with_application(
        &self,
        application: Application,
        catalog: &CheckedCatalog,
    ) -> Result<CheckedEstate, Diagnostics> {
        let mut estate = self.estate.clone();
        if let Some(slot) = estate
            .applications
            .iter_mut()
            .find(|a| a.id == application.id)
        {
            *slot = application;
        }
        Self::check("<what-if>", None, estate, catalog).map(|c| c.estate)
    }
}

fn validate(estate: &Estate, catalog: &CheckedCatalog) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    if estate.format != ESTATE_FORMAT {
        out.push(
            Diagnostic::error(
                "format",
                format!("unsupported estate format `{}`", estate.format),
            )
            .with_help(format!("this build reads format {ESTATE_FORMAT}")),
        );
    }
    let mut area_refs = AreaRefs::new(estate, catalog);
    unique_ids(
        &mut out,
        "teams",
        estate.teams.iter().map(|t| t.id.as_str()),
    );
    unique_ids(
        &mut out,
        "providers",
        estate.providers.iter().map(|p| p.id.as_str()),
    );
    unique_ids(
        &mut out,
        "applications",
        estate.applications.iter().map(|a| a.id.as_str()),
    );

    let teams: Vec<&str> = estate.teams.iter().map(|t| t.id.as_str()).collect();
    let providers: Vec<&str> = estate.providers.iter().map(|p| p.id.as_str()).collect();
    let models: Vec<&str> = catalog
        .service_models()
        .iter()
        .map(|s| s.id.as_str())
        .collect();
    // Service models an estate may name: the catalog's own, and those its `maps_from` takes.
    let mut accepted_models = models.clone();
    for sm in catalog.service_models() {
        for m in &sm.maps_from {
            if !accepted_models.contains(&m.service_model.as_str()) {
                accepted_models.push(m.service_model.as_str());
            }
        }
    }
    let layers: Vec<&str> = catalog.layers().iter().map(|l| l.id.as_str()).collect();

    let check_ref =
        |out: &mut Vec<Diagnostic>, path: String, what: &str, given: &str, known: &[&str]| {
            if !known.contains(&given) {
                out.push(
                    Diagnostic::error(path, format!("unknown {what} `{given}`"))
                        .with_help(did_you_mean(given, known.iter().copied())),
                );
            }
        };

    for (i, provider) in estate.providers.iter().enumerate() {
        let at = format!("providers[{i}]");
        unique_ids(
            &mut out,
            &format!("{at}.offerings"),
            provider.offerings.iter().map(|o| o.id.as_str()),
        );
        for (j, offering) in provider.offerings.iter().enumerate() {
            if let Some(sm) = &offering.service_model {
                check_ref(
                    &mut out,
                    format!("{at}.offerings[{j}].service_model"),
                    "service model",
                    sm,
                    &accepted_models,
                );
            }
        }
    }

    for (i, app) in estate.applications.iter().enumerate() {
        let at = format!("applications[{i}]");
        check_ref(&mut out, format!("{at}.owner"), "team", &app.owner, &teams);
        if app.components.is_empty() {
            out.push(
                Diagnostic::error(
                    format!("{at}.components"),
                    format!("application `{}` has no components", app.id),
                )
                .with_help("list at least one component (kind, service_model, provider)"),
            );
        }
        unique_ids(
            &mut out,
            &format!("{at}.components"),
            app.components.iter().map(|c| c.id.as_str()),
        );
        unique_ids(
            &mut out,
            &format!("{at}.grounding_sources"),
            app.grounding_sources.iter().map(|g| g.id.as_str()),
        );
        for (j, endpoint) in app.endpoints.iter().enumerate() {
            if !is_domain_pattern(endpoint) {
                out.push(
                    Diagnostic::error(format!("{at}.endpoints[{j}]"), format!("`{endpoint}` is not a domain name"))
                        .with_help("write a host name such as `chat.example.com`, or `*.example.com` for a suffix"),
                );
            }
        }
        for (j, c) in app.components.iter().enumerate() {
            let cat = format!("{at}.components[{j}]");
            check_component_catalogs(&mut out, &cat, app, c, catalog, &accepted_models);
            check_ref(
                &mut out,
                format!("{cat}.provider"),
                "provider",
                &c.provider,
                &providers,
            );
            if let (Some(offering), Some(p)) = (
                &c.offering,
                estate.providers.iter().find(|p| p.id == c.provider),
            ) {
                let offerings: Vec<&str> = p.offerings.iter().map(|o| o.id.as_str()).collect();
                check_ref(
                    &mut out,
                    format!("{cat}.offering"),
                    "offering",
                    offering,
                    &offerings,
                );
            }
            for (k, layer) in c.supplies.iter().enumerate() {
                if !layers.contains(&layer.as_str()) && !area_refs.is_home_layer(layer) {
                    check_ref(
                        &mut out,
                        format!("{cat}.supplies[{k}]"),
                        "layer",
                        layer,
                        &layers,
                    );
                }
            }
            if c.model.is_some() && c.kind != ComponentKind::Model {
                out.push(
                    Diagnostic::warning(
                        format!("{cat}.model"),
                        "model lineage on a component that is not a model",
                    )
                    .with_help("set `kind: model`, or move the lineage to the model component"),
                );
            }
            if let Some(h) = c.model.as_ref().and_then(|m| m.sha256.as_ref())
                && (h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()))
            {
                out.push(Diagnostic::error(
                    format!("{cat}.model.sha256"),
                    "sha256 must be 64 hex digits",
                ));
            }
        }
        if let Some(team) = &app.duties.default {
            check_ref(
                &mut out,
                format!("{at}.duties.default"),
                "team",
                team,
                &teams,
            );
        }
        for (area, team) in &app.duties.areas {
            area_refs.check(&mut out, format!("{at}.duties.areas.{area}#key"), area);
            check_ref(
                &mut out,
                format!("{at}.duties.areas.{area}"),
                "team",
                team,
                &teams,
            );
        }
        for (area, control) in &app.controls {
            area_refs.check(&mut out, format!("{at}.controls.{area}#key"), area);
            if control.status == ControlStatus::NotApplicable
                && control
                    .justification
                    .as_deref()
                    .is_none_or(|j| j.trim().is_empty())
            {
                out.push(
                    Diagnostic::error(
                        format!("{at}.controls.{area}.status"),
                        format!("control for `{area}` is `not-applicable` without a justification"),
                    )
                    .with_help("add `justification:` saying why the area does not apply"),
                );
            }
        }
        let components: Vec<&str> = app.components.iter().map(|c| c.id.as_str()).collect();
        for (j, area) in app.accept_observed.iter().enumerate() {
            area_refs.check(&mut out, format!("{at}.accept_observed[{j}]"), area);
        }
        for (j, x) in app.exceptions.iter().enumerate() {
            let xat = format!("{at}.exceptions[{j}]");
            area_refs.check(&mut out, format!("{xat}.area"), &x.area);
            check_ref(&mut out, format!("{xat}.owner"), "team", &x.owner, &teams);
            if let Some(c) = &x.component {
                check_ref(
                    &mut out,
                    format!("{xat}.component"),
                    "component",
                    c,
                    &components,
                );
            }
            if x.reason.trim().is_empty() {
                out.push(Diagnostic::error(
                    format!("{xat}.reason"),
                    "a risk acceptance needs a reason",
                ));
            }
            if x.expires < x.approved {
                out.push(Diagnostic::error(
                    format!("{xat}.expires"),
                    format!(
                        "risk acceptance expires ({}) before it was approved ({})",
                        x.expires, x.approved
                    ),
                ));
            }
        }
        for (j, e) in app.evidence.iter().enumerate() {
            let eat = format!("{at}.evidence[{j}]");
            area_refs.check(&mut out, format!("{eat}.area"), &e.area);
            if e.link.is_none() && e.file.is_none() {
                out.push(
                    Diagnostic::error(eat.clone(), "evidence needs a `link` or a `file`")
                        .with_help("point to where a reviewer can see it"),
                );
            }
            if e.file.is_some() && e.sha256.is_none() {
                out.push(
                    Diagnostic::warning(format!("{eat}.file"), "evidence file without a `sha256`")
                        .with_help(
                            "record the file's sha256 so a reviewer can tell it was not changed",
                        ),
                );
            }
            if let Some(h) = &e.sha256
                && (h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()))
            {
                out.push(Diagnostic::error(
                    format!("{eat}.sha256"),
                    "sha256 must be 64 hex digits",
                ));
            }
            if let Some(c) = &e.component {
                check_ref(
                    &mut out,
                    format!("{eat}.component"),
                    "component",
                    c,
                    &components,
                );
            }
            if let Some(expires) = e.expires
                && expires < e.reviewed
            {
                out.push(Diagnostic::error(
                    format!("{eat}.expires"),
                    format!(
                        "evidence expires ({expires}) before it was reviewed ({})",
                        e.reviewed
                    ),
                ));
            }
        }
    }
    for (i, team) in estate.teams.iter().enumerate() {
        check_id(&mut out, &format!("teams[{i}].id"), &team.id);
    }
    if let Some(policy) = &estate.evidence_policy {
        for area in policy.areas.keys() {
            area_refs.check(&mut out, format!("evidence_policy.areas.{area}#key"), area);
        }
    }
    area_refs.finish(&mut out, estate, catalog);
    out
}

/// Checks the area ids an estate names (duties, controls, evidence, exceptions,
/// `accept_observed`, `evidence_policy`). They are the areas of the estate's own catalog
/// (`catalog`, default the default catalog). Checked against another catalog, an id of that
/// catalog is taken as it is; an id of the estate's own catalog (when it is built in) or of an
/// unknown catalog file is left aside, as it does not apply there, and counted in one warning.
struct AreaRefs<'a> {
    current: Vec<&'a str>,
    /// The estate's own catalog's area ids, when it differs from the one checked against;
    /// `Some(None)` when it is not built in (its ids cannot be checked).
    home: Option<Option<Vec<String>>>,
    /// The estate's own catalog's layer ids, under the same condition.
    home_layers: Option<Option<Vec<String>>>,
    foreign: usize,
}

impl<'a> AreaRefs<'a> {
    fn new(estate: &Estate, catalog: &'a CheckedCatalog) -> Self {
        let home_id = estate
            .catalog
            .as_deref()
            .unwrap_or(crate::catalog::DEFAULT_CATALOG);
        let home_catalog = (home_id != catalog.id())
            .then(|| CheckedCatalog::builtin(home_id).and_then(Result::ok));
        Self {
            current: catalog.areas().iter().map(|a| a.id.as_str()).collect(),
            home: home_catalog.as_ref().map(|c| {
                c.as_ref()
                    .map(|c| c.areas().iter().map(|a| a.id.clone()).collect())
            }),
            home_layers: home_catalog.as_ref().map(|c| {
                c.as_ref()
                    .map(|c| c.layers().iter().map(|l| l.id.clone()).collect())
            }),
            foreign: 0,
        }
    }

    /// Whether `layer` (unknown to the catalog checked against) is a layer of the estate's own
    /// catalog, or of a catalog file that cannot be checked: then it does not apply here.
    fn is_home_layer(&self, layer: &str) -> bool {
        match &self.home_layers {
            Some(None) => true,
            Some(Some(home)) => home.iter().any(|l| l == layer),
            None => false,
        }
    }

    fn check(&mut self, out: &mut Vec<Diagnostic>, path: String, given: &str) {
        if self.current.contains(&given) {
            return;
        }
        match &self.home {
            Some(None) => self.foreign += 1,
            Some(Some(home)) if home.iter().any(|a| a == given) => self.foreign += 1,
            Some(Some(home)) => out.push(
                Diagnostic::error(path, format!("unknown area `{given}`")).with_help(did_you_mean(
                    given,
                    self.current
                        .iter()
                        .copied()
                        .chain(home.iter().map(String::as_str)),
                )),
            ),
            None => out.push(
                Diagnostic::error(path, format!("unknown area `{given}`"))
                    .with_help(did_you_mean(given, self.current.iter().copied())),
            ),
        }
    }

    fn finish(&self, out: &mut Vec<Diagnostic>, estate: &Estate, catalog: &CheckedCatalog) {
        let Some(id) = &estate.catalog else {
            if self.foreign > 0 {
                out.push(self.foreign_warning(crate::catalog::DEFAULT_CATALOG, catalog));
            }
            return;
        };
        if id == catalog.id() {
            return;
        }
        if self.foreign > 0 {
            out.push(self.foreign_warning(id, catalog));
        } else {
            out.push(
                Diagnostic::warning(
                    "catalog",
                    format!(
                        "estate is written for catalog `{id}` but is checked against `{}`",
                        catalog.id()
                    ),
                )
                .with_help(format!(
                    "pass `--catalog {id}`, or change the estate's `catalog`"
                )),
            );
        }
    }

    fn foreign_warning(&self, home: &str, catalog: &CheckedCatalog) -> Diagnostic {
        Diagnostic::warning(
            "catalog",
            format!(
                "estate is written for catalog `{home}` but is checked against `{}`: its {} reference{} to areas of `{home}` (duties, controls, evidence, exceptions) do not apply under `{}`",
                catalog.id(),
                self.foreign,
                if self.foreign == 1 { "" } else { "s" },
                catalog.id()
            ),
        )
        .with_help(format!(
            "duties under `{}` have no control or evidence from them; pass `--catalog {home}` to assess against the estate's own catalog",
            catalog.id()
        ))
    }
}

/// A component's catalog service model (`service_model`, its override in `service_models`, or
/// the catalog's `maps_from`) and its `owners` for model-dependent cells.
fn check_component_catalogs(
    out: &mut Vec<Diagnostic>,
    at: &str,
    app: &Application,
    c: &Component,
    catalog: &CheckedCatalog,
    accepted_models: &[&str],
) {
    let cid = catalog.id();
    let known_catalog = |id: &str| id == cid || CheckedCatalog::builtin_ids().any(|b| b == id);
    let models: Vec<&str> = catalog
        .service_models()
        .iter()
        .map(|s| s.id.as_str())
        .collect();
    for (key, sm) in &c.service_models {
        if key == cid {
            if !models.contains(&sm.as_str()) {
                out.push(
                    Diagnostic::error(
                        format!("{at}.service_models.{key}"),
                        format!("catalog `{cid}` has no service model `{sm}`"),
                    )
                    .with_help(did_you_mean(sm, models.iter().copied())),
                );
            }
        } else if !known_catalog(key) {
            out.push(unknown_catalog(
                format!("{at}.service_models.{key}#key"),
                key,
                cid,
            ));
        }
    }
    // The catalog service model the component is assessed under, if any.
    let assessed_under = match c.service_models.get(cid) {
        Some(sm) => models.contains(&sm.as_str()).then_some(sm.as_str()),
        None => {
            let mapped = catalog.map_service_model(&c.service_model, c.kind);
            if mapped.is_none() {
                let message = if accepted_models.contains(&c.service_model.as_str()) {
                    format!(
                        "catalog `{cid}` maps service model `{}` to none of its own for a component of kind `{}`",
                        c.service_model,
                        c.kind.as_str()
                    )
                } else {
                    format!("unknown service model `{}`", c.service_model)
                };
                let help = if accepted_models.contains(&c.service_model.as_str()) {
                    format!(
                        "add `service_models: {{{cid}: <id>}}` to the component, one of: {}",
                        models.join(", ")
                    )
                } else {
                    did_you_mean(&c.service_model, accepted_models.iter().copied())
                };
                out.push(Diagnostic::error(format!("{at}.service_model"), message).with_help(help));
            }
            mapped.map(|(sm, _)| sm.id.as_str())
        }
    };
    for (key, areas) in &c.owners {
        for (area_id, owner) in areas {
            if let Some(problem) = owner.problem() {
                out.push(
                    Diagnostic::error(format!("{at}.owners.{key}.{area_id}"), problem).with_help(
                        "write `provider`, `customer`, or `{owner: shared, lead: customer}`",
                    ),
                );
            }
        }
        if key != cid {
            if !known_catalog(key) {
                out.push(unknown_catalog(format!("{at}.owners.{key}#key"), key, cid));
            }
            continue;
        }
        for area_id in areas.keys() {
            let path = format!("{at}.owners.{key}.{area_id}");
            let Some(area) = catalog.area(area_id) else {
                out.push(
                    Diagnostic::error(
                        format!("{path}#key"),
                        format!("unknown area `{area_id}` of catalog `{cid}`"),
                    )
                    .with_help(did_you_mean(
                        area_id,
                        catalog.areas().iter().map(|a| a.id.as_str()),
                    )),
                );
                continue;
            };
            let Some(cell) = assessed_under.and_then(|sm| catalog.cell(area, sm)) else {
                continue;
            };
            if cell.owner != Owner::ModelDependent {
                out.push(
                    Diagnostic::warning(
                        path,
                        format!(
                            "component `{}` of application `{}` is assessed under `{}`, where `{area_id}` is `{}`, not model-dependent: this owner is ignored",
                            c.id,
                            app.id,
                            assessed_under.unwrap_or_default(),
                            cell.owner.as_str()
                        ),
                    )
                    .with_help("`owners` resolves only cells the catalog leaves model-dependent; remove the entry"),
                );
            }
        }
    }
}

fn unknown_catalog(path: String, key: &str, current: &str) -> Diagnostic {
    let mut known: Vec<&str> = vec![current];
    for id in CheckedCatalog::builtin_ids() {
        known.push(id);
    }
    Diagnostic::warning(
        path,
        format!("`{key}` is neither the catalog checked against nor a built-in catalog"),
    )
    .with_help(did_you_mean(key, known.iter().copied()))
}

/// A component that names an offering is consumed under the offering's declared service
/// model: an offering consumed as SaaS on a component declared IaaS is an error.
fn offering_service_models(estate: &Estate) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (i, app) in estate.applications.iter().enumerate() {
        for (j, c) in app.components.iter().enumerate() {
            let Some(provider) = estate.providers.iter().find(|p| p.id == c.provider) else {
                continue;
            };
            let Some(offering) = c
                .offering
                .as_ref()
                .and_then(|o| provider.offerings.iter().find(|x| &x.id == o))
            else {
                continue;
            };
            let Some(declared) = &offering.service_model else {
                continue;
            };
            if declared != &c.service_model {
                out.push(
                    Diagnostic::error(
                        format!("applications[{i}].components[{j}].service_model"),
                        format!(
                            "component `{}` of application `{}` is consumed as `{}`, but offering `{}` of provider `{}` is `{declared}`",
                            c.id, app.id, c.service_model, offering.id, provider.id
                        ),
                    )
                    .with_help(format!(
                        "set `service_model: {declared}`, or name an offering of `{}` consumed as `{}`",
                        provider.id, c.service_model
                    )),
                );
            }
        }
    }
    out
}

/// `host.example.com` or `*.example.com`: labels of letters, digits and dashes.
pub fn is_domain_pattern(s: &str) -> bool {
    let host = s.strip_prefix("*.").unwrap_or(s);
    !host.is_empty()
        && host.len() <= 253
        && host.contains('.')
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}
