//! From a scan to a report: each service found, classified against the estate, with its
//! users, volumes, risk score and the scan's own health (records, malformed lines, errors).
//! The JSON form is documented in docs/json.md (`discover`) and stable: fields are only ever added.
//! This module holds the data only; the CLI's `render/` writes it as a table, CSV or HTML.

use std::collections::{BTreeMap, HashMap};

use rustc_hash::FxHashMap;
use serde::Serialize;

use crate::catalog::{Catalog, RiskScore, Role, ServiceModel};
use crate::formats::{IdKind, host_of_url};
use crate::scan::{ScanResult, ServiceUsage, UNKNOWN_USER, UserUsage, split_user_key, user_key};
use crate::time::format_rfc3339;

/// An application of the estate as discovery sees it: its id, status and the domains it
/// is reached at. (The CLI converts the estate file's applications into these.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownApplication {
    pub id: String,
    pub status: AppStatus,
    pub endpoints: Vec<String>,
}

/// Status of an application in the estate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AppStatus {
    Sanctioned,
    Tolerated,
    Unsanctioned,
    Discovered,
}

/// What the organisation has said about a service found in the logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Another tenant or region of a service whose sanctioned tenants the estate names (a
    /// personal Azure OpenAI resource, another Bedrock region): shadow use by default.
    OtherTenant,
    /// Not in the estate at all.
    Shadow,
    /// In the estate, and not allowed.
    Unsanctioned,
    /// In the estate as found by an earlier discovery, not yet reviewed.
    Discovered,
    /// Allowed for now.
    Tolerated,
    /// Approved.
    Sanctioned,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::OtherTenant => "other-tenant",
            Status::Shadow => "shadow",
            Status::Unsanctioned => "unsanctioned",
            Status::Discovered => "discovered",
            Status::Tolerated => "tolerated",
            Status::Sanctioned => "sanctioned",
        }
    }

    pub fn from_name(name: &str) -> Option<Status> {
        [
            Status::OtherTenant,
            Status::Shadow,
            Status::Unsanctioned,
            Status::Discovered,
            Status::Tolerated,
            Status::Sanctioned,
        ]
        .into_iter()
        .find(|s| s.as_str() == name)
    }
}

impl From<AppStatus> for Status {
    fn from(s: AppStatus) -> Status {
        match s {
            AppStatus::Sanctioned => Status::Sanctioned,
            AppStatus::Tolerated => Status::Tolerated,
            AppStatus::Unsanctioned => Status::Unsanctioned,
            AppStatus::Discovered => Status::Discovered,
        }
    }
}

/// Normalise an estate endpoint (`https://Chat.OpenAI.com/`, `*.openai.com`) to a domain.
pub fn endpoint_domain(endpoint: &str) -> String {
    let host =
        String::from_utf8_lossy(host_of_url(endpoint.trim().as_bytes())).to_ascii_lowercase();
    let host = host.trim_start_matches("*.").trim_end_matches('.');
    match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h.to_owned(),
        _ => host.to_owned(),
    }
}

/// Whether `host` is `domain` or below it.
pub fn under(host: &str, domain: &str) -> bool {
    host == domain
        || (host.len() > domain.len()
            && host.ends_with(domain)
            && host.as_bytes()[host.len() - domain.len() - 1] == b'.')
}

/// The most permissive status among `apps` and their ids.
fn best_of<'a>(apps: impl Iterator<Item = &'a KnownApplication>) -> (Option<Status>, Vec<String>) {
    let mut best: Option<AppStatus> = None;
    let mut ids = Vec::new();
    for app in apps {
        ids.push(app.id.clone());
        // The most permissive statement wins: one sanctioned application is enough.
        best = Some(best.map_or(app.status, |b| b.min(app.status)));
    }
    (best.map(Status::from), ids)
}

/// Whether an endpoint domain names one tenant of the service (a tenant pattern matches it),
/// rather than the service as a whole.
fn names_a_tenant(catalog: &Catalog, service: usize, endpoint: &str) -> bool {
    catalog
        .patterns(service)
        .iter()
        .any(|(_, p)| p.tenant.is_some() && p.matches(endpoint))
}

/// The estate applications that cover a service as a whole: an application endpoint covers
/// it when it names one of the service's ui/api/auth hosts or a domain above or below one.
/// An endpoint that names one tenant of a multi-tenant service (`team.openai.azure.com`)
/// covers that tenant only (see [`classify_tenant`]).
pub fn classify(
    catalog: &Catalog,
    service: usize,
    apps: &[KnownApplication],
) -> (Status, Vec<String>) {
    let (status, ids) = covering_service(catalog, service, apps);
    (status.unwrap_or(Status::Shadow), ids)
}

fn covering_service(
    catalog: &Catalog,
    service: usize,
    apps: &[KnownApplication],
) -> (Option<Status>, Vec<String>) {
    let patterns = catalog.patterns(service);
    best_of(apps.iter().filter(|app| {
        app.endpoints.iter().map(|e| endpoint_domain(e)).any(|e| {
            !e.is_empty()
                && !names_a_tenant(catalog, service, &e)
                && patterns.iter().any(|(role, p)| {
                    role.counts_as_use()
                        && (under(&p.domain, &e)
                            || (p.tenant.is_none() && !p.exact && under(&e, &p.domain)))
                })
        })
    }))
}

/// The estate applications that sanction one tenant (a host of a tenant pattern): those with
/// an endpoint that is the tenant's host or a domain above it.
pub fn classify_tenant(tenant: &str, apps: &[KnownApplication]) -> (Option<Status>, Vec<String>) {
    best_of(apps.iter().filter(|app| {
        app.endpoints
            .iter()
            .map(|e| endpoint_domain(e))
            .any(|e| !e.is_empty() && under(tenant, &e))
    }))
}

/// Whether any estate endpoint names a tenant of the service (so that its other tenants are
/// `other-tenant`, not `shadow`).
fn has_named_tenant(catalog: &Catalog, service: usize, apps: &[KnownApplication]) -> bool {
    apps.iter()
        .flat_map(|a| &a.endpoints)
        .any(|e| names_a_tenant(catalog, service, &endpoint_domain(e)))
}

#[derive(Debug, Clone, Serialize)]
pub struct UserReport {
    pub user: String,
    /// `user` (a user name), `ip` (a source address) or `device`.
    pub kind: IdKind,
    pub requests: u64,
    /// `null` when the log has no such field.
    pub bytes_sent: Option<u64>,
    pub bytes_received: Option<u64>,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    pub large_uploads: u64,
    /// Requests the proxy log says it blocked, and allowed.
    pub blocked: u64,
    pub allowed: u64,
    /// Requests to the service's ui, api or auth hosts; an identity with none reached it only
    /// incidentally (a page's script, telemetry) and is not counted as a user.
    #[serde(skip)]
    pub use_requests: u64,
    #[serde(skip)]
    pub first_us: Option<i64>,
    #[serde(skip)]
    pub last_us: Option<i64>,
}

/// Identities that used a service, by kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Identities {
    pub user: u64,
    pub ip: u64,
    pub device: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ServiceReport {
    pub id: String,
    pub name: String,
    pub vendor: String,
    pub category: String,
    pub service_model: ServiceModel,
    pub status: Status,
    /// Estate applications whose endpoints cover this service (or these tenants).
    pub estate_applications: Vec<String>,
    pub requests: u64,
    /// Distinct user names (after `--identities` mapped addresses to users).
    pub users: u64,
    /// Distinct identities by kind: user names, source addresses, devices.
    pub identities: Identities,
    /// `null` when no log read had the field (Zeek ssl and dns, Route 53, Squid's sent).
    pub bytes_sent: Option<u64>,
    pub bytes_received: Option<u64>,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    pub large_uploads: u64,
    pub risk: RiskScore,
    pub top_users: Vec<UserReport>,
    /// For a multi-tenant service: the tenant hosts (Azure resources, regions) in this finding.
    pub tenants: Vec<String>,
    /// The roles of the hosts seen (ui, api, auth; cdn, telemetry, widget, sdk).
    pub host_kinds: Vec<Role>,
    /// Requests the proxy log says it blocked, and said it allowed (others: the log does not say).
    pub blocked: u64,
    pub allowed: u64,
    /// Requests with no readable time.
    pub untimed: u64,
    /// DNS lookups not counted: the same client asked for the same name within the window.
    pub dns_repeats: u64,
    /// Every identity, by requests, those only incidental included (what `--record` stores,
    /// so that recorded runs merge exactly: an identity incidental in one log may use the
    /// service in another).
    #[serde(skip)]
    pub all_users: Vec<UserReport>,
}

/// A service seen only on its cdn, telemetry, widget or sdk hosts: not counted as use.
#[derive(Debug, Clone, Serialize)]
pub struct IncidentalReport {
    pub id: String,
    pub name: String,
    pub requests: u64,
    pub host_kinds: Vec<Role>,
    /// Every identity that reached it (what `--record` stores).
    #[serde(skip)]
    pub all_users: Vec<UserReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FileReport {
    pub name: String,
    pub format: Option<&'static str>,
    pub compression: &'static str,
    pub bytes: u64,
    pub lines: u64,
    pub records: u64,
    pub malformed: u64,
    pub untimed: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct MalformedReport {
    pub file: String,
    pub line: u64,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ErrorReport {
    pub file: String,
    pub message: String,
}

/// The report's summary: services by status, how many score high risk, what is new.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// Findings per status (`shadow`, `other-tenant`, ... `sanctioned`).
    pub by_status: BTreeMap<&'static str, u64>,
    /// Findings whose risk score is at least [`HIGH_RISK`].
    pub high_risk: u64,
    /// Findings (service, and tenant where there is one) not in the last recorded run;
    /// `null` when there was no run to compare with.
    pub new_since_last_run: Option<Vec<String>>,
}

/// A risk score at or above this is high.
pub const HIGH_RISK: u32 = 50;

/// The whole report; its JSON form is the documented `demarc discover --format json`.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub catalog_version: String,
    pub summary: Summary,
    pub services: Vec<ServiceReport>,
    pub incidental: Vec<IncidentalReport>,
    pub records: u64,
    pub malformed: u64,
    /// Records kept without a time: their time field could not be read.
    pub untimed: u64,
    pub malformed_lines: Vec<MalformedReport>,
    pub errors: Vec<ErrorReport>,
    pub files: Vec<FileReport>,
    pub bytes: u64,
}

/// How many users each service lists in `top_users`.
pub const TOP_USERS: usize = 10;

/// What else shapes a report: addresses known to belong to users.
#[derive(Debug, Clone, Default)]
pub struct ReportOptions {
    /// Source address -> user name (from DHCP or VPN exports).
    pub ip_users: HashMap<Vec<u8>, Vec<u8>>,
}

fn user_report(key: &[u8], u: &UserUsage) -> UserReport {
    let (kind, name) = split_user_key(key);
    UserReport {
        user: String::from_utf8_lossy(name).into_owned(),
        kind,
        requests: u.requests,
        bytes_sent: u.sent(),
        bytes_received: u.received(),
        first_seen: u.first.map(format_rfc3339),
        last_seen: u.last.map(format_rfc3339),
        large_uploads: u.large_uploads,
        blocked: u.blocked,
        allowed: u.allowed,
        use_requests: u.use_requests,
        first_us: u.first,
        last_us: u.last,
    }
}

/// Every identity of `users`, most requests first.
fn every_user(users: &FxHashMap<Box<[u8]>, UserUsage>) -> Vec<UserReport> {
    let mut all: Vec<UserReport> = users.iter().map(|(k, u)| user_report(k, u)).collect();
    all.sort_unstable_by(|a, b| {
        b.requests
            .cmp(&a.requests)
            .then_with(|| (a.kind as u8, &a.user).cmp(&(b.kind as u8, &b.user)))
    });
    all
}

/// One finding in the making: what the estate says and the usage it covers.
struct Group {
    status: Status,
    apps: Vec<String>,
    usage: ServiceUsage,
    tenants: Vec<String>,
}

impl Group {
    fn add(&mut self, usage: &ServiceUsage, tenant: Option<&str>) {
        self.usage.total.merge(&usage.total);
        for (k, u) in &usage.users {
            self.usage.users.entry(k.clone()).or_default().merge(u);
        }
        self.usage.dns_repeats += usage.dns_repeats;
        if let Some(t) = tenant {
            self.tenants.push(t.to_owned());
        }
    }
}

/// Re-key users by the address mapping: a mapped address becomes its user.
fn map_identities(
    users: &FxHashMap<Box<[u8]>, UserUsage>,
    options: &ReportOptions,
) -> FxHashMap<Box<[u8]>, UserUsage> {
    let mut out: FxHashMap<Box<[u8]>, UserUsage> = FxHashMap::default();
    for (key, u) in users {
        let (kind, name) = split_user_key(key);
        let key: Box<[u8]> = match (kind, options.ip_users.get(name)) {
            (IdKind::Ip, Some(user)) => user_key(IdKind::User, user).into(),
            _ => key.clone(),
        };
        out.entry(key).or_default().merge(u);
    }
    out
}

impl Report {
    pub fn build(catalog: &Catalog, scan: &ScanResult, apps: &[KnownApplication]) -> Report {
        Report::build_with(catalog, scan, apps, &ReportOptions::default())
    }

    pub fn build_with(
        catalog: &Catalog,
        scan: &ScanResult,
        apps: &[KnownApplication],
        options: &ReportOptions,
    ) -> Report {
        let mut services = Vec::new();
        let mut incidental = Vec::new();
        for (index, usage) in scan.usage.services.iter().enumerate() {
            let Some(service) = catalog.service(index) else {
                continue;
            };
            let all = usage.merged();
            if all.total.requests == 0 {
                continue;
            }
            if all.total.use_requests == 0 {
                incidental.push(IncidentalReport {
                    id: service.id.clone(),
                    name: service.name.clone(),
                    requests: all.total.requests,
                    host_kinds: Role::from_bits(all.total.roles),
                    all_users: every_user(&map_identities(&all.users, options)),
                });
                continue;
            }
            for group in groups(catalog, index, usage, apps) {
                if group.usage.total.requests == 0 {
                    continue;
                }
                services.push(service_report(catalog, index, group, options));
            }
        }
        services.sort_by(|a, b| {
            a.status
                .cmp(&b.status)
                .then(b.requests.cmp(&a.requests))
                .then_with(|| a.id.cmp(&b.id))
                .then_with(|| a.tenants.cmp(&b.tenants))
        });
        incidental.sort_by(|a, b| b.requests.cmp(&a.requests).then_with(|| a.id.cmp(&b.id)));
        let mut summary = Summary::default();
        for s in &services {
            *summary.by_status.entry(s.status.as_str()).or_default() += 1;
            summary.high_risk += u64::from(s.risk.score >= HIGH_RISK);
        }
        Report {
            catalog_version: catalog.version().to_owned(),
            summary,
            services,
            incidental,
            records: scan.records,
            malformed: scan.malformed,
            untimed: scan.untimed,
            malformed_lines: scan
                .malformed_examples
                .iter()
                .map(|m| MalformedReport {
                    file: m.file.clone(),
                    line: m.line,
                    reason: m.reason.clone(),
                })
                .collect(),
            errors: scan
                .errors
                .iter()
                .map(|e| ErrorReport {
                    file: e.file.clone(),
                    message: e.message.clone(),
                })
                .collect(),
            files: scan
                .files
                .iter()
                .map(|f| FileReport {
                    name: f.name.clone(),
                    format: f.format.map(|f| f.name()),
                    compression: f.compression.name(),
                    bytes: f.bytes,
                    lines: f.lines,
                    records: f.records,
                    malformed: f.malformed,
                    untimed: f.untimed,
                })
                .collect(),
            bytes: scan.files.iter().map(|f| f.bytes).sum(),
        }
    }

    /// The key a finding is compared by across runs: the service id, and the tenant for a
    /// finding about one tenant.
    pub fn finding_keys(&self) -> Vec<String> {
        self.services.iter().map(ServiceReport::key).collect()
    }

    /// Services at or below `threshold` (other-tenant < shadow < unsanctioned < discovered <
    /// tolerated): `other-tenant` counts as shadow.
    pub fn at_or_below(&self, threshold: Status) -> impl Iterator<Item = &ServiceReport> {
        self.services.iter().filter(move |s| s.status <= threshold)
    }
}

/// The findings of one service: its usage split by what the estate says of each part.
fn groups(
    catalog: &Catalog,
    index: usize,
    usage: &ServiceUsage,
    apps: &[KnownApplication],
) -> Vec<Group> {
    let (service_status, service_apps) = covering_service(catalog, index, apps);
    let mut out: Vec<Group> = Vec::new();
    let mut put = |status: Status,
                   apps: Vec<String>,
                   part: &ServiceUsage,
                   tenant: Option<&str>,
                   own_row: bool| {
        let found = if own_row {
            None
        } else {
            out.iter_mut()
                .find(|g| g.status == status && g.apps == apps && g.status != Status::OtherTenant)
        };
        match found {
            Some(g) => g.add(part, tenant),
            None => {
                let mut g = Group {
                    status,
                    apps,
                    usage: ServiceUsage::default(),
                    tenants: Vec::new(),
                };
                g.add(part, tenant);
                out.push(g);
            }
        }
    };
    if usage.tenants.is_empty() {
        put(
            service_status.unwrap_or(Status::Shadow),
            service_apps,
            usage,
            None,
            false,
        );
        return out;
    }
    let named = has_named_tenant(catalog, index, apps);
    let mut tenants: Vec<(&Box<[u8]>, &ServiceUsage)> = usage.tenants.iter().collect();
    tenants.sort_by(|a, b| a.0.cmp(b.0));
    // Covered tenants first: an uncovered non-tenant part (the portal of a sanctioned
    // resource) takes the most permissive status of the service's covered tenants.
    let mut tenant_best: Option<(Status, Vec<String>)> = None;
    let mut uncovered = Vec::new();
    for (host, part) in tenants {
        let host = String::from_utf8_lossy(host).into_owned();
        match classify_tenant(&host, apps) {
            (Some(status), ids) => {
                if tenant_best.as_ref().is_none_or(|(b, _)| status > *b) {
                    tenant_best = Some((status, ids.clone()));
                }
                put(status, ids, part, Some(&host), false);
            }
            // No endpoint names this tenant or a domain above it: where the estate covers
            // the service or names another tenant, this is another tenant; else shadow.
            (None, _) if named || service_status.is_some() => uncovered.push((host, part)),
            (None, _) => put(Status::Shadow, Vec::new(), part, Some(&host), false),
        }
    }
    for (host, part) in uncovered {
        put(Status::OtherTenant, Vec::new(), part, Some(&host), true);
    }
    if usage.total.requests > 0 {
        let (status, ids) = match (service_status, &tenant_best) {
            (Some(s), _) => (s, service_apps),
            (None, Some((s, ids))) => (*s, ids.clone()),
            (None, None) => (Status::Shadow, Vec::new()),
        };
        let plain = ServiceUsage {
            total: usage.total.clone(),
            users: usage.users.clone(),
            tenants: FxHashMap::default(),
            dns_repeats: usage.dns_repeats,
        };
        put(status, ids, &plain, None, false);
    }
    out
}

fn service_report(
    catalog: &Catalog,
    index: usize,
    group: Group,
    options: &ReportOptions,
) -> ServiceReport {
    let users_map = map_identities(&group.usage.users, options);
    let mut identities = Identities::default();
    let mut users: Vec<(&[u8], &UserUsage)> = Vec::new();
    for (k, u) in &users_map {
        if u.use_requests == 0 {
            continue;
        }
        let (kind, name) = split_user_key(k);
        if name != UNKNOWN_USER {
            match kind {
                IdKind::User => identities.user += 1,
                IdKind::Ip => identities.ip += 1,
                IdKind::Device => identities.device += 1,
            }
        }
        users.push((k.as_ref(), u));
    }
    users.sort_unstable_by(|a, b| b.1.requests.cmp(&a.1.requests).then_with(|| a.0.cmp(b.0)));
    let all_users = every_user(&users_map);
    users.truncate(TOP_USERS);
    let service = &catalog.services()[index];
    let t = &group.usage.total;
    let mut tenants = group.tenants;
    tenants.sort();
    ServiceReport {
        id: service.id.clone(),
        name: service.name.clone(),
        vendor: catalog
            .vendor(&service.vendor)
            .map_or_else(|| service.vendor.clone(), |v| v.name.clone()),
        category: service.category.clone(),
        service_model: service.service_model,
        status: group.status,
        estate_applications: group.apps,
        requests: t.requests,
        users: identities.user,
        identities,
        bytes_sent: t.sent(),
        bytes_received: t.received(),
        first_seen: t.first.map(format_rfc3339),
        last_seen: t.last.map(format_rfc3339),
        large_uploads: t.large_uploads,
        risk: catalog.risk_score(index).unwrap_or(RiskScore {
            score: 0,
            parts: Vec::new(),
        }),
        top_users: users.into_iter().map(|(k, u)| user_report(k, u)).collect(),
        tenants,
        host_kinds: Role::from_bits(t.roles),
        blocked: t.blocked,
        allowed: t.allowed,
        untimed: t.untimed,
        dns_repeats: group.usage.dns_repeats,
        all_users,
    }
}

impl ServiceReport {
    /// `service` or, for a finding about one tenant, `service@tenant`.
    pub fn key(&self) -> String {
        match self.tenants.as_slice() {
            [one] if self.status == Status::OtherTenant => format!("{}@{one}", self.id),
            _ => self.id.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(id: &str, status: AppStatus, endpoints: &[&str]) -> KnownApplication {
        KnownApplication {
            id: id.to_owned(),
            status,
            endpoints: endpoints.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn classification_against_the_estate() {
        let c = Catalog::builtin().unwrap();
        let idx = |id: &str| c.services().iter().position(|s| s.id == id).unwrap();
        let apps = [
            app(
                "assistant",
                AppStatus::Sanctioned,
                &["https://chatgpt.com/"],
            ),
            app("api", AppStatus::Tolerated, &["api.openai.com"]),
            app("blocked", AppStatus::Unsanctioned, &["*.deepseek.com"]),
        ];
        assert_eq!(
            classify(&c, idx("chatgpt"), &apps),
            (Status::Sanctioned, vec!["assistant".to_owned()])
        );
        assert_eq!(classify(&c, idx("openai-api"), &apps).0, Status::Tolerated);
        assert_eq!(classify(&c, idx("deepseek"), &apps).0, Status::Unsanctioned);
        assert_eq!(classify(&c, idx("claude"), &apps).0, Status::Shadow);
        // The api endpoint does not cover ChatGPT, whose auth host is elsewhere.
        assert_eq!(classify(&c, idx("chatgpt"), &apps[1..]).0, Status::Shadow);
    }
}
