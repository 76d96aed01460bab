//! A gateway and a fake upstream on loopback, with in-memory keys and audit sink.
#![allow(dead_code)]

use std::sync::Arc;

use demarc_fake::{FakeConfig, FakeUpstream};
use demarc_gateway::Grounding;
use demarc_gateway::MemoryKeys;
use demarc_gateway::SharedCounters;
use demarc_gateway::{ApplicationConfig, GatewayConfig};
use demarc_gateway::{AuditEvent, AuditSink, MemorySink};
use demarc_gateway::{BackendError, Policy};
use demarc_gateway::{Gateway, serve};
use serde_json::Value;

pub struct Harness {
    pub fake: FakeUpstream,
    pub addr: std::net::SocketAddr,
    pub keys: Arc<MemoryKeys>,
    pub key: String,
    pub client: reqwest::Client,
    /// The running gateway (its activity, for evidence); dropped by `stop` so the audit
    /// writer can finish.
    running: Option<Arc<Gateway>>,
    sink: Arc<MemorySink>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
    writer: Option<tokio::task::JoinHandle<()>>,
}

pub type PolicyFor =
    Arc<dyn Fn(&ApplicationConfig) -> Result<Arc<dyn Policy>, BackendError> + Send + Sync>;

pub fn off() -> PolicyFor {
    Arc::new(|_| Ok(Arc::new(demarc_gateway::Off) as Arc<dyn Policy>))
}

impl Harness {
    /// `extra` is YAML added at the top level of the config.
    pub async fn start(extra: &str, fake: FakeConfig) -> Self {
        Self::build(extra, None, None, "{}", fake, off()).await
    }

    pub async fn start_with_policy(policy: PolicyFor, fake: FakeConfig) -> Self {
        Self::build("", None, None, "{}", fake, policy).await
    }

    pub async fn start_with_grounding(grounding: Arc<Grounding>) -> Self {
        let mut map = std::collections::HashMap::new();
        map.insert("assistant".to_string(), grounding);
        Self::build_with(
            "",
            None,
            None,
            "{}",
            FakeConfig::default(),
            off(),
            map,
            None,
        )
        .await
    }

    /// Limits counted in shared counters (the store), as by several replicas.
    pub async fn start_shared(limits: &str, counters: Arc<dyn SharedCounters>) -> Self {
        let extra = "shared_limits: true\n";
        let grounding = Default::default();
        Self::build_with(
            extra,
            None,
            None,
            limits,
            FakeConfig::default(),
            off(),
            grounding,
            Some(counters),
        )
        .await
    }

    pub async fn start_with_limits(limits: &str, fake: FakeConfig) -> Self {
        Self::build("", None, None, limits, fake, off()).await
    }

    /// A gateway from config YAML written by the test (everything but `listen`): `{fake}` in it
    /// stands for the fake's base URL, `{fake_root}` for the same without `/v1`. The key is for
    /// application `assistant`; `UPSTREAM_KEY` is `sk-upstream`. Audit events go to `sink`
    /// when one is given (then `stop` returns none).
    pub async fn from_yaml(
        yaml: &str,
        fake: FakeConfig,
        policy_for: PolicyFor,
        sink: Option<Arc<dyn AuditSink>>,
    ) -> Self {
        let fake = FakeUpstream::start("127.0.0.1:0".parse().unwrap(), fake)
            .await
            .unwrap();
        let yaml = format!("listen: 127.0.0.1:0\n{yaml}")
            .replace("{fake}", &fake.base_url())
            .replace("{fake_root}", &format!("http://{}", fake.addr));
        Self::launch(fake, &yaml, policy_for, Default::default(), None, sink).await
    }

    /// The only upstream is at `url` (the fake runs but is not used).
    pub async fn start_with_upstream_url(url: &str, fake: FakeConfig) -> Self {
        Self::build("", Some(url), None, "{}", fake, off()).await
    }

    /// `url` comes first in failover order, the fake second.
    pub async fn start_with_first_upstream(url: &str, fake: FakeConfig) -> Self {
        Self::build("", None, Some(url), "{}", fake, off()).await
    }

    async fn build(
        extra: &str,
        only: Option<&str>,
        first: Option<&str>,
        limits: &str,
        fake: FakeConfig,
        policy_for: PolicyFor,
    ) -> Self {
        Self::build_with(
            extra,
            only,
            first,
            limits,
            fake,
            policy_for,
            Default::default(),
            None,
        )
        .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn build_with(
        extra: &str,
        only: Option<&str>,
        first: Option<&str>,
        limits: &str,
        fake: FakeConfig,
        policy_for: PolicyFor,
        grounding: std::collections::HashMap<String, Arc<Grounding>>,
        counters: Option<Arc<dyn SharedCounters>>,
    ) -> Self {
        let fake = FakeUpstream::start("127.0.0.1:0".parse().unwrap(), fake)
            .await
            .unwrap();
        let primary = only.map_or_else(|| fake.base_url(), str::to_string);
        let breaker = if extra.contains("# breaker-2") { 2 } else { 50 };
        let mut upstreams = format!(
            "- {{id: primary, base_url: '{primary}', api_key_env: UPSTREAM_KEY, \
             timeouts: {{first_byte_ms: 1000, total_ms: 5000}}, retries: {{max: 2, backoff_ms: 5}}, \
             circuit_breaker: {{failures: {breaker}}}}}\n"
        );
        let mut order = "[primary]".to_string();
        if let Some(first) = first {
            upstreams = format!(
                "- {{id: dead, base_url: '{first}', circuit_breaker: {{failures: 1}}, retries: {{max: 2, backoff_ms: 5}}}}\n{upstreams}"
            );
            order = "[dead, primary]".into();
        }
        let yaml = format!(
            "listen: 127.0.0.1:0\n{extra}upstreams:\n{upstreams}applications:\n\
             - {{id: assistant, upstreams: {order}, models: {{chat: fake-model}}, limits: {limits}}}\n"
        );
        Self::launch(fake, &yaml, policy_for, grounding, counters, None).await
    }

    async fn launch(
        fake: FakeUpstream,
        yaml: &str,
        policy_for: PolicyFor,
        grounding: std::collections::HashMap<String, Arc<Grounding>>,
        counters: Option<Arc<dyn SharedCounters>>,
        audit: Option<Arc<dyn AuditSink>>,
    ) -> Self {
        let config = GatewayConfig::parse("test.yaml", yaml, &|name| {
            (name == "UPSTREAM_KEY").then(|| "sk-upstream".to_string())
        })
        .unwrap();
        let keys = Arc::new(MemoryKeys::default());
        let key = keys.create("assistant").unwrap();
        let sink = Arc::new(MemorySink::default());
        let listener = tokio::net::TcpListener::bind(config.listen).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (gateway, writer) = Gateway::start_with_grounding(
            config,
            keys.clone(),
            audit.unwrap_or_else(|| sink.clone()),
            &*policy_for,
            grounding,
            counters,
        )
        .unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let running = gateway.clone();
        let server = tokio::spawn(async move {
            serve(listener, demarc_gateway::Live::new(gateway), async move {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        Self {
            fake,
            addr,
            keys,
            key,
            client: reqwest::Client::new(),
            running: Some(running),
            sink,
            shutdown: Some(tx),
            server: Some(server),
            writer: Some(writer),
        }
    }

    /// The running gateway.
    pub fn gateway(&self) -> &Gateway {
        self.running.as_deref().unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .bearer_auth(&self.key)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// Shut down (drain, flush the audit log) and return every audit event written.
    pub async fn stop(mut self) -> Vec<AuditEvent> {
        self.running = None;
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            tokio::time::timeout(std::time::Duration::from_secs(10), server)
                .await
                .unwrap()
                .unwrap();
        }
        if let Some(writer) = self.writer.take() {
            tokio::time::timeout(std::time::Duration::from_secs(10), writer)
                .await
                .unwrap()
                .unwrap();
        }
        self.sink.events.lock().unwrap().clone()
    }
}

/// The text a client assembles from a chat or Responses stream.
pub fn sse_text(wire: &str) -> String {
    let mut text = String::new();
    for line in wire.lines() {
        let Some(data) = line.strip_prefix("data: ") else {
            continue;
        };
        let Ok(v) = serde_json::from_str::<Value>(data) else {
            continue;
        };
        if let Some(c) = v
            .pointer("/choices/0/delta/content")
            .and_then(Value::as_str)
        {
            text.push_str(c);
        }
        if v["type"] == "response.output_text.delta" {
            text.push_str(v["delta"].as_str().unwrap_or(""));
        }
    }
    text
}
