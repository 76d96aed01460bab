//! Word of changes that gateways cache, as they commit: a revoked key, a rotated canary.
//! PostgreSQL's `LISTEN`/`NOTIFY`; SQLite has no such thing (a gateway's key cache then
//! expires within a second and its canaries are read again within a minute).

use crate::error::Result;
use crate::{Pool, Store};

/// The channel of key revocations (the payload: the key's id).
pub(crate) const KEY_CHANNEL: &str = "demarc_api_keys";
/// The channel of canary rotations (the payload: the application's id).
pub(crate) const CANARY_CHANNEL: &str = "demarc_canaries";

/// One change announced by the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Key `id` was revoked.
    KeyRevoked(String),
    /// The canaries of application `id` changed.
    CanaryRotated(String),
    /// The connection was lost and remade: changes may have been missed, so forget
    /// everything cached.
    Missed,
}

/// A listener for the store's changes ([`Store::changes`]).
pub struct Changes(sqlx::postgres::PgListener);

impl Changes {
    /// Wait for the next change.
    pub async fn next(&mut self) -> Result<Change> {
        let Some(n) = self.0.try_recv().await? else {
            return Ok(Change::Missed);
        };
        let payload = n.payload().to_string();
        Ok(match n.channel() {
            CANARY_CHANNEL => Change::CanaryRotated(payload),
            _ => Change::KeyRevoked(payload),
        })
    }
}

impl Store {
    /// Listen for key revocations and canary rotations as they commit; `None` on SQLite.
    pub async fn changes(&self) -> Result<Option<Changes>> {
        let Pool::Postgres(pool) = &self.pool else {
            return Ok(None);
        };
        let mut listener = sqlx::postgres::PgListener::connect_with(pool).await?;
        listener.listen_all([KEY_CHANNEL, CANARY_CHANNEL]).await?;
        Ok(Some(Changes(listener)))
    }
}
