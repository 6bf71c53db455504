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
    pub(crate) fn to_row(&self) -> (&'static str, &str, i64) {
        match self {
            Change::SessionRevoked { id, expires_at } => ("session_revoked", id, *expires_at),
            Change::User { id } => ("user", id, 0),
        }
    }

    pub(crate) fn from_row(kind: &str, subject: String, expires_at: i64) -> Option<Change> {
        match kind {
            "session_revoked" => Some(Change::SessionRevoked {
                id: subject,
                expires_at,
            }),
            "user" => Some(Change::User { id: subject }),
            _ => None,
        }
    }
}
