//! HTTP endpoints of the development IdP.

mod authorize;
mod claims;
mod discovery;
mod end_session;
mod token;
mod userinfo;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::idp::DevIdp;

/// Scopes the IdP understands; others are ignored (not granted).
pub(crate) const SUPPORTED_SCOPES: &[&str] =
    &["openid", "email", "profile", "groups", "offline_access"];

pub(crate) fn router(idp: Arc<DevIdp>) -> Router {
    let base = idp.base_path.clone();
    let inner = Router::new()
        // A front page, so the issuer URL printed by `portcullis demo` opens something useful.
        .route("/", get(front_page))
        .route(
            "/.well-known/openid-configuration",
            get(discovery::discovery),
        )
        .route("/jwks", get(discovery::jwks))
        .route(
            "/authorize",
            get(authorize::authorize_get).post(authorize::authorize_post),
        )
        .route("/login", post(authorize::login))
        .route("/token", post(token::token))
        .route(
            "/userinfo",
            get(userinfo::userinfo).post(userinfo::userinfo),
        )
        .route(
            "/end-session",
            get(end_session::end_session_get).post(end_session::end_session_post),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(idp);
    if base.is_empty() {
        inner
    } else {
        Router::new().nest(&base, inner).fallback(not_found)
    }
}

async fn front_page(axum::extract::State(idp): axum::extract::State<Arc<DevIdp>>) -> Response {
    crate::idp::pages::front_page(&idp)
}

async fn not_found(uri: Uri) -> Response {
    json_error(
        StatusCode::NOT_FOUND,
        "not_found",
        &format!("the development IdP has no endpoint at {}", uri.path()),
    )
}

async fn method_not_allowed(uri: Uri) -> Response {
    json_error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        &format!("method not allowed for {}", uri.path()),
    )
}

/// A JSON response that must not be cached (token and userinfo responses).
pub(crate) fn no_store_json(status: StatusCode, body: serde_json::Value) -> Response {
    let mut resp = (status, axum::Json(body)).into_response();
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    resp
}

/// An RFC 6749 §5.2 style error body.
pub(crate) fn json_error(status: StatusCode, error: &str, description: &str) -> Response {
    no_store_json(
        status,
        serde_json::json!({ "error": error, "error_description": description }),
    )
}

/// A 302 redirect to `location`, not cacheable.
pub(crate) fn found(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(value) => {
            let mut resp = StatusCode::FOUND.into_response();
            let h = resp.headers_mut();
            h.insert(header::LOCATION, value);
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            resp
        }
        Err(_) => crate::idp::pages::error_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Redirect failed",
            "The redirect URL could not be encoded as an HTTP header.",
        ),
    }
}

/// `base` with extra query parameters appended (existing ones are kept).
pub(crate) fn with_query(base: &str, params: &[(&str, &str)]) -> Option<String> {
    let mut url = url::Url::parse(base).ok()?;
    if !params.is_empty() {
        let mut q = url.query_pairs_mut();
        for (k, v) in params {
            q.append_pair(k, v);
        }
    }
    Some(url.into())
}
