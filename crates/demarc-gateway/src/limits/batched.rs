//! Counters in a table of the store, batched: while one statement is on its way, the requests
//! that arrive meanwhile wait together and go in the next one. An idle gateway makes one round
//! trip per request, as before; a busy one makes far fewer round trips than requests, and no
//! request waits for a timer. Every answer still comes from the table, so replicas sharing it
//! count exactly.

use super::{AdmitFuture, Check, CountFuture, SharedCounters};
use crate::error::BackendError;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// Requests whose additions go in one statement, at most.
const MAX_JOBS: usize = 256;
/// Requests waiting for a statement, at most; beyond it a request waits to be queued.
const QUEUE: usize = 4096;
/// How often windows that no request can count in any more are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(60);
/// Windows are one minute; a window is kept one more minute for replicas whose clocks lag.
const KEEP_MS: i64 = 120_000;

pub type AddAllFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Vec<i64>, BackendError>> + Send + 'a>>;

/// A table of counters that takes many additions in one statement.
pub trait CounterTable: Send + Sync + 'static {
    /// Add each `(key, window_start_ms, by)` and return, in the order given, the counter's
    /// value just after that addition (a key may appear more than once).
    fn add_all<'a>(&'a self, adds: &'a [(&'a str, i64, i64)]) -> AddAllFuture<'a>;

    /// Delete the counters of windows that started before `before_ms`; return how many.
    fn prune(&self, before_ms: i64) -> CountFuture<'_>;
}

struct Job {
    adds: Vec<(String, i64, i64)>,
    /// `None` for a refund nobody waits for.
    reply: Option<oneshot::Sender<Result<Vec<i64>, String>>>,
}

/// [`SharedCounters`] over a [`CounterTable`], through one task that batches.
pub struct BatchedCounters {
    jobs: mpsc::Sender<Job>,
    statements: Arc<AtomicU64>,
}

impl BatchedCounters {
    /// Start the task that writes to `table` (call inside a tokio runtime). It ends once this
    /// value is dropped and the requests queued have been answered.
    pub fn start(table: Arc<dyn CounterTable>) -> Self {
        let (jobs, queue) = mpsc::channel(QUEUE);
        let statements = Arc::new(AtomicU64::new(0));
        tokio::spawn(write(table, queue, statements.clone()));
        Self { jobs, statements }
    }

    async fn add_all(&self, adds: Vec<(String, i64, i64)>) -> Result<Vec<i64>, BackendError> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            adds,
            reply: Some(reply),
        };
        self.jobs
            .send(job)
            .await
            .map_err(|_| BackendError::from("the rate counter task has stopped"))?;
        match answer.await {
            Ok(Ok(counts)) => Ok(counts),
            Ok(Err(message)) => Err(message.into()),
            Err(_) => Err("the rate counter task has stopped".into()),
        }
    }
}

impl SharedCounters for BatchedCounters {
    fn add<'a>(&'a self, key: &'a str, window_start_ms: i64, by: i64) -> CountFuture<'a> {
        Box::pin(async move {
            let counts = self
                .add_all(vec![(key.to_string(), window_start_ms, by)])
                .await?;
            counts
                .first()
                .copied()
                .ok_or_else(|| "the rate counter table returned no count".into())
        })
    }

    /// Counts the request in all its counters at once; a refused one is then taken back out
    /// of them (a refund in a later statement), so that it uses up no one's allowance.
    fn admit<'a>(&'a self, checks: &'a [Check<'a>], window_start_ms: i64) -> AdmitFuture<'a> {
        Box::pin(async move {
            let adds: Vec<(String, i64, i64)> = checks
                .iter()
                .map(|c| (c.key.to_string(), window_start_ms, i64::from(c.cost)))
                .collect();
            let counts = self.add_all(adds).await?;
            let refused = checks
                .iter()
                .zip(&counts)
                .position(|(check, &count)| check.refuses(count));
            if refused.is_some() {
                let refund: Vec<(String, i64, i64)> = checks
                    .iter()
                    .filter(|c| c.cost > 0)
                    .map(|c| (c.key.to_string(), window_start_ms, -i64::from(c.cost)))
                    .collect();
                if !refund.is_empty() {
                    // Nobody waits for it; a full queue or a failed statement leaves the
                    // request counted, which errs towards refusing.
                    let _ = self.jobs.try_send(Job {
                        adds: refund,
                        reply: None,
                    });
                }
            }
            Ok(refused)
        })
    }

    fn round_trips(&self) -> u64 {
        self.statements.load(Ordering::Relaxed)
    }
}

async fn write(
    table: Arc<dyn CounterTable>,
    mut queue: mpsc::Receiver<Job>,
    statements: Arc<AtomicU64>,
) {
    let mut jobs = Vec::with_capacity(MAX_JOBS);
    let mut next_prune = Instant::now();
    while queue.recv_many(&mut jobs, MAX_JOBS).await > 0 {
        let adds: Vec<(&str, i64, i64)> = jobs
            .iter()
            .flat_map(|j| j.adds.iter().map(|(k, w, by)| (k.as_str(), *w, *by)))
            .collect();
        let result = table.add_all(&adds).await;
        statements.fetch_add(1, Ordering::Relaxed);
        match result {
            Ok(counts) if counts.len() == adds.len() => {
                let mut rest = counts.as_slice();
                for job in jobs.drain(..) {
                    let (mine, tail) = rest.split_at(job.adds.len());
                    rest = tail;
                    if let Some(reply) = job.reply {
                        let _ = reply.send(Ok(mine.to_vec()));
                    }
                }
            }
            other => {
                let message = match other {
                    Err(e) => e.to_string(),
                    Ok(counts) => format!(
                        "the rate counter table returned {} counts for {} additions",
                        counts.len(),
                        adds.len()
                    ),
                };
                for job in jobs.drain(..) {
                    match job.reply {
                        Some(reply) => {
                            let _ = reply.send(Err(message.clone()));
                        }
                        None => {
                            tracing::warn!(error = %message, "cannot refund a refused request's rate counters")
                        }
                    }
                }
            }
        }
        if Instant::now() >= next_prune {
            next_prune = Instant::now() + PRUNE_EVERY;
            let (window, _) = super::current_window();
            if let Err(e) = table.prune(window - KEEP_MS).await {
                tracing::warn!(error = %e, "cannot delete old rate counters");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::sync::Mutex;

    /// A table in memory whose statements take `delay`, counting them.
    #[derive(Default)]
    struct SlowTable {
        counts: Mutex<HashMap<(String, i64), i64>>,
        delay: Duration,
    }

    impl CounterTable for SlowTable {
        fn add_all<'a>(&'a self, adds: &'a [(&'a str, i64, i64)]) -> AddAllFuture<'a> {
            Box::pin(async move {
                tokio::time::sleep(self.delay).await;
                let mut counts = self.counts.lock().unwrap();
                Ok(adds
                    .iter()
                    .map(|&(k, w, by)| {
                        let c = counts.entry((k.to_string(), w)).or_default();
                        *c += by;
                        *c
                    })
                    .collect())
            })
        }

        fn prune(&self, before_ms: i64) -> CountFuture<'_> {
            Box::pin(async move {
                let mut counts = self.counts.lock().unwrap();
                let before = counts.len();
                counts.retain(|(_, w), _| *w >= before_ms);
                Ok((before - counts.len()) as i64)
            })
        }
    }

    #[tokio::test]
    async fn concurrent_requests_share_statements_and_exactly_the_limit_is_admitted() {
        let table = Arc::new(SlowTable {
            delay: Duration::from_millis(5),
            ..Default::default()
        });
        let counters = Arc::new(BatchedCounters::start(table.clone()));
        let (window, _) = crate::limits::current_window();
        let tasks: Vec<_> = (0..200)
            .map(|_| {
                let counters = counters.clone();
                tokio::spawn(async move {
                    let checks = [
                        Check {
                            key: "app",
                            limit: 50,
                            cost: 1,
                        },
                        Check {
                            key: "app#tokens",
                            limit: 1000,
                            cost: 0,
                        },
                    ];
                    counters.admit(&checks, window).await.unwrap()
                })
            })
            .collect();
        let mut admitted = 0;
        for t in tasks {
            if t.await.unwrap().is_none() {
                admitted += 1;
            }
        }
        assert_eq!(admitted, 50);
        let statements = counters.round_trips();
        assert!(statements < 40, "{statements} statements for 200 requests");
        // The refused 150 were refunded: the counter holds the admitted requests only.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(counters.add("app", window, 0).await.unwrap(), 50);
    }

    #[tokio::test]
    async fn a_request_refused_by_one_limit_uses_up_none_of_the_others() {
        let counters = BatchedCounters::start(Arc::new(SlowTable::default()));
        let (now, _) = crate::limits::current_window();
        let user = |limit| {
            [
                Check {
                    key: "app",
                    limit: 10,
                    cost: 1,
                },
                Check {
                    key: "app/ann",
                    limit,
                    cost: 1,
                },
            ]
        };
        assert_eq!(counters.admit(&user(1), now).await.unwrap(), None);
        // Ann is over her own limit; the application's count must not keep her request.
        assert_eq!(counters.admit(&user(1), now).await.unwrap(), Some(1));
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(counters.add("app", now, 0).await.unwrap(), 1);
        assert_eq!(counters.add("app/ann", now, 0).await.unwrap(), 1);
    }

    #[tokio::test]
    async fn a_failed_statement_fails_every_request_in_it() {
        struct Down;
        impl CounterTable for Down {
            fn add_all<'a>(&'a self, _: &'a [(&'a str, i64, i64)]) -> AddAllFuture<'a> {
                Box::pin(async { Err("connection refused".into()) })
            }
            fn prune(&self, _: i64) -> CountFuture<'_> {
                Box::pin(async { Ok(0) })
            }
        }
        let counters = BatchedCounters::start(Arc::new(Down));
        let check = [Check {
            key: "app",
            limit: 1,
            cost: 1,
        }];
        let e = counters.admit(&check, 0).await.unwrap_err();
        assert!(e.to_string().contains("connection refused"), "{e}");
    }

    #[tokio::test]
    async fn windows_two_minutes_old_are_pruned() {
        let table = Arc::new(SlowTable::default());
        let counters = BatchedCounters::start(table.clone());
        let (now, _) = crate::limits::current_window();
        counters.add("old", now - 180_000, 1).await.unwrap();
        // The first statement is followed by a prune, which deletes the window it wrote.
        counters.add("new", now, 1).await.unwrap();
        let keys: Vec<String> = table
            .counts
            .lock()
            .unwrap()
            .keys()
            .map(|(k, _)| k.clone())
            .collect();
        assert_eq!(keys, vec!["new".to_string()], "{keys:?}");
    }
}
