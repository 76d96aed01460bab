//! Canaries the gateway generates for an application and injects into its system context:
//! a random marker that should never appear in an answer. The store keeps the token itself
//! (the gateway must inject the same one after a restart, and every replica must block it),
//! when it was created and when it was retired by a rotation. An application has at most one
//! current canary (not retired) after any rotation; a retired one stays blocked by the gateway
//! for a grace period it chooses.

use time::OffsetDateTime;

use crate::error::{Result, StoreError};
use crate::{BeginWrite, Store, check_text, dispatch, from_ms, to_ms};

/// Every generated canary starts with this.
pub const CANARY_PREFIX: &str = "dmc-";
/// Characters after the prefix (base32, lowercase: 80 random bits).
const CANARY_CHARS: usize = 16;
const BASE32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// One canary. `Debug` and serialisation leave the token out: it is read only by the code
/// that injects and blocks it (and by `demarc gateway canary list --show`).
#[derive(Clone, PartialEq, Eq, serde::Serialize)]
pub struct Canary {
    pub id: String,
    pub application: String,
    #[serde(skip)]
    pub token: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub retired_at: Option<OffsetDateTime>,
}

impl std::fmt::Debug for Canary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Canary")
            .field("id", &self.id)
            .field("application", &self.application)
            .field("created_at", &self.created_at)
            .field("retired_at", &self.retired_at)
            .finish_non_exhaustive()
    }
}

impl Canary {
    /// Not retired.
    pub fn is_current(&self) -> bool {
        self.retired_at.is_none()
    }
}

/// A new canary token from the OS's random source: `dmc-` and 16 lowercase base32 characters.
/// Letters and digits only after the prefix, so a tokenizer keeps it in few pieces and no
/// text processing splits it; the prefix makes it recognisable and unlikely in prose.
pub fn generate_canary_token() -> Result<String> {
    let mut bytes = [0u8; CANARY_CHARS];
    getrandom::fill(&mut bytes).map_err(|e| StoreError::invalid("random source", e.to_string()))?;
    let mut token = String::with_capacity(CANARY_PREFIX.len() + CANARY_CHARS);
    token.push_str(CANARY_PREFIX);
    // 5 bits of each byte: uniform over the 32 symbols.
    token.extend(
        bytes
            .iter()
            .map(|b| char::from(BASE32[usize::from(b & 31)])),
    );
    Ok(token)
}

fn random_id() -> Result<String> {
    let mut buf = [0u8; 8];
    getrandom::fill(&mut buf).map_err(|e| StoreError::invalid("random source", e.to_string()))?;
    Ok(hex::encode(buf))
}

type CanaryRow = (String, String, String, i64, Option<i64>);

fn canary_from_row((id, application, token, created, retired): CanaryRow) -> Canary {
    Canary {
        id,
        application,
        token,
        created_at: from_ms(created),
        retired_at: retired.map(from_ms),
    }
}

const COLUMNS: &str = "id, application, token, created_at_ms, retired_at_ms";

impl Store {
    /// Every canary (retired ones included), oldest first; only `application`'s when given.
    pub async fn list_canaries(&self, application: Option<&str>) -> Result<Vec<Canary>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM canaries WHERE $1 OR application = $2 ORDER BY created_at_ms, id"
        );
        let rows: Vec<CanaryRow> = dispatch!(self, |pool| {
            sqlx::query_as(&sql)
                .bind(application.is_none())
                .bind(application.unwrap_or(""))
                .fetch_all(pool)
                .await?
        });
        Ok(rows.into_iter().map(canary_from_row).collect())
    }

    /// The canaries of `application` that are still to be blocked: the current ones and
    /// those retired at or after `retired_since`; newest first (the first is the one to inject).
    pub async fn live_canaries(
        &self,
        application: &str,
        retired_since: OffsetDateTime,
    ) -> Result<Vec<Canary>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM canaries WHERE application = $1
             AND (retired_at_ms IS NULL OR retired_at_ms >= $2)
             ORDER BY (retired_at_ms IS NULL) DESC, created_at_ms DESC, id"
        );
        let rows: Vec<CanaryRow> = dispatch!(self, |pool| {
            sqlx::query_as(&sql)
                .bind(application)
                .bind(to_ms(retired_since))
                .fetch_all(pool)
                .await?
        });
        Ok(rows.into_iter().map(canary_from_row).collect())
    }

    /// Retires `application`'s current canary (if any) and creates a new one. On PostgreSQL
    /// every [`crate::Changes`] listener hears of it when the rotation commits.
    pub async fn rotate_canary(&self, application: &str) -> Result<Canary> {
        self.rotate(application, None)
            .await?
            .ok_or_else(|| StoreError::invalid("canary rotation", "no canary was created"))
    }

    /// [`Store::rotate_canary`], only if the newest current canary is still `expected` (its
    /// id; `None`: there is none). Returns `None`, changing nothing, when another process
    /// rotated first: several gateways on one store then agree on one new canary.
    pub async fn rotate_canary_if_current(
        &self,
        application: &str,
        expected: Option<&str>,
    ) -> Result<Option<Canary>> {
        self.rotate(application, Some(expected)).await
    }

    async fn rotate(
        &self,
        application: &str,
        expected: Option<Option<&str>>,
    ) -> Result<Option<Canary>> {
        check_text("canary application", application, 1024)?;
        let now = from_ms(to_ms(OffsetDateTime::now_utc()));
        let canary = Canary {
            id: random_id()?,
            application: application.to_owned(),
            token: generate_canary_token()?,
            created_at: now,
            retired_at: None,
        };
        let postgres = matches!(self.pool, crate::Pool::Postgres(_));
        dispatch!(self, |pool| {
            // SQLite: the write lock is taken up front. PostgreSQL: one lock for canary
            // rotations, so that checking the current canary and replacing it is one step.
            let mut tx = pool.begin_write().await?;
            if postgres {
                sqlx::query("SELECT pg_advisory_xact_lock(7236120)")
                    .execute(&mut *tx)
                    .await?;
            }
            if let Some(expected) = expected {
                let current: Option<String> = sqlx::query_scalar(
                    "SELECT id FROM canaries WHERE application = $1 AND retired_at_ms IS NULL
                     ORDER BY created_at_ms DESC, id LIMIT 1",
                )
                .bind(application)
                .fetch_optional(&mut *tx)
                .await?;
                if current.as_deref() != expected {
                    return Ok(None);
                }
            }
            sqlx::query(
                "UPDATE canaries SET retired_at_ms = $1 WHERE application = $2 AND retired_at_ms IS NULL",
            )
            .bind(to_ms(now))
            .bind(application)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO canaries (id, application, token, created_at_ms) VALUES ($1, $2, $3, $4)",
            )
            .bind(&canary.id)
            .bind(&canary.application)
            .bind(&canary.token)
            .bind(to_ms(canary.created_at))
            .execute(&mut *tx)
            .await?;
            if postgres {
                // Every gateway listening hears of it when the rotation commits.
                sqlx::query("SELECT pg_notify($1, $2)")
                    .bind(crate::changes::CANARY_CHANNEL)
                    .bind(application)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        });
        Ok(Some(canary))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_have_the_documented_shape_and_differ() {
        let a = generate_canary_token().unwrap();
        let b = generate_canary_token().unwrap();
        assert_ne!(a, b);
        for t in [&a, &b] {
            assert_eq!(t.len(), CANARY_PREFIX.len() + CANARY_CHARS);
            assert!(t.starts_with(CANARY_PREFIX));
            assert!(
                t[CANARY_PREFIX.len()..]
                    .bytes()
                    .all(|c| BASE32.contains(&c)),
                "{t}"
            );
        }
    }

    #[test]
    fn debug_leaves_the_token_out() {
        let c = Canary {
            id: "1".into(),
            application: "a".into(),
            token: "dmc-secretsecretsecre".into(),
            created_at: OffsetDateTime::UNIX_EPOCH,
            retired_at: None,
        };
        assert!(!format!("{c:?}").contains("dmc-"));
        assert!(!serde_json::to_string(&c).unwrap().contains("dmc-"));
    }
}
