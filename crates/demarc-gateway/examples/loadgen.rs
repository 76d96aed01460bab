//! An open-loop load generator for `bench/gateway.sh`: requests are sent at a fixed rate
//! whatever the server does, and each latency is measured from the request's intended send
//! time (so a server that falls behind is charged for the queueing it causes).
//!
//! `cargo run --release -p demarc-gateway --example loadgen -- URL RATE SECONDS [--key K]
//!  [--stream] [--prompt-bytes N] [--model M]`
//! prints one JSON object: rate asked and achieved, errors, latency percentiles (ms) and, for
//! streams, time-to-first-byte percentiles.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;

struct Sample {
    total_ms: f64,
    /// First byte of the body.
    first_ms: f64,
    /// First byte of model text (a non-empty `content` delta).
    token_ms: f64,
    ok: bool,
}

/// Whether a chunk of a chat stream carries text: `"content":"` followed by something.
fn has_text(chunk: &[u8]) -> bool {
    let pat = b"\"content\":\"";
    chunk
        .windows(pat.len() + 1)
        .any(|w| &w[..pat.len()] == pat && w[pat.len()] != b'"')
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!(
            "usage: loadgen URL RATE SECONDS [--key K] [--stream] [--prompt-bytes N] [--model M]"
        );
        std::process::exit(2);
    }
    let url = args[1].clone();
    let rate: f64 = args[2].parse().expect("RATE");
    let seconds: f64 = args[3].parse().expect("SECONDS");
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let key = flag("--key").unwrap_or_else(|| "none".into());
    let stream = args.iter().any(|a| a == "--stream");
    let prompt_bytes: usize = flag("--prompt-bytes").map_or(2048, |v| v.parse().expect("N"));
    let model = flag("--model").unwrap_or_else(|| "bench".into());

    // A 2 KB prompt of ordinary prose (the guard scans it all).
    let sentence = "Please summarise the quarterly report on loan approvals and note any risks. ";
    let prompt: String =
        sentence.repeat(prompt_bytes / sentence.len() + 1)[..prompt_bytes].to_string();
    let body = serde_json::json!({
        "model": model, "stream": stream,
        "messages": [{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": prompt}],
    });
    let body = bytes::Bytes::from(serde_json::to_vec(&body).unwrap());
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(4096)
        .tcp_nodelay(true)
        .build()
        .unwrap();

    // Warm the connection pool so connection set-up is not measured.
    for _ in 0..20 {
        let _ = client
            .post(&url)
            .bearer_auth(&key)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .map(|r| r.bytes());
    }

    let n = (rate * seconds) as usize;
    let interval = Duration::from_secs_f64(1.0 / rate);
    let samples = Arc::new(std::sync::Mutex::new(Vec::with_capacity(n)));
    let start = Instant::now() + Duration::from_millis(50);
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let intended = start + interval * i as u32;
        tokio::time::sleep_until(intended.into()).await;
        let (client, url, key, body, samples) = (
            client.clone(),
            url.clone(),
            key.clone(),
            body.clone(),
            samples.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let result = client
                .post(&url)
                .bearer_auth(&key)
                .header("content-type", "application/json")
                .body(body)
                .timeout(Duration::from_secs(30))
                .send()
                .await;
            let mut first_ms = f64::NAN;
            let mut token_ms = f64::NAN;
            let ok = match result {
                Ok(r) if r.status().is_success() => {
                    let mut s = r.bytes_stream();
                    let mut ok = true;
                    while let Some(chunk) = s.next().await {
                        match chunk {
                            Ok(c) => {
                                if !c.is_empty() && first_ms.is_nan() {
                                    first_ms = intended.elapsed().as_secs_f64() * 1e3;
                                }
                                if token_ms.is_nan() && has_text(&c) {
                                    token_ms = intended.elapsed().as_secs_f64() * 1e3;
                                }
                            }
                            Err(_) => ok = false,
                        }
                    }
                    ok
                }
                _ => false,
            };
            let total_ms = intended.elapsed().as_secs_f64() * 1e3;
            samples.lock().unwrap().push(Sample {
                total_ms,
                first_ms,
                token_ms,
                ok,
            });
        }));
    }
    let sent_in = start.elapsed().as_secs_f64();
    for t in tasks {
        let _ = t.await;
    }
    let samples = samples.lock().unwrap();
    let errors = samples.iter().filter(|s| !s.ok).count();
    let mut total: Vec<f64> = samples
        .iter()
        .filter(|s| s.ok)
        .map(|s| s.total_ms)
        .collect();
    let mut first: Vec<f64> = samples
        .iter()
        .filter(|s| s.ok && !s.first_ms.is_nan())
        .map(|s| s.first_ms)
        .collect();
    let mut token: Vec<f64> = samples
        .iter()
        .filter(|s| s.ok && !s.token_ms.is_nan())
        .map(|s| s.token_ms)
        .collect();
    token.sort_by(f64::total_cmp);
    total.sort_by(f64::total_cmp);
    first.sort_by(f64::total_cmp);
    let out = serde_json::json!({
        "url": url, "stream": stream, "rate": rate, "seconds": seconds, "requests": n,
        "achieved_rate": (n as f64 / sent_in * 100.0).round() / 100.0,
        "errors": errors,
        "p50_ms": percentile(&total, 0.50), "p90_ms": percentile(&total, 0.90),
        "p99_ms": percentile(&total, 0.99), "max_ms": total.last().copied().unwrap_or(f64::NAN),
        "ttfb_p50_ms": percentile(&first, 0.50), "ttfb_p99_ms": percentile(&first, 0.99),
        "ttft_p50_ms": percentile(&token, 0.50), "ttft_p99_ms": percentile(&token, 0.99),
    });
    println!("{out}");
}
