//! The gateway over real HTTP on loopback, in front of the fake upstream: API shapes, header
//! hygiene, upstream faults, bad requests and keys. Each test checks that every request left
//! exactly one audit event.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness;

use std::sync::Arc;
use std::time::Duration;

use demarc_fake::{FakeConfig, FakeUpstream, Fault};
use harness::{Harness, sse_text};
use serde_json::{Value, json};

fn chat(text: &str) -> Value {
    json!({"model": "chat", "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": text}]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_completion_round_trip_with_header_hygiene_and_passthrough() {
    let h = Harness::start("", FakeConfig::default()).await;
    let mut body = chat("hello there");
    body["custom_field"] = json!({"kept": [1, 2]});
    let r = h
        .client
        .post(h.url("/v1/chat/completions"))
        .bearer_auth(&h.key)
        .header("connection", "keep-alive, x-secret")
        .header("x-secret", "do-not-forward")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("x-request-id").is_some());
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "echo: hello there");
    let got = h.fake.received();
    let last = got.last().unwrap();
    assert_eq!(last.body["model"], "fake-model", "alias `chat` resolved");
    assert_eq!(
        last.body["custom_field"],
        json!({"kept": [1, 2]}),
        "unknown field passed through"
    );
    assert_eq!(
        last.headers["authorization"], "Bearer sk-upstream",
        "upstream credentials, not the caller's"
    );
    assert!(
        last.headers.get("x-secret").is_none(),
        "caller headers are not forwarded"
    );
    let events = h.stop().await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].status, 200);
    assert_eq!(events[0].application.as_deref(), Some("assistant"));
    assert_eq!(events[0].model.as_deref(), Some("chat"));
    assert_eq!(events[0].upstream.as_deref(), Some("primary"));
    assert!(events[0].prompt_tokens > 0 && events[0].completion_tokens > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_stream_responses_embeddings_and_models() {
    let h = Harness::start(
        "",
        FakeConfig {
            chunk_chars: 3,
            ..FakeConfig::default()
        },
    )
    .await;
    let mut body = chat("stream me please");
    body["stream"] = json!(true);
    let r = h.post("/v1/chat/completions", &body).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let wire = r.text().await.unwrap();
    assert_eq!(sse_text(&wire), "echo: stream me please");
    assert!(wire.trim_end().ends_with("data: [DONE]"));

    let r = h
        .post(
            "/v1/responses",
            &json!({"model": "chat", "input": "plain input"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["output"][0]["content"][0]["text"], "echo: plain input");

    let r = h
        .post("/v1/responses", &json!({"model": "chat", "stream": true, "input": [{"role": "user", "content": [{"type": "input_text", "text": "streamed input"}]}]}))
        .await;
    let wire = r.text().await.unwrap();
    assert_eq!(sse_text(&wire), "echo: streamed input");
    assert!(wire.contains("event: response.completed"));

    let r = h
        .post(
            "/v1/embeddings",
            &json!({"model": "chat", "input": ["a", "b"]}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["data"].as_array().unwrap().len(), 2);

    let r = h
        .client
        .get(h.url("/v1/models"))
        .bearer_auth(&h.key)
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["data"][0]["id"], "chat");

    let events = h.stop().await;
    assert_eq!(events.len(), 5);
    assert!(
        events.iter().all(|e| e.status == 200 && e.error.is_none()),
        "{events:?}"
    );
    assert!(events[0].stream);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_openai_errors_and_the_gateway_keeps_serving() {
    let h = Harness::start("max_body_bytes: 4096\n", FakeConfig::default()).await;
    let revoked = h.keys.create("assistant").unwrap();
    h.keys.revoke(&revoked);
    let url = h.url("/v1/chat/completions");
    let cases: Vec<(reqwest::RequestBuilder, u16, &str)> = vec![
        (h.client.post(&url).json(&chat("x")), 401, "missing_api_key"),
        (
            h.client
                .post(&url)
                .bearer_auth("dmk_wrong")
                .json(&chat("x")),
            401,
            "invalid_api_key",
        ),
        (
            h.client.post(&url).bearer_auth(&revoked).json(&chat("x")),
            401,
            "invalid_api_key",
        ),
        (
            h.client
                .post(&url)
                .bearer_auth(&h.key)
                .header("content-type", "application/json")
                .body("{\"model\": "),
            400,
            "invalid_json",
        ),
        (
            h.client
                .post(&url)
                .bearer_auth(&h.key)
                .header("content-type", "text/plain")
                .body("{}"),
            415,
            "unsupported_media_type",
        ),
        (
            h.client
                .post(&url)
                .bearer_auth(&h.key)
                .header("content-type", "application/json")
                .body(vec![b' '; 5000]),
            413,
            "request_too_large",
        ),
        (
            h.client
                .post(&url)
                .bearer_auth(&h.key)
                .header("content-type", "application/json")
                .body(b"{\"model\": \"chat\", \"x\": \"\xff\xfe\"}".to_vec()),
            400,
            "invalid_utf8",
        ),
        (
            h.client
                .post(&url)
                .bearer_auth(&h.key)
                .json(&json!({"messages": []})),
            400,
            "missing_model",
        ),
        (
            h.client
                .post(&url)
                .bearer_auth(&h.key)
                .json(&json!({"model": "gpt-9", "messages": [{"role": "user", "content": "hi"}]})),
            404,
            "model_not_found",
        ),
        (
            h.client
                .post(&url)
                .bearer_auth(&h.key)
                .json(&json!({"model": "chat", "messages": "Hello"})),
            400,
            "invalid_type",
        ),
        (
            h.client
                .post(&url)
                .bearer_auth(&h.key)
                .json(&json!({"model": "chat", "messages": []})),
            400,
            "invalid_value",
        ),
        (
            h.client
                .post(&url)
                .bearer_auth(&h.key)
                .json(&json!({"model": "", "messages": [{"role": "user", "content": "hi"}]})),
            400,
            "invalid_value",
        ),
        (
            h.client.post(&url).bearer_auth(&h.key).json(&json!([1, 2])),
            400,
            "invalid_json",
        ),
    ];
    let n = cases.len();
    for (request, status, code) in cases {
        let r = request.send().await.unwrap();
        assert_eq!(r.status().as_u16(), status, "{code}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], code);
        assert!(v["error"]["message"].as_str().unwrap().len() > 10);
        assert!(v["error"]["type"].is_string());
    }
    // Chunked body without a length, over the limit.
    let big =
        futures_util::stream::iter((0..10).map(|_| Ok::<_, std::io::Error>(vec![b' '; 1000])));
    let r = h
        .client
        .post(&url)
        .bearer_auth(&h.key)
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(big))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let r = h.post("/v1/chat/completions", &chat("still here")).await;
    assert_eq!(r.status(), 200);
    let upstream_requests = h
        .fake
        .state
        .requests
        .load(std::sync::atomic::Ordering::Relaxed);
    let events = h.stop().await;
    assert_eq!(events.len(), n + 2, "one audit event per request");
    assert_eq!(events.iter().filter(|e| e.status == 401).count(), 3);
    assert_eq!(upstream_requests, 1, "nothing bad went upstream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_faults_map_to_statuses_and_retries_recover() {
    let h = Harness::start("", FakeConfig::default()).await;
    let faulty = |fault: &str, stream: bool| {
        let mut b = chat("hi");
        b["fake"] =
            json!({"fault": fault, "chunk_delay_ms": 5, "reply": "a reply long enough to be cut"});
        b["stream"] = json!(stream);
        b
    };
    for (fault, status, code) in [
        ("500", 502, "upstream_error"),
        ("503", 502, "upstream_error"),
        ("429", 429, "upstream_rate_limited"),
        ("refuse", 502, "upstream_unreachable"),
    ] {
        let r = h.post("/v1/chat/completions", &faulty(fault, false)).await;
        assert_eq!(r.status().as_u16(), status, "{fault}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], code, "{fault}");
    }
    for (fault, code) in [("cut", "upstream_cut"), ("malformed", "upstream_malformed")] {
        let r = h.post("/v1/chat/completions", &faulty(fault, true)).await;
        assert_eq!(r.status(), 200);
        let wire = r.text().await.unwrap();
        let last = wire.trim_end().lines().last().unwrap();
        let v: Value = serde_json::from_str(last.strip_prefix("data: ").unwrap()).unwrap();
        assert_eq!(v["error"]["code"], code, "{wire}");
    }
    let r = h.post("/v1/chat/completions", &chat("fine")).await;
    assert_eq!(r.status(), 200);
    let events = h.stop().await;
    assert_eq!(events.len(), 7);
    // 500, 503 and 429 are retried (max 2 retries = 3 attempts).
    assert_eq!(events[0].attempts, 3);
    assert_eq!(events[4].error.as_deref(), Some("upstream_cut"));
    assert_eq!(events[5].error.as_deref(), Some("upstream_malformed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_then_success_and_failover_to_the_next_upstream() {
    let fake = FakeConfig {
        fault: Fault::FailFirst(2),
        ..FakeConfig::default()
    };
    let h = Harness::start("", fake).await;
    let r = h
        .post("/v1/chat/completions", &chat("third time lucky"))
        .await;
    assert_eq!(r.status(), 200);
    let events = h.stop().await;
    assert_eq!(events[0].attempts, 3);

    // The first upstream refuses connections (nothing listens there); the second answers.
    let (_reserved, dead) = refusing_address();
    let h = Harness::start_with_first_upstream(&format!("http://{dead}/v1"), FakeConfig::default())
        .await;
    let r = h.post("/v1/chat/completions", &chat("failover")).await;
    assert_eq!(r.status(), 200);
    let events = h.stop().await;
    assert_eq!(events[0].upstream.as_deref(), Some("primary"));
    assert_eq!(
        events[0].attempts, 2,
        "one refused attempt (breaker opens at 1 failure), then the backup"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connection_and_timeout() {
    let (_reserved, dead) = refusing_address();
    let h =
        Harness::start_with_upstream_url(&format!("http://{dead}/v1"), FakeConfig::default()).await;
    let r = h.post("/v1/chat/completions", &chat("anyone?")).await;
    assert_eq!(r.status(), 502);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "upstream_unreachable");
    h.stop().await;

    let h = Harness::start(
        "",
        FakeConfig {
            fault: Fault::Timeout,
            ..FakeConfig::default()
        },
    )
    .await;
    let started = std::time::Instant::now();
    let r = h.post("/v1/chat/completions", &chat("slow")).await;
    assert_eq!(r.status(), 504);
    assert!(started.elapsed() < Duration::from_secs(5));
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "upstream_timeout");
    let events = h.stop().await;
    assert_eq!(events.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_disconnect_mid_stream_cancels_the_upstream_request() {
    let fake = FakeConfig {
        chunk_chars: 1,
        chunk_delay: Duration::from_millis(20),
        ..FakeConfig::default()
    };
    let h = Harness::start("", fake).await;
    let mut body = chat(&"long answer ".repeat(50));
    body["stream"] = json!(true);
    let mut r = h.post("/v1/chat/completions", &body).await;
    assert_eq!(r.status(), 200);
    let first = r.chunk().await.unwrap().unwrap();
    assert!(!first.is_empty());
    assert_eq!(
        h.fake
            .state
            .open_streams
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    drop(r);
    let mut closed = false;
    for _ in 0..100 {
        if h.fake
            .state
            .open_streams
            .load(std::sync::atomic::Ordering::Relaxed)
            == 0
        {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(closed, "upstream stream still open after the client left");
    let events = h.stop().await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].status, 499);
    assert_eq!(events[0].error.as_deref(), Some("client_closed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_per_application_and_user() {
    let h = Harness::start_with_limits(
        "{requests_per_minute: 3, user_requests_per_minute: 1}",
        FakeConfig::default(),
    )
    .await;
    let send = |user: &'static str| {
        h.client
            .post(h.url("/v1/chat/completions"))
            .bearer_auth(&h.key)
            .header("x-demarc-user", user)
            .json(&chat("hi"))
            .send()
    };
    assert_eq!(send("ann").await.unwrap().status(), 200);
    let r = send("ann").await.unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().get("retry-after").is_some());
    assert_eq!(send("bob").await.unwrap().status(), 200);
    assert_eq!(
        send("cy").await.unwrap().status(),
        200,
        "a refused request took nothing from the application"
    );
    let r = send("dan").await.unwrap();
    assert_eq!(r.status(), 429, "application rate exhausted");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "rate_limit_exceeded");
    let events = h.stop().await;
    assert_eq!(events.len(), 5);
    assert_eq!(events[1].user.as_deref(), Some("ann"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_ready_and_metrics() {
    let h = Harness::start("", FakeConfig::default()).await;
    assert_eq!(
        h.client
            .get(h.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        h.client
            .get(h.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    h.post("/v1/chat/completions", &chat("count me")).await;
    let text = h
        .client
        .get(h.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains(
        "demarc_gateway_requests_total{application=\"assistant\",endpoint=\"chat_completions\",status=\"200\"} 1"
    ), "{text}");
    assert!(text.contains(
        "demarc_gateway_request_duration_seconds_count{endpoint=\"chat_completions\"} 1"
    ));
    let r = h.client.get(h.url("/nope")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "unknown_url");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn circuit_breaker_stops_sending_to_a_failing_upstream() {
    let h = Harness::start(
        "# breaker-2\n",
        FakeConfig {
            fault: Fault::Status(500),
            ..FakeConfig::default()
        },
    )
    .await;
    let r = h.post("/v1/chat/completions", &chat("one")).await;
    assert_eq!(r.status(), 502);
    let r = h.post("/v1/chat/completions", &chat("two")).await;
    assert_eq!(r.status(), 503);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "upstream_circuit_open");
    assert_eq!(
        h.fake
            .state
            .requests
            .load(std::sync::atomic::Ordering::Relaxed),
        2,
        "the breaker opened after 2 failures"
    );
    let events = h.stop().await;
    assert_eq!(events.len(), 2);
    assert_eq!(events[1].attempts, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_limits_are_counted_across_replicas_in_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("s.db").display());
    let store = demarc_store::Store::open(&url).await.unwrap();
    // Each replica batches its own requests; the table is what they share.
    let counters = || Arc::new(demarc_gateway::StoreCounters::batched(store.clone()));
    let a = Harness::start_shared("{requests_per_minute: 3}", counters()).await;
    let b = Harness::start_shared("{requests_per_minute: 3}", counters()).await;
    let mut statuses = Vec::new();
    for h in [&a, &b, &a, &b] {
        statuses.push(
            h.post("/v1/chat/completions", &chat("hi"))
                .await
                .status()
                .as_u16(),
        );
    }
    // The four requests may straddle a minute boundary; then the window restarts.
    let (_, left) = demarc_gateway::current_window();
    if left > 2 {
        assert_eq!(
            statuses,
            [200, 200, 200, 429],
            "three per minute across both replicas"
        );
    }
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_beyond_max_in_flight_are_shed_while_a_stream_runs() {
    let fake = FakeConfig {
        chunk_chars: 1,
        chunk_delay: Duration::from_millis(20),
        ..FakeConfig::default()
    };
    let h = Harness::start("max_in_flight: 1\n", fake).await;
    let mut body = chat("a slow stream");
    body["stream"] = json!(true);
    let mut stream = h.post("/v1/chat/completions", &body).await;
    assert_eq!(stream.status(), 200);
    stream.chunk().await.unwrap();
    let r = h.post("/v1/chat/completions", &chat("one more")).await;
    assert_eq!(r.status(), 503);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "overloaded");
    while stream.chunk().await.unwrap().is_some() {}
    let r = h
        .post("/v1/chat/completions", &chat("after the stream"))
        .await;
    assert_eq!(
        r.status(),
        200,
        "the stream's slot was released when it ended"
    );
    let events = h.stop().await;
    assert_eq!(events.len(), 3);
}

/// One upstream at the fake with a `Retry-After` cap, serving application `assistant`.
fn retry_after_config(cap_ms: u64) -> String {
    format!(
        "upstreams:\n\
         - {{id: primary, base_url: '{{fake}}', api_key_env: UPSTREAM_KEY, \
         timeouts: {{first_byte_ms: 2000, total_ms: 5000}}, \
         retries: {{max: 2, backoff_ms: 5, retry_after_max_ms: {cap_ms}}}}}\n\
         applications:\n\
         - {{id: assistant, upstreams: [primary], models: {{chat: fake-model}}}}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_retry_after_is_waited_for_when_within_the_cap() {
    let h = Harness::from_yaml(
        &retry_after_config(3000),
        FakeConfig::default(),
        harness::off(),
        None,
    )
    .await;
    // 429 with `Retry-After: 1` once, then 200: the retry waits the second it was asked to.
    let mut body = chat("patience");
    body["fake"] = json!({"fault": "fail-first-1", "fail_status": 429, "retry_after": "1"});
    let started = std::time::Instant::now();
    let r = h.post("/v1/chat/completions", &body).await;
    let took = started.elapsed();
    assert_eq!(r.status(), 200);
    assert!(took >= Duration::from_millis(950), "retried after {took:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert_eq!(h.fake.received().len(), 2);
    let events = h.stop().await;
    assert_eq!(events[0].attempts, 2);

    // The same as an HTTP date two seconds ahead (a 503 this time): waited for too.
    let h = Harness::from_yaml(
        &retry_after_config(3000),
        FakeConfig::default(),
        harness::off(),
        None,
    )
    .await;
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let at = (time::OffsetDateTime::now_utc() + time::Duration::seconds(2))
        .format(&format)
        .unwrap();
    let mut body = chat("patience");
    body["fake"] = json!({"fault": "fail-first-1", "fail_status": 503, "retry_after": at});
    let started = std::time::Instant::now();
    let r = h.post("/v1/chat/completions", &body).await;
    let took = started.elapsed();
    assert_eq!(r.status(), 200);
    assert!(took >= Duration::from_millis(950), "retried after {took:?}");
    let events = h.stop().await;
    assert_eq!(events[0].attempts, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_retry_after_beyond_the_cap_fails_over_or_answers_429() {
    // The first upstream always asks for a second; with a cap of 0 the gateway does not wait
    // but goes on to the next upstream at once.
    let busy = FakeUpstream::start(
        "127.0.0.1:0".parse().unwrap(),
        FakeConfig {
            fault: Fault::Status(429),
            retry_after: Some("1".into()),
            ..FakeConfig::default()
        },
    )
    .await
    .unwrap();
    let yaml = format!(
        "upstreams:\n\
         - {{id: busy, base_url: '{}', retries: {{max: 2, backoff_ms: 5, retry_after_max_ms: 0}}}}\n\
         - {{id: primary, base_url: '{{fake}}'}}\n\
         applications:\n\
         - {{id: assistant, upstreams: [busy, primary], models: {{chat: fake-model}}}}\n",
        busy.base_url()
    );
    let h = Harness::from_yaml(&yaml, FakeConfig::default(), harness::off(), None).await;
    let started = std::time::Instant::now();
    let r = h.post("/v1/chat/completions", &chat("elsewhere")).await;
    assert_eq!(r.status(), 200);
    assert!(started.elapsed() < Duration::from_millis(900));
    assert_eq!(busy.received().len(), 1, "one attempt, no retry");
    assert_eq!(h.fake.received().len(), 1);
    let events = h.stop().await;
    assert_eq!(events[0].upstream.as_deref(), Some("primary"));
    assert_eq!(events[0].attempts, 2);

    // The only upstream asks for more than the cap: 429 at once, with our own `retry-after`.
    let h = Harness::from_yaml(
        &retry_after_config(500),
        FakeConfig {
            fault: Fault::Status(429),
            retry_after: Some("30".into()),
            ..FakeConfig::default()
        },
        harness::off(),
        None,
    )
    .await;
    let started = std::time::Instant::now();
    let r = h.post("/v1/chat/completions", &chat("now")).await;
    assert!(started.elapsed() < Duration::from_millis(900));
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "30");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "upstream_rate_limited");
    assert_eq!(v["error"]["type"], "rate_limit_error");
    let events = h.stop().await;
    assert_eq!(events[0].attempts, 1);
    assert_eq!(events[0].status, 429);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_upstream_gets_deployment_path_api_version_and_its_own_key() {
    let yaml = "upstreams:\n\
         - {id: az, kind: azure, base_url: '{fake_root}', api_version: '2024-10-21', \
         deployments: {fake-model: prod-4o}, api_key_env: UPSTREAM_KEY}\n\
         applications:\n\
         - {id: assistant, upstreams: [az], models: {chat: fake-model}}\n";
    let h = Harness::from_yaml(yaml, FakeConfig::default(), harness::off(), None).await;
    let r = h.post("/v1/chat/completions", &chat("hello azure")).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "echo: hello azure");
    // The caller's key in `api-key` (Azure style), streamed.
    let mut body = chat("streamed");
    body["stream"] = json!(true);
    let r = h
        .client
        .post(h.url("/v1/chat/completions"))
        .header("api-key", &h.key)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(sse_text(&r.text().await.unwrap()), "echo: streamed");
    let r = h
        .post("/v1/embeddings", &json!({"model": "chat", "input": "x"}))
        .await;
    assert_eq!(r.status(), 200);

    let got = h.fake.received();
    assert_eq!(got.len(), 3);
    let paths: Vec<_> = got.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/openai/deployments/prod-4o/chat/completions",
            "/openai/deployments/prod-4o/chat/completions",
            "/openai/deployments/prod-4o/embeddings",
        ]
    );
    for r in &got {
        assert_eq!(r.query, "api-version=2024-10-21");
        assert_eq!(
            r.headers["api-key"], "sk-upstream",
            "the upstream's own key"
        );
        assert!(r.headers.get("authorization").is_none());
        for (name, value) in &r.headers {
            assert!(
                !value.as_bytes().windows(4).any(|w| w == b"dmk_")
                    && !String::from_utf8_lossy(value.as_bytes()).contains(&h.key),
                "the caller's key went upstream in `{name}`"
            );
        }
    }
    let events = h.stop().await;
    assert_eq!(events.len(), 3);
    assert!(events.iter().all(|e| e.upstream.as_deref() == Some("az")));
}

/// A gateway whose audit queue holds one event, with the given `on_full`.
async fn tiny_audit_queue(on_full: &str) -> Harness {
    let yaml = format!(
        "audit: {{queue: 1, on_full: {on_full}}}\n\
         upstreams:\n- {{id: primary, base_url: '{{fake}}'}}\n\
         applications:\n- {{id: assistant, upstreams: [primary], models: {{chat: fake-model}}}}\n"
    );
    let fake = FakeConfig {
        chunk_chars: 1,
        chunk_delay: Duration::from_millis(20),
        ..FakeConfig::default()
    };
    Harness::from_yaml(&yaml, fake, harness::off(), None).await
}

async fn audit_lost(h: &Harness) -> String {
    let text = h
        .client
        .get(h.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find(|l| l.starts_with("demarc_gateway_audit_lost_total "))
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_audit_queue_refuses_when_fail_closed_and_serves_when_fail_open() {
    let mut body = chat("a slow stream");
    body["stream"] = json!(true);

    // fail-closed: while a stream holds the only slot, another request is refused.
    let h = tiny_audit_queue("fail-closed").await;
    let mut stream = h.post("/v1/chat/completions", &body).await;
    assert_eq!(stream.status(), 200);
    stream.chunk().await.unwrap();
    let r = h.post("/v1/chat/completions", &chat("one more")).await;
    assert_eq!(r.status(), 503);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "audit_unavailable");
    assert_eq!(
        h.fake.received().len(),
        1,
        "the refused request never went upstream"
    );
    assert_eq!(audit_lost(&h).await, "demarc_gateway_audit_lost_total 1");
    while stream.chunk().await.unwrap().is_some() {}
    let r = h.post("/v1/chat/completions", &chat("after")).await;
    assert_eq!(r.status(), 200, "the slot came back when the stream ended");
    let events = h.stop().await;
    assert_eq!(events.len(), 2, "the stream and the last request");
    assert!(events.iter().all(|e| e.status == 200));

    // fail-open: the same request is served, and its lost event counted.
    let h = tiny_audit_queue("fail-open").await;
    let mut stream = h.post("/v1/chat/completions", &body).await;
    assert_eq!(stream.status(), 200);
    stream.chunk().await.unwrap();
    let r = h.post("/v1/chat/completions", &chat("one more")).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "echo: one more");
    assert_eq!(audit_lost(&h).await, "demarc_gateway_audit_lost_total 1");
    while stream.chunk().await.unwrap().is_some() {}
    let events = h.stop().await;
    assert_eq!(events.len(), 1, "only the stream's event was written");
    assert!(events[0].stream);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_budgets_per_application_and_per_user() {
    let expect_budget_refusal = |r: reqwest::Response, what: &'static str| async move {
        assert_eq!(r.status(), 429, "{what}");
        let retry: u64 = r.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(retry >= 1, "{retry}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], "rate_limit_exceeded");
        assert_eq!(v["error"]["type"], "rate_limit_error");
        assert!(v["error"]["param"].is_null());
        let message = v["error"]["message"].as_str().unwrap();
        assert!(message.contains(what), "{message}");
    };

    // The application's budget: the first answer's tokens (more than 10) use it up.
    let h = Harness::start_with_limits("{tokens_per_minute: 10}", FakeConfig::default()).await;
    let r = h
        .post(
            "/v1/chat/completions",
            &chat("a prompt of a few dozen tokens at least"),
        )
        .await;
    assert_eq!(r.status(), 200);
    let r = h.post("/v1/chat/completions", &chat("again")).await;
    expect_budget_refusal(r, "the application's token budget").await;
    let events = h.stop().await;
    assert_eq!(events.len(), 2);
    assert!(events[0].prompt_tokens + events[0].completion_tokens > 10);
    assert_eq!(events[1].error.as_deref(), Some("rate_limit_exceeded"));

    // Per user: ann's budget is spent by a plain answer, bob's by a streamed one (usage from
    // the stream's last chunk); each user is refused alone.
    let h = Harness::start_with_limits("{user_tokens_per_minute: 10}", FakeConfig::default()).await;
    let send = |user: &'static str, body: Value| {
        h.client
            .post(h.url("/v1/chat/completions"))
            .bearer_auth(&h.key)
            .header("x-demarc-user", user)
            .json(&body)
            .send()
    };
    let long = chat("a prompt of a few dozen tokens at least");
    assert_eq!(send("ann", long.clone()).await.unwrap().status(), 200);
    let mut streamed = long.clone();
    streamed["stream"] = json!(true);
    streamed["stream_options"] = json!({"include_usage": true});
    let r = send("bob", streamed).await.unwrap();
    assert_eq!(r.status(), 200);
    r.text().await.unwrap();
    expect_budget_refusal(
        send("ann", chat("hi")).await.unwrap(),
        "the user's token budget",
    )
    .await;
    expect_budget_refusal(
        send("bob", chat("hi")).await.unwrap(),
        "the user's token budget",
    )
    .await;
    assert_eq!(
        send("cy", chat("hi")).await.unwrap().status(),
        200,
        "another user still has a budget"
    );
    let events = h.stop().await;
    assert_eq!(events.len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_that_stalls_midway_ends_at_the_total_timeout() {
    let yaml = "upstreams:\n\
         - {id: primary, base_url: '{fake}', timeouts: {first_byte_ms: 1000, total_ms: 800}}\n\
         applications:\n\
         - {id: assistant, upstreams: [primary], models: {chat: fake-model}}\n";
    let fake = FakeConfig {
        chunk_chars: 3,
        ..FakeConfig::default()
    };
    let h = Harness::from_yaml(yaml, fake, harness::off(), None).await;
    let mut body = chat("this answer stops half way through");
    body["stream"] = json!(true);
    body["fake"] = json!({"fault": "stall"});
    let started = std::time::Instant::now();
    let r = h.post("/v1/chat/completions", &body).await;
    assert_eq!(r.status(), 200);
    let wire = r.text().await.unwrap();
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(700) && took < Duration::from_secs(3),
        "{took:?}"
    );
    let text = sse_text(&wire);
    assert!(
        !text.is_empty() && "echo: this answer stops half way through".starts_with(&text),
        "the first half arrived: {text:?}"
    );
    assert!(!wire.contains("[DONE]"));
    let last = wire.trim_end().lines().last().unwrap();
    let v: Value = serde_json::from_str(last.strip_prefix("data: ").unwrap()).unwrap();
    assert_eq!(v["error"]["code"], "upstream_timeout", "{wire}");
    let mut closed = false;
    for _ in 0..100 {
        if h.fake
            .state
            .open_streams
            .load(std::sync::atomic::Ordering::Relaxed)
            == 0
        {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(closed, "the stalled upstream request was dropped");
    let events = h.stop().await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].error.as_deref(), Some("upstream_timeout"));
}

/// An address where connections are refused: the port stays bound (so no other test's server
/// can take it while this test runs) but nothing listens on it.
fn refusing_address() -> (tokio::net::TcpSocket, std::net::SocketAddr) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = socket.local_addr().unwrap();
    (socket, addr)
}

/// Shared counters that are always down.
struct DownCounters;

impl demarc_gateway::SharedCounters for DownCounters {
    fn add<'a>(&'a self, _key: &'a str, _window: i64, _by: i64) -> demarc_gateway::CountFuture<'a> {
        Box::pin(async { Err("the shared counters are down".into()) })
    }
    fn admit<'a>(
        &'a self,
        _checks: &'a [demarc_gateway::Check<'a>],
        _window: i64,
    ) -> demarc_gateway::AdmitFuture<'a> {
        Box::pin(async { Err("the shared counters are down".into()) })
    }
    fn round_trips(&self) -> u64 {
        0
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_shared_counters_down_fail_open_still_holds_a_token_budget() {
    let h = Harness::start_shared("{tokens_per_minute: 10}", Arc::new(DownCounters)).await;
    let r = h
        .post(
            "/v1/chat/completions",
            &chat("a prompt of a few dozen tokens at least"),
        )
        .await;
    assert_eq!(r.status(), 200, "fail-open serves");
    // The answer's tokens were charged in this replica's memory, which the fallback counts with.
    let r = h.post("/v1/chat/completions", &chat("again")).await;
    assert_eq!(r.status(), 429);
    h.stop().await;
}
