//! Pushed Authorization Requests (RFC 9126): `/api/login` posts the authorization parameters
//! with the client authentication to the IdP's PAR endpoint and sends the browser to the
//! authorization endpoint with only `client_id` and the `request_uri` it got back. The
//! parameters then never pass through the browser, and the IdP knows they came from us.

use portcullis_core::config::{OidcConfig, ParMode};
use portcullis_core::oidc::par::{ParError, PushedRequest, parse_par_response};
use portcullis_core::oidc::token_request;

use super::Metadata;
use super::client::{IdpCall, IdpError, IdpHttp};
use super::client_auth::{ClientAuthError, Proof};

/// Why a push failed. Each is answered with the sign-in error page (or JSON); nothing of the
/// sign-in is kept.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// Unreachable, timeout, over-size body.
    #[error(transparent)]
    Idp(#[from] IdpError),
    /// The IdP refused, or answered something unusable.
    #[error(transparent)]
    Answer(#[from] ParError),
    #[error(transparent)]
    ClientAuth(#[from] ClientAuthError),
}

/// The PAR endpoint to use for this sign-in, if any: `auto` uses it when advertised, and so
/// does `required` (the loader refuses an IdP without one); `off` never.
pub fn endpoint(cfg: &OidcConfig, meta: &Metadata) -> Option<url::Url> {
    match cfg.pushed_authorization_requests {
        ParMode::Off => None,
        ParMode::Auto | ParMode::Required => meta.pushed_authorization_request_endpoint.clone(),
    }
}

/// Push `params` (the authorization request's, see `core::oidc::authorize`) once; no retry:
/// the person can start again.
pub async fn push(
    http: &IdpHttp,
    endpoint: &url::Url,
    cfg: &OidcConfig,
    issuer: &str,
    params: Vec<(String, String)>,
    now: i64,
) -> Result<PushedRequest, PushError> {
    // RFC 9126 §2: the issuer is the recommended audience of a client assertion here (the
    // IdP must also accept its token or PAR endpoint URL).
    let proof = Proof::new(cfg, issuer, now)?;
    let req = token_request::pushed_authorization(&proof.credentials(cfg), params);
    let r = http
        .post_form(
            endpoint,
            &req.form_pairs(),
            req.authorization.as_deref(),
            IdpCall::Par,
        )
        .await?;
    Ok(parse_par_response(r.status, &r.body)?)
}
