//! Portcullis's own endpoints. Everything else goes to the upstream (see `proxy`).

pub mod admin;
pub mod api_tokens;
pub mod backchannel;
pub mod callback;
pub mod cli_login;
pub mod forward_auth;
pub mod health;
pub mod login;
pub mod session;

use axum::http::{HeaderValue, Response, header};

/// `Cache-Control: no-store` on every answer that sets or clears auth cookies (R-CK-4).
pub fn no_store<B>(resp: &mut Response<B>) {
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// Append a `Set-Cookie` (values we build are always valid header text).
pub fn set_cookie<B>(resp: &mut Response<B>, value: String) {
    if let Ok(v) = HeaderValue::from_str(&value) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
}
