//! Audit trail throughput: batched append into SQLite and PostgreSQL (events/s)
//! and `verify` over a large chain set. A plain bench binary (no criterion):
//! each figure is the median of several timed runs against a fresh store.
//!
//! Run: `bench/store.sh` (or `cargo bench -p demarc-store --bench store`).
//! Environment: `BENCH_APPEND_EVENTS` (default 200000), `BENCH_BATCH` (1000),
//! `BENCH_VERIFY_EVENTS` (1000000), `BENCH_RUNS` (3), `DEMARC_TEST_PG`
//! (maintenance URL, default `postgres://postgres@127.0.0.1:5432/postgres`),
//! `BENCH_SKIP_PG=1` to measure SQLite only.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Instant;

use demarc_store::time::OffsetDateTime;
use demarc_store::{NewAuditEvent, Store};
use sqlx::Connection;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A gateway-like event, about 220 bytes of JSON.
fn batch(start: usize, n: usize) -> Vec<NewAuditEvent> {
    let at = OffsetDateTime::now_utc();
    (start..start + n)
        .map(|i| NewAuditEvent {
            at,
            payload: format!(
                r#"{{"request_id":"req-{i:012}","app":"support-chat","key":"dmk_1a2b3c4d","model":"gpt-4o-mini","action":"allow","detectors":[],"tokens_in":412,"tokens_out":128,"status":200,"latency_ms":842}}"#
            ),
        })
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

struct Pg {
    admin: String,
}

impl Pg {
    async fn create(&self) -> (String, String) {
        let mut b = [0u8; 6];
        getrandom::fill(&mut b).unwrap();
        let name = format!("demarc_bench_{}", hex::encode(b));
        let mut c = sqlx::PgConnection::connect(&self.admin).await.unwrap();
        sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
            .execute(&mut c)
            .await
            .unwrap();
        let base = &self.admin[..self.admin.rfind('/').unwrap()];
        (format!("{base}/{name}"), name)
    }

    async fn drop_db(&self, name: &str) {
        let mut c = sqlx::PgConnection::connect(&self.admin).await.unwrap();
        sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut c)
            .await
            .unwrap();
    }
}

/// Appends `total` events in batches of `batch_size` on one chain; events/s.
async fn append(url: &str, total: usize, batch_size: usize) -> f64 {
    let store = Store::open(url).await.unwrap();
    let batches: Vec<_> = (0..total / batch_size)
        .map(|b| batch(b * batch_size, batch_size))
        .collect();
    let start = Instant::now();
    for events in &batches {
        store.append_audit_batch("gw-1", events).await.unwrap();
    }
    let rate = total as f64 / start.elapsed().as_secs_f64();
    store.close().await;
    rate
}

/// Fills a store with `total` events over 4 chains (untimed).
async fn fill(url: &str, total: usize) {
    let store = Store::open(url).await.unwrap();
    let per_batch = 5000;
    for b in 0..total / per_batch {
        let chain = format!("gw-{}", b % 4);
        store
            .append_audit_batch(&chain, &batch(b * per_batch, per_batch))
            .await
            .unwrap();
    }
    store.close().await;
}

/// Seconds for one full verify; panics unless every chain verifies.
async fn verify(url: &str, expected: usize) -> f64 {
    let store = Store::open(url).await.unwrap();
    let start = Instant::now();
    let report = store.verify_audit().await.unwrap();
    let secs = start.elapsed().as_secs_f64();
    assert!(report.is_intact());
    assert_eq!(report.events as usize, expected);
    store.close().await;
    secs
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    // `cargo bench` passes `--bench`; any other argument is ignored.
    let total = env_usize("BENCH_APPEND_EVENTS", 200_000);
    let batch_size = env_usize("BENCH_BATCH", 1000);
    let verify_total = env_usize("BENCH_VERIFY_EVENTS", 1_000_000);
    let runs = env_usize("BENCH_RUNS", 3).max(1);
    let skip_pg = std::env::var("BENCH_SKIP_PG").is_ok_and(|v| v == "1");
    let pg = Pg {
        admin: std::env::var("DEMARC_TEST_PG")
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".into()),
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "store bench: {total} events per append run, batches of {batch_size}, {runs} runs, {cores} cores"
    );

    let mut sqlite_rates = Vec::new();
    for _ in 0..runs {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("bench.db").display());
        sqlite_rates.push(append(&url, total, batch_size).await);
    }
    println!(
        "append sqlite:   median {:>9.0} events/s  (runs: {:?})",
        median(sqlite_rates.clone()),
        rounded(&sqlite_rates)
    );

    if !skip_pg {
        let mut pg_rates = Vec::new();
        for _ in 0..runs {
            let (url, name) = pg.create().await;
            pg_rates.push(append(&url, total, batch_size).await);
            pg.drop_db(&name).await;
        }
        println!(
            "append postgres: median {:>9.0} events/s  (runs: {:?})",
            median(pg_rates.clone()),
            rounded(&pg_rates)
        );
    }

    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("verify.db").display());
    fill(&url, verify_total).await;
    let mut secs = Vec::new();
    for _ in 0..runs {
        secs.push(verify(&url, verify_total).await);
    }
    println!(
        "verify sqlite:   median {:>6.2} s for {verify_total} events  (runs: {:?})",
        median(secs.clone()),
        secs2(&secs)
    );

    if !skip_pg {
        let (url, name) = pg.create().await;
        fill(&url, verify_total).await;
        let mut secs = Vec::new();
        for _ in 0..runs {
            secs.push(verify(&url, verify_total).await);
        }
        pg.drop_db(&name).await;
        println!(
            "verify postgres: median {:>6.2} s for {verify_total} events  (runs: {:?})",
            median(secs.clone()),
            secs2(&secs)
        );
    }
}

fn rounded(v: &[f64]) -> Vec<u64> {
    v.iter().map(|x| *x as u64).collect()
}

fn secs2(v: &[f64]) -> Vec<String> {
    v.iter().map(|x| format!("{x:.2}")).collect()
}
