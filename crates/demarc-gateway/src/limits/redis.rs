//! Rate limits and token budgets counted in Redis, shared by every gateway replica that points
//! at the same server: fixed one-minute windows, one atomic script per request.
//!
//! A request's checks (the application's and the user's rate and budget) are decided together
//! by one script, so two replicas can never both admit the last request of a window, and a
//! refused request counts nowhere. Tokens are charged after the answer with `INCRBY`. Counters
//! expire two minutes after their window starts. Keys carry the application's id in braces
//! (`demarc:limit:{app}:…`), so that one request's keys fall in one slot of a Redis Cluster.
//!
//! The connection is made on first use and remade after a failure; a gateway starts while Redis
//! is down. After a failed call Redis is left alone for [`BACK_OFF`]: requests meanwhile fail
//! here at once, and the gateway applies its fallback (`shared_limits_fallback`) without each
//! of them waiting for a timeout.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::{AdmitFuture, Check, CountFuture, SharedCounters};

/// The longest wait for Redis to connect or to answer.
const TIMEOUT: Duration = Duration::from_millis(250);
/// How long Redis is not asked after a failed call.
pub const BACK_OFF: Duration = Duration::from_secs(1);
/// How long a counter lives after its window starts (a window is one minute).
const TTL_MS: i64 = 120_000;

/// Decide every check of one request at once. KEYS: the counters; ARGV[1]: their time to
/// live in ms; then, per key, its limit and what the request adds. Returns 0 when admitted
/// (and then adds), else the 1-based index of the first check that refuses (adding nothing).
const ADMIT: &str = r"
local ttl = ARGV[1]
for i = 1, #KEYS do
  local limit = tonumber(ARGV[2 * i])
  local cost = tonumber(ARGV[2 * i + 1])
  local n = tonumber(redis.call('GET', KEYS[i]) or '0')
  if (cost > 0 and n + cost > limit) or (cost == 0 and n >= limit) then
    return i
  end
end
for i = 1, #KEYS do
  local cost = tonumber(ARGV[2 * i + 1])
  if cost > 0 then
    redis.call('INCRBY', KEYS[i], cost)
    redis.call('PEXPIRE', KEYS[i], ttl)
  end
end
return 0
";

/// Add to one counter and keep it expiring. KEYS[1]: the counter; ARGV: the amount, the TTL.
const ADD: &str = r"
local n = redis.call('INCRBY', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return n
";

/// Why Redis could not be used.
#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    #[error(
        "the Redis URL must start with `redis://` (`rediss://`, Redis over TLS, is not supported yet)"
    )]
    Scheme,
    #[error("Redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("Redis failed less than a second ago; not asked again yet")]
    BackingOff,
}

/// Whether `e` only says Redis is left alone after a recent failure (already logged once):
/// not worth a log line per request.
pub fn is_backing_off(e: &crate::error::BackendError) -> bool {
    matches!(e.downcast_ref::<RedisError>(), Some(RedisError::BackingOff))
}

/// Rate and token counters in one Redis server, shared by every replica that uses it.
pub struct RedisCounters {
    conn: ConnectionManager,
    admit: redis::Script,
    add: redis::Script,
    /// Unix ms before which Redis is not asked (after a failure).
    quiet_until_ms: AtomicI64,
    calls: AtomicU64,
}

impl RedisCounters {
    /// Counters in the Redis at `url` (`redis://[user:password@]host[:port][/db]`). Nothing is
    /// connected yet; must be called inside a Tokio runtime.
    pub fn new(url: &str) -> Result<Self, RedisError> {
        if !url.starts_with("redis://") {
            return Err(RedisError::Scheme);
        }
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT))
            .set_number_of_retries(1);
        Ok(Self {
            conn: ConnectionManager::new_lazy_with_config(client, config)?,
            admit: redis::Script::new(ADMIT),
            add: redis::Script::new(ADD),
            quiet_until_ms: AtomicI64::new(0),
            calls: AtomicU64::new(0),
        })
    }

    /// The Redis key of counter `key` in the window starting at `window_start_ms`.
    fn key(key: &str, window_start_ms: i64) -> String {
        let application = key.split(['/', '#']).next().unwrap_or(key);
        format!("demarc:limit:{{{application}}}:{key}:{window_start_ms}")
    }

    /// Run `call` unless Redis failed within [`BACK_OFF`]; a failure starts a new back-off.
    async fn guarded<T>(
        &self,
        call: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, RedisError> {
        let now = unix_ms();
        if now < self.quiet_until_ms.load(Ordering::Relaxed) {
            return Err(RedisError::BackingOff);
        }
        self.calls.fetch_add(1, Ordering::Relaxed);
        call.await.map_err(|e| {
            self.quiet_until_ms
                .store(now + BACK_OFF.as_millis() as i64, Ordering::Relaxed);
            RedisError::Redis(e)
        })
    }
}

fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl SharedCounters for RedisCounters {
    fn add<'a>(&'a self, key: &'a str, window_start_ms: i64, by: i64) -> CountFuture<'a> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let mut call = self.add.key(Self::key(key, window_start_ms));
            call.arg(by).arg(TTL_MS);
            Ok(self.guarded(call.invoke_async::<i64>(&mut conn)).await?)
        })
    }

    fn admit<'a>(&'a self, checks: &'a [Check<'a>], window_start_ms: i64) -> AdmitFuture<'a> {
        Box::pin(async move {
            let mut call = self.admit.prepare_invoke();
            call.arg(TTL_MS);
            for check in checks {
                call.key(Self::key(check.key, window_start_ms))
                    .arg(check.limit)
                    .arg(check.cost);
            }
            let mut conn = self.conn.clone();
            let refused: usize = self.guarded(call.invoke_async(&mut conn)).await?;
            Ok(refused.checked_sub(1))
        })
    }

    fn round_trips(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Redis the tests use (`DEMARC_TEST_REDIS`, default the local server).
    fn url() -> String {
        std::env::var("DEMARC_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
    }

    /// A window start no other test uses (the time in ns): its counters start at zero.
    fn fresh_window() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as i64
    }

    #[tokio::test]
    async fn a_request_is_admitted_by_all_of_its_checks_or_counts_nowhere() {
        let redis = RedisCounters::new(&url()).unwrap();
        let w = fresh_window();
        let app = Check {
            key: "app",
            limit: 3,
            cost: 1,
        };
        let user = Check {
            key: "app/ann",
            limit: 1,
            cost: 1,
        };
        assert_eq!(redis.admit(&[app, user], w).await.unwrap(), None);
        // Ann is over her limit: refused by check 1, and the application's counter is untouched.
        assert_eq!(redis.admit(&[app, user], w).await.unwrap(), Some(1));
        assert_eq!(redis.add("app", w, 0).await.unwrap(), 1);
        let bob = Check {
            key: "app/bob",
            limit: 5,
            cost: 1,
        };
        assert_eq!(redis.admit(&[app, bob], w).await.unwrap(), None);
        assert_eq!(redis.admit(&[app, bob], w).await.unwrap(), None);
        assert_eq!(redis.admit(&[app, bob], w).await.unwrap(), Some(0));
        // A new window starts from zero.
        assert_eq!(redis.admit(&[app, bob], w + 60_000).await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_token_budget_refuses_once_spent_and_counters_expire() {
        let redis = RedisCounters::new(&url()).unwrap();
        let w = fresh_window();
        let budget = Check {
            key: "app#tokens",
            limit: 100,
            cost: 0,
        };
        assert_eq!(redis.admit(&[budget], w).await.unwrap(), None);
        assert_eq!(redis.add("app#tokens", w, 99).await.unwrap(), 99);
        assert_eq!(redis.admit(&[budget], w).await.unwrap(), None);
        assert_eq!(redis.add("app#tokens", w, 1).await.unwrap(), 100);
        assert_eq!(redis.admit(&[budget], w).await.unwrap(), Some(0));
        let client = redis::Client::open(url()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let ttl: i64 = redis::cmd("PTTL")
            .arg(RedisCounters::key("app#tokens", w))
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!((60_000..=TTL_MS).contains(&ttl), "{ttl}");
    }

    #[tokio::test]
    async fn concurrent_admissions_never_pass_the_limit() {
        let redis = std::sync::Arc::new(RedisCounters::new(&url()).unwrap());
        let w = fresh_window();
        let mut tasks = Vec::new();
        for _ in 0..40 {
            let redis = redis.clone();
            tasks.push(tokio::spawn(async move {
                let check = Check {
                    key: "race",
                    limit: 10,
                    cost: 1,
                };
                redis.admit(&[check], w).await.unwrap().is_none()
            }));
        }
        let mut admitted = 0;
        for t in tasks {
            admitted += usize::from(t.await.unwrap());
        }
        assert_eq!(admitted, 10);
    }

    #[tokio::test]
    async fn a_server_that_is_down_fails_fast_then_backs_off() {
        // A port nothing listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let redis = RedisCounters::new(&format!("redis://127.0.0.1:{port}")).unwrap();
        let check = Check {
            key: "app",
            limit: 1,
            cost: 1,
        };
        let started = std::time::Instant::now();
        let first = redis.admit(&[check], 0).await.unwrap_err();
        assert!(first.to_string().contains("Redis"), "{first}");
        let second = redis.admit(&[check], 0).await.unwrap_err();
        assert!(second.to_string().contains("not asked again"), "{second}");
        // The first failure is logged, the requests that meet the back-off are not.
        assert!(!is_backing_off(&first) && is_backing_off(&second));
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn only_redis_urls_are_taken() {
        let e = tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(async { RedisCounters::new("rediss://example.org").err() })
            .unwrap();
        assert!(e.to_string().contains("redis://"), "{e}");
    }
}
