//! The token endpoint: `authorization_code` (with PKCE) and `refresh_token` grants.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;

use crate::idp::DevIdp;
use crate::idp::config::DevClient;
use crate::idp::routes::claims::{IdTokenInput, id_token};
use crate::idp::routes::{json_error, no_store_json};
use crate::idp::state::{ACCESS_TOKEN_TTL, Grant, REFRESH_TOKEN_TTL};
use crate::idp::util::{Params, ct_eq, form_urldecode, is_pkce_value, now, random_token, s256};

fn invalid_request(desc: &str) -> Response {
    json_error(StatusCode::BAD_REQUEST, "invalid_request", desc)
}

fn invalid_grant(desc: &str) -> Response {
    json_error(StatusCode::BAD_REQUEST, "invalid_grant", desc)
}

fn server_error(desc: &str) -> Response {
    json_error(StatusCode::INTERNAL_SERVER_ERROR, "server_error", desc)
}

/// RFC 6749 §5.2 `invalid_client`, 401; with `WWW-Authenticate` when the
/// client tried the Authorization header.
fn invalid_client(desc: &str, basic: bool) -> Response {
    let mut resp = json_error(StatusCode::UNAUTHORIZED, "invalid_client", desc);
    if basic {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"portcullis-dev-idp\""),
        );
    }
    resp
}

pub(crate) async fn token(
    State(idp): State<Arc<DevIdp>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = Params::parse(&body);
    if let Some(dup) = p.first_duplicate() {
        return invalid_request(&format!("parameter {dup} was given more than once"));
    }
    let client = match authenticate_client(&idp, &headers, &p) {
        Ok(client) => client,
        Err(failure) => return failure.into_response(),
    };
    match p.get("grant_type") {
        None => invalid_request("grant_type is required"),
        Some("authorization_code") => code_grant(&idp, client, &p),
        Some("refresh_token") => refresh_grant(&idp, client, &p),
        Some(_) => json_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "supported grant types: authorization_code, refresh_token",
        ),
    }
}

/// `client_secret_basic` credentials: base64 of `urlencode(id):urlencode(secret)`.
fn basic_credentials(value: &str) -> Option<(String, String)> {
    let (scheme, rest) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(rest.trim()).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((form_urldecode(id)?, form_urldecode(secret)?))
}

/// Why client authentication failed (kept small; turned into a response by the caller).
enum AuthFailure {
    /// `invalid_client` (401); `true` when the Authorization header was used.
    Client(&'static str, bool),
    /// `invalid_request` (400).
    Request(&'static str),
}

impl AuthFailure {
    fn into_response(self) -> Response {
        match self {
            AuthFailure::Client(desc, basic) => invalid_client(desc, basic),
            AuthFailure::Request(desc) => invalid_request(desc),
        }
    }
}

fn authenticate_client<'a>(
    idp: &'a DevIdp,
    headers: &HeaderMap,
    p: &Params,
) -> Result<&'a DevClient, AuthFailure> {
    let authorization = headers.get(header::AUTHORIZATION);
    let (client_id, secret, basic) = match authorization {
        Some(value) => {
            let Some((id, secret)) = value.to_str().ok().and_then(basic_credentials) else {
                return Err(AuthFailure::Client(
                    "the Authorization header is not valid client_secret_basic credentials",
                    true,
                ));
            };
            if p.get("client_secret").is_some() {
                return Err(AuthFailure::Request(
                    "use only one client authentication method (Authorization header or client_secret)",
                ));
            }
            if p.get("client_id").is_some_and(|body_id| body_id != id) {
                return Err(AuthFailure::Request(
                    "client_id in the body does not match the Authorization header",
                ));
            }
            (id, secret, true)
        }
        None => {
            let Some(secret) = p.get("client_secret") else {
                return Err(AuthFailure::Client(
                    "client authentication is required (client_secret_basic or client_secret_post)",
                    false,
                ));
            };
            let Some(id) = p.get("client_id") else {
                return Err(AuthFailure::Client("client_id is required", false));
            };
            (id.to_owned(), secret.to_owned(), false)
        }
    };
    let client = idp.client(&client_id);
    // Compare even for unknown clients so timing does not reveal client ids.
    let secret_ok = ct_eq(
        &secret,
        client.map_or("\u{0}", |c| c.client_secret.as_str()),
    );
    match client {
        Some(client) if secret_ok => Ok(client),
        _ => {
            tracing::info!(client_id, "dev IdP: client authentication failed");
            Err(AuthFailure::Client("client authentication failed", basic))
        }
    }
}

struct Issued {
    access_token: String,
    id_token: Option<String>,
    refresh_token: Option<String>,
    scopes: Vec<String>,
}

fn token_response(issued: Issued) -> Response {
    let mut body = json!({
        "access_token": issued.access_token,
        "token_type": "Bearer",
        "expires_in": ACCESS_TOKEN_TTL,
        "scope": issued.scopes.join(" "),
    });
    if let Some(id_token) = issued.id_token {
        body["id_token"] = json!(id_token);
    }
    if let Some(refresh_token) = issued.refresh_token {
        body["refresh_token"] = json!(refresh_token);
    }
    no_store_json(StatusCode::OK, body)
}

fn code_grant(idp: &DevIdp, client: &DevClient, p: &Params) -> Response {
    let Some(code) = p.get("code") else {
        return invalid_request("code is required");
    };
    let now = now();
    let mut st = idp.state();
    let Some(entry) = st.codes.get_mut(code) else {
        return invalid_grant("the authorization code is unknown or expired");
    };
    if entry.used {
        // RFC 6749 §4.1.2: a replayed code revokes what it issued.
        let issued = std::mem::take(&mut entry.issued);
        st.revoke(&issued);
        tracing::warn!(
            client_id = %client.client_id,
            "dev IdP: authorization code replayed; tokens issued with it are revoked"
        );
        return invalid_grant("the authorization code was already used");
    }
    // Any redemption attempt consumes the code.
    entry.used = true;
    if entry.expires_at <= now {
        return invalid_grant("the authorization code has expired");
    }
    if entry.request.client_id != client.client_id {
        return invalid_grant("the authorization code was issued to another client");
    }
    if p.get("redirect_uri") != Some(entry.request.redirect_uri.as_str()) {
        return invalid_grant("redirect_uri does not match the authorization request");
    }
    let Some(verifier) = p.get("code_verifier") else {
        return invalid_grant("code_verifier is required (PKCE)");
    };
    if !is_pkce_value(verifier) {
        return invalid_grant("code_verifier must be 43-128 unreserved characters");
    }
    if !ct_eq(&s256(verifier), &entry.request.code_challenge) {
        return invalid_grant(
            "PKCE verification failed: code_verifier does not match code_challenge",
        );
    }
    let request = entry.request.clone();
    let (username, sid, auth_time) = (entry.username.clone(), entry.sid.clone(), entry.auth_time);
    if !st.has_sid(&sid, now) {
        return invalid_grant("the IdP session of this authorization code has ended");
    }
    let Some(user) = idp.user(&username) else {
        return server_error("the user of this authorization code no longer exists");
    };
    let Ok(access_token) = random_token(32) else {
        return server_error("the random number generator failed");
    };
    let id_token = match id_token(
        idp,
        &IdTokenInput {
            user,
            client_id: &client.client_id,
            scopes: &request.scopes,
            sid: &sid,
            auth_time,
            nonce: request.nonce.as_deref(),
            access_token: &access_token,
            now,
        },
    ) {
        Ok(t) => t,
        Err(e) => return server_error(&format!("signing the ID token failed: {e}")),
    };
    let grant = Grant {
        username,
        client_id: client.client_id.clone(),
        scopes: request.scopes.clone(),
        sid,
        auth_time,
        expires_at: now + ACCESS_TOKEN_TTL,
    };
    let mut issued_tokens = vec![access_token.clone()];
    let refresh_token = if request.scopes.iter().any(|s| s == "offline_access") {
        let Ok(rt) = random_token(32) else {
            return server_error("the random number generator failed");
        };
        st.refresh_tokens.insert(
            rt.clone(),
            Grant {
                expires_at: now + REFRESH_TOKEN_TTL,
                ..grant.clone()
            },
        );
        issued_tokens.push(rt.clone());
        Some(rt)
    } else {
        None
    };
    st.access_tokens.insert(access_token.clone(), grant);
    if let Some(entry) = st.codes.get_mut(code) {
        entry.issued.extend(issued_tokens);
    }
    drop(st);
    tracing::info!(username = %user.username, client_id = %client.client_id, "dev IdP: tokens issued");
    token_response(Issued {
        access_token,
        id_token: Some(id_token),
        refresh_token,
        scopes: request.scopes,
    })
}

fn refresh_grant(idp: &DevIdp, client: &DevClient, p: &Params) -> Response {
    let Some(refresh_token) = p.get("refresh_token") else {
        return invalid_request("refresh_token is required");
    };
    let now = now();
    let mut st = idp.state();
    let Some(grant) = st.refresh_tokens.get(refresh_token).cloned() else {
        return invalid_grant("the refresh token is unknown, expired or revoked");
    };
    if grant.client_id != client.client_id {
        return invalid_grant("the refresh token was issued to another client");
    }
    let scopes: Vec<String> = match p.get("scope") {
        None => grant.scopes.clone(),
        Some(requested) => {
            let requested: Vec<String> = requested
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            if requested.iter().any(|s| !grant.scopes.contains(s)) {
                return json_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_scope",
                    "scope exceeds the originally granted scope",
                );
            }
            grant
                .scopes
                .iter()
                .filter(|s| requested.contains(s))
                .cloned()
                .collect()
        }
    };
    if !st.has_sid(&grant.sid, now) {
        st.refresh_tokens.remove(refresh_token);
        return invalid_grant("the IdP session of this refresh token has ended");
    }
    let Some(user) = idp.user(&grant.username) else {
        return server_error("the user of this refresh token no longer exists");
    };
    let (Ok(access_token), Ok(new_refresh)) = (random_token(32), random_token(32)) else {
        return server_error("the random number generator failed");
    };
    // OIDC Core §12.2: same iss/sub/aud/auth_time, new iat, no nonce.
    let id_token = if scopes.iter().any(|s| s == "openid") {
        match id_token(
            idp,
            &IdTokenInput {
                user,
                client_id: &client.client_id,
                scopes: &scopes,
                sid: &grant.sid,
                auth_time: grant.auth_time,
                nonce: None,
                access_token: &access_token,
                now,
            },
        ) {
            Ok(t) => Some(t),
            Err(e) => return server_error(&format!("signing the ID token failed: {e}")),
        }
    } else {
        None
    };
    // Rotation: the old refresh token stops working.
    st.refresh_tokens.remove(refresh_token);
    st.refresh_tokens.insert(
        new_refresh.clone(),
        Grant {
            expires_at: now + REFRESH_TOKEN_TTL,
            ..grant.clone()
        },
    );
    st.access_tokens.insert(
        access_token.clone(),
        Grant {
            scopes: scopes.clone(),
            expires_at: now + ACCESS_TOKEN_TTL,
            ..grant
        },
    );
    drop(st);
    token_response(Issued {
        access_token,
        id_token,
        refresh_token: Some(new_refresh),
        scopes,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn basic_credentials_are_form_urldecoded() {
        let header = format!("Basic {}", STANDARD.encode("my%20client:s%3Ac+r%2Bt"));
        assert_eq!(
            basic_credentials(&header).unwrap(),
            ("my client".to_owned(), "s:c r+t".to_owned())
        );
        assert_eq!(
            basic_credentials(&format!("basic {}", STANDARD.encode("a:b"))).unwrap(),
            ("a".to_owned(), "b".to_owned())
        );
        assert!(basic_credentials("Bearer abc").is_none());
        assert!(basic_credentials("Basic !!!").is_none());
        assert!(basic_credentials(&format!("Basic {}", STANDARD.encode("nocolon"))).is_none());
    }
}
