//! `POST /api/backchannel-logout` (OpenID Back-Channel Logout 1.0, R-BCL): the IdP says a
//! session (or everything of a user) ended. The sessions end on every replica (the change feed
//! carries each revocation) and the user is marked deactivated by the IdP until their next
//! successful sign-in or an admin re-enables them (seed 000's "User deactivated after IdP
//! logout"). No cookie, CSRF token or DPoP proof is involved: the signed logout token is the
//! only credential.

use std::net::SocketAddr;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis_core::oidc::logout_token::{
    LogoutExpectations, MAX_LOGOUT_TOKEN, claimed_issuer, logout_token_from_form,
    validate_logout_token,
};
use serde_json::json;

use crate::audit;
use crate::metrics::Bcl;
use crate::state::AppState;

/// R-BCL request handling 1: the whole body (form-encoded token plus any other parameters).
pub const MAX_BODY: usize = MAX_LOGOUT_TOKEN + 1024;
/// Remembered `(iss, jti)` pairs at most (the store refuses beyond: 400, logged).
const MAX_REMEMBERED_JTIS: i64 = 100_000;

/// The BCL §2.8 answers: 200 with `Cache-Control: no-store`, or 400 with a JSON error.
fn answer(status: StatusCode, description: Option<&str>) -> Response {
    let mut resp = match description {
        None => status.into_response(),
        Some(d) => (
            status,
            Json(json!({"error": "invalid_request", "error_description": d})),
        )
            .into_response(),
    };
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// 400, audited (back-channel requests are rate limited per address, so rows stay bounded).
fn refused(
    state: &AppState,
    ip: std::net::IpAddr,
    why: &str,
    detail: &dyn std::fmt::Display,
) -> Response {
    state.metrics.backchannel_logout(Bcl::Refused);
    state.audit.record(
        state.now(),
        audit::Entry {
            action: "auth.backchannel_logout",
            outcome: "refused",
            actor: None,
            subject: None,
            ip: Some(ip),
            detail: Some(format!("{why}: {detail}")),
        },
    );
    answer(StatusCode::BAD_REQUEST, Some(why))
}

/// OpenID Connect Back-Channel Logout: the identity provider ends sessions and deactivates
/// the user.
#[utoipa::path(
    post,
    path = "/api/backchannel-logout",
    tag = "session",
    summary = "Back-channel logout from the identity provider",
    description = "OpenID Connect Back-Channel Logout: ends the sessions the logout token names on every replica and marks the user signed out by the identity provider until their next sign-in.",
    request_body(content = String, description = "`logout_token=<JWT>`", content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Done (`Cache-Control: no-store`)"),
        (status = 400, description = "An invalid request or logout token", body = crate::routes::admin::ErrorBody),
        (status = 429, description = "Too many requests from this address", body = crate::routes::admin::ErrorBody),
    )
)]
pub async fn backchannel_logout(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let now = state.now();
    // R-BCL request handling 3: a cap per source address (60 per minute by default).
    if let Err(retry) = state.bcl_limiter.check(peer.ip(), now) {
        state.metrics.backchannel_logout(Bcl::RateLimited);
        let mut resp = answer(StatusCode::TOO_MANY_REQUESTS, Some("too many requests"));
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(retry));
        return resp;
    }
    // R-BCL request handling 1: form-encoded only, bounded.
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !form {
        return refused(
            &state,
            peer.ip(),
            "the request must be application/x-www-form-urlencoded",
            &"content type",
        );
    }
    if body.len() > MAX_BODY {
        return refused(&state, peer.ip(), "the request is too large", &"body size");
    }
    let token = match logout_token_from_form(&body) {
        Ok(t) => t,
        Err(e) => return refused(&state, peer.ip(), e.description(), &e),
    };
    // With several IdPs the token's (unverified) issuer picks whose keys judge it; the
    // validation below then requires exactly that issuer.
    let idp = if state.idps.several() {
        claimed_issuer(&token).and_then(|iss| state.idps.by_issuer(&iss))
    } else {
        Some(state.idps.primary())
    };
    let Some(idp) = idp else {
        return refused(
            &state,
            peer.ip(),
            "the logout token's issuer is not a configured identity provider",
            &"unknown issuer",
        );
    };
    let provider = match idp.ready_provider() {
        Ok(p) => p,
        Err(e) => {
            return refused(
                &state,
                peer.ip(),
                "the identity provider is not loaded yet",
                &e,
            );
        }
    };
    let cfg = &idp.oidc;
    let exp = LogoutExpectations {
        issuer: &provider.metadata.issuer,
        client_id: &cfg.client_id,
        allowed_algs: &cfg.allowed_algs,
        require_typ: false,
        now,
    };
    let claims = match provider
        .verify_with_refetch(&idp.http, |jwks| validate_logout_token(&token, jwks, &exp))
        .await
    {
        Ok(c) => c,
        Err(e) => return refused(&state, peer.ip(), e.description(), &e),
    };
    // R-BCL step 8: (iss, jti) once. The key is a digest, so stored rows stay small.
    let key = format!(
        "bcl:{}",
        URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            format!("{}\n{}", claims.iss, claims.jti).as_bytes(),
        ))
    );
    match state
        .store
        .proofs
        .remember_proof(&key, now + claims.replay_ttl(now), now, MAX_REMEMBERED_JTIS)
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            return refused(
                &state,
                peer.ip(),
                "the logout token was already used",
                &"jti replay",
            );
        }
        Err(e) => {
            tracing::error!(error = %e, "back-channel logout failed: replay cache");
            state.metrics.backchannel_logout(Bcl::Error);
            return answer(StatusCode::BAD_REQUEST, Some("logout failed"));
        }
    }
    let outcome = match state
        .store
        .sessions
        .backchannel_logout(
            &claims.iss,
            claims.sub.as_deref(),
            claims.sid.as_deref(),
            claims.iat,
            now,
        )
        .await
    {
        Ok(o) => o,
        Err(e) => {
            // A store outage is a failed logout (BCL §2.8): the IdP may retry.
            tracing::error!(error = %e, "back-channel logout failed: store");
            state.metrics.backchannel_logout(Bcl::Error);
            return answer(StatusCode::BAD_REQUEST, Some("logout failed"));
        }
    };
    // This replica at once; the others through the change feed.
    for (sid, expires_at) in &outcome.revoked {
        state.views.revoked.revoke(sid, *expires_at, now);
    }
    if let Some(user) = &outcome.deactivated_user {
        state.views.users.evict(user);
    }
    state.metrics.backchannel_logout(Bcl::Ok);
    state.audit.record(
        now,
        audit::Entry {
            action: "auth.backchannel_logout",
            outcome: "ok",
            actor: None,
            subject: outcome.deactivated_user.as_deref(),
            ip: Some(peer.ip()),
            detail: Some(format!(
                "{} session(s) ended{}",
                outcome.revoked.len(),
                if outcome.deactivated_user.is_some() {
                    ", user deactivated by the IdP"
                } else {
                    ""
                }
            )),
        },
    );
    answer(StatusCode::OK, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_no_store() {
        let r = answer(StatusCode::OK, None);
        assert_eq!(r.headers()[header::CACHE_CONTROL], "no-store");
        let r = answer(StatusCode::BAD_REQUEST, Some("x"));
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert_eq!(r.headers()[header::CACHE_CONTROL], "no-store");
    }
}
