//! CORS for the configured frontend origins only (R-CSRF-6; seed 000: "CORS origins are
//! derived from your deployment configuration"). The public URL's own origin is same-origin
//! and needs nothing; every other origin gets no CORS headers at all. Never `*`, never an
//! origin reflected because a request named it: the answer names the origin only after an
//! exact match against the configured list.
//!
//! Portcullis owns CORS for credentialed traffic: when a request carries `Origin`, whatever
//! `Access-Control-*` headers the app sent are replaced, so an app answering `*` (or echoing
//! any origin) cannot open the signed-in session to other sites.

use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::state::AppState;

/// How long a browser may cache a preflight answer (seconds).
const PREFLIGHT_MAX_AGE: &str = "600";
/// Request headers a frontend may send: the tier-3 proof, the CSRF token, the usual ones.
const ALLOW_HEADERS: &str = "dpop, x-csrf-token, content-type, accept, authorization";
/// Response headers the browser client reads: nonce, the DPoP error, the server clock.
const EXPOSE_HEADERS: &str = "dpop-nonce, www-authenticate, date";

/// Whether `origin` is one of the configured extra frontend origins (exact, byte for byte;
/// configuration stores them serialised as browsers send them).
pub fn is_extra_origin(state: &AppState, origin: &[u8]) -> bool {
    state
        .config
        .browser
        .cors_origins
        .iter()
        .any(|o| o.as_bytes() == origin)
}

/// A preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) is answered
/// here, never by the app: 204 with the grant for a configured origin, 403 without any CORS
/// header for every other one (the browser then blocks the real request).
pub fn preflight(state: &AppState, method: &Method, headers: &HeaderMap) -> Option<Response> {
    if method != Method::OPTIONS || !headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD) {
        return None;
    }
    let origin = headers.get(header::ORIGIN)?;
    if !is_extra_origin(state, origin.as_bytes()) {
        let mut resp =
            crate::error::WebError::Csrf("preflight from an origin not configured").render_as(true);
        resp.headers_mut()
            .insert(header::VARY, HeaderValue::from_static("Origin"));
        return Some(resp);
    }
    let mut methods = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS".to_string();
    for m in &state.config.proxy.extra_methods {
        methods.push_str(", ");
        methods.push_str(m);
    }
    let mut resp = StatusCode::NO_CONTENT.into_response();
    let h = resp.headers_mut();
    grant(h, origin.clone());
    if let Ok(v) = HeaderValue::from_str(&methods) {
        h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, v);
    }
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static(ALLOW_HEADERS),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static(PREFLIGHT_MAX_AGE),
    );
    Some(resp)
}

/// On the answer to a request that carried `origin`: drop the app's CORS headers, then grant
/// the configured origin (and only it) access with credentials.
pub fn decorate(state: &AppState, origin: &HeaderValue, resp: &mut Response) {
    let h = resp.headers_mut();
    for name in [
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
        header::ACCESS_CONTROL_ALLOW_METHODS,
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        header::ACCESS_CONTROL_MAX_AGE,
    ] {
        h.remove(name);
    }
    if is_extra_origin(state, origin.as_bytes()) {
        grant(h, origin.clone());
        h.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(EXPOSE_HEADERS),
        );
    }
}

fn grant(h: &mut HeaderMap, origin: HeaderValue) {
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    h.insert(
        header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
        HeaderValue::from_static("true"),
    );
    h.append(header::VARY, HeaderValue::from_static("Origin"));
}
