//! The session service: issues, verifies and ends browser sessions, owns their lifetimes and
//! the cookies that carry them. The JWT is verified locally; the server-side session in the
//! store exists so a session can end before its JWT expires (logout, back-channel logout),
//! which every replica learns through the change feed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use subtle::ConstantTimeEq;

use portcullis_core::claims::MappedUser;
use portcullis_core::config::SessionLifetimes;
use portcullis_core::session::{
    CookieNames, SessionClaims, SessionKeys, csrf_hash, fingerprint_hash,
};
use portcullis_store::{Session, Store, User};

use crate::error::WebError;
use crate::views::Views;

/// Longest ID token kept with a session for `id_token_hint`.
const MAX_STORED_ID_TOKEN: usize = 16 * 1024;
/// Verified session JWTs remembered per worker thread; the map is emptied when full.
const VERIFIED_PER_WORKER: usize = 1024;

/// Session JWTs this gateway has verified, by their exact text: a browser sends the same
/// JWT on every request until it is re-issued, so a hit skips the base64 and JSON parsing
/// and the HMAC (most of the session path's own work). Only the time checks are repeated
/// ([`SessionClaims::timely`]); revocation, the fingerprint and the user are checked per
/// request as before. One map per worker thread ([`crate::workers`]), so no lock is ever
/// contended; per gateway, so a token verified with one secret never counts for another.
struct Verified(Box<[Remembered]>);

/// One worker's verified tokens, by their text: the claims, and the fingerprint cookie last
/// found to match them (compared in constant time instead of hashed again).
type Remembered = Mutex<HashMap<Box<str>, (Arc<SessionClaims>, Option<Box<str>>)>>;

impl Verified {
    fn new(workers: usize) -> Verified {
        Verified((0..=workers).map(|_| Mutex::default()).collect())
    }

    fn slot(&self) -> &Remembered {
        let slots = &self.0;
        &slots[crate::workers::current() % slots.len()]
    }
}

/// Lifetimes and keys of browser sessions.
pub struct SessionService {
    keys: SessionKeys,
    pub cookies: CookieNames,
    /// `iss`/`aud` of session tokens: the public origin.
    origin: String,
    /// JWT lifetime (also the idle timeout) and absolute lifetime (R-SJ-4).
    pub lifetimes: SessionLifetimes,
    verified: Verified,
}

/// The IdP's tokens kept server-side with a new session (never sent to the browser).
#[derive(Clone, Copy, Debug, Default)]
pub struct Kept<'a> {
    /// The sign-in's ID token, for `id_token_hint` and to compare refreshed ones with.
    pub id_token: Option<&'a str>,
    /// With offline access on and a refresh token issued.
    pub offline: Option<Offline<'a>>,
}

/// Offline access at sign-in: the IdP's refresh token (plaintext, only in memory) and the
/// re-check interval.
#[derive(Clone, Copy)]
pub struct Offline<'a> {
    pub refresh_token: &'a str,
    pub recheck_interval: i64,
}

impl std::fmt::Debug for Offline<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Offline")
            .field("recheck_interval", &self.recheck_interval)
            .finish_non_exhaustive()
    }
}

/// A session just started: the user, and the cookies to set (session JWT, fingerprint,
/// CSRF token).
pub struct Started {
    pub user: User,
    pub set_cookies: [String; 3],
}

impl SessionService {
    pub fn new(
        keys: SessionKeys,
        cookies: CookieNames,
        origin: String,
        lifetimes: SessionLifetimes,
        workers: usize,
    ) -> SessionService {
        SessionService {
            keys,
            cookies,
            origin,
            lifetimes,
            verified: Verified::new(workers),
        }
    }

    /// Keys for other gateway artefacts (tx binding) derive from the same secret.
    pub fn keys(&self) -> &SessionKeys {
        &self.keys
    }

    /// After a successful sign-in: user and server-side session in one transaction, then a
    /// fresh session id in a fresh JWT (R-CB-9) bound to a fresh fingerprint cookie (R-FP),
    /// a fresh CSRF token (R-CSRF) and, with DPoP on, the browser key whose proof started the
    /// sign-in (`jkt`, R-DP-B).
    pub async fn start(
        &self,
        store: &Store,
        mapped: &MappedUser,
        idp_sid: Option<String>,
        kept: Kept<'_>,
        jkt: Option<String>,
        now: i64,
    ) -> Result<Started, WebError> {
        let Kept { id_token, offline } = kept;
        let random = || {
            portcullis_core::oidc::pkce::random_token()
                .map_err(|e| WebError::Internal(e.to_string()))
        };
        let (sid, fingerprint, csrf) = (random()?, random()?, random()?);
        let l = self.lifetimes;
        let id_token = id_token.filter(|t| t.len() <= MAX_STORED_ID_TOKEN);
        // Offline access needs the sign-in's ID token to compare refreshed ones with; the
        // refresh token is stored only encrypted, bound to this session id.
        let sealed = match (offline, id_token) {
            (Some(o), Some(_)) => match self.keys.seal_refresh_token(o.refresh_token, &sid) {
                Ok(sealed) => Some((sealed, now + o.recheck_interval)),
                Err(e) => {
                    tracing::warn!(error = %e, "offline access: the IdP's refresh token is not kept; this session is not re-checked");
                    None
                }
            },
            (Some(_), None) => {
                tracing::warn!(
                    "offline access: the ID token is too large to keep; this session is not re-checked"
                );
                None
            }
            (None, _) => None,
        };
        let session = Session {
            id: sid.clone(),
            user_id: String::new(),
            created_at: now,
            last_seen: now,
            expires_at: now + l.absolute,
            revoked_at: None,
            idp_sid: idp_sid.clone(),
            // Kept for `id_token_hint` at logout; an unusually large one is not worth a row.
            id_token: id_token.map(str::to_owned),
            recheck_at: sealed.as_ref().map(|(_, at)| *at),
            refresh_token: sealed.map(|(s, _)| s),
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
            exp: now + l.ttl,
            auth_time: now,
            fph: fingerprint_hash(&fingerprint),
            csrf_h: csrf_hash(&self.keys, &csrf),
            jkt,
            idp_sid,
        }
        .issue(&self.keys);
        Ok(Started {
            user,
            set_cookies: [
                self.cookies.set(self.cookies.session, &jwt, l.ttl),
                self.cookies.set(self.cookies.fp, &fingerprint, l.absolute),
                self.cookies
                    .set_readable(self.cookies.csrf, &csrf, l.absolute),
            ],
        })
    }

    /// Whether a verified session is still within its absolute lifetime (R-SJ-4).
    pub fn within_lifetime(&self, claims: &SessionClaims, now: i64) -> bool {
        now < claims.auth_time + self.lifetimes.absolute
    }

    /// R-SJ-4: the `Set-Cookie` of a re-issued JWT when `claims` (already verified with every
    /// check the request needs) has less than the refresh window left: same `sid`, `fph`
    /// and `auth_time`, new `iat`/`exp`, never past the absolute lifetime. An expired JWT
    /// never gets here (verification refused it).
    pub fn refresh(&self, claims: &SessionClaims, now: i64) -> Option<String> {
        let l = self.lifetimes;
        if claims.exp - now >= l.refresh_window() {
            return None;
        }
        let end = claims.auth_time + l.absolute;
        let exp = (now + l.ttl).min(end);
        if exp <= claims.exp {
            return None;
        }
        let jwt = SessionClaims {
            iat: now,
            exp,
            ..claims.clone()
        }
        .issue(&self.keys);
        Some(self.cookies.set(self.cookies.session, &jwt, exp - now))
    }

    /// Signature, header, claims and expiry of a session JWT (R-SJ), and its fingerprint
    /// cookie (R-FP-1: a JWT without its own fingerprint is worthless). Revocation and the
    /// user are checked by the authentication middleware.
    pub fn verify(&self, token: &str, fp: Option<&str>, now: i64) -> Option<Arc<SessionClaims>> {
        let slot = self.verified.slot();
        if let Ok(mut seen) = slot.lock()
            && let Some((c, known_fp)) = seen.get_mut(token)
        {
            if c.timely(now).is_err() {
                // Expired (or the clock moved back): judged in full below.
                seen.remove(token);
            } else {
                let same = match (known_fp.as_deref(), fp) {
                    (Some(k), Some(f)) => bool::from(k.as_bytes().ct_eq(f.as_bytes())),
                    _ => false,
                };
                if same {
                    return Some(c.clone());
                }
                if !c.fingerprint_matches(fp) {
                    return None;
                }
                *known_fp = fp.map(Box::from);
                return Some(c.clone());
            }
        }
        match SessionClaims::verify(token, &self.keys, &self.origin, now) {
            Ok(c) => {
                if !c.fingerprint_matches(fp) {
                    return None;
                }
                let c = Arc::new(c);
                if let Ok(mut seen) = slot.lock() {
                    if seen.len() >= VERIFIED_PER_WORKER {
                        seen.clear();
                    }
                    seen.insert(token.into(), (c.clone(), fp.map(Box::from)));
                }
                Some(c)
            }
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

    /// The deletion cookies of a session: JWT, fingerprint, CSRF token (R-CK-2).
    pub fn clear_cookies(&self) -> [String; 3] {
        [
            self.cookies.clear(self.cookies.session),
            self.cookies.clear(self.cookies.fp),
            self.cookies.clear(self.cookies.csrf),
        ]
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const ORIGIN: &str = "https://gw.example";

    fn service(secret: &str) -> SessionService {
        SessionService::new(
            SessionKeys::derive(secret),
            CookieNames::new(true),
            ORIGIN.into(),
            SessionLifetimes::default(),
            2,
        )
    }

    /// The fingerprint cookie value whose hash the test tokens carry.
    const FP: &str = "fingerprint-cookie-value";

    fn token(secret: &str, iat: i64) -> String {
        SessionClaims {
            iss: ORIGIN.into(),
            sub: "u1".into(),
            sid: "s1".into(),
            iat,
            exp: iat + 600,
            auth_time: iat,
            fph: portcullis_core::session::fingerprint_hash(FP),
            csrf_h: "c".into(),
            jkt: None,
            idp_sid: None,
        }
        .issue(&SessionKeys::derive(secret))
    }

    /// A remembered verification repeats the time checks, and never counts for a gateway
    /// with another secret.
    #[test]
    fn remembered_tokens_still_expire_and_stay_per_gateway() {
        let secret = "a-secret-of-at-least-thirty-two-bytes!!";
        let gw = service(secret);
        let t = token(secret, 1_000_000);
        assert!(gw.verify(&t, Some(FP), 1_000_010).is_some());
        assert!(gw.verify(&t, Some(FP), 1_000_020).is_some(), "remembered");
        assert!(
            gw.verify(&t, Some(FP), 1_000_000 + 600 + 6).is_none(),
            "expired"
        );
        assert!(
            gw.verify(&t, Some(FP), 999_990).is_none(),
            "issued in the future"
        );
        let other = service("another-secret-of-at-least-thirty-two-bytes");
        assert!(other.verify(&t, Some(FP), 1_000_010).is_none());
        // A tampered copy is judged in full, whatever is remembered.
        let mut bad = t.clone();
        bad.pop();
        assert!(gw.verify(&bad, Some(FP), 1_000_010).is_none());
    }

    /// R-FP-1: the fingerprint is checked on every request, remembered token or not.
    #[test]
    fn r_fp_1_remembered_tokens_still_need_their_fingerprint() {
        let secret = "a-secret-of-at-least-thirty-two-bytes!!";
        let gw = service(secret);
        let t = token(secret, 1_000_000);
        // Not remembered yet: a wrong or missing fingerprint is refused and nothing is kept.
        assert!(gw.verify(&t, None, 1_000_010).is_none());
        assert!(gw.verify(&t, Some("stolen-jwt-only"), 1_000_010).is_none());
        assert!(gw.verify(&t, Some(FP), 1_000_010).is_some());
        // Remembered with its fingerprint: others are still refused, the right one passes.
        for _ in 0..2 {
            assert!(gw.verify(&t, None, 1_000_020).is_none());
            assert!(gw.verify(&t, Some(""), 1_000_020).is_none());
            assert!(
                gw.verify(&t, Some("fingerprint-cookie-valuX"), 1_000_020)
                    .is_none()
            );
            assert!(gw.verify(&t, Some(FP), 1_000_020).is_some());
        }
    }
}
