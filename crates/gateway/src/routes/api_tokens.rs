//! The signed-in person's API tokens (R-AT): `GET/POST /api/tokens`, `DELETE /api/tokens/{id}`
//! and the account page `/.portcullis/account` whose script uses them.
//!
//! Only an interactive browser session may create, list or revoke tokens: a request
//! authenticated by a token gets 403 (R-AT-5), so a leaked token cannot mint itself
//! successors or discover its siblings. The session's usual checks apply: CSRF on the unsafe
//! methods, DPoP proofs (this is Portcullis's own API, see `auth::OWN_API`).

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use portcullis_core::apitoken;
use portcullis_store::ApiToken;
use serde_json::json;

use super::admin::ErrorBody;
use super::no_store;
use crate::auth::{Authed, MaybeAuthed};
use crate::error::WebError;
use crate::pages;
use crate::state::AppState;
use crate::tokens::{self, MintError};

/// Where the account page lives.
pub const ACCOUNT_PATH: &str = "/.portcullis/account";

/// The routes of this module besides the JSON API (which `api.rs` registers with its
/// OpenAPI description).
pub fn routes() -> Router<AppState> {
    Router::new().route(ACCOUNT_PATH, get(account_page))
}

/// JSON, never cached (a creation answer holds the plaintext).
pub(crate) fn answer(status: StatusCode, body: serde_json::Value) -> Response {
    let mut r = (status, Json(body)).into_response();
    no_store(&mut r);
    r
}

pub(crate) fn refuse(e: WebError) -> Response {
    let mut r = e.render_as(true);
    no_store(&mut r);
    r
}

pub(crate) fn invalid(message: String) -> Response {
    answer(
        StatusCode::BAD_REQUEST,
        json!({"error": "invalid_request", "error_description": message}),
    )
}

/// The signed-in person, by their browser session only; `unsafe_method` also needs CSRF.
pub(crate) fn by_session(
    auth: Result<MaybeAuthed, WebError>,
    unsafe_method: bool,
) -> Result<Authed, WebError> {
    let a = auth?.0.ok_or(WebError::Unauthorized)?;
    if a.api_token().is_some() {
        // R-AT-5.
        return Err(WebError::Forbidden(
            "API tokens cannot create, list or revoke tokens. Sign in with a browser and use the account page.".into(),
        ));
    }
    if unsafe_method && let Err(why) = a.csrf {
        return Err(WebError::Csrf(why));
    }
    Ok(a)
}

/// A token as the API shows it: never its hash.
fn view(t: &ApiToken, now: i64) -> serde_json::Value {
    json!({
        "id": t.id,
        "name": t.name,
        "created_at": t.created_at,
        "expires_at": t.expires_at,
        "last_used_at": t.last_used,
        "expired": !t.is_live(now),
    })
}

/// `GET /api/tokens`: the person's tokens, newest first.
#[utoipa::path(
    get,
    path = "/api/tokens",
    tag = "tokens",
    summary = "Your API tokens",
    description = "The signed-in person's API tokens, newest first: id, name, created, expiry, last use (never the secret). Only with a browser session: an API token cannot list tokens.",
    responses(
        (status = 200, description = "`{\"tokens\": […], \"max_tokens\": 50}`", body = serde_json::Value),
        (status = 401, description = "Not signed in, or no valid DPoP proof", body = ErrorBody),
        (status = 403, description = "Authenticated by an API token", body = ErrorBody),
    ),
    security(("session" = [], "dpop" = []))
)]
pub async fn list(State(state): State<AppState>, auth: Result<MaybeAuthed, WebError>) -> Response {
    let a = match by_session(auth, false) {
        Ok(a) => a,
        Err(e) => return refuse(e),
    };
    match state.store.tokens.api_tokens_of(&a.user.id).await {
        Ok(ts) => {
            let now = state.now();
            let items: Vec<_> = ts.iter().map(|t| view(t, now)).collect();
            answer(
                StatusCode::OK,
                json!({"tokens": items, "max_tokens": apitoken::MAX_TOKENS_PER_USER}),
            )
        }
        Err(e) => refuse(e.into()),
    }
}

/// The body of `POST /api/tokens`.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRequest {
    name: String,
    #[serde(default)]
    expires_in_days: Option<i64>,
}

/// `POST /api/tokens` `{"name": "...", "expires_in_days": 30}` (days optional: no expiry):
/// 201 with the token's plaintext, shown this once.
#[utoipa::path(
    post,
    path = "/api/tokens",
    tag = "tokens",
    summary = "Create an API token",
    description = "A new API token for the signed-in person; the answer holds its plaintext (`token`), shown this once. `expires_in_days` 1–365, or null for no expiry. Only with a browser session.",
    request_body = CreateRequest,
    responses(
        (status = 201, description = "The token, with its plaintext", body = serde_json::Value),
        (status = 400, description = "A malformed request", body = ErrorBody),
        (status = 401, description = "Not signed in, or no valid DPoP proof", body = ErrorBody),
        (status = 403, description = "No valid CSRF token, or authenticated by an API token", body = ErrorBody),
        (status = 409, description = "Too many live tokens", body = ErrorBody),
    ),
    security(("session" = [], "dpop" = [], "csrf" = []))
)]
pub async fn create(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    auth: Result<MaybeAuthed, WebError>,
    body: Bytes,
) -> Response {
    let a = match by_session(auth, true) {
        Ok(a) => a,
        Err(e) => return refuse(e),
    };
    let req: CreateRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(_) => {
            return invalid(
                "Send JSON: {\"name\": \"…\", \"expires_in_days\": 1–365 or null}.".into(),
            );
        }
    };
    match tokens::mint(
        &state,
        &a.user.id,
        &req.name,
        req.expires_in_days,
        Some(peer.ip()),
    )
    .await
    {
        Ok((t, plaintext)) => {
            let mut body = view(&t, state.now());
            body["token"] = json!(plaintext);
            answer(StatusCode::CREATED, body)
        }
        Err(e) => mint_failed(e),
    }
}

/// The answer when no token could be made (the account page's and the command-line
/// sign-in's alike): 400 for the person's input, 409 at the limit, 5xx for our failures.
pub(crate) fn mint_failed(e: MintError) -> Response {
    match e {
        MintError::Request(e) => invalid(format!("Cannot create the token: {e}.")),
        e @ MintError::LimitReached => answer(
            StatusCode::CONFLICT,
            json!({"error": "too_many_tokens", "error_description": format!("Cannot create the token: {e}.")}),
        ),
        MintError::Store(e) => refuse(e.into()),
        e @ MintError::Random(_) => refuse(WebError::Internal(e.to_string())),
    }
}

/// `DELETE /api/tokens/{id}`: 204, or 404 when the person has no such live token.
#[utoipa::path(
    delete,
    path = "/api/tokens/{id}",
    tag = "tokens",
    summary = "Revoke an API token",
    description = "Revokes one of the signed-in person's tokens; refused on every replica within a second. Only with a browser session.",
    params(("id" = String, Path, description = "The token's id (the part after `pcs_`, before the second `_`)")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, description = "Not signed in, or no valid DPoP proof", body = ErrorBody),
        (status = 403, description = "No valid CSRF token, or authenticated by an API token", body = ErrorBody),
        (status = 404, description = "You have no live token with this id", body = ErrorBody),
    ),
    security(("session" = [], "dpop" = [], "csrf" = []))
)]
pub async fn revoke(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    auth: Result<MaybeAuthed, WebError>,
    Path(id): Path<String>,
) -> Response {
    let a = match by_session(auth, true) {
        Ok(a) => a,
        Err(e) => return refuse(e),
    };
    if !apitoken::is_id(&id) {
        return not_found();
    }
    match tokens::revoke(&state, &a.user.id, &id, Some(peer.ip())).await {
        Ok(true) => {
            let mut r = StatusCode::NO_CONTENT.into_response();
            no_store(&mut r);
            r
        }
        Ok(false) => not_found(),
        Err(e) => refuse(e.into()),
    }
}

fn not_found() -> Response {
    answer(
        StatusCode::NOT_FOUND,
        json!({"error": "not_found", "error_description": "You have no active token with this id."}),
    )
}

/// `GET /.portcullis/account[?user_code=…]`: the token page, which is also where a device
/// sign-in is approved (its script does the rest). Not signed in: off to sign in and back here.
pub async fn account_page(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    auth: Result<MaybeAuthed, WebError>,
) -> Response {
    // RFC 8628 `verification_uri_complete`: the code pre-filled (still confirmed by a click).
    let user_code = query.as_deref().and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "user_code")
            .and_then(|(_, v)| portcullis_core::cli_login::normalize_user_code(&v))
            .map(|c| portcullis_core::cli_login::display_user_code(&c))
    });
    let return_to = match &user_code {
        Some(c) => format!("{ACCOUNT_PATH}?user_code={c}"),
        None => ACCOUNT_PATH.to_string(),
    };
    let a = match super::cli_login::signed_in_page(&state, auth, &return_to) {
        Ok(a) => a,
        Err(r) => return *r,
    };
    let who = super::cli_login::display_name(&a);
    let mut r = Html(pages::account_page(
        who,
        &state.public_origin,
        user_code.as_deref(),
    ))
    .into_response();
    pages::allow_own_scripts(&mut r);
    no_store(&mut r);
    r
}
