//! UserInfo response validation (R-UI; OIDC Core §5.3).
//!
//! The HTTP call (bearer header, 10 s timeout, 1 MiB streaming cap, Content-Type dispatch) is
//! the gateway's job; this module judges the body it got.

use serde_json::{Map, Value};

use super::id_token::IdTokenError;
use crate::jose::claims::{check_audience, check_issuer, required_str};
use crate::jose::json::parse_strict_object;
use crate::jose::{
    ClaimError, JoseError, JsonError, Jwks, JwsAlg, UnknownKid, VerifyPolicy, parse_compact,
    verify_jws,
};

/// R-UI-1: maximum UserInfo body (JSON or JWT).
pub const USERINFO_MAX_LEN: usize = 1024 * 1024;

/// Why a UserInfo response was refused (→ 401, no session). No response contents in messages.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserInfoError {
    #[error("UserInfo response too large")]
    TooLarge,
    /// R-UI-2: not a strict JSON object (duplicates, depth, type).
    #[error("UserInfo response: {0}")]
    Json(JsonError),
    /// R-UI-2: signed UserInfo failed R-IDT-1..7 (includes `UnknownKid`).
    #[error("UserInfo JWT: {0}")]
    Jose(#[from] JoseError),
    #[error("UserInfo JWT issuer mismatch")]
    Issuer,
    #[error("UserInfo JWT audience not accepted")]
    Audience,
    /// R-UI-3: `sub` differs from the ID token's `sub`.
    #[error("UserInfo sub does not match the ID token")]
    Subject,
    #[error("UserInfo claim {claim} is missing")]
    Missing { claim: &'static str },
    #[error("UserInfo claim {claim} has the wrong JSON type")]
    ClaimType { claim: &'static str },
}

impl UserInfoError {
    /// True when the signing key is unknown: refetch the JWKS once and retry (R-IDT-3).
    pub fn is_unknown_kid(&self) -> bool {
        matches!(self, UserInfoError::Jose(JoseError::UnknownKid))
    }
}

impl UnknownKid for UserInfoError {
    fn is_unknown_kid(&self) -> bool {
        UserInfoError::is_unknown_kid(self)
    }
}

/// The shared claim checks speak neutrally; say it in UserInfo terms. Only the checks UserInfo
/// runs (iss, aud, sub) can occur; the rest map to a type error on a pseudo-claim.
impl From<ClaimError> for UserInfoError {
    fn from(e: ClaimError) -> Self {
        match e {
            ClaimError::Issuer => UserInfoError::Issuer,
            ClaimError::Audience | ClaimError::Azp => UserInfoError::Audience,
            ClaimError::Subject => UserInfoError::Subject,
            ClaimError::Missing { claim } => UserInfoError::Missing { claim },
            ClaimError::ClaimType { claim } | ClaimError::OutOfRange { claim } => {
                UserInfoError::ClaimType { claim }
            }
            ClaimError::Expired | ClaimError::IssuedAt | ClaimError::NotYetValid => {
                UserInfoError::ClaimType { claim: "token" }
            }
        }
    }
}

/// ID-token errors in UserInfo terms (kept for callers that run ID-token checks on UserInfo).
impl From<IdTokenError> for UserInfoError {
    fn from(e: IdTokenError) -> Self {
        match e {
            IdTokenError::Jose(j) => UserInfoError::Jose(j),
            IdTokenError::Issuer => UserInfoError::Issuer,
            IdTokenError::Audience | IdTokenError::Azp => UserInfoError::Audience,
            IdTokenError::Subject => UserInfoError::Subject,
            IdTokenError::Missing { claim } => UserInfoError::Missing { claim },
            IdTokenError::ClaimType { claim } | IdTokenError::OutOfRange { claim } => {
                UserInfoError::ClaimType { claim }
            }
            IdTokenError::Expired
            | IdTokenError::IssuedAt
            | IdTokenError::NotYetValid
            | IdTokenError::Nonce
            | IdTokenError::AtHash => UserInfoError::ClaimType { claim: "token" },
        }
    }
}

/// `application/json` UserInfo (R-UI-2/3): a strict JSON object whose `sub` exactly equals the
/// ID token's `sub`.
pub fn parse_userinfo_json(
    body: &[u8],
    id_token_sub: &str,
) -> Result<Map<String, Value>, UserInfoError> {
    if body.len() > USERINFO_MAX_LEN {
        return Err(UserInfoError::TooLarge);
    }
    let claims = parse_strict_object(body).map_err(UserInfoError::Json)?;
    check_sub_matches(&claims, id_token_sub)?;
    Ok(claims)
}

/// `application/jwt` UserInfo (R-UI-2/3): R-IDT-1..9 with `iss` and `aud` required, then the
/// `sub` match. Same typ rules as ID tokens (absent or `JWT`).
pub fn verify_userinfo_jwt(
    token: &str,
    jwks: &Jwks,
    issuer: &str,
    client_id: &str,
    allowed_algs: &[JwsAlg],
    id_token_sub: &str,
) -> Result<Map<String, Value>, UserInfoError> {
    let jws = parse_compact(token, USERINFO_MAX_LEN)?; // R-IDT-1
    verify_jws(&jws, jwks, &VerifyPolicy::id_token(allowed_algs))?; // R-IDT-2..7
    check_issuer(&jws.claims, issuer)?; // R-IDT-8
    check_audience(&jws.claims, client_id, &[])?; // R-IDT-9
    check_sub_matches(&jws.claims, id_token_sub)?; // R-UI-3
    Ok(jws.claims)
}

/// R-UI-3 (Core §5.3.2, `rp-userinfo-bad-sub-claim`): exact, byte-for-byte equality.
fn check_sub_matches(claims: &Map<String, Value>, id_token_sub: &str) -> Result<(), UserInfoError> {
    let sub = required_str(claims, "sub")?;
    if sub.as_bytes() == id_token_sub.as_bytes() {
        Ok(())
    } else {
        Err(UserInfoError::Subject)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::jose::test_support::{b64, jwks, rsa_a, rsa_b, token};
    use serde_json::json;

    const ISS: &str = "https://idp.example.com";
    const CLIENT: &str = "portcullis";
    const RS256: &[JwsAlg] = &[JwsAlg::RS256];

    fn verify(claims: &Value, header: Value) -> Result<Map<String, Value>, UserInfoError> {
        let t = token(claims, rsa_a(), JwsAlg::RS256, header);
        verify_userinfo_jwt(&t, &jwks(&[rsa_a().jwk()]), ISS, CLIENT, RS256, "alice")
    }

    fn good_jwt_claims() -> Value {
        json!({"iss": ISS, "aud": CLIENT, "sub": "alice", "email": "alice@example.com"})
    }

    /// R-UI-3: a JSON body with the same sub is accepted and returned whole.
    #[test]
    fn r_ui_3_json_sub_match_accepted() {
        let m = parse_userinfo_json(br#"{"sub":"alice","email":"a@x","groups":["g"]}"#, "alice")
            .unwrap();
        assert_eq!(m["email"], "a@x");
        assert_eq!(m["groups"][0], "g");
    }

    /// R-UI-3: any difference in sub is refused (case, whitespace, prefix).
    #[test]
    fn r_ui_3_json_sub_mismatch_rejected() {
        for body in [
            r#"{"sub":"bob"}"#,
            r#"{"sub":"Alice"}"#,
            r#"{"sub":"alice "}"#,
            r#"{"sub":"alic"}"#,
            r#"{"sub":""}"#,
        ] {
            assert_eq!(
                parse_userinfo_json(body.as_bytes(), "alice").unwrap_err(),
                UserInfoError::Subject,
                "{body}"
            );
        }
    }

    /// R-UI-3: sub missing or not a string is refused.
    #[test]
    fn r_ui_3_json_sub_missing_or_wrong_type() {
        assert_eq!(
            parse_userinfo_json(br#"{"email":"a@x"}"#, "alice").unwrap_err(),
            UserInfoError::Missing { claim: "sub" }
        );
        assert_eq!(
            parse_userinfo_json(br#"{"sub":["alice"]}"#, "alice").unwrap_err(),
            UserInfoError::ClaimType { claim: "sub" }
        );
    }

    /// R-UI-2: the JSON body must be an object.
    #[test]
    fn r_ui_2_json_non_object_rejected() {
        for body in [&b"[]"[..], b"\"alice\"", b"1", b"null", b"<html>", b""] {
            assert!(matches!(
                parse_userinfo_json(body, "alice").unwrap_err(),
                UserInfoError::Json(_)
            ));
        }
        assert_eq!(
            parse_userinfo_json(b"[{\"sub\":\"alice\"}]", "alice").unwrap_err(),
            UserInfoError::Json(JsonError::NotObject)
        );
    }

    /// R-UI-2 / R-IDT-1: duplicate members are refused (a second `sub` must not win).
    #[test]
    fn r_ui_2_json_duplicate_members_rejected() {
        for body in [
            r#"{"sub":"alice","sub":"bob"}"#,
            r#"{"sub":"bob","sub":"alice"}"#,
            r#"{"sub":"alice","address":{"country":"a","country":"b"}}"#,
        ] {
            assert_eq!(
                parse_userinfo_json(body.as_bytes(), "alice").unwrap_err(),
                UserInfoError::Json(JsonError::DuplicateMember),
                "{body}"
            );
        }
    }

    /// R-UI-1: over 1 MiB is refused.
    #[test]
    fn r_ui_1_too_large_rejected() {
        let body = format!(
            r#"{{"sub":"alice","pad":"{}"}}"#,
            "x".repeat(USERINFO_MAX_LEN)
        );
        assert_eq!(
            parse_userinfo_json(body.as_bytes(), "alice").unwrap_err(),
            UserInfoError::TooLarge
        );
    }

    /// R-UI-2: a valid signed UserInfo response is accepted.
    #[test]
    fn r_ui_2_jwt_valid_accepted() {
        let m = verify(&good_jwt_claims(), json!({})).unwrap();
        assert_eq!(m["email"], "alice@example.com");
        let m = verify(&good_jwt_claims(), json!({"typ": "JWT"})).unwrap();
        assert_eq!(m["sub"], "alice");
    }

    /// R-UI-3: signed UserInfo with a different sub is refused.
    #[test]
    fn r_ui_3_jwt_sub_mismatch_rejected() {
        let mut c = good_jwt_claims();
        c["sub"] = json!("mallory");
        assert_eq!(verify(&c, json!({})).unwrap_err(), UserInfoError::Subject);
    }

    /// R-UI-2: iss and aud are required and checked on signed UserInfo.
    #[test]
    fn r_ui_2_jwt_iss_aud_required() {
        let mut c = good_jwt_claims();
        c.as_object_mut().unwrap().remove("iss");
        assert_eq!(
            verify(&c, json!({})).unwrap_err(),
            UserInfoError::Missing { claim: "iss" }
        );
        let mut c = good_jwt_claims();
        c["iss"] = json!("https://idp.example.com/");
        assert_eq!(verify(&c, json!({})).unwrap_err(), UserInfoError::Issuer);
        let mut c = good_jwt_claims();
        c.as_object_mut().unwrap().remove("aud");
        assert_eq!(
            verify(&c, json!({})).unwrap_err(),
            UserInfoError::Missing { claim: "aud" }
        );
        let mut c = good_jwt_claims();
        c["aud"] = json!([CLIENT, "other"]);
        assert_eq!(verify(&c, json!({})).unwrap_err(), UserInfoError::Audience);
    }

    /// The neutral claim errors map onto UserInfo errors; unknown kid is a refetch hint.
    #[test]
    fn claim_errors_map_to_userinfo_errors() {
        for (c, u) in [
            (ClaimError::Issuer, UserInfoError::Issuer),
            (ClaimError::Audience, UserInfoError::Audience),
            (ClaimError::Azp, UserInfoError::Audience),
            (ClaimError::Subject, UserInfoError::Subject),
            (
                ClaimError::Missing { claim: "x" },
                UserInfoError::Missing { claim: "x" },
            ),
            (
                ClaimError::ClaimType { claim: "x" },
                UserInfoError::ClaimType { claim: "x" },
            ),
            (
                ClaimError::OutOfRange { claim: "x" },
                UserInfoError::ClaimType { claim: "x" },
            ),
            (
                ClaimError::Expired,
                UserInfoError::ClaimType { claim: "token" },
            ),
        ] {
            assert_eq!(UserInfoError::from(c), u);
        }
        assert!(UnknownKid::is_unknown_kid(&UserInfoError::Jose(
            JoseError::UnknownKid
        )));
        assert!(!UnknownKid::is_unknown_kid(&UserInfoError::Subject));
    }

    /// R-UI-2: signed UserInfo goes through the same verifier (none, typ, signature, kid).
    #[test]
    fn r_ui_2_jwt_verifier_rules_apply() {
        let none = format!(
            "{}.{}.",
            b64(br#"{"alg":"none"}"#),
            b64(good_jwt_claims().to_string().as_bytes())
        );
        let set = jwks(&[rsa_a().jwk()]);
        assert_eq!(
            verify_userinfo_jwt(&none, &set, ISS, CLIENT, RS256, "alice").unwrap_err(),
            UserInfoError::Jose(JoseError::AlgNone)
        );
        assert_eq!(
            verify(&good_jwt_claims(), json!({"typ": "at+jwt"})).unwrap_err(),
            UserInfoError::Jose(JoseError::Typ)
        );
        let other = token(
            &good_jwt_claims(),
            rsa_b(),
            JwsAlg::RS256,
            json!({"kid": "rsa-a"}),
        );
        assert_eq!(
            verify_userinfo_jwt(&other, &set, ISS, CLIENT, RS256, "alice").unwrap_err(),
            UserInfoError::Jose(JoseError::BadSignature)
        );
        let unknown = token(&good_jwt_claims(), rsa_b(), JwsAlg::RS256, json!({}));
        assert!(
            verify_userinfo_jwt(&unknown, &set, ISS, CLIENT, RS256, "alice")
                .unwrap_err()
                .is_unknown_kid()
        );
    }
}
