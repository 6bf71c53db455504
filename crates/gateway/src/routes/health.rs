//! `/healthz` (the process is up) and `/readyz` (the IdP is loaded) — R-RS-3.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::state::AppState;

pub async fn healthz() -> impl IntoResponse {
    Json(json!({"status": "ok"}))
}

pub async fn readyz(State(state): State<AppState>) -> Response {
    let insecure = state.config.oidc.allow_insecure_http;
    match state.provider() {
        Ok(p) => Json(json!({
            "status": "ready",
            "issuer": p.metadata.issuer,
            "insecure_transport": insecure,
        }))
        .into_response(),
        Err(reason) => {
            let mut r = (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "not_ready", "reason": reason, "insecure_transport": insecure})),
            )
                .into_response();
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            r
        }
    }
}
