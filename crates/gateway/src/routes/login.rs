//! `GET /api/login`: start an Authorization Code + PKCE sign-in (R-AZ).
//!
//! Anyone can call this without a cookie, and each call stores a transaction for 10 minutes,
//! so it is bounded three ways: per client address (a rate limit), per browser (R-AZ-3), and
//! in all (the store refuses beyond a total, answered 503).

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis_core::oidc::authorize::{AuthorizationRequest, authorization_url};
use portcullis_core::oidc::pkce::{pkce_challenge, random_token};
use portcullis_core::redirect::validate_return_to;
use portcullis_store::{LoginTx, TxLimits};

use super::{no_store, set_cookie};
use crate::error::WebError;
use crate::state::AppState;

/// Login transaction lifetime (R-AZ-3) and the tx cookie's Max-Age (R-AZ-4).
pub const TX_TTL: i64 = 600;
/// Pending sign-ins kept per browser (R-AZ-3) and in all.
pub const TX_LIMITS: TxLimits = TxLimits {
    per_browser: 5,
    total: 10_000,
};
/// Longest return URL kept with a transaction; a longer `rd` is ignored (rows stay small).
pub const MAX_RETURN_TO: usize = 2048;

/// What binds a transaction to the browser: a keyed hash of its tx cookie (R-AZ-4; keyed with
/// an HKDF subkey so a leaked row cannot be matched against cookies offline).
pub fn binding_hash(state: &AppState, cookie: &str) -> String {
    URL_SAFE_NO_PAD.encode(aws_lc_rs::hmac::sign(
        state.sessions.keys().tx_binding(),
        cookie.as_bytes(),
    ))
}

/// The `rd` / `return_to` parameter, only if present exactly once.
fn requested_target(query: Option<&str>) -> Option<String> {
    let q = query?;
    let vals: Vec<String> = url::form_urlencoded::parse(q.as_bytes())
        .filter(|(k, _)| k == "rd" || k == "return_to")
        .map(|(_, v)| v.into_owned())
        .collect();
    (vals.len() == 1).then(|| vals.into_iter().next()).flatten()
}

fn random() -> Result<String, WebError> {
    random_token().map_err(|e| WebError::Internal(e.to_string()))
}

pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    RawQuery(query): RawQuery,
) -> Result<Response, WebError> {
    let provider = state.ready_provider()?;
    let now = state.now();
    state
        .login_limiter
        .check(peer.ip(), now)
        .map_err(|retry| WebError::RateLimited("sign-in starts", retry))?;
    let meta = &provider.metadata;
    let cfg = &state.config.oidc;
    let return_to = requested_target(query.as_deref())
        .filter(|t| t.len() <= MAX_RETURN_TO)
        .and_then(|t| validate_return_to(&t, &state.config.public_url))
        .map(|u| u.to_string())
        .unwrap_or_else(|| state.config.public_url.to_string());

    // Always a fresh tx cookie: a value the client (or a sibling subdomain that planted it)
    // chose is never adopted.
    let tx_cookie = random()?;
    let (st, nonce, verifier) = (random()?, random()?, random()?);
    let tx = LoginTx {
        state: st.clone(),
        nonce: nonce.clone(),
        code_verifier: verifier.clone(),
        return_to,
        binding_hash: binding_hash(&state, &tx_cookie),
        issuer: meta.issuer.clone(),
        created_at: now,
        expires_at: now + TX_TTL,
        dpop_jkt: None,
    };
    state.store.login_tx.insert_login_tx(&tx, TX_LIMITS).await?;

    let request = AuthorizationRequest {
        client_id: &cfg.client_id,
        redirect_uri: cfg.redirect_url.as_str(),
        scopes: &cfg.scopes,
        state: &st,
        nonce: &nonce,
        code_challenge: &pkce_challenge(&verifier),
        custom_parameters: &cfg.custom_parameters,
    };
    let url = authorization_url(&meta.authorization_endpoint, &request);
    let mut resp = (StatusCode::FOUND, [(header::LOCATION, url.to_string())]).into_response();
    set_cookie(
        &mut resp,
        state.cookies.set(state.cookies.tx, &tx_cookie, TX_TTL),
    );
    no_store(&mut resp);
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rd_must_appear_once() {
        assert_eq!(requested_target(Some("rd=%2Fa")).as_deref(), Some("/a"));
        assert_eq!(requested_target(Some("rd=/a&rd=/b")), None);
        assert_eq!(requested_target(None), None);
    }
}
