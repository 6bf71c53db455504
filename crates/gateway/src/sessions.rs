//! The session service: issues, verifies and ends browser sessions, owns their lifetimes and
//! the cookies that carry them. The JWT is verified locally; the server-side session in the
//! store exists so a session can end before its JWT expires (logout, back-channel logout),
//! which every replica learns through the change feed.

use portcullis_core::claims::MappedUser;
use portcullis_core::session::{CookieNames, SESSION_TTL, SessionClaims, SessionKeys};
use portcullis_store::{Session, Store, User};

use crate::error::WebError;
use crate::views::Views;

/// Absolute session lifetime: the JWT is re-issued within it, never beyond.
pub const SESSION_ABSOLUTE: i64 = 12 * 3600;

/// Lifetimes and keys of browser sessions.
pub struct SessionService {
    keys: SessionKeys,
    pub cookies: CookieNames,
    /// `iss`/`aud` of session tokens: the public origin.
    origin: String,
    /// JWT lifetime (also the idle timeout).
    pub ttl: i64,
    /// Absolute lifetime of the server-side session.
    pub absolute: i64,
}

/// A session just started: the user, and the cookie to set.
pub struct Started {
    pub user: User,
    pub set_cookie: String,
}

impl SessionService {
    pub fn new(keys: SessionKeys, cookies: CookieNames, origin: String) -> SessionService {
        SessionService {
            keys,
            cookies,
            origin,
            ttl: SESSION_TTL,
            absolute: SESSION_ABSOLUTE,
        }
    }

    /// Keys for other gateway artefacts (tx binding) derive from the same secret.
    pub fn keys(&self) -> &SessionKeys {
        &self.keys
    }

    /// After a successful sign-in: user and server-side session in one transaction, then a
    /// fresh session id in a fresh JWT (R-CB-9).
    pub async fn start(
        &self,
        store: &Store,
        mapped: &MappedUser,
        idp_sid: Option<String>,
        now: i64,
    ) -> Result<Started, WebError> {
        let sid = portcullis_core::oidc::pkce::random_token()
            .map_err(|e| WebError::Internal(e.to_string()))?;
        let session = Session {
            id: sid.clone(),
            user_id: String::new(),
            created_at: now,
            last_seen: now,
            expires_at: now + self.absolute,
            revoked_at: None,
            idp_sid: idp_sid.clone(),
        };
        let new_id = uuid::Uuid::now_v7().to_string();
        let (user, _) = store
            .sessions
            .sign_in(mapped, &new_id, &session, now)
            .await?;
        let jwt = SessionClaims {
            iss: self.origin.clone(),
            sub: user.id.clone(),
            sid,
            iat: now,
            exp: now + self.ttl,
            auth_time: now,
            idp_sid,
        }
        .issue(&self.keys);
        Ok(Started {
            user,
            set_cookie: self.cookies.set(self.cookies.session, &jwt, self.ttl),
        })
    }

    /// Signature, header, claims and expiry of a session JWT (R-SJ). Revocation and the user
    /// are checked by the authentication middleware.
    pub fn verify(&self, token: &str, now: i64) -> Option<SessionClaims> {
        match SessionClaims::verify(token, &self.keys, &self.origin, now) {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::debug!(error = %e, "session cookie refused");
                None
            }
        }
    }

    /// End a session here and everywhere: revoked in the store (the change feed tells the
    /// other replicas) and at once in this replica's view.
    pub async fn end(
        &self,
        store: &Store,
        views: &Views,
        claims: &SessionClaims,
        now: i64,
    ) -> Result<(), WebError> {
        store.sessions.revoke_session(&claims.sid, now).await?;
        // The JWT cannot outlive its own exp; the view entry need not either.
        views.revoked.revoke(&claims.sid, claims.exp.max(now), now);
        Ok(())
    }

    /// The deletion cookie for the session (R-CK-2).
    pub fn clear_cookie(&self) -> String {
        self.cookies.clear(self.cookies.session)
    }
}
