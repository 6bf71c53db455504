//! [`crate::CliGrantStore`] for both SQL backends, stamped out per backend like the other
//! traits (see `sql_backend!`).

/// Implements [`crate::CliGrantStore`] for `$store`.
macro_rules! cli_grant_backend {
    ($store:ident, $db:ty, $row:ty) => {
        mod cli_grant_impl {
            use async_trait::async_trait;
            use portcullis_core::cli_login::{self, DeviceStatus, PollVerdict};
            use sqlx::Row;

            use super::$store;
            use crate::{CliGrant, CliGrantStore, GrantKind, StoreError};

            const COLUMNS: &str = "id, kind, user_code, user_id, status, machine, token_days, \
                 code_challenge, redirect_uri, client_ip, poll_interval, last_poll, created_at, expires_at";

            fn grant_from_row(r: &$row) -> Result<CliGrant, StoreError> {
                let kind: String = r.try_get("kind")?;
                let status: String = r.try_get("status")?;
                Ok(CliGrant {
                    id: r.try_get("id")?,
                    kind: match kind.as_str() {
                        "code" => GrantKind::Code,
                        "device" => GrantKind::Device,
                        k => return Err(StoreError::Corrupt(format!("grant kind {k:?}"))),
                    },
                    user_code: r.try_get("user_code")?,
                    user_id: r.try_get("user_id")?,
                    status: DeviceStatus::parse(&status)
                        .ok_or_else(|| StoreError::Corrupt(format!("grant status {status:?}")))?,
                    machine: r.try_get("machine")?,
                    token_days: r.try_get("token_days")?,
                    code_challenge: r.try_get("code_challenge")?,
                    redirect_uri: r.try_get("redirect_uri")?,
                    client_ip: r.try_get("client_ip")?,
                    interval: r.try_get("poll_interval")?,
                    last_poll: r.try_get("last_poll")?,
                    created_at: r.try_get("created_at")?,
                    expires_at: r.try_get("expires_at")?,
                })
            }

            #[async_trait]
            impl CliGrantStore for $store {
                async fn insert_cli_grant(
                    &self,
                    g: &CliGrant,
                    max_live: i64,
                    now: i64,
                ) -> Result<bool, StoreError> {
                    let mut tx = self.write_tx().await?;
                    sqlx::query("DELETE FROM cli_grants WHERE expires_at < $1")
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                    let live: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM cli_grants")
                        .fetch_one(&mut *tx)
                        .await?;
                    if live >= max_live {
                        return Err(StoreError::Full("command-line sign-ins"));
                    }
                    let sql = format!(
                        "INSERT INTO cli_grants ({COLUMNS}) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
                         ON CONFLICT DO NOTHING"
                    );
                    let r = sqlx::query(sqlx::AssertSqlSafe(sql))
                        .bind(&g.id)
                        .bind(g.kind.as_str())
                        .bind(&g.user_code)
                        .bind(&g.user_id)
                        .bind(g.status.as_str())
                        .bind(&g.machine)
                        .bind(g.token_days)
                        .bind(&g.code_challenge)
                        .bind(&g.redirect_uri)
                        .bind(&g.client_ip)
                        .bind(g.interval)
                        .bind(g.last_poll)
                        .bind(g.created_at)
                        .bind(g.expires_at)
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    Ok(r.rows_affected() == 1)
                }

                async fn take_cli_code(&self, id: &str) -> Result<Option<CliGrant>, StoreError> {
                    // One statement: of two concurrent redemptions exactly one gets the row.
                    let sql = format!(
                        "DELETE FROM cli_grants WHERE id = $1 AND kind = 'code' RETURNING {COLUMNS}"
                    );
                    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                        .bind(id)
                        .fetch_optional(&self.pool)
                        .await?;
                    row.as_ref().map(grant_from_row).transpose()
                }

                async fn pending_device_grant(
                    &self,
                    user_code: &str,
                    now: i64,
                ) -> Result<Option<CliGrant>, StoreError> {
                    let sql = format!(
                        "SELECT {COLUMNS} FROM cli_grants WHERE user_code = $1 \
                         AND kind = 'device' AND status = 'pending' AND expires_at >= $2"
                    );
                    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                        .bind(user_code)
                        .bind(now)
                        .fetch_optional(&self.pool)
                        .await?;
                    row.as_ref().map(grant_from_row).transpose()
                }

                async fn decide_device_grant(
                    &self,
                    user_code: &str,
                    user_id: &str,
                    approve: bool,
                    now: i64,
                ) -> Result<bool, StoreError> {
                    let status = if approve {
                        DeviceStatus::Approved
                    } else {
                        DeviceStatus::Denied
                    };
                    let r = sqlx::query(
                        "UPDATE cli_grants SET status = $2, user_id = $3 \
                         WHERE user_code = $1 AND kind = 'device' AND status = 'pending' \
                         AND expires_at >= $4",
                    )
                    .bind(user_code)
                    .bind(status.as_str())
                    .bind(user_id)
                    .bind(now)
                    .execute(&self.pool)
                    .await?;
                    Ok(r.rows_affected() == 1)
                }

                async fn poll_device_grant(
                    &self,
                    id: &str,
                    now: i64,
                ) -> Result<Option<(PollVerdict, CliGrant)>, StoreError> {
                    let mut tx = self.write_tx().await?;
                    // PostgreSQL: lock the row so concurrent polls are judged one after the
                    // other (SQLite's write transaction already serialises them).
                    let lock = if <$db as sqlx::Database>::NAME == "PostgreSQL" {
                        " FOR UPDATE"
                    } else {
                        ""
                    };
                    let sql = format!(
                        "SELECT {COLUMNS} FROM cli_grants WHERE id = $1 AND kind = 'device'{lock}"
                    );
                    let Some(row) = sqlx::query(sqlx::AssertSqlSafe(sql))
                        .bind(id)
                        .fetch_optional(&mut *tx)
                        .await?
                    else {
                        return Ok(None);
                    };
                    let g = grant_from_row(&row)?;
                    let verdict =
                        cli_login::judge_poll(g.status, g.last_poll, g.interval, g.expires_at, now);
                    if verdict.ends_grant() {
                        sqlx::query("DELETE FROM cli_grants WHERE id = $1")
                            .bind(id)
                            .execute(&mut *tx)
                            .await?;
                    } else {
                        let interval = match verdict {
                            PollVerdict::SlowDown { interval } => interval,
                            _ => g.interval,
                        };
                        sqlx::query(
                            "UPDATE cli_grants SET last_poll = $2, poll_interval = $3 WHERE id = $1",
                        )
                        .bind(id)
                        .bind(now)
                        .bind(interval)
                        .execute(&mut *tx)
                        .await?;
                    }
                    tx.commit().await?;
                    Ok(Some((verdict, g)))
                }
            }
        }
    };
}

pub(crate) use cli_grant_backend;
