//! Login transactions (R-AZ-3/4, R-CB-2): stored server-side keyed by `state`, bound to the
//! browser by a hash of its tx cookie, consumed atomically before any network call.

use sqlx::Row;

use crate::{Store, StoreError};

/// A pending sign-in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginTx {
    pub state: String,
    pub nonce: String,
    pub code_verifier: String,
    /// Validated absolute return URL (R-RD).
    pub return_to: String,
    /// Hash of the browser's tx cookie (R-AZ-4).
    pub binding_hash: String,
    /// Issuer the request went to (RFC 9207 check at the callback).
    pub issuer: String,
    pub created_at: i64,
    pub expires_at: i64,
}

impl Store {
    /// Save a transaction; keeps at most `max_per_browser` live ones per browser binding by
    /// dropping the oldest (R-AZ-3), and purges expired ones.
    pub async fn insert_login_tx(
        &self,
        tx: &LoginTx,
        max_per_browser: i64,
    ) -> Result<(), StoreError> {
        let mut t = self.pool.begin().await?;
        sqlx::query("DELETE FROM login_tx WHERE expires_at < $1")
            .bind(tx.created_at)
            .execute(&mut *t)
            .await?;
        sqlx::query(
            "DELETE FROM login_tx WHERE state IN (SELECT state FROM login_tx WHERE binding_hash = $1 \
             ORDER BY created_at DESC, rowid DESC LIMIT -1 OFFSET $2)",
        )
        .bind(&tx.binding_hash)
        .bind(max_per_browser - 1)
        .execute(&mut *t)
        .await?;
        sqlx::query(
            "INSERT INTO login_tx (state, nonce, code_verifier, return_to, binding_hash, issuer, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&tx.state)
        .bind(&tx.nonce)
        .bind(&tx.code_verifier)
        .bind(&tx.return_to)
        .bind(&tx.binding_hash)
        .bind(&tx.issuer)
        .bind(tx.created_at)
        .bind(tx.expires_at)
        .execute(&mut *t)
        .await?;
        t.commit().await?;
        Ok(())
    }

    /// Atomically remove and return the transaction for `state` (R-CB-2). An expired one is
    /// removed too but not returned. A second call for the same state returns `None`.
    pub async fn take_login_tx(
        &self,
        state: &str,
        now: i64,
    ) -> Result<Option<LoginTx>, StoreError> {
        let row = sqlx::query(
            "DELETE FROM login_tx WHERE state = $1 RETURNING state, nonce, code_verifier, return_to, \
             binding_hash, issuer, created_at, expires_at",
        )
        .bind(state)
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        let tx = LoginTx {
            state: r.try_get("state")?,
            nonce: r.try_get("nonce")?,
            code_verifier: r.try_get("code_verifier")?,
            return_to: r.try_get("return_to")?,
            binding_hash: r.try_get("binding_hash")?,
            issuer: r.try_get("issuer")?,
            created_at: r.try_get("created_at")?,
            expires_at: r.try_get("expires_at")?,
        };
        Ok((tx.expires_at >= now).then_some(tx))
    }

    /// Number of pending transactions (tests and metrics).
    pub async fn count_login_tx(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM login_tx")
            .fetch_one(&self.pool)
            .await?)
    }
}
