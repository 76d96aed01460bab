//! Grounding in the request path, over real HTTP: passages from approved sources the caller's
//! groups may read are added to the context with citations; others are never sent upstream.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness;

use std::sync::Arc;

use demarc_gateway::{Grounding, SourceSpec};
use harness::Harness;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passages_readable_by_the_caller_are_added_with_citations() {
    let docs = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(docs.path().join("travel")).unwrap();
    std::fs::create_dir_all(docs.path().join("pay")).unwrap();
    std::fs::write(
        docs.path().join("travel/hotels.md"),
        "# Travel policy\n\n## Hotels\n\nHotel stays are reimbursed up to 180 EUR a night.\n",
    )
    .unwrap();
    std::fs::write(
        docs.path().join("pay/bands.md"),
        "# Salary bands\n\nHotel night shift allowance is band C, 42 EUR.\n",
    )
    .unwrap();
    let specs = [
        SourceSpec {
            id: "travel".into(),
            path: "travel".into(),
            groups: vec![],
        },
        SourceSpec {
            id: "pay".into(),
            path: "pay".into(),
            groups: vec!["hr".into()],
        },
    ];
    let (grounding, warnings) = Grounding::build(&specs, docs.path(), 3).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    let h = Harness::start_with_grounding(Arc::new(grounding)).await;
    let body = json!({"model": "chat", "messages": [
        {"role": "system", "content": "You answer staff questions."},
        {"role": "user", "content": "How much is a hotel night reimbursed?"}
    ]});
    for groups in ["engineering", "engineering, hr"] {
        let r = h
            .client
            .post(h.url("/v1/chat/completions"))
            .bearer_auth(&h.key)
            .header("x-demarc-groups", groups)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let seen = h.fake.received();
    let messages = |i: usize| seen[i].body["messages"].as_array().unwrap().clone();
    let first = messages(0);
    assert_eq!(first.len(), 3, "{first:?}");
    assert_eq!(first[0]["content"], "You answer staff questions.");
    let context = first[1]["content"].as_str().unwrap();
    assert!(
        context.contains("180 EUR") && context.contains("[1] travel/hotels.md"),
        "{context}"
    );
    assert!(
        !context.contains("band C"),
        "the `pay` source is for group `hr` only"
    );
    let second = messages(1);
    assert!(
        second[1]["content"].as_str().unwrap().contains("band C"),
        "readable by `hr`"
    );
    let events = h.stop().await;
    assert_eq!(events.len(), 2);
    let used = events[0].grounding.as_ref().unwrap();
    assert_eq!(used.citations, vec!["travel/hotels.md".to_string()]);
    let json: Value = serde_json::to_value(&events[1]).unwrap();
    assert_eq!(json["grounding"]["passages"], 2);
}
