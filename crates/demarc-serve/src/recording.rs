//! Discovery runs into the store: what `demarc discover --record` and the ingest endpoint
//! both write, so that a log recorded either way is the same run.

use std::sync::Arc;

use demarc_discover::report::{AppStatus, KnownApplication, Report, ReportOptions, UserReport};
use demarc_discover::{Catalog, FieldMap, Format, Input, Progress, ScanOptions, ScanResult};
use demarc_model::CheckedEstate;
use demarc_store::time::OffsetDateTime;
use demarc_store::{ClassifiedFinding, DiscoveryFinding, FindingClass, RecordedInput};

/// The estate's applications as discovery classifies traffic against them.
pub fn known_applications(estate: &CheckedEstate) -> Vec<KnownApplication> {
    use demarc_model::estate::AppStatus as Estate;
    estate
        .applications()
        .iter()
        .map(|a| KnownApplication {
            id: a.id.clone(),
            status: match a.status {
                Estate::Sanctioned => AppStatus::Sanctioned,
                Estate::Tolerated => AppStatus::Tolerated,
                Estate::Unsanctioned => AppStatus::Unsanctioned,
                Estate::Discovered => AppStatus::Discovered,
            },
            endpoints: a.endpoints.clone(),
        })
        .collect()
}

/// A report's findings as the store keeps them: one per service (or tenant group) and
/// identity, those that only reached a service incidentally included (services reached only
/// so as status `incidental`), so that runs merge exactly. Times missing from the log are
/// `now`.
pub fn findings_of(report: &Report, now: OffsetDateTime) -> Vec<ClassifiedFinding> {
    let at = |t: Option<i64>| {
        t.and_then(|us| OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1000).ok())
            .unwrap_or(now)
    };
    let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    let finding = |service: &str, u: &UserReport, class: &FindingClass| ClassifiedFinding {
        finding: DiscoveryFinding {
            service: service.to_owned(),
            user: u.user.chars().take(1024).collect(),
            requests: count(u.requests),
            bytes_sent: u.bytes_sent.map_or(0, count),
            bytes_received: u.bytes_received.map_or(0, count),
            first_seen: at(u.first_us),
            last_seen: at(u.last_us),
        },
        class: FindingClass {
            user_kind: u.kind.as_str().to_owned(),
            blocked: count(u.blocked),
            allowed: count(u.allowed),
            use_requests: Some(count(u.use_requests)),
            ..class.clone()
        },
    };
    let kinds = |roles: &[demarc_discover::catalog::Role]| {
        roles
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut findings = Vec::new();
    for s in &report.services {
        let class = FindingClass {
            applications: s.estate_applications.clone(),
            status: s.status.as_str().to_owned(),
            tenant: (!s.tenants.is_empty())
                .then(|| s.tenants.join(" "))
                .map(|t| t.chars().take(1000).collect()),
            host_kinds: kinds(&s.host_kinds),
            ..FindingClass::default()
        };
        findings.extend(s.all_users.iter().map(|u| finding(&s.id, u, &class)));
    }
    for s in &report.incidental {
        let class = FindingClass {
            status: "incidental".to_owned(),
            host_kinds: kinds(&s.host_kinds),
            ..FindingClass::default()
        };
        findings.extend(s.all_users.iter().map(|u| finding(&s.id, u, &class)));
    }
    findings.sort_by(|a, b| {
        (&a.finding.service, &a.class.tenant, &a.finding.user).cmp(&(
            &b.finding.service,
            &b.class.tenant,
            &b.finding.user,
        ))
    });
    findings
}

/// The inputs a scan read to their end, with their SHA-256 (`hash_inputs`): what makes a
/// recorded log known again.
pub fn inputs_of(result: &ScanResult) -> Vec<RecordedInput> {
    result
        .files
        .iter()
        .filter_map(|f| {
            Some(RecordedInput {
                name: f.name.clone(),
                sha256: f.sha256?,
                bytes: i64::try_from(f.bytes).unwrap_or(i64::MAX),
            })
        })
        .collect()
}

/// One batch of log lines scanned in memory (the format detected as for a file unless given;
/// `map` names the fields of generic CSV, TSV or JSON lines), with the input's SHA-256.
pub fn scan_batch(
    name: &str,
    data: Arc<[u8]>,
    catalog: &Catalog,
    format: Option<Format>,
    map: Option<FieldMap>,
) -> ScanResult {
    let options = ScanOptions {
        threads: 1,
        hash_inputs: true,
        format,
        map,
        ..ScanOptions::default()
    };
    let input = Input::Bytes {
        name: name.to_owned(),
        data,
    };
    demarc_discover::scan(
        std::slice::from_ref(&input),
        catalog,
        &options,
        &Progress::default(),
    )
}

/// The report of a scan, its services classified against the estate's applications.
pub fn report_of(catalog: &Catalog, result: &ScanResult, apps: &[KnownApplication]) -> Report {
    Report::build_with(catalog, result, apps, &ReportOptions::default())
}
