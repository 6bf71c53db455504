//! One place that turns failures into HTTP answers (SECURITY.md §0.3): status, body shape
//! (HTML for browsers, JSON for API clients), `Cache-Control: no-store`, `Retry-After`.
//! Messages are generic; details go to the log, never to the client.

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
    /// 502: the IdP was unreachable or answered garbage.
    #[error("identity provider error: {0}")]
    IdpUnavailable(String),
    /// 502: the upstream application could not be reached.
    #[error("upstream unavailable")]
    UpstreamUnavailable,
    /// 503: discovery/JWKS not loaded yet.
    #[error("not ready: {0}")]
    NotReady(String),
    /// 500: our own failure (store); fail closed.
    #[error("internal error: {0}")]
    Internal(String),
    /// 414 / 431: request too large in a way we check ourselves.
    #[error("request too large")]
    TooLarge(StatusCode),
}

impl WebError {
    pub fn status(&self) -> StatusCode {
        match self {
            WebError::BadRequest(_) => StatusCode::BAD_REQUEST,
            WebError::SignInFailed(_) | WebError::Unauthorized => StatusCode::UNAUTHORIZED,
            WebError::IdpUnavailable(_) | WebError::UpstreamUnavailable => StatusCode::BAD_GATEWAY,
            WebError::NotReady(_) => StatusCode::SERVICE_UNAVAILABLE,
            WebError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            WebError::TooLarge(s) => *s,
        }
    }

    /// The machine-readable code and the human sentence shown to the client.
    fn public(&self) -> (&'static str, &'static str) {
        match self {
            WebError::BadRequest(_) => (
                "invalid_request",
                "This sign-in link is invalid, expired or was already used. Please start again.",
            ),
            WebError::SignInFailed(_) => (
                "access_denied",
                "Sign-in failed: the identity provider's answer could not be accepted. Please try again or contact your administrator.",
            ),
            WebError::Unauthorized => ("unauthorized", "You are not signed in."),
            WebError::IdpUnavailable(_) => (
                "idp_unavailable",
                "The identity provider could not be reached or gave an invalid answer. Please try again shortly.",
            ),
            WebError::UpstreamUnavailable => (
                "upstream_unavailable",
                "The application behind Portcullis is not reachable right now. Please try again shortly.",
            ),
            WebError::NotReady(_) => (
                "not_ready",
                "Sign-in is starting up: the identity provider's configuration is not loaded yet. Please retry in a few seconds.",
            ),
            WebError::Internal(_) => (
                "server_error",
                "An internal error occurred. Please try again.",
            ),
            WebError::TooLarge(_) => ("request_too_large", "The request is too large."),
        }
    }

    /// Render for a client that sent `headers`.
    pub fn render(&self, headers: &HeaderMap) -> Response {
        self.render_as(wants_json(headers))
    }

    /// Render as JSON (API clients) or as an HTML page (browsers).
    pub fn render_as(&self, json: bool) -> Response {
        let status = self.status();
        match status.as_u16() {
            500..=599 => tracing::error!(status = status.as_u16(), error = %self, "request failed"),
            _ => tracing::info!(status = status.as_u16(), error = %self, "request refused"),
        }
        let (code, message) = self.public();
        let mut resp = if json {
            let body = match self {
                // §0.3: the API 401 body is exactly this, for every cause.
                WebError::Unauthorized => serde_json::json!({"error": "unauthorized"}),
                _ => serde_json::json!({"error": code, "error_description": message}),
            };
            (status, axum::Json(body)).into_response()
        } else {
            (
                status,
                axum::response::Html(pages::error_page(status, message)),
            )
                .into_response()
        };
        let h = resp.headers_mut();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if matches!(self, WebError::NotReady(_)) {
            h.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        resp
    }
}

/// API clients: `Accept: application/json` (and no `text/html` preference).
pub fn wants_json(headers: &HeaderMap) -> bool {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    accept.contains("application/json") && !accept.contains("text/html")
}

impl From<portcullis_store::StoreError> for WebError {
    fn from(e: portcullis_store::StoreError) -> Self {
        WebError::Internal(e.to_string())
    }
}
