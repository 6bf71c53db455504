//! The authorization endpoint (`GET`/`POST /authorize`) and the login form
//! submission (`POST /login`).

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;

use crate::idp::pages::{LoginForm, error_page, login_page};
use crate::idp::routes::{SUPPORTED_SCOPES, found, with_query};
use crate::idp::state::{
    AuthRequest, CODE_TTL, CodeEntry, IdpSession, PENDING_TTL, Pending, SESSION_TTL,
    State as IdpState,
};
use crate::idp::util::{Params, cookie_value, ct_eq, now, random_token};
use crate::idp::{DevIdp, SESSION_COOKIE};

const REJECTED: &str = "Sign-in request rejected";

pub(crate) async fn authorize_get(
    State(idp): State<Arc<DevIdp>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let params = Params::parse(query.unwrap_or_default().as_bytes());
    authorize(&idp, &headers, &params)
}

/// OIDC Core §3.1.2.1: the authorization endpoint also accepts form POSTs.
pub(crate) async fn authorize_post(
    State(idp): State<Arc<DevIdp>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    authorize(&idp, &headers, &Params::parse(&body))
}

fn server_error_page(what: &str) -> Response {
    error_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Development IdP error",
        what,
    )
}

/// Outcome of checking an authorization request.
enum Checked {
    Ok(AuthRequest, Prompt),
    /// Shown to the user, never redirected (unverified client or redirect URI).
    Page(Response),
    /// Sent back to the (verified) redirect URI as `error=...`.
    Redirect(Response),
}

#[derive(Default)]
struct Prompt {
    none: bool,
    login: bool,
    max_age: Option<u64>,
}

fn check_request(idp: &DevIdp, p: &Params) -> Checked {
    for name in ["client_id", "redirect_uri"] {
        if p.is_duplicated(name) {
            return Checked::Page(error_page(
                StatusCode::BAD_REQUEST,
                REJECTED,
                &format!("The parameter {name} was given more than once."),
            ));
        }
    }
    let Some(client_id) = p.get("client_id") else {
        return Checked::Page(error_page(
            StatusCode::BAD_REQUEST,
            REJECTED,
            "The client_id parameter is missing.",
        ));
    };
    let Some(client) = idp.client(client_id) else {
        return Checked::Page(error_page(
            StatusCode::BAD_REQUEST,
            REJECTED,
            &format!("Unknown client_id \"{client_id}\"."),
        ));
    };
    let Some(redirect_uri) = p.get("redirect_uri") else {
        return Checked::Page(error_page(
            StatusCode::BAD_REQUEST,
            REJECTED,
            "The redirect_uri parameter is missing.",
        ));
    };
    if !client.redirect_uris.iter().any(|r| r == redirect_uri) {
        return Checked::Page(error_page(
            StatusCode::BAD_REQUEST,
            REJECTED,
            &format!(
                "redirect_uri \"{redirect_uri}\" is not registered for client \"{client_id}\" \
                 (exact match required), so the IdP will not redirect to it."
            ),
        ));
    }

    // From here on the redirect URI is trusted: errors go back to the client.
    let state = p.get("state");
    let err = |code: &str, desc: &str| {
        Checked::Redirect(error_redirect(idp, redirect_uri, code, desc, state))
    };
    if let Some(dup) = p.first_duplicate() {
        return err(
            "invalid_request",
            &format!("parameter {dup} was given more than once"),
        );
    }
    if p.get("request").is_some() {
        return err("request_not_supported", "request objects are not supported");
    }
    if p.get("request_uri").is_some() {
        return err("request_uri_not_supported", "request_uri is not supported");
    }
    match p.get("response_type") {
        None => return err("invalid_request", "response_type is required"),
        Some("code") => {}
        Some(_) => {
            return err(
                "unsupported_response_type",
                "only response_type=code is supported",
            );
        }
    }
    if p.get("response_mode").is_some_and(|m| m != "query") {
        return err("invalid_request", "only response_mode=query is supported");
    }
    let requested: Vec<&str> = p
        .get("scope")
        .unwrap_or_default()
        .split(' ')
        .filter(|s| !s.is_empty())
        .collect();
    if !requested.contains(&"openid") {
        return err("invalid_scope", "scope must include openid");
    }
    let scopes: Vec<String> = SUPPORTED_SCOPES
        .iter()
        .filter(|s| requested.contains(s))
        .map(|s| (*s).to_owned())
        .collect();
    let Some(code_challenge) = p.get("code_challenge") else {
        return err(
            "invalid_request",
            "code_challenge is required (PKCE with S256)",
        );
    };
    if p.get("code_challenge_method") != Some("S256") {
        return err("invalid_request", "code_challenge_method must be S256");
    }
    if code_challenge.len() != 43
        || !code_challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return err(
            "invalid_request",
            "code_challenge must be BASE64URL(SHA256(code_verifier)): 43 characters",
        );
    }
    let mut prompt = Prompt::default();
    let values: Vec<&str> = p
        .get("prompt")
        .unwrap_or_default()
        .split(' ')
        .filter(|s| !s.is_empty())
        .collect();
    prompt.none = values.contains(&"none");
    prompt.login = values.contains(&"login");
    if prompt.none && values.len() > 1 {
        return err(
            "invalid_request",
            "prompt=none cannot be combined with other values",
        );
    }
    if let Some(max_age) = p.get("max_age") {
        match max_age.parse::<u64>() {
            Ok(v) => prompt.max_age = Some(v),
            Err(_) => return err("invalid_request", "max_age must be a non-negative integer"),
        }
    }
    Checked::Ok(
        AuthRequest {
            client_id: client_id.to_owned(),
            redirect_uri: redirect_uri.to_owned(),
            scopes,
            state: state.map(str::to_owned),
            nonce: p.get("nonce").map(str::to_owned),
            code_challenge: code_challenge.to_owned(),
        },
        prompt,
    )
}

fn authorize(idp: &DevIdp, headers: &HeaderMap, p: &Params) -> Response {
    let (request, prompt) = match check_request(idp, p) {
        Checked::Ok(r, prompt) => (r, prompt),
        Checked::Page(resp) | Checked::Redirect(resp) => return resp,
    };
    let now = now();
    let mut st = idp.state();

    // An existing IdP browser session skips the form (unless re-authentication is asked for).
    let cookie = cookie_value(headers, SESSION_COOKIE).filter(|c| {
        st.session(c, now).is_some_and(|s| {
            idp.user(&s.username).is_some()
                && prompt
                    .max_age
                    .is_none_or(|max| s.auth_time.saturating_add(max) >= now)
        })
    });
    if let Some(cookie) = cookie
        && !prompt.login
    {
        return match issue_code(&mut st, request.clone(), &cookie, now) {
            Some(code) => success_redirect(idp, &request, &code, None),
            None => server_error_page("Could not issue an authorization code."),
        };
    }
    if prompt.none {
        return error_redirect(
            idp,
            &request.redirect_uri,
            "login_required",
            "the user is not signed in at the IdP",
            request.state.as_deref(),
        );
    }
    let Ok(request_id) = random_token(24) else {
        return server_error_page("The random number generator failed.");
    };
    st.pending.insert(
        request_id.clone(),
        Pending {
            request: request.clone(),
            expires_at: now + PENDING_TTL,
        },
    );
    drop(st);
    render_form(idp, &request_id, &request, None, "")
}

fn render_form(
    idp: &DevIdp,
    request_id: &str,
    request: &AuthRequest,
    error: Option<&str>,
    username: &str,
) -> Response {
    login_page(&LoginForm {
        action: &idp.local_path("/login"),
        request_id,
        client_id: &request.client_id,
        redirect_uri: &request.redirect_uri,
        error,
        username,
        users: &idp.users,
    })
}

/// `POST /login`: checks the credentials of a pending authorization request.
pub(crate) async fn login(
    State(idp): State<Arc<DevIdp>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = Params::parse(&body);
    let expired = || {
        error_page(
            StatusCode::BAD_REQUEST,
            "Sign-in form expired",
            "This sign-in form is unknown, was already used, or has expired (forms are valid \
             for 10 minutes). Go back to the application and sign in again.",
        )
    };
    let Some(request_id) = p.get("request_id") else {
        return expired();
    };
    let Some(request) = idp
        .state()
        .pending
        .get(request_id)
        .map(|pending| pending.request.clone())
    else {
        return expired();
    };
    let username = p.get("username").unwrap_or_default();
    let password = p.get("password").unwrap_or_default();
    let user = idp.user(username);
    // Compare even for unknown users so timing does not reveal usernames.
    let password_ok = ct_eq(password, user.map_or("\u{0}", |u| u.password.as_str()));
    let Some(user) = user.filter(|_| password_ok) else {
        tracing::info!(username, "dev IdP: failed sign-in attempt");
        return render_form(
            &idp,
            request_id,
            &request,
            Some("Invalid username or password."),
            username,
        );
    };

    let now = now();
    let mut st = idp.state();
    if st.pending.remove(request_id).is_none() {
        return expired();
    }
    // Re-use the browser's session when the same user signs in again.
    let existing = cookie_value(&headers, SESSION_COOKIE).filter(|c| {
        st.session(c, now)
            .is_some_and(|s| s.username == user.username)
    });
    let cookie = match existing {
        Some(cookie) => {
            if let Some(s) = st.sessions.get_mut(&cookie) {
                s.auth_time = now;
                s.expires_at = now + SESSION_TTL;
            }
            cookie
        }
        None => match new_session(&mut st, &user.username, now) {
            Some(cookie) => cookie,
            None => return server_error_page("The random number generator failed."),
        },
    };
    let Some(code) = issue_code(&mut st, request.clone(), &cookie, now) else {
        return server_error_page("Could not issue an authorization code.");
    };
    drop(st);
    tracing::info!(username = %user.username, client_id = %request.client_id, "dev IdP: signed in");
    success_redirect(&idp, &request, &code, Some(session_cookie(&idp, &cookie)))
}

fn new_session(st: &mut IdpState, username: &str, now: u64) -> Option<String> {
    let cookie = random_token(32).ok()?;
    let sid = random_token(16).ok()?;
    st.sessions.insert(
        cookie.clone(),
        IdpSession {
            sid,
            username: username.to_owned(),
            auth_time: now,
            expires_at: now + SESSION_TTL,
            clients: BTreeSet::new(),
        },
    );
    Some(cookie)
}

/// Issues a single-use code bound to the request and the browser session.
fn issue_code(st: &mut IdpState, request: AuthRequest, cookie: &str, now: u64) -> Option<String> {
    let session = st.sessions.get_mut(cookie)?;
    session.clients.insert(request.client_id.clone());
    let (username, sid, auth_time) = (
        session.username.clone(),
        session.sid.clone(),
        session.auth_time,
    );
    let code = random_token(32).ok()?;
    st.codes.insert(
        code.clone(),
        CodeEntry {
            request,
            username,
            sid,
            auth_time,
            expires_at: now + CODE_TTL,
            used: false,
            issued: Vec::new(),
        },
    );
    Some(code)
}

pub(crate) fn session_cookie(idp: &DevIdp, value: &str) -> String {
    let path = if idp.base_path.is_empty() {
        "/"
    } else {
        idp.base_path.as_str()
    };
    let secure = if idp.secure_cookies { "; Secure" } else { "" };
    format!(
        "{SESSION_COOKIE}={value}; Path={path}; Max-Age={SESSION_TTL}; HttpOnly; SameSite=Lax{secure}"
    )
}

fn success_redirect(
    idp: &DevIdp,
    request: &AuthRequest,
    code: &str,
    set_cookie: Option<String>,
) -> Response {
    let mut params = vec![("code", code)];
    if let Some(state) = &request.state {
        params.push(("state", state));
    }
    params.push(("iss", idp.issuer()));
    let Some(location) = with_query(&request.redirect_uri, &params) else {
        return server_error_page("The registered redirect_uri could not be parsed.");
    };
    let mut resp = found(&location);
    if let Some(cookie) = set_cookie
        && let Ok(value) = HeaderValue::from_str(&cookie)
    {
        resp.headers_mut().append(header::SET_COOKIE, value);
    }
    resp
}

/// RFC 6749 §4.1.2.1 error response to a verified redirect URI.
fn error_redirect(
    idp: &DevIdp,
    redirect_uri: &str,
    error: &str,
    description: &str,
    state: Option<&str>,
) -> Response {
    let mut params = vec![("error", error), ("error_description", description)];
    if let Some(state) = state {
        params.push(("state", state));
    }
    params.push(("iss", idp.issuer()));
    match with_query(redirect_uri, &params) {
        Some(location) => found(&location),
        None => server_error_page("The registered redirect_uri could not be parsed."),
    }
}
