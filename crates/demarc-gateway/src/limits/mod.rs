//! Rate limits and token budgets per application and per end user: in memory, token buckets
//! that refill continuously over a minute (at most [`MAX_BUCKETS`] kept); shared by replicas,
//! fixed one-minute windows counted in the store ([`batched::BatchedCounters`]) or in Redis
//! ([`redis::RedisCounters`]).

use crate::error::BackendError;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Instant;

pub mod batched;
pub mod redis;

pub const MAX_BUCKETS: usize = 100_000;

pub type CountFuture<'a> = Pin<Box<dyn Future<Output = Result<i64, BackendError>> + Send + 'a>>;
/// `Ok(None)`: admitted; `Ok(Some(i))`: refused by check `i`.
pub type AdmitFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Option<usize>, BackendError>> + Send + 'a>>;

/// One limit a request is held to: its counter, the most it may reach in a window, and what
/// the request adds to it (1 for a request rate; 0 for a token budget, which is charged with
/// [`SharedCounters::add`] once the answer says how many tokens it took).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Check<'a> {
    pub key: &'a str,
    pub limit: u32,
    pub cost: u32,
}

impl Check<'_> {
    /// Whether a counter at `count` (after this request's cost was added) refuses it.
    pub fn refuses(&self, count: i64) -> bool {
        if self.cost > 0 {
            count > i64::from(self.limit)
        } else {
            count >= i64::from(self.limit)
        }
    }
}

/// Counters shared by gateway replicas (the store, Redis): fixed one-minute windows.
pub trait SharedCounters: Send + Sync + 'static {
    /// Add `by` to the counter of `key` in the window starting at `window_start_ms` (unix
    /// milliseconds) and return its new value.
    fn add<'a>(&'a self, key: &'a str, window_start_ms: i64, by: i64) -> CountFuture<'a>;

    /// Admit one request against every check in the window starting at `window_start_ms`:
    /// `Ok(None)` when every check allows it, else the index of the first that refuses. A
    /// refused request is not left counted (at once in Redis, by a refund in the store).
    fn admit<'a>(&'a self, checks: &'a [Check<'a>], window_start_ms: i64) -> AdmitFuture<'a>;

    /// Round trips to the store or Redis so far (the metric
    /// `demarc_gateway_shared_limits_round_trips_total`).
    fn round_trips(&self) -> u64;
}

/// The current one-minute window: its start (unix ms) and the seconds left in it.
pub fn current_window() -> (i64, u64) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let start = now - now.rem_euclid(60_000);
    (start, ((start + 60_000 - now) as u64).div_ceil(1000).max(1))
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    level: f64,
    last: Instant,
    capacity: f64,
}

/// A set of buckets keyed by `application` or `application/user`.
#[derive(Debug, Default)]
pub struct Limiter {
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl Limiter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Take from several buckets at once, all or nothing: each `(key, per_minute, cost)`
    /// needs a positive level (and at least `cost` when `cost` fits the capacity). On refusal
    /// nothing is taken and `Err((index, seconds))` names the bucket and when to retry.
    pub fn take_all(&self, wanted: &[(&str, u32, f64)]) -> Result<(), (usize, u64)> {
        let Ok(mut buckets) = self.buckets.lock() else {
            return Ok(());
        };
        let now = Instant::now();
        if buckets.len() + wanted.len() > MAX_BUCKETS {
            // Forget buckets that have refilled: they carry no state worth keeping.
            buckets.retain(|_, b| refill(b, now, b.capacity) < b.capacity);
        }
        let mut levels = Vec::with_capacity(wanted.len());
        for (i, &(key, per_minute, cost)) in wanted.iter().enumerate() {
            let capacity = f64::from(per_minute);
            let level = buckets
                .get(key)
                .map_or(capacity, |b| refill(b, now, capacity));
            if level <= 0.0 || (cost <= capacity && level < cost) {
                let missing = (cost.min(capacity) - level).max(1.0);
                return Err((i, (missing * 60.0 / capacity.max(1.0)).ceil() as u64));
            }
            levels.push(level);
        }
        for (&(key, per_minute, cost), level) in wanted.iter().zip(levels) {
            let capacity = f64::from(per_minute);
            buckets.insert(
                key.to_string(),
                Bucket {
                    level: level - cost,
                    last: now,
                    capacity,
                },
            );
        }
        Ok(())
    }

    /// Debit `cost` after the fact (tokens known only once the answer is in).
    pub fn charge(&self, key: &str, per_minute: u32, cost: f64) {
        let Ok(mut buckets) = self.buckets.lock() else {
            return;
        };
        let now = Instant::now();
        let capacity = f64::from(per_minute);
        let bucket = buckets.entry(key.to_string()).or_insert(Bucket {
            level: capacity,
            last: now,
            capacity,
        });
        bucket.level = refill(bucket, now, capacity) - cost;
        bucket.last = now;
    }
}

fn refill(bucket: &Bucket, now: Instant, capacity: f64) -> f64 {
    let elapsed = now.duration_since(bucket.last).as_secs_f64();
    (bucket.level + elapsed * capacity / 60.0).min(capacity)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_beyond_the_rate_are_refused_with_a_retry_time() {
        let l = Limiter::new();
        for _ in 0..3 {
            l.take_all(&[("app", 3, 1.0)]).unwrap();
        }
        let (which, retry) = l
            .take_all(&[("other", 3, 1.0), ("app", 3, 1.0)])
            .unwrap_err();
        assert_eq!(which, 1);
        assert!((1..=20).contains(&retry), "{retry}");
        l.take_all(&[("other", 3, 1.0)]).unwrap();
        l.take_all(&[("other", 3, 1.0)]).unwrap();
        l.take_all(&[("other", 3, 1.0)]).unwrap();
        assert!(
            l.take_all(&[("other", 3, 1.0)]).is_err(),
            "the refused call took nothing"
        );
    }

    #[test]
    fn token_budget_goes_negative_after_a_large_answer() {
        let l = Limiter::new();
        l.take_all(&[("app", 1000, 0.0)]).unwrap();
        l.charge("app", 1000, 5000.0);
        assert!(l.take_all(&[("app", 1000, 0.0)]).is_err());
    }
}
