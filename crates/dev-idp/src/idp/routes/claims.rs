//! Claims released for a user, and the ID token.

use serde_json::{Map, Value, json};

use crate::idp::DevIdp;
use crate::idp::config::DevUser;
use crate::idp::state::ID_TOKEN_TTL;
use crate::idp::util::at_hash;

/// User claims released for the granted scopes (OIDC Core §5.4 plus `groups`).
/// `sub` is not included here.
pub(crate) fn user_claims(user: &DevUser, scopes: &[String]) -> Map<String, Value> {
    let has = |s: &str| scopes.iter().any(|g| g == s);
    let mut m = Map::new();
    if has("email") {
        m.insert("email".into(), json!(user.email));
        m.insert("email_verified".into(), json!(true));
    }
    if has("profile") {
        m.insert("name".into(), json!(user.name));
        m.insert("given_name".into(), json!(user.given_name));
        m.insert("family_name".into(), json!(user.family_name));
        m.insert("preferred_username".into(), json!(user.preferred_username));
        if let Some(picture) = &user.picture {
            m.insert("picture".into(), json!(picture));
        }
    }
    if has("groups") {
        m.insert("groups".into(), json!(user.groups));
    }
    m
}

pub(crate) struct IdTokenInput<'a> {
    pub user: &'a DevUser,
    pub client_id: &'a str,
    pub scopes: &'a [String],
    pub sid: &'a str,
    pub auth_time: u64,
    pub nonce: Option<&'a str>,
    pub access_token: &'a str,
    pub now: u64,
}

pub(crate) fn id_token(
    idp: &DevIdp,
    input: &IdTokenInput<'_>,
) -> Result<String, jsonwebtoken::errors::Error> {
    let mut claims = user_claims(input.user, input.scopes);
    claims.insert("iss".into(), json!(idp.issuer()));
    claims.insert("sub".into(), json!(input.user.sub));
    claims.insert("aud".into(), json!(input.client_id));
    claims.insert("exp".into(), json!(input.now + ID_TOKEN_TTL));
    claims.insert("iat".into(), json!(input.now));
    claims.insert("auth_time".into(), json!(input.auth_time));
    claims.insert("sid".into(), json!(input.sid));
    claims.insert("at_hash".into(), json!(at_hash(input.access_token)));
    if let Some(nonce) = input.nonce {
        claims.insert("nonce".into(), json!(nonce));
    }
    idp.key.sign("JWT", &Value::Object(claims))
}
