//! Gateway keys: random, shown once, stored as a SHA-256 hash, compared in constant time.
//!
//! The gateway looks keys up by hash in a [`KeySource`] (the store) and caches the answer for
//! [`CACHE_TTL`], so a revoked key stops working within that time and the store sees at most
//! one lookup per key per interval.

use crate::error::BackendError;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Every gateway key starts with this, so leaked keys are recognisable by secret scanners.
pub const PREFIX: &str = "dmk_";
/// How long a lookup result is trusted.
pub const CACHE_TTL: Duration = Duration::from_secs(1);
/// Cached lookups kept at most (wrong keys included), to bound memory.
const MAX_CACHED: usize = 10_000;

/// A new random key: `dmk_` and 64 hex digits (256 bits from the OS).
pub fn generate() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(format!("{PREFIX}{}", hex::encode(bytes)))
}

/// The hash under which a key is stored.
pub fn hash(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// A key found by its hash.
#[derive(Debug, Clone)]
pub struct KeyRecord {
    /// The stored hash, compared again in constant time.
    pub hash: [u8; 32],
    pub application: String,
    pub active: bool,
}

pub type LookupFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Option<KeyRecord>, BackendError>> + Send + 'a>>;

/// Where keys live (the store, in the binary).
pub trait KeySource: Send + Sync + 'static {
    fn lookup<'a>(&'a self, hash: &'a [u8; 32]) -> LookupFuture<'a>;
}

/// Keys held in memory (tests and benchmarks).
#[derive(Default)]
pub struct MemoryKeys {
    keys: Mutex<HashMap<[u8; 32], KeyRecord>>,
}

impl MemoryKeys {
    /// Create a key for `application` and return its secret.
    pub fn create(&self, application: &str) -> Result<String, getrandom::Error> {
        let secret = generate()?;
        let h = hash(&secret);
        if let Ok(mut keys) = self.keys.lock() {
            keys.insert(
                h,
                KeyRecord {
                    hash: h,
                    application: application.into(),
                    active: true,
                },
            );
        }
        Ok(secret)
    }

    pub fn revoke(&self, secret: &str) {
        if let Ok(mut keys) = self.keys.lock()
            && let Some(k) = keys.get_mut(&hash(secret))
        {
            k.active = false;
        }
    }
}

impl KeySource for MemoryKeys {
    fn lookup<'a>(&'a self, hash: &'a [u8; 32]) -> LookupFuture<'a> {
        let found = self.keys.lock().ok().and_then(|k| k.get(hash).cloned());
        Box::pin(async move { Ok(found) })
    }
}

/// Why a presented key was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    Unknown,
    Revoked,
    /// The key store could not be asked.
    Unavailable,
}

/// A lookup result and when it was made.
type Cached = (Result<Arc<str>, Rejection>, Instant);

/// Authenticates presented keys against a [`KeySource`], with a short-lived cache.
pub struct Authenticator {
    source: Arc<dyn KeySource>,
    cache: Mutex<HashMap<[u8; 32], Cached>>,
}

impl Authenticator {
    pub fn new(source: Arc<dyn KeySource>) -> Self {
        Self {
            source,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The application a presented key belongs to.
    /// Forget every cached answer (a key was revoked elsewhere): the next request of each key
    /// asks the source again.
    pub fn forget(&self) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.clear();
        }
    }

    pub async fn authenticate(&self, presented: &str) -> Result<Arc<str>, Rejection> {
        let wanted = hash(presented);
        let now = Instant::now();
        if let Some((result, at)) = self.cache.lock().ok().and_then(|c| c.get(&wanted).cloned())
            && now.duration_since(at) < CACHE_TTL
        {
            return result;
        }
        let result = match self.source.lookup(&wanted).await {
            Err(e) => {
                tracing::warn!(error = %e, "key lookup failed");
                return Err(Rejection::Unavailable);
            }
            Ok(None) => Err(Rejection::Unknown),
            // The source found the key by its hash; the decision is a constant-time
            // comparison of the full hash.
            Ok(Some(record)) if !bool::from(record.hash.ct_eq(&wanted)) => Err(Rejection::Unknown),
            Ok(Some(record)) if !record.active => Err(Rejection::Revoked),
            Ok(Some(record)) => Ok(Arc::from(record.application)),
        };
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= MAX_CACHED {
                cache.retain(|_, (_, at)| now.duration_since(*at) < CACHE_TTL);
                if cache.len() >= MAX_CACHED {
                    cache.clear();
                }
            }
            cache.insert(wanted, (result.clone(), now));
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keys_authenticate_by_hash_and_revocation_takes_effect_after_the_ttl() {
        let keys = Arc::new(MemoryKeys::default());
        let a = keys.create("assistant").unwrap();
        let b = generate().unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with(PREFIX) && a.len() == PREFIX.len() + 64);
        let auth = Authenticator::new(keys.clone());
        assert_eq!(auth.authenticate(&a).await.as_deref(), Ok("assistant"));
        assert_eq!(auth.authenticate(&b).await, Err(Rejection::Unknown));
        assert_eq!(auth.authenticate("").await, Err(Rejection::Unknown));
        keys.revoke(&a);
        tokio::time::sleep(CACHE_TTL + Duration::from_millis(50)).await;
        assert_eq!(auth.authenticate(&a).await, Err(Rejection::Revoked));
    }
}
