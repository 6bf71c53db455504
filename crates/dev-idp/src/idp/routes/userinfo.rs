//! The userinfo endpoint (RFC 6750 bearer token in the Authorization header).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};

use crate::idp::DevIdp;
use crate::idp::routes::claims::user_claims;
use crate::idp::routes::{json_error, no_store_json};

fn unauthorized(error: Option<&str>, description: &str) -> Response {
    let mut resp = json_error(
        StatusCode::UNAUTHORIZED,
        error.unwrap_or("invalid_request"),
        description,
    );
    let challenge = match error {
        Some(e) => format!(
            "Bearer realm=\"portcullis-dev-idp\", error=\"{e}\", error_description=\"{description}\""
        ),
        None => "Bearer realm=\"portcullis-dev-idp\"".to_owned(),
    };
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, value);
    }
    resp
}

fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() && !token.contains(' '))
        .then_some(token)
}

pub(crate) async fn userinfo(State(idp): State<Arc<DevIdp>>, headers: HeaderMap) -> Response {
    let Some(token) = bearer_token(&headers) else {
        return unauthorized(None, "an Authorization: Bearer access token is required");
    };
    let Some(grant) = idp.state().access_tokens.get(token).cloned() else {
        return unauthorized(
            Some("invalid_token"),
            "the access token is unknown, expired or revoked",
        );
    };
    let Some(user) = idp.user(&grant.username) else {
        return unauthorized(Some("invalid_token"), "the user no longer exists");
    };
    let mut claims = user_claims(user, &grant.scopes);
    claims.insert("sub".into(), json!(user.sub));
    no_store_json(StatusCode::OK, Value::Object(claims))
}
