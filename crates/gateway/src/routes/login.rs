//! `GET /api/login`: start an Authorization Code + PKCE sign-in (R-AZ).

use aws_lc_rs::digest;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis_core::redirect::validate_return_to;
use portcullis_store::LoginTx;

use super::{no_store, set_cookie};
use crate::auth;
use crate::error::WebError;
use crate::state::AppState;

/// Login transaction lifetime (R-AZ-3) and the tx cookie's Max-Age (R-AZ-4).
pub const TX_TTL: i64 = 600;
/// Live transactions kept per browser (R-AZ-3).
pub const MAX_TX_PER_BROWSER: i64 = 5;

/// 32 CSPRNG bytes, base64url: 43 characters (R-AZ-2).
pub fn random_token() -> Result<String, WebError> {
    let mut b = [0u8; 32];
    aws_lc_rs::rand::fill(&mut b)
        .map_err(|_| WebError::Internal("random generator failed".into()))?;
    Ok(URL_SAFE_NO_PAD.encode(b))
}

/// BASE64URL(SHA256(ASCII(verifier))) — RFC 7636 §4.2.
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, verifier.as_bytes()))
}

/// What binds a transaction to the browser: a keyed hash of its tx cookie (R-AZ-4; keyed with
/// an HKDF subkey so a leaked row cannot be matched against cookies offline).
pub fn binding_hash(state: &AppState, cookie: &str) -> String {
    URL_SAFE_NO_PAD.encode(aws_lc_rs::hmac::sign(
        state.keys.tx_binding(),
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

/// A tx cookie we issued looks like 43 base64url characters; reuse it so several tabs can
/// sign in at once, otherwise mint a new one.
fn reusable(v: &str) -> bool {
    v.len() == 43
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

pub async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    match start(&state, &headers, query.as_deref()).await {
        Ok(r) => r,
        Err(e) => e.render(&headers),
    }
}

async fn start(
    state: &AppState,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<Response, WebError> {
    let provider = state.provider().map_err(WebError::NotReady)?;
    let meta = &provider.metadata;
    let cfg = &state.config.oidc;
    let return_to = requested_target(query)
        .and_then(|t| validate_return_to(&t, &state.config.public_url))
        .map(|u| u.to_string())
        .unwrap_or_else(|| state.config.public_url.to_string());

    let existing = auth::cookies(state, headers)
        .ok()
        .and_then(|c| c.tx)
        .filter(|v| reusable(v));
    let tx_cookie = match existing {
        Some(v) => v,
        None => random_token()?,
    };
    let (st, nonce, verifier) = (random_token()?, random_token()?, random_token()?);
    let now = portcullis_core::time::now_unix();
    let tx = LoginTx {
        state: st.clone(),
        nonce: nonce.clone(),
        code_verifier: verifier.clone(),
        return_to,
        binding_hash: binding_hash(state, &tx_cookie),
        issuer: meta.issuer.clone(),
        created_at: now,
        expires_at: now + TX_TTL,
    };
    state.store.insert_login_tx(&tx, MAX_TX_PER_BROWSER).await?;

    let mut url = meta.authorization_endpoint.clone();
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in &cfg.custom_parameters {
            q.append_pair(k, v);
        }
        q.append_pair("response_type", "code")
            .append_pair("client_id", &cfg.client_id)
            .append_pair("redirect_uri", cfg.redirect_url.as_str())
            .append_pair("scope", &cfg.scopes.join(" "))
            .append_pair("state", &st)
            .append_pair("nonce", &nonce)
            .append_pair("code_challenge", &pkce_challenge(&verifier))
            .append_pair("code_challenge_method", "S256");
    }
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

    /// RFC 7636 Appendix B vector (SECURITY.md §4.3).
    #[test]
    fn r_az_2_pkce_s256_rfc7636_vector() {
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn r_az_2_random_tokens_are_43_chars_and_distinct() {
        let (a, b) = (random_token().ok(), random_token().ok());
        assert_eq!(a.as_ref().map(String::len), Some(43));
        assert_ne!(a, b);
    }

    #[test]
    fn rd_must_appear_once() {
        assert_eq!(requested_target(Some("rd=%2Fa")).as_deref(), Some("/a"));
        assert_eq!(requested_target(Some("rd=/a&rd=/b")), None);
        assert_eq!(requested_target(None), None);
    }
}
