//! Ingested batches gathered into runs. Each batch is scanned when it arrives (so a batch that
//! cannot be read is refused at once); its counts then come here. One task records runs, one
//! after another: the batches that arrive while a run is being recorded wait, and the next run
//! takes all of them, per sensor, added up (`ScanResult::absorb`, exactly what one scan of
//! every batch gives) with every batch's hash. No batch waits for a timer, and each shipper's
//! request is answered once its run is stored (a 201 still means stored); the busier the
//! shippers, the more batches a run holds, so the runs recorded grow with what the store can
//! write, not with the batches sent.

use std::collections::{BTreeMap, HashMap};

use demarc_discover::ScanResult;
use demarc_discover::report::KnownApplication;
use demarc_store::{RunSource, Store, StoreError};
use tokio::sync::{mpsc, oneshot};

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

    /// Hand a batch over and wait until its run is recorded.
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
        // Everything that came while the last run was being recorded, and nothing more.
        let mut bytes = bytes_of(&first.batch.scan);
        let mut pending = vec![first];
        while pending.len() < MAX_BATCHES && bytes < MAX_BYTES {
            match batches.try_recv() {
                Ok(p) => {
                    bytes += bytes_of(&p.batch.scan);
                    pending.push(p);
                }
                Err(_) => break,
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
        let Some(sha) = sha else {
            kept.push(p);
            continue;
        };
        if let Some(earlier) = first_of.get(&sha) {
            let _ = p.reply.send(Outcome::Duplicate(format!(
                "`{name}` has the content of `{earlier}`, which is being recorded now; a log is recorded once, so it is not counted again"
            )));
            continue;
        }
        // Recorded by the run before this one (a retry that came while it was written).
        match store.earlier_recording(&sha).await {
            Ok(Some(earlier)) => {
                let _ = p.reply.send(Outcome::Duplicate(format!(
                    "`{name}` was recorded before ({earlier}); a log is recorded once, so nothing was recorded"
                )));
            }
            Ok(None) => {
                first_of.insert(sha, name);
                kept.push(p);
            }
            Err(e) => {
                let _ = p.reply.send(Outcome::Failed(e.to_string()));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn squid(user: &str, n: usize) -> std::sync::Arc<[u8]> {
        let line = |i: usize| {
            format!(
                "17330{i:05}.000 120 10.0.0.1 TCP_TUNNEL/200 4000 CONNECT chatgpt.com:443 {user} HIER_DIRECT/1.2.3.4 -\n"
            )
        };
        (0..n).map(line).collect::<String>().into_bytes().into()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn batches_sent_together_share_runs_and_add_up_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("s.db").display());
        let store = Store::open(&url).await.unwrap();
        let catalog: &'static demarc_discover::Catalog =
            Box::leak(Box::new(demarc_discover::Catalog::builtin().unwrap()));
        let gatherer = std::sync::Arc::new(Gatherer::start(store.clone(), catalog));
        let sent = (0..20).map(|i| {
            let gatherer = gatherer.clone();
            let scan = crate::recording::scan_batch(
                &format!("batch {i}"),
                squid(&format!("user{}", i % 3), 10 + i),
                catalog,
                None,
                None,
            );
            tokio::spawn(async move {
                let batch = Batch {
                    sensor: "proxy".into(),
                    scan,
                    apps: Vec::new(),
                };
                gatherer.submit(batch).await
            })
        });
        let mut runs = BTreeMap::new();
        for t in sent.collect::<Vec<_>>() {
            match t.await.unwrap() {
                Outcome::Recorded { run, batches, .. } => {
                    runs.insert(run, batches);
                }
                _ => panic!("not recorded"),
            }
        }
        assert!(runs.len() < 20, "{runs:?}");
        assert_eq!(runs.values().sum::<usize>(), 20);
        let mut requests = 0;
        for run in runs.keys() {
            for f in store.discovery_findings(*run).await.unwrap() {
                requests += f.requests;
            }
        }
        // 10 + 11 + ... + 29 lines, one request each.
        assert_eq!(requests, (10..30).sum::<i64>());
        // The same content again, while the first copy is recorded, counts once.
        let copy = || crate::recording::scan_batch("again", squid("ann", 5), catalog, None, None);
        let one = Batch {
            sensor: "proxy".into(),
            scan: copy(),
            apps: Vec::new(),
        };
        let two = Batch {
            sensor: "proxy".into(),
            scan: copy(),
            apps: Vec::new(),
        };
        let (a, b) = tokio::join!(gatherer.submit(one), gatherer.submit(two));
        let outcomes = [a, b];
        let duplicates = outcomes
            .iter()
            .filter(|o| matches!(o, Outcome::Duplicate(_)))
            .count();
        let failed = outcomes
            .iter()
            .filter(|o| matches!(o, Outcome::Failed(_)))
            .count();
        assert_eq!((duplicates, failed), (1, 0));
    }
}
