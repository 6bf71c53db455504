//! One place that turns failures into HTTP answers (SECURITY.md §0.3): status, body shape
//! (HTML for browsers, JSON for API clients), `Cache-Control: no-store`, `Retry-After`,
//! `WWW-Authenticate`, `Allow`. Messages are generic; details go to the log, never to the
//! client.
//!
//! Handlers return `Result<_, WebError>`. `WebError::into_response` cannot see the request, so
//! it answers the bare status and parks the error in the response's extensions; the front
//! middleware (`app::front`), which knows whether the client wants JSON, renders it there.
//! [`WebError::render_as`] is the single renderer.

use std::sync::Arc;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::pages;

/// A refusal or failure, already classified.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// 400: a malformed or unacceptable callback/request (state, tx cookie, iss, duplicates).
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    /// 401 at the callback: the IdP said no, or a token/userinfo check failed.
    #[error("sign-in failed: {0}")]
    SignInFailed(String),
    /// 401 on the API/proxy path: identical for every cause.
    #[error("unauthorized")]
    Unauthorized,
    /// 401 for a DPoP problem (RFC 9449 §7.1): `WWW-Authenticate: DPoP error=…`.
    #[error("invalid DPoP proof: {0}")]
    InvalidDpop(&'static str),
    /// 401 `use_dpop_nonce` (RFC 9449 §8/§9): the proof must carry this server nonce.
    #[error("DPoP nonce required")]
    UseDpopNonce(String),
    /// 403 with the reason shown (e.g. a policy names the role needed).
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// 403: none of the person's groups grants a role, and roles are required; the page names
    /// the groups that would.
    #[error("no role: {0}")]
    NoAccess(portcullis_core::authz::NoRoleRefused),
    /// 403 `{"error":"csrf"}`: CSRF token missing/mismatched or a cross-site `Origin`.
    #[error("CSRF check failed: {0}")]
    Csrf(&'static str),
    /// 405 with `Allow`.
    #[error("method not allowed")]
    MethodNotAllowed(std::borrow::Cow<'static, str>),
    /// 400: a protocol upgrade other than the allowed ones (WebSocket).
    #[error("upgrade not allowed")]
    UpgradeNotAllowed,
    /// 408: the request body stalled.
    #[error("request body timed out")]
    RequestTimeout,
    /// 429 with `Retry-After` (seconds).
    #[error("rate limited: {0}")]
    RateLimited(&'static str, u64),
    /// 502: the IdP was unreachable or answered garbage.
    #[error("identity provider error: {0}")]
    IdpUnavailable(String),
    /// 502: the IdP refused to start a sign-in (a pushed authorization request answered with
    /// an OAuth error): usually the client's registration or credentials at the IdP.
    #[error("identity provider refused the sign-in request: {0}")]
    IdpRefused(String),
    /// 502: the upstream application could not be reached.
    #[error("upstream unavailable")]
    UpstreamUnavailable,
    /// 503: no upstream application is configured.
    #[error("no upstream configured")]
    NoUpstream,
    /// 503: discovery/JWKS not loaded yet (`starting`), or the IdP cannot be reached.
    #[error("not ready: {reason}")]
    NotReady { reason: String, starting: bool },
    /// 503 with `Retry-After`: a bounded resource is full (pending sign-ins).
    #[error("busy: {0}")]
    Busy(&'static str),
    /// 503 with `Retry-After`: the database cannot be used right now (unreachable,
    /// restarting, disk full); the request may succeed when it is back.
    #[error("database unavailable: {0}")]
    StoreUnavailable(String),
    /// 500: our own failure (store); fail closed.
    #[error("internal error: {0}")]
    Internal(String),
    /// 413 / 414 / 431: request too large in a way we check ourselves.
    #[error("request too large")]
    TooLarge(StatusCode),
    /// 400 on the admin API: a parameter is malformed; the sentence says which.
    #[error("invalid input: {0}")]
    InvalidInput(&'static str),
    /// 404 on the admin API: no such user.
    #[error("not found")]
    NotFound,
    /// 409 on the admin API: the action is refused as it stands (e.g. deactivating yourself).
    #[error("conflict: {0}")]
    Conflict(&'static str),
}

impl WebError {
    pub fn status(&self) -> StatusCode {
        match self {
            WebError::BadRequest(_) | WebError::UpgradeNotAllowed | WebError::InvalidInput(_) => {
                StatusCode::BAD_REQUEST
            }
            WebError::NotFound => StatusCode::NOT_FOUND,
            WebError::Conflict(_) => StatusCode::CONFLICT,
            WebError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            WebError::SignInFailed(_)
            | WebError::Unauthorized
            | WebError::InvalidDpop(_)
            | WebError::UseDpopNonce(_) => StatusCode::UNAUTHORIZED,
            WebError::Forbidden(_) | WebError::Csrf(_) | WebError::NoAccess(_) => {
                StatusCode::FORBIDDEN
            }
            WebError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            WebError::RateLimited(..) => StatusCode::TOO_MANY_REQUESTS,
            WebError::IdpUnavailable(_)
            | WebError::IdpRefused(_)
            | WebError::UpstreamUnavailable => StatusCode::BAD_GATEWAY,
            WebError::NoUpstream
            | WebError::NotReady { .. }
            | WebError::Busy(_)
            | WebError::StoreUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            WebError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            WebError::TooLarge(s) => *s,
        }
    }

    /// The machine-readable code and the human sentence shown to the client.
    fn public(&self) -> (&'static str, String) {
        let fixed = |code: &'static str, msg: &str| (code, msg.to_string());
        match self {
            WebError::BadRequest(_) => fixed(
                "invalid_request",
                "This sign-in link is invalid, expired or was already used. Please start again.",
            ),
            WebError::SignInFailed(_) => fixed(
                "access_denied",
                "Sign-in failed: the identity provider's answer could not be accepted. Please try again or contact your administrator.",
            ),
            WebError::Unauthorized | WebError::InvalidDpop(_) | WebError::UseDpopNonce(_) => {
                fixed("unauthorized", "You are not signed in.")
            }
            WebError::Forbidden(why) => ("forbidden", why.clone()),
            WebError::NoAccess(_) => fixed(
                "forbidden",
                "You are signed in, but none of your groups gives access to this application. Ask your administrator to add you to one of the groups listed.",
            ),
            WebError::Csrf(_) => fixed(
                "csrf",
                "This request did not come from a page of this site, so it was refused. Reload the page and try again.",
            ),
            WebError::MethodNotAllowed(_) => {
                fixed("method_not_allowed", "This request method is not allowed.")
            }
            WebError::UpgradeNotAllowed => fixed(
                "upgrade_not_allowed",
                "This protocol upgrade is not allowed.",
            ),
            WebError::RequestTimeout => fixed(
                "request_timeout",
                "The request body was not received in time.",
            ),
            WebError::RateLimited(..) => fixed(
                "rate_limited",
                "Too many requests. Please wait a moment and try again.",
            ),
            WebError::IdpUnavailable(_) => fixed(
                "idp_unavailable",
                "The identity provider could not be reached or gave an invalid answer. Please try again shortly.",
            ),
            WebError::IdpRefused(_) => fixed(
                "idp_refused",
                "Sign-in could not start: the identity provider refused this application's sign-in request. Please try again later; if it persists, tell your administrator.",
            ),
            WebError::UpstreamUnavailable => fixed(
                "upstream_unavailable",
                "The application behind Portcullis is not reachable right now. Please try again shortly.",
            ),
            WebError::NoUpstream => fixed(
                "no_upstream",
                "You are signed in, but no application is configured behind Portcullis yet (PORTCULLIS_UPSTREAM). Ask your administrator.",
            ),
            WebError::NotReady { starting: true, .. } => fixed(
                "not_ready",
                "Sign-in is starting up: the identity provider's configuration is not loaded yet. Please retry in a few seconds.",
            ),
            WebError::NotReady {
                starting: false, ..
            } => fixed(
                "not_ready",
                "Sign-in is not available: the identity provider cannot be reached. Please try again in a minute; if it persists, tell your administrator.",
            ),
            WebError::Busy(_) => fixed(
                "busy",
                "Too many sign-ins are in progress right now. Please try again in a minute.",
            ),
            WebError::StoreUnavailable(_) => fixed(
                "store_unavailable",
                "Portcullis cannot use its database right now, so this could not be done. Please try again in a minute; if it persists, tell your administrator.",
            ),
            WebError::Internal(_) => fixed(
                "server_error",
                "An internal error occurred. Please try again.",
            ),
            WebError::TooLarge(_) => fixed("request_too_large", "The request is too large."),
            WebError::InvalidInput(why) => fixed("invalid_request", why),
            WebError::NotFound => fixed("not_found", "There is no such user."),
            WebError::Conflict(why) => fixed("conflict", why),
        }
    }

    /// Render for a client that sent `headers`.
    pub fn render(&self, headers: &HeaderMap) -> Response {
        self.render_as(wants_json(headers))
    }

    /// Render as JSON (API clients) or as an HTML page (browsers).
    pub fn render_as(&self, json: bool) -> Response {
        let status = self.status();
        match self {
            // Expected states with their own logs (the IdP loader, the store): not errors.
            WebError::NotReady { .. } | WebError::Busy(_) | WebError::NoUpstream => {
                tracing::info!(status = status.as_u16(), error = %self, "request refused")
            }
            _ if status.is_server_error() => {
                tracing::error!(status = status.as_u16(), error = %self, "request failed")
            }
            _ => tracing::info!(status = status.as_u16(), error = %self, "request refused"),
        }
        let (code, message) = self.public();
        let mut resp = if json {
            let body = match self {
                // §0.3: these bodies are exactly this, for every cause.
                WebError::Unauthorized | WebError::InvalidDpop(_) | WebError::UseDpopNonce(_) => {
                    serde_json::json!({"error": "unauthorized"})
                }
                WebError::Csrf(_) => serde_json::json!({"error": "csrf"}),
                _ => serde_json::json!({"error": code, "error_description": message}),
            };
            (status, axum::Json(body)).into_response()
        } else {
            let page = match self {
                // Keep the page the person asked for: "try again" reloads it.
                WebError::NotReady { .. } => pages::retry_page(status, &message),
                WebError::NoAccess(refused) => pages::no_access_page(&message, &refused.granting),
                _ => pages::error_page(status, &message),
            };
            (status, axum::response::Html(page)).into_response()
        };
        let h = resp.headers_mut();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        match self {
            WebError::NotReady { .. } | WebError::Busy(_) | WebError::StoreUnavailable(_) => {
                h.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            WebError::RateLimited(_, secs) => {
                h.insert(header::RETRY_AFTER, HeaderValue::from(*secs));
            }
            WebError::MethodNotAllowed(allow) => {
                if let Ok(v) = HeaderValue::from_str(allow) {
                    h.insert(header::ALLOW, v);
                }
            }
            WebError::InvalidDpop(_) => {
                h.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(r#"DPoP error="invalid_dpop_proof", algs="ES256""#),
                );
            }
            WebError::UseDpopNonce(nonce) => {
                h.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(r#"DPoP error="use_dpop_nonce", algs="ES256""#),
                );
                if let Ok(v) = HeaderValue::from_str(nonce) {
                    h.insert("dpop-nonce", v);
                }
            }
            _ => {}
        }
        resp
    }
}

/// A [`WebError`] waiting in a response for the front middleware to render it.
#[derive(Clone, Debug)]
pub struct PendingError(pub Arc<WebError>);

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let mut resp = self.status().into_response();
        resp.extensions_mut().insert(PendingError(Arc::new(self)));
        resp
    }
}

/// Render a parked error for the client that sent `request_headers` (or keep `resp`).
pub fn render_pending(resp: Response, json: bool) -> Response {
    match resp.extensions().get::<PendingError>() {
        Some(PendingError(e)) => {
            let e = e.clone();
            let mut out = e.render_as(json);
            // Cookies a handler decided to clear on failure stay (R-CK-2).
            for c in resp.headers().get_all(header::SET_COOKIE) {
                out.headers_mut().append(header::SET_COOKIE, c.clone());
            }
            out
        }
        None => resp,
    }
}

/// API clients: `Accept: application/json` (and no `text/html` preference).
pub fn wants_json(headers: &HeaderMap) -> bool {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let has = |needle: &str| {
        accept
            .as_bytes()
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
    };
    has("application/json") && !has("text/html")
}

impl From<portcullis_store::StoreError> for WebError {
    fn from(e: portcullis_store::StoreError) -> Self {
        match e {
            portcullis_store::StoreError::Full(what) => WebError::Busy(what),
            // R-US-1: an admin-disabled user's sign-in is refused, never auto-reactivated.
            portcullis_store::StoreError::AdminDisabled => {
                WebError::Forbidden("Your account has been disabled by an administrator.".into())
            }
            e if e.is_unavailable() => WebError::StoreUnavailable(e.to_string()),
            e => WebError::Internal(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_error_is_no_store_and_api_401_is_exact() {
        let r = WebError::Unauthorized.render_as(true);
        assert_eq!(r.status(), 401);
        assert_eq!(r.headers()[header::CACHE_CONTROL], "no-store");
        let r = WebError::InvalidDpop("x").render_as(true);
        assert_eq!(
            r.headers()[header::WWW_AUTHENTICATE],
            r#"DPoP error="invalid_dpop_proof", algs="ES256""#
        );
        let r = WebError::RateLimited("sign-ins", 30).render_as(true);
        assert_eq!(
            (
                r.status().as_u16(),
                r.headers()[header::RETRY_AFTER].to_str().unwrap()
            ),
            (429, "30")
        );
        let r = WebError::MethodNotAllowed("GET, POST".into()).render_as(false);
        assert_eq!(r.headers()[header::ALLOW], "GET, POST");
        assert_eq!(WebError::Csrf("origin").status(), 403);
    }

    #[test]
    fn a_parked_error_is_rendered_for_the_client() {
        let resp = WebError::Busy("sign-ins").into_response();
        assert_eq!(resp.status(), 503);
        let out = render_pending(resp, true);
        assert_eq!(out.status(), 503);
        assert_eq!(out.headers()[header::RETRY_AFTER], "5");
        assert_eq!(out.headers()[header::CONTENT_TYPE], "application/json");
    }

    #[test]
    fn json_preference() {
        let mut h = HeaderMap::new();
        assert!(!wants_json(&h));
        h.insert(header::ACCEPT, HeaderValue::from_static("Application/JSON"));
        assert!(wants_json(&h));
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static("text/html, application/json"),
        );
        assert!(!wants_json(&h));
    }
}
