//! [`crate::ApiTokenStore`] for both SQL backends: the same portable SQL, stamped out per
//! backend like the other traits (see `sql_backend!`), in a module of its own.

/// Implements [`crate::ApiTokenStore`] for `$store` (in the module that invoked
/// `sql_backend!` for it, whose `append_change` it uses).
macro_rules! api_token_backend {
    ($store:ident, $db:ty, $row:ty) => {
        mod api_token_impl {
            use async_trait::async_trait;
            use sqlx::Row;

            use super::$store;
            use crate::{ApiToken, ApiTokenStore, Change, Created, StoreError};

            const COLUMNS: &str = "id, user_id, name, secret_hash, created_at, expires_at, \
                 revoked_at, last_used";

            fn token_from_row(r: &$row) -> Result<ApiToken, StoreError> {
                Ok(ApiToken {
                    id: r.try_get("id")?,
                    user_id: r.try_get("user_id")?,
                    name: r.try_get("name")?,
                    secret_hash: r.try_get("secret_hash")?,
                    created_at: r.try_get("created_at")?,
                    expires_at: r.try_get("expires_at")?,
                    revoked_at: r.try_get("revoked_at")?,
                    last_used: r.try_get("last_used")?,
                })
            }

            #[async_trait]
            impl ApiTokenStore for $store {
                async fn create_api_token(
                    &self,
                    t: &ApiToken,
                    max_live: i64,
                    now: i64,
                ) -> Result<Created, StoreError> {
                    let mut tx = self.write_tx().await?;
                    // PostgreSQL: serialise one owner's creations on their user row, so two
                    // concurrent requests cannot both pass the count (SQLite has one writer).
                    if <$db as sqlx::Database>::NAME == "PostgreSQL" {
                        sqlx::query("SELECT id FROM users WHERE id = $1 FOR UPDATE")
                            .bind(&t.user_id)
                            .execute(&mut *tx)
                            .await?;
                    }
                    // Count and insert in one statement: on SQLite a transaction that read
                    // first could not upgrade to a writer once another connection had written
                    // (WAL snapshot), and would fail instead of waiting.
                    let sql = format!(
                        "INSERT INTO api_tokens ({COLUMNS}) \
                         SELECT $1, $2, $3, $4, $5, $6, $7, $8 \
                         WHERE (SELECT COUNT(*) FROM api_tokens WHERE user_id = $2 \
                         AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at >= $9)) < $10"
                    );
                    // Forget ended tokens: beyond the newest KEEP_ENDED, and those ended before
                    // the retention (a correlated count ranks them: portable to both SQLs).
                    const ENDED: &str = "(revoked_at IS NOT NULL OR (expires_at IS NOT NULL AND expires_at < $2))";
                    let prune = format!(
                        "DELETE FROM api_tokens WHERE user_id = $1 AND {ENDED} AND \
                         (COALESCE(revoked_at, expires_at) < $3 OR \
                          (SELECT COUNT(*) FROM api_tokens t2 WHERE t2.user_id = $1 \
                           AND (t2.revoked_at IS NOT NULL OR (t2.expires_at IS NOT NULL AND t2.expires_at < $2)) \
                           AND (t2.created_at > api_tokens.created_at \
                                OR (t2.created_at = api_tokens.created_at AND t2.id > api_tokens.id))) >= $4)"
                    );
                    sqlx::query(sqlx::AssertSqlSafe(prune))
                        .bind(&t.user_id)
                        .bind(now)
                        .bind(now - crate::api_tokens::ENDED_RETENTION)
                        .bind(crate::api_tokens::KEEP_ENDED)
                        .execute(&mut *tx)
                        .await?;
                    let r = sqlx::query(sqlx::AssertSqlSafe(sql))
                        .bind(&t.id)
                        .bind(&t.user_id)
                        .bind(&t.name)
                        .bind(&t.secret_hash)
                        .bind(t.created_at)
                        .bind(t.expires_at)
                        .bind(t.revoked_at)
                        .bind(t.last_used)
                        .bind(now)
                        .bind(max_live)
                        .execute(&mut *tx)
                        .await?;
                    if r.rows_affected() == 0 {
                        return Ok(Created::LimitReached);
                    }
                    tx.commit().await?;
                    Ok(Created::Created)
                }

                async fn api_token(&self, id: &str) -> Result<Option<ApiToken>, StoreError> {
                    let sql = format!("SELECT {COLUMNS} FROM api_tokens WHERE id = $1");
                    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                        .bind(id)
                        .fetch_optional(&self.pool)
                        .await?;
                    row.as_ref().map(token_from_row).transpose()
                }

                async fn api_tokens_of(&self, user_id: &str) -> Result<Vec<ApiToken>, StoreError> {
                    let sql = format!(
                        "SELECT {COLUMNS} FROM api_tokens WHERE user_id = $1 \
                         AND revoked_at IS NULL ORDER BY created_at DESC, id"
                    );
                    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                        .bind(user_id)
                        .fetch_all(&self.pool)
                        .await?;
                    rows.iter().map(token_from_row).collect()
                }

                async fn revoke_api_token(
                    &self,
                    user_id: &str,
                    id: &str,
                    now: i64,
                ) -> Result<bool, StoreError> {
                    let mut tx = self.write_tx().await?;
                    let r = sqlx::query(
                        "UPDATE api_tokens SET revoked_at = $3 \
                         WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL",
                    )
                    .bind(id)
                    .bind(user_id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    if r.rows_affected() == 0 {
                        return Ok(false);
                    }
                    let change = Change::ApiTokenRevoked { id: id.to_string() };
                    self.append_change(&mut tx, &change, now).await?;
                    tx.commit().await?;
                    self.wake.notify_waiters();
                    Ok(true)
                }

                async fn touch_api_token(&self, id: &str, now: i64) -> Result<(), StoreError> {
                    sqlx::query(
                        "UPDATE api_tokens SET last_used = $2 \
                         WHERE id = $1 AND (last_used IS NULL OR last_used < $2)",
                    )
                    .bind(id)
                    .bind(now)
                    .execute(&self.pool)
                    .await?;
                    Ok(())
                }
            }
        }
    };
}

pub(crate) use api_token_backend;
