//! What recorded discovery runs saw, turned into what the assessment reads: traffic per
//! estate application (for `contradicted`: unsanctioned or blocked applications in use, and
//! straight traffic to the provider endpoints of an application that goes through the
//! gateway) and GenAI services no application covers (`unlisted-service`).

use std::collections::{BTreeMap, BTreeSet};

use demarc_model::Date;
use demarc_model::ObservationKind;
use demarc_model::assess::{ObservedTraffic, UnlistedService};
use demarc_store::DiscoveryTraffic;
use demarc_store::time::OffsetDateTime;

fn day(t: OffsetDateTime) -> Date {
    Date::from_days_since_epoch(t.unix_timestamp().div_euclid(86_400))
}

fn source(t: &DiscoveryTraffic) -> String {
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
                            source: source(t),
                            requests: 0,
                            first_seen: day(t.first_seen),
                            last_seen: day(t.last_seen),
                            detail: None,
                        },
                        BTreeSet::new(),
                        0,
                        0,
                    )
                });
                entry.0.requests += allowed;
                entry.0.first_seen = entry.0.first_seen.min(day(t.first_seen));
                entry.0.last_seen = entry.0.last_seen.max(day(t.last_seen));
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
                    source: source(t),
                    requests: 0,
                    blocked: 0,
                    identities: 0,
                    first_seen: day(t.first_seen),
                    last_seen: day(t.last_seen),
                });
                entry.requests += requests;
                entry.blocked += blocked;
                entry.identities += u64::try_from(t.users).unwrap_or(0);
                entry.first_seen = entry.first_seen.min(day(t.first_seen));
                entry.last_seen = entry.last_seen.max(day(t.last_seen));
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
                crate::render::count(users, "identity")
            );
            if blocked > 0 {
                detail.push_str(&format!(
                    "; {} more blocked by the proxy",
                    crate::render::count(blocked, "request")
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

#[cfg(test)]
mod tests {
    use super::*;

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
