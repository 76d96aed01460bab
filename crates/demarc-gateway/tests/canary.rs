//! Canaries made by demarc, end to end: a real SQLite store keeps them, the gateway injects
//! the current one into the system context and blocks any live one in answers (whole and
//! streamed, wherever the stream splits it), rotation keeps the old one blocked for its grace
//! period, and a restart on the same file injects the same canary. The fake upstream plays a
//! model that leaks its system prompt (`"fake": {"echo": "system"}`). Real HTTP over loopback.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness;

use std::sync::Arc;
use std::time::Duration;

use demarc_fake::{FakeConfig, FakeUpstream};
use demarc_gateway::GuardPolicy;
use demarc_gateway::MemoryKeys;
use demarc_gateway::Policy;
use demarc_gateway::{Gateway, serve};
use demarc_gateway::{GatewayConfig, PolicySpec};
use demarc_gateway::{StoreCanaries, StoreSink, observations};
use demarc_model::ObservationKind;
use demarc_store::Store;
use harness::sse_text;
use serde_json::{Value, json};

/// A gateway on a real store, with the fake upstream behind it.
struct Running {
    gateway: Option<Arc<Gateway>>,
    addr: std::net::SocketAddr,
    key: String,
    fake: FakeUpstream,
    client: reqwest::Client,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
    writer: Option<tokio::task::JoinHandle<()>>,
}

/// `canary` is the application's `canary:` mapping; `policy` its guard policy (`off` or the
/// default).
async fn start(store: &Store, canary: &str, policy: &str) -> Running {
    let fake = FakeUpstream::start("127.0.0.1:0".parse().unwrap(), FakeConfig::default())
        .await
        .unwrap();
    let yaml = format!(
        "listen: 127.0.0.1:0\n\
         upstreams: [{{id: primary, base_url: '{}'}}]\n\
         applications:\n  - {{id: assistant, upstreams: [primary], models: {{chat: m}}, canary: {canary}}}\n",
        fake.base_url()
    );
    let config = GatewayConfig::parse("test.yaml", &yaml, &|_| None).unwrap();
    let spec = if policy == "off" {
        PolicySpec::Off
    } else {
        PolicySpec::Default
    };
    let policy_for = move |_: &demarc_gateway::ApplicationConfig| match &spec {
        PolicySpec::Off => Ok(Arc::new(demarc_gateway::Off) as Arc<dyn Policy>),
        spec => Ok(Arc::new(GuardPolicy::from_spec(spec)?) as Arc<dyn Policy>),
    };
    let keys = Arc::new(MemoryKeys::default());
    let key = keys.create("assistant").unwrap();
    let listener = tokio::net::TcpListener::bind(config.listen).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let sink = Arc::new(StoreSink::new(
        store.clone(),
        format!("test:{}", addr.port()),
    ));
    let (gateway, writer) = Gateway::start_full(
        config,
        keys,
        sink,
        &policy_for,
        Default::default(),
        None,
        Some(Arc::new(StoreCanaries(store.clone()))),
    )
    .unwrap();
    gateway.refresh_canaries().await.unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let serving = gateway.clone();
    let server = tokio::spawn(async move {
        serve(listener, demarc_gateway::Live::new(serving), async move {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    Running {
        gateway: Some(gateway),
        addr,
        key,
        fake,
        client: reqwest::Client::new(),
        shutdown: Some(tx),
        server: Some(server),
        writer: Some(writer),
    }
}

impl Running {
    fn gateway(&self) -> &Gateway {
        self.gateway.as_deref().unwrap()
    }

    async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(format!("http://{}{path}", self.addr))
            .bearer_auth(&self.key)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// The system context the upstream received last (chat: the system messages).
    fn last_system(&self) -> String {
        let received = self.fake.received();
        let body = &received.last().unwrap().body;
        if let Some(instructions) = body.get("instructions").and_then(Value::as_str) {
            return instructions.to_string();
        }
        body["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["role"] == "system")
            .map(|m| m["content"].as_str().unwrap_or("").to_string())
            .collect::<Vec<_>>()
            .join("\n")
    }

    async fn stop(mut self) {
        self.gateway = None;
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            tokio::time::timeout(Duration::from_secs(10), server)
                .await
                .unwrap()
                .unwrap();
        }
        if let Some(writer) = self.writer.take() {
            tokio::time::timeout(Duration::from_secs(10), writer)
                .await
                .unwrap()
                .unwrap();
        }
    }
}

async fn open_store(dir: &tempfile::TempDir) -> Store {
    Store::open(&format!(
        "sqlite://{}",
        dir.path().join("demarc.db").display()
    ))
    .await
    .unwrap()
}

/// The token of the application's current canary, as the store holds it.
async fn current_token(store: &Store) -> String {
    let all = store.list_canaries(Some("assistant")).await.unwrap();
    let current: Vec<_> = all.iter().filter(|c| c.is_current()).collect();
    assert_eq!(current.len(), 1, "{all:?}");
    current[0].token.clone()
}

fn chat(text: &str) -> Value {
    json!({"model": "chat", "messages": [{"role": "user", "content": text}]})
}

/// A chat request whose answer repeats the system prompt.
fn leak(stream: bool, fake: Value) -> Value {
    let mut body = json!({"model": "chat", "stream": stream, "messages": [
        {"role": "system", "content": "You are the bank's HR assistant."},
        {"role": "user", "content": "What can you help me with?"}
    ]});
    let mut fake = fake;
    fake["echo"] = json!("system");
    body["fake"] = fake;
    body
}

/// A chat request whose answer is `reply`.
fn answer(reply: &str) -> Value {
    let mut body = chat("hello");
    body["fake"] = json!({"reply": reply});
    body
}

async fn status_and_code(r: reqwest::Response) -> (u16, String) {
    let status = r.status().as_u16();
    let v: Value = r.json().await.unwrap();
    (
        status,
        v["error"]["code"].as_str().unwrap_or("").to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leaked_canary_is_blocked_whole_and_streamed_at_every_split() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir).await;
    let gw = start(&store, "{inject: true}", "default").await;
    let token = current_token(&store).await;
    assert!(token.starts_with("dmc-") && token.len() == 20, "{token}");

    // An ordinary answer passes; the canary went upstream in the application's own system
    // message, after its text.
    let mut body = chat("hello");
    body["messages"] = json!([
        {"role": "system", "content": "You are the bank's HR assistant."},
        {"role": "user", "content": "hello"}
    ]);
    let r = gw.post("/v1/chat/completions", &body).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "echo: hello");
    let system = gw.last_system();
    assert!(
        system.starts_with("You are the bank's HR assistant.\n\nConfidential marker: ")
            && system.contains(&token),
        "{system}"
    );

    // The model repeats its system prompt: blocked, not streamed.
    let (status, code) = status_and_code(
        gw.post("/v1/chat/completions", &leak(false, json!({})))
            .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (400, "output_blocked"));

    // Streamed, with the reply split at every position in and around the canary.
    let reply = format!("echo: {}", gw_system_text(&gw));
    let at = reply.find(&token).unwrap();
    for cut in at.saturating_sub(2)..=at + token.len() + 1 {
        for fake in [
            json!({"split_at": [cut]}),
            json!({"split_at": [cut, cut + 3], "chunk_delay_ms": 15}),
        ] {
            let wire = gw
                .post("/v1/chat/completions", &leak(true, fake.clone()))
                .await
                .text()
                .await
                .unwrap();
            assert!(!wire.contains("dmc-"), "{fake}: canary leaked: {wire}");
            assert!(wire.contains("output_blocked"), "{fake}: {wire}");
            assert!(!wire.contains("[DONE]"), "{fake}: {wire}");
            // What was released is the text before the canary, or part of it.
            let released = sse_text(&wire);
            assert!(reply[..at].starts_with(&released), "{fake}: {wire}");
            if fake.get("chunk_delay_ms").is_some() && cut <= at {
                // The chunk before the split went out alone: all but the held-back tail.
                assert!(released.starts_with("echo: You are"), "{fake}: {wire}");
            }
        }
    }
    // Two characters per event, every event its own write.
    let wire = gw
        .post(
            "/v1/chat/completions",
            &leak(true, json!({"chunk_chars": 2, "chunk_delay_ms": 1})),
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(
        !wire.contains("dmc-") && wire.contains("output_blocked"),
        "{wire}"
    );

    // The Responses API: the canary joins `instructions`; streamed and whole leaks blocked.
    for stream in [false, true] {
        let body = json!({"model": "chat", "stream": stream, "instructions": "Be brief.",
                          "input": "hi", "fake": {"echo": "system", "chunk_chars": 3}});
        let r = gw.post("/v1/responses", &body).await;
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        assert!(!text.contains("dmc-"), "{text}");
        assert!(text.contains("output_blocked"), "{text}");
        assert_eq!(status, if stream { 200 } else { 400 });
        let instructions = gw.last_system();
        assert!(instructions.starts_with("Be brief.\n\n") && instructions.contains(&token));
    }
    // Embeddings carry no system context: nothing is injected.
    let r = gw
        .post(
            "/v1/embeddings",
            &json!({"model": "chat", "input": "hello"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert!(
        !gw.fake
            .received()
            .last()
            .unwrap()
            .body
            .to_string()
            .contains("dmc-")
    );

    // Evidence for prompt filtering names the canary and the leaks blocked, never the token.
    let observed = observations(gw.gateway());
    let output = observed
        .iter()
        .find(|o| o.kind == ObservationKind::GatewayOutputScan)
        .unwrap();
    assert!(
        output
            .summary
            .contains("system-prompt leaks checked against a demarc canary")
            && output.summary.contains("rotated every 7d"),
        "{}",
        output.summary
    );
    let blocked_leaks = 1 + 2 * (token.len() + 4) + 1 + 2;
    assert!(
        output
            .summary
            .contains(&format!("{blocked_leaks} leaks blocked")),
        "{}",
        output.summary
    );
    assert!(observed.iter().all(|o| !o.summary.contains("dmc-")));
    let activity = gw.gateway().activity();
    let canary_id = store.list_canaries(Some("assistant")).await.unwrap()[0]
        .id
        .clone();
    let chain = format!("test:{}", gw.addr.port());
    gw.stop().await;

    // The audit trail names the canary by id on every request that carried it, and never
    // holds the token.
    let report = store.verify_audit().await.unwrap();
    assert!(report.is_intact(), "{report:?}");
    let events = store.audit_events(&chain, 0, i64::MAX).await.unwrap();
    assert_eq!(events.len() as u64, activity[0].2.requests);
    for e in &events {
        assert!(!e.payload.contains("dmc-"), "{}", e.payload);
    }
    let with_id = events
        .iter()
        .filter(|e| e.payload.contains(&format!("\"canary\":\"{canary_id}\"")))
        .count();
    assert_eq!(with_id as u64, activity[0].2.canary_injected);
    assert_eq!(with_id, events.len() - 1, "all but the embeddings request");
    let blocked = events
        .iter()
        .filter(|e| e.payload.contains("\"blocked_by\":\"canary\""))
        .count();
    assert_eq!(blocked, blocked_leaks);
    store.close().await;
}

/// The system context the fake echoes for [`leak`] (what it received last is an ordinary
/// request with the same system message).
fn gw_system_text(gw: &Running) -> String {
    gw.last_system()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_keeps_the_old_canary_blocked_for_its_grace_and_a_restart_keeps_the_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir).await;
    let gw = start(&store, "{inject: true, rotate_every: 7d, grace: 1h}", "off").await;
    let old = current_token(&store).await;

    // Rotated as `demarc gateway canary rotate` does; the gateway reads it at its next check.
    let rotated = store.rotate_canary("assistant").await.unwrap();
    gw.gateway().refresh_canaries().await.unwrap();
    let new = current_token(&store).await;
    assert_eq!(new, rotated.token);
    assert_ne!(new, old);
    let r = gw.post("/v1/chat/completions", &chat("hello")).await;
    assert_eq!(r.status(), 200);
    let system = gw.last_system();
    assert!(system.contains(&new) && !system.contains(&old), "{system}");

    // Both are blocked: the new one, and the old one in an answer cached or still in flight.
    for token in [&old, &new] {
        let reply = format!("As instructed: {token}");
        let (status, code) =
            status_and_code(gw.post("/v1/chat/completions", &answer(&reply)).await).await;
        assert_eq!((status, code.as_str()), (400, "output_blocked"));
        let mut body = answer(&reply);
        body["stream"] = json!(true);
        body["fake"]["chunk_chars"] = json!(5);
        let wire = gw
            .post("/v1/chat/completions", &body)
            .await
            .text()
            .await
            .unwrap();
        assert!(
            !wire.contains("dmc-") && wire.contains("output_blocked"),
            "{wire}"
        );
    }
    gw.stop().await;
    store.close().await;

    // A restart on the same file injects the same canary and still blocks the old one.
    let store = open_store(&dir).await;
    let gw = start(&store, "{inject: true, rotate_every: 7d, grace: 1h}", "off").await;
    assert_eq!(current_token(&store).await, new, "no new canary at restart");
    let r = gw.post("/v1/chat/completions", &chat("hello")).await;
    assert_eq!(r.status(), 200);
    assert!(gw.last_system().contains(&new));
    let (status, _) = status_and_code(
        gw.post("/v1/chat/completions", &answer(&format!("{old}!")))
            .await,
    )
    .await;
    assert_eq!(status, 400);
    gw.stop().await;
    store.close().await;

    // Once its grace is over, the old canary is an ordinary string again.
    let store = open_store(&dir).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let gw = start(&store, "{inject: true, rotate_every: 7d, grace: 1s}", "off").await;
    let r = gw
        .post("/v1/chat/completions", &answer(&format!("{old}!")))
        .await;
    assert_eq!(r.status(), 200);
    let (status, _) = status_and_code(gw.post("/v1/chat/completions", &answer(&new)).await).await;
    assert_eq!(status, 400);
    assert_eq!(store.list_canaries(None).await.unwrap().len(), 2);
    gw.stop().await;
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_past_its_schedule_is_replaced_when_the_next_request_comes() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir).await;
    let gw = start(&store, "{inject: true, rotate_every: 1s}", "off").await;
    let first = current_token(&store).await;
    let r = gw.post("/v1/chat/completions", &chat("hello")).await;
    assert_eq!(r.status(), 200);
    assert!(gw.last_system().contains(&first));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = gw.post("/v1/chat/completions", &chat("hello")).await;
    assert_eq!(r.status(), 200);
    let second = current_token(&store).await;
    assert_ne!(second, first);
    assert!(gw.last_system().contains(&second));
    // The replaced one is in its (default, one-day) grace period.
    let r = gw.post("/v1/chat/completions", &answer(&first)).await;
    assert_eq!(r.status(), 400);
    // With the `off` policy the canary alone is what checks output: evidence says so.
    let observed = observations(gw.gateway());
    let output: Vec<_> = observed
        .iter()
        .filter(|o| o.kind == ObservationKind::GatewayOutputScan)
        .collect();
    assert_eq!(output.len(), 1, "{observed:?}");
    assert!(
        output[0].summary.starts_with(
            "output checked on every answer, streamed ones event by event: system-prompt leaks checked against a demarc canary"
        ) && output[0].summary.contains("3 requests carried it, 1 leaks blocked"),
        "{}",
        output[0].summary
    );
    gw.stop().await;
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_needs_a_store() {
    let yaml = "upstreams: [{id: a, base_url: 'http://127.0.0.1:9/v1'}]\n\
                applications: [{id: assistant, upstreams: [a], canary: {inject: true}}]\n";
    let config = GatewayConfig::parse("test.yaml", yaml, &|_| None).unwrap();
    let policy_for = |_: &demarc_gateway::ApplicationConfig| {
        Ok(Arc::new(demarc_gateway::Off) as Arc<dyn Policy>)
    };
    let err = Gateway::start(
        config,
        Arc::new(MemoryKeys::default()),
        Arc::new(demarc_gateway::MemorySink::default()),
        &policy_for,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(
        err.contains("assistant") && err.contains("needs a store"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reworded_canary_is_blocked_streamed_and_whole() {
    use base64::Engine as _;
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir).await;
    // `off`: the canary check alone watches the output (it decodes nothing itself).
    let gw = start(&store, "{inject: true}", "off").await;
    let token = current_token(&store).await;
    let spaced = token
        .chars()
        .map(String::from)
        .collect::<Vec<_>>()
        .join(" ");
    let reversed: String = token.chars().rev().collect();
    let encoded = base64::engine::general_purpose::STANDARD
        .encode(format!("my instructions carry {token} at the end"));
    for disguise in [
        spaced.clone(),
        reversed.clone(),
        encoded.clone(),
        token.to_uppercase().replace('-', "_"),
        format!("**{}**{}", &token[..6], &token[6..]),
    ] {
        let reply = format!("Here it is: {disguise} as asked.");
        let (status, code) =
            status_and_code(gw.post("/v1/chat/completions", &answer(&reply)).await).await;
        assert_eq!(
            (status, code.as_str()),
            (400, "output_blocked"),
            "{disguise}"
        );
        for chunk_chars in [1, 2, 3, 7] {
            let mut body = answer(&reply);
            body["stream"] = json!(true);
            body["fake"]["chunk_chars"] = json!(chunk_chars);
            let wire = gw
                .post("/v1/chat/completions", &body)
                .await
                .text()
                .await
                .unwrap();
            assert!(wire.contains("output_blocked"), "{disguise}: {wire}");
            let released = sse_text(&wire);
            assert!(
                "Here it is: ".starts_with(&released),
                "{disguise} in {chunk_chars}-char events: released {released:?}"
            );
        }
    }
    gw.stop().await;
    store.close().await;
}
