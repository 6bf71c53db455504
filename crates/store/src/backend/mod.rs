//! The two SQL backends. Their schemas use the same column names and types that decode to the
//! same Rust types (TEXT ↔ String, INTEGER/BIGINT ↔ i64, INTEGER/BOOLEAN ↔ bool), so one body
//! of portable SQL serves both: [`sql_backend!`] stamps the trait implementations out for each
//! backend's own pool and row type at compile time (sqlx's generic executor bounds would make a
//! generic function far harder to read). What differs — connecting, migrations, how other
//! replicas are told about a change — lives in `sqlite.rs` and `postgres.rs`.

pub(crate) mod api_tokens;
pub(crate) mod cli_grants;
pub mod postgres;
pub mod sqlite;

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Columns of `users`, in [`user_from_row`]'s order.
pub(crate) const USER_COLUMNS: &str = "id, issuer, subject, user_id, email, name, given_name, \
     family_name, picture, provider, username, groups_json, first_login, last_login, \
     admin_disabled, idp_deactivated";
pub(crate) const SESSION_COLUMNS: &str = "id, user_id, created_at, last_seen, expires_at, \
     revoked_at, idp_sid, id_token, refresh_token, recheck_at";
pub(crate) const TX_COLUMNS: &str = "state, nonce, code_verifier, return_to, binding_hash, \
     issuer, created_at, expires_at, dpop_jkt";

/// The DPoP replay table is purged after every this many inserts by one replica…
const PROOF_PURGE_EVERY: u64 = 256;
/// …and at least this often (seconds of the callers' clock), so a quiet replica purges too.
const PROOF_PURGE_INTERVAL: i64 = 30;

/// When one replica purges the DPoP replay table, and whether it considers it full.
///
/// Why no `SELECT COUNT(*)` per call: at thousands of proofs a second the table holds every
/// proof of the last few minutes, and counting it on every insert would cost far more than the
/// insert. The count is taken only when purging (after every [`PROOF_PURGE_EVERY`] inserts,
/// every [`PROOF_PURGE_INTERVAL`] s), which divides the counting cost per insert by 256 at
/// load, and between purges this replica adds its own inserts to it. (Cheaper still would be
/// subtracting each purge's deleted rows and never re-counting, but a purge also deletes other
/// replicas' rows, so that count would drift without bound.) The count is approximate, in
/// bounded ways:
/// - other replicas' inserts since our last purge are not in it; but each replica re-counts
///   after at most 256 inserts of its own, so the table can exceed `limit` by at most about
///   256 rows per replica. The limit exists so that a flood cannot fill the disk, which a bounded
///   overshoot still guarantees;
/// - rows that expired since the last purge are still in it, so the table can look full when
///   it is not; while it looks full a purge runs at most once a second of `now`, so a refusal
///   rests on a count at most a second old, and refused calls in between (a flood) cost no
///   database round trip: they insert nothing, so they never reach the 256-insert trigger.
///
/// Counts in flight while a purge re-counts may be lost or counted twice; the next purge
/// corrects either.
#[derive(Debug, Default)]
pub(crate) struct ProofBudget {
    /// Inserts by this replica since its last purge.
    since_purge: AtomicU64,
    /// `now` of the last purge (0: none yet).
    last_purge: AtomicI64,
    /// Live rows as of the last purge plus this replica's inserts since.
    live: AtomicI64,
}

impl ProofBudget {
    /// Whether this call should purge expired rows and re-count. Among concurrent callers
    /// that see the same trigger only one purges (the one that resets the insert count, or
    /// that moves `last_purge`); the others go on with the count they have, so a burst does
    /// not turn into a burst of purges.
    pub(crate) fn purge_due(&self, now: i64, limit: i64) -> bool {
        let last = self.last_purge.load(Ordering::Relaxed);
        if self.since_purge.load(Ordering::Relaxed) >= PROOF_PURGE_EVERY
            && self.since_purge.swap(0, Ordering::Relaxed) >= PROOF_PURGE_EVERY
        {
            self.last_purge.fetch_max(now, Ordering::Relaxed);
            return true;
        }
        // The first call (`last_purge` 0) counts the table this replica starts with.
        let timed = now >= last.saturating_add(PROOF_PURGE_INTERVAL)
            || (self.looks_full(limit) && now > last);
        timed
            && self
                .last_purge
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }

    /// A purge just counted `live` rows.
    pub(crate) fn counted(&self, live: i64) {
        self.live.store(live, Ordering::Relaxed);
    }

    /// This replica stored one more proof (or replaced an expired one: an over-estimate until
    /// the next purge, which errs on the side of the bound).
    pub(crate) fn inserted(&self) {
        self.live.fetch_add(1, Ordering::Relaxed);
        self.since_purge.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn looks_full(&self, limit: i64) -> bool {
        self.live.load(Ordering::Relaxed) >= limit
    }
}

/// Implements every store trait for `$store` (a struct with `pool: sqlx::Pool<$db>`,
/// `wake: Arc<Notify>` and `proofs: ProofBudget`, plus
/// `async fn announce(&self, t: &mut Transaction<$db>)` that tells other replicas a change is
/// being committed).
macro_rules! sql_backend {
    ($store:ty, $db:ty, $row:ty) => {
        use async_trait::async_trait;
        use portcullis_core::claims::MappedUser;
        use sqlx::Row;

        use crate::backend::{SESSION_COLUMNS, TX_COLUMNS, USER_COLUMNS};
        use crate::{
            AUDIT_MAX_PAGE, AuditEvent, AuditLog, AuditQuery, Change, ChangeEvent, ChangeLog,
            DueRecheck, Health, LoginTx, LoginTxStore, LogoutOutcome, ProofReplayStore,
            RecheckDone, RecheckSaved, Session, SessionStore, StoreError, TxLimits, User,
            UserStore,
        };
        use crate::{
            AdminStore, Deactivation, SessionSummary, USER_SESSIONS_MAX,
            USERS_MAX_PAGE, UserQuery,
        };

        fn user_from_row(r: &$row) -> Result<User, StoreError> {
            let groups_json: String = r.try_get("groups_json")?;
            let groups = serde_json::from_str(&groups_json)
                .map_err(|e| StoreError::Corrupt(format!("users.groups_json: {e}")))?;
            let admin_disabled: bool = r.try_get("admin_disabled")?;
            let idp_deactivated: bool = r.try_get("idp_deactivated")?;
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
                active: User::may_use(admin_disabled, idp_deactivated),
                admin_disabled,
                idp_deactivated,
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
                id_token: r.try_get("id_token")?,
                refresh_token: r.try_get("refresh_token")?,
                recheck_at: r.try_get("recheck_at")?,
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

            /// Insert or update inside `t`, clearing IdP-deactivated; an existing user's change
            /// is appended to the log (other replicas drop their cached copy: new groups,
            /// re-activation). An admin-disabled user is not updated: the upsert's
            /// `DO UPDATE … WHERE` skips their row (judged on its latest version, so an admin
            /// disabling them concurrently is not overwritten), nothing is returned, and the
            /// caller gets [`StoreError::AdminDisabled`] and rolls `t` back.
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
                     last_login) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13) \
                     ON CONFLICT (issuer, subject) DO UPDATE SET user_id = excluded.user_id, \
                     email = excluded.email, name = excluded.name, \
                     given_name = excluded.given_name, family_name = excluded.family_name, \
                     picture = excluded.picture, provider = excluded.provider, \
                     username = excluded.username, groups_json = excluded.groups_json, \
                     last_login = excluded.last_login, idp_deactivated = FALSE \
                     WHERE users.admin_disabled = FALSE \
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
                    .fetch_optional(&mut **t)
                    .await?;
                let Some(row) = row else {
                    return Err(StoreError::AdminDisabled);
                };
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
                let mut t = self.write_tx().await?;
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
                if !active {
                    return self.set_admin_disabled(id, true, now).await;
                }
                self.update_user_state(
                    "UPDATE users SET admin_disabled = FALSE, idp_deactivated = FALSE \
                     WHERE id = $1 AND (admin_disabled = TRUE OR idp_deactivated = TRUE)",
                    id,
                    None,
                    now,
                )
                .await
            }

            async fn set_admin_disabled(
                &self,
                id: &str,
                disabled: bool,
                now: i64,
            ) -> Result<bool, StoreError> {
                self.update_user_state(
                    "UPDATE users SET admin_disabled = $2 WHERE id = $1 AND admin_disabled <> $2",
                    id,
                    Some(disabled),
                    now,
                )
                .await
            }
        }

        impl $store {
            /// Run a user state `UPDATE` (`$1` the id, `$2` the optional flag) that matches no
            /// row when nothing would change, and log a [`Change::User`] when it did.
            async fn update_user_state(
                &self,
                sql: &'static str,
                id: &str,
                flag: Option<bool>,
                now: i64,
            ) -> Result<bool, StoreError> {
                let mut t = self.write_tx().await?;
                let mut q = sqlx::query(sql).bind(id);
                if let Some(flag) = flag {
                    q = q.bind(flag);
                }
                let r = q.execute(&mut *t).await?;
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
                let mut t = self.write_tx().await?;
                let user = self.upsert_in(&mut t, m, new_user_id, now).await?;
                let s = Session {
                    user_id: user.id.clone(),
                    ..session.clone()
                };
                sqlx::query(
                    "INSERT INTO sessions (id, user_id, created_at, last_seen, expires_at, \
                     revoked_at, idp_sid, id_token, refresh_token, recheck_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                )
                .bind(&s.id)
                .bind(&s.user_id)
                .bind(s.created_at)
                .bind(s.last_seen)
                .bind(s.expires_at)
                .bind(s.revoked_at)
                .bind(&s.idp_sid)
                .bind(&s.id_token)
                .bind(&s.refresh_token)
                .bind(s.recheck_at)
                .execute(&mut *t)
                .await?;
                t.commit().await?;
                self.wake.notify_waiters();
                Ok((user, s))
            }

            async fn revoke_session(&self, id: &str, now: i64) -> Result<bool, StoreError> {
                let mut t = self.write_tx().await?;
                let expires_at: Option<i64> = sqlx::query_scalar(
                    "UPDATE sessions SET revoked_at = $2, refresh_token = NULL \
                     WHERE id = $1 AND revoked_at IS NULL RETURNING expires_at",
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

            async fn live_sessions(&self, now: i64) -> Result<i64, StoreError> {
                Ok(sqlx::query_scalar(
                    "SELECT COUNT(*) FROM sessions WHERE revoked_at IS NULL AND expires_at >= $1",
                )
                .bind(now)
                .fetch_one(&self.pool)
                .await?)
            }

            async fn session(&self, id: &str) -> Result<Option<Session>, StoreError> {
                let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE id = $1");
                let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?;
                row.as_ref().map(session_from_row).transpose()
            }

            async fn backchannel_logout(
                &self,
                issuer: &str,
                sub: Option<&str>,
                sid: Option<&str>,
                iat: i64,
                now: i64,
            ) -> Result<LogoutOutcome, StoreError> {
                let mut t = self.write_tx().await?;
                // The user(s) the token names. With a sid, only users of this issuer that own
                // a session with that sid (any state: an already ended session still names
                // its user); with a sub too, only that user.
                let users: Vec<String> = match (sub, sid) {
                    (None, None) => Vec::new(),
                    (Some(sub), None) => {
                        sqlx::query_scalar(
                            "SELECT id FROM users WHERE issuer = $1 AND subject = $2",
                        )
                        .bind(issuer)
                        .bind(sub)
                        .fetch_all(&mut *t)
                        .await?
                    }
                    (None, Some(sid)) => {
                        sqlx::query_scalar(
                            "SELECT DISTINCT s.user_id FROM sessions s \
                             JOIN users u ON u.id = s.user_id \
                             WHERE s.idp_sid = $1 AND u.issuer = $2 ORDER BY s.user_id",
                        )
                        .bind(sid)
                        .bind(issuer)
                        .fetch_all(&mut *t)
                        .await?
                    }
                    (Some(sub), Some(sid)) => {
                        sqlx::query_scalar(
                            "SELECT DISTINCT s.user_id FROM sessions s \
                             JOIN users u ON u.id = s.user_id \
                             WHERE s.idp_sid = $1 AND u.issuer = $2 AND u.subject = $3",
                        )
                        .bind(sid)
                        .bind(issuer)
                        .bind(sub)
                        .fetch_all(&mut *t)
                        .await?
                    }
                };
                let mut outcome = LogoutOutcome::default();
                if users.is_empty() {
                    // Unknown sub or sid: a no-op (R-BCL actions 4); nothing was written.
                    return Ok(outcome);
                }
                // Action 1: the live sessions created at or before iat.
                for user_id in &users {
                    let rows = sqlx::query(
                        "UPDATE sessions SET revoked_at = $2, refresh_token = NULL \
                         WHERE user_id = $1 \
                         AND revoked_at IS NULL AND expires_at >= $2 AND created_at <= $3 \
                         AND ($4 IS NULL OR idp_sid = $4) \
                         RETURNING id, expires_at",
                    )
                    .bind(user_id)
                    .bind(now)
                    .bind(iat)
                    .bind(sid)
                    .fetch_all(&mut *t)
                    .await?;
                    for r in &rows {
                        outcome
                            .revoked
                            .push((r.try_get("id")?, r.try_get("expires_at")?));
                    }
                }
                outcome.revoked.sort();
                for (id, expires_at) in &outcome.revoked {
                    let change = Change::SessionRevoked {
                        id: id.clone(),
                        expires_at: *expires_at,
                    };
                    self.append_change(&mut t, &change, now).await?;
                }
                // Action 2: IdP-deactivated unless they signed in after the token was issued.
                if let [user_id] = users.as_slice() {
                    let r = sqlx::query(
                        "UPDATE users SET idp_deactivated = TRUE \
                         WHERE id = $1 AND last_login <= $2 AND idp_deactivated = FALSE",
                    )
                    .bind(user_id)
                    .bind(iat)
                    .execute(&mut *t)
                    .await?;
                    if r.rows_affected() > 0 {
                        self.append_change(&mut t, &Change::User { id: user_id.clone() }, now)
                            .await?;
                        outcome.deactivated_user = Some(user_id.clone());
                    }
                } else {
                    tracing::warn!(
                        users = users.len(),
                        "back-channel logout: one IdP sid belongs to several users; their \
                         sessions are revoked, nobody is deactivated"
                    );
                }
                t.commit().await?;
                if !outcome.revoked.is_empty() || outcome.deactivated_user.is_some() {
                    self.wake.notify_waiters();
                }
                Ok(outcome)
            }

            async fn claim_rechecks(
                &self,
                lease: &str,
                lease_until: i64,
                now: i64,
                limit: i64,
            ) -> Result<Vec<DueRecheck>, StoreError> {
                // A session past its absolute expiry is never re-checked again: its refresh
                // token is not kept a moment longer (through the partial index: such a
                // session's re-check time has passed too).
                sqlx::query(
                    "UPDATE sessions SET refresh_token = NULL WHERE refresh_token IS NOT NULL \
                     AND recheck_at <= $1 AND expires_at <= $1",
                )
                .bind(now)
                .execute(&self.pool)
                .await?;
                // One statement: the outer WHERE repeats the lease condition, so when two
                // replicas pick the same rows, PostgreSQL re-evaluates it on the row the
                // first one updated (READ COMMITTED re-check after the row lock) and the
                // second one skips it; SQLite runs writers one at a time.
                let rows = sqlx::query(
                    "UPDATE sessions SET recheck_lease = $1, recheck_lease_until = $2 \
                     WHERE id IN (SELECT id FROM sessions WHERE refresh_token IS NOT NULL \
                       AND revoked_at IS NULL AND expires_at > $3 AND recheck_at <= $3 \
                       AND (recheck_lease_until IS NULL OR recheck_lease_until < $3) \
                       ORDER BY recheck_at, id LIMIT $4) \
                     AND refresh_token IS NOT NULL AND revoked_at IS NULL \
                     AND (recheck_lease_until IS NULL OR recheck_lease_until < $3) \
                     RETURNING id, user_id, refresh_token, id_token, recheck_failures, \
                       expires_at",
                )
                .bind(lease)
                .bind(lease_until)
                .bind(now)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                let mut due = rows
                    .iter()
                    .map(|r| {
                        Ok(DueRecheck {
                            session_id: r.try_get("id")?,
                            user_id: r.try_get("user_id")?,
                            refresh_token: r.try_get("refresh_token")?,
                            id_token: r.try_get("id_token")?,
                            failures: r.try_get("recheck_failures")?,
                            expires_at: r.try_get("expires_at")?,
                        })
                    })
                    .collect::<Result<Vec<_>, StoreError>>()?;
                due.sort_by(|a, b| a.session_id.cmp(&b.session_id));
                Ok(due)
            }

            async fn complete_recheck(
                &self,
                done: &RecheckDone<'_>,
                now: i64,
            ) -> Result<RecheckSaved, StoreError> {
                let mut t = self.write_tx().await?;
                let user_id: Option<String> = sqlx::query_scalar(
                    "UPDATE sessions SET refresh_token = $3, recheck_at = $4, \
                     recheck_failures = 0, recheck_lease = NULL, recheck_lease_until = NULL \
                     WHERE id = $1 AND recheck_lease = $2 AND revoked_at IS NULL \
                     RETURNING user_id",
                )
                .bind(done.session_id)
                .bind(done.lease)
                .bind(done.refresh_token)
                .bind(done.next_at)
                .fetch_optional(&mut *t)
                .await?;
                let Some(user_id) = user_id else {
                    return Ok(RecheckSaved::default());
                };
                let mut user_changed = false;
                if let Some(m) = done.profile {
                    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
                    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                        .bind(&user_id)
                        .fetch_optional(&mut *t)
                        .await?;
                    let Some(row) = row else {
                        return Err(StoreError::Corrupt(format!(
                            "session {} has no user",
                            done.session_id
                        )));
                    };
                    let user = user_from_row(&row)?;
                    if (user.profile.issuer.as_str(), user.profile.subject.as_str())
                        != (m.issuer.as_str(), m.subject.as_str())
                    {
                        return Err(StoreError::Corrupt(
                            "re-check profile is another identity".into(),
                        ));
                    }
                    if user.profile != *m {
                        let groups = serde_json::to_string(&m.groups)
                            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                        sqlx::query(
                            "UPDATE users SET user_id = $2, email = $3, name = $4, \
                             given_name = $5, family_name = $6, picture = $7, provider = $8, \
                             username = $9, groups_json = $10 WHERE id = $1",
                        )
                        .bind(&user_id)
                        .bind(&m.user_id)
                        .bind(&m.email)
                        .bind(&m.name)
                        .bind(&m.given_name)
                        .bind(&m.family_name)
                        .bind(&m.picture)
                        .bind(&m.provider)
                        .bind(&m.username)
                        .bind(groups)
                        .execute(&mut *t)
                        .await?;
                        self.append_change(&mut t, &Change::User { id: user_id.clone() }, now)
                            .await?;
                        user_changed = true;
                    }
                }
                t.commit().await?;
                if user_changed {
                    self.wake.notify_waiters();
                }
                Ok(RecheckSaved {
                    saved: true,
                    user_changed,
                })
            }

            async fn defer_recheck(
                &self,
                session_id: &str,
                lease: &str,
                next_at: i64,
            ) -> Result<bool, StoreError> {
                let r = sqlx::query(
                    "UPDATE sessions SET recheck_at = $3, \
                     recheck_failures = recheck_failures + 1, recheck_lease = NULL, \
                     recheck_lease_until = NULL WHERE id = $1 AND recheck_lease = $2",
                )
                .bind(session_id)
                .bind(lease)
                .bind(next_at)
                .execute(&self.pool)
                .await?;
                Ok(r.rows_affected() > 0)
            }
        }

        #[async_trait]
        impl LoginTxStore for $store {
            async fn insert_login_tx(
                &self,
                tx: &LoginTx,
                limits: TxLimits,
            ) -> Result<(), StoreError> {
                let mut t = self.write_tx().await?;
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
        impl ProofReplayStore for $store {
            async fn remember_proof(
                &self,
                key: &str,
                expires_at: i64,
                now: i64,
                limit: i64,
            ) -> Result<bool, StoreError> {
                if self.proofs.purge_due(now, limit) {
                    // By the expiry index; rows still live are not touched.
                    sqlx::query("DELETE FROM dpop_proofs WHERE expires_at < $1")
                        .bind(now)
                        .execute(&self.pool)
                        .await?;
                    let live: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM dpop_proofs")
                        .fetch_one(&self.pool)
                        .await?;
                    self.proofs.counted(live);
                }
                // Refused before the insert: a full table stores nothing more.
                if self.proofs.looks_full(limit) {
                    return Err(StoreError::Full("DPoP proofs"));
                }
                // Set-if-absent in one statement: a new key is inserted; an existing one is
                // replaced only if it has expired. SQLite runs writers one at a time;
                // PostgreSQL makes a racing insert wait for the first one's commit, then locks
                // the conflicting row and evaluates the WHERE against its latest version. So of
                // several callers (on any replica) racing on one key exactly one changes a row.
                let r = sqlx::query(
                    "INSERT INTO dpop_proofs (key, expires_at) VALUES ($1, $2) \
                     ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at \
                     WHERE dpop_proofs.expires_at < $3",
                )
                .bind(key)
                .bind(expires_at)
                .bind(now)
                .execute(&self.pool)
                .await?;
                let first = r.rows_affected() == 1;
                if first {
                    self.proofs.inserted();
                }
                Ok(first)
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
                    let change = Change::from_row(&kind, r.try_get("subject")?, r.try_get("expires_at")?);
                    if let Change::Unknown { kind } = &change {
                        tracing::warn!(seq, kind = %kind, "change feed: a change of a kind this release does not know (a newer replica wrote it); skipped");
                    }
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
        impl AuditLog for $store {
            async fn record_audit(&self, e: &AuditEvent) -> Result<(), StoreError> {
                let e = e.bounded();
                sqlx::query(
                    "INSERT INTO audit_events (at, action, outcome, actor, subject, ip, detail) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(e.at)
                .bind(&e.action)
                .bind(&e.outcome)
                .bind(&e.actor)
                .bind(&e.subject)
                .bind(&e.ip)
                .bind(&e.detail)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn audit_events(
                &self,
                q: &AuditQuery,
            ) -> Result<Vec<(i64, AuditEvent)>, StoreError> {
                // Only the given filters go into the SQL (rather than `$n IS NULL OR …`), so
                // the planner sees plain conditions and a subject query uses its index. The
                // text is built from fixed fragments; every value is bound.
                let mut sql = String::from(
                    "SELECT id, at, action, outcome, actor, subject, ip, detail \
                     FROM audit_events WHERE TRUE",
                );
                let mut n = 0;
                let mut param = || {
                    n += 1;
                    format!("${n}")
                };
                if q.subject.is_some() {
                    sql += &format!(" AND subject = {}", param());
                }
                if q.action_prefix.is_some() {
                    // A literal prefix comparison, not LIKE: no wildcard in the prefix can
                    // widen the match, and SQLite's LIKE would also ignore ASCII case. Both
                    // backends count `substr` and `length` in characters.
                    let p = param();
                    sql += &format!(" AND substr(action, 1, length({p})) = {p}");
                }
                if q.outcome.is_some() {
                    sql += &format!(" AND outcome = {}", param());
                }
                if q.actor.is_some() {
                    sql += &format!(" AND actor = {}", param());
                }
                if q.since.is_some() {
                    sql += &format!(" AND at >= {}", param());
                }
                if q.until.is_some() {
                    sql += &format!(" AND at < {}", param());
                }
                if q.before_id.is_some() {
                    sql += &format!(" AND id < {}", param());
                }
                sql += &format!(" ORDER BY id DESC LIMIT {}", param());
                let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
                // In the order the placeholders were numbered above.
                for v in [&q.subject, &q.action_prefix, &q.outcome, &q.actor]
                    .into_iter()
                    .flatten()
                {
                    query = query.bind(v.as_str());
                }
                for v in [q.since, q.until, q.before_id].into_iter().flatten() {
                    query = query.bind(v);
                }
                let rows = query
                    .bind(q.limit.clamp(1, AUDIT_MAX_PAGE))
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter()
                    .map(|r| {
                        Ok((
                            r.try_get("id")?,
                            AuditEvent {
                                at: r.try_get("at")?,
                                action: r.try_get("action")?,
                                outcome: r.try_get("outcome")?,
                                actor: r.try_get("actor")?,
                                subject: r.try_get("subject")?,
                                ip: r.try_get("ip")?,
                                detail: r.try_get("detail")?,
                            },
                        ))
                    })
                    .collect()
            }

            async fn prune_audit(&self, before: i64) -> Result<u64, StoreError> {
                let r = sqlx::query("DELETE FROM audit_events WHERE at < $1")
                    .bind(before)
                    .execute(&self.pool)
                    .await?;
                Ok(r.rows_affected())
            }
        }

        impl $store {
            /// Revoke every live session of `user_id` inside `t`, appending the changes.
            async fn revoke_user_sessions_in(
                &self,
                t: &mut sqlx::Transaction<'_, $db>,
                user_id: &str,
                now: i64,
            ) -> Result<Vec<(String, i64)>, StoreError> {
                let rows = sqlx::query(
                    "UPDATE sessions SET revoked_at = $2, refresh_token = NULL \
                     WHERE user_id = $1 AND revoked_at IS NULL AND expires_at >= $2 \
                     RETURNING id, expires_at",
                )
                .bind(user_id)
                .bind(now)
                .fetch_all(&mut **t)
                .await?;
                let mut revoked = rows
                    .iter()
                    .map(|r| Ok((r.try_get("id")?, r.try_get("expires_at")?)))
                    .collect::<Result<Vec<(String, i64)>, StoreError>>()?;
                revoked.sort();
                for (id, expires_at) in &revoked {
                    let change = Change::SessionRevoked {
                        id: id.clone(),
                        expires_at: *expires_at,
                    };
                    self.append_change(t, &change, now).await?;
                }
                Ok(revoked)
            }
        }

        #[async_trait]
        impl AdminStore for $store {
            async fn list_users(&self, q: &UserQuery) -> Result<Vec<User>, StoreError> {
                let text = q
                    .search
                    .as_deref()
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(crate::backend::search_text);
                let plan = match &text {
                    Some(text) => self.search_plan(text).await?,
                    None => crate::backend::SearchPlan::IdOrder,
                };
                // Fixed fragments only; the search text and the cursor are bound.
                let mut sql = format!("SELECT {USER_COLUMNS} FROM users WHERE TRUE");
                let mut binds: Vec<String> = Vec::new();
                let mut param = |value: String| {
                    binds.push(value);
                    format!("${}", binds.len())
                };
                if let Some(text) = &text {
                    // The index only narrows the candidates; the LIKE tests decide, so the
                    // answers are those of a scan.
                    if let crate::backend::SearchPlan::Index { narrow: Some(value) } = &plan {
                        let p = param(value.clone());
                        sql += &Self::search_candidates(&p);
                    }
                    let p = param(crate::backend::contains_pattern(text));
                    sql += &format!(" AND {}", crate::backend::search_like(&p));
                }
                if let Some(after) = &q.after_id {
                    sql += &format!(" AND id > {}", param(after.clone()));
                }
                if matches!(plan, crate::backend::SearchPlan::Index { .. }) {
                    // Collect the few matches first, then sort: left to itself, PostgreSQL
                    // reads a rare text's page in id order through every user (it cannot
                    // estimate under 1 in 10 000 users per column, so it expects to fill 25
                    // rows soon).
                    sql = format!("WITH found AS MATERIALIZED ({sql}) SELECT * FROM found");
                }
                sql += &format!(" ORDER BY id LIMIT ${}", binds.len() + 1);
                // Not a cached prepared statement: PostgreSQL then plans each search for its
                // own text.
                let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(false);
                for v in binds {
                    query = query.bind(v);
                }
                let rows = query
                    .bind(q.limit.clamp(1, USERS_MAX_PAGE))
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter().map(user_from_row).collect()
            }

            async fn user_sessions(
                &self,
                user_id: &str,
            ) -> Result<Vec<SessionSummary>, StoreError> {
                // The ID token column is never read here.
                let rows = sqlx::query(
                    "SELECT id, created_at, last_seen, expires_at, revoked_at FROM sessions \
                     WHERE user_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2",
                )
                .bind(user_id)
                .bind(USER_SESSIONS_MAX)
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|r| {
                        Ok(SessionSummary {
                            id: r.try_get("id")?,
                            created_at: r.try_get("created_at")?,
                            last_seen: r.try_get("last_seen")?,
                            expires_at: r.try_get("expires_at")?,
                            revoked_at: r.try_get("revoked_at")?,
                        })
                    })
                    .collect()
            }

            async fn revoke_user_sessions(
                &self,
                user_id: &str,
                now: i64,
            ) -> Result<Vec<(String, i64)>, StoreError> {
                let mut t = self.write_tx().await?;
                let revoked = self.revoke_user_sessions_in(&mut t, user_id, now).await?;
                t.commit().await?;
                if !revoked.is_empty() {
                    self.wake.notify_waiters();
                }
                Ok(revoked)
            }

            async fn deactivate_user(
                &self,
                user_id: &str,
                now: i64,
            ) -> Result<Deactivation, StoreError> {
                let mut t = self.write_tx().await?;
                let changed = sqlx::query(
                    "UPDATE users SET admin_disabled = TRUE WHERE id = $1 AND admin_disabled = FALSE",
                )
                .bind(user_id)
                .execute(&mut *t)
                .await?
                .rows_affected()
                    > 0;
                let found = changed
                    || sqlx::query_scalar::<_, String>("SELECT id FROM users WHERE id = $1")
                        .bind(user_id)
                        .fetch_optional(&mut *t)
                        .await?
                        .is_some();
                if !found {
                    return Ok(Deactivation::default());
                }
                if changed {
                    self.append_change(&mut t, &Change::User { id: user_id.to_string() }, now)
                        .await?;
                }
                let revoked = self.revoke_user_sessions_in(&mut t, user_id, now).await?;
                t.commit().await?;
                self.wake.notify_waiters();
                Ok(Deactivation {
                    found,
                    changed,
                    revoked,
                })
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

/// A search text in this many users or more is read in id order rather than from the index:
/// the index's cost grows with the users it finds, id order's with how rare the text is (a
/// common text fills a page soon). Measured at 1 M users (bench/search.sh): a text in 1 111
/// users took 8 ms from the index on SQLite (36 ms in id order), 107 ms on PostgreSQL (565 ms);
/// one in 11 111 users 5 ms and 4 ms in id order.
pub(crate) const SEARCH_INDEX_MAX_CANDIDATES: i64 = 2000;

/// How the backend serves one user search (its `search_plan`).
pub(crate) enum SearchPlan {
    /// Read users in id order, testing each, until the page is full: soon for a common text;
    /// every user when few match and no index can be asked (1–2 characters, or PostgreSQL
    /// without pg_trgm).
    IdOrder,
    /// Fewer than [`SEARCH_INDEX_MAX_CANDIDATES`] users contain the text: collect them through
    /// the index, then sort. `narrow`: the bound value of the backend's extra candidate
    /// condition (SQLite's FTS5 query); PostgreSQL's indexes serve the LIKE tests themselves.
    Index { narrow: Option<String> },
}

/// The search's test, `p` being the bound [`contains_pattern`]: the same on both backends.
pub(crate) fn search_like(p: &str) -> String {
    format!(
        "(lower(email) LIKE {p} ESCAPE '\\' OR lower(name) LIKE {p} ESCAPE '\\' \
         OR lower(username) LIKE {p} ESCAPE '\\' OR lower(subject) LIKE {p} ESCAPE '\\')"
    )
}

/// The search text as compared: cut to [`crate::USER_SEARCH_MAX`] characters, lower-cased.
pub(crate) fn search_text(text: &str) -> String {
    text.chars()
        .take(crate::USER_SEARCH_MAX)
        .flat_map(char::to_lowercase)
        .collect()
}

/// A `LIKE … ESCAPE '\'` pattern matching `text` ([`search_text`]) anywhere, taken literally:
/// `%`, `_` and the escape character itself are escaped, so user input never becomes a
/// wildcard.
pub(crate) fn contains_pattern(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contains_pattern_escapes_wildcards() {
        assert_eq!(contains_pattern(&search_text("Ab")), "%ab%");
        assert_eq!(contains_pattern("50%_a\\b"), "%50\\%\\_a\\\\b%");
        assert_eq!(
            contains_pattern(&search_text(&"x".repeat(1000))).len(),
            crate::USER_SEARCH_MAX + 2
        );
    }

    #[test]
    fn proof_purge_schedule() {
        let b = ProofBudget::default();
        assert!(b.purge_due(1000, 1000), "the first call counts the table");
        b.counted(0);
        for _ in 1..PROOF_PURGE_EVERY {
            assert!(!b.purge_due(1001, 1000), "neither 256 inserts nor 30 s yet");
            b.inserted();
        }
        assert!(!b.purge_due(1001, 1000), "calls are not inserts");
        b.inserted();
        assert!(b.purge_due(1001, 1000), "after 256 inserts");
        assert!(!b.purge_due(1001, 1000), "only one caller per trigger");
        assert!(!b.purge_due(1030, 1000));
        assert!(b.purge_due(1031, 1000), "30 s after the last purge");
        assert!(!b.purge_due(1031, 1000), "only one caller per trigger");
        // Looking full: re-counted at most once a second, however many calls are refused.
        b.counted(10);
        assert!(b.looks_full(10));
        for _ in 0..1000 {
            assert!(!b.purge_due(1031, 10));
        }
        assert!(b.purge_due(1032, 10));
        assert!(!b.purge_due(1032, 10));
        b.counted(9);
        assert!(!b.looks_full(10));
        b.inserted();
        assert!(b.looks_full(10), "own inserts count until the next purge");
    }
}
