//! Classified discovery findings and the traffic `assess` reads from them: the same suite
//! against a real SQLite file and a real PostgreSQL database.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use demarc_store::time::{Duration, OffsetDateTime};
use demarc_store::{ClassifiedFinding, DiscoveryFinding, FindingClass, FindingOrder, Store};

use common::Target;

#[allow(clippy::too_many_arguments)]
fn finding(
    service: &str,
    user: &str,
    requests: i64,
    blocked: i64,
    last: OffsetDateTime,
    apps: &[&str],
    status: &str,
    tenant: Option<&str>,
) -> ClassifiedFinding {
    ClassifiedFinding {
        finding: DiscoveryFinding {
            service: service.into(),
            user: user.into(),
            requests,
            bytes_sent: 0,
            bytes_received: 10,
            first_seen: last - Duration::hours(1),
            last_seen: last,
        },
        class: FindingClass {
            applications: apps.iter().map(|a| a.to_string()).collect(),
            status: status.into(),
            tenant: tenant.map(str::to_owned),
            user_kind: "user".into(),
            host_kinds: "api ui".into(),
            blocked,
            allowed: requests - blocked,
            use_requests: Some(requests),
        },
    }
}

/// `f` from an identity that reached the service only incidentally (no ui, api or auth hit).
fn incidental(mut f: ClassifiedFinding) -> ClassifiedFinding {
    f.class.use_requests = Some(0);
    f
}

async fn classified_findings_and_traffic_in_a_window(t: &Target) {
    let store = Store::open(t.url()).await.unwrap();
    let now = OffsetDateTime::from_unix_timestamp(1_750_000_000).unwrap();
    let recent = now - Duration::days(2);
    let findings = vec![
        finding(
            "chatgpt",
            "alice",
            5,
            2,
            recent,
            &["consumer-chatgpt"],
            "unsanctioned",
            None,
        ),
        finding(
            "chatgpt",
            "bob",
            1,
            0,
            recent,
            &["consumer-chatgpt"],
            "unsanctioned",
            None,
        ),
        finding("claude", "carol", 7, 0, recent, &[], "shadow", None),
        finding(
            "azure-openai",
            "carol",
            3,
            0,
            recent,
            &[],
            "other-tenant",
            Some("hobby.openai.azure.com"),
        ),
        // Dan only loaded a page's ChatGPT widget: traffic, but no user of it.
        incidental(finding(
            "chatgpt",
            "dan",
            4,
            0,
            recent,
            &["consumer-chatgpt"],
            "unsanctioned",
            None,
        )),
        // A service only ever reached incidentally is no traffic for the assessment.
        incidental(finding(
            "gemini",
            "erin",
            2,
            0,
            recent,
            &[],
            "incidental",
            None,
        )),
        finding(
            "chatgpt",
            "old",
            9,
            0,
            now - Duration::days(100),
            &["consumer-chatgpt"],
            "unsanctioned",
            None,
        ),
    ];
    let run = store
        .record_discovery_classified("access.log", now, &findings)
        .await
        .unwrap();
    // The classification comes back as written.
    let back = store.discovery_findings_classified(run).await.unwrap();
    assert_eq!(back.len(), 7);
    assert!(back.contains(&findings[3]));
    assert!(back.contains(&findings[4]), "use_requests comes back");
    // An unclassified run (the old API) is not traffic for the assessment.
    store
        .record_discovery("zeek ssl.log", now, &[findings[0].finding.clone()])
        .await
        .unwrap();
    let traffic = store
        .discovery_traffic(now - Duration::days(30), now)
        .await
        .unwrap();
    assert_eq!(traffic.len(), 3, "{traffic:?}");
    let chatgpt = traffic
        .iter()
        .find(|t| t.application.as_deref() == Some("consumer-chatgpt"))
        .unwrap();
    assert_eq!(
        (chatgpt.requests, chatgpt.blocked, chatgpt.users),
        (10, 2, 2),
        "dan's requests count, dan is no user"
    );
    assert_eq!(chatgpt.run, run);
    assert_eq!(chatgpt.source, "access.log");
    let other = traffic.iter().find(|t| t.status == "other-tenant").unwrap();
    assert_eq!(other.application, None);
    assert_eq!(other.tenant.as_deref(), Some("hobby.openai.azure.com"));
    assert!(
        traffic
            .iter()
            .any(|t| t.service == "claude" && t.application.is_none())
    );
    // Outside the window: nothing.
    assert!(
        store
            .discovery_traffic(now - Duration::days(200), now - Duration::days(150))
            .await
            .unwrap()
            .is_empty()
    );
}
both!(classified_findings_and_traffic_in_a_window);

async fn findings_are_read_a_page_at_a_time(t: &Target) {
    let store = Store::open(t.url()).await.unwrap();
    let now = OffsetDateTime::now_utc();
    let findings = vec![
        finding(
            "copilot",
            "ann",
            50,
            0,
            now,
            &["copilot"],
            "sanctioned",
            None,
        ),
        finding(
            "chatgpt",
            "bob",
            5,
            0,
            now,
            &["chatgpt"],
            "unsanctioned",
            None,
        ),
        finding("claude", "cat", 9, 0, now, &[], "shadow", None),
        finding(
            "azure-openai",
            "dan",
            7,
            0,
            now,
            &[],
            "other-tenant",
            Some("x"),
        ),
        finding(
            "copilot",
            "eve",
            1,
            0,
            now,
            &["copilot"],
            "sanctioned",
            None,
        ),
    ];
    let run = store
        .record_discovery_classified("proxy.log", now, &findings)
        .await
        .unwrap();
    let users = |page: &[ClassifiedFinding]| -> Vec<String> {
        page.iter().map(|f| f.finding.user.clone()).collect()
    };
    // Risk first: shadow, unsanctioned and other-tenant use by requests, then the rest.
    let (page, total) = store
        .discovery_findings_page(run, FindingOrder::RiskFirst, 3, 0)
        .await
        .unwrap();
    assert_eq!(total, 5);
    assert_eq!(users(&page), ["cat", "dan", "bob"]);
    let (page, _) = store
        .discovery_findings_page(run, FindingOrder::RiskFirst, 3, 3)
        .await
        .unwrap();
    assert_eq!(users(&page), ["ann", "eve"]);
    // By service, pages put together are the whole run, as the unpaged read gives it.
    let mut all = Vec::new();
    for offset in [0, 2, 4] {
        let (page, _) = store
            .discovery_findings_page(run, FindingOrder::ByService, 2, offset)
            .await
            .unwrap();
        all.extend(page);
    }
    assert_eq!(all, store.discovery_findings_classified(run).await.unwrap());
}
both!(findings_are_read_a_page_at_a_time);

async fn a_log_is_recorded_once_whatever_its_name_or_sensor(t: &Target) {
    use demarc_store::{RecordedInput, RunSource, StoreError};
    let store = Store::open(t.url()).await.unwrap();
    let now = OffsetDateTime::from_unix_timestamp(1_750_000_000).unwrap();
    let input = |name: &str, byte: u8| RecordedInput {
        name: name.into(),
        sha256: [byte; 32],
        bytes: 100,
    };
    let from = |sensor: &str, inputs: Vec<RecordedInput>| RunSource {
        source: inputs
            .iter()
            .map(|i| i.name.as_str())
            .collect::<Vec<_>>()
            .join(" "),
        sensor: Some(sensor.into()),
        inputs,
    };
    let findings = vec![finding("claude", "carol", 7, 0, now, &[], "shadow", None)];
    let first = store
        .record_discovery_from(
            &from("paris", vec![input("a.log", 1), input("b.log", 2)]),
            now,
            &findings,
        )
        .await
        .unwrap();
    // The same content again (another name, another sensor): refused, nothing stored.
    let again = store
        .record_discovery_from(
            &from("lyon", vec![input("c.log", 3), input("b-copy.log", 2)]),
            now,
            &findings,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(again, StoreError::AlreadyRecorded { .. }),
        "{again}"
    );
    let message = again.to_string();
    assert!(
        message.contains("b-copy.log")
            && message.contains(&format!("`b.log` in run {first} from sensor `paris`")),
        "{message}"
    );
    // The same content twice in one run.
    let twice = store
        .record_discovery_from(
            &from("lyon", vec![input("c.log", 3), input("d.log", 3)]),
            now,
            &findings,
        )
        .await
        .unwrap_err();
    assert!(twice.to_string().contains("same run"), "{twice}");
    let runs = store.discovery_runs().await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].sensor.as_deref(), Some("paris"));
    // New content from another sensor is a run of its own.
    store
        .record_discovery_from(&from("lyon", vec![input("c.log", 3)]), now, &findings)
        .await
        .unwrap();
    assert_eq!(store.discovery_runs().await.unwrap().len(), 2);
}
both!(a_log_is_recorded_once_whatever_its_name_or_sensor);
