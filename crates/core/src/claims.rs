//! Claim mapping: seed 000's seven `OIDC_USER_*_KEY`s and seed 001's `usernameField` /
//! `groupsField`, each a claim name or a dotted path into nested claims
//! (`realm_access.roles`). Mapped values are data, not identity (R-UI-4): identity is always
//! `(iss, sub)`.

use serde_json::{Map, Value};

use crate::config::ClaimKeys;

/// Display claims are truncated to this many characters (R-UI-4).
pub const MAX_DISPLAY: usize = 256;
/// The picture URL may be longer.
pub const MAX_PICTURE: usize = 2048;
/// An email longer than this rejects the sign-in (R-UI-4).
pub const MAX_EMAIL: usize = 320;
/// Groups kept per user, and length of each.
pub const MAX_GROUPS: usize = 256;

/// The mapped profile of a signed-in person.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct MappedUser {
    /// Identity (Core §5.7): issuer and subject from the validated ID token.
    pub issuer: String,
    pub subject: String,
    /// `OIDC_USER_ID_KEY` (default `sub`).
    pub user_id: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub picture: Option<String>,
    pub provider: Option<String>,
    pub username: Option<String>,
    pub groups: Vec<String>,
}

/// Why claims could not be mapped.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ClaimError {
    #[error("the email claim is longer than {MAX_EMAIL} characters")]
    EmailTooLong,
    #[error("the user id claim `{0}` is missing or not a string")]
    MissingUserId(String),
    /// The IdP says the email is not verified (`email_verified: false`): forwarding it would
    /// let anyone who registers someone else's address at the IdP act as that person.
    #[error("the IdP marks the email as unverified (email_verified=false)")]
    UnverifiedEmail,
}

/// Whether the claims say explicitly that the email is not verified: `email_verified` is
/// `false`, or the string `"false"` (some IdPs, e.g. Cognito, send strings). An absent claim is
/// not a refusal: many IdPs never send it.
fn email_unverified(claims: &Map<String, Value>) -> bool {
    match claims.get("email_verified") {
        Some(Value::Bool(b)) => !b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("false"),
        _ => false,
    }
}

/// Look up `path` in `claims`: an exact top-level key first (claim names may contain dots, e.g.
/// URIs), then a dotted walk into nested objects.
pub fn lookup<'a>(claims: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    if let Some(v) = claims.get(path) {
        return Some(v);
    }
    let mut parts = path.split('.');
    let mut cur = claims.get(parts.next()?)?;
    for p in parts {
        cur = cur.as_object()?.get(p)?;
    }
    Some(cur)
}

/// A scalar claim as text: strings as-is, numbers and booleans printed; anything else absent.
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn truncate(s: String, max: usize) -> String {
    if s.chars().count() <= max {
        s
    } else {
        s.chars().take(max).collect()
    }
}

fn text(claims: &Map<String, Value>, key: &str, max: usize) -> Option<String> {
    lookup(claims, key)
        .and_then(scalar)
        .map(|s| truncate(s, max))
        .filter(|s| !s.is_empty())
}

/// Groups: an array of scalars, or one string (some IdPs send a single group, or a
/// comma-separated list). `key` may name several paths, comma-separated (Keycloak's
/// `realm_access.roles,resource_access.<client>.roles`); their groups are joined in order.
fn groups(claims: &Map<String, Value>, key: &str) -> Vec<String> {
    let mut raw: Vec<String> = Vec::new();
    for k in key.split(',').map(str::trim).filter(|k| !k.is_empty()) {
        match lookup(claims, k) {
            Some(Value::Array(a)) => raw.extend(a.iter().filter_map(scalar)),
            Some(Value::String(s)) => raw.extend(s.split(',').map(|g| g.trim().to_string())),
            _ => {}
        }
    }
    let mut out: Vec<String> = Vec::new();
    for g in raw
        .into_iter()
        .filter(|g| !g.is_empty())
        .map(|g| truncate(g, MAX_DISPLAY))
    {
        if !out.contains(&g) && out.len() < MAX_GROUPS {
            out.push(g);
        }
    }
    out
}

/// Map merged claims (ID token, then userinfo on top) to a profile.
pub fn map_claims(
    issuer: &str,
    subject: &str,
    claims: &Map<String, Value>,
    keys: &ClaimKeys,
) -> Result<MappedUser, ClaimError> {
    if let Some(email) = lookup(claims, &keys.email).and_then(scalar)
        && email.chars().count() > MAX_EMAIL
    {
        return Err(ClaimError::EmailTooLong);
    }
    // An unverified email is refused by default. When allowed, it is dropped from the profile,
    // so it is never sent as X-Forwarded-Email nor shown as the user's address; a user id taken
    // from that same claim would carry it anyway, so that stays refused.
    let unverified = email_unverified(claims);
    if unverified && (!keys.allow_unverified_email || keys.id == keys.email) {
        return Err(ClaimError::UnverifiedEmail);
    }
    let user_id = if keys.id == "sub" {
        subject.to_string()
    } else {
        text(claims, &keys.id, MAX_DISPLAY)
            .ok_or_else(|| ClaimError::MissingUserId(keys.id.clone()))?
    };
    Ok(MappedUser {
        issuer: issuer.to_string(),
        subject: subject.to_string(),
        user_id,
        email: text(claims, &keys.email, MAX_EMAIL).filter(|_| !unverified),
        name: text(claims, &keys.name, MAX_DISPLAY),
        given_name: text(claims, &keys.given_name, MAX_DISPLAY),
        family_name: text(claims, &keys.family_name, MAX_DISPLAY),
        picture: text(claims, &keys.picture, MAX_PICTURE),
        provider: text(claims, &keys.provider, MAX_DISPLAY),
        username: text(claims, &keys.username, MAX_DISPLAY),
        groups: groups(claims, &keys.groups),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    fn keys() -> ClaimKeys {
        ClaimKeys {
            id: "sub".into(),
            email: "email".into(),
            name: "name".into(),
            given_name: "given_name".into(),
            family_name: "family_name".into(),
            picture: "picture".into(),
            provider: "iss".into(),
            username: "preferred_username".into(),
            groups: "groups".into(),
            allow_unverified_email: false,
        }
    }

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn maps_standard_claims() {
        let c = obj(
            json!({"sub":"s1","iss":"https://idp","email":"a@b.c","name":"A B","given_name":"A",
            "family_name":"B","picture":"https://p","preferred_username":"ab","groups":["x","y","x"]}),
        );
        let u = map_claims("https://idp", "s1", &c, &keys()).unwrap();
        assert_eq!(u.user_id, "s1");
        assert_eq!(u.provider.as_deref(), Some("https://idp"));
        assert_eq!(u.groups, vec!["x", "y"]);
        assert_eq!(u.username.as_deref(), Some("ab"));
    }

    #[test]
    fn dotted_paths_reach_nested_claims() {
        let c = obj(
            json!({"realm_access":{"roles":["admin","viewer"]},"https://x.io/claims.email":"e@x"}),
        );
        let mut k = keys();
        k.groups = "realm_access.roles".into();
        k.email = "https://x.io/claims.email".into();
        let u = map_claims("i", "s", &c, &k).unwrap();
        assert_eq!(u.groups, vec!["admin", "viewer"]);
        assert_eq!(u.email.as_deref(), Some("e@x"));
    }

    /// Keycloak: realm roles and one client's roles, both nested, read from two paths.
    #[test]
    fn several_group_paths_are_joined() {
        let c = obj(json!({
            "realm_access": {"roles": ["offline_access", "viewer"]},
            "resource_access": {"portcullis": {"roles": ["editor", "viewer"]}, "other": {"roles": ["x"]}}
        }));
        let mut k = keys();
        k.groups = "realm_access.roles, resource_access.portcullis.roles".into();
        let u = map_claims("i", "s", &c, &k).unwrap();
        assert_eq!(u.groups, vec!["offline_access", "viewer", "editor"]);
        // A missing path contributes nothing.
        k.groups = "resource_access.absent.roles,realm_access.roles".into();
        let u = map_claims("i", "s", &c, &k).unwrap();
        assert_eq!(u.groups, vec!["offline_access", "viewer"]);
    }

    #[test]
    fn r_ui_4_hostile_values_are_bounded() {
        let c =
            obj(json!({"name": "n".repeat(10_000), "email": format!("{}@x.io", "a".repeat(400))}));
        assert_eq!(
            map_claims("i", "s", &c, &keys()),
            Err(ClaimError::EmailTooLong)
        );
        let c = obj(json!({"name": "n".repeat(10_000), "groups": {"not":"a list"}}));
        let u = map_claims("i", "s", &c, &keys()).unwrap();
        assert_eq!(u.name.unwrap().len(), MAX_DISPLAY);
        assert!(u.groups.is_empty());
    }

    #[test]
    fn custom_user_id_key_must_exist() {
        let mut k = keys();
        k.id = "email".into();
        assert!(map_claims("i", "s", &obj(json!({})), &k).is_err());
        let u = map_claims("i", "s", &obj(json!({"email":"a@b"})), &k).unwrap();
        assert_eq!(u.user_id, "a@b");
        assert_eq!(u.subject, "s");
    }

    /// An explicit `email_verified: false` refuses the sign-in by default; when allowed, the
    /// email is dropped (never forwarded), and an email-derived user id is still refused.
    #[test]
    fn unverified_email_refused_unless_allowed() {
        for v in [json!(false), json!("false"), json!("FALSE")] {
            let c = obj(json!({"email": "victim@corp.example", "email_verified": v}));
            assert_eq!(
                map_claims("i", "s", &c, &keys()),
                Err(ClaimError::UnverifiedEmail),
                "{v}"
            );
            let mut k = keys();
            k.allow_unverified_email = true;
            let u = map_claims("i", "s", &c, &k).unwrap();
            assert_eq!(u.email, None);
            assert_eq!(u.user_id, "s");
            k.id = "email".into();
            assert_eq!(
                map_claims("i", "s", &c, &k),
                Err(ClaimError::UnverifiedEmail)
            );
        }
        for c in [
            json!({"email": "a@b.c", "email_verified": true}),
            json!({"email": "a@b.c", "email_verified": "true"}),
            json!({"email": "a@b.c"}),
        ] {
            let u = map_claims("i", "s", &obj(c), &keys()).unwrap();
            assert_eq!(u.email.as_deref(), Some("a@b.c"));
        }
    }
}
