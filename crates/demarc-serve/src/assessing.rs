//! What an assessment reads besides the estate, shared by `demarc assess`, `demarc export` and
//! the dashboard: what demarc observed by itself, read from the store in the model's terms (the
//! latest observation per application × area × kind, the gateway's traffic per application
//! from the audit trail's per-day summary, and what recorded discovery runs saw), and the
//! estate's reviewed evidence files checked on disk.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::Path;

use demarc_model::assess::{
    ApplicationAssessment, AssessOptions, FileCheck, ObservedEvidence, ObservedTraffic,
    UnlistedService,
};
use demarc_model::{CheckedEstate, Date, ObservationKind};
use demarc_store::time::OffsetDateTime;
use demarc_store::{DiscoveryTraffic, Store, StoreError};
use sha2::{Digest, Sha256};

/// The start (00:00 UTC) of `day`.
pub fn start_of(day: Date) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(day.days_since_epoch().saturating_mul(86_400))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn day_of(t: OffsetDateTime) -> Date {
    Date::from_days_since_epoch(t.unix_timestamp().div_euclid(86_400))
}

/// Observations made from `since` on: the evidence (rows whose kind this build does not know
/// are left out) and the gateway traffic of each application that had requests answered.
pub async fn read_observations(
    store: &Store,
    since: OffsetDateTime,
) -> Result<(Vec<ObservedEvidence>, Vec<ObservedTraffic>), StoreError> {
    let started = std::time::Instant::now();
    let evidence = store.observed_evidence(since).await?;
    let traffic = store.gateway_traffic(since).await?;
    let out = (to_evidence(evidence), to_traffic(traffic));
    tracing::debug!(
        evidence = out.0.len(),
        traffic = out.1.len(),
        elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
        "observations read from the store"
    );
    Ok(out)
}

fn to_evidence(rows: Vec<demarc_store::Evidence>) -> Vec<ObservedEvidence> {
    rows.into_iter()
        .filter_map(|e| {
            let Ok(kind) = e.kind.parse::<ObservationKind>() else {
                tracing::debug!(kind = %e.kind, "observation of an unknown kind left out");
                return None;
            };
            Some(ObservedEvidence {
                application: e.application,
                area: e.area,
                kind,
                source: e.source,
                observed_at: day_of(e.observed_at),
                summary: e.summary,
                // Evidence without an expiry counts for as long as it is the latest.
                expires: e
                    .expires_at
                    .map_or(Date::from_days_since_epoch(i64::MAX / 4), day_of),
            })
        })
        .collect()
}

/// One entry per application with answered requests, over every audit chain.
fn to_traffic(rows: Vec<demarc_store::Traffic>) -> Vec<ObservedTraffic> {
    #[derive(Default)]
    struct Sum {
        requests: u64,
        served: u64,
        blocked: u64,
        refused: u64,
        failed: u64,
        first: Option<i64>,
        last: Option<i64>,
        chains: Vec<String>,
    }
    let mut per_app: BTreeMap<String, Sum> = BTreeMap::new();
    for t in rows {
        let s = per_app.entry(t.application).or_default();
        s.requests += t.requests;
        s.served += t.served;
        s.blocked += t.blocked;
        s.refused += t.refused;
        s.failed += t.failed;
        s.first = match (s.first, t.first_served_day) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        s.last = s.last.max(t.last_served_day);
        s.chains.push(t.chain);
    }
    per_app
        .into_iter()
        .filter_map(|(application, s)| {
            let (first, last) = (s.first?, s.last?);
            if s.served == 0 {
                return None;
            }
            let source = match s.chains.as_slice() {
                [one] => format!("gateway audit chain `{one}`"),
                [first_chain, rest @ ..] => format!(
                    "gateway audit chains `{first_chain}` and {} more",
                    rest.len()
                ),
                [] => "gateway audit".to_string(),
            };
            Some(ObservedTraffic {
                application,
                kind: ObservationKind::GatewayTraffic,
                source,
                requests: s.served,
                first_seen: Date::from_days_since_epoch(first),
                last_seen: Date::from_days_since_epoch(last),
                detail: Some(format!(
                    "{} requests answered of {} received; {} blocked by policy, {} refused, {} failed",
                    s.served, s.requests, s.blocked, s.refused, s.failed
                )),
            })
        })
        .collect()
}

/// Everything an assessment reads from the store for a window: observed evidence, gateway
/// traffic and recorded discovery runs. `assess` and the dashboard read and apply it alike.
pub struct StoreObservations {
    evidence: Vec<ObservedEvidence>,
    traffic: Vec<ObservedTraffic>,
    discovered: Vec<DiscoveryTraffic>,
    since: Date,
}

impl StoreObservations {
    /// What the store observed from the start of `since` to the end of `today`.
    pub async fn read(store: &Store, since: Date, today: Date) -> Result<Self, StoreError> {
        let from = start_of(since);
        let (evidence, traffic) = read_observations(store, from).await?;
        let discovered = store
            .discovery_traffic(from, start_of(today.add_days(1)))
            .await?;
        Ok(StoreObservations {
            evidence,
            traffic,
            discovered,
            since,
        })
    }

    /// Puts the observations into `options` for `estate`: evidence, gateway traffic, and
    /// discovery as traffic per application (contradictions; a bypass of the gateway for an
    /// application that goes through it) and services no application covers.
    pub fn apply(self, estate: &CheckedEstate, options: &mut AssessOptions) {
        options.observed = self.evidence;
        options.traffic = self.traffic;
        options.observed_since = Some(self.since);
        let through_gateway = estate
            .applications()
            .iter()
            .filter(|a| a.through_gateway)
            .map(|a| a.id.clone())
            .collect();
        let (traffic, unlisted) = from_discovery(&self.discovered, &through_gateway);
        options.traffic.extend(traffic);
        options.unlisted = unlisted;
    }
}

/// `n noun` with the noun's plural when `n` is not 1.
fn count(n: i64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn discovery_source(t: &DiscoveryTraffic) -> String {
    let mut files = t.source.clone();
    if files.chars().count() > 200 {
        files = files.chars().take(199).collect::<String>() + "…";
    }
    format!("discovery run {} ({files})", t.run)
}

/// Converts [`demarc_store::Store::discovery_traffic`] rows into the assessment's inputs.
///
/// - Rows classified to an application become [`ObservedTraffic`] of kind `discovery`, one
///   per run and application, counting only requests the proxy did not block (a blocked
///   request confirms a "blocked" claim; it does not contradict it). Rows whose every request
///   was blocked are left out.
/// - `gateway_apps` are the applications the estate says are reached through the demarc
///   gateway (`through_gateway: true`); their discovery traffic went straight to the provider's endpoints (discovery
///   only matches provider hosts), and its detail says so: the assessment reports it as a
///   gateway bypass. (The gateway's own egress to the provider is discovery traffic too
///   when the proxy log sees it; nothing here filters it out yet.)
/// - Rows with no application (status `shadow` or `other-tenant`) become [`UnlistedService`]s,
///   one per run, service and tenant.
pub fn from_discovery(
    traffic: &[DiscoveryTraffic],
    gateway_apps: &BTreeSet<String>,
) -> (Vec<ObservedTraffic>, Vec<UnlistedService>) {
    // (run, application) -> (traffic, services seen)
    // (run, application) -> (traffic, services seen, identities, blocked requests)
    type Seen = (ObservedTraffic, BTreeSet<String>, i64, i64);
    let mut per_app: BTreeMap<(i64, String), Seen> = BTreeMap::new();
    let mut unlisted: BTreeMap<(i64, String, Option<String>), UnlistedService> = BTreeMap::new();
    for t in traffic {
        let requests = u64::try_from(t.requests).unwrap_or(0);
        let blocked = u64::try_from(t.blocked).unwrap_or(0).min(requests);
        match &t.application {
            Some(app) => {
                let allowed = requests - blocked;
                if allowed == 0 {
                    continue;
                }
                let key = (t.run, app.clone());
                let entry = per_app.entry(key).or_insert_with(|| {
                    (
                        ObservedTraffic {
                            application: app.clone(),
                            kind: ObservationKind::Discovery,
                            source: discovery_source(t),
                            requests: 0,
                            first_seen: day_of(t.first_seen),
                            last_seen: day_of(t.last_seen),
                            detail: None,
                        },
                        BTreeSet::new(),
                        0,
                        0,
                    )
                });
                entry.0.requests += allowed;
                entry.0.first_seen = entry.0.first_seen.min(day_of(t.first_seen));
                entry.0.last_seen = entry.0.last_seen.max(day_of(t.last_seen));
                entry.1.insert(match &t.tenant {
                    Some(tenant) => format!("{} at {tenant}", t.service),
                    None => t.service.clone(),
                });
                entry.2 += t.users;
                entry.3 += t.blocked;
            }
            None => {
                let key = (t.run, t.service.clone(), t.tenant.clone());
                let entry = unlisted.entry(key).or_insert_with(|| UnlistedService {
                    service: t.service.clone(),
                    tenant: t.tenant.clone(),
                    status: t.status.clone(),
                    source: discovery_source(t),
                    requests: 0,
                    blocked: 0,
                    identities: 0,
                    first_seen: day_of(t.first_seen),
                    last_seen: day_of(t.last_seen),
                });
                entry.requests += requests;
                entry.blocked += blocked;
                entry.identities += u64::try_from(t.users).unwrap_or(0);
                entry.first_seen = entry.first_seen.min(day_of(t.first_seen));
                entry.last_seen = entry.last_seen.max(day_of(t.last_seen));
            }
        }
    }
    let observed = per_app
        .into_values()
        .map(|(mut o, services, users, blocked)| {
            let services: Vec<String> = services.into_iter().collect();
            let mut detail = format!(
                "{}; {}",
                services.join(", "),
                count(users, "identity", "identities")
            );
            if blocked > 0 {
                detail.push_str(&format!(
                    "; {} more blocked by the proxy",
                    count(blocked, "request", "requests")
                ));
            }
            if gateway_apps.contains(&o.application) {
                detail.push_str("; straight to the provider's endpoints, not through the gateway");
            }
            o.detail = Some(detail);
            o
        })
        .collect();
    (observed, unlisted.into_values().collect())
}

/// Evidence files larger than this are not read (an evidence file is a report, not a dataset).
const MAX_EVIDENCE_FILE: u64 = 256 * 1024 * 1024;

/// Check every evidence file the estate names, once per distinct path.
pub fn check_evidence_files(
    estate_path: &Path,
    estate: &CheckedEstate,
) -> BTreeMap<String, FileCheck> {
    let base = estate_path.parent().unwrap_or(Path::new("."));
    let mut out = BTreeMap::new();
    for e in estate.applications().iter().flat_map(|a| &a.evidence) {
        let Some(file) = &e.file else { continue };
        let recorded = e.sha256.as_deref().map(str::to_ascii_lowercase);
        let result = match sha256_of(&base.join(file)) {
            Err(reason) => FileCheck::Missing { reason },
            Ok(actual) => match recorded {
                None => FileCheck::Unpinned,
                Some(r) if r == actual => FileCheck::Verified,
                Some(_) => FileCheck::Mismatch { actual },
            },
        };
        // Two entries naming one path with different hashes: keep the worse verdict.
        match out.get(file) {
            Some(FileCheck::Mismatch { .. } | FileCheck::Missing { .. }) => {}
            _ => {
                out.insert(file.clone(), result);
            }
        }
    }
    out
}

fn sha256_of(path: &Path) -> Result<String, String> {
    let meta = std::fs::metadata(path).map_err(|e| describe(&e))?;
    if meta.is_dir() {
        return Err("it is a directory".into());
    }
    if meta.len() > MAX_EVIDENCE_FILE {
        return Err(format!(
            "it is {} bytes, over the {MAX_EVIDENCE_FILE}-byte limit",
            meta.len()
        ));
    }
    let mut file = std::fs::File::open(path).map_err(|e| describe(&e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf).map_err(|e| describe(&e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

fn describe(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

/// What `--record` keeps of one application: one result per duty.
pub fn duty_results(app: &ApplicationAssessment) -> Vec<demarc_store::DutyResult> {
    app.duties
        .iter()
        .map(|d| demarc_store::DutyResult {
            application: app.id.clone(),
            area: d.area.clone(),
            component: Some(d.component.clone()),
            accountable: d.accountable.label(),
            owner_team: d.owner_team.clone(),
            control_status: d.control.as_str().to_string(),
            evidence_status: d.evidence.as_str().to_string(),
            covered: d.covered,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traffic_is_summed_over_chains_and_needs_answers() {
        let t = |app: &str, chain: &str, served: u64, day: Option<i64>| demarc_store::Traffic {
            application: app.into(),
            chain: chain.into(),
            requests: served + 1,
            served,
            blocked: 1,
            refused: 0,
            failed: 0,
            first_at: OffsetDateTime::UNIX_EPOCH,
            last_at: OffsetDateTime::UNIX_EPOCH,
            first_served_day: day,
            last_served_day: day,
        };
        let out = to_traffic(vec![
            t("a", "gw-1", 3, Some(10)),
            t("a", "gw-2", 2, Some(12)),
            t("refused-only", "gw-1", 0, None),
        ]);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].requests, 5);
        assert_eq!(out[0].first_seen, Date::from_days_since_epoch(10));
        assert_eq!(out[0].last_seen, Date::from_days_since_epoch(12));
        assert_eq!(out[0].source, "gateway audit chains `gw-1` and 1 more");
        assert_eq!(
            out[0].detail.as_deref(),
            Some("5 requests answered of 7 received; 2 blocked by policy, 0 refused, 0 failed")
        );
    }

    fn row(
        app: Option<&str>,
        service: &str,
        status: &str,
        requests: i64,
        blocked: i64,
    ) -> DiscoveryTraffic {
        let at = OffsetDateTime::from_unix_timestamp(1_700_000_000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        DiscoveryTraffic {
            run: 3,
            source: "access.log".to_owned(),
            application: app.map(str::to_owned),
            service: service.to_owned(),
            tenant: None,
            status: status.to_owned(),
            requests,
            blocked,
            allowed: requests - blocked,
            users: 2,
            first_seen: at,
            last_seen: at,
        }
    }

    #[test]
    fn allowed_traffic_per_application_and_unlisted_services() {
        let rows = [
            row(Some("consumer-chatgpt"), "chatgpt", "unsanctioned", 5, 2),
            row(Some("fully-blocked"), "deepseek", "unsanctioned", 4, 4),
            row(
                Some("colleague-assistant"),
                "azure-openai",
                "sanctioned",
                3,
                0,
            ),
            row(None, "claude", "shadow", 7, 0),
        ];
        let gateway: BTreeSet<String> = ["colleague-assistant".to_owned()].into();
        let (observed, unlisted) = from_discovery(&rows, &gateway);
        assert_eq!(observed.len(), 2, "{observed:?}");
        let chatgpt = observed
            .iter()
            .find(|o| o.application == "consumer-chatgpt")
            .unwrap();
        assert_eq!(chatgpt.requests, 3);
        assert_eq!(chatgpt.kind, ObservationKind::Discovery);
        assert_eq!(chatgpt.source, "discovery run 3 (access.log)");
        assert!(
            chatgpt
                .detail
                .as_deref()
                .unwrap()
                .contains("2 requests more blocked")
        );
        let bypass = observed
            .iter()
            .find(|o| o.application == "colleague-assistant")
            .unwrap();
        assert!(
            bypass
                .detail
                .as_deref()
                .unwrap()
                .contains("not through the gateway")
        );
        assert_eq!(unlisted.len(), 1);
        assert_eq!(
            (unlisted[0].service.as_str(), unlisted[0].requests),
            ("claude", 7)
        );
    }
}
