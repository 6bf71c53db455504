//! API tokens in the gateway (R-AT): authenticating `Authorization: Bearer pcs_…`, and
//! [`mint`], the one function that makes a token (the account page and the JSON API call it;
//! the command-line sign-in does too).
//!
//! The hot path does no database work for a known token: tokens are cached by id for
//! [`TOKEN_TTL`], a revocation anywhere reaches every replica's [`TokenCache`] through the
//! change feed within a second, and last-used times are written at most once a minute per
//! token, in the background. An unknown id is remembered for the same time as a known one,
//! so it costs a lookup as often as a known one does (R-AT-2), and the per-address failure
//! budget bounds both.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use portcullis_core::apitoken::{self, RequestError};
use portcullis_store::{ApiToken, Created, StoreError};

use crate::auth::{Authed, Credential};
use crate::error::WebError;
use crate::limiter::RateLimiter;
use crate::state::AppState;

/// Longest time a cached token is trusted without re-reading it (the feed normally evicts a
/// revoked token within a second; this bounds the damage if the feed is down).
pub const TOKEN_TTL: i64 = 60;
/// Last-used times are written at most this often per token.
pub const TOUCH_EVERY: i64 = 60;
/// Failed token presentations per client address and minute before 429 (R-AT-4).
pub const FAILURES_PER_MINUTE: u32 = 10;
/// Failures of one token id per minute that raise an alert (the token is never locked).
pub const ALERT_FAILURES_PER_ID: u32 = 10;
/// Bound on cached tokens and tracked ids; beyond it a map starts over.
const MAX_ENTRIES: usize = 100_000;
/// Revoked ids are remembered this long (to close a read-vs-revoke race and end tunnels),
/// then a re-read from the database says the same.
const REVOKED_KEEP: i64 = 3600;

/// The token credential of a request: what the API and the tunnel need to know.
#[derive(Clone, Debug)]
pub struct TokenCredential {
    pub id: String,
    pub name: String,
    pub expires_at: Option<i64>,
}

struct Cached {
    token: Arc<ApiToken>,
    read_at: i64,
    /// When this replica last recorded a use (starts at the stored value).
    touched: AtomicI64,
}

/// Tokens by id as read from the store, revoked ids from the change feed, and the failure
/// counters.
pub struct TokenCache {
    tokens: RwLock<HashMap<String, Cached>>,
    /// Ids the store did not know, and when it said so: a repeated unknown id costs no
    /// lookup, exactly as a repeated known one (R-AT-2: an unknown id must not be slower than
    /// a wrong secret for a known id).
    unknown: RwLock<HashMap<String, i64>>,
    revoked: RwLock<HashMap<String, i64>>,
    failures_by_ip: RateLimiter,
    failures_by_id: Mutex<HashMap<String, (i64, u32)>>,
}

impl Default for TokenCache {
    fn default() -> Self {
        TokenCache {
            tokens: RwLock::default(),
            unknown: RwLock::default(),
            revoked: RwLock::default(),
            failures_by_ip: RateLimiter::new(FAILURES_PER_MINUTE),
            failures_by_id: Mutex::default(),
        }
    }
}

impl TokenCache {
    /// A revocation from the change feed: refuse at once, drop the cached copy.
    pub fn revoke(&self, id: &str, now: i64) {
        if let Ok(mut r) = self.revoked.write() {
            if r.len() >= MAX_ENTRIES {
                r.retain(|_, at| now - *at < REVOKED_KEEP);
            }
            r.insert(id.to_string(), now);
        }
        if let Ok(mut m) = self.tokens.write() {
            m.remove(id);
        }
    }

    /// Whether the feed said `id` was revoked. Fails closed on a poisoned lock.
    pub fn is_revoked(&self, id: &str) -> bool {
        self.revoked
            .read()
            .map(|r| r.contains_key(id))
            .unwrap_or(true)
    }

    fn get(&self, id: &str, now: i64) -> Option<(Arc<ApiToken>, i64)> {
        let m = self.tokens.read().ok()?;
        let c = m.get(id)?;
        (now - c.read_at < TOKEN_TTL).then(|| (c.token.clone(), c.touched.load(Ordering::Relaxed)))
    }

    /// Whether the store said, within [`TOKEN_TTL`], that no token has this id.
    fn known_unknown(&self, id: &str, now: i64) -> bool {
        self.unknown
            .read()
            .is_ok_and(|m| m.get(id).is_some_and(|at| now - at < TOKEN_TTL))
    }

    fn put_unknown(&self, id: &str, now: i64) {
        if let Ok(mut m) = self.unknown.write() {
            if m.len() >= MAX_ENTRIES {
                m.retain(|_, at| now - *at < TOKEN_TTL);
                if m.len() >= MAX_ENTRIES {
                    m.clear();
                }
            }
            m.insert(id.to_string(), now);
        }
    }

    /// A token was just made with this id (ids are random: this only matters if someone had
    /// presented it before, by chance).
    fn forget_unknown(&self, id: &str) {
        if let Ok(mut m) = self.unknown.write() {
            m.remove(id);
        }
    }

    fn put(&self, token: ApiToken, now: i64) -> Arc<ApiToken> {
        let t = Arc::new(token);
        if let Ok(mut m) = self.tokens.write() {
            if m.len() >= MAX_ENTRIES {
                m.clear();
            }
            m.insert(
                t.id.clone(),
                Cached {
                    token: t.clone(),
                    read_at: now,
                    touched: AtomicI64::new(t.last_used.unwrap_or(0)),
                },
            );
        }
        t
    }

    /// Whether this request should record a use (at most once per [`TOUCH_EVERY`] per token
    /// on this replica); claims the slot when it does.
    fn claim_touch(&self, id: &str, last: i64, now: i64) -> bool {
        if now - last < TOUCH_EVERY {
            return false;
        }
        let Ok(m) = self.tokens.read() else {
            return false;
        };
        m.get(id).is_some_and(|c| {
            c.touched
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        })
    }

    /// Count a failure of a known token id; `true` when it reaches the alert threshold.
    fn failed_id(&self, id: &str, now: i64) -> bool {
        let window = now - now.rem_euclid(60);
        let Ok(mut m) = self.failures_by_id.lock() else {
            return false;
        };
        if m.len() >= MAX_ENTRIES && !m.contains_key(id) {
            m.retain(|_, (w, _)| *w == window);
            if m.len() >= MAX_ENTRIES {
                return false;
            }
        }
        let e = m.entry(id.to_string()).or_insert((window, 0));
        if e.0 != window {
            *e = (window, 0);
        }
        e.1 += 1;
        e.1 == ALERT_FAILURES_PER_ID
    }
}

/// The Portcullis API token a request presents in `Authorization: Bearer pcs_…`, if any.
/// Other `Authorization` values are the app's own and are left alone.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(AUTHORIZATION)
        .and_then(|v| apitoken::from_authorization(v.as_bytes()))
}

/// Authenticate a request by its API token (R-AT-2..4). Cookies on such a request are
/// ignored entirely (R-CSRF-5): no CSRF check, no DPoP, no session refresh. Every refusal is
/// the same 401, except 429 once this address has failed too often.
pub async fn authenticate(
    state: &AppState,
    token: &str,
    peer: Option<IpAddr>,
) -> Result<Authed, WebError> {
    let cache = &state.views.tokens;
    let now = state.now();
    // R-AT-4: an address over its failure budget is refused before any lookup, so guessing
    // costs the gateway nothing. Only failures count: a valid token never uses this budget,
    // and works from any other address meanwhile.
    if let Some(ip) = peer
        && let Some(retry) = cache.failures_by_ip.exceeded(&ip, now)
    {
        return Err(WebError::RateLimited("API token attempts", retry));
    }
    let presented = apitoken::parse(token);
    let id = presented.map(|p| p.id);
    let stored = match id {
        Some(id) if !cache.is_revoked(id) && !cache.known_unknown(id, now) => {
            match cache.get(id, now) {
                Some(hit) => Some(hit),
                None => match state.store.tokens.api_token(id).await? {
                    Some(t) => Some((cache.put(t, now), -1)),
                    None => {
                        cache.put_unknown(id, now);
                        None
                    }
                },
            }
        }
        _ => None,
    };
    // R-AT-2: the HMAC work happens whether or not the id exists (and for a malformed token).
    let secret = presented.map(|p| p.secret).unwrap_or_default();
    let valid = apitoken::verify(
        &state.sessions.keys().api_token_pepper(),
        secret,
        stored.as_ref().map(|(t, _)| t.secret_hash.as_slice()),
    );
    let (token, touched) = match stored {
        Some((t, touched)) if valid => (t, touched),
        found => {
            failed(state, peer, id, found.is_some(), now);
            return Err(WebError::Unauthorized);
        }
    };
    // R-AT-3: a revoked or expired token, or one of an inactive user, is refused like any
    // other (the right secret, so not counted as a guess).
    if !token.is_live(now) {
        return Err(WebError::Unauthorized);
    }
    let member = match state.views.users.get(&token.user_id, now) {
        Some(m) if m.user.active => m,
        _ => match state.store.users.user(&token.user_id).await? {
            Some(u) => crate::auth::cache_user(state, u, now),
            None => return Err(WebError::Unauthorized),
        },
    };
    if !member.user.active {
        return Err(WebError::Unauthorized);
    }
    let last = if touched < 0 {
        token.last_used.unwrap_or(0)
    } else {
        touched
    };
    if cache.claim_touch(&token.id, last, now) {
        let store = state.store.clone();
        let id = token.id.clone();
        tokio::spawn(async move {
            if let Err(e) = store.tokens.touch_api_token(&id, now).await {
                tracing::warn!(error = %e, token_id = %id, "API token last-used time not stored");
            }
        });
    }
    Ok(Authed {
        user: member.user,
        credential: Credential::ApiToken(TokenCredential {
            id: token.id.clone(),
            name: token.name.clone(),
            expires_at: token.expires_at,
        }),
        csrf: Ok(()),
        csrf_cookie: None,
        roles: member.roles,
        identity: member.identity,
    })
}

/// Count and record a failed presentation. The token itself is never logged; the id only.
fn failed(state: &AppState, peer: Option<IpAddr>, id: Option<&str>, known: bool, now: i64) {
    let cache = &state.views.tokens;
    if let Some(ip) = peer {
        // Counts the failure; the refusal comes on the next attempt.
        let _ = cache.failures_by_ip.check(ip, now);
    }
    if known
        && let Some(id) = id
        && cache.failed_id(id, now)
    {
        // R-AT-4: alert, never lock: the rightful holder keeps working.
        tracing::warn!(
            token_id = %id,
            failures = ALERT_FAILURES_PER_ID,
            "repeated failed attempts with this API token id in one minute"
        );
        state.audit.record(
            now,
            crate::audit::Entry {
                action: "api_token.alert",
                outcome: "refused",
                actor: None,
                subject: None,
                ip: peer,
                detail: Some(format!("id={id}; repeated failures")),
            },
        );
    }
    state.audit.record(
        now,
        crate::audit::Entry {
            action: "api_token.failure",
            outcome: "refused",
            actor: None,
            subject: None,
            ip: peer,
            // The id is only echoed when it has the shape of one (never the secret).
            detail: Some(match id {
                Some(id) => format!("id={id}"),
                None => "malformed token".into(),
            }),
        },
    );
}

/// Why [`mint`] made no token.
#[derive(Debug, thiserror::Error)]
pub enum MintError {
    #[error("{0}")]
    Request(#[from] RequestError),
    #[error(
        "you already have {} active tokens: revoke one first",
        apitoken::MAX_TOKENS_PER_USER
    )]
    LimitReached,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Random(#[from] portcullis_core::oidc::pkce::RandomError),
}

/// Make, store and audit a token for `user_id`; returns the stored record and the plaintext
/// (to be shown once). The single place tokens come from.
pub async fn mint(
    state: &AppState,
    user_id: &str,
    name: &str,
    expires_in_days: Option<i64>,
    ip: Option<IpAddr>,
) -> Result<(ApiToken, String), MintError> {
    let now = state.now();
    let (name, expires_at) = apitoken::check_request(name, expires_in_days, now)?;
    let minted = apitoken::mint(state.sessions.keys().api_token_pepper().current)?;
    let record = ApiToken {
        id: minted.id.clone(),
        user_id: user_id.to_string(),
        name,
        secret_hash: minted.hash.to_vec(),
        created_at: now,
        expires_at,
        revoked_at: None,
        last_used: None,
    };
    match state
        .store
        .tokens
        .create_api_token(&record, apitoken::MAX_TOKENS_PER_USER, now)
        .await?
    {
        Created::Created => state.views.tokens.forget_unknown(&record.id),
        Created::LimitReached => return Err(MintError::LimitReached),
    }
    state.audit.record(
        now,
        crate::audit::Entry {
            action: "api_token.create",
            outcome: "ok",
            actor: Some(user_id),
            subject: Some(user_id),
            ip,
            detail: Some(format!("id={}", record.id)),
        },
    );
    Ok((record, minted.plaintext))
}

/// Revoke `id` if it is `user_id`'s; the change feed tells every replica (R-AT-3).
pub async fn revoke(
    state: &AppState,
    user_id: &str,
    id: &str,
    ip: Option<IpAddr>,
) -> Result<bool, StoreError> {
    let now = state.now();
    let done = state
        .store
        .tokens
        .revoke_api_token(user_id, id, now)
        .await?;
    if done {
        // This replica refuses at once, before its own feed catches up.
        state.views.tokens.revoke(id, now);
        state.audit.record(
            now,
            crate::audit::Entry {
                action: "api_token.revoke",
                outcome: "ok",
                actor: Some(user_id),
                subject: Some(user_id),
                ip,
                detail: Some(format!("id={id}")),
            },
        );
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn token(id: &str) -> ApiToken {
        ApiToken {
            id: id.into(),
            user_id: "u".into(),
            name: "n".into(),
            secret_hash: vec![0; 32],
            created_at: 0,
            expires_at: None,
            revoked_at: None,
            last_used: None,
        }
    }

    #[test]
    fn r_at_3_cache_expires_and_revocations_evict() {
        let c = TokenCache::default();
        c.put(token("a"), 1000);
        assert!(c.get("a", 1000 + TOKEN_TTL - 1).is_some());
        assert!(
            c.get("a", 1000 + TOKEN_TTL).is_none(),
            "re-read after the TTL"
        );
        c.put(token("a"), 2000);
        c.revoke("a", 2001);
        assert!(c.get("a", 2001).is_none());
        assert!(c.is_revoked("a"));
    }

    #[test]
    fn r_at_2_unknown_ids_are_remembered_like_known_ones() {
        let c = TokenCache::default();
        assert!(!c.known_unknown("x", 1000));
        c.put_unknown("x", 1000);
        assert!(
            c.known_unknown("x", 1000 + TOKEN_TTL - 1),
            "no second lookup"
        );
        assert!(
            !c.known_unknown("x", 1000 + TOKEN_TTL),
            "re-read after the TTL"
        );
        c.put_unknown("y", 1000);
        c.forget_unknown("y");
        assert!(
            !c.known_unknown("y", 1000),
            "a token made with this id is looked up"
        );
    }

    #[test]
    fn last_used_is_written_at_most_once_a_minute() {
        let c = TokenCache::default();
        c.put(token("a"), 1000);
        assert!(c.claim_touch("a", 0, 1000));
        assert!(!c.claim_touch("a", 0, 1000), "claimed once");
        assert!(!c.claim_touch("a", 1000, 1000 + TOUCH_EVERY - 1));
        assert!(c.claim_touch("a", 1000, 1000 + TOUCH_EVERY));
    }

    #[test]
    fn r_at_4_alert_once_per_window_per_id() {
        let c = TokenCache::default();
        let alerts: usize = (0..ALERT_FAILURES_PER_ID * 2)
            .filter(|_| c.failed_id("a", 120))
            .count();
        assert_eq!(alerts, 1);
        assert!(!c.failed_id("a", 180), "a new window starts at one");
    }
}
