//! The store's behaviour, the same suite against a real SQLite file and a real
//! PostgreSQL database.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use demarc_store::audit::BreakKind;
use demarc_store::time::{Duration, OffsetDateTime};
use demarc_store::{
    DiscoveryFinding, DutyResult, EstateRecord, Evidence, NewAuditEvent, SCHEMA_VERSION, Store,
    StoreError,
};

use common::Target;

fn events(n: usize, at: OffsetDateTime) -> Vec<NewAuditEvent> {
    (0..n)
        .map(|i| NewAuditEvent {
            at,
            payload: format!(r#"{{"request":{i},"action":"allow"}}"#),
        })
        .collect()
}

fn duty(app: &str, area: &str, covered: bool) -> DutyResult {
    DutyResult {
        application: app.into(),
        area: area.into(),
        component: Some("llm".into()),
        accountable: "team:platform".into(),
        owner_team: Some("platform".into()),
        control_status: "implemented".into(),
        evidence_status: if covered {
            "current".into()
        } else {
            "missing".into()
        },
        covered,
    }
}

async fn migrations_are_idempotent(t: &Target) {
    let store = Store::open(t.url()).await.unwrap();
    assert_eq!(
        store.migrate().await.unwrap(),
        SCHEMA_VERSION,
        "second migrate is a no-op"
    );
    store.close().await;
    // Reopening applies nothing and keeps the data.
    let store = Store::open(t.url()).await.unwrap();
    store
        .append_audit_batch("a", &events(3, OffsetDateTime::now_utc()))
        .await
        .unwrap();
    store.close().await;
    let store = Store::open(t.url()).await.unwrap();
    let status = store.status().await.unwrap();
    assert_eq!(status.schema_version, SCHEMA_VERSION);
    assert_eq!(
        status.backend.to_string(),
        if t.is_postgres() {
            "postgres"
        } else {
            "sqlite"
        }
    );
    let count = |name: &str| status.counts.iter().find(|(t, _)| t == name).unwrap().1;
    assert_eq!(count("audit_events"), 3);
    assert_eq!(count("audit_chains"), 1);
    assert_eq!(count("estates"), 0);
}
both!(migrations_are_idempotent);

async fn concurrent_first_opens_migrate_once(t: &Target) {
    let opens: Vec<_> = (0..4)
        .map(|_| {
            let url = t.url().to_owned();
            async move { Store::open(&url).await.map(|_| ()) }
        })
        .collect();
    for result in futures_join(opens).await {
        result.unwrap();
    }
    let store = Store::open(t.url()).await.unwrap();
    assert_eq!(store.status().await.unwrap().schema_version, SCHEMA_VERSION);
}
both!(concurrent_first_opens_migrate_once);

async fn futures_join<F: std::future::Future + Send + 'static>(futures: Vec<F>) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

async fn newer_schema_is_refused(t: &Target) {
    Store::open(t.url()).await.unwrap().close().await;
    t.raw("UPDATE demarc_meta SET value = '99' WHERE key = 'schema_version'")
        .await;
    let err = Store::open(t.url()).await.err().unwrap();
    assert!(
        matches!(err, StoreError::SchemaTooNew { found: 99, .. }),
        "{err}"
    );
    assert!(err.is_unusable_store());
    assert!(
        err.to_string().contains("newer than this demarc supports"),
        "{err}"
    );
}
both!(newer_schema_is_refused);

async fn foreign_database_is_refused(t: &Target) {
    t.raw("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
        .await;
    let err = Store::open(t.url()).await.err().unwrap();
    assert!(matches!(err, StoreError::NotAStore { .. }), "{err}");
    assert!(err.to_string().contains("`customers`"), "{err}");
}
both!(foreign_database_is_refused);

async fn assessment_history(t: &Target) {
    let store = Store::open(t.url()).await.unwrap();
    let estate = EstateRecord::from_content("acme", b"applications: []\n");
    let t0 = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
    let first = store
        .record_assessment(
            &estate,
            t0,
            &[
                duty("chat", "prompt-filtering", false),
                duty("chat", "audit", true),
                duty("search", "audit", false),
            ],
        )
        .await
        .unwrap();
    let second = store
        .record_assessment(
            &estate,
            t0 + Duration::days(7),
            &[
                duty("chat", "prompt-filtering", true),
                duty("chat", "audit", true),
                duty("search", "audit", false),
            ],
        )
        .await
        .unwrap();
    assert!(second > first);
    let all = store.history(None).await.unwrap();
    let summary: Vec<_> = all
        .iter()
        .map(|p| (p.run, p.application.as_str(), p.covered, p.total))
        .collect();
    assert_eq!(
        summary,
        vec![
            (first, "chat", 1, 2),
            (first, "search", 0, 1),
            (second, "chat", 2, 2),
            (second, "search", 0, 1)
        ]
    );
    assert_eq!(all[0].at, t0);
    assert_eq!(all[0].estate, "acme");
    let chat = store.history(Some("chat")).await.unwrap();
    assert_eq!(chat.len(), 2);
    assert!(chat.iter().all(|p| p.application == "chat"));
    let results = store.duty_results(first).await.unwrap();
    assert_eq!(results[0], duty("chat", "audit", true));
    assert_eq!(results.len(), 3);
    // A run larger than one multi-row insert.
    let many: Vec<_> = (0..2100)
        .map(|i| duty("big", &format!("area-{i:04}"), i % 3 == 0))
        .collect();
    let big = store
        .record_assessment(&estate, t0 + Duration::days(8), &many)
        .await
        .unwrap();
    assert_eq!(store.duty_results(big).await.unwrap(), many);
    let big_history = store.history(Some("big")).await.unwrap();
    assert_eq!((big_history[0].covered, big_history[0].total), (700, 2100));
    // The same estate content is stored once.
    let status = store.status().await.unwrap();
    assert_eq!(
        status
            .counts
            .iter()
            .find(|(t, _)| t == "estates")
            .unwrap()
            .1,
        1
    );
    // Bad input is refused before anything is written.
    let mut bad = duty("chat", "", true);
    bad.area.clear();
    assert!(matches!(
        store.record_assessment(&estate, t0, &[bad]).await,
        Err(StoreError::Invalid { .. })
    ));
    assert_eq!(store.history(None).await.unwrap().len(), 5);
}
both!(assessment_history);

async fn discovery_round_trip_and_retention(t: &Target) {
    let store = Store::open(t.url()).await.unwrap();
    let now = OffsetDateTime::from_unix_timestamp(1_750_000_000).unwrap();
    let finding = |service: &str, last: OffsetDateTime| DiscoveryFinding {
        service: service.into(),
        user: "alice@example.com".into(),
        requests: 12,
        bytes_sent: 3400,
        bytes_received: 120_000,
        first_seen: last - Duration::hours(3),
        last_seen: last,
    };
    let old = finding("chatgpt", now - Duration::days(100));
    let recent = finding("claude", now - Duration::days(1));
    let run = store
        .record_discovery("squid access.log", now, &[old.clone(), recent.clone()])
        .await
        .unwrap();
    assert_eq!(
        store.discovery_findings(run).await.unwrap(),
        vec![old, recent.clone()]
    );
    let removed = store
        .prune_discovery_findings(now - Duration::days(90))
        .await
        .unwrap();
    assert_eq!(removed, 1);
    assert_eq!(store.discovery_findings(run).await.unwrap(), vec![recent]);
    // A run larger than one multi-row insert.
    let many: Vec<_> = (0..2500)
        .map(|i| finding(&format!("svc-{i:04}"), now))
        .collect();
    let big = store
        .record_discovery("zeek conn.log", now, &many)
        .await
        .unwrap();
    assert_eq!(store.discovery_findings(big).await.unwrap(), many);
    let runs = store.discovery_runs().await.unwrap();
    assert_eq!((runs[0].id, runs[0].findings), (big, 2500));
    let runs = &runs[1..];
    assert_eq!(
        (runs[0].id, runs[0].findings, runs[0].source.as_str()),
        (run, 1, "squid access.log")
    );
}
both!(discovery_round_trip_and_retention);

fn ev(app: &str, area: &str, kind: &str, at: OffsetDateTime, summary: &str) -> Evidence {
    Evidence {
        application: app.into(),
        area: area.into(),
        kind: kind.into(),
        source: "gateway".into(),
        observed_at: at,
        summary: summary.into(),
        expires_at: Some(at + Duration::days(30)),
    }
}

async fn latest_evidence_per_application_area_and_kind(t: &Target) {
    let store = Store::open(t.url()).await.unwrap();
    let t0 = OffsetDateTime::from_unix_timestamp(1_750_000_000).unwrap();
    let scan = "gateway-input-scan";
    store
        .put_evidence(&ev("chat", "filtering", scan, t0, "old"))
        .await
        .unwrap();
    store
        .put_evidence(&ev(
            "chat",
            "filtering",
            scan,
            t0 + Duration::days(1),
            "new",
        ))
        .await
        .unwrap();
    // An older observation written late does not replace the newer one.
    store
        .put_evidence(&ev("chat", "filtering", scan, t0, "late"))
        .await
        .unwrap();
    store
        .put_evidence_batch(&[
            ev("chat", "filtering", "gateway-output-scan", t0, "output"),
            ev("chat", "audit", "gateway-traffic", t0, "audit on"),
            ev("search", "audit", "gateway-traffic", t0, "search audit"),
        ])
        .await
        .unwrap();
    let chat = store.latest_evidence(Some("chat")).await.unwrap();
    let got: Vec<_> = chat
        .iter()
        .map(|e| (e.area.as_str(), e.kind.as_str(), e.summary.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("audit", "gateway-traffic", "audit on"),
            ("filtering", "gateway-input-scan", "new"),
            ("filtering", "gateway-output-scan", "output"),
        ]
    );
    assert_eq!(store.latest_evidence(None).await.unwrap().len(), 4);
    assert!(chat[1].is_current(t0 + Duration::days(2)));
    assert!(!chat[1].is_current(t0 + Duration::days(40)));
    // The observation window: only what was observed from `since` on.
    let recent = store
        .observed_evidence(t0 + Duration::hours(12))
        .await
        .unwrap();
    assert_eq!(recent.len(), 1);
    assert_eq!(recent[0].summary, "new");
    // Two days of the input scan: one row each, the first day counted twice.
    let days = store
        .evidence_days(Some("chat"), t0 - Duration::days(1))
        .await
        .unwrap();
    let scan_days: Vec<_> = days
        .iter()
        .filter(|d| d.kind == scan)
        .map(|d| (d.observations, d.summary.as_str()))
        .collect();
    // Among equal times the last written wins.
    assert_eq!(scan_days, vec![(2, "late"), (1, "new")]);
    let mut backwards = ev("chat", "audit", "gateway-traffic", t0, "x");
    backwards.expires_at = Some(t0 - Duration::days(1));
    assert!(matches!(
        store.put_evidence(&backwards).await,
        Err(StoreError::Invalid { .. })
    ));
    let mut no_kind = ev("chat", "audit", "", t0, "x");
    no_kind.kind.clear();
    assert!(matches!(
        store.put_evidence(&no_kind).await,
        Err(StoreError::Invalid { .. })
    ));
}
both!(latest_evidence_per_application_area_and_kind);

/// A gateway writing its observations once a minute for a week: the store keeps one latest
/// row per application × area × kind and one row per day, and retention trims the days.
async fn evidence_stays_bounded_over_a_week_of_minutely_writes(t: &Target) {
    let store = Store::open(t.url()).await.unwrap();
    let start = OffsetDateTime::from_unix_timestamp(1_767_225_600).unwrap(); // 2026-01-01
    let keys = [
        ("chat", "prompt-filtering", "gateway-input-scan"),
        ("chat", "prompt-filtering", "gateway-output-scan"),
        ("chat", "usage-governance", "gateway-traffic"),
        ("search", "usage-governance", "gateway-traffic"),
    ];
    let minutes = 7 * 24 * 60;
    for minute in 0..minutes {
        let at = start + Duration::minutes(minute);
        let batch: Vec<Evidence> = keys
            .iter()
            .map(|(app, area, kind)| ev(app, area, kind, at, &format!("{minute} requests")))
            .collect();
        store.put_evidence_batch(&batch).await.unwrap();
    }
    let status = store.status().await.unwrap();
    let count = |name: &str| status.counts.iter().find(|(t, _)| t == name).unwrap().1;
    assert_eq!(count("evidence"), 4, "one latest row per key");
    assert_eq!(count("evidence_days"), 4 * 7, "one row per key and day");
    let latest = store.latest_evidence(Some("search")).await.unwrap();
    assert_eq!(latest[0].summary, format!("{} requests", minutes - 1));
    let days = store.evidence_days(Some("search"), start).await.unwrap();
    assert!(days.iter().all(|d| d.observations == 1440), "{days:?}");
    assert_eq!(days[6].summary, format!("{} requests", minutes - 1));
    // Retention of three days, applied at the end of the week.
    let end = start + Duration::days(7);
    let report = store
        .prune(None, None, Some(end - Duration::days(3)))
        .await
        .unwrap();
    assert_eq!(report.evidence_removed, 4 * 4);
    let status = store.status().await.unwrap();
    let count = |name: &str| status.counts.iter().find(|(t, _)| t == name).unwrap().1;
    assert_eq!(count("evidence_days"), 4 * 3);
    assert_eq!(count("evidence"), 4, "the latest rows are still current");
    // Once they have expired and fall out of retention, they go too.
    store
        .prune_evidence(end + Duration::days(40))
        .await
        .unwrap();
    assert_eq!(store.latest_evidence(None).await.unwrap().len(), 0);
}
both!(evidence_stays_bounded_over_a_week_of_minutely_writes);

fn gateway_event(
    app: Option<&str>,
    status: u16,
    error: Option<&str>,
    at: OffsetDateTime,
) -> NewAuditEvent {
    NewAuditEvent {
        at,
        payload: serde_json::json!({
            "time": "x", "request_id": "r", "application": app, "status": status, "error": error,
            "latency_ms": 12.5,
            "verdicts": {"input": "allow", "redactions": if status == 200 { 2 } else { 0 }}
        })
        .to_string(),
    }
}

async fn gateway_traffic_is_summarised_per_day(t: &Target) {
    let store = Store::open(t.url()).await.unwrap();
    let now = OffsetDateTime::now_utc();
    let old = now - Duration::days(40);
    let day = |t: OffsetDateTime| t.unix_timestamp().div_euclid(86_400);
    store
        .append_audit_batch(
            "gw-1",
            &[
                gateway_event(Some("chat"), 200, None, old),
                gateway_event(Some("chat"), 200, None, now - Duration::days(2)),
                gateway_event(Some("chat"), 400, Some("input_blocked"), now),
                gateway_event(Some("chat"), 200, Some("output_blocked"), now),
                gateway_event(Some("chat"), 429, Some("rate_limit_exceeded"), now),
                gateway_event(Some("chat"), 502, Some("upstream_error"), now),
                gateway_event(Some("shadow"), 403, Some("application_not_served"), now),
                gateway_event(None, 401, Some("invalid_api_key"), now),
            ],
        )
        .await
        .unwrap();
    store
        .append_audit_batch("gw-2", &[gateway_event(Some("chat"), 200, None, now)])
        .await
        .unwrap();
    let traffic = store
        .gateway_traffic(now - Duration::days(30))
        .await
        .unwrap();
    let got: Vec<_> = traffic
        .iter()
        .map(|t| {
            (
                t.application.as_str(),
                t.chain.as_str(),
                [t.requests, t.served, t.blocked, t.refused, t.failed],
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("chat", "gw-1", [5, 1, 2, 1, 1]),
            ("chat", "gw-2", [1, 1, 0, 0, 0]),
            ("shadow", "gw-1", [1, 0, 0, 1, 0]),
        ]
    );
    let chat = &traffic[0];
    assert_eq!(chat.first_served_day, Some(day(now - Duration::days(2))));
    assert_eq!(chat.last_served_day, Some(day(now - Duration::days(2))));
    assert_eq!(traffic[2].first_served_day, None);
    assert_eq!(
        chat.first_at.unix_timestamp(),
        (now - Duration::days(2)).unix_timestamp()
    );
    // Per day, summed over chains: what the dashboard charts.
    let days: Vec<_> = store
        .gateway_traffic_by_day(now - Duration::days(30))
        .await
        .unwrap()
        .into_iter()
        .map(|d| {
            (
                d.application,
                d.day,
                [d.requests, d.served, d.blocked, d.redactions],
                d.mean_latency_ms,
            )
        })
        .collect();
    assert_eq!(
        days,
        vec![
            (
                "chat".to_owned(),
                day(now - Duration::days(2)),
                [1, 1, 0, 2],
                Some(12.5)
            ),
            ("chat".to_owned(), day(now), [5, 1, 2, 4], Some(12.5)),
            ("shadow".to_owned(), day(now), [1, 0, 0, 0], Some(12.5)),
        ]
    );
    // The 40-day-old request is in a wider window; pruning the audit trail removes it.
    let all = store.gateway_traffic(old).await.unwrap();
    assert_eq!(all[0].requests, 6);
    let report = store
        .prune(Some(now - Duration::days(30)), None, None)
        .await
        .unwrap();
    assert_eq!(report.traffic_days_removed, 1);
    assert_eq!(store.gateway_traffic(old).await.unwrap()[0].requests, 5);
}
both!(gateway_traffic_is_summarised_per_day);

/// A schema-1 store with evidence and audit events: migrating keeps the evidence's latest
/// and daily rows under the kind `unclassified` and backfills the traffic summary.
async fn schema_1_store_migrates(t: &Target) {
    let v1 = if t.is_postgres() {
        demarc_store::schema::POSTGRES[0]
    } else {
        demarc_store::schema::SQLITE[0]
    };
    let mut sql = String::from(
        "CREATE TABLE demarc_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
         INSERT INTO demarc_meta VALUES ('schema_version', '1');\n",
    );
    for statement in v1 {
        sql.push_str(statement);
        sql.push_str(";\n");
    }
    let day0 = 1_750_000_000_000_i64 - 1_750_000_000_000_i64 % 86_400_000;
    for (i, (app, area, at)) in [
        ("chat", "prompt-filtering", day0 + 1000),
        ("chat", "prompt-filtering", day0 + 2000),
        ("chat", "prompt-filtering", day0 + 86_400_000 + 5),
        ("chat", "application-security", day0 + 1000),
    ]
    .iter()
    .enumerate()
    {
        sql.push_str(&format!(
            "INSERT INTO evidence (application, area, source, observed_at_ms, summary, expires_at_ms)
             VALUES ('{app}', '{area}', 'gateway', {at}, 'summary {i}', NULL);\n"
        ));
    }
    // Two gateway events and one other payload (hashes are not checked by the backfill).
    let blob = if t.is_postgres() { "'\\x00'" } else { "X'00'" };
    sql.push_str(&format!(
        "INSERT INTO audit_chains VALUES ('gw', 3, {blob});
         INSERT INTO audit_events VALUES ('gw', 1, {day0}, '{{\"application\":\"chat\",\"status\":200}}', {blob}, {blob});
         INSERT INTO audit_events VALUES ('gw', 2, {}, '{{\"application\":\"chat\",\"status\":400,\"error\":\"input_blocked\"}}', {blob}, {blob});
         INSERT INTO audit_events VALUES ('gw', 3, {day0}, '{{\"other\":1}}', {blob}, {blob});",
        day0 + 10
    ));
    t.raw(&sql).await;
    let store = Store::open(t.url()).await.unwrap();
    assert_eq!(store.status().await.unwrap().schema_version, SCHEMA_VERSION);
    let latest = store.latest_evidence(None).await.unwrap();
    let got: Vec<_> = latest
        .iter()
        .map(|e| (e.area.as_str(), e.kind.as_str(), e.summary.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("application-security", "unclassified", "summary 3"),
            ("prompt-filtering", "unclassified", "summary 2"),
        ]
    );
    // Unclassified rows support no duty: they are not observations for assess.
    assert!(
        store
            .observed_evidence(OffsetDateTime::UNIX_EPOCH)
            .await
            .unwrap()
            .is_empty()
    );
    let days = store
        .evidence_days(Some("chat"), OffsetDateTime::UNIX_EPOCH)
        .await
        .unwrap();
    let got: Vec<_> = days
        .iter()
        .map(|d| (d.area.as_str(), d.observations, d.summary.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("application-security", 1, "summary 3"),
            ("prompt-filtering", 2, "summary 1"),
            ("prompt-filtering", 1, "summary 2"),
        ]
    );
    let traffic = store
        .gateway_traffic(OffsetDateTime::UNIX_EPOCH)
        .await
        .unwrap();
    assert_eq!(traffic.len(), 1);
    assert_eq!(
        (traffic[0].requests, traffic[0].served, traffic[0].blocked),
        (2, 1, 1)
    );
}
both!(schema_1_store_migrates);

async fn serve_tokens_and_sessions(t: &Target) {
    use demarc_store::Role;
    use demarc_store::keys::hash_api_key;
    let store = Store::open(t.url()).await.unwrap();
    let admin = store.create_serve_token(Role::Admin, "ops").await.unwrap();
    assert!(admin.secret.starts_with("dmt_") && admin.secret.len() == 68);
    assert!(admin.secret.starts_with(&admin.token.prefix));
    let (found, stored) = store
        .lookup_serve_token(&hash_api_key(&admin.secret))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found, admin.token);
    assert_eq!(stored, hash_api_key(&admin.secret).to_vec());
    assert!(
        store
            .lookup_serve_token(&hash_api_key("dmt_wrong"))
            .await
            .unwrap()
            .is_none()
    );
    let viewer = store
        .create_serve_token(Role::Viewer, "team")
        .await
        .unwrap();
    let roles: Vec<Role> = store
        .list_serve_tokens()
        .await
        .unwrap()
        .iter()
        .map(|t| t.role)
        .collect();
    assert_eq!(roles, [Role::Admin, Role::Viewer]);
    assert!(
        store.create_serve_token(Role::Viewer, "").await.is_err(),
        "a label is required"
    );

    // A session lives until it expires, is deleted, or its token is revoked.
    let session = store
        .create_serve_session(&viewer.token.id, Duration::hours(8))
        .await
        .unwrap();
    let hash = hash_api_key(&session.secret);
    let open = store.lookup_serve_session(&hash).await.unwrap().unwrap();
    assert_eq!(open.token.role, Role::Viewer);
    assert_eq!(open.csrf, session.csrf);
    let expired = store
        .create_serve_session(&viewer.token.id, Duration::seconds(-1))
        .await
        .unwrap();
    assert!(
        store
            .lookup_serve_session(&hash_api_key(&expired.secret))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store
            .prune_serve_sessions(OffsetDateTime::now_utc())
            .await
            .unwrap(),
        1
    );
    let other = store
        .create_serve_session(&viewer.token.id, Duration::hours(8))
        .await
        .unwrap();
    assert!(
        store
            .delete_serve_session(&hash_api_key(&other.secret))
            .await
            .unwrap()
    );
    assert!(
        store
            .lookup_serve_session(&hash_api_key(&other.secret))
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.revoke_serve_token(&viewer.token.id).await.unwrap());
    assert!(!store.revoke_serve_token(&viewer.token.id).await.unwrap());
    assert!(
        store.lookup_serve_session(&hash).await.unwrap().is_none(),
        "revoked token, no session"
    );
}
both!(serve_tokens_and_sessions);

async fn api_keys_and_rate_counters(t: &Target) {
    let store = Store::open(t.url()).await.unwrap();
    let created = store.create_api_key("chat").await.unwrap();
    assert!(created.secret.starts_with("dmk_") && created.secret.len() == 68);
    assert!(created.secret.starts_with(&created.key.prefix));
    let hash = demarc_store::keys::hash_api_key(&created.secret);
    let found = store.lookup_api_key(&hash).await.unwrap().unwrap();
    assert_eq!(found, created.key);
    assert!(found.is_active());
    assert!(
        store
            .lookup_api_key(&demarc_store::keys::hash_api_key("dmk_wrong"))
            .await
            .unwrap()
            .is_none()
    );
    store.create_api_key("search").await.unwrap();
    assert_eq!(store.list_api_keys(None).await.unwrap().len(), 2);
    assert_eq!(store.list_api_keys(Some("chat")).await.unwrap().len(), 1);
    // A gateway on PostgreSQL hears of the revocation; on SQLite there is nothing to hear.
    let mut changes = store.changes().await.unwrap();
    assert_eq!(changes.is_some(), t.is_postgres());
    assert!(store.revoke_api_key(&created.key.id).await.unwrap());
    let mut next = async || {
        let changes = changes.as_mut()?;
        let heard = tokio::time::timeout(std::time::Duration::from_secs(5), changes.next())
            .await
            .expect("the change is announced");
        Some(heard.unwrap())
    };
    if t.is_postgres() {
        assert_eq!(
            next().await,
            Some(demarc_store::Change::KeyRevoked(created.key.id.clone()))
        );
        store.rotate_canary("chat").await.unwrap();
        assert_eq!(
            next().await,
            Some(demarc_store::Change::CanaryRotated("chat".into()))
        );
    }
    assert!(
        !store.revoke_api_key(&created.key.id).await.unwrap(),
        "second revoke changes nothing"
    );
    assert!(
        !store
            .lookup_api_key(&hash)
            .await
            .unwrap()
            .unwrap()
            .is_active()
    );

    // 8 tasks × 25 increments of 2, racing on one counter.
    let window = OffsetDateTime::from_unix_timestamp(1_750_000_000).unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            async move {
                for _ in 0..25 {
                    store
                        .increment_rate_counter("chat", window, 2)
                        .await
                        .unwrap();
                }
            }
        })
        .collect();
    futures_join(tasks).await;
    assert_eq!(
        store
            .increment_rate_counter("chat", window, 0)
            .await
            .unwrap(),
        400
    );
    assert_eq!(
        store
            .increment_rate_counter("chat", window + Duration::minutes(1), 1)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .prune_rate_counters(window + Duration::seconds(1))
            .await
            .unwrap(),
        1
    );

    // Several counters in one statement, one of them twice: each addition gets the count
    // just after it, as if they had been made one after another.
    let later = window + Duration::minutes(5);
    let counts = store
        .add_to_rate_counters(&[
            ("a", later, 1),
            ("b", later, 3),
            ("a", later, 2),
            ("a", later + Duration::minutes(1), 1),
        ])
        .await
        .unwrap();
    assert_eq!(counts, vec![1, 3, 3, 1]);
    let counts = store
        .add_to_rate_counters(&[("b", later, 0), ("a", later, 1)])
        .await
        .unwrap();
    assert_eq!(counts, vec![3, 4]);
    // Statements racing on the same counters in opposite orders neither deadlock nor lose
    // an addition.
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            async move {
                for _ in 0..25 {
                    let adds = if i % 2 == 0 {
                        [("x", later, 1), ("y", later, 1)]
                    } else {
                        [("y", later, 1), ("x", later, 1)]
                    };
                    store.add_to_rate_counters(&adds).await.unwrap();
                }
            }
        })
        .collect();
    futures_join(tasks).await;
    let counts = store
        .add_to_rate_counters(&[("x", later, 0), ("y", later, 0)])
        .await
        .unwrap();
    assert_eq!(counts, vec![200, 200]);
}
both!(api_keys_and_rate_counters);

async fn audit_chains_append_and_verify(t: &Target) {
    let store = Store::open(t.url()).await.unwrap();
    let now = OffsetDateTime::now_utc();
    let a1 = store
        .append_audit_batch("gw-1", &events(700, now))
        .await
        .unwrap();
    let a2 = store
        .append_audit_batch("gw-1", &events(5, now))
        .await
        .unwrap();
    let b1 = store
        .append_audit_batch("gw-2", &events(1, now))
        .await
        .unwrap();
    assert_eq!(
        (a1.first_seq, a1.last_seq, a2.first_seq, a2.last_seq),
        (1, 700, 701, 705)
    );
    assert_eq!((b1.first_seq, b1.last_seq), (1, 1));
    let report = store.verify_audit().await.unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.events, 706);
    assert_eq!(report.chains.len(), 2);
    assert_eq!(report.chains[0].head_hash, a2.head_hash);
    assert_eq!(report.chains[0].last_seq, Some(705));
    let stored = store.audit_events("gw-1", 700, 701).await.unwrap();
    assert_eq!(stored[1].payload, r#"{"request":0,"action":"allow"}"#);
    assert_eq!(stored[1].at.unix_timestamp(), now.unix_timestamp());
    // Invalid batches are refused and leave the chain as it was.
    let bad = vec![NewAuditEvent {
        at: now,
        payload: "not json".into(),
    }];
    assert!(matches!(
        store.append_audit_batch("gw-1", &bad).await,
        Err(StoreError::Invalid { .. })
    ));
    assert!(store.append_audit_batch("gw-1", &[]).await.is_err());
    assert!(
        store
            .append_audit_batch(&"x".repeat(200), &events(1, now))
            .await
            .is_err()
    );
    assert_eq!(
        store
            .append_audit_batch("gw-1", &events(1, now))
            .await
            .unwrap()
            .first_seq,
        706
    );
}
both!(audit_chains_append_and_verify);

async fn concurrent_writers_keep_their_chains(t: &Target) {
    let store = Store::open(t.url()).await.unwrap();
    // Two writers on their own chains and two sharing one: all serialise per chain.
    let tasks: Vec<_> = ["gw-a", "gw-b", "shared", "shared"]
        .into_iter()
        .map(|chain| {
            let store = store.clone();
            async move {
                for _ in 0..10 {
                    store
                        .append_audit_batch(chain, &events(50, OffsetDateTime::now_utc()))
                        .await
                        .unwrap();
                }
            }
        })
        .collect();
    futures_join(tasks).await;
    let report = store.verify_audit().await.unwrap();
    assert!(report.is_intact(), "{report:?}");
    let last: Vec<_> = report
        .chains
        .iter()
        .map(|c| (c.chain.as_str(), c.events, c.last_seq))
        .collect();
    assert_eq!(
        last,
        vec![
            ("gw-a", 500, Some(500)),
            ("gw-b", 500, Some(500)),
            ("shared", 1000, Some(1000))
        ]
    );
}
both!(concurrent_writers_keep_their_chains);

async fn verify_while_a_gateway_appends(t: &Target) {
    let store = Store::open(t.url()).await.unwrap();
    // Many idle chains widen the gap between reading the heads and the events.
    t.raw(if t.is_postgres() {
        "INSERT INTO audit_chains SELECT 'idle-' || n, 0, decode(repeat('00', 32), 'hex') FROM generate_series(1, 20000) n"
    } else {
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)
         INSERT INTO audit_chains SELECT 'idle-' || i, 0, zeroblob(32) FROM n"
    })
    .await;
    store
        .append_audit_batch("live", &events(2000, OffsetDateTime::now_utc()))
        .await
        .unwrap();
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            for _ in 0..400 {
                store
                    .append_audit_batch("live", &events(10, OffsetDateTime::now_utc()))
                    .await
                    .unwrap();
            }
        })
    };
    // Each verify sees one consistent snapshot, never a half-recorded batch.
    let mut seen = Vec::new();
    while !writer.is_finished() {
        let report = store.verify_audit().await.unwrap();
        let broken: Vec<_> = report
            .chains
            .iter()
            .filter_map(|c| c.broken.as_ref())
            .collect();
        assert!(broken.is_empty(), "{broken:?}");
        seen.push(report.events);
    }
    writer.await.unwrap();
    assert!(seen.iter().all(|n| n % 10 == 0), "{seen:?}");
    assert_eq!(store.verify_audit().await.unwrap().events, 6000);
}
both!(verify_while_a_gateway_appends);

async fn tampering_is_reported_at_the_first_broken_link(t: &Target) {
    let store = Store::open(t.url()).await.unwrap();
    let now = OffsetDateTime::now_utc();
    for chain in [
        "altered",
        "deleted",
        "inserted",
        "reordered",
        "truncated",
        "appended",
        "intact",
    ] {
        store
            .append_audit_batch(chain, &events(10, now))
            .await
            .unwrap();
    }
    let at = |chain: &str| format!("chain = '{chain}'");
    t.raw(&format!(
        "UPDATE audit_events SET payload = '{{\"request\":4,\"action\":\"block\"}}' WHERE {} AND seq = 5;
         DELETE FROM audit_events WHERE {} AND seq = 5;
         UPDATE audit_events SET seq = seq + 1000 WHERE {} AND seq >= 5;
         UPDATE audit_events SET seq = seq - 999 WHERE {} AND seq >= 1000;
         INSERT INTO audit_events (chain, seq, at_ms, payload, prev_hash, hash)
           SELECT chain, 5, at_ms, payload, prev_hash, hash FROM audit_events WHERE {} AND seq = 4;
         UPDATE audit_chains SET head_seq = 11 WHERE {};
         UPDATE audit_events SET seq = -5 WHERE {} AND seq = 5;
         UPDATE audit_events SET seq = 5 WHERE {} AND seq = 6;
         UPDATE audit_events SET seq = 6 WHERE {} AND seq = -5;
         DELETE FROM audit_events WHERE {} AND seq >= 9;
         INSERT INTO audit_events (chain, seq, at_ms, payload, prev_hash, hash)
           SELECT chain, 11, at_ms, payload, hash, hash FROM audit_events WHERE {} AND seq = 10;",
        at("altered"),
        at("deleted"),
        at("inserted"),
        at("inserted"),
        at("inserted"),
        at("inserted"),
        at("reordered"),
        at("reordered"),
        at("reordered"),
        at("truncated"),
        at("appended"),
    ))
    .await;
    let report = store.verify_audit().await.unwrap();
    assert!(!report.is_intact());
    let broken: Vec<_> = report
        .chains
        .iter()
        .map(|c| (c.chain.as_str(), c.broken.as_ref().map(|b| (b.seq, b.kind))))
        .collect();
    assert_eq!(
        broken,
        vec![
            ("altered", Some((5, BreakKind::Altered))),
            ("appended", Some((11, BreakKind::Head))),
            ("deleted", Some((5, BreakKind::Missing))),
            ("inserted", Some((5, BreakKind::Unlinked))),
            ("intact", None),
            ("reordered", Some((5, BreakKind::Unlinked))),
            ("truncated", Some((9, BreakKind::Missing))),
        ]
    );
    // A whole chain forged with SQL has no recorded head.
    t.raw("INSERT INTO audit_events (chain, seq, at_ms, payload, prev_hash, hash) SELECT 'forged', seq, at_ms, payload, prev_hash, hash FROM audit_events WHERE chain = 'intact'").await;
    let report = store.verify_audit_chain("forged").await.unwrap();
    assert_eq!(
        report.chains[0].broken.as_ref().unwrap().kind,
        BreakKind::UnknownChain
    );
}
both!(tampering_is_reported_at_the_first_broken_link);

async fn pruning_leaves_a_verifiable_chain(t: &Target) {
    let store = Store::open(t.url()).await.unwrap();
    let now = OffsetDateTime::now_utc();
    store
        .append_audit_batch("gw", &events(10, now - Duration::days(40)))
        .await
        .unwrap();
    store
        .append_audit_batch("gw", &events(5, now))
        .await
        .unwrap();
    store
        .append_audit_batch("old", &events(3, now - Duration::days(40)))
        .await
        .unwrap();
    let report = store
        .prune(
            Some(now - Duration::days(30)),
            Some(now - Duration::days(30)),
            None,
        )
        .await
        .unwrap();
    let pruned: Vec<_> = report
        .chains
        .iter()
        .map(|p| (p.chain.as_str(), p.through_seq, p.events_removed))
        .collect();
    assert_eq!(pruned, vec![("gw", 10, 10), ("old", 3, 3)]);
    let verify = store.verify_audit().await.unwrap();
    assert!(verify.is_intact(), "{verify:?}");
    assert_eq!(verify.events, 5);
    assert_eq!(
        (verify.chains[0].pruned_through, verify.chains[0].first_seq),
        (Some(10), Some(11))
    );
    assert_eq!(
        (verify.chains[1].events, verify.chains[1].pruned_through),
        (0, Some(3))
    );
    // Pruning again removes nothing; appending continues the chain from its head.
    assert!(
        store
            .prune_audit(now - Duration::days(30))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .append_audit_batch("old", &events(2, now))
            .await
            .unwrap()
            .first_seq,
        4
    );
    // A second prune seals a second checkpoint onto the first.
    assert_eq!(
        store
            .prune_audit(now + Duration::days(1))
            .await
            .unwrap()
            .len(),
        2
    );
    assert!(store.verify_audit().await.unwrap().is_intact());

    // Forging a checkpoint (to hide deleted events) breaks its seal.
    t.raw("UPDATE audit_checkpoints SET seq = seq + 1 WHERE chain = 'gw'")
        .await;
    let verify = store.verify_audit().await.unwrap();
    assert_eq!(
        verify.chains[0].broken.as_ref().unwrap().kind,
        BreakKind::Checkpoint
    );
}
both!(pruning_leaves_a_verifiable_chain);

async fn pruning_refuses_a_tampered_chain(t: &Target) {
    let store = Store::open(t.url()).await.unwrap();
    let now = OffsetDateTime::now_utc();
    store
        .append_audit_batch("gw", &events(10, now - Duration::days(40)))
        .await
        .unwrap();
    t.raw("UPDATE audit_events SET payload = '{}' WHERE chain = 'gw' AND seq = 3")
        .await;
    let err = store
        .prune_audit(now - Duration::days(30))
        .await
        .err()
        .unwrap();
    assert!(
        matches!(err, StoreError::ChainBroken { seq: 3, .. }),
        "{err}"
    );
    // Nothing was removed: the evidence of tampering stays.
    assert_eq!(store.verify_audit().await.unwrap().events, 10);
}
both!(pruning_refuses_a_tampered_chain);

async fn canaries_rotate_and_stay_live_for_a_grace_period(t: &Target) {
    let store = Store::open(t.url()).await.unwrap();
    assert!(store.list_canaries(None).await.unwrap().is_empty());
    let before = OffsetDateTime::now_utc() - Duration::seconds(1);
    // The first canary: only when there is none yet.
    let first = store
        .rotate_canary_if_current("chat", None)
        .await
        .unwrap()
        .unwrap();
    assert!(first.token.starts_with("dmc-") && first.token.len() == 20);
    assert!(first.is_current());
    assert!(
        store
            .rotate_canary_if_current("chat", None)
            .await
            .unwrap()
            .is_none(),
        "another process created one first: nothing changes"
    );
    let live = store.live_canaries("chat", before).await.unwrap();
    assert_eq!(live, vec![first.clone()]);

    // Several gateways race to rotate the same canary: exactly one new canary.
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let store = store.clone();
            let id = first.id.clone();
            async move {
                store
                    .rotate_canary_if_current("chat", Some(&id))
                    .await
                    .unwrap()
            }
        })
        .collect();
    let won: Vec<_> = futures_join(tasks).await.into_iter().flatten().collect();
    assert_eq!(won.len(), 1);
    let second = won[0].clone();
    assert_ne!(second.token, first.token);

    // The retired canary is live while its grace lasts, the new one first.
    let live = store.live_canaries("chat", before).await.unwrap();
    assert_eq!(live.len(), 2);
    assert_eq!(live[0].id, second.id);
    assert_eq!(live[1].id, first.id);
    assert!(live[1].retired_at.is_some());
    let later = OffsetDateTime::now_utc() + Duration::seconds(1);
    let live = store.live_canaries("chat", later).await.unwrap();
    assert_eq!(live.iter().map(|c| &c.id).collect::<Vec<_>>(), [&second.id]);

    // An unconditional rotation (the CLI's) and another application.
    let third = store.rotate_canary("chat").await.unwrap();
    store.rotate_canary("search").await.unwrap();
    let all = store.list_canaries(Some("chat")).await.unwrap();
    assert_eq!(
        all.iter().map(|c| &c.id).collect::<Vec<_>>(),
        [&first.id, &second.id, &third.id]
    );
    assert_eq!(all.iter().filter(|c| c.is_current()).count(), 1);
    assert_eq!(store.list_canaries(None).await.unwrap().len(), 4);
    let status = store.status().await.unwrap();
    let count = |name: &str| status.counts.iter().find(|(t, _)| t == name).unwrap().1;
    assert_eq!(count("canaries"), 4);
    store.close().await;
    // Kept across a reopen.
    let store = Store::open(t.url()).await.unwrap();
    let live = store.live_canaries("chat", later).await.unwrap();
    assert_eq!(live[0].token, third.token);
}
both!(canaries_rotate_and_stay_live_for_a_grace_period);
