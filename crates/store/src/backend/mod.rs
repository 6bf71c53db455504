//! The two SQL backends. Their schemas use the same column names and types that decode to the
//! same Rust types (TEXT ↔ String, INTEGER/BIGINT ↔ i64, INTEGER/BOOLEAN ↔ bool), so one body
//! of portable SQL serves both: [`sql_backend!`] stamps the trait implementations out for each
//! backend's own pool and row type at compile time (sqlx's generic executor bounds would make a
//! generic function far harder to read). What differs — connecting, migrations, how other
//! replicas are told about a change — lives in `sqlite.rs` and `postgres.rs`.

pub mod postgres;
pub mod sqlite;

/// Columns of `users`, in [`user_from_row`]'s order.
pub(crate) const USER_COLUMNS: &str = "id, issuer, subject, user_id, email, name, given_name, \
     family_name, picture, provider, username, groups_json, first_login, last_login, active";
pub(crate) const SESSION_COLUMNS: &str =
    "id, user_id, created_at, last_seen, expires_at, revoked_at, idp_sid";
pub(crate) const TX_COLUMNS: &str = "state, nonce, code_verifier, return_to, binding_hash, \
     issuer, created_at, expires_at, dpop_jkt";

/// Implements every store trait for `$store` (a struct with `pool: sqlx::Pool<$db>` and
/// `wake: Arc<Notify>`, plus `async fn announce(&self, t: &mut Transaction<$db>)` that tells
/// other replicas a change is being committed).
macro_rules! sql_backend {
    ($store:ty, $db:ty, $row:ty) => {
        use async_trait::async_trait;
        use portcullis_core::claims::MappedUser;
        use sqlx::Row;

        use crate::backend::{SESSION_COLUMNS, TX_COLUMNS, USER_COLUMNS};
        use crate::{
            Change, ChangeEvent, ChangeLog, Health, LoginTx, LoginTxStore, Session, SessionStore,
            StoreError, TxLimits, User, UserStore,
        };

        fn user_from_row(r: &$row) -> Result<User, StoreError> {
            let groups_json: String = r.try_get("groups_json")?;
            let groups = serde_json::from_str(&groups_json)
                .map_err(|e| StoreError::Corrupt(format!("users.groups_json: {e}")))?;
            Ok(User {
                id: r.try_get("id")?,
                profile: MappedUser {
                    issuer: r.try_get("issuer")?,
                    subject: r.try_get("subject")?,
                    user_id: r.try_get("user_id")?,
                    email: r.try_get("email")?,
                    name: r.try_get("name")?,
                    given_name: r.try_get("given_name")?,
                    family_name: r.try_get("family_name")?,
                    picture: r.try_get("picture")?,
                    provider: r.try_get("provider")?,
                    username: r.try_get("username")?,
                    groups,
                },
                first_login: r.try_get("first_login")?,
                last_login: r.try_get("last_login")?,
                active: r.try_get("active")?,
            })
        }

        fn session_from_row(r: &$row) -> Result<Session, StoreError> {
            Ok(Session {
                id: r.try_get("id")?,
                user_id: r.try_get("user_id")?,
                created_at: r.try_get("created_at")?,
                last_seen: r.try_get("last_seen")?,
                expires_at: r.try_get("expires_at")?,
                revoked_at: r.try_get("revoked_at")?,
                idp_sid: r.try_get("idp_sid")?,
            })
        }

        fn tx_from_row(r: &$row) -> Result<LoginTx, StoreError> {
            Ok(LoginTx {
                state: r.try_get("state")?,
                nonce: r.try_get("nonce")?,
                code_verifier: r.try_get("code_verifier")?,
                return_to: r.try_get("return_to")?,
                binding_hash: r.try_get("binding_hash")?,
                issuer: r.try_get("issuer")?,
                created_at: r.try_get("created_at")?,
                expires_at: r.try_get("expires_at")?,
                dpop_jkt: r.try_get("dpop_jkt")?,
            })
        }

        impl $store {
            /// Append `change` inside `t` and announce it to the other replicas.
            async fn append_change(
                &self,
                t: &mut sqlx::Transaction<'_, $db>,
                change: &Change,
                now: i64,
            ) -> Result<(), StoreError> {
                let (kind, subject, expires_at) = change.to_row();
                sqlx::query(
                    "INSERT INTO changes (at, kind, subject, expires_at) VALUES ($1, $2, $3, $4)",
                )
                .bind(now)
                .bind(kind)
                .bind(subject)
                .bind(expires_at)
                .execute(&mut **t)
                .await?;
                self.announce(t).await
            }

            /// Insert or update inside `t`; an existing user's change is appended to the log
            /// (other replicas drop their cached copy: new groups, re-activation).
            async fn upsert_in(
                &self,
                t: &mut sqlx::Transaction<'_, $db>,
                m: &MappedUser,
                new_id: &str,
                now: i64,
            ) -> Result<User, StoreError> {
                let groups = serde_json::to_string(&m.groups)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                let existed: Option<String> =
                    sqlx::query_scalar("SELECT id FROM users WHERE issuer = $1 AND subject = $2")
                        .bind(&m.issuer)
                        .bind(&m.subject)
                        .fetch_optional(&mut **t)
                        .await?;
                let sql = format!(
                    "INSERT INTO users (id, issuer, subject, user_id, email, name, given_name, \
                     family_name, picture, provider, username, groups_json, first_login, \
                     last_login, active) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13, TRUE) \
                     ON CONFLICT (issuer, subject) DO UPDATE SET user_id = excluded.user_id, \
                     email = excluded.email, name = excluded.name, \
                     given_name = excluded.given_name, family_name = excluded.family_name, \
                     picture = excluded.picture, provider = excluded.provider, \
                     username = excluded.username, groups_json = excluded.groups_json, \
                     last_login = excluded.last_login, active = TRUE \
                     RETURNING {USER_COLUMNS}"
                );
                let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(new_id)
                    .bind(&m.issuer)
                    .bind(&m.subject)
                    .bind(&m.user_id)
                    .bind(&m.email)
                    .bind(&m.name)
                    .bind(&m.given_name)
                    .bind(&m.family_name)
                    .bind(&m.picture)
                    .bind(&m.provider)
                    .bind(&m.username)
                    .bind(groups)
                    .bind(now)
                    .fetch_one(&mut **t)
                    .await?;
                let user = user_from_row(&row)?;
                if existed.is_some() {
                    self.append_change(t, &Change::User { id: user.id.clone() }, now)
                        .await?;
                }
                Ok(user)
            }
        }

        #[async_trait]
        impl UserStore for $store {
            async fn upsert_user(
                &self,
                m: &MappedUser,
                new_id: &str,
                now: i64,
            ) -> Result<User, StoreError> {
                let mut t = self.pool.begin().await?;
                let user = self.upsert_in(&mut t, m, new_id, now).await?;
                t.commit().await?;
                self.wake.notify_waiters();
                Ok(user)
            }

            async fn user(&self, id: &str) -> Result<Option<User>, StoreError> {
                let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
                let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?;
                row.as_ref().map(user_from_row).transpose()
            }

            async fn user_by_identity(
                &self,
                issuer: &str,
                subject: &str,
            ) -> Result<Option<User>, StoreError> {
                let sql =
                    format!("SELECT {USER_COLUMNS} FROM users WHERE issuer = $1 AND subject = $2");
                let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(issuer)
                    .bind(subject)
                    .fetch_optional(&self.pool)
                    .await?;
                row.as_ref().map(user_from_row).transpose()
            }

            async fn set_user_active(
                &self,
                id: &str,
                active: bool,
                now: i64,
            ) -> Result<bool, StoreError> {
                let mut t = self.pool.begin().await?;
                let r = sqlx::query("UPDATE users SET active = $2 WHERE id = $1 AND active <> $2")
                    .bind(id)
                    .bind(active)
                    .execute(&mut *t)
                    .await?;
                let changed = r.rows_affected() > 0;
                if changed {
                    self.append_change(&mut t, &Change::User { id: id.to_string() }, now)
                        .await?;
                }
                t.commit().await?;
                self.wake.notify_waiters();
                Ok(changed)
            }
        }

        #[async_trait]
        impl SessionStore for $store {
            async fn sign_in(
                &self,
                m: &MappedUser,
                new_user_id: &str,
                session: &Session,
                now: i64,
            ) -> Result<(User, Session), StoreError> {
                let mut t = self.pool.begin().await?;
                let user = self.upsert_in(&mut t, m, new_user_id, now).await?;
                let s = Session {
                    user_id: user.id.clone(),
                    ..session.clone()
                };
                sqlx::query(
                    "INSERT INTO sessions (id, user_id, created_at, last_seen, expires_at, \
                     revoked_at, idp_sid) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&s.id)
                .bind(&s.user_id)
                .bind(s.created_at)
                .bind(s.last_seen)
                .bind(s.expires_at)
                .bind(s.revoked_at)
                .bind(&s.idp_sid)
                .execute(&mut *t)
                .await?;
                t.commit().await?;
                self.wake.notify_waiters();
                Ok((user, s))
            }

            async fn revoke_session(&self, id: &str, now: i64) -> Result<bool, StoreError> {
                let mut t = self.pool.begin().await?;
                let expires_at: Option<i64> = sqlx::query_scalar(
                    "UPDATE sessions SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL \
                     RETURNING expires_at",
                )
                .bind(id)
                .bind(now)
                .fetch_optional(&mut *t)
                .await?;
                let Some(expires_at) = expires_at else {
                    return Ok(false);
                };
                let change = Change::SessionRevoked {
                    id: id.to_string(),
                    expires_at,
                };
                self.append_change(&mut t, &change, now).await?;
                t.commit().await?;
                self.wake.notify_waiters();
                Ok(true)
            }

            async fn revoked_sessions(&self, now: i64) -> Result<Vec<(String, i64)>, StoreError> {
                let rows = sqlx::query(
                    "SELECT id, expires_at FROM sessions \
                     WHERE revoked_at IS NOT NULL AND expires_at >= $1",
                )
                .bind(now)
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|r| Ok((r.try_get("id")?, r.try_get("expires_at")?)))
                    .collect()
            }

            async fn session(&self, id: &str) -> Result<Option<Session>, StoreError> {
                let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE id = $1");
                let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?;
                row.as_ref().map(session_from_row).transpose()
            }
        }

        #[async_trait]
        impl LoginTxStore for $store {
            async fn insert_login_tx(
                &self,
                tx: &LoginTx,
                limits: TxLimits,
            ) -> Result<(), StoreError> {
                let mut t = self.pool.begin().await?;
                sqlx::query("DELETE FROM login_tx WHERE expires_at < $1")
                    .bind(tx.created_at)
                    .execute(&mut *t)
                    .await?;
                // Keep the newest `per_browser - 1` of this browser, then add this one.
                sqlx::query(
                    "DELETE FROM login_tx WHERE state IN (SELECT state FROM login_tx \
                     WHERE binding_hash = $1 ORDER BY created_at DESC, state DESC \
                     LIMIT $3 OFFSET $2)",
                )
                .bind(&tx.binding_hash)
                .bind((limits.per_browser - 1).max(0))
                .bind(i64::MAX)
                .execute(&mut *t)
                .await?;
                let live: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM login_tx")
                    .fetch_one(&mut *t)
                    .await?;
                if live >= limits.total {
                    return Err(StoreError::Full("sign-ins"));
                }
                let sql = format!(
                    "INSERT INTO login_tx ({TX_COLUMNS}) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
                );
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(&tx.state)
                    .bind(&tx.nonce)
                    .bind(&tx.code_verifier)
                    .bind(&tx.return_to)
                    .bind(&tx.binding_hash)
                    .bind(&tx.issuer)
                    .bind(tx.created_at)
                    .bind(tx.expires_at)
                    .bind(&tx.dpop_jkt)
                    .execute(&mut *t)
                    .await?;
                t.commit().await?;
                Ok(())
            }

            async fn take_login_tx(
                &self,
                state: &str,
                now: i64,
            ) -> Result<Option<LoginTx>, StoreError> {
                let sql = format!("DELETE FROM login_tx WHERE state = $1 RETURNING {TX_COLUMNS}");
                let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(state)
                    .fetch_optional(&self.pool)
                    .await?;
                let Some(r) = row else { return Ok(None) };
                let tx = tx_from_row(&r)?;
                Ok((tx.expires_at >= now).then_some(tx))
            }
        }

        #[async_trait]
        impl ChangeLog for $store {
            async fn latest_seq(&self) -> Result<i64, StoreError> {
                let seq: Option<i64> = sqlx::query_scalar("SELECT MAX(seq) FROM changes")
                    .fetch_one(&self.pool)
                    .await?;
                Ok(seq.unwrap_or(0))
            }

            async fn changes_since(
                &self,
                after: i64,
                limit: i64,
            ) -> Result<Vec<ChangeEvent>, StoreError> {
                let rows = sqlx::query(
                    "SELECT seq, at, kind, subject, expires_at FROM changes WHERE seq > $1 \
                     ORDER BY seq LIMIT $2",
                )
                .bind(after)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                let mut out = Vec::with_capacity(rows.len());
                for r in &rows {
                    let kind: String = r.try_get("kind")?;
                    let seq: i64 = r.try_get("seq")?;
                    let change = Change::from_row(&kind, r.try_get("subject")?, r.try_get("expires_at")?)
                        .ok_or_else(|| StoreError::Corrupt(format!("changes.kind `{kind}` (seq {seq})")))?;
                    out.push(ChangeEvent {
                        seq,
                        at: r.try_get("at")?,
                        change,
                    });
                }
                Ok(out)
            }

            async fn prune_changes(&self, before: i64) -> Result<u64, StoreError> {
                let r = sqlx::query("DELETE FROM changes WHERE at < $1")
                    .bind(before)
                    .execute(&self.pool)
                    .await?;
                Ok(r.rows_affected())
            }

            fn wake(&self) -> std::sync::Arc<tokio::sync::Notify> {
                self.wake.clone()
            }
        }

        #[async_trait]
        impl Health for $store {
            async fn ping(&self) -> Result<(), StoreError> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }

            #[cfg(feature = "testing")]
            async fn count(&self, table: crate::Table) -> Result<i64, StoreError> {
                let sql = format!("SELECT COUNT(*) FROM {}", table.name());
                Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                    .fetch_one(&self.pool)
                    .await?)
            }
        }
    };
}

pub(crate) use sql_backend;
