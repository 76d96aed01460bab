//! An estate as OSCAL: a component definition (one component per provider offering), a
//! system security plan (one implemented requirement per area, by component) and
//! assessment results.
//!
//! The three documents share UUIDs: a provider offering or an application's component has
//! the same UUID in each (version 5 UUIDs of the organisation and the ids), so the
//! assessment results' subjects and the SSP's components join up.
//!
//! OSCAL 1.2.1 has `export` (`provided`, `responsibilities`) only in an SSP's by-component
//! statements; a component definition states each area's split as the `responsibility`
//! property of its implemented requirement. In the SSP the offering's by-component exports
//! what the provider provides and what it leaves to the customer, and each application
//! component's by-component says what it `inherited` (pointing at the `provided` UUID) and
//! what it `satisfied` (pointing at the responsibility, with the owning team as responsible
//! role and links to the evidence).

use std::collections::BTreeMap;

use demarc_model::assess::Assessment;
use demarc_model::catalog::{Owner, Side};
use demarc_model::estate::{AppStatus, Application, Component};
use demarc_model::resolve::{
    Duty, Party as DutyParty, catalog_service_model, resolve_application, resolve_area_all,
};
use demarc_model::{CheckedCatalog, CheckedEstate, Date};
use serde::Serialize;

use super::model::{
    BackMatter, Link, Metadata, Party, Prop, Resource, ResponsibleRole, Role, href, line, midnight,
    token,
};
use crate::ids::Scope;

/// The file name the catalog is written under beside the estate's documents; the component
/// definition's `source` and the SSP's `import-profile` point at it.
pub const CATALOG_FILE: &str = "catalog.json";

/// What every export of one estate shares.
pub struct EstateExport<'a> {
    pub estate: &'a CheckedEstate,
    pub catalog: &'a CheckedCatalog,
    /// The documents' `last-modified` (midnight UTC): given, so that exports are reproducible.
    pub date: Date,
    scope: Scope,
}

impl<'a> EstateExport<'a> {
    pub fn new(estate: &'a CheckedEstate, catalog: &'a CheckedCatalog, date: Date) -> Self {
        Self {
            estate,
            catalog,
            date,
            scope: Scope::new("estate", &estate.estate().organisation.name),
        }
    }

    fn org(&self) -> &str {
        &self.estate.estate().organisation.name
    }

    /// The UUID of an application's component (the same in every document).
    pub fn component_uuid(&self, app: &str, component: &str) -> String {
        self.scope.uuid(&["component", app, component])
    }

    fn offering_uuid(&self, key: &OfferingKey) -> String {
        self.scope
            .uuid(&["offering", &key.provider, &key.offering, &key.service_model])
    }

    /// Every provider offering the estate uses, with the catalog service model it is used
    /// under, in a stable order.
    fn offerings(&self) -> BTreeMap<OfferingKey, OfferingInfo> {
        let mut out = BTreeMap::new();
        for app in self.estate.applications() {
            for c in &app.components {
                if let Some(key) = OfferingKey::of(c, self.catalog) {
                    out.entry(key)
                        .or_insert_with(|| self.offering_info(c, &c.service_model));
                }
            }
        }
        // Offerings listed with a service model the catalog has, though no component uses them.
        for p in &self.estate.estate().providers {
            for o in &p.offerings {
                if let Some(sm) = &o.service_model
                    && self.catalog.has_service_model(sm)
                {
                    let key = OfferingKey {
                        provider: p.id.clone(),
                        offering: o.id.clone(),
                        service_model: sm.clone(),
                    };
                    out.entry(key).or_insert_with(|| OfferingInfo {
                        title: format!("{}: {}", p.name, o.name),
                        description: o.description.clone().unwrap_or_else(|| {
                            format!("{} from {}, consumed as {sm}.", o.name, p.name)
                        }),
                        estate_service_model: sm.clone(),
                    });
                }
            }
        }
        out
    }

    fn offering_info(&self, c: &Component, estate_sm: &str) -> OfferingInfo {
        let provider = self.estate.provider(&c.provider);
        let pname = provider.map_or(c.provider.as_str(), |p| p.name.as_str());
        let offering = c
            .offering
            .as_ref()
            .and_then(|o| provider.and_then(|p| p.offerings.iter().find(|x| &x.id == o)));
        match offering {
            Some(o) => OfferingInfo {
                title: format!("{pname}: {}", o.name),
                description: o.description.clone().unwrap_or_else(|| {
                    format!("{} from {pname}, consumed as {estate_sm}.", o.name)
                }),
                estate_service_model: estate_sm.to_string(),
            },
            None => OfferingInfo {
                title: format!("{pname} ({estate_sm})"),
                description: format!(
                    "What {pname} supplies as {estate_sm} where the estate names no offering."
                ),
                estate_service_model: estate_sm.to_string(),
            },
        }
    }

    fn metadata(&self, title: String) -> Metadata {
        let mut m = Metadata::new(title, midnight(self.date), self.date.to_string());
        m.props.push(Prop::demarc("catalog-id", self.catalog.id()));
        m.props.push(Prop::demarc(
            "catalog-version",
            &self.catalog.catalog().version,
        ));
        m
    }

    fn side_roles() -> Vec<Role> {
        vec![
            Role {
                id: "provider".into(),
                title: "AI service provider".into(),
            },
            Role {
                id: "customer".into(),
                title: "Customer organisation".into(),
            },
        ]
    }

    /// The component definition: one component per provider offering, one implemented
    /// requirement per area the catalog does not mark `n/a` under the offering's service model.
    pub fn component_definition(&self) -> ComponentDefinitionDocument {
        let mut metadata = self.metadata(format!(
            "{}: provider offerings under {}",
            self.org(),
            self.catalog.id()
        ));
        metadata.roles = Self::side_roles();
        let components = self
            .offerings()
            .into_iter()
            .map(|(key, info)| {
                let uuid = self.offering_uuid(&key);
                let requirements = self
                    .catalog
                    .areas()
                    .iter()
                    .filter_map(|area| {
                        let cell = self.catalog.cell(area, &key.service_model)?;
                        if cell.owner == Owner::NotApplicable {
                            return None;
                        }
                        let mut props = vec![Prop::demarc("responsibility", cell.owner.as_str())];
                        if let Some(lead) = cell.lead {
                            props.push(Prop::demarc("lead", lead.as_str()));
                        }
                        if !cell.basis.is_stated() {
                            props.push(Prop::demarc("basis", cell.basis.as_str()));
                        }
                        let roles = match cell.owner {
                            Owner::Provider => vec!["provider"],
                            Owner::Customer => vec!["customer"],
                            Owner::Shared => match cell.lead {
                                Some(Side::Customer) => vec!["customer", "provider"],
                                _ => vec!["provider", "customer"],
                            },
                            _ => Vec::new(),
                        };
                        Some(ComponentRequirement {
                            uuid: self.scope.uuid(&[
                                "cd-requirement",
                                &key.provider,
                                &key.offering,
                                &key.service_model,
                                &area.id,
                            ]),
                            control_id: token(&area.id),
                            description: split_sentence(cell.owner, cell.lead, &cell.note),
                            props,
                            responsible_roles: roles
                                .into_iter()
                                .map(|r| ResponsibleRole {
                                    role_id: r.into(),
                                    props: Vec::new(),
                                    party_uuids: Vec::new(),
                                })
                                .collect(),
                        })
                    })
                    .collect();
                DefinedComponent {
                    uuid,
                    kind: "service",
                    title: line(&info.title),
                    description: info.description,
                    props: key.props(&info.estate_service_model),
                    control_implementations: vec![ComponentControlImplementation {
                        uuid: self.scope.uuid(&[
                            "cd-implementation",
                            &key.provider,
                            &key.offering,
                            &key.service_model,
                        ]),
                        source: CATALOG_FILE.into(),
                        description: format!(
                            "Who does what for each area of {} under its `{}` service model.",
                            self.catalog.catalog().title,
                            key.service_model
                        ),
                        props: vec![Prop::demarc("service-model", &key.service_model)],
                        implemented_requirements: requirements,
                    }],
                }
            })
            .collect();
        ComponentDefinitionDocument {
            component_definition: ComponentDefinition {
                uuid: self
                    .scope
                    .uuid(&["component-definition", self.catalog.id()]),
                metadata,
                components,
            },
        }
    }

    /// The system security plan: the organisation as one system, a component per provider
    /// offering and per application component, and per area the provider's export and each
    /// application component's inherited and satisfied parts.
    pub fn ssp(&self) -> SspDocument<'_> {
        let estate = self.estate.estate();
        let mut metadata = self.metadata(format!(
            "{}: GenAI system security plan ({})",
            self.org(),
            self.catalog.id()
        ));
        metadata.roles = Self::side_roles();
        metadata.roles.extend(estate.teams.iter().map(|t| Role {
            id: token(&t.id),
            title: line(&t.name),
        }));
        metadata.parties = estate
            .teams
            .iter()
            .map(|t| Party {
                uuid: self.scope.uuid(&["team", &t.id]),
                kind: "organization",
                name: line(&t.name),
                props: vec![Prop::demarc("team", &t.id)],
                remarks: Some(format!("Contact: {}", t.contact)),
            })
            .chain(estate.providers.iter().map(|p| Party {
                uuid: self.scope.uuid(&["provider", &p.id]),
                kind: "organization",
                name: line(&p.name),
                props: vec![Prop::demarc("provider", &p.id)],
                remarks: None,
            }))
            .collect();

        let offerings = self.offerings();
        let mut components = vec![SystemComponent {
            uuid: self.scope.uuid(&["this-system"]),
            kind: "this-system",
            title: line(self.org()),
            description: estate.organisation.description.clone().unwrap_or_else(|| {
                format!(
                    "The GenAI applications of {} as its estate file lists them.",
                    self.org()
                )
            }),
            props: Vec::new(),
            status: Status {
                state: "operational",
            },
            responsible_roles: Vec::new(),
        }];
        for (key, info) in &offerings {
            components.push(SystemComponent {
                uuid: self.offering_uuid(key),
                kind: "service",
                title: line(&info.title),
                description: info.description.clone(),
                props: key.props(&info.estate_service_model),
                status: Status {
                    state: "operational",
                },
                responsible_roles: vec![ResponsibleRole {
                    role_id: "provider".into(),
                    props: Vec::new(),
                    party_uuids: vec![self.scope.uuid(&["provider", &key.provider])],
                }],
            });
        }
        // Per area: the offerings' exports (deduplicated), found in a first pass; the
        // applications' statements are made while the document is written
        // ([`ByComponents`]), so that a large estate's SSP is never held in memory whole.
        let areas = self.catalog.areas();
        let mut by_area: Vec<AreaExports> = areas.iter().map(|_| AreaExports::default()).collect();
        for app in self.estate.applications() {
            for c in &app.components {
                components.push(self.app_component(app, c));
            }
            for duty in resolve_application(app, self.catalog) {
                let Some(i) = areas.iter().position(|a| a.id == duty.area.id) else {
                    continue;
                };
                self.note_export(&mut by_area[i], &duty);
            }
        }
        let implemented_requirements = areas
            .iter()
            .zip(by_area)
            .filter(|(_, s)| s.has_duties)
            .map(|(area, exports)| SspRequirement {
                uuid: self.scope.uuid(&["ssp-requirement", &area.id]),
                control_id: token(&area.id),
                props: vec![Prop::demarc("area-id", &area.id)],
                by_components: ByComponents {
                    export: self,
                    area,
                    exports,
                },
            })
            .collect();
        SspDocument {
            system_security_plan: Ssp {
                uuid: self.scope.uuid(&["ssp", self.catalog.id()]),
                metadata,
                import_profile: Href {
                    href: CATALOG_FILE.into(),
                },
                system_characteristics: SystemCharacteristics {
                    system_ids: vec![SystemId {
                        identifier_type: "https://ietf.org/rfc/rfc4122",
                        id: self.scope.uuid(&["system"]),
                    }],
                    system_name: line(self.org()),
                    description: format!(
                        "The GenAI applications of {} ({}), each duty resolved under {} {}.",
                        self.org(),
                        count(self.estate.applications().len(), "application"),
                        self.catalog.catalog().title,
                        self.catalog.catalog().version
                    ),
                    system_information: SystemInformation {
                        information_types: vec![InformationType {
                            uuid: self.scope.uuid(&["information-type"]),
                            title: "Prompts, context and model output".into(),
                            description: "What users send to GenAI applications, the context \
                                          they add (grounding documents, tool results) and what \
                                          the models return."
                                .into(),
                        }],
                    },
                    status: Status {
                        state: "operational",
                    },
                    authorization_boundary: Description {
                        description: "Every application of the estate file and the provider \
                                      offerings its components are supplied by."
                            .into(),
                    },
                },
                system_implementation: SystemImplementation {
                    users: estate
                        .teams
                        .iter()
                        .map(|t| User {
                            uuid: self.scope.uuid(&["user", &t.id]),
                            title: line(&t.name),
                            role_ids: vec![token(&t.id)],
                        })
                        .collect(),
                    components,
                },
                control_implementation: SspControlImplementation {
                    description: format!(
                        "Each area of {} by component: what the provider offering provides \
                         (export), what each application inherits, and what the organisation \
                         satisfies itself, with the owning team and the evidence.",
                        self.catalog.id()
                    ),
                    implemented_requirements,
                },
            },
        }
    }

    fn app_component(&self, app: &Application, c: &Component) -> SystemComponent {
        let mut props = vec![
            Prop::demarc("application", &app.id),
            Prop::demarc("application-name", &app.name),
            Prop::demarc("application-status", app.status.as_str()),
            Prop::demarc("data-classification", app.data_classification.as_str()),
            Prop::demarc("component", &c.id),
            Prop::demarc("kind", c.kind.as_str()),
            Prop::demarc("provider", &c.provider),
            Prop::demarc("service-model", &c.service_model),
        ];
        if let Some(o) = &c.offering {
            props.push(Prop::demarc("offering", o));
        }
        if let Some((sm, _, _)) = catalog_service_model(c, self.catalog) {
            props.push(Prop::demarc("catalog-service-model", sm));
        }
        SystemComponent {
            uuid: self.component_uuid(&app.id, &c.id),
            kind: if c.kind == demarc_model::catalog::ComponentKind::Model {
                "service"
            } else {
                "software"
            },
            title: line(&format!("{}: {}", app.name, c.id)),
            description: c
                .description
                .clone()
                .unwrap_or_else(|| format!("The {} component of {}.", c.kind.as_str(), app.name)),
            props,
            status: Status {
                state: match app.status {
                    AppStatus::Sanctioned | AppStatus::Tolerated => "operational",
                    _ => "other",
                },
            },
            responsible_roles: vec![ResponsibleRole {
                role_id: token(&app.owner),
                props: Vec::new(),
                party_uuids: vec![self.scope.uuid(&["team", &app.owner])],
            }],
        }
    }

    /// The offering's export for a duty's area, owner and lead: its key, and whether the
    /// provider and the customer have a part.
    fn export_key(&self, duty: &Duty<'_>) -> Option<(OfferingKey, String, bool, bool)> {
        let provider_part = matches!(duty.owner, Owner::Provider | Owner::Shared);
        let customer_part = matches!(duty.owner, Owner::Customer | Owner::Shared);
        if !(provider_part || customer_part) {
            return None;
        }
        let key = OfferingKey::of(duty.component, self.catalog)?;
        let ids = [
            duty.area.id.as_str(),
            &key.provider,
            &key.offering,
            &key.service_model,
            duty.owner.as_str(),
            duty.lead.map_or("", |l| l.as_str()),
        ];
        let joined = ids.join("\u{1f}");
        Some((key, joined, provider_part, customer_part))
    }

    /// Record the offering's export a duty points at (once per offering, area and owner).
    fn note_export(&self, s: &mut AreaExports, duty: &Duty<'_>) {
        s.has_duties = true;
        let Some((key, export_key, provider_part, customer_part)) = self.export_key(duty) else {
            return;
        };
        if s.exports.contains_key(&export_key) {
            return;
        }
        let ids: Vec<&str> = export_key.split('\u{1f}').collect();
        let p_uuid = self.scope.uuid(&[&["provided"], &ids[..]].concat());
        let r_uuid = self.scope.uuid(&[&["responsibility"], &ids[..]].concat());
        let pname = self
            .estate
            .provider(&key.provider)
            .map_or(key.provider.as_str(), |p| p.name.as_str());
        let mut props = vec![
            Prop::demarc("responsibility", duty.owner.as_str()),
            Prop::demarc("service-model", &key.service_model),
        ];
        if let Some(l) = duty.lead {
            props.push(Prop::demarc("lead", l.as_str()));
        }
        let export = Export {
            provided: if provider_part {
                vec![Provided {
                    uuid: p_uuid.clone(),
                    description: format!(
                        "{pname} provides {} under {}: {}",
                        duty.area.title, key.service_model, duty.cell.note
                    ),
                    responsible_roles: vec![role("provider")],
                }]
            } else {
                Vec::new()
            },
            responsibilities: if customer_part {
                vec![Responsibility {
                    uuid: r_uuid.clone(),
                    provided_uuid: provider_part.then(|| p_uuid.clone()),
                    description: format!(
                        "{pname} leaves {} under {} to the customer: {}",
                        duty.area.title, key.service_model, duty.cell.note
                    ),
                    responsible_roles: vec![role("customer")],
                }]
            } else {
                Vec::new()
            },
        };
        let statement = ByComponent {
            component_uuid: self.offering_uuid(&key),
            uuid: self.scope.uuid(&[&["export"], &ids[..]].concat()),
            description: split_sentence(duty.owner, duty.lead, &duty.cell.note),
            props,
            links: Vec::new(),
            implementation_status: None,
            export: Some(export),
            inherited: Vec::new(),
            satisfied: Vec::new(),
            responsible_roles: Vec::new(),
            remarks: None,
        };
        s.exports.insert(export_key, (statement, p_uuid, r_uuid));
    }

    /// An application component's statement about a duty: inherited from the offering's
    /// `provided`, satisfied against its responsibility.
    fn duty_statement(
        &self,
        exports: &AreaExports,
        app: &Application,
        duty: &Duty<'_>,
    ) -> ByComponent {
        let c = duty.component;
        let area = &duty.area.id;
        let customer_part = matches!(duty.owner, Owner::Customer | Owner::Shared);
        let mut provided_uuid = None;
        let mut responsibility_uuid = None;
        if let Some((_, export_key, provider_part, customer_part)) = self.export_key(duty)
            && let Some((_, p, r)) = exports.exports.get(&export_key)
        {
            provided_uuid = provider_part.then(|| p.clone());
            responsibility_uuid = customer_part.then(|| r.clone());
        }
        let mut props = vec![
            Prop::demarc("responsibility", duty.owner.as_str()),
            Prop::demarc("accountable", &party_label(&duty.accountable)),
        ];
        if let Some(l) = duty.lead {
            props.push(Prop::demarc("lead", l.as_str()));
        }
        if let Some((team, _)) = duty.team {
            props.push(Prop::demarc("team", team));
        }
        let control = app.controls.get(area);
        let links: Vec<Link> = app
            .evidence
            .iter()
            .filter(|e| &e.area == area && e.applies_to(&c.id))
            .filter_map(|e| {
                let target = e.link.as_deref().or(e.file.as_deref())?;
                Some(Link {
                    href: href(target),
                    rel: Some("evidence"),
                    text: Some(line(&e.description)),
                })
            })
            .collect();
        let duty_id = ["duty", app.id.as_str(), c.id.as_str(), area.as_str()];
        ByComponent {
            component_uuid: self.component_uuid(&app.id, &c.id),
            uuid: self.scope.uuid(&duty_id),
            description: sentence(&duty.accountable_reason()),
            props,
            links: Vec::new(),
            implementation_status: if customer_part {
                Some(Status {
                    state: control.map_or("planned", |c| c.status.as_str()),
                })
            } else {
                None
            },
            export: None,
            inherited: provided_uuid
                .map(|p| Inherited {
                    uuid: self.scope.uuid(&[&duty_id[..], &["inherited"]].concat()),
                    provided_uuid: p,
                    description: format!("Inherited from the provider ({}).", c.provider),
                    responsible_roles: vec![role("provider")],
                })
                .into_iter()
                .collect(),
            satisfied: if customer_part {
                vec![Satisfied {
                    uuid: self.scope.uuid(&[&duty_id[..], &["satisfied"]].concat()),
                    responsibility_uuid,
                    description: control
                        .and_then(|c| c.statement.clone().or_else(|| c.justification.clone()))
                        .unwrap_or_else(|| "No control statement in the estate.".to_string()),
                    links,
                    responsible_roles: duty
                        .team
                        .map(|(t, _)| ResponsibleRole {
                            role_id: token(t),
                            props: Vec::new(),
                            party_uuids: vec![self.scope.uuid(&["team", t])],
                        })
                        .into_iter()
                        .collect(),
                }]
            } else {
                Vec::new()
            },
            responsible_roles: Vec::new(),
            remarks: (duty.owner == Owner::ModelDependent).then(|| {
                "The catalog leaves this area to the model or the contract and the estate does \
                 not say who owns it (`owners`): unresolved."
                    .to_string()
            }),
        }
    }

    /// Assessment results of `report` (an assessment of this estate under this catalog): an
    /// observation per piece of evidence, declared and observed, and a finding per duty with
    /// gaps. `run` is the recorded run the results come from, if any (id, time).
    pub fn assessment_results(
        &self,
        report: &Assessment,
        run: Option<(i64, String)>,
    ) -> AssessmentResultsDocument {
        let date = report.date;
        let plan_uuid = self.scope.uuid(&["assessment-plan"]);
        let mut metadata = self.metadata(format!(
            "{}: GenAI duties assessed on {date} ({})",
            self.org(),
            self.catalog.id()
        ));
        metadata.last_modified = midnight(date);
        let mut observations = Vec::new();
        let mut findings = Vec::new();
        let mut controls = Vec::new();
        for app in &report.applications {
            for d in &app.duties {
                if !controls.contains(&d.area) {
                    controls.push(d.area.clone());
                }
                let subject = Subject {
                    subject_uuid: self.component_uuid(&app.id, &d.component),
                    kind: "component",
                };
                let base = [
                    "obs",
                    app.id.as_str(),
                    d.component.as_str(),
                    d.area.as_str(),
                ];
                let mut related = Vec::new();
                for (i, e) in d.declared_evidence.iter().enumerate() {
                    let uuid = self
                        .scope
                        .uuid(&[&base[..], &["declared", &i.to_string()]].concat());
                    related.push(RelatedObservation {
                        observation_uuid: uuid.clone(),
                    });
                    let target = e.link.as_deref().or(e.file.as_deref());
                    observations.push(Observation {
                        uuid,
                        title: line(&e.description),
                        description: format!(
                            "Declared evidence for {} of {}: {}; reviewed by {} on {}; {}{}.",
                            d.title,
                            app.name,
                            e.description,
                            e.reviewer,
                            e.reviewed,
                            e.status.as_str(),
                            e.problem
                                .as_deref()
                                .map(|p| format!(" ({p})"))
                                .unwrap_or_default()
                        ),
                        props: vec![
                            Prop::demarc("evidence-kind", "declared"),
                            Prop::demarc("evidence-status", e.status.as_str()),
                            Prop::demarc("area", &d.area),
                        ],
                        methods: vec!["EXAMINE"],
                        subjects: vec![subject.clone()],
                        relevant_evidence: target
                            .map(|t| RelevantEvidence {
                                href: Some(href(t)),
                                description: line(&e.description),
                            })
                            .into_iter()
                            .collect(),
                        collected: midnight(e.reviewed),
                        expires: e.valid_until.map(midnight),
                    });
                }
                for (i, o) in d.observed_evidence.iter().enumerate() {
                    let uuid = self
                        .scope
                        .uuid(&[&base[..], &["observed", &i.to_string()]].concat());
                    related.push(RelatedObservation {
                        observation_uuid: uuid.clone(),
                    });
                    observations.push(Observation {
                        uuid,
                        title: line(&format!("Observed by demarc: {}", o.kind.as_str())),
                        description: format!("{} (source: {})", o.summary, o.source),
                        props: vec![
                            Prop::demarc("evidence-kind", "observed"),
                            Prop::demarc("evidence-status", o.status.as_str()),
                            Prop::demarc("observation-kind", o.kind.as_str()),
                            Prop::demarc("area", &d.area),
                        ],
                        methods: vec!["TEST"],
                        subjects: vec![subject.clone()],
                        relevant_evidence: Vec::new(),
                        collected: midnight(o.observed_at),
                        expires: Some(midnight(o.expires)),
                    });
                }
                if d.gaps.is_empty() {
                    continue;
                }
                let mut props: Vec<Prop> = d
                    .gaps
                    .iter()
                    .map(|g| Prop::demarc("gap", g.as_str()))
                    .collect();
                props.push(Prop::demarc("application", &app.id));
                props.push(Prop::demarc("component", &d.component));
                if let Some(t) = &d.owner_team {
                    props.push(Prop::demarc("team", t));
                }
                if d.risk_accepted {
                    props.push(Prop::demarc("risk-accepted", "true"));
                }
                findings.push(Finding {
                    uuid: self
                        .scope
                        .uuid(&["finding", &app.id, &d.component, &d.area]),
                    title: line(&format!("{}: {}: {}", app.name, d.title, d.gap_list(", "))),
                    description: format!(
                        "{} Gaps: {}. Control: {}; evidence: {}.",
                        sentence(&d.accountable_reason),
                        d.gap_list(", "),
                        d.control.as_str(),
                        d.evidence.as_str()
                    ),
                    props,
                    target: FindingTarget {
                        kind: "statement-id",
                        target_id: format!("{}_smt", token(&d.area)),
                        status: Status {
                            state: "not-satisfied",
                        },
                        implementation_status: Some(Status {
                            state: d.control.as_str(),
                        }),
                    },
                    related_observations: related,
                });
            }
        }
        let mut result_props = vec![Prop::demarc(
            "coverage",
            &report.summary.coverage.percent_label(),
        )];
        let start = match &run {
            Some((id, at)) => {
                result_props.push(Prop::demarc("recorded-run", &id.to_string()));
                at.clone()
            }
            None => midnight(date),
        };
        AssessmentResultsDocument {
            assessment_results: AssessmentResults {
                uuid: self.scope.uuid(&[
                    "assessment-results",
                    self.catalog.id(),
                    &date.to_string(),
                ]),
                metadata,
                import_ap: Href {
                    href: format!("#{plan_uuid}"),
                },
                results: vec![AssessmentResult {
                    uuid: self
                        .scope
                        .uuid(&["result", self.catalog.id(), &date.to_string()]),
                    title: format!("demarc assess, {date}"),
                    description: format!(
                        "Every customer duty of {} judged on {date}: owner, control and evidence \
                         (declared in the estate and observed by demarc). {} of {} duties \
                         covered, {}.",
                        self.org(),
                        report.summary.coverage.covered,
                        report.summary.coverage.total,
                        count(report.summary.gaps, "gap")
                    ),
                    start,
                    props: result_props,
                    reviewed_controls: ReviewedControls {
                        control_selections: vec![ControlSelection {
                            include_controls: controls
                                .iter()
                                .map(|c| SelectControl {
                                    control_id: token(c),
                                })
                                .collect(),
                        }],
                    },
                    observations,
                    findings,
                }],
                back_matter: BackMatter {
                    resources: vec![Resource {
                        uuid: plan_uuid,
                        title: Some("demarc assessment rules".into()),
                        description: Some(
                            "No separate assessment plan: `demarc assess` judges every customer \
                             duty by the rules in docs/assessment.md."
                                .into(),
                        ),
                        citation: None,
                        rlinks: Vec::new(),
                    }],
                },
            },
        }
    }
}

fn role(id: &str) -> ResponsibleRole {
    ResponsibleRole {
        role_id: id.into(),
        props: Vec::new(),
        party_uuids: Vec::new(),
    }
}

/// `s` as a sentence: a capital first letter and a full stop.
fn sentence(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 1);
    let mut chars = s.trim().chars();
    if let Some(first) = chars.next() {
        out.extend(first.to_uppercase());
        out.push_str(chars.as_str());
    }
    if !out.ends_with('.') {
        out.push('.');
    }
    out
}

fn party_label(p: &DutyParty) -> String {
    p.label()
}

fn count(n: usize, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}

/// One sentence on how an area is split.
fn split_sentence(owner: Owner, lead: Option<Side>, note: &str) -> String {
    let who = match (owner, lead) {
        (Owner::Provider, _) => "The provider is responsible.".to_string(),
        (Owner::Customer, _) => "The customer is responsible.".to_string(),
        (Owner::Shared, Some(l)) => format!("Shared; the {} leads.", l.as_str()),
        (Owner::Shared, None) => "Shared.".to_string(),
        (Owner::NotApplicable, _) => "Not applicable.".to_string(),
        (Owner::ModelDependent, _) => "Depends on the model or the contract.".to_string(),
    };
    format!("{who} {note}")
}

/// A provider offering as used by the estate: provider, offering (or `(service model)` when
/// a component names none) and the catalog service model.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct OfferingKey {
    provider: String,
    offering: String,
    service_model: String,
}

impl OfferingKey {
    fn of(c: &Component, catalog: &CheckedCatalog) -> Option<Self> {
        let (sm, _, _) = catalog_service_model(c, catalog)?;
        Some(Self {
            provider: c.provider.clone(),
            offering: c
                .offering
                .clone()
                .unwrap_or_else(|| format!("({})", c.service_model)),
            service_model: sm.to_string(),
        })
    }

    fn props(&self, estate_sm: &str) -> Vec<Prop> {
        let mut p = vec![Prop::demarc("provider", &self.provider)];
        if !self.offering.starts_with('(') {
            p.push(Prop::demarc("offering", &self.offering));
        }
        p.push(Prop::demarc("service-model", estate_sm));
        p.push(Prop::demarc("catalog-service-model", &self.service_model));
        p
    }
}

struct OfferingInfo {
    title: String,
    description: String,
    estate_service_model: String,
}

#[derive(Default)]
struct AreaExports {
    /// Export key -> the offering's statement, its provided UUID, its responsibility UUID.
    exports: BTreeMap<String, (ByComponent, String, String)>,
    has_duties: bool,
}

/// One area's by-component statements: the offerings' exports, then each application
/// component's statement, made as it is written.
pub struct ByComponents<'a> {
    export: &'a EstateExport<'a>,
    area: &'a demarc_model::catalog::Area,
    exports: AreaExports,
}

impl Serialize for ByComponents<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let x = self.export;
        let mut seq = serializer.serialize_seq(None)?;
        for (statement, _, _) in self.exports.exports.values() {
            seq.serialize_element(statement)?;
        }
        for app in x.estate.applications() {
            for duty in resolve_area_all(app, x.catalog, self.area) {
                seq.serialize_element(&x.duty_statement(&self.exports, app, &duty))?;
            }
        }
        seq.end()
    }
}

// ---- the documents, field names as OSCAL spells them -------------------------------------

#[derive(Serialize)]
pub struct ComponentDefinitionDocument {
    #[serde(rename = "component-definition")]
    pub component_definition: ComponentDefinition,
}

#[derive(Serialize)]
pub struct ComponentDefinition {
    pub uuid: String,
    pub metadata: Metadata,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<DefinedComponent>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct DefinedComponent {
    pub uuid: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub title: String,
    pub description: String,
    pub props: Vec<Prop>,
    pub control_implementations: Vec<ComponentControlImplementation>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct ComponentControlImplementation {
    pub uuid: String,
    pub source: String,
    pub description: String,
    pub props: Vec<Prop>,
    pub implemented_requirements: Vec<ComponentRequirement>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct ComponentRequirement {
    pub uuid: String,
    pub control_id: String,
    pub description: String,
    pub props: Vec<Prop>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub responsible_roles: Vec<ResponsibleRole>,
}

#[derive(Serialize)]
pub struct SspDocument<'a> {
    #[serde(rename = "system-security-plan")]
    pub system_security_plan: Ssp<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Ssp<'a> {
    pub uuid: String,
    pub metadata: Metadata,
    pub import_profile: Href,
    pub system_characteristics: SystemCharacteristics,
    pub system_implementation: SystemImplementation,
    pub control_implementation: SspControlImplementation<'a>,
}

#[derive(Serialize)]
pub struct Href {
    pub href: String,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct SystemCharacteristics {
    pub system_ids: Vec<SystemId>,
    pub system_name: String,
    pub description: String,
    pub system_information: SystemInformation,
    pub status: Status,
    pub authorization_boundary: Description,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct SystemId {
    pub identifier_type: &'static str,
    pub id: String,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct SystemInformation {
    pub information_types: Vec<InformationType>,
}

#[derive(Serialize)]
pub struct InformationType {
    pub uuid: String,
    pub title: String,
    pub description: String,
}

#[derive(Serialize, Clone)]
pub struct Status {
    pub state: &'static str,
}

#[derive(Serialize)]
pub struct Description {
    pub description: String,
}

#[derive(Serialize)]
pub struct SystemImplementation {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<User>,
    pub components: Vec<SystemComponent>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct User {
    pub uuid: String,
    pub title: String,
    pub role_ids: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct SystemComponent {
    pub uuid: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub title: String,
    pub description: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub props: Vec<Prop>,
    pub status: Status,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub responsible_roles: Vec<ResponsibleRole>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct SspControlImplementation<'a> {
    pub description: String,
    pub implemented_requirements: Vec<SspRequirement<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct SspRequirement<'a> {
    pub uuid: String,
    pub control_id: String,
    pub props: Vec<Prop>,
    pub by_components: ByComponents<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct ByComponent {
    pub component_uuid: String,
    pub uuid: String,
    pub description: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub props: Vec<Prop>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<Link>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub implementation_status: Option<Status>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub export: Option<Export>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub inherited: Vec<Inherited>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub satisfied: Vec<Satisfied>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub responsible_roles: Vec<ResponsibleRole>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remarks: Option<String>,
}

#[derive(Serialize)]
pub struct Export {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub provided: Vec<Provided>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub responsibilities: Vec<Responsibility>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Provided {
    pub uuid: String,
    pub description: String,
    pub responsible_roles: Vec<ResponsibleRole>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Responsibility {
    pub uuid: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provided_uuid: Option<String>,
    pub description: String,
    pub responsible_roles: Vec<ResponsibleRole>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Inherited {
    pub uuid: String,
    pub provided_uuid: String,
    pub description: String,
    pub responsible_roles: Vec<ResponsibleRole>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Satisfied {
    pub uuid: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub responsibility_uuid: Option<String>,
    pub description: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<Link>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub responsible_roles: Vec<ResponsibleRole>,
}

#[derive(Serialize)]
pub struct AssessmentResultsDocument {
    #[serde(rename = "assessment-results")]
    pub assessment_results: AssessmentResults,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct AssessmentResults {
    pub uuid: String,
    pub metadata: Metadata,
    pub import_ap: Href,
    pub results: Vec<AssessmentResult>,
    pub back_matter: BackMatter,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct AssessmentResult {
    pub uuid: String,
    pub title: String,
    pub description: String,
    pub start: String,
    pub props: Vec<Prop>,
    pub reviewed_controls: ReviewedControls,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub observations: Vec<Observation>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<Finding>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct ReviewedControls {
    pub control_selections: Vec<ControlSelection>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct ControlSelection {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub include_controls: Vec<SelectControl>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct SelectControl {
    pub control_id: String,
}

#[derive(Serialize, Clone)]
#[serde(rename_all = "kebab-case")]
pub struct Subject {
    pub subject_uuid: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Observation {
    pub uuid: String,
    pub title: String,
    pub description: String,
    pub props: Vec<Prop>,
    pub methods: Vec<&'static str>,
    pub subjects: Vec<Subject>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub relevant_evidence: Vec<RelevantEvidence>,
    pub collected: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
}

#[derive(Serialize)]
pub struct RelevantEvidence {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub href: Option<String>,
    pub description: String,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Finding {
    pub uuid: String,
    pub title: String,
    pub description: String,
    pub props: Vec<Prop>,
    pub target: FindingTarget,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub related_observations: Vec<RelatedObservation>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct FindingTarget {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub target_id: String,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub implementation_status: Option<Status>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct RelatedObservation {
    pub observation_uuid: String,
}
