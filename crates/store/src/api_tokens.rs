//! API tokens (R-AT): the record and the store trait. Only the HMAC of a token's secret is
//! stored; the plaintext exists once, in the answer that created it.

use async_trait::async_trait;

use crate::StoreError;

/// A stored API token.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiToken {
    /// The public id part of the token (12 base62 characters).
    pub id: String,
    /// The owner's internal user id.
    pub user_id: String,
    /// The name its owner gave it (e.g. the machine it is for).
    pub name: String,
    /// `HMAC-SHA256(pepper, secret)`.
    pub secret_hash: Vec<u8>,
    pub created_at: i64,
    /// Unix seconds after which it is refused; `None`: it does not expire.
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    /// Last accepted use, recorded at most about once a minute.
    pub last_used: Option<i64>,
}

impl std::fmt::Debug for ApiToken {
    // The hash stays out of logs and panics.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiToken")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("name", &self.name)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .field("revoked_at", &self.revoked_at)
            .field("last_used", &self.last_used)
            .finish_non_exhaustive()
    }
}

impl ApiToken {
    /// Neither revoked nor expired at `now`.
    pub fn is_live(&self, now: i64) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| now <= e)
    }
}

/// Ended (revoked or expired) tokens kept per person, newest first.
pub const KEEP_ENDED: i64 = 100;
/// Seconds an ended token is kept at most (90 days, as the audit log).
pub const ENDED_RETENTION: i64 = 90 * 24 * 3600;

/// What [`ApiTokenStore::create_api_token`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Created {
    Created,
    /// The owner already holds the maximum of live tokens: nothing was stored.
    LimitReached,
}

/// API tokens. The request path reads a token by id on a cache miss only; revocations reach
/// every replica through the change feed ([`crate::Change::ApiTokenRevoked`]).
#[async_trait]
pub trait ApiTokenStore: Send + Sync {
    /// Store a new token unless its owner already holds `max_live` live (unrevoked,
    /// unexpired at `now`) tokens; counting and inserting happen in one transaction.
    ///
    /// The same transaction forgets the owner's ended (revoked or expired) tokens beyond the
    /// newest [`KEEP_ENDED`], and any that ended more than [`ENDED_RETENTION`] seconds ago, so a
    /// person creating and revoking tokens in a loop cannot grow the table without bound.
    async fn create_api_token(
        &self,
        token: &ApiToken,
        max_live: i64,
        now: i64,
    ) -> Result<Created, StoreError>;
    /// The token with this id (in any state).
    async fn api_token(&self, id: &str) -> Result<Option<ApiToken>, StoreError>;
    /// The owner's unrevoked tokens (expired ones included), newest first.
    async fn api_tokens_of(&self, user_id: &str) -> Result<Vec<ApiToken>, StoreError>;
    /// Revoke the token `id` if it belongs to `user_id` and is not revoked yet, appending a
    /// [`crate::Change::ApiTokenRevoked`] in the same transaction; returns whether it did.
    async fn revoke_api_token(&self, user_id: &str, id: &str, now: i64)
    -> Result<bool, StoreError>;
    /// Record a use at `now` (callers throttle this: it is not a per-request write).
    async fn touch_api_token(&self, id: &str, now: i64) -> Result<(), StoreError>;
}
