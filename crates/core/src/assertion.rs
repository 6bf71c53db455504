//! The signed identity assertion: the claims about a signed-in person that Portcullis signs
//! (ES256) for the app, and their compact JWS serialization. Pure: the caller gives `now`,
//! the key id and, for the last step, the signature; keys and signing live in the gateway.
//!
//! The claims carry the same values as the identity headers (R-HD-2), unencoded: JSON has no
//! header-injection problem, so the app gets the exact strings.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;

use crate::claims::MappedUser;

/// The only algorithm assertions are signed with.
pub const ALG: &str = "ES256";

/// HKDF info label of the assertion signing keys (one key per rotation period): its own
/// label, so no byte of it is shared with a session or CSRF key (RFC 8725 §3.12).
pub const KEY_LABEL: &[u8] = b"identity-assertion/es256-p256/v1";

/// Why an assertion could not be built.
#[derive(Debug, thiserror::Error)]
pub enum AssertionError {
    #[error("assertion claims could not be serialized: {0}")]
    Json(#[from] serde_json::Error),
}

/// The JOSE header.
#[derive(Serialize)]
struct Header<'a> {
    alg: &'static str,
    typ: &'static str,
    kid: &'a str,
}

/// The claims of one assertion.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AssertionClaims<'a> {
    /// Portcullis's public origin.
    pub iss: &'a str,
    /// The app's origin (or the configured audience).
    pub aud: &'a str,
    /// The IdP's subject: with `idp_iss` the person's stable identity (R-CFG-8).
    pub sub: &'a str,
    /// The IdP's issuer (a `sub` is unique per issuer only).
    pub idp_iss: &'a str,
    /// The user id also sent in the user identity header (`OIDC_USER_ID_KEY`, default `sub`).
    pub user: &'a str,
    pub iat: i64,
    pub exp: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<&'a str>,
    /// Always present (possibly empty), like the groups header.
    pub groups: &'a [String],
    /// Portcullis's roles of the person; always present (empty when roles are not in use).
    pub roles: &'a [String],
}

impl<'a> AssertionClaims<'a> {
    /// The claims for `user` with `roles`, issued at `now` for `lifetime` seconds.
    pub fn new(
        issuer: &'a str,
        audience: &'a str,
        user: &'a MappedUser,
        roles: &'a [String],
        now: i64,
        lifetime: i64,
    ) -> Self {
        AssertionClaims {
            iss: issuer,
            aud: audience,
            sub: &user.subject,
            idp_iss: &user.issuer,
            user: &user.user_id,
            iat: now,
            exp: now.saturating_add(lifetime),
            email: user.email.as_deref(),
            name: user.name.as_deref(),
            preferred_username: user.username.as_deref(),
            groups: &user.groups,
            roles,
        }
    }
}

/// The JWS signing input `base64url(header).base64url(claims)` for key `kid`.
pub fn signing_input(kid: &str, claims: &AssertionClaims<'_>) -> Result<String, AssertionError> {
    let header = serde_json::to_vec(&Header {
        alg: ALG,
        typ: "JWT",
        kid,
    })?;
    let payload = serde_json::to_vec(claims)?;
    let mut out = URL_SAFE_NO_PAD.encode(header);
    out.push('.');
    URL_SAFE_NO_PAD.encode_string(payload, &mut out);
    Ok(out)
}

/// The compact JWS: the signing input and the (fixed-size `r || s`, RFC 7518 §3.4) signature.
pub fn compact(signing_input: String, signature: &[u8]) -> String {
    let mut out = signing_input;
    out.push('.');
    URL_SAFE_NO_PAD.encode_string(signature, &mut out);
    out
}

/// The rotation period `now` falls in: keys change every `rotation` seconds, at the same
/// instants on every replica.
pub fn period(now: i64, rotation: i64) -> i64 {
    now.div_euclid(rotation.max(1))
}

/// Whether an assertion issued at `iat` with `exp` may be handed out again at `now`: only
/// while more than half its lifetime is left, so the app always gets one that stays valid
/// for a while (clock skew, a slow upstream).
pub fn reusable(iat: i64, exp: i64, now: i64) -> bool {
    let left = exp - now;
    now >= iat && left > 0 && left.saturating_mul(2) > exp - iat
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::{Value, json};

    fn user() -> MappedUser {
        MappedUser {
            issuer: "https://idp.example".into(),
            subject: "sub-1".into(),
            user_id: "alice\r\nX-Evil: 1".into(),
            email: Some("alice@example.com".into()),
            name: Some("Alice Ä".into()),
            given_name: None,
            family_name: None,
            picture: None,
            provider: None,
            username: Some("alice".into()),
            groups: vec!["admins".into(), "g,2".into()],
        }
    }

    fn decode(part: &str) -> Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
    }

    #[test]
    fn claims_carry_the_identity_and_times() {
        let u = user();
        let roles = vec!["admin".to_string()];
        let c = AssertionClaims::new(
            "https://gw.example",
            "http://app:8080",
            &u,
            &roles,
            1000,
            60,
        );
        let input = signing_input("kid-1", &c).unwrap();
        let (h, p) = input.split_once('.').unwrap();
        assert_eq!(
            decode(h),
            json!({"alg": "ES256", "typ": "JWT", "kid": "kid-1"})
        );
        assert_eq!(
            decode(p),
            json!({
                "iss": "https://gw.example",
                "aud": "http://app:8080",
                "sub": "sub-1",
                "idp_iss": "https://idp.example",
                // Exact strings: no header encoding inside JSON.
                "user": "alice\r\nX-Evil: 1",
                "iat": 1000,
                "exp": 1060,
                "email": "alice@example.com",
                "name": "Alice Ä",
                "preferred_username": "alice",
                "groups": ["admins", "g,2"],
                "roles": ["admin"],
            })
        );
        let jws = compact(input.clone(), &[1, 2, 3]);
        assert_eq!(jws, format!("{input}.AQID"));
    }

    #[test]
    fn absent_values_are_left_out_and_lists_kept() {
        let mut u = user();
        u.email = None;
        u.name = None;
        u.username = None;
        u.groups.clear();
        let c = AssertionClaims::new("i", "a", &u, &[], 5, 60);
        let input = signing_input("k", &c).unwrap();
        let p = decode(input.split_once('.').unwrap().1);
        let o = p.as_object().unwrap();
        for k in ["email", "name", "preferred_username"] {
            assert!(!o.contains_key(k), "{k}");
        }
        assert_eq!(p["groups"], json!([]));
        assert_eq!(p["roles"], json!([]));
        assert_eq!(c.exp, 65);
    }

    #[test]
    fn periods_and_reuse() {
        assert_eq!(period(0, 3600), 0);
        assert_eq!(period(3599, 3600), 0);
        assert_eq!(period(3600, 3600), 1);
        assert_eq!(period(-1, 3600), -1);
        // 60 s lifetime: reused up to 29 s after issue, not at 30 s.
        assert!(reusable(100, 160, 100));
        assert!(reusable(100, 160, 129));
        assert!(!reusable(100, 160, 130));
        assert!(!reusable(100, 160, 200));
        // A clock that went back: never reuse a token from the future.
        assert!(!reusable(100, 160, 99));
    }
}
