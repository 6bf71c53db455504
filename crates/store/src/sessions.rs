//! Server-side sessions: created at sign-in, revoked at logout. The request path does not read
//! this table; it consults the in-memory revocation view the gateway builds from it.

use sqlx::Row;

use crate::{Store, StoreError};

/// A server-side session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    pub id: String,
    pub user_id: String,
    pub created_at: i64,
    pub last_seen: i64,
    /// Absolute end of the session.
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    pub idp_sid: Option<String>,
}

impl Store {
    pub async fn create_session(&self, s: &Session) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sessions (id, user_id, created_at, last_seen, expires_at, revoked_at, idp_sid) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&s.id)
        .bind(&s.user_id)
        .bind(s.created_at)
        .bind(s.last_seen)
        .bind(s.expires_at)
        .bind(s.revoked_at)
        .bind(&s.idp_sid)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Mark a session revoked; returns whether a live session was revoked.
    pub async fn revoke_session(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        let r =
            sqlx::query("UPDATE sessions SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
                .bind(id)
                .bind(now)
                .execute(&self.pool)
                .await?;
        Ok(r.rows_affected() > 0)
    }

    /// Ids of revoked sessions that have not reached their absolute expiry yet: the seed of
    /// the in-memory revocation view (older ones cannot be presented anyway).
    pub async fn revoked_session_ids(&self, now: i64) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, expires_at FROM sessions WHERE revoked_at IS NOT NULL AND expires_at >= $1",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("id")?, r.try_get("expires_at")?)))
            .collect()
    }

    pub async fn session(&self, id: &str) -> Result<Option<Session>, StoreError> {
        let row = sqlx::query(
            "SELECT id, user_id, created_at, last_seen, expires_at, revoked_at, idp_sid FROM sessions WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        Ok(Some(Session {
            id: r.try_get("id")?,
            user_id: r.try_get("user_id")?,
            created_at: r.try_get("created_at")?,
            last_seen: r.try_get("last_seen")?,
            expires_at: r.try_get("expires_at")?,
            revoked_at: r.try_get("revoked_at")?,
            idp_sid: r.try_get("idp_sid")?,
        }))
    }

    /// Number of sessions (tests assert "nothing stored").
    pub async fn count_sessions(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM sessions")
            .fetch_one(&self.pool)
            .await?)
    }
}
