//! Who is making this request: the session cookie, verified locally (signature, expiry,
//! issuer), then the in-memory revocation view and user state. No database on the hot path
//! except the first request for a user after a restart.

use std::sync::Arc;

use axum::http::{HeaderMap, header};
use portcullis_core::session::{Cookies, SessionClaims};
use portcullis_store::User;

use crate::error::WebError;
use crate::state::AppState;

/// A signed-in request.
#[derive(Clone, Debug)]
pub struct Authed {
    pub user: Arc<User>,
    pub session: SessionClaims,
}

/// The gateway cookies of a request; a duplicated gateway cookie is refused (R-CK-1).
pub fn cookies(state: &AppState, headers: &HeaderMap) -> Result<Cookies, WebError> {
    let values = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok());
    Cookies::parse(values, &state.cookies).map_err(|e| {
        tracing::info!(error = %e, "cookie tossing attempt refused");
        WebError::Unauthorized
    })
}

/// `Ok(None)` when there is no valid session (missing, expired, tampered, revoked, inactive
/// user): the caller decides between a sign-in redirect and a 401.
pub async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<Authed>, WebError> {
    let cookies = cookies(state, headers)?;
    let Some(token) = cookies.session else {
        return Ok(None);
    };
    let now = portcullis_core::time::now_unix();
    let session = match SessionClaims::verify(&token, &state.keys, &state.public_origin, now) {
        Ok(c) => c,
        Err(e) => {
            tracing::debug!(error = %e, "session cookie refused");
            return Ok(None);
        }
    };
    if state.revoked.is_revoked(&session.sid) {
        return Ok(None);
    }
    let user = match state.users.get(&session.sub) {
        Some(u) => u,
        None => match state.store.user(&session.sub).await? {
            Some(u) => state.users.put(u),
            None => return Ok(None),
        },
    };
    if !user.active {
        return Ok(None);
    }
    Ok(Some(Authed { user, session }))
}
