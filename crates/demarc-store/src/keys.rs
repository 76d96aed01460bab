//! Gateway API keys (only their SHA-256 is stored) and rate-limit counters
//! shared by gateway replicas.

use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use time::OffsetDateTime;

use crate::assessments::ROWS_PER_INSERT;
use crate::error::{Result, StoreError};
use crate::{Pool, Store, check_text, dispatch, from_ms, to_ms};

/// Every key starts with this, so a leaked key is recognisable in scans.
pub const KEY_PREFIX: &str = "dmk_";
/// Characters of the key kept in clear (prefix included) to tell keys apart.
const VISIBLE_LEN: usize = 12;

/// A stored key, without its secret.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct ApiKey {
    pub id: String,
    pub application: String,
    /// The first characters of the key, e.g. `dmk_1a2b3c4d`.
    pub prefix: String,
    #[schemars(with = "String")]
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[schemars(with = "Option<String>")]
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
}

impl ApiKey {
    /// Not revoked.
    pub fn is_active(&self) -> bool {
        self.revoked_at.is_none()
    }
}

/// A key just created: the secret is shown once and never stored.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub key: ApiKey,
    /// `dmk_` followed by 64 hex digits (256 random bits).
    pub secret: String,
}

/// SHA-256 of a key as presented by a client: what the store keeps and looks up.
pub fn hash_api_key(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

pub(crate) fn random_hex(bytes: usize) -> Result<String> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| StoreError::invalid("random source", e.to_string()))?;
    Ok(hex::encode(buf))
}

type KeyRow = (String, String, String, i64, Option<i64>);
/// A key row with its stored hash.
type KeyRowWithHash = (String, String, String, i64, Option<i64>, Vec<u8>);

fn key_from_row((id, application, prefix, created, revoked): KeyRow) -> ApiKey {
    ApiKey {
        id,
        application,
        prefix,
        created_at: from_ms(created),
        revoked_at: revoked.map(from_ms),
    }
}

impl Store {
    /// Creates a key for `application`; the returned secret is not stored.
    pub async fn create_api_key(&self, application: &str) -> Result<NewApiKey> {
        check_text("api key application", application, 1024)?;
        let secret = format!("{KEY_PREFIX}{}", random_hex(32)?);
        let key = ApiKey {
            id: random_hex(8)?,
            application: application.to_owned(),
            prefix: secret.chars().take(VISIBLE_LEN).collect(),
            created_at: from_ms(to_ms(OffsetDateTime::now_utc())),
            revoked_at: None,
        };
        dispatch!(self, |pool| {
            sqlx::query(
                "INSERT INTO api_keys (id, application, key_hash, prefix, created_at_ms) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&key.id)
            .bind(&key.application)
            .bind(&hash_api_key(&secret)[..])
            .bind(&key.prefix)
            .bind(to_ms(key.created_at))
            .execute(pool)
            .await?;
        });
        Ok(NewApiKey { key, secret })
    }

    /// Every key (revoked ones included), oldest first; only `application`'s when given.
    pub async fn list_api_keys(&self, application: Option<&str>) -> Result<Vec<ApiKey>> {
        let rows: Vec<KeyRow> = dispatch!(self, |pool| {
            sqlx::query_as(
                "SELECT id, application, prefix, created_at_ms, revoked_at_ms FROM api_keys
                 WHERE $1 OR application = $2 ORDER BY created_at_ms, id",
            )
            .bind(application.is_none())
            .bind(application.unwrap_or(""))
            .fetch_all(pool)
            .await?
        });
        Ok(rows.into_iter().map(key_from_row).collect())
    }

    /// Revokes key `id`; false when there is no such key or it was already revoked. On
    /// PostgreSQL every [`crate::Changes`] listener hears of it when the revocation commits.
    pub async fn revoke_api_key(&self, id: &str) -> Result<bool> {
        const REVOKE: &str =
            "UPDATE api_keys SET revoked_at_ms = $1 WHERE id = $2 AND revoked_at_ms IS NULL";
        let now = to_ms(OffsetDateTime::now_utc());
        let changed = match &self.pool {
            Pool::Sqlite(pool) => sqlx::query(REVOKE)
                .bind(now)
                .bind(id)
                .execute(pool)
                .await?
                .rows_affected(),
            Pool::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                let changed = sqlx::query(REVOKE)
                    .bind(now)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if changed > 0 {
                    sqlx::query("SELECT pg_notify($1, $2)")
                        .bind(crate::changes::KEY_CHANNEL)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                changed
            }
        };
        Ok(changed > 0)
    }

    /// The key whose SHA-256 is `hash` (see [`hash_api_key`]), revoked or not:
    /// check [`ApiKey::is_active`]. The lookup goes by hash, so the time it takes
    /// reveals nothing about the secret.
    pub async fn lookup_api_key(&self, hash: &[u8; 32]) -> Result<Option<ApiKey>> {
        Ok(self
            .lookup_api_key_with_hash(hash)
            .await?
            .map(|(key, _)| key))
    }

    /// Like [`Store::lookup_api_key`], and also returns the hash as stored, so the
    /// caller can confirm the match with a constant-time comparison of its own rather
    /// than trust the database's index lookup alone.
    pub async fn lookup_api_key_with_hash(
        &self,
        hash: &[u8; 32],
    ) -> Result<Option<(ApiKey, Vec<u8>)>> {
        let row: Option<KeyRowWithHash> = dispatch!(self, |pool| {
            sqlx::query_as("SELECT id, application, prefix, created_at_ms, revoked_at_ms, key_hash FROM api_keys WHERE key_hash = $1")
                .bind(&hash[..])
                .fetch_optional(pool)
                .await?
        });
        Ok(
            row.map(|(id, application, prefix, created, revoked, stored)| {
                (
                    key_from_row((id, application, prefix, created, revoked)),
                    stored,
                )
            }),
        )
    }

    /// Adds `by` to the counter of (`key`, `window_start`) and returns the new
    /// count, atomically across processes and replicas (one upsert).
    pub async fn increment_rate_counter(
        &self,
        key: &str,
        window_start: OffsetDateTime,
        by: i64,
    ) -> Result<i64> {
        let counts = self
            .add_to_rate_counters(&[(key, window_start, by)])
            .await?;
        Ok(counts.first().copied().unwrap_or(by))
    }

    /// Adds to several counters in one statement (one round trip for up to a thousand
    /// distinct counters) and returns, for each addition in the order given, the counter's
    /// value just after it: as if the additions had been made one after another, with other
    /// replicas' additions before or after the whole lot. A counter may appear more than once.
    pub async fn add_to_rate_counters(
        &self,
        adds: &[(&str, OffsetDateTime, i64)],
    ) -> Result<Vec<i64>> {
        // One upsert per distinct counter, in one order for every replica: two statements
        // that update the same rows then lock them in the same order and cannot deadlock.
        let mut totals: BTreeMap<(&str, i64), i64> = BTreeMap::new();
        for &(key, window_start, by) in adds {
            check_text("rate counter key", key, 1024)?;
            *totals.entry((key, to_ms(window_start))).or_default() += by;
        }
        let rows: Vec<(&str, i64, i64)> = totals.iter().map(|(&(k, w), &by)| (k, w, by)).collect();
        // Each counter's value before this call's additions.
        let mut running: HashMap<(String, i64), i64> = HashMap::with_capacity(rows.len());
        for chunk in rows.chunks(ROWS_PER_INSERT) {
            let after: Vec<(String, i64, i64)> = dispatch!(self, |pool| {
                let mut insert = sqlx::QueryBuilder::new(
                    "INSERT INTO rate_counters (key, window_start_ms, count) ",
                );
                insert.push_values(chunk, |mut row, &(key, window, by)| {
                    row.push_bind(key).push_bind(window).push_bind(by);
                });
                insert.push(
                    " ON CONFLICT (key, window_start_ms) DO UPDATE SET count = rate_counters.count + excluded.count
                     RETURNING key, window_start_ms, count",
                );
                insert.build_query_as().fetch_all(pool).await?
            });
            for (key, window, count) in after {
                let added = totals.get(&(key.as_str(), window)).copied().unwrap_or(0);
                running.insert((key, window), count - added);
            }
        }
        adds.iter()
            .map(|&(key, window_start, by)| {
                let count = running
                    .get_mut(&(key.to_string(), to_ms(window_start)))
                    .ok_or_else(|| StoreError::Invalid {
                        field: "rate counter",
                        reason: format!("`{key}` was not returned by the upsert"),
                    })?;
                *count += by;
                Ok(*count)
            })
            .collect()
    }

    /// Deletes counters of windows that started before `before`; returns how many.
    pub async fn prune_rate_counters(&self, before: OffsetDateTime) -> Result<u64> {
        let removed = dispatch!(self, |pool| {
            sqlx::query("DELETE FROM rate_counters WHERE window_start_ms < $1")
                .bind(to_ms(before))
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(removed)
    }
}
