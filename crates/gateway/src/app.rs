//! The router: Portcullis's own endpoints, the proxy fallback, and the request limits.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::IntoResponse;
use axum::response::Response;
use axum::routing::get;
use hyper::body::Incoming;
use tower::ServiceExt;
use tracing::Instrument;

use crate::auth::MaybeAuthed;
use crate::error::{self, WebError, wants_json};
use crate::metrics::{Credential, Verification};
use crate::routes::{admin, callback, health, session};
use crate::state::AppState;
use crate::{api, assets, auth, cors, proxy, routes};

/// R-RS-1 limits checked here (hyper enforces its own, larger, framing limits).
pub const MAX_URI: usize = 8 * 1024;
pub const MAX_COOKIE: usize = 8 * 1024;
pub const MAX_HEADERS: usize = 16 * 1024;

/// Build the router for `state`, its request ids drawn from `ids` (the [`Entry`]'s own, so
/// every request's id comes from one source).
fn router(state: AppState, ids: Arc<crate::request_id::IdSource>) -> Router {
    // R-CB-1: GET only (axum would answer HEAD with the GET handler); one redirect URI per
    // IdP, the handler tells them apart by path.
    let mut callbacks = Router::new();
    for idp in state.idps.iter() {
        callbacks = callbacks.route(
            idp.callback_path(),
            get(callback::callback).head(method_not_allowed_get),
        );
    }
    let front_state = state.clone();
    // Every path here is one [`is_own_path`] knows (requests for other paths never come here).
    let own = |p: &'static str| {
        debug_assert!(is_own_prefix(p), "{p} is not under Portcullis's own paths");
        p
    };
    callbacks
        .route(own("/healthz"), get(health::healthz))
        .route(own("/readyz"), get(health::readyz))
        .route(
            own(crate::assertion::JWKS_PATH),
            get(crate::assertion::jwks),
        )
        .route(own("/.portcullis/{file}"), get(assets::script))
        .route(own(admin::PAGE_PATH), get(admin::page))
        .route(own(crate::pages::SIGNED_OUT_PATH), get(session::signed_out))
        // The JSON API (session, sign-in and sign-out, back-channel logout, admin), each route
        // registered with its OpenAPI description; nothing else here is under `/api/`.
        // (GET /api/logout only shows a page with a sign-out button, R-CSRF-4.)
        .merge(api::router())
        // The API token routes (browser session only).
        .merge(routes::api_tokens::routes())
        .merge(routes::cli_login::routes())
        // Only Portcullis's own answers; the app's responses keep the app's own headers.
        .route_layer(middleware::from_fn(security_headers))
        .fallback(proxy::gate)
        // The one middleware (each layer costs allocations and a hop on every request).
        .layer(middleware::from_fn(move |req, next: Next| {
            front(front_state.clone(), ids.clone(), req, move |r| next.run(r))
        }))
        .with_state(state)
}

/// Whether `path` may name one of Portcullis's own endpoints: everything under `/api/` and
/// `/.portcullis/`, the health checks and the IdPs' callback paths. Every route [`router`]
/// registers is one of these (checked in the tests); other paths only ever reach the proxy.
pub fn is_own_path(state: &AppState, path: &str) -> bool {
    is_own_prefix(path) || state.idps.by_callback_path(path).is_some()
}

/// [`is_own_path`] without the callback paths (which come from the configuration).
fn is_own_prefix(path: &str) -> bool {
    path.starts_with("/api/")
        || path.starts_with("/.portcullis/")
        || path == "/healthz"
        || path == "/readyz"
}

/// Every request's way in. Portcullis's own paths ([`is_own_path`]) go through the router;
/// all others, the app's pages, go straight to the proxy through the same front door
/// ([`front`]): the router would only find its fallback for them, at the cost of its layers
/// (boxed futures, extractors, route lookup) on the hot path.
#[derive(Clone)]
pub struct Entry(Arc<EntryParts>);

struct EntryParts {
    router: Router,
    state: AppState,
    ids: Arc<crate::request_id::IdSource>,
}

impl Entry {
    pub fn new(state: AppState) -> Entry {
        let ids = Arc::new(crate::request_id::IdSource::new(
            state.config.observability.trust_request_id,
        ));
        Entry(Arc::new(EntryParts {
            router: router(state.clone(), ids.clone()),
            ids,
            state,
        }))
    }

    /// Answer one request from `peer`.
    pub async fn call(&self, peer: SocketAddr, req: hyper::Request<Incoming>) -> Response {
        let this = &self.0;
        let mut req = req.map(Body::new);
        req.extensions_mut().insert(ConnectInfo(peer));
        if is_own_path(&this.state, req.uri().path()) {
            let Ok(resp) = this.router.clone().oneshot(req).await;
            return resp;
        }
        let state = this.state.clone();
        front(
            this.state.clone(),
            this.ids.clone(),
            req,
            move |mut req: Request| async move {
                let authed = auth::take_authed(req.extensions_mut());
                match authed {
                    Ok(a) => proxy::gate(State(state), ConnectInfo(peer), MaybeAuthed(a), req)
                        .await
                        .into_response(),
                    Err(e) => e.into_response(),
                }
            },
        )
        .await
    }
}

/// The front door of every request: its id (in the request towards the handlers and the
/// upstream, in the response, and as the `request` span every log line of the request
/// carries), then [`checked`]. Failures are logged once, with their cause, where they are
/// rendered (error.rs); a debug line per request says how it ended.
async fn front<N, F>(
    state: AppState,
    ids: Arc<crate::request_id::IdSource>,
    mut req: Request,
    next: N,
) -> Response
where
    N: FnOnce(Request) -> F,
    F: Future<Output = Response>,
{
    let id = ids.id_for(req.headers());
    req.headers_mut()
        .insert(crate::request_id::HEADER, id.clone());
    // Well-formed or ours, so always ASCII.
    let span = tracing::info_span!("request", request_id = id.to_str().unwrap_or(""));
    let mut resp = async {
        let started = tracing::enabled!(tracing::Level::DEBUG)
            .then(|| (std::time::Instant::now(), req.method().clone(), req.uri().path().to_owned()));
        let resp = checked(state, req, next).await;
        if let Some((at, method, path)) = started {
            tracing::debug!(%method, %path, status = resp.status().as_u16(), latency_us = at.elapsed().as_micros() as u64, "finished processing request");
        }
        resp
    }
    .instrument(span)
    .await;
    resp.headers_mut().insert(crate::request_id::HEADER, id);
    resp
}

/// Size limits (R-RS-1: 414, 431), authentication (its outcome left in the request's
/// extensions for the handlers), and rendering of any [`WebError`] a handler returned, as
/// JSON or HTML for this client.
async fn checked<N, F>(state: AppState, mut req: Request, next: N) -> Response
where
    N: FnOnce(Request) -> F,
    F: Future<Output = Response>,
{
    let uri_len = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().len())
        .unwrap_or(0);
    if uri_len > MAX_URI {
        return WebError::TooLarge(StatusCode::URI_TOO_LONG).render(req.headers());
    }
    if cookie_len(req.headers()) > MAX_COOKIE || header_len(req.headers()) > MAX_HEADERS {
        return WebError::TooLarge(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
            .render(req.headers());
    }
    // A request with an API token is a program's: it gets JSON (R-AT).
    let json = wants_json(req.headers()) || crate::tokens::bearer(req.headers()).is_some();
    // CORS preflights are Portcullis's to answer (R-CSRF-6), before anything else.
    if let Some(resp) = cors::preflight(&state, req.method(), req.headers()) {
        return resp;
    }
    let origin = req.headers().get(axum::http::header::ORIGIN).cloned();
    let sent_proof = req.headers().contains_key("dpop");
    // A forward-auth call is about another request, named in its headers: the handler checks
    // that request's method and credential itself (a DPoP proof names the original URI, not
    // this one), and no body or upgrade of it ever passes through here.
    let forward_auth = req.uri().path() == routes::forward_auth::PATH;
    // Methods, upgrades and declared body sizes that are never accepted: refused before any
    // authentication work, whoever sends them.
    if !forward_auth && let Err(e) = proxy::precheck(&state, req.method(), req.headers()) {
        return e.render_as(json);
    }
    let (mut stale, mut refresh) = (false, None);
    let view = auth::RequestView {
        method: req.method(),
        uri: req.uri(),
        headers: req.headers(),
    };
    // An API token, when present, is the credential; cookies are then ignored (R-CSRF-5).
    let (outcome, credential) = match crate::tokens::bearer(req.headers()) {
        _ if forward_auth => (None, Credential::Session),
        Some(token) => {
            let peer = req
                .extensions()
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0.ip());
            let r = crate::tokens::authenticate(&state, token, peer).await;
            (Some(auth::Outcome::of(r.map(Some))), Credential::ApiToken)
        }
        None => (auth::outcome(&state, view).await, Credential::Session),
    };
    if let Some(outcome) = outcome {
        stale = outcome.stale_session(req.headers(), &state);
        // A token is always a presented credential; cookies only when a session cookie was
        // there (`stale`: it was worthless).
        let presented = credential == Credential::ApiToken || stale;
        if let Some(v) = Verification::of(outcome.result(), presented) {
            state.metrics.verification(credential, v);
        }
        refresh = outcome.refresh(&state);
        req.extensions_mut().insert(outcome);
    }
    let mut resp = error::render_pending(next(req).await, json);
    // A handler that set or cleared the session itself (sign-in, logout) has the last word.
    if !sets_cookie(&resp, state.cookies.session) {
        if stale {
            for c in state.sessions.clear_cookies() {
                routes::set_cookie(&mut resp, c);
            }
            routes::no_store(&mut resp);
        } else if let Some(c) = refresh {
            routes::set_cookie(&mut resp, c);
            routes::no_store(&mut resp);
        }
    }
    if let Some(origin) = &origin {
        cors::decorate(&state, origin, &mut resp);
    }
    if sent_proof {
        // The browser client corrects a proof's `iat` from `Date`: state it by our clock
        // (the injected one in tests; the same as hyper's otherwise).
        let date =
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(state.now().max(0) as u64);
        if let Ok(v) = HeaderValue::from_str(&httpdate::fmt_http_date(date)) {
            resp.headers_mut().insert(axum::http::header::DATE, v);
        }
    }
    // RFC 9449 §8.2: keep the client's nonce current.
    if sent_proof
        && let Some(nonce) = state
            .dpop
            .as_ref()
            .and_then(|d| d.current_nonce(state.now()))
        && let Ok(v) = HeaderValue::from_str(&nonce)
    {
        resp.headers_mut().insert("dpop-nonce", v);
    }
    resp
}

/// Whether the response already sets (or clears) cookie `name`.
fn sets_cookie(resp: &Response, name: &str) -> bool {
    resp.headers().get_all(header::SET_COOKIE).iter().any(|v| {
        v.as_bytes().starts_with(name.as_bytes()) && v.as_bytes().get(name.len()) == Some(&b'=')
    })
}

/// 405 for HEAD where only GET is allowed.
async fn method_not_allowed_get() -> WebError {
    WebError::MethodNotAllowed("GET".into())
}

/// Hardening headers on Portcullis's own pages and JSON: no MIME sniffing, never framed
/// (clickjacking on the sign-in pages), no external resources, no referrer.
async fn security_headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    for (name, value) in [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        (
            "content-security-policy",
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        ),
        ("referrer-policy", "no-referrer"),
    ] {
        h.entry(name).or_insert(HeaderValue::from_static(value));
    }
    resp
}

fn cookie_len(h: &HeaderMap) -> usize {
    h.get_all(header::COOKIE).iter().map(|v| v.len()).sum()
}

fn header_len(h: &HeaderMap) -> usize {
    h.iter().map(|(k, v)| k.as_str().len() + v.len() + 4).sum()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Every documented API path is one the entry sends to the router, never to the proxy.
    #[test]
    fn every_api_route_is_an_own_path() {
        let doc: serde_json::Value = serde_json::from_str(api::document()).unwrap();
        let paths = doc["paths"].as_object().unwrap();
        assert!(paths.len() > 10, "{paths:?}");
        for p in paths.keys() {
            assert!(is_own_prefix(p), "{p}");
        }
        for p in [
            crate::routes::api_tokens::ACCOUNT_PATH,
            crate::routes::cli_login::CONSENT_PATH,
            admin::PAGE_PATH,
            crate::pages::SIGNED_OUT_PATH,
            crate::assertion::JWKS_PATH,
        ] {
            assert!(is_own_prefix(p), "{p}");
        }
        for p in [
            "/",
            "/app",
            "/api",
            "/healthz/x",
            "/API/session",
            "/.portcullisx",
        ] {
            assert!(!is_own_prefix(p), "{p}");
        }
    }
}
