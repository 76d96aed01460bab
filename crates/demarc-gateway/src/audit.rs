//! Audit: exactly one event per request, handed to a bounded queue and written in batches by
//! one writer task into an [`AuditSink`] (the store's hash-chained log, or a JSON-lines file).
//!
//! A request reserves its queue slot before any work is done, so under `fail-closed` a full
//! queue refuses the request instead of losing its event; under `fail-open` the request is
//! served and the lost event is counted.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use tokio::sync::mpsc;

use crate::config::OnFull;
use crate::endpoint::Endpoint;
use crate::error::BackendError;
use crate::policy::Verdicts;

/// What the gateway records about one request. Never holds completion text, nor prompt text
/// unless the application asks for it (`audit.store_prompt: redacted`, after redaction).
#[derive(Debug, Clone, Serialize)]
pub struct AuditEvent {
    /// When the request ended (RFC 3339, UTC, in JSON).
    #[serde(with = "time::serde::rfc3339")]
    pub time: time::OffsetDateTime,
    pub request_id: String,
    pub application: Option<String>,
    pub user: Option<String>,
    pub endpoint: Endpoint,
    pub upstream: Option<String>,
    pub model: Option<String>,
    pub stream: bool,
    pub status: u16,
    /// The error code returned to the caller, if the request failed.
    pub error: Option<String>,
    pub latency_ms: f64,
    pub attempts: u32,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub verdicts: Verdicts,
    /// Passages added from approved grounding sources, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grounding: Option<crate::grounding::GroundingUse>,
    /// The user and tool texts as sent upstream, after the input policy's redaction; only
    /// under `audit.store_prompt: redacted`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// The id (never the token) of the canary injected into the request's system context.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canary: Option<String>,
}

pub type SinkFuture<'a> = Pin<Box<dyn Future<Output = Result<(), BackendError>> + Send + 'a>>;

/// Where batches of audit events go.
pub trait AuditSink: Send + Sync + 'static {
    fn write<'a>(&'a self, batch: &'a [AuditEvent]) -> SinkFuture<'a>;

    /// Whether `error` means the sink will never take this batch (its data is invalid, the
    /// chain it extends is broken): then it is given up after a few tries instead of being
    /// retried until the sink is back. By default every failure may pass.
    fn refuses_for_good(&self, _error: &BackendError) -> bool {
        false
    }
}

/// Events appended as JSON lines to a file (when no store is configured).
pub struct JsonlSink {
    file: tokio::sync::Mutex<tokio::fs::File>,
}

impl JsonlSink {
    pub async fn open(path: &std::path::Path) -> std::io::Result<Self> {
        let file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .await?;
        Ok(Self {
            file: tokio::sync::Mutex::new(file),
        })
    }
}

impl AuditSink for JsonlSink {
    fn write<'a>(&'a self, batch: &'a [AuditEvent]) -> SinkFuture<'a> {
        Box::pin(async move {
            use tokio::io::AsyncWriteExt;
            let mut buf = Vec::with_capacity(batch.len() * 256);
            for event in batch {
                serde_json::to_writer(&mut buf, event).map_err(BackendError::from)?;
                buf.push(b'\n');
            }
            let mut file = self.file.lock().await;
            file.write_all(&buf).await.map_err(BackendError::from)?;
            file.flush().await.map_err(BackendError::from)
        })
    }
}

/// Events kept in memory (tests, and `--audit memory` diagnostics).
#[derive(Default)]
pub struct MemorySink {
    pub events: std::sync::Mutex<Vec<AuditEvent>>,
}

impl AuditSink for MemorySink {
    fn write<'a>(&'a self, batch: &'a [AuditEvent]) -> SinkFuture<'a> {
        Box::pin(async move {
            if let Ok(mut events) = self.events.lock() {
                events.extend_from_slice(batch);
            }
            Ok(())
        })
    }
}

/// The sending side, shared by every request.
pub struct Auditor {
    tx: mpsc::Sender<AuditEvent>,
    on_full: OnFull,
    lost: AtomicU64,
    written: Arc<AtomicU64>,
    failed_writes: Arc<AtomicU64>,
}

/// A request's right to one audit event.
pub struct Slot(Option<mpsc::OwnedPermit<AuditEvent>>);

/// The audit queue is full and the policy is fail-closed.
#[derive(Debug)]
pub struct QueueFull;

impl Auditor {
    /// Start the writer task; it ends once every sender is gone and the queue is drained.
    pub fn start(
        sink: Arc<dyn AuditSink>,
        queue: usize,
        batch: usize,
        on_full: OnFull,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(queue.max(1));
        let written = Arc::new(AtomicU64::new(0));
        let failed_writes = Arc::new(AtomicU64::new(0));
        let handle = tokio::spawn(write_loop(
            rx,
            sink,
            batch.max(1),
            written.clone(),
            failed_writes.clone(),
        ));
        let auditor = Self {
            tx,
            on_full,
            lost: AtomicU64::new(0),
            written,
            failed_writes,
        };
        (auditor, handle)
    }

    /// Reserve the slot for one request's event.
    pub fn reserve(&self) -> Result<Slot, QueueFull> {
        match self.tx.clone().try_reserve_owned() {
            Ok(permit) => Ok(Slot(Some(permit))),
            Err(_) if self.on_full == OnFull::FailOpen => Ok(Slot(None)),
            Err(_) => {
                self.lost.fetch_add(1, Ordering::Relaxed);
                Err(QueueFull)
            }
        }
    }

    /// Emit the event into a reserved slot (or, fail-open without a slot, try the queue).
    pub fn emit(&self, slot: Slot, event: AuditEvent) {
        match slot.0 {
            Some(permit) => {
                permit.send(event);
            }
            None => {
                if self.tx.try_send(event).is_err() {
                    self.lost.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// Events that could not be queued (fail-open) or requests refused (fail-closed).
    pub fn lost(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }

    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    pub fn failed_writes(&self) -> u64 {
        self.failed_writes.load(Ordering::Relaxed)
    }

    pub fn queued(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }
}

/// The first pause before a failed audit write is tried again, and the longest.
const RETRY_FIRST: std::time::Duration = std::time::Duration::from_millis(50);
const RETRY_MOST: std::time::Duration = std::time::Duration::from_secs(2);

/// How long the writer waits for more events once one has arrived.
const LINGER: std::time::Duration = std::time::Duration::from_millis(5);

async fn write_loop(
    mut rx: mpsc::Receiver<AuditEvent>,
    sink: Arc<dyn AuditSink>,
    batch: usize,
    written: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
) {
    let mut buf = Vec::with_capacity(batch);
    while rx.recv_many(&mut buf, batch).await > 0 {
        // Wait a moment for more events so that one transaction carries many: under load, a
        // write per request costs the store (and the threads handing it over) more than the
        // request itself. A full batch goes out without waiting.
        if buf.len() < batch {
            tokio::time::sleep(LINGER).await;
            while buf.len() < batch {
                match rx.try_recv() {
                    Ok(event) => buf.push(event),
                    Err(_) => break,
                }
            }
        }
        // A batch the sink cannot take now (the store is down or busy) is kept and retried
        // until it is written: meanwhile the queue fills, and `audit.on_full` decides about new
        // requests, so with `fail-closed` no request is served without its event. Only a batch
        // the sink refuses for good is given up, after a few tries, and counted.
        let mut attempt = 0u32;
        loop {
            match sink.write(&buf).await {
                Ok(()) => {
                    written.fetch_add(buf.len() as u64, Ordering::Relaxed);
                    if attempt > 0 {
                        tracing::warn!(
                            attempts = attempt + 1,
                            events = buf.len(),
                            "audit writes go through again"
                        );
                    }
                    break;
                }
                Err(e) if sink.refuses_for_good(&e) && attempt >= 2 => {
                    failed.fetch_add(buf.len() as u64, Ordering::Relaxed);
                    tracing::error!(error = %e, events = buf.len(), "audit events refused by the store for good; dropped");
                    break;
                }
                Err(e) => {
                    // The first failure and then one in twenty, not a line per retry.
                    if attempt.is_multiple_of(20) {
                        tracing::warn!(error = %e, attempt, events = buf.len(), "audit write failed; kept and retried");
                    }
                    tokio::time::sleep(
                        RETRY_FIRST
                            .saturating_mul(1 << attempt.min(6))
                            .min(RETRY_MOST),
                    )
                    .await;
                    attempt += 1;
                }
            }
        }
        buf.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(n: u16) -> AuditEvent {
        AuditEvent {
            time: time::OffsetDateTime::now_utc(),
            request_id: format!("r{n}"),
            application: None,
            user: None,
            endpoint: Endpoint::ChatCompletions,
            upstream: None,
            model: None,
            stream: false,
            status: n,
            error: None,
            latency_ms: 0.0,
            attempts: 0,
            prompt_tokens: 0,
            completion_tokens: 0,
            verdicts: Verdicts::default(),
            grounding: None,
            prompt: None,
            canary: None,
        }
    }

    #[tokio::test]
    async fn full_queue_fails_closed_and_every_reserved_event_is_written() {
        let sink = Arc::new(MemorySink::default());
        let (auditor, writer) = Auditor::start(sink.clone(), 2, 10, OnFull::FailClosed);
        let a = auditor.reserve().unwrap();
        let b = auditor.reserve().unwrap();
        assert!(auditor.reserve().is_err(), "third request refused");
        assert_eq!(auditor.lost(), 1);
        auditor.emit(a, event(200));
        auditor.emit(b, event(400));
        drop(auditor);
        writer.await.unwrap();
        assert_eq!(sink.events.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn full_queue_fails_open_and_counts_the_loss() {
        let sink = Arc::new(MemorySink::default());
        let (auditor, writer) = Auditor::start(sink.clone(), 1, 10, OnFull::FailOpen);
        let a = auditor.reserve().unwrap();
        let b = auditor.reserve().unwrap();
        auditor.emit(b, event(1));
        auditor.emit(a, event(2));
        assert_eq!(auditor.lost(), 1);
        drop(auditor);
        writer.await.unwrap();
        assert_eq!(sink.events.lock().unwrap().len(), 1);
    }

    /// A sink that fails its first `fail` writes, for good or not.
    struct Flaky {
        fail: AtomicU64,
        for_good: bool,
        events: std::sync::Mutex<Vec<AuditEvent>>,
    }

    impl AuditSink for Flaky {
        fn write<'a>(&'a self, batch: &'a [AuditEvent]) -> SinkFuture<'a> {
            Box::pin(async move {
                if self
                    .fail
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                    .is_ok()
                {
                    return Err("the store is down".into());
                }
                self.events.lock().unwrap().extend_from_slice(batch);
                Ok(())
            })
        }

        fn refuses_for_good(&self, _error: &BackendError) -> bool {
            self.for_good
        }
    }

    fn flaky(fail: u64, for_good: bool) -> Arc<Flaky> {
        Arc::new(Flaky {
            fail: AtomicU64::new(fail),
            for_good,
            events: Default::default(),
        })
    }

    #[tokio::test]
    async fn a_store_that_is_down_loses_nothing_and_a_full_queue_then_refuses() {
        // Down for 5 tries (1.5 s of back-off): the first event is kept and retried.
        let sink = flaky(5, false);
        let (auditor, writer) = Auditor::start(sink.clone(), 2, 10, OnFull::FailClosed);
        let first = auditor.reserve().unwrap();
        auditor.emit(first, event(1));
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        // The writer holds the first; two more fill the queue; the next request is refused.
        for n in 2..=3 {
            let slot = auditor.reserve().unwrap();
            auditor.emit(slot, event(n));
        }
        assert!(auditor.reserve().is_err(), "no request without its event");
        drop(auditor);
        writer.await.unwrap();
        let written: Vec<u16> = sink
            .events
            .lock()
            .unwrap()
            .iter()
            .map(|e| e.status)
            .collect();
        assert_eq!(
            written,
            [1, 2, 3],
            "every event written once the store is back"
        );
    }

    #[tokio::test]
    async fn a_batch_refused_for_good_is_dropped_and_counted() {
        let sink = flaky(u64::MAX, true);
        let (auditor, writer) = Auditor::start(sink.clone(), 4, 10, OnFull::FailClosed);
        let slot = auditor.reserve().unwrap();
        auditor.emit(slot, event(1));
        let failed = auditor.failed_writes.clone();
        drop(auditor);
        writer.await.unwrap();
        assert_eq!(failed.load(Ordering::Relaxed), 1);
        assert!(sink.events.lock().unwrap().is_empty());
    }

    #[test]
    fn events_serialise_with_rfc3339_time() {
        let json = serde_json::to_value(event(200)).unwrap();
        let t = json["time"].as_str().unwrap();
        assert!(t.as_bytes()[10] == b'T' && t.ends_with('Z'), "{t}");
        assert_eq!(json["endpoint"], "chat_completions");
    }
}
