//! Responsibility catalogs: who owns each area of responsibility under each service model.
//!
//! A catalog is data (YAML or JSON). [`Catalog`] is the file's shape, with public fields
//! and a JSON Schema; [`CheckedCatalog`] is one that passed validation, which every other
//! part of demarc takes, so code past loading never meets a missing cell or a dangling id.

use std::collections::{BTreeMap, HashSet};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::diag::{Diagnostic, Diagnostics, did_you_mean, suggest};
use crate::observe::ObservationKind;
use crate::parse;

/// The version of the catalog data format this build reads.
pub const CATALOG_FORMAT: u32 = 1;

/// The id of the catalog used when none is named.
pub const DEFAULT_CATALOG: &str = "csa-genai-2023";

const BUILTIN: &[(&str, &str)] = &[
    (
        "csa-genai-2023",
        include_str!("../catalogs/csa-genai-2023.yaml"),
    ),
    (
        "cosai-srf-1.0",
        include_str!("../catalogs/cosai-srf-1.0.yaml"),
    ),
    (
        "microsoft-ai-srm",
        include_str!("../catalogs/microsoft-ai-srm.yaml"),
    ),
    (
        "aws-genai-scoping",
        include_str!("../catalogs/aws-genai-scoping.yaml"),
    ),
];

/// A responsibility model, as written in a catalog file.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    /// Version of the catalog data format; this build reads format 1.
    pub format: u32,
    /// Stable identifier, lowercase with dashes, e.g. `csa-genai-2023`.
    pub id: String,
    pub title: String,
    /// Version of this catalog's content.
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The document the model comes from.
    pub source: Source,
    /// The parties the model speaks of (provider, customer, application owner, ...).
    pub roles: Vec<Role>,
    pub service_models: Vec<ServiceModel>,
    /// Layers of the stack; every area belongs to one, and applications made of several
    /// components resolve each layer from the component that supplies it.
    pub layers: Vec<Layer>,
    pub areas: Vec<Area>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Source {
    pub title: String,
    pub url: String,
    /// Publication date, YYYY-MM-DD.
    pub date: String,
    pub licence: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Role {
    pub id: String,
    pub title: String,
    pub description: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServiceModel {
    pub id: String,
    pub title: String,
    pub description: String,
    #[serde(default, deserialize_with = "demarc_yaml::null_as_default")]
    pub examples: Vec<String>,
    /// The estate service models (`iaas`, `paas`, `saas`: the default catalog's ids) this
    /// service model stands for by default. A component whose `service_model` is not an id
    /// of this catalog is assessed under the first service model, in catalog order, with an
    /// entry that matches it (see `docs/catalogs.md`).
    #[serde(
        default,
        deserialize_with = "demarc_yaml::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub maps_from: Vec<MapsFrom>,
}

/// One estate service model that a catalog service model stands for.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MapsFrom {
    /// An estate service model: `iaas`, `paas` or `saas`.
    pub service_model: String,
    /// Only components of these kinds; empty: every kind.
    #[serde(
        default,
        deserialize_with = "demarc_yaml::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub kinds: Vec<ComponentKind>,
    /// Why, with a citation of the source or "demarc's reading".
    pub note: String,
}

impl MapsFrom {
    /// Whether a component consumed as `service_model` and of `kind` is covered by this entry.
    pub fn matches(&self, service_model: &str, kind: ComponentKind) -> bool {
        self.service_model == service_model && (self.kinds.is_empty() || self.kinds.contains(&kind))
    }
}

/// The service models an estate's components name (the default catalog's ids); every
/// catalog must be able to take each of them, directly or through `maps_from`.
pub const ESTATE_SERVICE_MODELS: [&str; 3] = ["iaas", "paas", "saas"];

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Layer {
    pub id: String,
    pub title: String,
    pub description: String,
    /// Component kinds that supply this layer, most specific first. An application
    /// resolves the layer from its first component whose kind comes earliest here.
    pub supplied_by: Vec<ComponentKind>,
    /// Component kinds that supply this layer as well, each with its own duties, beside the
    /// component chosen by `supplied_by` (e.g. a plugin that feeds the model context).
    #[serde(
        default,
        deserialize_with = "demarc_yaml::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub also_supplied_by: Vec<ComponentKind>,
    /// The layer applies only to applications that have a component of one of these kinds
    /// (or one that names the layer in `supplies`); for any other application its areas are
    /// not applicable (an agent layer says nothing about an application without an agent).
    /// Empty: every application has the layer.
    #[serde(
        default,
        deserialize_with = "demarc_yaml::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub only_with: Vec<ComponentKind>,
}

/// What a component of an application is.
#[derive(
    Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq, Hash, PartialOrd, Ord,
)]
#[serde(rename_all = "kebab-case")]
pub enum ComponentKind {
    /// A foundation, pretrained or tuned model.
    Model,
    /// A platform or infrastructure service the application runs on.
    Platform,
    /// The application itself (including finished SaaS products).
    Application,
    /// A source of grounding or retrieval data (vector store, search index, ...).
    DataSource,
    /// A plugin or tool the model can call.
    Plugin,
    /// An agent that plans and acts on the model's output.
    Agent,
}

impl ComponentKind {
    pub const ALL: [ComponentKind; 6] = [
        Self::Model,
        Self::Platform,
        Self::Application,
        Self::DataSource,
        Self::Plugin,
        Self::Agent,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Model => "model",
            Self::Platform => "platform",
            Self::Application => "application",
            Self::DataSource => "data-source",
            Self::Plugin => "plugin",
            Self::Agent => "agent",
        }
    }
}

/// One area of responsibility, with one cell per service model.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Area {
    pub id: String,
    pub title: String,
    pub description: String,
    /// The layer this area belongs to (an id from `layers`).
    pub layer: String,
    #[serde(default)]
    pub mappings: Mappings,
    /// Service model id -> who owns this area under that service model.
    pub cells: BTreeMap<String, Cell>,
    /// Facts demarc can observe by itself that support this area (gateway enforcement,
    /// discovery). Observation is listed beside reviewed evidence, never instead of it.
    #[serde(
        default,
        deserialize_with = "demarc_yaml::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub observed_by: Vec<ObservationKind>,
    /// Reviewed evidence without an `expires` date goes stale this many days after its review
    /// (the estate's `evidence_policy` may override it). None: such evidence never goes stale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_review_age_days: Option<u32>,
}

/// Where an area meets other frameworks. Ids are checked against the known sets.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Mappings {
    /// OWASP Top 10 for LLM Applications 2025 ids, e.g. `LLM01:2025`.
    #[serde(default)]
    pub owasp_llm_2025: Vec<String>,
    /// NIST AI 600-1 (Generative AI Profile) risk categories, e.g. `information-security`.
    #[serde(default)]
    pub nist_ai_600_1: Vec<String>,
    /// MITRE ATLAS technique ids, e.g. `AML.T0051`.
    #[serde(default, deserialize_with = "demarc_yaml::null_as_default")]
    pub mitre_atlas: Vec<String>,
    /// CSA AI Controls Matrix v1.0 control ids, e.g. `AIS-01`, `A&A-02`, `MDS-13`.
    #[serde(
        default,
        deserialize_with = "demarc_yaml::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub csa_aicm: Vec<String>,
    /// ISO/IEC 42001:2023 Annex A control ids, e.g. `A.6.2.6`.
    #[serde(
        default,
        deserialize_with = "demarc_yaml::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub iso_42001: Vec<String>,
}

/// Who owns an area under one service model.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Cell {
    pub owner: Owner,
    /// For `shared` cells: the side that leads (and is accountable).
    #[serde(default)]
    pub lead: Option<Side>,
    /// One line: what the owner does here, and where the source is ambiguous.
    pub note: String,
    /// Citation of the source passage the cell comes from.
    pub source: String,
    /// How the cell rests on its source: `stated` (default), `inferred` (demarc's reading
    /// where the source is silent) or `disputed` (the source contradicts itself; the note
    /// says how).
    #[serde(default, skip_serializing_if = "Basis::is_stated")]
    pub basis: Basis,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq, Hash)]
pub enum Owner {
    #[serde(rename = "provider")]
    Provider,
    #[serde(rename = "customer")]
    Customer,
    #[serde(rename = "shared")]
    Shared,
    #[serde(rename = "n/a")]
    NotApplicable,
    /// The source leaves the cell to the model or the contract (CoSAI's "Model Dependent"):
    /// each estate component says what its contract gives (`owners`); until it does, the
    /// duty is reported as unresolved.
    #[serde(rename = "model-dependent")]
    ModelDependent,
}

impl Owner {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Provider => "provider",
            Self::Customer => "customer",
            Self::Shared => "shared",
            Self::NotApplicable => "n/a",
            Self::ModelDependent => "model-dependent",
        }
    }
}

/// How a cell rests on its source.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, JsonSchema, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Basis {
    /// The source says so.
    #[default]
    Stated,
    /// The source is silent; the cell is demarc's reading.
    Inferred,
    /// The source contradicts itself; the note says how and which reading demarc took.
    Disputed,
}

impl Basis {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stated => "stated",
            Self::Inferred => "inferred",
            Self::Disputed => "disputed",
        }
    }

    pub fn is_stated(&self) -> bool {
        *self == Self::Stated
    }

    /// A one-character marker for compact matrix views: none, `*` inferred, `!` disputed.
    pub fn marker(self) -> &'static str {
        match self {
            Self::Stated => "",
            Self::Inferred => "*",
            Self::Disputed => "!",
        }
    }
}

/// One side of the demarcation.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Provider,
    Customer,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Provider => "provider",
            Self::Customer => "customer",
        }
    }
}

impl Cell {
    /// The side accountable for the area: the owner, or the lead of a shared cell.
    pub fn accountable_side(&self) -> Option<Side> {
        match self.owner {
            Owner::Provider => Some(Side::Provider),
            Owner::Customer => Some(Side::Customer),
            Owner::Shared => self.lead,
            Owner::NotApplicable | Owner::ModelDependent => None,
        }
    }

    /// Whether the customer carries any part of this area (a model-dependent cell may fall
    /// on the customer until the estate says otherwise).
    pub fn customer_involved(&self) -> bool {
        matches!(
            self.owner,
            Owner::Customer | Owner::Shared | Owner::ModelDependent
        )
    }
}

/// OWASP Top 10 for LLM Applications, 2025 edition.
pub const OWASP_LLM_2025: &[(&str, &str)] = &[
    ("LLM01:2025", "Prompt Injection"),
    ("LLM02:2025", "Sensitive Information Disclosure"),
    ("LLM03:2025", "Supply Chain"),
    ("LLM04:2025", "Data and Model Poisoning"),
    ("LLM05:2025", "Improper Output Handling"),
    ("LLM06:2025", "Excessive Agency"),
    ("LLM07:2025", "System Prompt Leakage"),
    ("LLM08:2025", "Vector and Embedding Weaknesses"),
    ("LLM09:2025", "Misinformation"),
    ("LLM10:2025", "Unbounded Consumption"),
];

/// The twelve risk categories of NIST AI 600-1 (2024), as stable slugs.
pub const NIST_AI_600_1: &[(&str, &str)] = &[
    ("cbrn", "CBRN Information or Capabilities"),
    ("confabulation", "Confabulation"),
    (
        "dangerous-content",
        "Dangerous, Violent, or Hateful Content",
    ),
    ("data-privacy", "Data Privacy"),
    ("environmental", "Environmental Impacts"),
    ("harmful-bias", "Harmful Bias and Homogenization"),
    ("human-ai-configuration", "Human-AI Configuration"),
    ("information-integrity", "Information Integrity"),
    ("information-security", "Information Security"),
    ("intellectual-property", "Intellectual Property"),
    (
        "obscene-content",
        "Obscene, Degrading, and/or Abusive Content",
    ),
    ("value-chain", "Value Chain and Component Integration"),
];

/// The domains of the CSA AI Controls Matrix v1.0 with the highest control number in each:
/// controls are numbered `<DOMAIN>-01` to `<DOMAIN>-<max>`, without gaps (243 in all). Ids
/// only: the controls' text is CSA's and is not carried.
pub const CSA_AICM_1_0: &[(&str, &str, u8)] = &[
    ("A&A", "Audit & Assurance", 6),
    ("AIS", "Application & Interface Security", 15),
    (
        "BCR",
        "Business Continuity Management and Operational Resilience",
        11,
    ),
    ("CCC", "Change Control and Configuration Management", 9),
    ("CEK", "Cryptography, Encryption & Key Management", 21),
    ("DCS", "Datacenter Security", 15),
    ("DSP", "Data Security and Privacy Lifecycle Management", 24),
    ("GRC", "Governance, Risk and Compliance", 15),
    ("HRS", "Human Resources", 15),
    ("IAM", "Identity & Access Management", 19),
    ("IPY", "Interoperability & Portability", 4),
    ("I&S", "Infrastructure Security", 9),
    ("LOG", "Logging and Monitoring", 15),
    ("MDS", "Model Security", 13),
    (
        "SEF",
        "Security Incident Management, E-Discovery, & Cloud Forensics",
        9,
    ),
    (
        "STA",
        "Supply Chain Management, Transparency, and Accountability",
        16,
    ),
    ("TVM", "Threat & Vulnerability Management", 13),
    ("UEM", "Universal Endpoint Management", 14),
];

/// Whether `id` is a control id of the CSA AI Controls Matrix v1.0 (`AIS-01`, `A&A-06`).
pub fn is_csa_aicm_id(id: &str) -> bool {
    let Some((domain, number)) = id.split_once('-') else {
        return false;
    };
    let Some(&(_, _, max)) = CSA_AICM_1_0.iter().find(|(d, _, _)| *d == domain) else {
        return false;
    };
    number.len() == 2
        && number.bytes().all(|b| b.is_ascii_digit())
        && number.parse::<u8>().is_ok_and(|n| (1..=max).contains(&n))
}

/// Every CSA AI Controls Matrix v1.0 control id, domain by domain.
pub fn csa_aicm_ids() -> impl Iterator<Item = String> {
    CSA_AICM_1_0
        .iter()
        .flat_map(|(domain, _, max)| (1..=*max).map(move |n| format!("{domain}-{n:02}")))
}

/// The control ids of ISO/IEC 42001:2023 Annex A (38 controls under A.2 to A.10). Ids only:
/// the standard's text is ISO's.
pub const ISO_42001_ANNEX_A: &[&str] = &[
    "A.2.2", "A.2.3", "A.2.4", // policies related to AI
    "A.3.2", "A.3.3", // internal organisation
    "A.4.2", "A.4.3", "A.4.4", "A.4.5", "A.4.6", // resources for AI systems
    "A.5.2", "A.5.3", "A.5.4", "A.5.5", // assessing impacts of AI systems
    "A.6.1.2", "A.6.1.3", // AI system life cycle: management guidance
    "A.6.2.2", "A.6.2.3", "A.6.2.4", "A.6.2.5", "A.6.2.6", "A.6.2.7",
    "A.6.2.8", // AI system life cycle
    "A.7.2", "A.7.3", "A.7.4", "A.7.5", "A.7.6", // data for AI systems
    "A.8.2", "A.8.3", "A.8.4", "A.8.5", // information for interested parties
    "A.9.2", "A.9.3", "A.9.4", // use of AI systems
    "A.10.2", "A.10.3", "A.10.4", // third-party and customer relationships
];

/// Whether `id` has the shape of a MITRE ATLAS technique id: `AML.T0000` or `AML.T0000.000`.
pub fn is_atlas_technique_id(id: &str) -> bool {
    let Some(rest) = id.strip_prefix("AML.T") else {
        return false;
    };
    let (main, sub) = match rest.split_once('.') {
        Some((m, s)) => (m, Some(s)),
        None => (rest, None),
    };
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    digits(main, 4) && sub.is_none_or(|s| digits(s, 3))
}

/// A catalog that passed validation: every area has exactly one cell per service model,
/// every id is unique and every reference resolves.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedCatalog {
    catalog: Catalog,
    /// Problems that do not stop the catalog from being used (e.g. an estate service model
    /// it cannot take).
    warnings: Diagnostics,
}

impl CheckedCatalog {
    /// Parse and validate a catalog file; every problem is reported at once.
    pub fn from_bytes(file: &str, bytes: &[u8]) -> Result<Self, Diagnostics> {
        let text = parse::as_text(file, bytes)?;
        let catalog: Catalog = parse::from_text(file, text)?;
        let mut diagnostics = Diagnostics::new(file);
        for d in validate(&catalog) {
            diagnostics.push(d);
        }
        if !diagnostics.is_empty() {
            diagnostics.locate_in(text);
        }
        if diagnostics.has_errors() {
            return Err(diagnostics);
        }
        Ok(Self {
            catalog,
            warnings: diagnostics,
        })
    }

    /// Warnings found when the catalog was checked.
    pub fn warnings(&self) -> &Diagnostics {
        &self.warnings
    }

    /// The catalog service model a component consumed as `service_model` (an estate service
    /// model) and of `kind` is assessed under, without an override: the id itself when this
    /// catalog has it, else the first service model, in catalog order, whose `maps_from`
    /// matches (with the matching entry).
    pub fn map_service_model(
        &self,
        service_model: &str,
        kind: ComponentKind,
    ) -> Option<(&ServiceModel, Option<&MapsFrom>)> {
        if let Some(sm) = self.service_model(service_model) {
            return Some((sm, None));
        }
        self.catalog.service_models.iter().find_map(|sm| {
            sm.maps_from
                .iter()
                .find(|m| m.matches(service_model, kind))
                .map(|m| (sm, Some(m)))
        })
    }

    pub fn service_model(&self, id: &str) -> Option<&ServiceModel> {
        self.catalog.service_models.iter().find(|s| s.id == id)
    }

    /// A catalog compiled into the binary, by id.
    pub fn builtin(id: &str) -> Option<Result<Self, Diagnostics>> {
        BUILTIN
            .iter()
            .find(|(builtin_id, _)| *builtin_id == id)
            .map(|(id, text)| Self::from_bytes(&format!("<builtin:{id}>"), text.as_bytes()))
    }

    /// The default catalog (the seed model).
    pub fn default_catalog() -> Result<Self, Diagnostics> {
        Self::builtin(DEFAULT_CATALOG).unwrap_or_else(|| {
            Err(Diagnostics::single(
                "<builtin>",
                Diagnostic::error("", "default catalog missing"),
            ))
        })
    }

    /// Ids of the catalogs compiled into the binary.
    pub fn builtin_ids() -> impl Iterator<Item = &'static str> {
        BUILTIN.iter().map(|(id, _)| *id)
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    pub fn id(&self) -> &str {
        &self.catalog.id
    }

    pub fn areas(&self) -> &[Area] {
        &self.catalog.areas
    }

    pub fn service_models(&self) -> &[ServiceModel] {
        &self.catalog.service_models
    }

    pub fn layers(&self) -> &[Layer] {
        &self.catalog.layers
    }

    pub fn area(&self, id: &str) -> Option<&Area> {
        self.catalog.areas.iter().find(|a| a.id == id)
    }

    pub fn has_service_model(&self, id: &str) -> bool {
        self.catalog.service_models.iter().any(|s| s.id == id)
    }

    pub fn has_layer(&self, id: &str) -> bool {
        self.catalog.layers.iter().any(|l| l.id == id)
    }

    pub fn layer(&self, id: &str) -> Option<&Layer> {
        self.catalog.layers.iter().find(|l| l.id == id)
    }

    /// The cell of `area` under `service_model`. Validation guarantees it exists for
    /// every area and service model of this catalog.
    /// The areas an observation of `kind` supports, in catalog order.
    pub fn areas_observed_by(&self, kind: ObservationKind) -> impl Iterator<Item = &Area> {
        self.catalog
            .areas
            .iter()
            .filter(move |a| a.observed_by.contains(&kind))
    }

    pub fn cell<'a>(&self, area: &'a Area, service_model: &str) -> Option<&'a Cell> {
        area.cells.get(service_model)
    }
}

/// Check a parsed catalog. Returns every problem found; an empty list means valid.
pub fn validate(catalog: &Catalog) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    if catalog.format != CATALOG_FORMAT {
        out.push(
            Diagnostic::error(
                "format",
                format!("unsupported catalog format `{}`", catalog.format),
            )
            .with_help(format!("this build reads format {CATALOG_FORMAT}")),
        );
    }
    check_id(&mut out, "id", &catalog.id);
    if catalog.service_models.is_empty() {
        out.push(Diagnostic::error(
            "service_models",
            "a catalog needs at least one service model",
        ));
    }
    unique_ids(
        &mut out,
        "roles",
        catalog.roles.iter().map(|r| r.id.as_str()),
    );
    unique_ids(
        &mut out,
        "service_models",
        catalog.service_models.iter().map(|s| s.id.as_str()),
    );
    unique_ids(
        &mut out,
        "layers",
        catalog.layers.iter().map(|l| l.id.as_str()),
    );
    unique_ids(
        &mut out,
        "areas",
        catalog.areas.iter().map(|a| a.id.as_str()),
    );

    let models: Vec<&str> = catalog
        .service_models
        .iter()
        .map(|s| s.id.as_str())
        .collect();
    let layers: Vec<&str> = catalog.layers.iter().map(|l| l.id.as_str()).collect();
    for (i, layer) in catalog.layers.iter().enumerate() {
        if layer.supplied_by.is_empty() {
            out.push(
                Diagnostic::error(
                    format!("layers[{i}].supplied_by"),
                    format!("layer `{}` names no component kind that supplies it", layer.id),
                )
                .with_help("list component kinds, most specific first, e.g. `[model, platform, application]`"),
            );
        }
    }
    for (i, area) in catalog.areas.iter().enumerate() {
        let at = format!("areas[{i}]");
        if !layers.contains(&area.layer.as_str()) {
            out.push(
                Diagnostic::error(
                    format!("{at}.layer"),
                    format!("area `{}` names unknown layer `{}`", area.id, area.layer),
                )
                .with_help(did_you_mean(&area.layer, layers.iter().copied())),
            );
        }
        for model in &models {
            if !area.cells.contains_key(*model) {
                out.push(
                    Diagnostic::error(
                        format!("{at}.cells"),
                        format!("area `{}` has no cell for service model `{model}`", area.id),
                    )
                    .with_help("every area needs one cell per service model; use owner `n/a` where it does not apply"),
                );
            }
        }
        for (model, cell) in &area.cells {
            let cell_at = format!("{at}.cells.{model}");
            if !models.contains(&model.as_str()) {
                out.push(
                    Diagnostic::error(
                        cell_at.clone(),
                        format!(
                            "area `{}` has a cell for unknown service model `{model}`",
                            area.id
                        ),
                    )
                    .with_help(did_you_mean(model, models.iter().copied())),
                );
            }
            match (cell.owner, cell.lead) {
                (Owner::ModelDependent, Some(_)) => out.push(
                    Diagnostic::error(
                        format!("{cell_at}.lead"),
                        "a model-dependent cell has no lead",
                    )
                    .with_help(
                        "the estate gives the owner per component (`owners`); remove `lead`",
                    ),
                ),
                (Owner::Shared, None) => out.push(
                    Diagnostic::error(
                        format!("{cell_at}.owner"),
                        "a shared cell must say which side leads",
                    )
                    .with_help("add `lead: provider` or `lead: customer`"),
                ),
                (Owner::Provider | Owner::Customer | Owner::NotApplicable, Some(_)) => out.push(
                    Diagnostic::error(format!("{cell_at}.lead"), "only shared cells have a lead")
                        .with_help("remove `lead`, or make the owner `shared`"),
                ),
                _ => {}
            }
            if cell.note.trim().is_empty() {
                out.push(Diagnostic::error(
                    format!("{cell_at}.note"),
                    "a cell needs a note",
                ));
            }
            if cell.source.trim().is_empty() {
                out.push(Diagnostic::error(
                    format!("{cell_at}.source"),
                    "a cell needs a citation of its source passage",
                ));
            }
        }
        check_mappings(&mut out, &at, &area.mappings);
    }
    check_maps_from(&mut out, catalog);
    out
}

/// `maps_from` names estate service models, and every estate service model must map to some
/// service model of the catalog for every component kind (a warning: such components cannot
/// be assessed under this catalog without a per-component override).
fn check_maps_from(out: &mut Vec<Diagnostic>, catalog: &Catalog) {
    for (i, sm) in catalog.service_models.iter().enumerate() {
        for (j, m) in sm.maps_from.iter().enumerate() {
            let at = format!("service_models[{i}].maps_from[{j}]");
            if !ESTATE_SERVICE_MODELS.contains(&m.service_model.as_str()) {
                out.push(
                    Diagnostic::error(
                        format!("{at}.service_model"),
                        format!("`{}` is not an estate service model", m.service_model),
                    )
                    .with_help(did_you_mean(
                        &m.service_model,
                        ESTATE_SERVICE_MODELS.iter().copied(),
                    )),
                );
            }
            if m.note.trim().is_empty() {
                out.push(Diagnostic::error(
                    format!("{at}.note"),
                    "a mapping needs a note saying why (a citation, or demarc's reading)",
                ));
            }
        }
    }
    for estate_sm in ESTATE_SERVICE_MODELS {
        if catalog.service_models.iter().any(|s| s.id == estate_sm) {
            continue;
        }
        let missing: Vec<&str> = ComponentKind::ALL
            .iter()
            .filter(|k| {
                !catalog
                    .service_models
                    .iter()
                    .any(|s| s.maps_from.iter().any(|m| m.matches(estate_sm, **k)))
            })
            .map(|k| k.as_str())
            .collect();
        if !missing.is_empty() {
            out.push(
                Diagnostic::warning(
                    "service_models",
                    if missing.len() == ComponentKind::ALL.len() {
                        format!("no service model takes estate service model `{estate_sm}`")
                    } else {
                        format!(
                            "no service model takes estate service model `{estate_sm}` for component kind{} {}",
                            if missing.len() == 1 { "" } else { "s" },
                            missing.join(", ")
                        )
                    },
                )
                .with_help(format!(
                    "add a `maps_from` entry for `{estate_sm}` (without `kinds`) to one service model"
                )),
            );
        }
    }
}

fn check_mappings(out: &mut Vec<Diagnostic>, at: &str, m: &Mappings) {
    let owasp = OWASP_LLM_2025.iter().map(|(id, _)| *id);
    for (j, id) in m.owasp_llm_2025.iter().enumerate() {
        if !OWASP_LLM_2025.iter().any(|(known, _)| known == id) {
            out.push(
                Diagnostic::error(
                    format!("{at}.mappings.owasp_llm_2025[{j}]"),
                    format!("unknown OWASP Top 10 for LLM Applications 2025 id `{id}`"),
                )
                .with_help(did_you_mean(id, owasp.clone())),
            );
        }
    }
    let nist = NIST_AI_600_1.iter().map(|(id, _)| *id);
    for (j, id) in m.nist_ai_600_1.iter().enumerate() {
        if !NIST_AI_600_1.iter().any(|(known, _)| known == id) {
            out.push(
                Diagnostic::error(
                    format!("{at}.mappings.nist_ai_600_1[{j}]"),
                    format!("unknown NIST AI 600-1 risk category `{id}`"),
                )
                .with_help(did_you_mean(id, nist.clone())),
            );
        }
    }
    for (j, id) in m.mitre_atlas.iter().enumerate() {
        if !is_atlas_technique_id(id) {
            out.push(
                Diagnostic::error(
                    format!("{at}.mappings.mitre_atlas[{j}]"),
                    format!("`{id}` is not a MITRE ATLAS technique id"),
                )
                .with_help("technique ids look like `AML.T0051` or `AML.T0051.000`"),
            );
        }
    }
    for (j, id) in m.csa_aicm.iter().enumerate() {
        if !is_csa_aicm_id(id) {
            let known: Vec<String> = csa_aicm_ids().collect();
            let help = match suggest(id, known.iter().map(String::as_str)) {
                Some(s) => format!("did you mean `{s}`?"),
                None => "AICM v1.0 ids are a domain and a two-digit number, e.g. `AIS-01`, `A&A-06`, `MDS-13`".to_string(),
            };
            out.push(
                Diagnostic::error(
                    format!("{at}.mappings.csa_aicm[{j}]"),
                    format!("unknown CSA AI Controls Matrix v1.0 control id `{id}`"),
                )
                .with_help(help),
            );
        }
    }
    for (j, id) in m.iso_42001.iter().enumerate() {
        if !ISO_42001_ANNEX_A.contains(&id.as_str()) {
            let help = match suggest(id, ISO_42001_ANNEX_A.iter().copied()) {
                Some(s) => format!("did you mean `{s}`?"),
                None => {
                    "Annex A control ids run from `A.2.2` to `A.10.4`, e.g. `A.6.2.6`".to_string()
                }
            };
            out.push(
                Diagnostic::error(
                    format!("{at}.mappings.iso_42001[{j}]"),
                    format!("unknown ISO/IEC 42001:2023 Annex A control id `{id}`"),
                )
                .with_help(help),
            );
        }
    }
}

/// Ids are lowercase ASCII letters, digits and dashes: stable in URLs, files and CLIs.
pub(crate) fn check_id(out: &mut Vec<Diagnostic>, path: &str, id: &str) {
    let ok = !id.is_empty()
        && id.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_' || b == b'.'
        })
        && id.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric());
    if !ok {
        out.push(
            Diagnostic::error(path, format!("`{id}` is not a valid id"))
                .with_help("ids use lowercase letters, digits, `-`, `_` and `.`, and start with a letter or digit"),
        );
    }
}

/// Report each id that appears twice in a list, at its second occurrence.
pub(crate) fn unique_ids<'a>(
    out: &mut Vec<Diagnostic>,
    list: &str,
    ids: impl Iterator<Item = &'a str>,
) {
    let mut seen = HashSet::new();
    for (i, id) in ids.enumerate() {
        check_id(out, &format!("{list}[{i}].id"), id);
        if !seen.insert(id) {
            out.push(Diagnostic::error(
                format!("{list}[{i}].id"),
                format!("duplicate id `{id}` in `{list}`"),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csa_aicm_ids_follow_the_v1_0_ranges() {
        assert_eq!(csa_aicm_ids().count(), 243);
        assert!(is_csa_aicm_id("AIS-01"));
        assert!(is_csa_aicm_id("A&A-06"));
        assert!(is_csa_aicm_id("I&S-09"));
        assert!(is_csa_aicm_id("MDS-13"));
        assert!(is_csa_aicm_id("IAM-19"));
        assert!(!is_csa_aicm_id("A&A-07"));
        assert!(!is_csa_aicm_id("DCS-16"));
        assert!(!is_csa_aicm_id("AIS-00"));
        assert!(!is_csa_aicm_id("AIS-1"));
        assert!(!is_csa_aicm_id("AIS-001"));
        assert!(!is_csa_aicm_id("ais-01"));
        assert!(!is_csa_aicm_id("IVS-01"));
    }

    #[test]
    fn iso_42001_annex_a_has_38_controls() {
        assert_eq!(ISO_42001_ANNEX_A.len(), 38);
        let unique: HashSet<_> = ISO_42001_ANNEX_A.iter().collect();
        assert_eq!(unique.len(), 38);
        for clause in 2..=10 {
            assert!(
                ISO_42001_ANNEX_A
                    .iter()
                    .any(|id| id.starts_with(&format!("A.{clause}.")))
            );
        }
    }

    #[test]
    fn atlas_ids() {
        assert!(is_atlas_technique_id("AML.T0051"));
        assert!(is_atlas_technique_id("AML.T0051.001"));
        assert!(!is_atlas_technique_id("AML.T51"));
        assert!(!is_atlas_technique_id("T0051"));
    }
}
