//! RP-initiated logout (`/end-session`) and back-channel logout delivery.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::json;

use crate::idp::pages::{error_page, signed_out_page};
use crate::idp::routes::{found, with_query};
use crate::idp::state::{IdpSession, LOGOUT_TOKEN_TTL};
use crate::idp::util::{Params, cookie_value, now};
use crate::idp::{DevIdp, SESSION_COOKIE};

const REJECTED: &str = "Sign-out request rejected";
const BACKCHANNEL_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

pub(crate) async fn end_session_get(
    State(idp): State<Arc<DevIdp>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    end_session(
        &idp,
        &headers,
        &Params::parse(query.unwrap_or_default().as_bytes()),
    )
}

pub(crate) async fn end_session_post(
    State(idp): State<Arc<DevIdp>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    end_session(&idp, &headers, &Params::parse(&body))
}

fn rejected(message: &str) -> Response {
    error_page(StatusCode::BAD_REQUEST, REJECTED, message)
}

fn end_session(idp: &DevIdp, headers: &HeaderMap, p: &Params) -> Response {
    if let Some(dup) = p.first_duplicate() {
        return rejected(&format!("The parameter {dup} was given more than once."));
    }
    // id_token_hint: an ID token this IdP issued (it may have expired).
    let mut hint_client = None;
    let mut hint_sid = None;
    if let Some(hint) = p.get("id_token_hint") {
        let claims = match idp.key.verify_own(hint, idp.issuer()) {
            Ok(claims) => claims,
            Err(e) => {
                return rejected(&format!(
                    "id_token_hint is not a valid ID token from this IdP ({e})."
                ));
            }
        };
        let aud = match claims.get("aud") {
            Some(serde_json::Value::String(a)) => Some(a.as_str()),
            Some(serde_json::Value::Array(a)) => a.first().and_then(|v| v.as_str()),
            _ => None,
        };
        let Some(client) = aud.and_then(|a| idp.client(a)) else {
            return rejected("The audience of id_token_hint is not a registered client.");
        };
        hint_client = Some(client);
        hint_sid = claims
            .get("sid")
            .and_then(|s| s.as_str())
            .map(str::to_owned);
    }
    let client = match p.get("client_id") {
        Some(id) => {
            let Some(client) = idp.client(id) else {
                return rejected(&format!("Unknown client_id \"{id}\"."));
            };
            if hint_client.is_some_and(|h| h.client_id != client.client_id) {
                return rejected("client_id does not match the audience of id_token_hint.");
            }
            Some(client)
        }
        None => hint_client,
    };
    let post_logout_redirect = match p.get("post_logout_redirect_uri") {
        None => None,
        Some(uri) => {
            let Some(client) = client else {
                return rejected(
                    "post_logout_redirect_uri requires id_token_hint or client_id, so the IdP \
                     can check that it is registered.",
                );
            };
            if !client.post_logout_redirect_uris.iter().any(|u| u == uri) {
                return rejected(&format!(
                    "post_logout_redirect_uri \"{uri}\" is not registered for client \"{}\" \
                     (exact match required), so the IdP will not redirect to it.",
                    client.client_id
                ));
            }
            Some(uri)
        }
    };

    // End the browser's IdP session and the one named by id_token_hint.
    let mut ended: Vec<IdpSession> = Vec::new();
    {
        let mut st = idp.state();
        if let Some(cookie) = cookie_value(headers, SESSION_COOKIE)
            && let Some(s) = st.end_session(&cookie)
        {
            ended.push(s);
        }
        if let Some(sid) = hint_sid
            && let Some(cookie) = st.session_by_sid(&sid).map(|(c, _)| c.clone())
            && let Some(s) = st.end_session(&cookie)
        {
            ended.push(s);
        }
    }
    for session in &ended {
        tracing::info!(username = %session.username, sid = %session.sid, "dev IdP: signed out");
        for client_id in &session.clients {
            send_backchannel_logout(idp, client_id, session);
        }
    }

    let mut resp = match post_logout_redirect {
        Some(uri) => {
            let params: Vec<(&str, &str)> =
                p.get("state").map(|s| ("state", s)).into_iter().collect();
            match with_query(uri, &params) {
                Some(location) => found(&location),
                None => rejected("post_logout_redirect_uri could not be parsed."),
            }
        }
        None => signed_out_page(!ended.is_empty()),
    };
    if let Ok(clear) = HeaderValue::from_str(&clear_cookie(idp)) {
        resp.headers_mut().append(header::SET_COOKIE, clear);
    }
    resp
}

fn clear_cookie(idp: &DevIdp) -> String {
    let path = if idp.base_path.is_empty() {
        "/"
    } else {
        idp.base_path.as_str()
    };
    format!("{SESSION_COOKIE}=; Path={path}; Max-Age=0; HttpOnly; SameSite=Lax")
}

/// Builds the OIDC Back-Channel Logout 1.0 logout token for `client_id`.
pub(crate) fn logout_token(
    idp: &DevIdp,
    client_id: &str,
    sub: &str,
    sid: &str,
) -> Result<String, jsonwebtoken::errors::Error> {
    let now = now();
    let claims = json!({
        "iss": idp.issuer(),
        "aud": client_id,
        "iat": now,
        "exp": now + LOGOUT_TOKEN_TTL,
        "jti": uuid::Uuid::new_v4().to_string(),
        "sub": sub,
        "sid": sid,
        "events": { BACKCHANNEL_EVENT: {} },
    });
    idp.key.sign("logout+jwt", &claims)
}

/// POSTs a logout token to the client's back-channel logout URI in a
/// spawned task (5 s timeout); failures are only logged.
fn send_backchannel_logout(idp: &DevIdp, client_id: &str, session: &IdpSession) {
    let Some(client) = idp.client(client_id) else {
        return;
    };
    let Some(uri) = client.backchannel_logout_uri.clone() else {
        return;
    };
    let Some(user) = idp.user(&session.username) else {
        return;
    };
    let token = match logout_token(idp, client_id, &user.sub, &session.sid) {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(client_id, error = %e, "dev IdP: could not sign a logout token");
            return;
        }
    };
    let http = idp.http.clone();
    let client_id = client_id.to_owned();
    tokio::spawn(async move {
        let result = http
            .post(&uri)
            .form(&[("logout_token", token.as_str())])
            .timeout(Duration::from_secs(5))
            .send()
            .await;
        match result {
            Ok(resp) if resp.status().is_success() => {
                tracing::info!(client_id, uri, "dev IdP: back-channel logout delivered");
            }
            Ok(resp) => {
                tracing::warn!(client_id, uri, status = %resp.status(), "dev IdP: back-channel logout rejected");
            }
            Err(e) => {
                tracing::warn!(client_id, uri, error = %e, "dev IdP: back-channel logout failed");
            }
        }
    });
}
