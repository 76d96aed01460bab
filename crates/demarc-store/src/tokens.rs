//! Access tokens of `demarc serve` (the dashboard and its API) and the browser sessions a
//! token is exchanged for. As with gateway keys, only SHA-256 hashes of secrets are stored.

use std::fmt;
use std::str::FromStr;

use time::OffsetDateTime;

use crate::error::{Result, StoreError};
use crate::keys::hash_api_key;
use crate::{Store, check_text, dispatch, from_ms, to_ms};

/// Every dashboard token starts with this, so a leaked one is recognisable in scans.
pub const TOKEN_PREFIX: &str = "dmt_";
/// Characters of the token kept in clear (prefix included) to tell tokens apart.
const VISIBLE_LEN: usize = 12;

/// What a token may do. Each role from `Viewer` on can do everything the ones before it can;
/// `Ingest` only sends logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Send logs to `POST /api/v1/discovery/ingest` and nothing else: no page, no read (a log
    /// shipper's token). Below every other role.
    Ingest,
    /// Read every page and endpoint; user names from discovery are pseudonymised.
    Viewer,
    /// As viewer, plus user names and raw evidence links.
    Auditor,
    /// As auditor, plus gateway keys, dashboard tokens and assessment runs.
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Ingest, Role::Viewer, Role::Auditor, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Ingest => "ingest",
            Role::Viewer => "viewer",
            Role::Auditor => "auditor",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Role> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                StoreError::invalid(
                    "token role",
                    format!("`{s}` is not one of ingest, viewer, auditor, admin"),
                )
            })
    }
}

/// A stored token, without its secret.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ServeToken {
    pub id: String,
    pub role: Role,
    /// Who or what the token is for, as given at creation.
    pub label: String,
    /// The first characters of the token, e.g. `dmt_1a2b3c4d`.
    pub prefix: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
}

impl ServeToken {
    pub fn is_active(&self) -> bool {
        self.revoked_at.is_none()
    }
}

/// A token just created: the secret is shown once and never stored.
#[derive(Debug, Clone)]
pub struct NewServeToken {
    pub token: ServeToken,
    /// `dmt_` followed by 64 hex digits (256 random bits).
    pub secret: String,
}

/// A browser session: what a login exchanged a token for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeSession {
    /// The token the session was opened with; a revoked token ends its sessions.
    pub token: ServeToken,
    /// The session's anti-forgery value, to be sent back with every form.
    pub csrf: String,
    pub expires_at: OffsetDateTime,
    /// The session's hash as stored, for the caller's own constant-time comparison.
    pub stored_hash: Vec<u8>,
}

/// A session just opened: the secret goes into the cookie and is not stored.
#[derive(Debug, Clone)]
pub struct NewServeSession {
    pub secret: String,
    pub csrf: String,
    pub expires_at: OffsetDateTime,
}

type TokenRow = (String, String, String, String, i64, Option<i64>);

fn token_from_row((id, role, label, prefix, created, revoked): TokenRow) -> Result<ServeToken> {
    Ok(ServeToken {
        id,
        role: role.parse()?,
        label,
        prefix,
        created_at: from_ms(created),
        revoked_at: revoked.map(from_ms),
    })
}

impl Store {
    /// Creates a token with `role`; the returned secret is not stored.
    pub async fn create_serve_token(&self, role: Role, label: &str) -> Result<NewServeToken> {
        check_text("token label", label, 200)?;
        let secret = format!("{TOKEN_PREFIX}{}", crate::keys::random_hex(32)?);
        let token = ServeToken {
            id: crate::keys::random_hex(8)?,
            role,
            label: label.to_owned(),
            prefix: secret.chars().take(VISIBLE_LEN).collect(),
            created_at: from_ms(to_ms(OffsetDateTime::now_utc())),
            revoked_at: None,
        };
        dispatch!(self, |pool| {
            sqlx::query(
                "INSERT INTO serve_tokens (id, role, label, token_hash, prefix, created_at_ms)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&token.id)
            .bind(role.as_str())
            .bind(&token.label)
            .bind(&hash_api_key(&secret)[..])
            .bind(&token.prefix)
            .bind(to_ms(token.created_at))
            .execute(pool)
            .await?;
        });
        Ok(NewServeToken { token, secret })
    }

    /// Every token (revoked ones included), oldest first.
    pub async fn list_serve_tokens(&self) -> Result<Vec<ServeToken>> {
        let rows: Vec<TokenRow> = dispatch!(self, |pool| {
            sqlx::query_as(
                "SELECT id, role, label, prefix, created_at_ms, revoked_at_ms FROM serve_tokens
                 ORDER BY created_at_ms, id",
            )
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(token_from_row).collect()
    }

    /// Revokes token `id` and ends its sessions; false when there is no such token or it
    /// was already revoked.
    pub async fn revoke_serve_token(&self, id: &str) -> Result<bool> {
        let changed = dispatch!(self, |pool| {
            let changed = sqlx::query(
                "UPDATE serve_tokens SET revoked_at_ms = $1 WHERE id = $2 AND revoked_at_ms IS NULL",
            )
            .bind(to_ms(OffsetDateTime::now_utc()))
            .bind(id)
            .execute(pool)
            .await?
            .rows_affected();
            sqlx::query("DELETE FROM serve_sessions WHERE token_id = $1")
                .bind(id)
                .execute(pool)
                .await?;
            changed
        });
        Ok(changed > 0)
    }

    /// The token whose SHA-256 is `hash` (revoked or not: check [`ServeToken::is_active`]),
    /// with the hash as stored, for a constant-time comparison by the caller.
    pub async fn lookup_serve_token(
        &self,
        hash: &[u8; 32],
    ) -> Result<Option<(ServeToken, Vec<u8>)>> {
        type Row = (String, String, String, String, i64, Option<i64>, Vec<u8>);
        let row: Option<Row> = dispatch!(self, |pool| {
            sqlx::query_as(
                "SELECT id, role, label, prefix, created_at_ms, revoked_at_ms, token_hash
                     FROM serve_tokens WHERE token_hash = $1",
            )
            .bind(&hash[..])
            .fetch_optional(pool)
            .await?
        });
        row.map(|(id, role, label, prefix, created, revoked, stored)| {
            Ok((
                token_from_row((id, role, label, prefix, created, revoked))?,
                stored,
            ))
        })
        .transpose()
    }

    /// Opens a session for an active token, valid for `ttl`.
    pub async fn create_serve_session(
        &self,
        token_id: &str,
        ttl: time::Duration,
    ) -> Result<NewServeSession> {
        let secret = crate::keys::random_hex(32)?;
        let csrf = crate::keys::random_hex(32)?;
        let now = OffsetDateTime::now_utc();
        let expires_at = from_ms(to_ms(now + ttl));
        dispatch!(self, |pool| {
            sqlx::query(
                "INSERT INTO serve_sessions (session_hash, token_id, csrf, created_at_ms, expires_at_ms)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&hash_api_key(&secret)[..])
            .bind(token_id)
            .bind(&csrf)
            .bind(to_ms(now))
            .bind(to_ms(expires_at))
            .execute(pool)
            .await?;
        });
        Ok(NewServeSession {
            secret,
            csrf,
            expires_at,
        })
    }

    /// The unexpired session whose secret hashes to `hash`, with its token; `None` when
    /// there is none, it expired, or its token was revoked.
    pub async fn lookup_serve_session(&self, hash: &[u8; 32]) -> Result<Option<ServeSession>> {
        type Row = (
            String,
            String,
            String,
            String,
            i64,
            Option<i64>,
            String,
            i64,
            Vec<u8>,
        );
        let row: Option<Row> = dispatch!(self, |pool| {
            sqlx::query_as(
                "SELECT t.id, t.role, t.label, t.prefix, t.created_at_ms, t.revoked_at_ms,
                        s.csrf, s.expires_at_ms, s.session_hash
                 FROM serve_sessions s JOIN serve_tokens t ON t.id = s.token_id
                 WHERE s.session_hash = $1",
            )
            .bind(&hash[..])
            .fetch_optional(pool)
            .await?
        });
        let Some((id, role, label, prefix, created, revoked, csrf, expires, stored)) = row else {
            return Ok(None);
        };
        let token = token_from_row((id, role, label, prefix, created, revoked))?;
        let expires_at = from_ms(expires);
        if !token.is_active() || expires_at <= OffsetDateTime::now_utc() {
            return Ok(None);
        }
        Ok(Some(ServeSession {
            token,
            csrf,
            expires_at,
            stored_hash: stored,
        }))
    }

    /// Ends the session whose secret hashes to `hash` (a logout); false when there was none.
    pub async fn delete_serve_session(&self, hash: &[u8; 32]) -> Result<bool> {
        let removed = dispatch!(self, |pool| {
            sqlx::query("DELETE FROM serve_sessions WHERE session_hash = $1")
                .bind(&hash[..])
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(removed > 0)
    }

    /// The store's secret for pseudonymising user names on the dashboard: made on first use
    /// and shared by every replica, so a pseudonym is the same wherever it is shown.
    pub async fn pseudonym_key(&self) -> Result<String> {
        let candidate = crate::keys::random_hex(32)?;
        let key: String = dispatch!(self, |pool| {
            sqlx::query(
                "INSERT INTO demarc_meta (key, value) VALUES ('pseudonym_key', $1)
                 ON CONFLICT (key) DO NOTHING",
            )
            .bind(&candidate)
            .execute(pool)
            .await?;
            sqlx::query_scalar("SELECT value FROM demarc_meta WHERE key = 'pseudonym_key'")
                .fetch_one(pool)
                .await?
        });
        Ok(key)
    }

    /// Deletes sessions that expired before `now`; returns how many.
    pub async fn prune_serve_sessions(&self, now: OffsetDateTime) -> Result<u64> {
        let removed = dispatch!(self, |pool| {
            sqlx::query("DELETE FROM serve_sessions WHERE expires_at_ms < $1")
                .bind(to_ms(now))
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(removed)
    }
}
