//! Authentication: the one place that turns a request into "who is this".
//!
//! The front middleware (`app::front`) calls [`authenticate`] once per request (it sees the
//! method and URI, which a DPoP proof binds, and adds cookies to the response on refresh) and leaves the outcome in the request's extensions; handlers — the proxy and
//! Portcullis's own routes alike — take it with the [`MaybeAuthed`] or [`Authed`] extractors.
//!
//! A credential is verified locally (signature, expiry, issuer), then checked against the
//! in-memory revocation view and user state. No database on the hot path except the first
//! request for a user after a restart or after [`crate::views::USER_TTL`].

use std::sync::{Arc, OnceLock};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, Uri, header};
use portcullis_core::session::{Cookies, SessionClaims};
use portcullis_store::User;

use crate::error::WebError;
use crate::proxy::headers::{IdentityHeaders, IdentityNames, identity_headers};
use crate::state::AppState;
use crate::views::Roles;

/// What proves who the caller is.
#[derive(Clone, Debug)]
pub enum Credential {
    /// A browser session (the session JWT cookie); shared with the verified-token memo.
    Session(Arc<SessionClaims>),
    /// An API token in `Authorization: Bearer` (R-AT): not a browser credential.
    ApiToken(crate::tokens::TokenCredential),
}

/// A signed-in request.
#[derive(Clone, Debug)]
pub struct Authed {
    pub user: Arc<User>,
    pub credential: Credential,
    /// R-CSRF for this request: `Ok` for safe methods and for unsafe ones that carried a
    /// valid `X-CSRF-Token`; handlers of unsafe requests refuse on `Err` (403).
    pub csrf: Result<(), &'static str>,
    /// The csrf cookie's value (a form may submit the token instead of the header).
    pub csrf_cookie: Option<String>,
    /// The user's roles, mapped from their groups by the configured role map; `Err` when no
    /// group grants one and the configuration refuses such people. Shared with the user cache.
    pub roles: Arc<Roles>,
    /// The user's encoded identity headers, shared with the user cache (built once per user).
    pub identity: Arc<OnceLock<IdentityHeaders>>,
}

impl Authed {
    /// The identity headers for the app (R-HD-2/3): encoded on the first request of this
    /// cached user, reused afterwards (the cache entry is replaced when the user changes).
    pub fn identity_headers(&self, names: &IdentityNames) -> &IdentityHeaders {
        self.identity.get_or_init(|| {
            let roles = self.roles.as_deref().unwrap_or_default();
            identity_headers(&self.user.profile, roles, names)
        })
    }

    /// The browser session, when the credential is one.
    pub fn session(&self) -> Option<&SessionClaims> {
        match &self.credential {
            Credential::Session(s) => Some(s),
            Credential::ApiToken(_) => None,
        }
    }

    /// Until when the credential is valid (unix seconds).
    pub fn expires_at(&self) -> i64 {
        match &self.credential {
            Credential::Session(s) => s.exp,
            Credential::ApiToken(t) => t.expires_at.unwrap_or(i64::MAX),
        }
    }

    /// The API token, when the credential is one.
    pub fn api_token(&self) -> Option<&crate::tokens::TokenCredential> {
        match &self.credential {
            Credential::ApiToken(t) => Some(t),
            Credential::Session(_) => None,
        }
    }
}

/// The outcome the front middleware leaves in a request's extensions.
#[derive(Clone)]
pub(crate) struct Outcome(Arc<Result<Option<Authed>, WebError>>);

impl Outcome {
    /// The verification result (for the metrics).
    pub(crate) fn result(&self) -> &Result<Option<Authed>, WebError> {
        &self.0
    }

    /// The outcome of a request authenticated another way (an API token).
    pub(crate) fn of(r: Result<Option<Authed>, WebError>) -> Outcome {
        Outcome(Arc::new(r))
    }

    /// R-SJ-4: the re-issued session cookie, when the request is signed in (every check
    /// passed) and its JWT is due.
    pub(crate) fn refresh(&self, state: &AppState) -> Option<String> {
        match self.0.as_ref() {
            Ok(Some(a)) => a
                .session()
                .and_then(|s| state.sessions.refresh(s, state.now())),
            _ => None,
        }
    }

    /// A session cookie was presented but is worthless (expired, tampered, revoked, inactive
    /// user): the response clears it (R-CK-2).
    pub(crate) fn stale_session(&self, headers: &HeaderMap, state: &AppState) -> bool {
        matches!(self.0.as_ref(), Ok(None))
            && cookies(state, headers).is_ok_and(|c| c.session.is_some())
    }
}

/// The gateway cookies of a request; a duplicated gateway cookie is refused (R-CK-1).
pub fn cookies(state: &AppState, headers: &HeaderMap) -> Result<Cookies, WebError> {
    let values = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok());
    Cookies::parse(values, &state.sessions.cookies).map_err(|e| {
        tracing::info!(error = %e, "cookie tossing attempt refused");
        WebError::Unauthorized
    })
}

/// What a credential check may look at: the request's method and URI (a DPoP proof binds
/// them, RFC 9449 `htm`/`htu`) and its headers.
#[derive(Clone, Copy)]
pub struct RequestView<'a> {
    pub method: &'a Method,
    pub uri: &'a Uri,
    pub headers: &'a HeaderMap,
}

/// `Ok(None)` when there is no valid credential (missing, expired, tampered, revoked,
/// inactive user): the caller decides between a sign-in redirect and a 401.
pub async fn authenticate(
    state: &AppState,
    req: RequestView<'_>,
) -> Result<Option<Authed>, WebError> {
    let headers = req.headers;
    let cookies = cookies(state, headers)?;
    let Some(token) = cookies.session else {
        return Ok(None);
    };
    let now = state.now();
    // R-FP-1: a JWT without its fingerprint cookie is worthless (checked with the JWT).
    let Some(session) = state.sessions.verify(&token, cookies.fp.as_deref(), now) else {
        return Ok(None);
    };
    // R-SJ-4: nor past the absolute lifetime.
    if !state.sessions.within_lifetime(&session, now) {
        return Ok(None);
    }
    if state.views.revoked.is_revoked(&session.sid) {
        return Ok(None);
    }
    let member = match state.views.users.get(&session.sub, now) {
        // An inactive user is rare; re-read before refusing, so a sign-in on another
        // replica that re-activated them counts even before the change feed arrives here
        // (the refusal would clear their fresh cookie).
        Some(m) if m.user.active => m,
        _ => match state.store.users.user(&session.sub).await? {
            Some(u) => cache_user(state, u, now),
            None => return Ok(None),
        },
    };
    if !member.user.active {
        return Ok(None);
    }
    if let Some(guard) = &state.dpop {
        // R-DP-B: while DPoP is on, an unbound session (minted while it was off) is worthless.
        let Some(jkt) = session.jkt.as_deref() else {
            return Ok(None);
        };
        if needs_proof(state, &req) {
            guard
                .verify(req.method, req.uri, headers, Some(jkt), now)
                .await?;
        }
    }
    let csrf = if is_safe(req.method) {
        Ok(())
    } else {
        csrf_verdict(state, &session, cookies.csrf.as_deref(), headers)
    };
    Ok(Some(Authed {
        user: member.user,
        credential: Credential::Session(session),
        csrf,
        csrf_cookie: cookies.csrf,
        roles: member.roles,
        identity: member.identity,
    }))
}

/// Put a freshly read user in this replica's cache, with the roles their groups map to.
pub(crate) fn cache_user(state: &AppState, user: User, now: i64) -> crate::views::Member {
    let roles = state.roles_of(&user.profile.issuer, &user.profile.groups);
    state.views.users.put(user, roles, now)
}

/// Portcullis's own API, which always wants a proof from a bound session (the command-line
/// sign-in's anonymous endpoints, `/api/cli/token` and `/api/cli/device`, take no session).
const OWN_API: [&str; 5] = [
    "/api/session",
    "/api/tokens",
    "/api/cli/authorize",
    "/api/cli/device/lookup",
    "/api/cli/device/decide",
];
/// Portcullis's own API prefixes, likewise (the admin API, the token API's item paths).
const OWN_API_PREFIXES: [&str; 2] = ["/api/admin/", "/api/tokens/"];

/// R-DP scope: the configured path prefixes of the app's API and Portcullis's own API need a
/// proof; page navigations (the sign-out page included) never do.
fn needs_proof(state: &AppState, req: &RequestView<'_>) -> bool {
    let path = req.uri.path();
    // Sign-in routes are not session-authenticated: `POST /api/login` checks its own proof
    // (checking it here too would spend its `jti`), the callback is protected by `state`.
    if path == "/api/login" || state.idps.by_callback_path(path).is_some() {
        return false;
    }
    state.config.browser.dpop.covers(path)
        || OWN_API.contains(&path)
        || OWN_API_PREFIXES.iter().any(|p| path.starts_with(p))
        || (path == "/api/logout" && req.method == Method::POST)
}

/// R-CSRF-4: methods that must not change state need no token.
fn is_safe(m: &Method) -> bool {
    matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// R-CSRF-1..3 for an unsafe request authenticated by the session cookie.
fn csrf_verdict(
    state: &AppState,
    session: &SessionClaims,
    cookie: Option<&str>,
    headers: &HeaderMap,
) -> Result<(), &'static str> {
    match headers.get(header::ORIGIN) {
        // A configured frontend origin (R-CSRF-6) is cross-site by design.
        Some(o) if crate::cors::is_extra_origin(state, o.as_bytes()) => {}
        Some(o) if o.as_bytes() != state.public_origin.as_bytes() => {
            return Err("cross-origin request");
        }
        _ => {
            if headers
                .get("sec-fetch-site")
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site"))
            {
                return Err("cross-site request");
            }
        }
    }
    let token = headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .ok_or("X-CSRF-Token missing")?;
    if session.csrf_matches(state.sessions.keys(), token, cookie) {
        Ok(())
    } else {
        Err("X-CSRF-Token does not match this session")
    }
}

/// Run [`authenticate`] for the front middleware. Requests without any cookie skip it.
pub(crate) async fn outcome(state: &AppState, req: RequestView<'_>) -> Option<Outcome> {
    if !req.headers.contains_key(header::COOKIE) {
        return None;
    }
    Some(Outcome(Arc::new(authenticate(state, req).await)))
}

fn from_parts(parts: &Parts) -> Result<Option<Authed>, WebError> {
    match parts.extensions.get::<Outcome>() {
        None => Ok(None),
        Some(Outcome(o)) => of_outcome(o),
    }
}

/// The caller, taken out of the request's extensions (the proxy's way: no copy of the
/// outcome when nothing else holds it).
pub(crate) fn take_authed(ext: &mut axum::http::Extensions) -> Result<Option<Authed>, WebError> {
    match ext.remove::<Outcome>() {
        None => Ok(None),
        Some(Outcome(o)) => match Arc::try_unwrap(o) {
            Ok(Ok(a)) => Ok(a),
            Ok(Err(e)) => of_outcome(&Err(e)),
            Err(shared) => of_outcome(&shared),
        },
    }
}

/// The caller, or the error to answer with, from an authentication outcome.
fn of_outcome(o: &Result<Option<Authed>, WebError>) -> Result<Option<Authed>, WebError> {
    match o {
        Ok(a) => Ok(a.clone()),
        Err(WebError::Unauthorized) => Err(WebError::Unauthorized),
        Err(WebError::InvalidDpop(why)) => Err(WebError::InvalidDpop(why)),
        Err(WebError::UseDpopNonce(n)) => Err(WebError::UseDpopNonce(n.clone())),
        Err(WebError::Busy(what)) => Err(WebError::Busy(what)),
        Err(WebError::StoreUnavailable(w)) => Err(WebError::StoreUnavailable(w.clone())),
        Err(WebError::RateLimited(what, secs)) => Err(WebError::RateLimited(what, *secs)),
        Err(e) => Err(WebError::Internal(e.to_string())),
    }
}

/// The caller, if signed in.
pub struct MaybeAuthed(pub Option<Authed>);

impl<S: Send + Sync> FromRequestParts<S> for MaybeAuthed {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, WebError> {
        from_parts(parts).map(MaybeAuthed)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Authed {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, WebError> {
        from_parts(parts)?.ok_or(WebError::Unauthorized)
    }
}
