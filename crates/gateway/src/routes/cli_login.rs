//! Signing the command-line tool in with any IdP, ending in a freshly minted API token
//! (`tokens::mint`). The rules live in `portcullis_core::cli_login`; this is the HTTP side.
//!
//! Loopback flow (RFC 8252 + PKCE): `portcullis login --browser` opens
//! `GET /.portcullis/cli-login?redirect_uri=http://127.0.0.1:PORT/…&state&code_challenge…`;
//! the person signs in as usual if needed, sees a consent page naming the CLI and the machine,
//! and approves through `POST /api/cli/authorize` (browser session, CSRF, DPoP); the browser
//! goes to the loopback address with a one-time code, which the CLI redeems with its verifier
//! at `POST /api/cli/token`.
//!
//! Device flow (RFC 8628): `POST /api/cli/device` gives the CLI a device code and a user code;
//! the person enters the user code on the account page (`POST /api/cli/device/lookup` shows
//! what asks, `POST /api/cli/device/decide` approves or denies); the CLI polls
//! `POST /api/cli/token` and gets the token once.
//!
//! What anonymous clients can do here is bounded: device grants by a per-address rate and a
//! global cap on live grants, redemption failures by a per-address budget (429), user-code
//! guesses by a per-person budget.

use std::net::{IpAddr, SocketAddr};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use portcullis_core::cli_login::{self as rules, DeviceStatus, PollVerdict};
use portcullis_store::{CliGrant, GrantKind};
use serde_json::json;

use super::admin::ErrorBody;
use super::api_tokens::{ACCOUNT_PATH, answer, by_session, invalid, mint_failed, refuse};
use super::no_store;
use crate::auth::{Authed, MaybeAuthed};
use crate::error::WebError;
use crate::limiter::RateLimiter;
use crate::pages;
use crate::state::AppState;
use crate::tokens;

/// Where the CLI sends the browser.
pub const CONSENT_PATH: &str = "/.portcullis/cli-login";
/// Live grants (all kinds) at most: anonymous clients start device grants.
pub const MAX_LIVE_GRANTS: i64 = 10_000;
/// Device grants one address may start per minute.
pub const DEVICE_STARTS_PER_MINUTE: u32 = 10;
/// Failed redemptions (unknown code, wrong verifier, unknown device code) per address and
/// minute before 429.
pub const REDEEM_FAILURES_PER_MINUTE: u32 = 10;
/// User codes one person may look up without a match per minute (RFC 8628 §5.1).
pub const USER_CODE_MISSES_PER_MINUTE: u32 = 5;

/// The grant type of RFC 8628 §3.4.
const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// The rate limits of this module.
pub struct CliLimits {
    device_starts: RateLimiter,
    redeem_failures: RateLimiter,
    user_code_misses: RateLimiter<String>,
}

impl Default for CliLimits {
    fn default() -> Self {
        CliLimits {
            device_starts: RateLimiter::new(DEVICE_STARTS_PER_MINUTE),
            redeem_failures: RateLimiter::new(REDEEM_FAILURES_PER_MINUTE),
            user_code_misses: RateLimiter::new(USER_CODE_MISSES_PER_MINUTE),
        }
    }
}

/// The consent page (the JSON API is registered in `api.rs`).
pub fn routes() -> Router<AppState> {
    Router::new().route(CONSENT_PATH, get(consent_page))
}

/// A loopback authorization request, as the CLI sends it to the consent page and the page
/// sends it back on approval.
#[derive(Default)]
struct LoopbackRequest {
    redirect_uri: String,
    state: String,
    code_challenge: String,
    code_challenge_method: String,
    /// The machine the CLI runs on (shown to the person; part of the token's name).
    machine: String,
    expires_in_days: Option<i64>,
}

/// A request that passed every check.
struct Checked {
    redirect_uri: url::Url,
    machine: String,
    token_days: Option<i64>,
}

impl LoopbackRequest {
    fn check(&self) -> Result<Checked, rules::RequestError> {
        let redirect_uri = rules::loopback_redirect(&self.redirect_uri)?;
        rules::check_challenge(&self.code_challenge, &self.code_challenge_method)?;
        rules::check_state(&self.state)?;
        Ok(Checked {
            redirect_uri,
            machine: rules::check_machine(&self.machine)?,
            token_days: rules::check_expiry(self.expires_in_days)?,
        })
    }

    /// From the consent page's query string; a repeated parameter is refused (RFC 6749 §3.1).
    fn from_query(q: &str) -> Result<LoopbackRequest, String> {
        let mut r = LoopbackRequest::default();
        let mut seen = std::collections::HashSet::new();
        for (k, v) in url::form_urlencoded::parse(q.as_bytes()) {
            if !seen.insert(k.clone()) {
                return Err(format!("the parameter {k} is repeated"));
            }
            let v = v.into_owned();
            match k.as_ref() {
                "redirect_uri" => r.redirect_uri = v,
                "state" => r.state = v,
                "code_challenge" => r.code_challenge = v,
                "code_challenge_method" => r.code_challenge_method = v,
                "machine" => r.machine = v,
                "expires_in_days" => {
                    r.expires_in_days =
                        Some(v.parse().map_err(|_| "expires_in_days must be a number")?)
                }
                _ => {}
            }
        }
        Ok(r)
    }
}

/// `GET /.portcullis/cli-login`: the consent page. A malformed request is an error page here
/// and never a redirect (RFC 6749 §4.1.2.1: an unchecked redirect URI is not followed).
pub async fn consent_page(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    auth: Result<MaybeAuthed, WebError>,
) -> Response {
    let query = query.unwrap_or_default();
    let bad = |why: String| {
        let mut r = (
            StatusCode::BAD_REQUEST,
            Html(pages::error_page(
                StatusCode::BAD_REQUEST,
                &format!("This command-line sign-in request is not valid: {why}. Run `portcullis login --browser` again."),
            )),
        )
            .into_response();
        no_store(&mut r);
        r
    };
    let req = match LoopbackRequest::from_query(&query) {
        Ok(r) => r,
        Err(why) => return bad(why),
    };
    let checked = match req.check() {
        Ok(c) => c,
        Err(e) => return bad(e.to_string()),
    };
    let a = match signed_in_page(&state, auth, &format!("{CONSENT_PATH}?{query}")) {
        Ok(a) => a,
        Err(r) => return *r,
    };
    let mut r = Html(pages::cli_consent_page(&pages::CliConsent {
        who: display_name(&a),
        machine: &checked.machine,
        token_name: &rules::token_name(&checked.machine),
        token_days: checked.token_days,
        redirect_uri: checked.redirect_uri.as_str(),
        state: &req.state,
        code_challenge: &req.code_challenge,
    }))
    .into_response();
    pages::allow_own_scripts(&mut r);
    no_store(&mut r);
    r
}

/// The signed-in browser person for a page, or the response to send instead: a sign-in
/// redirect back to `return_to`, or a refusal for an API token.
pub(crate) fn signed_in_page(
    state: &AppState,
    auth: Result<MaybeAuthed, WebError>,
    return_to: &str,
) -> Result<Authed, Box<Response>> {
    match auth {
        Ok(MaybeAuthed(Some(a))) if a.api_token().is_none() => Ok(a),
        Ok(MaybeAuthed(Some(_))) => Err(Box::new(
            WebError::Forbidden("This page needs a browser sign-in, not an API token.".into())
                .render_as(false),
        )),
        Ok(MaybeAuthed(None)) => {
            let rd: String = url::form_urlencoded::byte_serialize(return_to.as_bytes()).collect();
            let mut r = (
                StatusCode::FOUND,
                [(
                    header::LOCATION,
                    format!("{}/api/login?rd={rd}", state.public_origin),
                )],
            )
                .into_response();
            no_store(&mut r);
            Err(Box::new(r))
        }
        Err(e) => Err(Box::new(e.render_as(false))),
    }
}

/// How a page names the signed-in person.
pub(crate) fn display_name(a: &Authed) -> &str {
    let p = &a.user.profile;
    p.email
        .as_deref()
        .or(p.name.as_deref())
        .unwrap_or(&p.user_id)
}

/// The body of `POST /api/cli/authorize`: the loopback request as the consent page got it,
/// and the person's answer.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthorizeDecision {
    redirect_uri: String,
    state: String,
    code_challenge: String,
    code_challenge_method: String,
    machine: String,
    #[serde(default)]
    expires_in_days: Option<i64>,
    approve: bool,
}

/// `POST /api/cli/authorize`: the consent page's answer. Approving stores a one-time code
/// bound to the person, the PKCE challenge and the redirect URI; either way the answer names
/// the loopback URL the browser goes to next.
#[utoipa::path(
    post,
    path = "/api/cli/authorize",
    tag = "cli",
    summary = "Approve or deny a command-line sign-in",
    description = "Called by the consent page at `/.portcullis/cli-login`. With `approve: true`, a one-time code (valid 60 s) is bound to the signed-in person, the PKCE S256 challenge and the loopback redirect URI; the answer's `redirect` carries it with the CLI's `state`. With `approve: false`, `redirect` carries `error=access_denied`. Only with a browser session.",
    request_body = AuthorizeDecision,
    responses(
        (status = 200, description = "`{\"redirect\": \"http://127.0.0.1:PORT/…?code=…&state=…\"}`", body = serde_json::Value),
        (status = 400, description = "A malformed request (the sentence says which part)", body = ErrorBody),
        (status = 401, description = "Not signed in, or no valid DPoP proof", body = ErrorBody),
        (status = 403, description = "No valid CSRF token, or authenticated by an API token", body = ErrorBody),
        (status = 503, description = "Too many pending command-line sign-ins", body = ErrorBody),
    ),
    security(("session" = [], "dpop" = [], "csrf" = []))
)]
pub async fn authorize(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    auth: Result<MaybeAuthed, WebError>,
    body: Bytes,
) -> Response {
    let a = match by_session(auth, true) {
        Ok(a) => a,
        Err(e) => return refuse(e),
    };
    let Ok(d) = serde_json::from_slice::<AuthorizeDecision>(&body) else {
        return invalid(
            "Send JSON: the sign-in request's fields and \"approve\": true or false.".into(),
        );
    };
    let req = LoopbackRequest {
        redirect_uri: d.redirect_uri,
        state: d.state,
        code_challenge: d.code_challenge,
        code_challenge_method: d.code_challenge_method,
        machine: d.machine,
        expires_in_days: d.expires_in_days,
    };
    let checked = match req.check() {
        Ok(c) => c,
        Err(e) => return invalid(format!("This sign-in request is not valid: {e}.")),
    };
    let now = state.now();
    let audit = |outcome: &'static str| {
        state.audit.record(
            now,
            crate::audit::Entry {
                action: "cli.authorize",
                outcome,
                actor: Some(&a.user.id),
                subject: Some(&a.user.id),
                ip: Some(peer.ip()),
                detail: Some(format!("machine={}", checked.machine)),
            },
        );
    };
    if !d.approve {
        audit("denied");
        return answer(
            StatusCode::OK,
            json!({"redirect": rules::redirect_denied(&checked.redirect_uri, &req.state)}),
        );
    }
    let code = match rules::new_secret() {
        Ok(c) => c,
        Err(e) => return refuse(WebError::Internal(e.to_string())),
    };
    let grant = CliGrant {
        id: rules::grant_id(&code),
        kind: GrantKind::Code,
        user_code: None,
        user_id: Some(a.user.id.clone()),
        status: DeviceStatus::Approved,
        machine: checked.machine.clone(),
        token_days: checked.token_days,
        code_challenge: Some(req.code_challenge.clone()),
        redirect_uri: Some(checked.redirect_uri.to_string()),
        client_ip: Some(peer.ip().to_string()),
        interval: 0,
        last_poll: None,
        created_at: now,
        expires_at: now + rules::CODE_TTL,
    };
    match state
        .store
        .cli_grants
        .insert_cli_grant(&grant, MAX_LIVE_GRANTS, now)
        .await
    {
        Ok(true) => {}
        // A 256-bit code colliding is not a thing that happens; refuse rather than loop.
        Ok(false) => return refuse(WebError::Internal("code collision".into())),
        Err(e) => return refuse(e.into()),
    }
    audit("ok");
    answer(
        StatusCode::OK,
        json!({"redirect": rules::redirect_with_code(&checked.redirect_uri, &code, &req.state)}),
    )
}

/// An OAuth error answer (RFC 6749 §5.2, RFC 8628 §3.5), never cached.
fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    answer(
        status,
        json!({"error": error, "error_description": description}),
    )
}

/// A form body's parameters; a repeated one is refused (RFC 6749 §3.2).
fn form(body: &[u8]) -> Result<std::collections::HashMap<String, String>, Box<Response>> {
    let mut out = std::collections::HashMap::new();
    for (k, v) in url::form_urlencoded::parse(body) {
        if out.insert(k.to_string(), v.into_owned()).is_some() {
            return Err(Box::new(oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                &format!("the parameter {k} is repeated"),
            )));
        }
    }
    Ok(out)
}

/// `POST /api/cli/token`: redeem a loopback code (with the PKCE verifier) or poll a device
/// grant. Form-encoded, as OAuth token requests are.
#[utoipa::path(
    post,
    path = "/api/cli/token",
    tag = "cli",
    summary = "Redeem a command-line sign-in for an API token",
    description = "Form-encoded. `grant_type=authorization_code` with `code`, `code_verifier` and `redirect_uri` (RFC 8252 loopback flow with PKCE; the code is spent by its first use), or `grant_type=urn:ietf:params:oauth:grant-type:device_code` with `device_code` (RFC 8628 polling: `authorization_pending`, `slow_down`, `access_denied`, `expired_token`). Success: `{\"access_token\": \"pcs_…\", \"token_type\": \"Bearer\", \"token_id\", \"name\", \"expires_at\"}`, a new API token of the person who approved. More than 10 failed attempts a minute from one address: 429.",
    request_body(content = String, content_type = "application/x-www-form-urlencoded", description = "grant_type and its parameters"),
    responses(
        (status = 200, description = "The new API token", body = serde_json::Value),
        (status = 400, description = "`{\"error\": \"invalid_grant\" | \"authorization_pending\" | \"slow_down\" | \"access_denied\" | \"expired_token\" | \"invalid_request\" | \"unsupported_grant_type\", \"error_description\"}`", body = ErrorBody),
        (status = 409, description = "The person already has the maximum of live tokens", body = ErrorBody),
        (status = 429, description = "Too many failed attempts from this address", body = ErrorBody),
    )
)]
pub async fn token(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: Bytes,
) -> Response {
    let now = state.now();
    let ip = peer.ip();
    if let Some(retry) = state.cli.redeem_failures.exceeded(&ip, now) {
        return refuse(WebError::RateLimited(
            "command-line sign-in attempts",
            retry,
        ));
    }
    let p = match form(&body) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let get = |k: &str| p.get(k).map(String::as_str).unwrap_or("");
    match get("grant_type") {
        "authorization_code" => {
            redeem_code(
                &state,
                ip,
                get("code"),
                get("code_verifier"),
                get("redirect_uri"),
            )
            .await
        }
        DEVICE_GRANT => poll_device(&state, ip, get("device_code")).await,
        _ => oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "grant_type must be authorization_code or urn:ietf:params:oauth:grant-type:device_code",
        ),
    }
}

/// A failed redemption: counted against the address, and the same answer for every cause
/// (unknown, spent or expired code, wrong verifier, other redirect URI).
fn redeem_failed(state: &AppState, ip: IpAddr, why: &str) -> Response {
    let now = state.now();
    let _ = state.cli.redeem_failures.check(ip, now);
    state.audit.record(
        now,
        crate::audit::Entry {
            action: "cli.token",
            outcome: "refused",
            actor: None,
            subject: None,
            ip: Some(ip),
            detail: Some(why.to_string()),
        },
    );
    oauth_error(
        StatusCode::BAD_REQUEST,
        "invalid_grant",
        "the code is invalid, expired or already used: sign in again",
    )
}

async fn redeem_code(
    state: &AppState,
    ip: IpAddr,
    code: &str,
    verifier: &str,
    redirect_uri: &str,
) -> Response {
    if code.is_empty() || code.len() > 128 {
        return redeem_failed(state, ip, "malformed code");
    }
    // Spent by this attempt whatever its outcome: a code guessed or stolen without the
    // verifier is gone after one try (RFC 6749 §4.1.2: use at most once).
    let grant = match state
        .store
        .cli_grants
        .take_cli_code(&rules::grant_id(code))
        .await
    {
        Ok(Some(g)) => g,
        Ok(None) => return redeem_failed(state, ip, "unknown or spent code"),
        Err(e) => return refuse(e.into()),
    };
    let now = state.now();
    if now > grant.expires_at {
        return redeem_failed(state, ip, "expired code");
    }
    if grant.redirect_uri.as_deref() != Some(redirect_uri) {
        return redeem_failed(state, ip, "redirect_uri differs");
    }
    let challenge = grant.code_challenge.as_deref().unwrap_or("");
    if !rules::verifier_matches(verifier, challenge) {
        return redeem_failed(state, ip, "PKCE verifier does not match");
    }
    issue(state, ip, &grant).await
}

async fn poll_device(state: &AppState, ip: IpAddr, device_code: &str) -> Response {
    if device_code.is_empty() || device_code.len() > 128 {
        return redeem_failed(state, ip, "malformed device code");
    }
    let now = state.now();
    let (verdict, grant) = match state
        .store
        .cli_grants
        .poll_device_grant(&rules::grant_id(device_code), now)
        .await
    {
        Ok(Some(x)) => x,
        Ok(None) => return redeem_failed(state, ip, "unknown device code"),
        Err(e) => return refuse(e.into()),
    };
    let bad =
        |error: &str, description: &str| oauth_error(StatusCode::BAD_REQUEST, error, description);
    match verdict {
        PollVerdict::Pending { interval } => answer(
            StatusCode::BAD_REQUEST,
            json!({"error": "authorization_pending", "error_description": "waiting for you to approve on the account page", "interval": interval}),
        ),
        PollVerdict::SlowDown { interval } => answer(
            StatusCode::BAD_REQUEST,
            json!({"error": "slow_down", "error_description": format!("poll at most every {interval} seconds"), "interval": interval}),
        ),
        PollVerdict::Denied => bad(
            "access_denied",
            "the sign-in was denied on the account page",
        ),
        PollVerdict::Expired => bad(
            "expired_token",
            "the code expired before it was approved: start again",
        ),
        PollVerdict::Approved => issue(state, ip, &grant).await,
    }
}

/// Mint the token for an approved grant, unless its person has been deactivated since.
async fn issue(state: &AppState, ip: IpAddr, grant: &CliGrant) -> Response {
    let Some(user_id) = grant.user_id.as_deref() else {
        return refuse(WebError::Internal("approved grant without a person".into()));
    };
    match state.store.users.user(user_id).await {
        Ok(Some(u)) if u.active => {}
        Ok(_) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "access_denied",
                "the account that approved this sign-in is not active",
            );
        }
        Err(e) => return refuse(e.into()),
    }
    let name = rules::token_name(&grant.machine);
    match tokens::mint(state, user_id, &name, grant.token_days, Some(ip)).await {
        Ok((t, plaintext)) => answer(
            StatusCode::OK,
            json!({
                "access_token": plaintext,
                "token_type": "Bearer",
                "token_id": t.id,
                "name": t.name,
                "expires_at": t.expires_at,
            }),
        ),
        Err(e) => mint_failed(e),
    }
}

/// `POST /api/cli/device`: start a device sign-in (RFC 8628 §3.1–3.2).
#[utoipa::path(
    post,
    path = "/api/cli/device",
    tag = "cli",
    summary = "Start a device sign-in for the command-line tool",
    description = "Form-encoded: `machine` (the name shown to the person; part of the token's name) and optionally `expires_in_days` (1–365) for the token. Answers RFC 8628's device authorization response: `device_code` (the CLI's secret), `user_code` (typed on the account page), `verification_uri`, `verification_uri_complete`, `expires_in` (600) and `interval` (5). At most 10 a minute per address.",
    request_body(content = String, content_type = "application/x-www-form-urlencoded", description = "machine, expires_in_days"),
    responses(
        (status = 200, description = "The device authorization response", body = serde_json::Value),
        (status = 400, description = "A malformed request", body = ErrorBody),
        (status = 429, description = "Too many device sign-ins started from this address", body = ErrorBody),
        (status = 503, description = "Too many pending command-line sign-ins", body = ErrorBody),
    )
)]
pub async fn device_start(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: Bytes,
) -> Response {
    let now = state.now();
    if let Err(retry) = state.cli.device_starts.check(peer.ip(), now) {
        return refuse(WebError::RateLimited("device sign-ins", retry));
    }
    let p = match form(&body) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let machine = match rules::check_machine(p.get("machine").map(String::as_str).unwrap_or("")) {
        Ok(m) => m,
        Err(e) => return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", &e.to_string()),
    };
    let days = match p.get("expires_in_days").map(|d| d.parse::<i64>()) {
        None => None,
        Some(Ok(d)) => Some(d),
        Some(Err(_)) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "expires_in_days must be a number",
            );
        }
    };
    let token_days = match rules::check_expiry(days) {
        Ok(d) => d,
        Err(e) => return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", &e.to_string()),
    };
    // A live user code is unique; on the rare collision draw again.
    for _ in 0..4 {
        let (Ok(device_code), Ok(user_code)) = (rules::new_secret(), rules::new_user_code()) else {
            return refuse(WebError::Internal(
                "the system random generator failed".into(),
            ));
        };
        let grant = CliGrant {
            id: rules::grant_id(&device_code),
            kind: GrantKind::Device,
            user_code: Some(user_code.clone()),
            user_id: None,
            status: DeviceStatus::Pending,
            machine: machine.clone(),
            token_days,
            code_challenge: None,
            redirect_uri: None,
            client_ip: Some(peer.ip().to_string()),
            interval: rules::POLL_INTERVAL,
            last_poll: None,
            created_at: now,
            expires_at: now + rules::DEVICE_TTL,
        };
        match state
            .store
            .cli_grants
            .insert_cli_grant(&grant, MAX_LIVE_GRANTS, now)
            .await
        {
            Ok(true) => {
                let shown = rules::display_user_code(&user_code);
                let page = format!("{}{ACCOUNT_PATH}", state.public_origin);
                return answer(
                    StatusCode::OK,
                    json!({
                        "device_code": device_code,
                        "user_code": shown,
                        "verification_uri": page,
                        "verification_uri_complete": format!("{page}?user_code={shown}"),
                        "expires_in": rules::DEVICE_TTL,
                        "interval": rules::POLL_INTERVAL,
                    }),
                );
            }
            Ok(false) => continue,
            Err(e) => return refuse(e.into()),
        }
    }
    refuse(WebError::Busy("device sign-ins"))
}

/// The body of the account page's device calls.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceLookup {
    user_code: String,
}

/// The body of `POST /api/cli/device/decide`.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceDecision {
    user_code: String,
    approve: bool,
}

/// A user code that matched nothing: counted against the person (RFC 8628 §5.1), the same
/// answer whether it was malformed, unknown, expired or already decided.
fn no_such_code(state: &AppState, a: &Authed) -> Response {
    let _ = state
        .cli
        .user_code_misses
        .check(a.user.id.clone(), state.now());
    answer(
        StatusCode::NOT_FOUND,
        json!({"error": "not_found", "error_description": "No pending sign-in has this code. Check the code in your terminal; it is valid for 10 minutes."}),
    )
}

/// A device call of the account page: the person (browser session, with user-code guesses
/// left this minute), the body (`usage` says its shape when malformed), and the canonical user
/// code it names. A code that cannot be one counts as a miss.
fn device_request<T: serde::de::DeserializeOwned>(
    state: &AppState,
    auth: Result<MaybeAuthed, WebError>,
    body: &[u8],
    usage: &str,
    user_code: impl Fn(&T) -> &str,
) -> Result<(Authed, T, String), Box<Response>> {
    let a = by_session(auth, true).map_err(|e| Box::new(refuse(e)))?;
    if let Some(retry) = state.cli.user_code_misses.exceeded(&a.user.id, state.now()) {
        return Err(Box::new(refuse(WebError::RateLimited(
            "device code attempts",
            retry,
        ))));
    }
    let Ok(req) = serde_json::from_slice::<T>(body) else {
        return Err(Box::new(invalid(format!("Send JSON: {usage}."))));
    };
    match rules::normalize_user_code(user_code(&req)) {
        Some(code) => Ok((a, req, code)),
        None => Err(Box::new(no_such_code(state, &a))),
    }
}

/// `POST /api/cli/device/lookup`: what asks to be signed in with this user code.
#[utoipa::path(
    post,
    path = "/api/cli/device/lookup",
    tag = "cli",
    summary = "Look up a device sign-in by its user code",
    description = "The account page shows what it would approve: the machine the CLI named, the address it asked from, when, and the token it would get. Case and dashes in the code do not matter. Codes that match nothing count against the person: more than 5 a minute, 429. Only with a browser session.",
    request_body = DeviceLookup,
    responses(
        (status = 200, description = "`{\"machine\", \"client_ip\", \"requested_at\", \"expires_at\", \"token_name\", \"token_days\"}`", body = serde_json::Value),
        (status = 401, description = "Not signed in, or no valid DPoP proof", body = ErrorBody),
        (status = 403, description = "No valid CSRF token, or authenticated by an API token", body = ErrorBody),
        (status = 404, description = "No pending sign-in has this code", body = ErrorBody),
        (status = 429, description = "Too many codes that matched nothing", body = ErrorBody),
    ),
    security(("session" = [], "dpop" = [], "csrf" = []))
)]
pub async fn device_lookup(
    State(state): State<AppState>,
    auth: Result<MaybeAuthed, WebError>,
    body: Bytes,
) -> Response {
    let (a, _, code) = match device_request(
        &state,
        auth,
        &body,
        "{\"user_code\": \"BCDF-GHJK\"}",
        |r: &DeviceLookup| &r.user_code,
    ) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    match state
        .store
        .cli_grants
        .pending_device_grant(&code, state.now())
        .await
    {
        Ok(Some(g)) => answer(
            StatusCode::OK,
            json!({
                "user_code": rules::display_user_code(&code),
                "machine": g.machine,
                "client_ip": g.client_ip,
                "requested_at": g.created_at,
                "expires_at": g.expires_at,
                "token_name": rules::token_name(&g.machine),
                "token_days": g.token_days,
            }),
        ),
        Ok(None) => no_such_code(&state, &a),
        Err(e) => refuse(e.into()),
    }
}

/// `POST /api/cli/device/decide`: approve or deny a device sign-in.
#[utoipa::path(
    post,
    path = "/api/cli/device/decide",
    tag = "cli",
    summary = "Approve or deny a device sign-in",
    description = "Approving lets the CLI that holds the matching device code receive one new API token of the signed-in person on its next poll; denying ends the sign-in. Only with a browser session.",
    request_body = DeviceDecision,
    responses(
        (status = 204, description = "Decided"),
        (status = 401, description = "Not signed in, or no valid DPoP proof", body = ErrorBody),
        (status = 403, description = "No valid CSRF token, or authenticated by an API token", body = ErrorBody),
        (status = 404, description = "No pending sign-in has this code", body = ErrorBody),
        (status = 429, description = "Too many codes that matched nothing", body = ErrorBody),
    ),
    security(("session" = [], "dpop" = [], "csrf" = []))
)]
pub async fn device_decide(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    auth: Result<MaybeAuthed, WebError>,
    body: Bytes,
) -> Response {
    let (a, req, code) = match device_request(
        &state,
        auth,
        &body,
        "{\"user_code\": \"BCDF-GHJK\", \"approve\": true}",
        |r: &DeviceDecision| &r.user_code,
    ) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let now = state.now();
    match state
        .store
        .cli_grants
        .decide_device_grant(&code, &a.user.id, req.approve, now)
        .await
    {
        Ok(true) => {
            state.audit.record(
                now,
                crate::audit::Entry {
                    action: "cli.device",
                    outcome: if req.approve { "ok" } else { "denied" },
                    actor: Some(&a.user.id),
                    subject: Some(&a.user.id),
                    ip: Some(peer.ip()),
                    detail: Some(format!("user_code={}", rules::display_user_code(&code))),
                },
            );
            let mut r = StatusCode::NO_CONTENT.into_response();
            no_store(&mut r);
            r
        }
        Ok(false) => no_such_code(&state, &a),
        Err(e) => refuse(e.into()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn consent_query_is_parsed_strictly() {
        let q = "redirect_uri=http%3A%2F%2F127.0.0.1%3A5000%2Fcb&state=s&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256&machine=box&expires_in_days=30";
        let r = LoopbackRequest::from_query(q).unwrap();
        let c = r.check().unwrap();
        assert_eq!(c.redirect_uri.as_str(), "http://127.0.0.1:5000/cb");
        assert_eq!(c.token_days, Some(30));
        assert!(LoopbackRequest::from_query(&format!("{q}&state=t")).is_err());
        assert!(LoopbackRequest::from_query("expires_in_days=x").is_err());
        assert!(LoopbackRequest::from_query("").unwrap().check().is_err());
    }
}
