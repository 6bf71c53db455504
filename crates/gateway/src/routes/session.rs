//! `GET /api/session` (who am I) and `/api/logout` (end the session here).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use serde_json::json;

use super::{no_store, set_cookie};
use crate::auth;
use crate::error::{WebError, wants_json};
use crate::pages;
use crate::state::AppState;

pub async fn session(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let mut resp = match auth::authenticate(&state, &headers).await {
        Ok(Some(a)) => {
            // The profile's fields flattened next to the internal id and login times.
            Json(json!({
                "user": a.user.as_ref(),
                "session": {
                    "expires_at": a.session.exp,
                    "auth_time": a.session.auth_time,
                },
            }))
            .into_response()
        }
        // The API answers JSON whatever the Accept header says.
        Ok(None) => (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "unauthorized"})),
        )
            .into_response(),
        Err(e) => e.render_as(true),
    };
    no_store(&mut resp);
    resp
}

/// Ends the session: revoked server-side (so a copied cookie stops working at once) and the
/// cookie cleared. Answers a page (browsers) or JSON.
pub async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let mut resp = match end(&state, &headers).await {
        Ok(()) if wants_json(&headers) => Json(json!({"status": "signed_out"})).into_response(),
        Ok(()) => Html(pages::signed_out_page()).into_response(),
        Err(e) => e.render(&headers),
    };
    set_cookie(&mut resp, state.cookies.clear(state.cookies.session));
    no_store(&mut resp);
    resp
}

async fn end(state: &AppState, headers: &HeaderMap) -> Result<(), WebError> {
    if let Some(a) = auth::authenticate(state, headers).await? {
        let now = portcullis_core::time::now_unix();
        state.store.revoke_session(&a.session.sid, now).await?;
        state
            .revoked
            .revoke(&a.session.sid, now + super::callback::SESSION_ABSOLUTE);
        tracing::info!(event = "auth.logout", user = %a.user.id, "signed out");
    }
    Ok(())
}
