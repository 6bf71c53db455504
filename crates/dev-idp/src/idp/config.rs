//! Configuration of the development IdP: issuer, registered clients, users.

use std::collections::HashSet;

use crate::idp::DevIdpError;

/// Configuration of a [`DevIdp`](crate::DevIdp).
#[derive(Debug, Clone)]
pub struct DevIdpConfig {
    /// The issuer URL, e.g. `http://127.0.0.1:9000`. A trailing slash is
    /// removed from the issuer string; a path (e.g. `http://host/idp`) is
    /// supported and the endpoints are served under it.
    pub issuer: url::Url,
    /// Registered (confidential) clients.
    pub clients: Vec<DevClient>,
    /// Users that can sign in.
    pub users: Vec<DevUser>,
}

/// A registered confidential client (relying party).
#[derive(Debug, Clone)]
pub struct DevClient {
    pub client_id: String,
    pub client_secret: String,
    /// Redirect URIs; the authorization request must match one exactly.
    pub redirect_uris: Vec<String>,
    /// Allowed `post_logout_redirect_uri` values (exact match).
    pub post_logout_redirect_uris: Vec<String>,
    /// Where to POST back-channel logout tokens, if anywhere.
    pub backchannel_logout_uri: Option<String>,
}

/// A user that can sign in at the development IdP.
#[derive(Debug, Clone)]
pub struct DevUser {
    pub username: String,
    pub password: String,
    pub sub: String,
    pub email: String,
    pub name: String,
    pub given_name: String,
    pub family_name: String,
    pub preferred_username: String,
    pub picture: Option<String>,
    pub groups: Vec<String>,
}

/// The demo users. Passwords equal the usernames:
///
/// | username | password | groups          |
/// |----------|----------|-----------------|
/// | alice    | alice    | admins, devs    |
/// | bob      | bob      | devs            |
/// | carol    | carol    | (none)          |
///
/// Carol's family name contains non-ASCII characters (`Ødegård`) so the demo
/// shows the gateway's percent-encoding of identity headers.
pub fn demo_users() -> Vec<DevUser> {
    fn user(username: &str, sub: &str, given: &str, family: &str, groups: &[&str]) -> DevUser {
        DevUser {
            username: username.to_owned(),
            password: username.to_owned(),
            sub: sub.to_owned(),
            email: format!("{username}@example.com"),
            name: format!("{given} {family}"),
            given_name: given.to_owned(),
            family_name: family.to_owned(),
            preferred_username: username.to_owned(),
            picture: None,
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        }
    }
    vec![
        user(
            "alice",
            "3c5f1a2e-0b7d-4e5a-9f6b-a11ce0000001",
            "Alice",
            "Anderson",
            &["admins", "devs"],
        ),
        user(
            "bob",
            "8d2e4b6f-1c3a-4f7e-8a9b-b0b000000002",
            "Bob",
            "Brown",
            &["devs"],
        ),
        user(
            "carol",
            "f1a7c9e3-5b2d-4c8f-9e1a-ca4010000003",
            "Carol",
            "Ødegård",
            &[],
        ),
    ]
}

/// Checks the configuration; returns the issuer string (no trailing slash)
/// and the issuer's path prefix ("" for a root issuer, else e.g. "/idp").
pub(crate) fn validate(cfg: &DevIdpConfig) -> Result<(String, String), DevIdpError> {
    let issuer = &cfg.issuer;
    let bad = |why: &str| DevIdpError::InvalidIssuer(format!("{issuer}: {why}"));
    if !matches!(issuer.scheme(), "http" | "https") {
        return Err(bad("scheme must be http or https"));
    }
    if issuer.host_str().is_none() {
        return Err(bad("a host is required"));
    }
    if issuer.query().is_some() || issuer.fragment().is_some() {
        return Err(bad("no query or fragment allowed"));
    }
    if !issuer.username().is_empty() || issuer.password().is_some() {
        return Err(bad("no user info allowed"));
    }
    let path = issuer.path().trim_end_matches('/').to_owned();
    if !path
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'.' | b'_' | b'~'))
        || path.contains("//")
    {
        return Err(bad(
            "the path may only contain letters, digits, '/', '-', '.', '_', '~'",
        ));
    }
    let issuer_str = issuer.as_str().trim_end_matches('/').to_owned();

    let mut ids = HashSet::new();
    for c in &cfg.clients {
        let bad = |why: String| DevIdpError::InvalidClient(format!("{}: {why}", c.client_id));
        if c.client_id.is_empty() || !ids.insert(c.client_id.as_str()) {
            return Err(bad("client_id must be non-empty and unique".to_owned()));
        }
        if c.client_secret.is_empty() {
            return Err(bad("client_secret must be non-empty".to_owned()));
        }
        if c.redirect_uris.is_empty() {
            return Err(bad("at least one redirect_uri is required".to_owned()));
        }
        let all_uris = c
            .redirect_uris
            .iter()
            .chain(&c.post_logout_redirect_uris)
            .chain(&c.backchannel_logout_uri);
        for uri in all_uris {
            let parsed =
                url::Url::parse(uri).map_err(|e| bad(format!("invalid URI {uri:?}: {e}")))?;
            if parsed.fragment().is_some() {
                return Err(bad(format!("URI {uri:?} must not contain a fragment")));
            }
        }
    }

    let mut names = HashSet::new();
    let mut subs = HashSet::new();
    for u in &cfg.users {
        if u.username.is_empty() || !names.insert(u.username.as_str()) {
            return Err(DevIdpError::InvalidUser(format!(
                "{:?}: username must be non-empty and unique",
                u.username
            )));
        }
        if u.sub.is_empty() || !subs.insert(u.sub.as_str()) {
            return Err(DevIdpError::InvalidUser(format!(
                "{:?}: sub must be non-empty and unique",
                u.username
            )));
        }
    }
    Ok((issuer_str, path))
}
