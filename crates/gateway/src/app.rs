//! The router: Portcullis's own endpoints, the proxy fallback, and the request limits.

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use tower_http::trace::TraceLayer;

use crate::error::WebError;
use crate::proxy;
use crate::routes::{callback, health, login, session};
use crate::state::AppState;

/// R-RS-1 limits checked here (hyper enforces its own, larger, framing limits).
pub const MAX_URI: usize = 8 * 1024;
pub const MAX_COOKIE: usize = 8 * 1024;
pub const MAX_HEADERS: usize = 16 * 1024;

/// Build the router for `state`.
pub fn router(state: AppState) -> Router {
    let callback_path = state.config.callback_path().to_string();
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/api/login", get(login::login))
        .route(&callback_path, get(callback::callback))
        .route("/api/session", get(session::session))
        .route("/api/logout", get(session::logout).post(session::logout))
        // Only Portcullis's own answers; the app's responses keep the app's own headers.
        .route_layer(middleware::from_fn(security_headers))
        .fallback(proxy::gate)
        .layer(middleware::from_fn(limits))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// 414 for long URIs, 431 for oversized Cookie or header blocks (R-RS-1).
async fn limits(req: Request, next: Next) -> Response {
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
    next.run(req).await
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
