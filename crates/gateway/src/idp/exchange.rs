//! The back-channel calls of a sign-in: code exchange (R-CB-6/7) and userinfo (R-UI-1/2).

use portcullis_core::config::OidcConfig;
use portcullis_core::jose::json::parse_strict_object;
use portcullis_core::oidc::refresh::{RefreshFailure, RefreshedTokens, classify_refresh_response};
use portcullis_core::oidc::token_request;
use serde_json::Value;

use super::client::{IdpCall, IdpError, IdpHttp};
use super::client_auth::{ClientAuthError, Proof};

/// Tokens from a successful exchange. Never logged, never sent to the browser.
pub struct TokenSet {
    pub access_token: String,
    pub id_token: String,
    /// Offline access: kept (encrypted) with the session when offline access is on.
    pub refresh_token: Option<String>,
}

impl std::fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSet(***)")
    }
}

/// Why an exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    /// The IdP refused (OAuth error such as `invalid_grant`) or the answer broke a rule → 401.
    #[error("token endpoint refused: {0}")]
    Refused(String),
    /// Unreachable, timeout, over-size, non-JSON → 502.
    #[error(transparent)]
    Idp(#[from] IdpError),
    /// The client assertion could not be made (our own failure) → 500.
    #[error(transparent)]
    ClientAuth(#[from] ClientAuthError),
}

/// Exchange `code` (Core §3.1.3.1): one attempt, never retried with the same code.
pub async fn exchange_code(
    http: &IdpHttp,
    token_endpoint: &url::Url,
    cfg: &OidcConfig,
    code: &str,
    code_verifier: &str,
    now: i64,
) -> Result<TokenSet, ExchangeError> {
    // The request itself (form, client authentication) is pure protocol: core builds it.
    let proof = Proof::new(cfg, token_endpoint.as_str(), now)?;
    let req = token_request::authorization_code(
        &proof.credentials(cfg),
        code,
        cfg.redirect_url.as_str(),
        code_verifier,
    );
    let r = http
        .post_form(
            token_endpoint,
            &req.form_pairs(),
            req.authorization.as_deref(),
            IdpCall::Token,
        )
        .await?;
    let body = parse_strict_object(&r.body).map_err(|e| IdpError::Invalid {
        url: token_endpoint.to_string(),
        reason: format!(
            "token response is not a JSON object ({e}; HTTP {})",
            r.status
        ),
    })?;
    if r.status != 200 {
        let err = body
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or("unknown_error");
        return Err(ExchangeError::Refused(format!("HTTP {}: {err}", r.status)));
    }
    let s = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_string);
    if !s("token_type").is_some_and(|t| t.eq_ignore_ascii_case("bearer")) {
        return Err(ExchangeError::Refused("token_type is not Bearer".into()));
    }
    match (s("access_token"), s("id_token")) {
        (Some(access_token), Some(id_token)) => Ok(TokenSet {
            access_token,
            id_token,
            refresh_token: s("refresh_token").filter(|t| !t.is_empty()),
        }),
        _ => Err(ExchangeError::Refused(
            "access_token or id_token missing".into(),
        )),
    }
}

/// Offline access: one refresh-token grant (RFC 6749 §6) with the same client authentication
/// as the code exchange. Transport failures are transient; what the answer means is decided
/// by core ([`classify_refresh_response`]).
pub async fn refresh_grant(
    http: &IdpHttp,
    token_endpoint: &url::Url,
    cfg: &OidcConfig,
    refresh_token: &str,
    now: i64,
) -> Result<RefreshedTokens, RefreshFailure> {
    // Our own failure, not the IdP's answer: retried at the next interval.
    let proof = Proof::new(cfg, token_endpoint.as_str(), now)
        .map_err(|e| RefreshFailure::Transient(e.to_string()))?;
    // No `scope`: the IdP keeps the originally granted one (RFC 6749 §6).
    let req = token_request::refresh_token(&proof.credentials(cfg), refresh_token, None);
    let r = http
        .post_form(
            token_endpoint,
            &req.form_pairs(),
            req.authorization.as_deref(),
            IdpCall::Refresh,
        )
        .await
        .map_err(|e| RefreshFailure::Transient(e.to_string()))?;
    classify_refresh_response(r.status, &r.body)
}

/// The userinfo answer, before validation.
pub enum UserInfoBody {
    Json(bytes::Bytes),
    Jwt(String),
}

/// Call userinfo with the access token in the header, never the query (R-UI-1).
pub async fn fetch_userinfo(
    http: &IdpHttp,
    url: &url::Url,
    access_token: &str,
) -> Result<UserInfoBody, ExchangeError> {
    let r = http.get(url, Some(access_token), IdpCall::Userinfo).await?;
    if r.status == 401 || r.status == 403 {
        return Err(ExchangeError::Refused(format!(
            "userinfo answered HTTP {}",
            r.status
        )));
    }
    if r.status != 200 {
        return Err(IdpError::Status {
            url: url.to_string(),
            status: r.status,
        }
        .into());
    }
    match r.content_type.as_str() {
        "application/jwt" => Ok(UserInfoBody::Jwt(
            String::from_utf8(r.body.to_vec())
                .map_err(|_| ExchangeError::Refused("userinfo JWT is not UTF-8".into()))?,
        )),
        _ => Ok(UserInfoBody::Json(r.body)),
    }
}
