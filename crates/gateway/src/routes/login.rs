//! `/api/login`: start an Authorization Code + PKCE sign-in (R-AZ), bound to the browser's
//! DPoP key when tier 3 is on (R-DP-B).
//!
//! Anyone can call this without a cookie, and each call stores a transaction for 10 minutes,
//! so it is bounded three ways: per client address (a rate limit), per browser (R-AZ-3), and
//! in all (the store refuses beyond a total, answered 503).
//!
//! With pushed authorization requests (RFC 9126; `idp::par`) the parameters are posted to the
//! IdP first and the browser goes to the authorization endpoint with only `client_id` and the
//! `request_uri`; a failed push answers 502 and drops the transaction.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis_core::oidc::authorize::{
    AuthorizationRequest, authorization_params, authorization_url,
};
use portcullis_core::oidc::par::{ParError, par_authorization_url};
use portcullis_core::oidc::pkce::{pkce_challenge, random_token};
use portcullis_core::redirect::validate_return_to;
use portcullis_store::{LoginTx, TxLimits};

use serde_json::json;

use super::{no_store, set_cookie};
use crate::error::WebError;
use crate::idp::Idp;
use crate::idp::par::{self, PushError};
use crate::pages;
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
    single(query, &["rd", "return_to"])
}

/// A query parameter (under any of `names`), only if present exactly once.
fn single(query: Option<&str>, names: &[&str]) -> Option<String> {
    let q = query?;
    let vals: Vec<String> = url::form_urlencoded::parse(q.as_bytes())
        .filter(|(k, _)| names.contains(&k.as_ref()))
        .map(|(_, v)| v.into_owned())
        .collect();
    (vals.len() == 1).then(|| vals.into_iter().next()).flatten()
}

/// Longest `login_hint` taken (an email address is at most 254 characters).
const MAX_LOGIN_HINT: usize = 254;

/// Which IdP a sign-in goes to.
enum Choice {
    Idp(Arc<Idp>),
    /// Several IdPs and nothing chose one: the chooser (naming the email domain no IdP
    /// takes, when that was the hint).
    Chooser {
        unknown_domain: Option<String>,
    },
}

/// `idp=<id>` picks by id; else a `login_hint` (an email address) whose domain an IdP lists;
/// else the only IdP; else the chooser.
fn choose(state: &AppState, query: Option<&str>) -> Result<Choice, WebError> {
    if let Some(id) = single(query, &["idp"]) {
        return state
            .idps
            .get(&id)
            .map(|i| Choice::Idp(i.clone()))
            .ok_or(WebError::BadRequest("unknown identity provider"));
    }
    if !state.idps.several() {
        return Ok(Choice::Idp(state.idps.primary().clone()));
    }
    let hint = login_hint(query);
    if let Some(h) = &hint
        && let Some(i) = state.idps.for_email(h)
    {
        return Ok(Choice::Idp(i.clone()));
    }
    Ok(Choice::Chooser {
        unknown_domain: hint.and_then(|h| h.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase())),
    })
}

/// The `login_hint` (OIDC Core §3.1.2.1), if short and printable; passed on to the IdP.
fn login_hint(query: Option<&str>) -> Option<String> {
    single(query, &["login_hint"])
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty() && h.len() <= MAX_LOGIN_HINT && !h.chars().any(char::is_control))
}

/// The chooser page for `query`'s return target.
fn chooser(state: &AppState, query: Option<&str>, unknown_domain: Option<&str>) -> Response {
    let entries: Vec<pages::ChooserEntry<'_>> = state
        .idps
        .iter()
        .map(|i| pages::ChooserEntry {
            id: &i.label.id,
            name: &i.label.name,
            available: i.provider().is_ok(),
        })
        .collect();
    let rd = requested_target(query).filter(|t| t.len() <= MAX_RETURN_TO);
    let email_field = state.idps.iter().any(|i| !i.label.email_domains.is_empty());
    let mut resp = Html(pages::chooser_page(
        &entries,
        rd.as_deref(),
        email_field,
        unknown_domain,
    ))
    .into_response();
    no_store(&mut resp);
    resp
}

fn random() -> Result<String, WebError> {
    random_token().map_err(|e| WebError::Internal(e.to_string()))
}

/// `GET /api/login`: with DPoP on, the small sign-in page whose script binds the sign-in to
/// this browser's key (then `POST /api/login`); with DPoP off, straight to the IdP.
#[utoipa::path(
    get,
    path = "/api/login",
    tag = "session",
    summary = "Start signing in (browsers)",
    description = "With DPoP on, the sign-in page: its script makes or loads this browser's key and continues with `POST /api/login`. With DPoP off, a redirect to the identity provider.",
    params(("rd" = Option<String>, Query, description = "Where to return after signing in (a path on this site)")),
    responses(
        (status = 200, description = "With DPoP on: the sign-in page, whose script continues with `POST /api/login`", content_type = "text/html"),
        (status = 302, description = "With DPoP off: to the identity provider"),
        (status = 502, description = "With pushed authorization requests: the identity provider refused or could not take the pushed request", body = crate::routes::admin::ErrorBody),
        (status = 503, description = "The identity provider's configuration is not loaded yet", body = crate::routes::admin::ErrorBody),
    )
)]
pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    RawQuery(query): RawQuery,
) -> Result<Response, WebError> {
    let idp = match choose(&state, query.as_deref())? {
        Choice::Idp(i) => i,
        Choice::Chooser { unknown_domain } => {
            return Ok(chooser(&state, query.as_deref(), unknown_domain.as_deref()));
        }
    };
    if state.dpop.is_some() {
        // Not ready: say so here rather than after the script ran.
        idp.ready_provider()?;
        let mut resp = Html(pages::sign_in_page()).into_response();
        pages::allow_own_scripts(&mut resp);
        no_store(&mut resp);
        return Ok(resp);
    }
    let (url, tx_cookie) = begin(&state, &idp, peer, query.as_deref(), None).await?;
    let mut resp = (StatusCode::FOUND, [(header::LOCATION, url.to_string())]).into_response();
    set_cookie(&mut resp, tx_cookie);
    no_store(&mut resp);
    Ok(resp)
}

/// `POST /api/login` (SECURITY.md §0.2): start a sign-in bound to the key that signed the
/// DPoP proof (R-DP-B); answers `{"authorization_url": …}` and sets the tx cookie.
#[utoipa::path(
    post,
    path = "/api/login",
    tag = "session",
    summary = "Start signing in with a DPoP proof",
    description = "Answers `{\"authorization_url\": …}` and sets the sign-in cookie; the session will be bound to the key that signed the proof. `rd` must be a path on this site.",
    params(("rd" = Option<String>, Query, description = "Where to return after signing in (a path on this site)")),
    responses(
        (status = 200, description = "`{authorization_url}`: go there to sign in; the sign-in is bound to the key of the DPoP proof", content_type = "application/json"),
        (status = 401, description = "No valid DPoP proof (while DPoP is on)", body = crate::routes::admin::ErrorBody),
        (status = 403, description = "Started from another site", body = crate::routes::admin::ErrorBody),
        (status = 429, description = "Too many sign-ins started from this address", body = crate::routes::admin::ErrorBody),
        (status = 502, description = "With pushed authorization requests: the identity provider refused or could not take the pushed request", body = crate::routes::admin::ErrorBody),
    ),
    security((), ("dpop" = []))
)]
pub async fn start(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    RawQuery(query): RawQuery,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    // Only our own pages (or a configured frontend origin) start sign-ins by script.
    if let Some(o) = headers.get(header::ORIGIN)
        && o.as_bytes() != state.public_origin.as_bytes()
        && !crate::cors::is_extra_origin(&state, o.as_bytes())
    {
        return Err(WebError::Csrf("sign-in started from another origin"));
    }
    let idp = match choose(&state, query.as_deref())? {
        Choice::Idp(i) => i,
        Choice::Chooser { .. } => {
            return Err(WebError::BadRequest(
                "several identity providers: choose one with idp=<id> (GET /api/login shows them)",
            ));
        }
    };
    let jkt = match &state.dpop {
        Some(guard) => {
            idp.ready_provider()?;
            let now = state.now();
            state
                .login_limiter
                .check(peer.ip(), now)
                .map_err(|retry| WebError::RateLimited("sign-in starts", retry))?;
            let proof = guard.verify(&method, &uri, &headers, None, now).await?;
            Some(proof.jkt)
        }
        None => None,
    };
    let (url, tx_cookie) = begin(&state, &idp, peer, query.as_deref(), jkt).await?;
    let mut resp = Json(json!({ "authorization_url": url.as_str() })).into_response();
    set_cookie(&mut resp, tx_cookie);
    no_store(&mut resp);
    Ok(resp)
}

/// Store a new transaction and build the authorization URL; returns it with the tx cookie.
async fn begin(
    state: &AppState,
    idp: &Idp,
    peer: SocketAddr,
    query: Option<&str>,
    dpop_jkt: Option<String>,
) -> Result<(url::Url, String), WebError> {
    let provider = idp.ready_provider()?;
    let now = state.now();
    // With DPoP the POST handler counted this start before checking the proof.
    if dpop_jkt.is_none() {
        state
            .login_limiter
            .check(peer.ip(), now)
            .map_err(|retry| WebError::RateLimited("sign-in starts", retry))?;
    }
    let meta = &provider.metadata;
    let cfg = &idp.oidc;
    let return_to = requested_target(query)
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
        binding_hash: binding_hash(state, &tx_cookie),
        issuer: meta.issuer.clone(),
        created_at: now,
        expires_at: now + TX_TTL,
        dpop_jkt,
    };
    state.store.login_tx.insert_login_tx(&tx, TX_LIMITS).await?;

    // A login_hint goes on to the IdP (it pre-fills the account); the configured
    // parameters are copied only then.
    let hinted;
    let custom_parameters = match login_hint(query) {
        Some(h) if !cfg.custom_parameters.contains_key("login_hint") => {
            let mut p = cfg.custom_parameters.clone();
            p.insert("login_hint".into(), h);
            hinted = p;
            &hinted
        }
        _ => &cfg.custom_parameters,
    };
    let request = AuthorizationRequest {
        client_id: &cfg.client_id,
        redirect_uri: cfg.redirect_url.as_str(),
        scopes: &cfg.scopes,
        state: &st,
        nonce: &nonce,
        code_challenge: &pkce_challenge(&verifier),
        custom_parameters,
    };
    let url = match par::endpoint(cfg, meta) {
        None => authorization_url(&meta.authorization_endpoint, &request),
        Some(endpoint) => {
            let pushed = par::push(
                &idp.http,
                &endpoint,
                cfg,
                &meta.issuer,
                authorization_params(&request),
                now,
            )
            .await;
            match pushed {
                Ok(p) => par_authorization_url(
                    &meta.authorization_endpoint,
                    &cfg.client_id,
                    &p.request_uri,
                ),
                Err(e) => {
                    // Nothing of this sign-in may outlive it: drop the transaction (no cookie
                    // is set either, the error answer carries none).
                    if let Err(del) = state.store.login_tx.take_login_tx(&st, now).await {
                        tracing::warn!(error = %del, "could not drop the sign-in transaction of a failed pushed request; it expires by itself");
                    }
                    return Err(push_error(e));
                }
            }
        }
    };
    Ok((url, state.cookies.set(state.cookies.tx, &tx_cookie, TX_TTL)))
}

/// The answer to a failed push: the IdP refused (its OAuth error is logged) or could not be
/// used; our own signing failure is internal.
fn push_error(e: PushError) -> WebError {
    match e {
        PushError::Answer(ParError::Refused { .. }) => WebError::IdpRefused(e.to_string()),
        PushError::Answer(ParError::Invalid { .. }) | PushError::Idp(_) => {
            WebError::IdpUnavailable(e.to_string())
        }
        PushError::ClientAuth(e) => WebError::Internal(e.to_string()),
    }
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
