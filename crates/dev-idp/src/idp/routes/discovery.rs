//! `/.well-known/openid-configuration` and `/jwks`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::idp::DevIdp;
use crate::idp::keys::ALG_NAME;
use crate::idp::routes::SUPPORTED_SCOPES;

pub(crate) fn discovery_document(idp: &DevIdp) -> serde_json::Value {
    json!({
        "issuer": idp.issuer(),
        "authorization_endpoint": idp.endpoint("/authorize"),
        "token_endpoint": idp.endpoint("/token"),
        "userinfo_endpoint": idp.endpoint("/userinfo"),
        "jwks_uri": idp.endpoint("/jwks"),
        "end_session_endpoint": idp.endpoint("/end-session"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [ALG_NAME],
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": SUPPORTED_SCOPES,
        "claims_supported": [
            "iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "sid", "at_hash",
            "email", "email_verified", "name", "given_name", "family_name",
            "preferred_username", "picture", "groups"
        ],
        "prompt_values_supported": ["none", "login"],
        "claims_parameter_supported": false,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "authorization_response_iss_parameter_supported": true,
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
        "frontchannel_logout_supported": false,
    })
}

pub(crate) async fn discovery(State(idp): State<Arc<DevIdp>>) -> Response {
    Json(discovery_document(&idp)).into_response()
}

pub(crate) async fn jwks(State(idp): State<Arc<DevIdp>>) -> Response {
    Json(idp.key.jwks()).into_response()
}
