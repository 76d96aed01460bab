//! From a scan to a report: each service found, classified against the estate, with its
//! users, volumes, risk score and the scan's own health (records, malformed lines, errors).
//! The JSON form is documented in the README and stable: fields are only ever added.

use serde::Serialize;

use crate::catalog::{Catalog, RiskScore, ServiceModel};
use crate::formats::host_of_url;
use crate::scan::{ScanResult, UserUsage};
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
#[serde(rename_all = "lowercase")]
pub enum Status {
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
            Status::Shadow => "shadow",
            Status::Unsanctioned => "unsanctioned",
            Status::Discovered => "discovered",
            Status::Tolerated => "tolerated",
            Status::Sanctioned => "sanctioned",
        }
    }

    pub fn from_name(name: &str) -> Option<Status> {
        [
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
fn endpoint_domain(endpoint: &str) -> String {
    let host =
        String::from_utf8_lossy(host_of_url(endpoint.trim().as_bytes())).to_ascii_lowercase();
    let host = host.trim_start_matches("*.").trim_end_matches('.');
    match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h.to_owned(),
        _ => host.to_owned(),
    }
}

fn under(host: &str, domain: &str) -> bool {
    host == domain
        || (host.len() > domain.len()
            && host.ends_with(domain)
            && host.as_bytes()[host.len() - domain.len() - 1] == b'.')
}

/// The estate applications that cover a service: an application endpoint covers it when it
/// names one of the service's ui/api/auth hosts or a domain above or below one.
pub fn classify(
    catalog: &Catalog,
    service: usize,
    apps: &[KnownApplication],
) -> (Status, Vec<String>) {
    let patterns = catalog.patterns(service);
    let mut best: Option<AppStatus> = None;
    let mut ids = Vec::new();
    for app in apps {
        let covers = app.endpoints.iter().map(|e| endpoint_domain(e)).any(|e| {
            !e.is_empty()
                && patterns.iter().any(|(role, p)| {
                    role.counts_as_use()
                        && (under(&p.domain, &e) || (!p.exact && under(&e, &p.domain)))
                })
        });
        if covers {
            ids.push(app.id.clone());
            // The most permissive statement wins: one sanctioned application is enough.
            best = Some(best.map_or(app.status, |b| b.min(app.status)));
        }
    }
    (best.map_or(Status::Shadow, Status::from), ids)
}

#[derive(Debug, Clone, Serialize)]
pub struct UserReport {
    pub user: String,
    pub requests: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    pub large_uploads: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ServiceReport {
    pub id: String,
    pub name: String,
    pub vendor: String,
    pub category: String,
    pub service_model: ServiceModel,
    pub status: Status,
    /// Estate applications whose endpoints cover this service.
    pub estate_applications: Vec<String>,
    pub requests: u64,
    pub users: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    pub large_uploads: u64,
    pub risk: RiskScore,
    pub top_users: Vec<UserReport>,
}

/// A service seen only on its cdn or telemetry hosts: not counted as use.
#[derive(Debug, Clone, Serialize)]
pub struct IncidentalReport {
    pub id: String,
    pub name: String,
    pub requests: u64,
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

/// The whole report; its JSON form is the documented `demarc discover --format json`.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub catalog_version: String,
    pub services: Vec<ServiceReport>,
    pub incidental: Vec<IncidentalReport>,
    pub records: u64,
    pub malformed: u64,
    pub malformed_lines: Vec<MalformedReport>,
    pub errors: Vec<ErrorReport>,
    pub files: Vec<FileReport>,
    pub bytes: u64,
}

/// How many users each service lists in `top_users`.
pub const TOP_USERS: usize = 10;

fn user_report(user: &[u8], u: &UserUsage) -> UserReport {
    UserReport {
        user: String::from_utf8_lossy(user).into_owned(),
        requests: u.requests,
        bytes_sent: u.sent,
        bytes_received: u.received,
        first_seen: u.first.map(format_rfc3339),
        last_seen: u.last.map(format_rfc3339),
        large_uploads: u.large_uploads,
    }
}

impl Report {
    pub fn build(catalog: &Catalog, scan: &ScanResult, apps: &[KnownApplication]) -> Report {
        let mut services = Vec::new();
        let mut incidental = Vec::new();
        for (index, usage) in scan.usage.services.iter().enumerate() {
            let Some(service) = catalog.service(index) else {
                continue;
            };
            if usage.total.requests == 0 {
                continue;
            }
            if usage.total.use_requests == 0 {
                incidental.push(IncidentalReport {
                    id: service.id.clone(),
                    name: service.name.clone(),
                    requests: usage.total.requests,
                });
                continue;
            }
            let (status, estate_applications) = classify(catalog, index, apps);
            let mut users: Vec<(&[u8], &UserUsage)> = usage
                .users
                .iter()
                .filter(|(_, u)| u.use_requests > 0)
                .map(|(k, u)| (k.as_ref(), u))
                .collect();
            let user_count = users.len() as u64;
            users.sort_unstable_by(|a, b| {
                b.1.requests.cmp(&a.1.requests).then_with(|| a.0.cmp(b.0))
            });
            users.truncate(TOP_USERS);
            let t = &usage.total;
            services.push(ServiceReport {
                id: service.id.clone(),
                name: service.name.clone(),
                vendor: catalog
                    .vendor(&service.vendor)
                    .map_or_else(|| service.vendor.clone(), |v| v.name.clone()),
                category: service.category.clone(),
                service_model: service.service_model,
                status,
                estate_applications,
                requests: t.requests,
                users: user_count,
                bytes_sent: t.sent,
                bytes_received: t.received,
                first_seen: t.first.map(format_rfc3339),
                last_seen: t.last.map(format_rfc3339),
                large_uploads: t.large_uploads,
                risk: catalog.risk_score(index).unwrap_or(RiskScore {
                    score: 0,
                    parts: Vec::new(),
                }),
                top_users: users.into_iter().map(|(k, u)| user_report(k, u)).collect(),
            });
        }
        services.sort_by(|a, b| {
            a.status
                .cmp(&b.status)
                .then(b.requests.cmp(&a.requests))
                .then_with(|| a.id.cmp(&b.id))
        });
        incidental.sort_by(|a, b| b.requests.cmp(&a.requests).then_with(|| a.id.cmp(&b.id)));
        Report {
            catalog_version: catalog.version().to_owned(),
            services,
            incidental,
            records: scan.records,
            malformed: scan.malformed,
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
                })
                .collect(),
            bytes: scan.files.iter().map(|f| f.bytes).sum(),
        }
    }

    /// Services at or below `threshold` (shadow < unsanctioned < discovered < tolerated).
    pub fn at_or_below(&self, threshold: Status) -> impl Iterator<Item = &ServiceReport> {
        self.services.iter().filter(move |s| s.status <= threshold)
    }

    /// One CSV row per service (header first), RFC 4180 quoting.
    pub fn to_csv(&self) -> String {
        let mut out = String::from(
            "id,name,vendor,category,service_model,status,requests,users,bytes_sent,bytes_received,first_seen,last_seen,large_uploads,risk_score,top_user\n",
        );
        for s in &self.services {
            let model = match s.service_model {
                ServiceModel::Saas => "saas",
                ServiceModel::Paas => "paas",
                ServiceModel::Iaas => "iaas",
            };
            let row = [
                s.id.clone(),
                s.name.clone(),
                s.vendor.clone(),
                s.category.clone(),
                model.to_owned(),
                s.status.as_str().to_owned(),
                s.requests.to_string(),
                s.users.to_string(),
                s.bytes_sent.to_string(),
                s.bytes_received.to_string(),
                s.first_seen.clone().unwrap_or_default(),
                s.last_seen.clone().unwrap_or_default(),
                s.large_uploads.to_string(),
                s.risk.score.to_string(),
                s.top_users
                    .first()
                    .map(|u| u.user.clone())
                    .unwrap_or_default(),
            ];
            let cells: Vec<String> = row.iter().map(|c| csv_cell(c)).collect();
            out.push_str(&cells.join(","));
            out.push('\n');
        }
        out
    }

    /// A self-contained HTML page (no scripts, no external assets).
    pub fn to_html(&self) -> String {
        let mut rows = String::new();
        for s in &self.services {
            let parts: Vec<String> = s
                .risk
                .parts
                .iter()
                .map(|p| format!("{} {} (+{})", p.factor, html(&p.value), p.points))
                .collect();
            rows.push_str(&format!(
                "<tr class=\"{status}\"><td>{name}<br><small>{id}</small></td><td>{vendor}</td><td>{category}</td><td>{status}</td><td>{req}</td><td>{users}</td><td>{sent}</td><td>{recv}</td><td>{first}<br>{last}</td><td title=\"{parts}\">{score}</td><td>{top}</td></tr>\n",
                status = s.status.as_str(),
                name = html(&s.name),
                id = html(&s.id),
                vendor = html(&s.vendor),
                category = html(&s.category),
                req = s.requests,
                users = s.users,
                sent = s.bytes_sent,
                recv = s.bytes_received,
                first = html(s.first_seen.as_deref().unwrap_or("")),
                last = html(s.last_seen.as_deref().unwrap_or("")),
                parts = parts.join("; "),
                score = s.risk.score,
                top = html(&s.top_users.iter().take(3).map(|u| format!("{} ({})", u.user, u.requests)).collect::<Vec<_>>().join(", ")),
            ));
        }
        format!(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>demarc discover</title><style>\nbody{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px;vertical-align:top}}\ntr.shadow td{{background:#fdd}}tr.unsanctioned td{{background:#fcb}}tr.discovered td{{background:#ffd}}tr.tolerated td{{background:#eef}}tr.sanctioned td{{background:#dfd}}\n</style></head><body>\n<h1>GenAI services in use</h1>\n<p>{records} records read, {malformed} malformed, catalog {version}.</p>\n<table><thead><tr><th>service</th><th>vendor</th><th>category</th><th>status</th><th>requests</th><th>users</th><th>bytes sent</th><th>bytes received</th><th>first / last seen</th><th>risk</th><th>top users</th></tr></thead><tbody>\n{rows}</tbody></table>\n</body></html>\n",
            records = self.records,
            malformed = self.malformed,
            version = html(&self.catalog_version),
        )
    }
}

fn csv_cell(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

fn html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
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

    #[test]
    fn csv_quotes() {
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(html("<a href='x'>"), "&lt;a href=&#39;x&#39;&gt;");
    }
}
