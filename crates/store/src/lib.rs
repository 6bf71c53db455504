//! Persistence: users, server-side sessions, login transactions, the change feed, the DPoP
//! proof replay cache and the audit log.
//!
//! Each concern is a narrow async trait ([`UserStore`], [`SessionStore`], [`LoginTxStore`],
//! [`ChangeLog`], [`ProofReplayStore`], [`AuditLog`]); a [`Store`] holds one backend behind all of them as
//! `Arc<dyn …>`. Two backends implement them with the same portable SQL: embedded SQLite (the
//! default) and PostgreSQL (several replicas). Every revocation and user state change is
//! appended to a `changes` table in the same transaction; [`feed::follow`] turns that log into
//! a stream each replica applies to its in-memory views (PostgreSQL `LISTEN/NOTIFY` wakes it at
//! once, a catch-up query by cursor makes it complete after a reconnect).

mod api_tokens;
mod backend;
mod cli_grants;
pub mod feed;
mod model;
#[cfg(feature = "testing")]
pub mod testing;

use std::sync::Arc;

use async_trait::async_trait;
use portcullis_core::claims::MappedUser;

pub use api_tokens::{ApiToken, ApiTokenStore, Created, ENDED_RETENTION, KEEP_ENDED};
pub use backend::postgres::PgStore;
pub use backend::sqlite::SqliteStore;
pub use cli_grants::{CliGrant, CliGrantStore, GrantKind};
pub use model::{
    AUDIT_MAX_PAGE, AuditEvent, AuditQuery, Change, ChangeEvent, DueRecheck, LoginTx,
    LogoutOutcome, RecheckDone, RecheckSaved, Session, TxLimits, User,
};
pub use model::{
    Deactivation, SessionSummary, USER_SEARCH_MAX, USER_SESSIONS_MAX, USERS_MAX_PAGE, UserQuery,
};

/// A storage failure. Request handlers map it to a 5xx/4xx without details.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// A bounded table is full (e.g. pending sign-ins); the caller answers 503/429.
    #[error("too many pending {0}")]
    Full(&'static str),
    #[error("unsupported database URL: {0}")]
    Url(String),
    /// The user was disabled by an administrator (R-US-1): a sign-in is refused (403) and
    /// nothing is written.
    #[error("the user is disabled by an administrator")]
    AdminDisabled,
}

impl StoreError {
    /// The database cannot serve this call now but may soon: unreachable or restarting
    /// (PostgreSQL), out of space, or failing to write its files (SQLite). Callers answer
    /// 503 with `Retry-After` rather than 500: nothing is wrong with the request.
    pub fn is_unavailable(&self) -> bool {
        let StoreError::Db(e) = self else {
            return false;
        };
        match e {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => true,
            sqlx::Error::Database(d) => match d.code() {
                Some(c) if d.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() => {
                    sqlite_unavailable(&c)
                }
                Some(c) => sqlstate_unavailable(&c),
                None => false,
            },
            _ => false,
        }
    }
}

/// Whether an SQLite (extended) result code means "unavailable for now": its primary code,
/// the low byte, is SQLITE_BUSY 5, SQLITE_IOERR 10 (a failed write, e.g. over a file-size
/// limit), SQLITE_FULL 13 or SQLITE_CANTOPEN 14.
fn sqlite_unavailable(code: &str) -> bool {
    code.parse::<i32>()
        .is_ok_and(|n| matches!(n & 0xff, 5 | 10 | 13 | 14))
}

/// Whether a PostgreSQL SQLSTATE means "unavailable for now": class 08 connection exception,
/// class 53 insufficient resources (53100 disk full), 57P01..57P03 shutting down, crashed, not
/// accepting connections yet.
fn sqlstate_unavailable(code: &str) -> bool {
    code.starts_with("08") || code.starts_with("53") || matches!(code, "57P01" | "57P02" | "57P03")
}

/// Users: created on first sign-in, updated on every sign-in; identity `(issuer, subject)`.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Insert or update the user for `(issuer, subject)`, clearing IdP-deactivated. `new_id`
    /// is used only when the user is new. An admin-disabled user is left untouched and the
    /// call fails with [`StoreError::AdminDisabled`].
    async fn upsert_user(&self, m: &MappedUser, new_id: &str, now: i64)
    -> Result<User, StoreError>;
    /// The user with internal id `id`.
    async fn user(&self, id: &str) -> Result<Option<User>, StoreError>;
    /// The user with identity `(issuer, subject)`.
    async fn user_by_identity(
        &self,
        issuer: &str,
        subject: &str,
    ) -> Result<Option<User>, StoreError>;
    /// The administrator's switch. `active = true` re-enables the user: clears both
    /// admin-disabled and IdP-deactivated. `active = false` sets admin-disabled (as
    /// [`UserStore::set_admin_disabled`]). Appends a [`Change::User`] when the state changed;
    /// returns whether it changed (`false` for an unknown id).
    async fn set_user_active(&self, id: &str, active: bool, now: i64) -> Result<bool, StoreError>;
    /// Set or clear admin-disabled only (IdP-deactivated is left as it is). Appends a
    /// [`Change::User`] when the state changed; returns whether it changed (`false` for an
    /// unknown id).
    async fn set_admin_disabled(
        &self,
        id: &str,
        disabled: bool,
        now: i64,
    ) -> Result<bool, StoreError>;
}

/// Server-side sessions: created at sign-in, revoked at logout. The request path does not
/// read them; it consults the in-memory revocation view fed by [`ChangeLog`].
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// A successful sign-in, in one transaction: upsert the user (an IdP-deactivated user is
    /// re-activated) and create the session (`session.user_id` is filled in with the user's
    /// id). An admin-disabled user is refused with [`StoreError::AdminDisabled`]: no session
    /// is created and the user row is not changed (R-US-1).
    async fn sign_in(
        &self,
        m: &MappedUser,
        new_user_id: &str,
        session: &Session,
        now: i64,
    ) -> Result<(User, Session), StoreError>;
    /// Mark a session revoked and append a [`Change::SessionRevoked`]; returns whether a live
    /// session was revoked.
    async fn revoke_session(&self, id: &str, now: i64) -> Result<bool, StoreError>;
    /// Revoked sessions that have not reached their absolute expiry: the seed of the
    /// in-memory revocation view (older ones cannot be presented anyway).
    async fn revoked_sessions(&self, now: i64) -> Result<Vec<(String, i64)>, StoreError>;
    async fn session(&self, id: &str) -> Result<Option<Session>, StoreError>;
    /// Sessions neither revoked nor past their absolute expiry (`expires_at >= now`), of
    /// every replica: the active-sessions metric, sampled periodically (never per request).
    async fn live_sessions(&self, now: i64) -> Result<i64, StoreError>;
    /// The actions of a validated back-channel logout token (R-BCL actions 1, 2, 4), in one
    /// transaction. `issuer` is the token's `iss`; at least one of `sub` and `sid` is given
    /// (with neither, nothing matches).
    ///
    /// - With `sid`: the sessions whose `idp_sid == sid` belonging to a user of `issuer` (and,
    ///   when `sub` is given too, to the user `(issuer, sub)`); the user is `(issuer, sub)`, or
    ///   the owner of those sessions. Without `sid`: every session of the user `(issuer, sub)`.
    /// - Of those, each session that is live (not revoked, `expires_at >= now`) and was created
    ///   at or before `iat` is revoked, appending a [`Change::SessionRevoked`] as
    ///   [`SessionStore::revoke_session`] does. A later session (a newer login) survives.
    /// - The user is marked IdP-deactivated if their last login is at or before `iat`,
    ///   appending a [`Change::User`] when that changed it.
    /// - An unknown `sub` or `sid` (or a `sid` not belonging to `sub`) is a no-op: an empty
    ///   outcome and nothing written.
    ///
    /// Should one `sid` belong to several users of the issuer (an IdP fault), their sessions
    /// are revoked but, the user being ambiguous, nobody is deactivated.
    async fn backchannel_logout(
        &self,
        issuer: &str,
        sub: Option<&str>,
        sid: Option<&str>,
        iat: i64,
        now: i64,
    ) -> Result<LogoutOutcome, StoreError>;

    /// Offline access: lease up to `limit` sessions whose re-check at the IdP is due (live,
    /// not revoked, with a refresh token, `recheck_at <= now`, no unexpired lease), earliest
    /// first, to `lease` until `lease_until`. One atomic statement, so with several replicas
    /// each session goes to one of them only: a rotated refresh token must not be used twice.
    /// Sessions past their absolute expiry lose their refresh token here.
    async fn claim_rechecks(
        &self,
        lease: &str,
        lease_until: i64,
        now: i64,
        limit: i64,
    ) -> Result<Vec<DueRecheck>, StoreError>;
    /// Save a successful re-check, in one transaction, if `done.lease` still holds the
    /// session and it is not revoked: the new refresh token, the next re-check time, failures
    /// reset, lease released; and the user's claims when they changed (appending a
    /// [`Change::User`] so every replica drops its cached copy; the user's states are not
    /// touched).
    async fn complete_recheck(
        &self,
        done: &RecheckDone<'_>,
        now: i64,
    ) -> Result<RecheckSaved, StoreError>;
    /// A re-check that reached no verdict (IdP unreachable): try again at `next_at`, count the
    /// failure, release the lease. Returns whether the lease still held.
    async fn defer_recheck(
        &self,
        session_id: &str,
        lease: &str,
        next_at: i64,
    ) -> Result<bool, StoreError>;
}

/// Login transactions (R-AZ-3/4, R-CB-2): stored server-side keyed by `state`, bound to the
/// browser by a hash of its tx cookie, consumed atomically before any network call.
#[async_trait]
pub trait LoginTxStore: Send + Sync {
    /// Save a transaction: purge expired ones, keep at most `limits.per_browser` live ones
    /// per browser binding (dropping the oldest), and refuse with [`StoreError::Full`] when
    /// `limits.total` live ones exist.
    async fn insert_login_tx(&self, tx: &LoginTx, limits: TxLimits) -> Result<(), StoreError>;
    /// Atomically remove and return the transaction for `state`. An expired one is removed
    /// too but not returned; a second call for the same state returns `None`.
    async fn take_login_tx(&self, state: &str, now: i64) -> Result<Option<LoginTx>, StoreError>;
}

/// The "seen once" store shared by every replica: DPoP proof replay detection (RFC 9449 §11.1)
/// and back-channel logout token replay detection (`(iss, jti)`, R-BCL validation 8). The uses
/// share one key space, so callers keep their keys apart by a prefix or a domain-separated
/// digest: DPoP keys are `Proof::replay_key` (base64url of a SHA-256 over a
/// `portcullis/dpop-jti/v1` tag, never containing `:`); logout tokens use e.g. `bcl:` followed
/// by a digest of (iss, jti).
#[async_trait]
pub trait ProofReplayStore: Send + Sync {
    /// Remember `key` (see the trait: kept apart by use) until `expires_at`. Returns `Ok(true)` the
    /// first time, `Ok(false)` when a live entry exists (a replay). An entry is live while
    /// `now <= expires_at` (as for login transactions); an expired entry with the same key
    /// counts as absent and is replaced.
    ///
    /// Atomic set-if-absent in one statement (`INSERT … ON CONFLICT (key) DO UPDATE … WHERE`
    /// the stored entry has expired, checking rows affected), so two replicas racing on one
    /// key cannot both get `true`, not even when they race to replace an expired entry.
    ///
    /// Expired rows are purged on a cheap schedule (after every 256 inserts by a replica, every
    /// 30 s of `now`, and at most once a second while the table looks full), never by a scan
    /// per call. The table is bounded: when `limit` live rows exist the call is refused with
    /// [`StoreError::Full`]`("DPoP proofs")` and nothing is stored. The bound is checked
    /// against a running count that each replica keeps and re-synchronises with a real count
    /// at each purge (counting per call would cost more than the insert), so with several
    /// replicas the table may exceed `limit` by up to about 256 rows per replica.
    async fn remember_proof(
        &self,
        key: &str,
        expires_at: i64,
        now: i64,
        limit: i64,
    ) -> Result<bool, StoreError>;
}

/// The append-only log of changes every replica must apply (revocations, user state).
#[async_trait]
pub trait ChangeLog: Send + Sync {
    /// The highest sequence number written so far (0 when empty).
    async fn latest_seq(&self) -> Result<i64, StoreError>;
    /// Changes with `seq > after`, oldest first, at most `limit`.
    async fn changes_since(&self, after: i64, limit: i64) -> Result<Vec<ChangeEvent>, StoreError>;
    /// Delete changes written before `before` (unix seconds); they concern sessions that have
    /// expired by then.
    async fn prune_changes(&self, before: i64) -> Result<u64, StoreError>;
    /// Woken whenever a change may have been written (by this process or, on PostgreSQL, by
    /// any replica). Followers also poll, so a missed wake-up only delays.
    fn wake(&self) -> Arc<tokio::sync::Notify>;
}

/// The audit log: who did what, when, from where, and the outcome. Append-only apart from
/// pruning by age; it is not part of the change feed (replicas do not apply it).
#[async_trait]
pub trait AuditLog: Send + Sync {
    /// Append one event. Field lengths are bounded by the store (action and outcome to 64,
    /// actor and subject to 128, ip to 64, detail to 512 characters, cut on a character
    /// boundary; NUL becomes U+FFFD) so no caller can make rows large or unwritable.
    async fn record_audit(&self, e: &AuditEvent) -> Result<(), StoreError>;
    /// Events matching `q`, newest first (by id), with their ids for paging with
    /// [`AuditQuery::before_id`]; `q.limit` is clamped to `1..=`[`AUDIT_MAX_PAGE`].
    async fn audit_events(&self, q: &AuditQuery) -> Result<Vec<(i64, AuditEvent)>, StoreError>;
    /// Delete events with `at < before` (unix seconds); returns how many.
    async fn prune_audit(&self, before: i64) -> Result<u64, StoreError>;
}

/// What the admin page and API need beyond the other traits: finding users, their sessions,
/// and ending them all at once.
#[async_trait]
pub trait AdminStore: Send + Sync {
    /// Users matching `q`, by id ascending (see [`UserQuery`]).
    async fn list_users(&self, q: &UserQuery) -> Result<Vec<User>, StoreError>;
    /// The newest sessions of a user (live, revoked and expired alike), at most
    /// [`USER_SESSIONS_MAX`], newest first.
    async fn user_sessions(&self, user_id: &str) -> Result<Vec<SessionSummary>, StoreError>;
    /// Revoke every live session of a user in one transaction, appending a
    /// [`Change::SessionRevoked`] for each as [`SessionStore::revoke_session`] does; returns
    /// the revoked `(session id, expires_at)`, ordered by id.
    async fn revoke_user_sessions(
        &self,
        user_id: &str,
        now: i64,
    ) -> Result<Vec<(String, i64)>, StoreError>;
    /// Set admin-disabled and revoke every live session of the user, in one transaction (a
    /// later re-enable must not bring old sessions back), appending the changes.
    async fn deactivate_user(&self, user_id: &str, now: i64) -> Result<Deactivation, StoreError>;
}

/// Liveness of the database (readiness) and row counts for tests.
#[async_trait]
pub trait Health: Send + Sync {
    async fn ping(&self) -> Result<(), StoreError>;
    /// Rows in a table (tests assert "nothing stored").
    #[cfg(feature = "testing")]
    async fn count(&self, table: Table) -> Result<i64, StoreError>;
}

/// Tables whose rows tests count.
#[cfg(feature = "testing")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Table {
    Users,
    Sessions,
    LoginTx,
    Changes,
    DpopProofs,
    Audit,
    ApiTokens,
    CliGrants,
}

#[cfg(feature = "testing")]
impl Table {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Table::Users => "users",
            Table::Sessions => "sessions",
            Table::LoginTx => "login_tx",
            Table::Changes => "changes",
            Table::DpopProofs => "dpop_proofs",
            Table::Audit => "audit_events",
            Table::ApiTokens => "api_tokens",
            Table::CliGrants => "cli_grants",
        }
    }
}

/// Every trait of one backend.
pub trait Backend:
    UserStore
    + SessionStore
    + LoginTxStore
    + ChangeLog
    + ProofReplayStore
    + AuditLog
    + AdminStore
    + ApiTokenStore
    + CliGrantStore
    + Health
{
}
impl<
    T: UserStore
        + SessionStore
        + LoginTxStore
        + ChangeLog
        + ProofReplayStore
        + AuditLog
        + AdminStore
        + ApiTokenStore
        + CliGrantStore
        + Health,
> Backend for T
{
}

/// The store handle: one backend seen through each concern's trait; cheap to clone.
#[derive(Clone)]
pub struct Store {
    pub users: Arc<dyn UserStore>,
    pub sessions: Arc<dyn SessionStore>,
    pub login_tx: Arc<dyn LoginTxStore>,
    pub changes: Arc<dyn ChangeLog>,
    pub proofs: Arc<dyn ProofReplayStore>,
    pub audit: Arc<dyn AuditLog>,
    pub admin: Arc<dyn AdminStore>,
    pub tokens: Arc<dyn ApiTokenStore>,
    pub cli_grants: Arc<dyn CliGrantStore>,
    pub health: Arc<dyn Health>,
    kind: &'static str,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("kind", &self.kind).finish()
    }
}

impl Store {
    /// Wrap a backend.
    pub fn new<B: Backend + 'static>(backend: Arc<B>, kind: &'static str) -> Store {
        Store {
            users: backend.clone(),
            sessions: backend.clone(),
            login_tx: backend.clone(),
            changes: backend.clone(),
            proofs: backend.clone(),
            audit: backend.clone(),
            admin: backend.clone(),
            tokens: backend.clone(),
            cli_grants: backend.clone(),
            health: backend,
            kind,
        }
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// Open (creating if needed) an SQLite file and apply migrations. `":memory:"` gives a
    /// private in-memory database (tests).
    pub async fn open_sqlite(path: &str) -> Result<Store, StoreError> {
        Ok(Store::new(
            Arc::new(SqliteStore::open(path).await?),
            "sqlite",
        ))
    }

    /// Connect to PostgreSQL (`postgres://` or `postgresql://`; `?sslmode=require` and the
    /// other libpq TLS parameters turn TLS on), apply migrations and start listening for
    /// other replicas' changes.
    pub async fn open_postgres(url: &str) -> Result<Store, StoreError> {
        Ok(Store::new(Arc::new(PgStore::open(url).await?), "postgres"))
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        self.health.ping().await
    }

    #[cfg(feature = "testing")]
    pub async fn count(&self, table: Table) -> Result<i64, StoreError> {
        self.health.count(table).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unavailable_codes() {
        // SQLite: SQLITE_FULL, SQLITE_IOERR_WRITE (778), SQLITE_BUSY; not a constraint (2067).
        for c in ["13", "778", "5", "14"] {
            assert!(sqlite_unavailable(c), "{c}");
        }
        for c in ["2067", "19", "1"] {
            assert!(!sqlite_unavailable(c), "{c}");
        }
        // PostgreSQL: connection failure, disk full, admin shutdown; not a unique violation.
        for c in ["08006", "53100", "57P01", "57P03"] {
            assert!(sqlstate_unavailable(c), "{c}");
        }
        for c in ["23505", "42P01", "57014"] {
            assert!(!sqlstate_unavailable(c), "{c}");
        }
        assert!(StoreError::Db(sqlx::Error::PoolTimedOut).is_unavailable());
        assert!(!StoreError::Full("sign-ins").is_unavailable());
        assert!(!StoreError::Db(sqlx::Error::RowNotFound).is_unavailable());
    }
}
