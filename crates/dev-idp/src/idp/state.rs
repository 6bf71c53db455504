//! In-memory state: pending sign-ins, codes, tokens and IdP browser sessions.
//! Everything expires; expired entries are purged whenever the state is locked.

use std::collections::{BTreeSet, HashMap};

/// Seconds a login form (pending authorization request) stays usable.
pub(crate) const PENDING_TTL: u64 = 600;
/// Seconds an authorization code is valid.
pub(crate) const CODE_TTL: u64 = 60;
/// Seconds a used code is remembered so a replay can revoke what it issued.
pub(crate) const USED_CODE_MEMORY: u64 = 600;
/// Seconds an access token is valid (also the `expires_in` value).
pub(crate) const ACCESS_TOKEN_TTL: u64 = 300;
/// Seconds an ID token is valid.
pub(crate) const ID_TOKEN_TTL: u64 = 300;
/// Seconds a refresh token is valid.
pub(crate) const REFRESH_TOKEN_TTL: u64 = 8 * 3600;
/// Seconds an IdP browser session lasts.
pub(crate) const SESSION_TTL: u64 = 8 * 3600;
/// Seconds a logout token is valid.
pub(crate) const LOGOUT_TOKEN_TTL: u64 = 120;

/// A validated authorization request.
#[derive(Debug, Clone)]
pub(crate) struct AuthRequest {
    pub client_id: String,
    pub redirect_uri: String,
    /// Granted scopes: the requested ones the IdP supports (always has `openid`).
    pub scopes: Vec<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: String,
}

#[derive(Debug)]
pub(crate) struct Pending {
    pub request: AuthRequest,
    pub expires_at: u64,
}

#[derive(Debug)]
pub(crate) struct CodeEntry {
    pub request: AuthRequest,
    pub username: String,
    pub sid: String,
    pub auth_time: u64,
    pub expires_at: u64,
    pub used: bool,
    /// Access and refresh tokens issued for this code, revoked on replay.
    pub issued: Vec<String>,
}

/// What an access or refresh token grants.
#[derive(Debug, Clone)]
pub(crate) struct Grant {
    pub username: String,
    pub client_id: String,
    pub scopes: Vec<String>,
    pub sid: String,
    pub auth_time: u64,
    pub expires_at: u64,
}

/// An IdP browser session (keyed by the random cookie value).
#[derive(Debug)]
pub(crate) struct IdpSession {
    /// Public session id, the `sid` claim.
    pub sid: String,
    pub username: String,
    pub auth_time: u64,
    pub expires_at: u64,
    /// Clients that received tokens in this session (back-channel logout targets).
    pub clients: BTreeSet<String>,
}

#[derive(Debug, Default)]
pub(crate) struct State {
    pub pending: HashMap<String, Pending>,
    pub codes: HashMap<String, CodeEntry>,
    pub access_tokens: HashMap<String, Grant>,
    pub refresh_tokens: HashMap<String, Grant>,
    pub sessions: HashMap<String, IdpSession>,
}

impl State {
    pub(crate) fn purge(&mut self, now: u64) {
        self.pending.retain(|_, p| p.expires_at > now);
        self.codes.retain(|_, c| {
            if c.used {
                c.expires_at.saturating_sub(CODE_TTL) + USED_CODE_MEMORY > now
            } else {
                c.expires_at > now
            }
        });
        self.access_tokens.retain(|_, g| g.expires_at > now);
        self.refresh_tokens.retain(|_, g| g.expires_at > now);
        self.sessions.retain(|_, s| s.expires_at > now);
    }

    /// The session for a cookie value, if it exists and has not expired.
    pub(crate) fn session(&self, cookie: &str, now: u64) -> Option<&IdpSession> {
        self.sessions.get(cookie).filter(|s| s.expires_at > now)
    }

    pub(crate) fn session_by_sid(&self, sid: &str) -> Option<(&String, &IdpSession)> {
        self.sessions.iter().find(|(_, s)| s.sid == sid)
    }

    pub(crate) fn has_sid(&self, sid: &str, now: u64) -> bool {
        self.sessions
            .values()
            .any(|s| s.sid == sid && s.expires_at > now)
    }

    /// Removes a session and every token bound to it; returns it.
    pub(crate) fn end_session(&mut self, cookie: &str) -> Option<IdpSession> {
        let session = self.sessions.remove(cookie)?;
        self.access_tokens.retain(|_, g| g.sid != session.sid);
        self.refresh_tokens.retain(|_, g| g.sid != session.sid);
        Some(session)
    }

    /// Revokes access or refresh tokens by value.
    pub(crate) fn revoke(&mut self, tokens: &[String]) {
        for t in tokens {
            self.access_tokens.remove(t);
            self.refresh_tokens.remove(t);
        }
    }
}
