//! `GET /api/forward-auth`: the answer to a reverse proxy's pre-check (nginx `auth_request`,
//! Caddy `forward_auth`, Traefik `forwardAuth`, Envoy `ext_authz`).
//!
//! The request asked about is the original one, named by the proxy in headers that are believed
//! only from a configured trusted proxy (core `forward_auth`). It is authenticated and
//! authorized exactly as the reverse proxy path would: the same credential checks (session with
//! fingerprint, DPoP proof for covered paths bound to the ORIGINAL method and URI, CSRF on
//! unsafe methods, or an API token), the same policy decision on the same normalised path, and
//! the same identity headers, here as response headers for the proxy to copy upstream.
//!
//! Fails closed: every refusal and every internal error is a non-2xx answer, which each of the
//! proxies above turns into a refusal.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use portcullis_core::forward_auth::{self as fa, ForwardAuthError, SignIn};

use super::{no_store, set_cookie};
use crate::auth::{self, Authed, RequestView};
use crate::error::{WebError, wants_json};
use crate::proxy;
use crate::state::AppState;

/// Where the endpoint is served.
pub const PATH: &str = "/api/forward-auth";

/// The client's `Cookie` header without Portcullis's cookies (R-HD-4), for the proxy to send
/// upstream instead of the client's own; empty when nothing is left.
pub const UPSTREAM_COOKIE: HeaderName = HeaderName::from_static("x-portcullis-upstream-cookie");

/// Ask whether the original request may pass.
#[utoipa::path(
    get,
    path = "/api/forward-auth",
    tag = "forward-auth",
    summary = "Forward-auth: may this request pass?",
    description = "Called by a reverse proxy (nginx `auth_request`, Caddy `forward_auth`, Traefik `forwardAuth`, Envoy `ext_authz`) before it forwards a request, never by browsers or scripts directly. Answers only TCP peers listed in `PORTCULLIS_FORWARD_AUTH_TRUSTED_PROXIES` (403 for anyone else). The original request is named by `X-Original-Method` + `X-Original-URI` (nginx) or `X-Forwarded-Method` + `X-Forwarded-Uri` (Caddy, Traefik); the client's own headers (cookies, `Authorization`, `DPoP`, `X-CSRF-Token`, `Accept`) come along unchanged. The credential is checked against the original method and URI (a DPoP proof's `htm`/`htu` name them), then the path policies.\n\nOn success the identity headers (`X-Forwarded-User`, `-Email`, `-Groups`, `-Preferred-Username`, `-Roles`; every name present, empty when there is no value) and `X-Portcullis-Upstream-Cookie` (the client's cookies without Portcullis's own) are for the proxy to copy onto the upstream request, and so is the signed identity assertion when `PORTCULLIS_ASSERTION_HEADER` names its header; a `Set-Cookie` may carry a refreshed session.",
    params(
        ("X-Original-Method" = Option<String>, Header, description = "nginx: the original method"),
        ("X-Original-URI" = Option<String>, Header, description = "nginx: the original request target (`$request_uri`)"),
        ("X-Forwarded-Method" = Option<String>, Header, description = "Caddy, Traefik: the original method"),
        ("X-Forwarded-Uri" = Option<String>, Header, description = "Caddy, Traefik: the original request target"),
    ),
    responses(
        (status = 200, description = "Signed in and allowed: identity headers in the response"),
        (status = 302, description = "A browser navigation without a valid session, for Caddy/Traefik: `Location` is the sign-in URL that returns to the original URI"),
        (status = 401, description = "No valid credential: `{\"error\":\"unauthorized\"}`. For nginx (`X-Original-*`), a browser navigation gets this too, with the sign-in URL in `Location` for `error_page 401` to redirect to", body = crate::routes::admin::ErrorBody),
        (status = 403, description = "Not a trusted proxy; or a policy refuses the original request (the roles that would grant it are named); or CSRF; or the method is never allowed", body = crate::routes::admin::ErrorBody),
        (status = 400, description = "A trusted proxy sent no, duplicated, conflicting or malformed original method/URI", body = crate::routes::admin::ErrorBody),
    ),
    security((), ("session" = [], "dpop" = []))
)]
pub async fn forward_auth(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let bearer = crate::tokens::bearer(&headers);
    // Programs (API tokens, `Accept: application/json`) get JSON, as on the proxy path.
    let json = wants_json(&headers) || bearer.is_some();
    let mut resp = match answer(&state, peer, &headers, bearer).await {
        Ok(resp) => resp,
        Err(e) => e.render_as(json),
    };
    // Never cached: the answer is about one person's one request.
    no_store(&mut resp);
    resp
}

async fn answer(
    state: &AppState,
    peer: SocketAddr,
    headers: &HeaderMap,
    bearer: Option<&str>,
) -> Result<Response, WebError> {
    let trusted = &state.config.forward_auth.trusted_proxies;
    let original = fa::original_request(peer.ip(), trusted, |name| {
        headers.get_all(name).iter().map(|v| v.as_bytes()).collect()
    })
    .map_err(refusal)?;
    let method = Method::from_bytes(original.method.as_bytes())
        .map_err(|_| refusal(ForwardAuthError::BadMethod))?;
    let uri: Uri = original
        .uri
        .parse()
        .map_err(|_| refusal(ForwardAuthError::BadUri))?;
    // R-HD-5: the methods the proxy path would refuse with 405. A 403 here, because nginx's
    // `auth_request` understands nothing but 2xx, 401 and 403.
    if !proxy::method_allowed(&method, &state.config.proxy.extra_methods) {
        tracing::info!(event = "forward_auth.method", method = %method, "method never allowed");
        return Err(WebError::Forbidden(
            "This request method is not allowed here.".into(),
        ));
    }
    let view = RequestView {
        method: &method,
        uri: &uri,
        headers,
    };
    // An API token, when present, is the credential; cookies are then ignored (R-CSRF-5).
    let authed = match bearer {
        Some(token) => {
            let client = fa::client_ip(
                peer.ip(),
                &headers
                    .get_all("x-forwarded-for")
                    .iter()
                    .map(|v| v.as_bytes())
                    .collect::<Vec<_>>(),
            );
            Some(crate::tokens::authenticate(state, token, Some(client)).await?)
        }
        None => auth::authenticate(state, view).await?,
    };
    let Some(a) = authed else {
        return Ok(sign_in(state, &original, &method, headers));
    };
    // R-CSRF: an unsafe request without a valid token never reaches the app.
    a.csrf.map_err(WebError::Csrf)?;
    proxy::authorize(state, &a, method.as_str(), uri.path())?;
    tracing::debug!(event = "forward_auth.allowed", user = %a.user.id, method = %method, path = %uri.path(), "forward-auth allowed");
    let mut resp = allowed(state, &a, headers);
    crate::assertion::attach_forward_auth(state, &a, headers, resp.headers_mut())?;
    Ok(resp)
}

/// Log why a request was refused before any credential was looked at, and render it: 403 for
/// a peer that is not a trusted proxy (it may not ask at all), 400 for a trusted proxy that
/// asked badly (a configuration mistake; the proxies turn it into a refusal).
fn refusal(e: ForwardAuthError) -> WebError {
    match e {
        ForwardAuthError::UntrustedPeer(ip) => {
            tracing::warn!(event = "forward_auth.untrusted_peer", peer = %ip, "forward-auth request from an address not in PORTCULLIS_FORWARD_AUTH_TRUSTED_PROXIES refused");
            WebError::Forbidden(
                "Forward-auth answers only the proxies configured in PORTCULLIS_FORWARD_AUTH_TRUSTED_PROXIES.".into(),
            )
        }
        e => {
            tracing::warn!(event = "forward_auth.bad_request", error = %e, "forward-auth request refused");
            WebError::InvalidInput(
                "The proxy did not name the original request properly (X-Original-Method and X-Original-URI, or X-Forwarded-Method and X-Forwarded-Uri).",
            )
        }
    }
}

/// No valid credential: a browser navigation is sent to sign in (and back to the original
/// URI), anything else gets 401 JSON. A worthless session cookie is cleared (R-CK-2), for the
/// proxies that pass the answer's cookies on.
fn sign_in(
    state: &AppState,
    original: &fa::OriginalRequest,
    method: &Method,
    headers: &HeaderMap,
) -> Response {
    let navigation = matches!(*method, Method::GET | Method::HEAD) && !wants_json(headers);
    let mut resp = match fa::sign_in(original.dialect, navigation) {
        SignIn::Unauthorized => WebError::Unauthorized.render_as(true),
        answer => {
            let mut r = match answer {
                SignIn::Redirect => StatusCode::FOUND.into_response(),
                // nginx: its `error_page 401` location redirects to `Location`.
                _ => WebError::Unauthorized.render_as(true),
            };
            // Built from the public origin and an encoded, printable-ASCII URI: always valid.
            if let Ok(v) = HeaderValue::try_from(proxy::sign_in_url(state, &original.uri)) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            r
        }
    };
    if auth::cookies(state, headers).is_ok_and(|c| c.session.is_some()) {
        for c in state.sessions.clear_cookies() {
            set_cookie(&mut resp, c);
        }
    }
    resp
}

/// 200 with the identity headers (the reverse proxy's builder, R-HD-3), the cleaned `Cookie`
/// and, when the session is due, its refreshed cookie (R-SJ-4).
fn allowed(state: &AppState, a: &Authed, headers: &HeaderMap) -> Response {
    let rules = state.header_rules();
    let mut resp = StatusCode::OK.into_response();
    let h = resp.headers_mut();
    for (n, v) in a.identity_headers(&rules.identity).iter() {
        h.insert(n.clone(), v.clone());
    }
    // Every identity name is present, empty when there is no value: a proxy that copies named
    // headers must overwrite each of them, so a client's copy can never survive (Caddy 2.6
    // would even send its placeholder text for a missing one).
    let ident = &rules.identity;
    for n in [
        &ident.user,
        &ident.email,
        &ident.groups,
        &ident.preferred_username,
        &ident.roles,
    ] {
        h.entry(n.clone()).or_insert(HeaderValue::from_static(""));
    }
    let kept: Vec<String> = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|c| portcullis_core::session::Cookies::strip(c, &state.cookies))
        .collect();
    h.insert(
        UPSTREAM_COOKIE,
        HeaderValue::try_from(kept.join("; ")).unwrap_or(HeaderValue::from_static("")),
    );
    if let Some(c) = a
        .session()
        .and_then(|s| state.sessions.refresh(s, state.now()))
    {
        set_cookie(&mut resp, c);
    }
    resp
}
