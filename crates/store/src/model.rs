//! The records the store keeps, independent of the backend.

use portcullis_core::claims::MappedUser;

/// A stored user: the mapped profile of their last sign-in plus bookkeeping.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct User {
    /// Internal id (UUIDv7 text; never the IdP's `sub`).
    pub id: String,
    /// Identity `(issuer, subject)` and the mapped claims (seed 000's fields, groups).
    #[serde(flatten)]
    pub profile: MappedUser,
    pub first_login: i64,
    pub last_login: i64,
    /// May use Portcullis: neither [`User::admin_disabled`] nor [`User::idp_deactivated`].
    /// Computed from the two states when the user is read (not stored); build it with
    /// [`User::may_use`] when constructing a `User` by hand.
    pub active: bool,
    /// Disabled by an administrator (R-US-1): takes precedence, a sign-in is refused and never
    /// clears it; only an administrator re-enables.
    pub admin_disabled: bool,
    /// Deactivated by the IdP (back-channel logout, R-BCL actions 2); the next successful
    /// sign-in clears it.
    pub idp_deactivated: bool,
}

impl User {
    /// Whether a user in these states may use Portcullis (the value of [`User::active`]).
    pub fn may_use(admin_disabled: bool, idp_deactivated: bool) -> bool {
        !admin_disabled && !idp_deactivated
    }
}

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
    /// The ID token of the sign-in, kept server-side (never sent to the browser) for
    /// `id_token_hint` at RP-initiated logout.
    pub id_token: Option<String>,
    /// Offline access: the IdP refresh token, encrypted by the gateway for this session (the
    /// plaintext never reaches the store), and when the session is next re-checked at the IdP.
    pub refresh_token: Option<String>,
    pub recheck_at: Option<i64>,
}

/// A session whose re-check at the IdP is due, leased to the caller (offline access).
#[derive(Clone, PartialEq, Eq)]
pub struct DueRecheck {
    pub session_id: String,
    pub user_id: String,
    /// The encrypted refresh token, as stored.
    pub refresh_token: String,
    /// The sign-in's ID token (what a refreshed one is compared with).
    pub id_token: Option<String>,
    /// Re-checks in a row that reached no verdict (IdP unreachable): the back-off.
    pub failures: i64,
    pub expires_at: i64,
}

/// Shows no token, not even encrypted.
impl std::fmt::Debug for DueRecheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DueRecheck")
            .field("session_id", &self.session_id)
            .field("user_id", &self.user_id)
            .field("failures", &self.failures)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A successful re-check, to be saved by the replica holding the lease.
#[derive(Clone, Copy, Debug)]
pub struct RecheckDone<'a> {
    pub session_id: &'a str,
    /// The lease given by [`crate::SessionStore::claim_rechecks`].
    pub lease: &'a str,
    /// The (possibly rotated) refresh token, encrypted for this session.
    pub refresh_token: &'a str,
    pub next_at: i64,
    /// The person's claims as the IdP gave them now (`None`: unchanged). Must be the same
    /// identity `(issuer, subject)` as the session's user.
    pub profile: Option<&'a MappedUser>,
}

/// What [`crate::SessionStore::complete_recheck`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecheckSaved {
    /// False when the lease was lost (it expired and another replica took the session) or the
    /// session ended meanwhile: nothing was written.
    pub saved: bool,
    /// The user's claims or groups changed (a [`Change::User`] was appended).
    pub user_changed: bool,
}

/// What one back-channel logout did (R-BCL actions 1–2).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogoutOutcome {
    /// Sessions this call revoked, as `(session id, expires_at)`, ordered by session id (the
    /// entries of the in-memory revocation view). Sessions that were already revoked or
    /// expired, or created after the logout token's `iat`, are not in it.
    pub revoked: Vec<(String, i64)>,
    /// The user this call marked IdP-deactivated (`None` when the user was unknown, had
    /// signed in after the token's `iat`, or was already IdP-deactivated).
    pub deactivated_user: Option<String>,
}

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
    /// RFC 7638 thumbprint of the key that signed the `/api/login` DPoP proof, if one was
    /// presented; the session is bound to it at the callback, so a session started by one
    /// key cannot be used with another.
    pub dpop_jkt: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
}

/// Bounds on pending sign-ins (R-AZ-3): per browser, and in all (anonymous clients that never
/// return the cookie must not be able to fill the disk).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxLimits {
    pub per_browser: i64,
    pub total: i64,
}

/// One change every replica applies to its in-memory views. Applying a change twice, or
/// two changes in either order, gives the same result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// A session ended before its absolute expiry.
    SessionRevoked { id: String, expires_at: i64 },
    /// A user's state changed (deactivated, re-enabled): drop any cached copy.
    User { id: String },
    /// An API token was revoked: refuse it from now on (R-AT-3).
    ApiTokenRevoked { id: String },
    /// A kind this release does not know, written by a newer one during a rolling upgrade:
    /// it concerns a feature this replica does not have, so there is nothing to apply, and
    /// the feed goes on past it (stopping would leave every later revocation unapplied).
    Unknown { kind: String },
}

/// A [`Change`] with its position in the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangeEvent {
    pub seq: i64,
    pub at: i64,
    pub change: Change,
}

impl Change {
    /// `(kind, subject, expires_at)` as stored in the `changes` table.
    pub(crate) fn to_row(&self) -> (&str, &str, i64) {
        match self {
            Change::SessionRevoked { id, expires_at } => ("session_revoked", id, *expires_at),
            Change::User { id } => ("user", id, 0),
            Change::ApiTokenRevoked { id } => ("api_token_revoked", id, 0),
            Change::Unknown { kind } => (kind, "", 0),
        }
    }

    pub(crate) fn from_row(kind: &str, subject: String, expires_at: i64) -> Change {
        let known = match kind {
            "session_revoked" => Some(Change::SessionRevoked {
                id: subject,
                expires_at,
            }),
            "user" => Some(Change::User { id: subject }),
            "api_token_revoked" => Some(Change::ApiTokenRevoked { id: subject }),
            _ => None,
        };
        known.unwrap_or_else(|| Change::Unknown {
            kind: kind.to_string(),
        })
    }
}

/// One entry of the audit log: who did what, when, from where, and how it ended.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct AuditEvent {
    /// Unix seconds.
    pub at: i64,
    /// What happened, dotted by area: e.g. `auth.sign_in`, `auth.failure`, `auth.logout`,
    /// `auth.backchannel_logout`, `admin.user_disabled`.
    pub action: String,
    /// `ok`, `refused` or `failed`.
    pub outcome: String,
    /// Internal user id of who did it (`None`: anonymous, or the IdP).
    pub actor: Option<String>,
    /// Internal user id the event is about.
    pub subject: Option<String>,
    /// Client address.
    pub ip: Option<String>,
    /// Short reason text.
    pub detail: Option<String>,
}

/// Which audit events to list; every given filter must match. `Default` lists everything,
/// newest first, with the smallest page (a `limit` of 0 is clamped to 1).
#[derive(Clone, Debug, Default)]
pub struct AuditQuery {
    /// Events about this internal user id.
    pub subject: Option<String>,
    /// Events whose action starts with this text, taken literally (`auth.` matches
    /// `auth.sign_in`; `%` and `_` are not wildcards).
    pub action_prefix: Option<String>,
    /// Events with exactly this outcome.
    pub outcome: Option<String>,
    /// Events done by this internal user id (an administrator, or the person signing in).
    pub actor: Option<String>,
    /// Events at or after this time (unix seconds).
    pub since: Option<i64>,
    /// Events before this time (unix seconds).
    pub until: Option<i64>,
    /// Only events older than this id: pass the last id of a page to get the next one.
    pub before_id: Option<i64>,
    /// Page size, clamped to `1..=AUDIT_MAX_PAGE`.
    pub limit: i64,
}

/// Which users to list ([`crate::AdminStore::list_users`]), ordered by internal id (UUIDv7:
/// by first sign-in), so paging by the last id seen is stable while users are added.
#[derive(Clone, Debug, Default)]
pub struct UserQuery {
    /// Users whose email, name, username or IdP subject contains this text, ignoring case
    /// (ASCII letters on SQLite, all letters on PostgreSQL); taken literally (`%` and `_` are
    /// not wildcards). Empty or `None`: everyone.
    pub search: Option<String>,
    /// Only users whose id sorts after this one: pass the last id of a page.
    pub after_id: Option<String>,
    /// Page size, clamped to `1..=USERS_MAX_PAGE`.
    pub limit: i64,
}

/// The largest page [`crate::AdminStore::list_users`] returns.
pub const USERS_MAX_PAGE: i64 = 100;
/// The most sessions [`crate::AdminStore::user_sessions`] returns (newest first).
pub const USER_SESSIONS_MAX: i64 = 50;
/// Longest search text (characters) accepted by [`crate::AdminStore::list_users`]; longer
/// text is cut (no column holds more, and the pattern is matched against every row).
pub const USER_SEARCH_MAX: usize = 256;

/// A session as an administrator sees it: never the ID token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionSummary {
    pub id: String,
    pub created_at: i64,
    pub last_seen: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
}

/// What deactivating a user did ([`crate::AdminStore::deactivate_user`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Deactivation {
    /// The user exists.
    pub found: bool,
    /// Admin-disabled was newly set (false: it already was).
    pub changed: bool,
    /// Live sessions this call revoked, as `(session id, expires_at)`.
    pub revoked: Vec<(String, i64)>,
}

/// The largest page [`crate::AuditLog::audit_events`] returns.
pub const AUDIT_MAX_PAGE: i64 = 500;

/// Bounds, in characters, on what one audit row stores: callers put client-controlled text
/// (an address, a refusal reason) into events, so the store caps each field rather than trust
/// every caller to.
pub(crate) const AUDIT_ACTION_MAX: usize = 64;
pub(crate) const AUDIT_OUTCOME_MAX: usize = 64;
pub(crate) const AUDIT_USER_ID_MAX: usize = 128;
pub(crate) const AUDIT_IP_MAX: usize = 64;
pub(crate) const AUDIT_DETAIL_MAX: usize = 512;

/// `s` cut to at most `max` characters (never inside a character), with NUL replaced by
/// U+FFFD: PostgreSQL text cannot hold NUL and would refuse the whole row, and an event must
/// not be lost because a caller passed hostile text. Both backends store the same value.
pub(crate) fn audit_field(s: &str, max: usize) -> String {
    let cut = s.char_indices().nth(max).map_or(s, |(i, _)| &s[..i]);
    cut.replace('\0', "\u{fffd}")
}

impl AuditEvent {
    /// The event as stored: every field within its bound (see [`audit_field`]).
    pub(crate) fn bounded(&self) -> AuditEvent {
        let opt = |v: &Option<String>, max| v.as_deref().map(|s| audit_field(s, max));
        AuditEvent {
            at: self.at,
            action: audit_field(&self.action, AUDIT_ACTION_MAX),
            outcome: audit_field(&self.outcome, AUDIT_OUTCOME_MAX),
            actor: opt(&self.actor, AUDIT_USER_ID_MAX),
            subject: opt(&self.subject, AUDIT_USER_ID_MAX),
            ip: opt(&self.ip, AUDIT_IP_MAX),
            detail: opt(&self.detail, AUDIT_DETAIL_MAX),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_field_cuts_on_a_char_boundary() {
        assert_eq!(audit_field("abc", 3), "abc");
        assert_eq!(audit_field("abcd", 3), "abc");
        assert_eq!(audit_field("", 3), "");
        // Characters of two, two, three and four bytes: counted as characters, not bytes.
        assert_eq!(audit_field("éü€😀x", 4), "éü€😀");
        assert_eq!(audit_field("a\0b", 3), "a\u{fffd}b");
    }

    #[test]
    fn changes_round_trip_and_unknown_kinds_are_kept_apart() {
        for c in [
            Change::SessionRevoked {
                id: "s".into(),
                expires_at: 9,
            },
            Change::User { id: "u".into() },
            Change::ApiTokenRevoked { id: "t".into() },
        ] {
            let (kind, subject, exp) = c.to_row();
            assert_eq!(Change::from_row(kind, subject.to_string(), exp), c);
        }
        // A newer release's kind: recognised as unknown, never mistaken for another.
        assert_eq!(
            Change::from_row("cli_grant_spent", "x".into(), 0),
            Change::Unknown {
                kind: "cli_grant_spent".into()
            }
        );
    }
}
