//! `GET /api/session` (who am I) and `/api/logout` (end the session here and on every
//! replica). Logout is POST only: a GET shows a page with a sign-out button, so a cross-site
//! link or image cannot sign anyone out (R-CSRF-4).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, header};
use axum::response::{Html, IntoResponse, Response};
use portcullis_core::oidc::end_session::{EndSessionRequest, end_session_url};
use serde_json::json;

use super::{no_store, set_cookie};
use crate::auth::MaybeAuthed;
use crate::error::{WebError, wants_json};
use crate::idp::Idp;
use crate::pages;
use crate::state::AppState;

/// Who is signed in: the user's profile, roles and session times.
#[utoipa::path(
    get,
    path = "/api/session",
    tag = "session",
    summary = "Who is signed in",
    description = "The user's profile, roles and session times.",
    responses(
        (status = 200, description = "`{user, roles, session: {expires_at, auth_time}}`", content_type = "application/json"),
        (status = 401, description = "Not signed in, or no valid DPoP proof: `{\"error\":\"unauthorized\"}`", body = crate::routes::admin::ErrorBody),
    ),
    security(("session" = [], "dpop" = []))
)]
pub async fn session(auth: Result<MaybeAuthed, WebError>) -> Response {
    let mut resp = match auth {
        Ok(MaybeAuthed(Some(a))) => {
            let (expires_at, auth_time) = match a.session() {
                Some(s) => (s.exp, s.auth_time),
                None => (a.expires_at(), 0),
            };
            // The profile's fields flattened next to the internal id and login times.
            let mut body = json!({
                "user": a.user.as_ref(),
                "roles": a.roles.as_deref().unwrap_or_default(),
                "session": {
                    "expires_at": expires_at,
                    "auth_time": auth_time,
                },
            });
            // Signed in with an API token (the command-line tool's `whoami`): which one.
            if let Some(t) = a.api_token() {
                body["session"] = json!(null);
                body["api_token"] = json!({
                    "id": t.id,
                    "name": t.name,
                    "expires_at": t.expires_at,
                });
            }
            Json(body).into_response()
        }
        // The API answers JSON whatever the Accept header says.
        Ok(MaybeAuthed(None)) => WebError::Unauthorized.render_as(true),
        Err(e) => e.render_as(true),
    };
    no_store(&mut resp);
    resp
}

/// `GET /api/logout`: a page with the sign-out button (changes nothing). The form carries
/// the CSRF token, since a plain form cannot send the `X-CSRF-Token` header.
#[utoipa::path(
    get,
    path = "/api/logout",
    tag = "session",
    summary = "The sign-out page",
    description = "A page with a Sign out button; it changes nothing, so a link or an image cannot sign anyone out.",
    responses((status = 200, description = "The sign-out page (HTML) with its button; changes nothing", content_type = "text/html"))
)]
pub async fn logout_page(
    State(state): State<AppState>,
    auth: Result<MaybeAuthed, WebError>,
) -> Response {
    let token = match &auth {
        Ok(MaybeAuthed(Some(a))) => a.csrf_cookie.as_deref(),
        _ => None,
    };
    let dpop = state.dpop.is_some();
    let mut resp = Html(pages::sign_out_page(token, dpop)).into_response();
    if dpop {
        pages::allow_own_scripts(&mut resp);
    }
    no_store(&mut resp);
    resp
}

/// Where the sign-out script lands once the session has ended, and where the IdP sends the
/// browser back after ending its own session (`post_logout_redirect_uri`).
pub async fn signed_out(State(state): State<AppState>) -> Response {
    Html(pages::signed_out_page(idp_logout_state(&state, None))).into_response()
}

/// The IdP's end-session URL for this sign-out, when RP-initiated logout is on and the IdP
/// offers it.
fn idp_end_session_url(
    state: &AppState,
    idp: Option<&Idp>,
    id_token_hint: Option<&str>,
) -> Option<url::Url> {
    if !state.config.browser.idp_logout {
        return None;
    }
    let idp = idp?;
    let provider = idp.provider().ok()?;
    let endpoint = provider.metadata.end_session_endpoint.as_ref()?;
    let redirect = format!("{}{}", state.public_origin, pages::SIGNED_OUT_PATH);
    let st = portcullis_core::oidc::pkce::random_token().ok()?;
    Some(end_session_url(
        endpoint,
        &EndSessionRequest {
            client_id: &idp.oidc.client_id,
            post_logout_redirect_uri: &redirect,
            state: &st,
            id_token_hint,
        },
    ))
}

/// What the signed-out page says about the IdP session: of the person's IdP, or (not known,
/// e.g. back from the IdP's own sign-out) whether any IdP offers ending it.
fn idp_logout_state(state: &AppState, idp: Option<&Idp>) -> pages::IdpSession {
    let offers_end = |i: &Idp| {
        i.provider()
            .is_ok_and(|p| p.metadata.end_session_endpoint.is_some())
    };
    let offers = match idp {
        Some(i) => offers_end(i),
        None => state.idps.iter().any(|i| offers_end(i)),
    };
    match (state.config.browser.idp_logout, offers) {
        (true, true) => pages::IdpSession::Ended,
        (false, true) => pages::IdpSession::KeptByConfiguration,
        (_, false) => pages::IdpSession::NotOffered,
    }
}

/// `POST /api/logout`: revoke the session server-side (a copied cookie stops working at
/// once, on every replica within a second) and clear the cookie. Answers a page or JSON.
#[utoipa::path(
    post,
    path = "/api/logout",
    tag = "session",
    summary = "Sign out",
    description = "Ends the session on every replica and clears its cookies, then the identity provider's session when it offers that: JSON callers get `end_session_url`, a form is redirected there.",
    responses(
        (status = 200, description = "Signed out. JSON callers get `{status, end_session_url}` (where to end the identity provider's session too); a form gets the signed-out page"),
        (status = 303, description = "A form sign-out, sent on to the identity provider's sign-out"),
        (status = 401, description = "A session bound to a key, without a valid DPoP proof", body = crate::routes::admin::ErrorBody),
        (status = 403, description = "From another site, or without the CSRF token", body = crate::routes::admin::ErrorBody),
    ),
    security(("session" = [], "dpop" = [], "csrf" = []))
)]
pub async fn logout(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    auth: Result<MaybeAuthed, WebError>,
    body: Bytes,
) -> Result<Response, WebError> {
    same_origin(&state, &headers)?;
    // A bound session without its proof (or any refused credential) signs nobody out.
    let auth = auth?;
    // An API token is not a browser session: there is nothing to sign out, and its request
    // gets no cookies (revoking is done on the account page).
    if auth.0.as_ref().is_some_and(|a| a.api_token().is_some()) {
        return Err(WebError::Forbidden(
            "An API token cannot sign out; revoke it on the account page instead.".into(),
        ));
    }
    // The ID token of the sign-in, for `id_token_hint` (read before the session ends).
    let mut id_token_hint = None;
    // The person's IdP (by their issuer), whose session RP-initiated logout ends; with a
    // single IdP, that one even without a session.
    let mut idp: Option<&Idp> = (!state.idps.several()).then(|| &**state.idps.primary());
    if let MaybeAuthed(Some(a)) = &auth
        && let Some(claims) = a.session()
    {
        // R-CSRF: the header (scripts), or the form's `csrf_token` field (the sign-out page).
        if a.csrf.is_err() {
            let field = url::form_urlencoded::parse(&body)
                .find(|(k, _)| k == "csrf_token")
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default();
            if !claims.csrf_matches(state.sessions.keys(), &field, a.csrf_cookie.as_deref()) {
                return Err(WebError::Csrf("no valid CSRF token with the sign-out"));
            }
        }
        idp = state.idps.by_issuer(&a.user.profile.issuer).map(|i| &**i);
        id_token_hint = match state.store.sessions.session(&claims.sid).await {
            Ok(s) => s.and_then(|s| s.id_token),
            Err(e) => {
                // The sign-out goes ahead; the IdP may then ask the person to confirm.
                tracing::warn!(error = %e, "ID token for the logout hint not read");
                None
            }
        };
        state
            .sessions
            .end(&state.store, &state.views, claims, state.now())
            .await?;
        state.audit.record(
            state.now(),
            crate::audit::Entry {
                action: "auth.logout",
                outcome: "ok",
                actor: Some(&a.user.id),
                subject: Some(&a.user.id),
                ip: Some(peer.ip()),
                detail: None,
            },
        );
    }
    // RP-Initiated Logout: the IdP session ends too, or the next visit signs the person
    // straight back in. JSON callers (the browser client) get the URL to go to; a plain form
    // is redirected there.
    let end_session = idp_end_session_url(&state, idp, id_token_hint.as_deref());
    let mut resp = if wants_json(&headers) {
        Json(json!({
            "status": "signed_out",
            "end_session_url": end_session.as_ref().map(|u| u.as_str()),
        }))
        .into_response()
    } else if let Some(url) = &end_session {
        (
            axum::http::StatusCode::SEE_OTHER,
            [(header::LOCATION, url.to_string())],
        )
            .into_response()
    } else {
        Html(pages::signed_out_page(idp_logout_state(&state, idp))).into_response()
    };
    for c in state.sessions.clear_cookies() {
        set_cookie(&mut resp, c);
    }
    no_store(&mut resp);
    Ok(resp)
}

/// A state-changing request must come from our own pages (403 `{"error":"csrf"}` if not).
/// Browsers say where a request comes from in `Sec-Fetch-Site`: only `same-origin` passes (a
/// sibling subdomain is `same-site`, and refused). Without it, `Origin` must be ours: our
/// pages send `Referrer-Policy: no-referrer`, under which a browser sends `Origin: null`, so
/// that header alone cannot be required. A client that sends neither is not a browser and
/// carries no ambient cookies across sites.
fn same_origin(state: &AppState, headers: &HeaderMap) -> Result<(), WebError> {
    // A configured frontend origin may sign its person out (R-CSRF-6).
    if headers
        .get(header::ORIGIN)
        .is_some_and(|o| crate::cors::is_extra_origin(state, o.as_bytes()))
    {
        return Ok(());
    }
    if let Some(site) = headers.get("sec-fetch-site") {
        return if site.as_bytes().eq_ignore_ascii_case(b"same-origin") {
            Ok(())
        } else {
            Err(WebError::Csrf("request from another site"))
        };
    }
    match headers.get(header::ORIGIN) {
        Some(origin) if origin.as_bytes() != state.public_origin.as_bytes() => {
            Err(WebError::Csrf("cross-origin request"))
        }
        _ => Ok(()),
    }
}
