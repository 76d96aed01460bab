//! Ingested batches gathered into runs. Each batch is scanned when it arrives (so a batch that
//! cannot be read is refused at once); its counts then wait here, with the other batches of
//! its sensor, for up to [`GATHER_FOR`]; then they are added up (`ScanResult::absorb`, exactly
//! what one scan of every batch gives) and recorded as one run holding every batch's hash. Each
//! shipper's request is answered once that run is stored, so a 201 still means stored, while a
//! shipper sending a batch a second gets one run per second per sensor, not one per batch.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use demarc_discover::ScanResult;
use demarc_discover::report::KnownApplication;
use demarc_store::{RunSource, Store, StoreError};
use tokio::sync::{mpsc, oneshot};

/// How long a batch waits for others before its run is recorded.
pub const GATHER_FOR: Duration = Duration::from_secs(1);
/// Batches recorded in one run at most; a run with more is recorded early.
const MAX_BATCHES: usize = 1024;
/// Log bytes gathered at most before a run is recorded early (bounds the memory held).
const MAX_BYTES: u64 = 256 << 20;

/// One scanned batch on its way to a run.
pub struct Batch {
    pub sensor: String,
    /// The batch's scan: one input, read to its end, with its SHA-256.
    pub scan: ScanResult,
    /// The estate's applications when the batch came (the newest classify the run).
    pub apps: Vec<KnownApplication>,
}

/// What became of a batch.
pub enum Outcome {
    /// Recorded in run `run`, with `batches` batches in all and `findings` findings.
    Recorded {
        run: i64,
        batches: usize,
        findings: usize,
    },
    /// Its content is in the same gathering already (a shipper's retry): counted once.
    Duplicate(String),
    /// The run could not be stored; the shipper should send the batch again.
    Failed(String),
}

struct Pending {
    batch: Batch,
    reply: oneshot::Sender<Outcome>,
}

/// The task that gathers batches and records their runs.
pub struct Gatherer {
    queue: mpsc::Sender<Pending>,
}

impl Gatherer {
    /// Start the task (inside a tokio runtime); it ends when this value is dropped.
    pub fn start(store: Store, catalog: &'static demarc_discover::Catalog) -> Self {
        let (queue, batches) = mpsc::channel(MAX_BATCHES);
        tokio::spawn(gather(store, catalog, batches));
        Self { queue }
    }

    /// Hand a batch over and wait until its run is recorded (at most about [`GATHER_FOR`]
    /// and the time the store takes).
    pub async fn submit(&self, batch: Batch) -> Outcome {
        let (reply, outcome) = oneshot::channel();
        if self.queue.send(Pending { batch, reply }).await.is_err() {
            return Outcome::Failed("the ingest task has stopped".into());
        }
        outcome
            .await
            .unwrap_or_else(|_| Outcome::Failed("the ingest task has stopped".into()))
    }
}

async fn gather(
    store: Store,
    catalog: &'static demarc_discover::Catalog,
    mut batches: mpsc::Receiver<Pending>,
) {
    while let Some(first) = batches.recv().await {
        let until = tokio::time::Instant::now() + GATHER_FOR;
        let mut bytes = bytes_of(&first.batch.scan);
        let mut pending = vec![first];
        while pending.len() < MAX_BATCHES && bytes < MAX_BYTES {
            match tokio::time::timeout_at(until, batches.recv()).await {
                Ok(Some(p)) => {
                    bytes += bytes_of(&p.batch.scan);
                    pending.push(p);
                }
                Ok(None) | Err(_) => break,
            }
        }
        let mut by_sensor: BTreeMap<String, Vec<Pending>> = BTreeMap::new();
        for p in pending {
            by_sensor.entry(p.batch.sensor.clone()).or_default().push(p);
        }
        for (sensor, pending) in by_sensor {
            record(&store, catalog, &sensor, pending).await;
        }
    }
}

fn bytes_of(scan: &ScanResult) -> u64 {
    scan.files.iter().map(|f| f.bytes).sum()
}

/// Record one sensor's gathered batches as one run and answer each of them.
async fn record(
    store: &Store,
    catalog: &demarc_discover::Catalog,
    sensor: &str,
    pending: Vec<Pending>,
) {
    // The same content twice in one gathering (a retry that came before the first copy was
    // answered) is counted once; the later copy is told so.
    let mut first_of: HashMap<[u8; 32], String> = HashMap::new();
    let mut kept = Vec::with_capacity(pending.len());
    for p in pending {
        let file = p.batch.scan.files.first();
        let sha = file.and_then(|f| f.sha256);
        let name = file.map_or_else(String::new, |f| f.name.clone());
        match sha.and_then(|s| first_of.get(&s).map(|n| (s, n))) {
            Some((_, earlier)) => {
                let _ = p.reply.send(Outcome::Duplicate(format!(
                    "`{name}` has the content of `{earlier}`, which is being recorded now; a log is recorded once, so it is not counted again"
                )));
            }
            None => {
                if let Some(sha) = sha {
                    first_of.insert(sha, name);
                }
                kept.push(p);
            }
        }
    }
    let Some(last) = kept.last() else {
        return;
    };
    let apps = last.batch.apps.clone();
    let mut all = ScanResult::default();
    let mut replies = Vec::with_capacity(kept.len());
    for p in kept {
        all.absorb(p.batch.scan);
        replies.push(p.reply);
    }
    let report = crate::recording::report_of(catalog, &all, &apps);
    let now = time::OffsetDateTime::now_utc();
    let findings = crate::recording::findings_of(&report, now);
    let from = RunSource {
        source: match replies.len() {
            1 => format!("ingest {sensor}"),
            n => format!("ingest {sensor} ({n} batches)"),
        },
        sensor: Some(sensor.to_owned()),
        inputs: crate::recording::inputs_of(&all),
    };
    let outcome = |result: &Result<i64, StoreError>| match result {
        Ok(run) => Outcome::Recorded {
            run: *run,
            batches: from.inputs.len(),
            findings: findings.len(),
        },
        // Recorded by another process since the batch came: nothing of this run is stored,
        // and a batch sent again is then answered as a duplicate.
        Err(e @ StoreError::AlreadyRecorded { .. }) => {
            Outcome::Failed(format!("{e}; send the batches again"))
        }
        Err(e) => Outcome::Failed(e.to_string()),
    };
    let result = store.record_discovery_from(&from, now, &findings).await;
    if let Err(e) = &result {
        tracing::warn!(sensor, error = %e, "cannot record ingested batches");
    }
    for reply in replies {
        let _ = reply.send(outcome(&result));
    }
}
