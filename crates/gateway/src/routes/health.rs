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

/// Ready once an IdP is loaded: people can sign in, and a gateway with several IdPs keeps
/// serving while one of them is unreachable (its sign-in button says so). The body lists
/// each IdP's state.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let insecure = state.config.oidc.allow_insecure_http;
    let primary = state.idps.primary().provider();
    let mut body = match &primary {
        Ok(p) => json!({
            "status": "ready",
            "issuer": p.metadata.issuer,
            "insecure_transport": insecure,
        }),
        Err(reason) => {
            json!({"status": "not_ready", "reason": reason, "insecure_transport": insecure})
        }
    };
    let mut ready = primary.is_ok();
    if state.idps.several() {
        let list: Vec<_> = state
            .idps
            .iter()
            .map(|i| match i.provider() {
                Ok(p) => {
                    ready = true;
                    json!({"id": i.label.id, "status": "ready", "issuer": p.metadata.issuer})
                }
                Err(reason) => json!({"id": i.label.id, "status": "not_ready", "reason": reason}),
            })
            .collect();
        body["identity_providers"] = serde_json::Value::Array(list);
        if ready {
            body["status"] = json!("ready");
        }
    }
    if ready {
        return Json(body).into_response();
    }
    let mut r = (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    r
}
