//! The redirect URI (`/api/callback`, or the path of the configured redirect URL such as seed
//! 001's `/loginCallback`): R-CB, then R-IDT and R-UI, then the session. Every refusal stores
//! nothing and sets no session cookie.

use std::sync::Arc;

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Response};
use portcullis_core::claims::map_claims;
use portcullis_core::jose::JsonError;
use portcullis_core::oidc::id_token::{IdTokenClaims, IdTokenExpectations, validate_id_token};
use portcullis_core::oidc::userinfo::{UserInfoError, parse_userinfo_json, verify_userinfo_jwt};
use portcullis_store::LoginTx;
use serde_json::{Map, Value};
use subtle::ConstantTimeEq;

use super::login::binding_hash;
use super::{no_store, set_cookie};
use crate::error::WebError;
use crate::idp::exchange::{ExchangeError, UserInfoBody, exchange_code, fetch_userinfo};
use crate::idp::{Idp, Provider};
use crate::metrics::SignIn;
use crate::pages;
use crate::sessions::{Kept, Offline};
use crate::state::AppState;
use crate::{audit, auth};

/// R-CB-1 limits.
const MAX_STATE: usize = 512;
const MAX_CODE: usize = 4096;

/// The parameters of an authorization response, each present at most once.
#[derive(Default, Debug)]
struct Params {
    state: Option<String>,
    code: Option<String>,
    iss: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// R-CB-1: duplicates of state/code/iss/error and over-long values are refused.
fn parse_params(query: Option<&str>) -> Result<Params, WebError> {
    let mut p = Params::default();
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        let slot = match k.as_ref() {
            "state" => &mut p.state,
            "code" => &mut p.code,
            "iss" => &mut p.iss,
            "error" => &mut p.error,
            "error_description" => &mut p.error_description,
            _ => continue,
        };
        if slot.is_some() {
            return Err(WebError::BadRequest(
                "duplicate parameter in authorization response",
            ));
        }
        *slot = Some(v.into_owned());
    }
    if p.state.as_ref().is_some_and(|s| s.len() > MAX_STATE)
        || p.code.as_ref().is_some_and(|c| c.len() > MAX_CODE)
    {
        return Err(WebError::BadRequest("state or code too long"));
    }
    Ok(p)
}

pub async fn callback(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    uri: Uri,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let mut bound = false;
    // Who a refusal is about, when known (an administrator-disabled person).
    let mut subject: Option<String> = None;
    let ip = peer.ip();
    let outcome = complete(
        &state,
        uri.path(),
        &headers,
        query.as_deref(),
        &mut bound,
        &mut subject,
        ip,
    )
    .await;
    // Refusals are audited once this browser's own transaction was consumed (so only as often
    // as sign-ins can be started, which is rate limited); stray callbacks are only logged.
    let refused = |detail: String| {
        if bound {
            state.audit.record(
                state.now(),
                audit::Entry {
                    action: "auth.failure",
                    outcome: "refused",
                    actor: None,
                    subject: subject.as_deref(),
                    ip: Some(ip),
                    detail: Some(detail),
                },
            );
        }
    };
    state.metrics.sign_in(match &outcome {
        Ok(_) => SignIn::Ok,
        Err(Outcome::Web(e)) if e.status().is_server_error() => SignIn::Error,
        Err(Outcome::Web(_)) => SignIn::Refused,
        Err(Outcome::IdpError(_)) => SignIn::IdpError,
    });
    let mut resp = match outcome {
        Ok(r) => r,
        Err(Outcome::Web(e)) => {
            tracing::warn!(event = "auth.failure", reason = %e, "sign-in refused");
            refused(e.to_string());
            e.into_response()
        }
        Err(Outcome::IdpError(page)) => {
            refused("the IdP returned an error".into());
            (StatusCode::UNAUTHORIZED, Html(page)).into_response()
        }
    };
    // Once this browser's transaction is consumed, its tx cookie has done its job, whatever
    // the outcome (R-CK-2). A callback for another state (a stale tab, a forged link) leaves
    // it: it may belong to a newer sign-in still in progress.
    if bound {
        set_cookie(&mut resp, state.cookies.clear(state.cookies.tx));
    }
    no_store(&mut resp);
    resp
}

enum Outcome {
    Web(WebError),
    /// R-CB-4: the IdP answered `error=` for a valid state.
    IdpError(String),
}

impl From<WebError> for Outcome {
    fn from(e: WebError) -> Self {
        Outcome::Web(e)
    }
}

impl From<ExchangeError> for WebError {
    fn from(e: ExchangeError) -> Self {
        match e {
            ExchangeError::Refused(m) => WebError::SignInFailed(m),
            ExchangeError::Idp(e) => WebError::IdpUnavailable(e.to_string()),
            ExchangeError::ClientAuth(e) => WebError::Internal(e.to_string()),
        }
    }
}

async fn complete(
    state: &AppState,
    path: &str,
    headers: &HeaderMap,
    query: Option<&str>,
    bound: &mut bool,
    subject: &mut Option<String>,
    ip: std::net::IpAddr,
) -> Result<Response, Outcome> {
    let params = parse_params(query)?;
    // Every IdP answers on its own redirect URI: the path says which one this response is
    // from (the router only sends configured callback paths here).
    let idp = state
        .idps
        .by_callback_path(path)
        .ok_or(WebError::BadRequest(
            "no identity provider answers on this path",
        ))?;
    let provider = idp.ready_provider()?;
    let st = params
        .state
        .as_deref()
        .ok_or(WebError::BadRequest("missing state"))?;
    let now = state.now();
    // R-CB-2: consume before anything else, so a replay finds nothing.
    let tx = state
        .store
        .login_tx
        .take_login_tx(st, now)
        .await
        .map_err(WebError::from)?;
    let tx = tx.ok_or(WebError::BadRequest("unknown, expired or consumed state"))?;
    check_binding(state, headers, &tx)?;
    *bound = true;
    // Mix-up defence (RFC 9700 §4.4.2): a response for a sign-in started with another IdP
    // arriving on this IdP's redirect URI is refused before its code goes anywhere.
    if !idp.has_issuer(&tx.issuer) {
        return Err(
            WebError::BadRequest("the sign-in was started with another identity provider").into(),
        );
    }
    // R-DP-B: with DPoP on, no unbound session may exist; a transaction started without a
    // proof (e.g. while DPoP was off) cannot finish.
    if state.dpop.is_some() && tx.dpop_jkt.is_none() {
        return Err(WebError::BadRequest("sign-in was not started with a DPoP proof").into());
    }
    if let Some(error) = &params.error {
        tracing::warn!(event = "auth.failure", idp_error = %error, "the IdP returned an error");
        return Err(Outcome::IdpError(pages::idp_error_page(
            error,
            params.error_description.as_deref(),
        )));
    }
    check_iss(&params, &tx, &provider)?;
    let code = params
        .code
        .as_deref()
        .ok_or(WebError::BadRequest("missing code"))?;

    let cfg = &idp.oidc;
    let meta = &provider.metadata;
    let tokens = exchange_code(
        &idp.http,
        &meta.token_endpoint,
        cfg,
        code,
        &tx.code_verifier,
        now,
    )
    .await
    .map_err(WebError::from)?;
    let id = validate_with_refetch(
        idp,
        &provider,
        &tokens.id_token,
        &tokens.access_token,
        &tx,
        now,
    )
    .await?;
    let mut claims = merged_claims(
        idp,
        &provider,
        id.claims.clone(),
        &id.sub,
        &tokens.access_token,
    )
    .await?;
    // Groups that did not fit in the token: fetched, or refused, never silently partial.
    crate::idp::claim_source::resolve_groups(
        &idp.http,
        &cfg.groups_overage,
        &id.iss,
        &cfg.claim_keys.groups,
        &tokens.access_token,
        &mut claims,
    )
    .await?;
    // From the signed ID token only: userinfo is not where Google asserts the domain.
    check_hosted_domain(&cfg.allowed_hosted_domains, &id.claims)?;
    let mapped = map_claims(&id.iss, &id.sub, &claims, &cfg.claim_keys)
        .map_err(|e| WebError::SignInFailed(e.to_string()))?;
    // A person whose groups grant no role, when roles are required: refused before anything
    // is written, with a page naming the groups that would grant access.
    let roles = state
        .roles_of(&mapped.issuer, &mapped.groups)
        .map_err(WebError::NoAccess)?;

    // Everything checked: now, and only now, write (user and session in one transaction).
    let started = state
        .sessions
        .start(
            &state.store,
            &mapped,
            id.sid.clone(),
            Kept {
                id_token: Some(&tokens.id_token),
                // Offline access: the refresh token goes to the store encrypted, never to
                // the browser.
                offline: tokens
                    .refresh_token
                    .as_deref()
                    .filter(|_| cfg.offline_access)
                    .map(|rt| Offline {
                        refresh_token: rt,
                        recheck_interval: state.config.offline.recheck_interval,
                    }),
            },
            tx.dpop_jkt.clone(),
            now,
        )
        .await;
    let started = match started {
        Ok(s) => s,
        Err(e) => {
            // An administrator-disabled person (the only refusal here that names someone):
            // the audit event says who, so it shows among that user's events.
            if matches!(e, WebError::Forbidden(_))
                && let Ok(Some(u)) = state
                    .store
                    .users
                    .user_by_identity(&mapped.issuer, &mapped.subject)
                    .await
            {
                *subject = Some(u.id);
            }
            return Err(Outcome::Web(e));
        }
    };
    let user = state.views.users.put(started.user, Ok(roles), now).user;
    state.audit.record(
        now,
        audit::Entry {
            action: "auth.sign_in",
            outcome: "ok",
            actor: Some(&user.id),
            subject: Some(&user.id),
            ip: Some(ip),
            detail: None,
        },
    );

    // R-CB-9: a fresh session id, an absolute same-origin Location, no referrer.
    let mut resp = (
        StatusCode::FOUND,
        [(header::LOCATION, tx.return_to.clone())],
    )
        .into_response();
    for c in started.set_cookies {
        set_cookie(&mut resp, c);
    }
    resp.headers_mut().insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    Ok(resp)
}

/// Google Workspace: with `OIDC_ALLOWED_HOSTED_DOMAINS` set, the validated ID token's `hd`
/// claim must be one of them. The `hd` authorization parameter is only a hint to Google's
/// account chooser (anyone can edit it), so the signed claim is what counts; a token without
/// `hd` (a consumer account) is refused.
pub(crate) fn check_hosted_domain(
    allowed: &[String],
    claims: &Map<String, Value>,
) -> Result<(), WebError> {
    if allowed.is_empty() {
        return Ok(());
    }
    let hd = claims
        .get("hd")
        .and_then(Value::as_str)
        .map(str::to_ascii_lowercase);
    match hd {
        Some(d) if allowed.contains(&d) => Ok(()),
        _ => {
            tracing::warn!(event = "auth.failure", hd = ?claims.get("hd"), "hosted domain not allowed (OIDC_ALLOWED_HOSTED_DOMAINS)");
            Err(WebError::Forbidden(
                "Sign-in refused: this account does not belong to an organisation (Google Workspace domain) allowed here. Please sign in with your organisation's account.".into(),
            ))
        }
    }
}

/// R-CB-3: the tx cookie must hash to the stored binding (constant time).
fn check_binding(state: &AppState, headers: &HeaderMap, tx: &LoginTx) -> Result<(), WebError> {
    let cookie = auth::cookies(state, headers)
        .map_err(|_| WebError::BadRequest("duplicate tx cookie"))?
        .tx;
    let Some(cookie) = cookie else {
        return Err(WebError::BadRequest(
            "missing tx cookie: sign-in started in another browser",
        ));
    };
    let ok: bool = binding_hash(state, &cookie)
        .as_bytes()
        .ct_eq(tx.binding_hash.as_bytes())
        .into();
    if !ok {
        return Err(WebError::BadRequest(
            "tx cookie does not match: sign-in started in another browser",
        ));
    }
    Ok(())
}

/// R-CB-5 (RFC 9207 §2.4): `iss`, when present, equals the issuer the request went to; when the
/// IdP advertises support it must be present.
fn check_iss(params: &Params, tx: &LoginTx, provider: &Provider) -> Result<(), WebError> {
    match &params.iss {
        Some(iss) if iss != &tx.issuer => Err(WebError::BadRequest(
            "iss in the authorization response does not match",
        )),
        None if provider.metadata.iss_parameter_supported => Err(WebError::BadRequest(
            "iss missing from the authorization response",
        )),
        _ => Ok(()),
    }
}

/// R-IDT with one JWKS refetch on an unknown `kid` (Core §10.1.1).
async fn validate_with_refetch(
    idp: &Idp,
    provider: &Arc<Provider>,
    id_token: &str,
    access_token: &str,
    tx: &LoginTx,
    now: i64,
) -> Result<IdTokenClaims, WebError> {
    let cfg = &idp.oidc;
    let exp = IdTokenExpectations {
        issuer: &provider.metadata.issuer,
        client_id: &cfg.client_id,
        nonce: &tx.nonce,
        allowed_algs: &cfg.allowed_algs,
        extra_audiences: &[],
        client_audience: cfg.expected_audience.as_deref(),
        access_token: Some(access_token),
        now,
    };
    provider
        .verify_with_refetch(&idp.http, |jwks| validate_id_token(id_token, jwks, &exp))
        .await
        .map_err(|e| WebError::SignInFailed(format!("ID token rejected: {e}")))
}

/// Claims of the ID token with UserInfo's on top (R-UI); `sub` must match. Also used by the
/// offline re-check (with a refreshed ID token's claims, or none).
pub(crate) async fn merged_claims(
    idp: &Idp,
    provider: &Arc<Provider>,
    mut claims: Map<String, Value>,
    sub: &str,
    access_token: &str,
) -> Result<Map<String, Value>, WebError> {
    let Some(url) = &provider.metadata.userinfo_endpoint else {
        return Ok(claims);
    };
    let cfg = &idp.oidc;
    let info = match fetch_userinfo(&idp.http, url, access_token).await? {
        UserInfoBody::Json(body) => parse_userinfo_json(&body, sub),
        UserInfoBody::Jwt(token) => {
            let verify = |jwks: &portcullis_core::jose::Jwks| {
                verify_userinfo_jwt(
                    &token,
                    jwks,
                    &provider.metadata.issuer,
                    &cfg.client_id,
                    &cfg.allowed_algs,
                    sub,
                )
            };
            provider.verify_with_refetch(&idp.http, verify).await
        }
    }
    .map_err(|e| match e {
        // Not JSON at all: the IdP answered garbage (502, §0.3), not a claim we refuse.
        UserInfoError::Json(JsonError::Invalid) => {
            WebError::IdpUnavailable(format!("userinfo is not JSON: {e}"))
        }
        e => WebError::SignInFailed(format!("userinfo rejected: {e}")),
    })?;
    for (k, v) in info {
        // Identity and token-binding claims come from the validated ID token only.
        if !matches!(
            k.as_str(),
            "iss" | "sub" | "aud" | "azp" | "exp" | "iat" | "nbf" | "nonce" | "auth_time" | "sid"
        ) {
            claims.insert(k, v);
        }
    }
    Ok(claims)
}
