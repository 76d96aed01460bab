//! Assessment runs keep the date they assessed for, and two runs compare per duty: the same
//! suite against a real SQLite file and a real PostgreSQL database.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use demarc_store::assessments::ChangeKind;
use demarc_store::time::{Date, Duration, Month, OffsetDateTime};
use demarc_store::{DutyResult, EstateRecord, Store, StoreError};

use common::Target;

fn duty(app: &str, area: &str, component: &str, evidence: &str, covered: bool) -> DutyResult {
    DutyResult {
        application: app.into(),
        area: area.into(),
        component: Some(component.into()),
        accountable: "team:platform".into(),
        owner_team: Some("platform".into()),
        control_status: "implemented".into(),
        evidence_status: evidence.into(),
        covered,
    }
}

async fn runs_keep_their_assessment_date(t: &Target) {
    let store = Store::open(t.url()).await.unwrap();
    let estate = EstateRecord::from_content("acme", b"applications: []\n");
    let at = OffsetDateTime::from_unix_timestamp(1_760_000_000).unwrap();
    let for_date = Date::from_calendar_date(2027, Month::March, 1).unwrap();
    let first = store
        .record_assessment_on(
            &estate,
            at,
            for_date,
            &[duty("chat", "a", "llm", "current", true)],
        )
        .await
        .unwrap();
    // Without a date, the day it ran.
    let second = store
        .record_assessment(&estate, at, &[duty("chat", "a", "llm", "current", true)])
        .await
        .unwrap();
    let history = store.history(None).await.unwrap();
    assert_eq!(history[0].run, first);
    assert_eq!(history[0].assessed_on, Some(for_date));
    assert_eq!(history[0].at, at);
    assert_eq!(history[1].run, second);
    assert_eq!(history[1].assessed_on, Some(at.date()));
    let json = serde_json::to_value(&history[0]).unwrap();
    assert_eq!(json["assessed_on"], "2027-03-01");
    let info = store.run_info(first).await.unwrap().unwrap();
    assert_eq!((info.duties, info.estate.as_str()), (1, "acme"));
    assert_eq!(info.assessed_on, Some(for_date));
    assert!(store.run_info(first + 100).await.unwrap().is_none());
    // The component comes back as recorded.
    assert_eq!(
        store.duty_results(first).await.unwrap()[0]
            .component
            .as_deref(),
        Some("llm")
    );
}
both!(runs_keep_their_assessment_date);

async fn two_runs_compare_per_duty(t: &Target) {
    let store = Store::open(t.url()).await.unwrap();
    let estate = EstateRecord::from_content("acme", b"v1");
    let at = OffsetDateTime::from_unix_timestamp(1_760_000_000).unwrap();
    let mut owner_changed = duty("chat", "grounding", "llm", "current", true);
    owner_changed.owner_team = Some("data".into());
    let from = store
        .record_assessment(
            &estate,
            at,
            &[
                duty("chat", "prompt-filtering", "llm", "current", true),
                duty("chat", "grounding", "llm", "current", true),
                duty("chat", "grounding", "web-search", "missing", false),
                duty("chat", "usage-governance", "llm", "current", true),
                duty("old", "usage-governance", "app", "current", true),
            ],
        )
        .await
        .unwrap();
    let to = store
        .record_assessment(
            &EstateRecord::from_content("acme", b"v2"),
            at + Duration::days(1),
            &[
                duty("chat", "prompt-filtering", "llm", "expired", false),
                owner_changed,
                duty("chat", "grounding", "web-search", "missing", false),
                duty("chat", "usage-governance", "llm", "current", true),
                duty("new", "usage-governance", "app", "missing", false),
            ],
        )
        .await
        .unwrap();
    let diff = store.diff_runs(from, to).await.unwrap();
    assert_eq!(diff.unchanged, 2, "{diff:?}");
    let summary: Vec<_> = diff
        .changes
        .iter()
        .map(|c| {
            (
                c.application.as_str(),
                c.area.as_str(),
                c.component.as_deref(),
                c.change,
                c.fields.clone(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                "chat",
                "grounding",
                Some("llm"),
                ChangeKind::Changed,
                vec!["owner"]
            ),
            (
                "chat",
                "prompt-filtering",
                Some("llm"),
                ChangeKind::Changed,
                vec!["evidence", "covered"]
            ),
            (
                "new",
                "usage-governance",
                Some("app"),
                ChangeKind::Added,
                vec![]
            ),
            (
                "old",
                "usage-governance",
                Some("app"),
                ChangeKind::Removed,
                vec![]
            ),
        ]
    );
    assert_ne!(diff.from.estate_sha256, diff.to.estate_sha256);
    let json = serde_json::to_value(&diff).unwrap();
    assert_eq!(json["changes"][1]["change"], "changed");
    assert_eq!(json["changes"][1]["before"]["evidence_status"], "current");
    assert_eq!(json["changes"][1]["after"]["evidence_status"], "expired");
    assert_eq!(json["changes"][2]["before"], serde_json::Value::Null);
    // A run that does not exist is named.
    let err = store.diff_runs(from, to + 50).await.unwrap_err();
    assert!(matches!(err, StoreError::Invalid { .. }), "{err}");
    assert!(
        err.to_string()
            .contains(&format!("no recorded run {}", to + 50))
    );
    // Runs recorded without components compare by application and area.
    let mut bare = duty("chat", "prompt-filtering", "llm", "expired", false);
    bare.component = None;
    let third = store
        .record_assessment(&estate, at + Duration::days(2), &[bare])
        .await
        .unwrap();
    let diff = store.diff_runs(to, third).await.unwrap();
    assert_eq!(diff.unchanged, 1);
    assert_eq!(diff.changes.len(), 4, "{:?}", diff.changes);
    assert!(diff.changes.iter().all(|c| c.change == ChangeKind::Removed));
}
both!(two_runs_compare_per_duty);

/// A store of schema version 1 (runs without `assessed_on`) is migrated and its old runs read
/// back with no date.
async fn old_runs_have_no_assessment_date(t: &Target) {
    let store = Store::open(t.url()).await.unwrap();
    let estate = EstateRecord::from_content("acme", b"x");
    let at = OffsetDateTime::from_unix_timestamp(1_760_000_000).unwrap();
    store
        .record_assessment(&estate, at, &[duty("chat", "a", "llm", "current", true)])
        .await
        .unwrap();
    store.close().await;
    t.raw("UPDATE assessment_runs SET assessed_on = NULL").await;
    let store = Store::open(t.url()).await.unwrap();
    let history = store.history(None).await.unwrap();
    assert_eq!(history[0].assessed_on, None);
    assert_eq!(
        serde_json::to_value(&history[0]).unwrap()["assessed_on"],
        serde_json::Value::Null
    );
}
both!(old_runs_have_no_assessment_date);
