//! ID Token validation (R-IDT; OIDC Core §3.1.3.7), in the order SECURITY.md §1.4 gives.
//!
//! Signature and header rules live in [`crate::jose`]; the generic claim checks in
//! [`crate::jose::claims`] (re-exported here for existing callers). This module adds the
//! ID-token-only rules (nonce, at_hash) and the order.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};
use subtle::ConstantTimeEq;

pub use crate::jose::claims::{
    CLOCK_LEEWAY_SECS, SUB_MAX_LEN, check_audience, check_audience_as, check_azp, check_exp,
    check_iat, check_issuer, check_nbf, check_sub, numeric_date, optional_str,
    required_numeric_date, required_str,
};
use crate::jose::{
    ClaimError, JoseError, Jwks, JwsAlg, UnknownKid, VerifyPolicy, parse_compact, verify_jws,
};

/// R-IDT-1: maximum ID token length.
pub const ID_TOKEN_MAX_LEN: usize = 64 * 1024;
/// R-IDT-12: an ID token older than this (by `iat`) is refused.
pub const IAT_MAX_AGE_SECS: i64 = 600;

/// Longest IdP `sid` accepted (it is copied into the session JWT).
pub const MAX_SID_LEN: usize = 255;

/// What the relying party expects of this ID token. `Debug` redacts the nonce and token.
#[derive(Clone, Copy)]
pub struct IdTokenExpectations<'a> {
    /// The discovered issuer; compared byte for byte (R-IDT-8).
    pub issuer: &'a str,
    /// Our `client_id` (R-IDT-9/10).
    pub client_id: &'a str,
    /// The login transaction's nonce (R-IDT-14). Empty never matches.
    pub nonce: &'a str,
    /// R-IDT-6 allow-list (default `[RS256]`, set by configuration).
    pub allowed_algs: &'a [JwsAlg],
    /// Other audiences that may appear next to `client_id` (default none, R-IDT-9).
    pub extra_audiences: &'a [String],
    /// Another name of this client at the issuer that counts as its audience
    /// (`OIDC_EXPECTED_AUDIENCE`, ADFS); `azp`, when present, must still be `client_id`.
    pub client_audience: Option<&'a str>,
    /// The access token from the same token response, for `at_hash` (R-IDT-16).
    pub access_token: Option<&'a str>,
    /// Current unix time in seconds.
    pub now: i64,
}

impl std::fmt::Debug for IdTokenExpectations<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdTokenExpectations")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("nonce", &"[redacted]")
            .field("allowed_algs", &self.allowed_algs)
            .field("extra_audiences", &self.extra_audiences)
            .field("access_token", &self.access_token.map(|_| "[redacted]"))
            .field("now", &self.now)
            .finish()
    }
}

/// The validated claims.
#[derive(Clone, Debug)]
pub struct IdTokenClaims {
    pub iss: String,
    pub sub: String,
    pub sid: Option<String>,
    pub auth_time: Option<i64>,
    /// Floored NumericDate.
    pub iat: i64,
    /// Floored NumericDate.
    pub exp: i64,
    /// Every claim, as received (for claim mapping, R-UI-4).
    pub claims: Map<String, Value>,
}

/// Why an ID token was refused. Messages name the rule, never the token contents.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdTokenError {
    /// R-IDT-1..7 (shape, header, key, signature). Includes `UnknownKid`.
    #[error("ID token: {0}")]
    Jose(#[from] JoseError),
    #[error("ID token issuer mismatch")]
    Issuer,
    #[error("ID token audience not accepted")]
    Audience,
    #[error("ID token azp is not this client")]
    Azp,
    #[error("ID token expired")]
    Expired,
    #[error("ID token iat outside the accepted window")]
    IssuedAt,
    #[error("ID token not yet valid (nbf)")]
    NotYetValid,
    #[error("ID token nonce mismatch")]
    Nonce,
    #[error("ID token sub is not 1-255 printable ASCII characters")]
    Subject,
    #[error("ID token at_hash does not match the access token")]
    AtHash,
    #[error("ID token claim {claim} has the wrong JSON type")]
    ClaimType { claim: &'static str },
    #[error("ID token claim {claim} is missing")]
    Missing { claim: &'static str },
    #[error("ID token claim {claim} is out of range")]
    OutOfRange { claim: &'static str },
}

impl IdTokenError {
    /// True when the signing key is unknown: refetch the JWKS once and retry (R-IDT-3).
    pub fn is_unknown_kid(&self) -> bool {
        matches!(self, IdTokenError::Jose(JoseError::UnknownKid))
    }
}

impl UnknownKid for IdTokenError {
    fn is_unknown_kid(&self) -> bool {
        IdTokenError::is_unknown_kid(self)
    }
}

/// The shared claim checks speak neutrally; say it in ID-token terms.
impl From<ClaimError> for IdTokenError {
    fn from(e: ClaimError) -> Self {
        match e {
            ClaimError::Missing { claim } => IdTokenError::Missing { claim },
            ClaimError::ClaimType { claim } => IdTokenError::ClaimType { claim },
            ClaimError::OutOfRange { claim } => IdTokenError::OutOfRange { claim },
            ClaimError::Issuer => IdTokenError::Issuer,
            ClaimError::Audience => IdTokenError::Audience,
            ClaimError::Azp => IdTokenError::Azp,
            ClaimError::Expired => IdTokenError::Expired,
            ClaimError::IssuedAt => IdTokenError::IssuedAt,
            ClaimError::NotYetValid => IdTokenError::NotYetValid,
            ClaimError::Subject => IdTokenError::Subject,
        }
    }
}

/// Validate an ID token (R-IDT-1..16, in order). Any error means: 401, no session (NS).
pub fn validate_id_token(
    token: &str,
    jwks: &Jwks,
    exp: &IdTokenExpectations,
) -> Result<IdTokenClaims, IdTokenError> {
    let jws = parse_compact(token, ID_TOKEN_MAX_LEN)?; // R-IDT-1
    let alg = verify_jws(&jws, jwks, &VerifyPolicy::id_token(exp.allowed_algs))?; // R-IDT-2..7
    let c = &jws.claims;
    let iss = check_issuer(c, exp.issuer)?; // R-IDT-8
    check_audience_as(c, exp.client_id, exp.client_audience, exp.extra_audiences)?; // R-IDT-9
    check_azp(c, exp.client_id)?; // R-IDT-10
    let expires = check_exp(c, exp.now)?; // R-IDT-11
    let iat = check_iat(c, exp.now, IAT_MAX_AGE_SECS)?; // R-IDT-12
    check_nbf(c, exp.now)?; // R-IDT-13
    check_nonce(c, exp.nonce)?; // R-IDT-14
    let sub = check_sub(c)?; // R-IDT-15
    check_at_hash(c, alg, exp.access_token)?; // R-IDT-16
    let auth_time = numeric_date(c, "auth_time")?; // R-IDT-11 type rule, R-IDT-17
    // The IdP session id travels in every session JWT (for back-channel logout): bounded, so
    // a hostile IdP cannot make sessions that no longer fit their cookie (R-SJ-3).
    let sid = optional_str(c, "sid")?.map(str::to_owned);
    if sid.as_ref().is_some_and(|s| s.len() > MAX_SID_LEN) {
        return Err(ClaimError::OutOfRange { claim: "sid" }.into());
    }
    Ok(IdTokenClaims {
        iss,
        sub,
        sid,
        auth_time,
        iat,
        exp: expires,
        claims: jws.claims,
    })
}

/// R-IDT-14: `nonce` required and equal, in constant time, to the transaction's nonce.
fn check_nonce(c: &Map<String, Value>, expected: &str) -> Result<(), IdTokenError> {
    let got = required_str(c, "nonce")?;
    let equal: bool = got.as_bytes().ct_eq(expected.as_bytes()).into();
    if expected.is_empty() || !equal {
        return Err(IdTokenError::Nonce);
    }
    Ok(())
}

/// R-IDT-16: `at_hash`, when present and the access token is known, must match
/// (Core §3.1.3.8).
fn check_at_hash(
    c: &Map<String, Value>,
    alg: JwsAlg,
    access_token: Option<&str>,
) -> Result<(), IdTokenError> {
    let (Some(claimed), Some(token)) = (optional_str(c, "at_hash")?, access_token) else {
        return Ok(());
    };
    let expected = at_hash(alg, token);
    if bool::from(claimed.as_bytes().ct_eq(expected.as_bytes())) {
        Ok(())
    } else {
        Err(IdTokenError::AtHash)
    }
}

/// `at_hash` of an access token (Core §3.1.3.6): base64url of the left half of the alg's hash
/// (SHA-512 for EdDSA/Ed25519, per the Core errata). Public for the dev IdP.
pub fn at_hash(alg: JwsAlg, access_token: &str) -> String {
    let digest = aws_lc_rs::digest::digest(alg.oidc_hash(), access_token.as_bytes());
    let full = digest.as_ref();
    URL_SAFE_NO_PAD.encode(full.get(..full.len() / 2).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::jose::test_support::{b64, ec384, ed25519, jwks, rsa_a, rsa_b, token, token_raw};
    use crate::jose::{JsonError, Segment};
    use serde_json::json;

    const ISS: &str = "https://idp.example.com";
    const CLIENT: &str = "portcullis";
    const NONCE: &str = "n-0S6_WzA2Mj";
    const NOW: i64 = 1_700_000_000;
    const RS256: &[JwsAlg] = &[JwsAlg::RS256];

    fn good() -> Value {
        json!({
            "iss": ISS, "aud": CLIENT, "sub": "alice", "nonce": NONCE,
            "iat": NOW - 5, "exp": NOW + 300,
        })
    }

    /// `good()` with members replaced; a JSON null removes the member.
    fn with(changes: Value) -> Value {
        let mut c = good();
        for (k, v) in changes.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        c
    }

    fn expect<'a>(extra: &'a [String], access_token: Option<&'a str>) -> IdTokenExpectations<'a> {
        IdTokenExpectations {
            issuer: ISS,
            client_id: CLIENT,
            nonce: NONCE,
            allowed_algs: RS256,
            extra_audiences: extra,
            client_audience: None,
            access_token,
            now: NOW,
        }
    }

    fn run(claims: &Value) -> Result<IdTokenClaims, IdTokenError> {
        let t = token(claims, rsa_a(), JwsAlg::RS256, json!({}));
        validate_id_token(&t, &jwks(&[rsa_a().jwk()]), &expect(&[], None))
    }

    /// R-IDT: a valid token is accepted and its claims returned.
    #[test]
    fn r_idt_valid_token_accepted() {
        let c = run(&with(
            json!({"sid": "s-1", "auth_time": NOW - 10, "email": "a@x"}),
        ))
        .unwrap();
        assert_eq!(c.iss, ISS);
        assert_eq!(c.sub, "alice");
        assert_eq!(c.sid.as_deref(), Some("s-1"));
        assert!(
            run(&with(json!({"sid": "s".repeat(MAX_SID_LEN + 1)}))).is_err(),
            "an over-long sid is refused"
        );
        assert!(run(&with(json!({"sid": "s".repeat(MAX_SID_LEN)}))).is_ok());
        assert_eq!(c.auth_time, Some(NOW - 10));
        assert_eq!((c.iat, c.exp), (NOW - 5, NOW + 300));
        assert_eq!(c.claims["email"], "a@x");
    }

    /// R-IDT-1: an ID token over 64 KiB is refused.
    #[test]
    fn r_idt_1_oversize_rejected() {
        let c = with(json!({"pad": "x".repeat(ID_TOKEN_MAX_LEN)}));
        assert_eq!(
            run(&c).unwrap_err(),
            IdTokenError::Jose(JoseError::TooLarge)
        );
    }

    /// R-IDT-1: JWE (five segments) is refused.
    #[test]
    fn r_idt_1_jwe_rejected() {
        let e = validate_id_token("a.b.c.d.e", &jwks(&[]), &expect(&[], None)).unwrap_err();
        assert_eq!(e, IdTokenError::Jose(JoseError::Jwe));
    }

    /// R-IDT-1: a duplicated claim (a signed token!) is refused, not resolved last-wins.
    #[test]
    fn r_idt_1_duplicate_claim_rejected() {
        let p = format!(
            r#"{{"iss":"{ISS}","aud":"{CLIENT}","sub":"alice","sub":"admin","nonce":"{NONCE}","iat":{NOW},"exp":{}}}"#,
            NOW + 300
        );
        let t = token_raw(
            r#"{"alg":"RS256","kid":"rsa-a"}"#,
            &p,
            rsa_a(),
            JwsAlg::RS256,
        );
        let e = validate_id_token(&t, &jwks(&[rsa_a().jwk()]), &expect(&[], None)).unwrap_err();
        assert_eq!(
            e,
            IdTokenError::Jose(JoseError::Json(
                Segment::Payload,
                JsonError::DuplicateMember
            ))
        );
    }

    /// R-IDT-5: alg none is refused at the ID token level too.
    #[test]
    fn r_idt_5_alg_none_rejected() {
        let t = format!(
            "{}.{}.",
            b64(br#"{"alg":"none"}"#),
            b64(good().to_string().as_bytes())
        );
        let e = validate_id_token(&t, &jwks(&[rsa_a().jwk()]), &expect(&[], None)).unwrap_err();
        assert_eq!(e, IdTokenError::Jose(JoseError::AlgNone));
    }

    /// R-IDT-3: unknown kid is reported so the caller can refetch the JWKS.
    #[test]
    fn r_idt_3_unknown_kid_flagged() {
        let t = token(&good(), rsa_b(), JwsAlg::RS256, json!({}));
        let e = validate_id_token(&t, &jwks(&[rsa_a().jwk()]), &expect(&[], None)).unwrap_err();
        assert!(e.is_unknown_kid());
        assert!(!IdTokenError::Issuer.is_unknown_kid());
    }

    /// R-IDT order: the signature is checked before any claim.
    #[test]
    fn r_idt_signature_checked_before_claims() {
        let t = token(
            &with(json!({"iss": "https://evil"})),
            rsa_b(),
            JwsAlg::RS256,
            json!({"kid": "rsa-a"}),
        );
        let e = validate_id_token(&t, &jwks(&[rsa_a().jwk()]), &expect(&[], None)).unwrap_err();
        assert_eq!(e, IdTokenError::Jose(JoseError::BadSignature));
    }

    /// R-IDT-8: iss must match byte for byte (trailing slash, case, missing, wrong type).
    #[test]
    fn r_idt_8_iss_mismatch_rejected() {
        for iss in [
            "https://idp.example.com/",
            "HTTPS://idp.example.com",
            "https://evil.example",
        ] {
            assert_eq!(
                run(&with(json!({ "iss": iss }))).unwrap_err(),
                IdTokenError::Issuer,
                "{iss}"
            );
        }
        assert_eq!(
            run(&with(json!({"iss": null}))).unwrap_err(),
            IdTokenError::Missing { claim: "iss" }
        );
        assert_eq!(
            run(&with(json!({"iss": [ISS]}))).unwrap_err(),
            IdTokenError::ClaimType { claim: "iss" }
        );
    }

    /// R-IDT-9: wrong or missing aud is refused.
    #[test]
    fn r_idt_9_aud_wrong_or_missing_rejected() {
        assert_eq!(
            run(&with(json!({"aud": "other"}))).unwrap_err(),
            IdTokenError::Audience
        );
        assert_eq!(
            run(&with(json!({"aud": []}))).unwrap_err(),
            IdTokenError::Audience
        );
        assert_eq!(
            run(&with(json!({"aud": ["other"]}))).unwrap_err(),
            IdTokenError::Audience
        );
        assert_eq!(
            run(&with(json!({"aud": null}))).unwrap_err(),
            IdTokenError::Missing { claim: "aud" }
        );
        assert_eq!(
            run(&with(json!({"aud": 5}))).unwrap_err(),
            IdTokenError::ClaimType { claim: "aud" }
        );
        assert!(run(&with(json!({"aud": [CLIENT]}))).is_ok());
    }

    /// R-IDT-9: an array with an untrusted extra audience is refused; a configured one is OK.
    #[test]
    fn r_idt_9_aud_extra_audience() {
        let c = with(json!({"aud": [CLIENT, "https://api.example"]}));
        assert_eq!(run(&c).unwrap_err(), IdTokenError::Audience);
        let t = token(&c, rsa_a(), JwsAlg::RS256, json!({}));
        let extra = vec!["https://api.example".to_owned()];
        assert!(validate_id_token(&t, &jwks(&[rsa_a().jwk()]), &expect(&extra, None)).is_ok());
        // A trusted extra audience alone (without client_id) is still refused.
        let t = token(
            &with(json!({"aud": "https://api.example"})),
            rsa_a(),
            JwsAlg::RS256,
            json!({}),
        );
        assert_eq!(
            validate_id_token(&t, &jwks(&[rsa_a().jwk()]), &expect(&extra, None)).unwrap_err(),
            IdTokenError::Audience
        );
    }

    /// R-IDT-9: an aud array with a non-string member is refused.
    #[test]
    fn r_idt_9_aud_array_non_string_rejected() {
        for bad in [
            json!([CLIENT, 1]),
            json!([CLIENT, null]),
            json!([CLIENT, [CLIENT]]),
        ] {
            assert_eq!(
                run(&with(json!({ "aud": bad }))).unwrap_err(),
                IdTokenError::ClaimType { claim: "aud" }
            );
        }
    }

    /// R-IDT-10: azp, if present, must be our client_id.
    #[test]
    fn r_idt_10_azp_mismatch_rejected() {
        assert_eq!(
            run(&with(json!({"azp": "other"}))).unwrap_err(),
            IdTokenError::Azp
        );
        assert_eq!(
            run(&with(json!({"azp": 1}))).unwrap_err(),
            IdTokenError::ClaimType { claim: "azp" }
        );
        assert!(run(&with(json!({"azp": CLIENT}))).is_ok());
    }

    /// R-IDT-11: exp in the past beyond the 60 s leeway is refused; within it, accepted.
    #[test]
    fn r_idt_11_exp_leeway() {
        assert_eq!(
            run(&with(json!({"exp": NOW - 61}))).unwrap_err(),
            IdTokenError::Expired
        );
        assert!(run(&with(json!({"exp": NOW - 60}))).is_ok());
        assert!(run(&with(json!({"exp": NOW - 1}))).is_ok());
        assert_eq!(
            run(&with(json!({"exp": null}))).unwrap_err(),
            IdTokenError::Missing { claim: "exp" }
        );
    }

    /// R-IDT-11 (CVE-2026-25537): exp as string, null or bool is refused, not "absent".
    #[test]
    fn r_idt_11_exp_wrong_type_rejected() {
        for bad in [
            json!("9999999999"),
            json!(true),
            json!(false),
            json!({}),
            json!([1]),
        ] {
            assert_eq!(
                run(&with(json!({ "exp": bad }))).unwrap_err(),
                IdTokenError::ClaimType { claim: "exp" },
                "{bad}"
            );
        }
        // `with` treats null as "remove", so build the explicit-null token by hand.
        let mut c = good();
        c["exp"] = Value::Null;
        assert_eq!(
            run(&c).unwrap_err(),
            IdTokenError::ClaimType { claim: "exp" }
        );
    }

    /// R-IDT-11: NumericDate range [0, 2^53]; fractional values floored.
    #[test]
    fn r_idt_11_exp_range_and_fraction() {
        for bad in [
            json!(9_007_199_254_740_993u64),
            json!(-1),
            json!(1e300),
            json!(-0.5),
        ] {
            assert_eq!(
                run(&with(json!({ "exp": bad }))).unwrap_err(),
                IdTokenError::OutOfRange { claim: "exp" },
                "{bad}"
            );
        }
        // 2^53 itself is in range (far future).
        assert!(run(&with(json!({"exp": 9_007_199_254_740_992u64}))).is_ok());
        let c = run(&with(json!({"exp": (NOW + 100) as f64 + 0.9}))).unwrap();
        assert_eq!(c.exp, NOW + 100);
    }

    /// R-IDT-12: iat required, not more than 60 s ahead, not older than 600 s.
    #[test]
    fn r_idt_12_iat_window() {
        assert_eq!(
            run(&with(json!({"iat": null}))).unwrap_err(),
            IdTokenError::Missing { claim: "iat" }
        );
        assert_eq!(
            run(&with(json!({"iat": NOW + 61}))).unwrap_err(),
            IdTokenError::IssuedAt
        );
        assert!(run(&with(json!({"iat": NOW + 60}))).is_ok());
        assert_eq!(
            run(&with(json!({"iat": NOW - 601}))).unwrap_err(),
            IdTokenError::IssuedAt
        );
        assert!(run(&with(json!({"iat": NOW - 600}))).is_ok());
        assert_eq!(
            run(&with(json!({"iat": "1700000000"}))).unwrap_err(),
            IdTokenError::ClaimType { claim: "iat" }
        );
    }

    /// R-IDT-13: nbf more than 60 s in the future is refused.
    #[test]
    fn r_idt_13_nbf_future_rejected() {
        assert_eq!(
            run(&with(json!({"nbf": NOW + 61}))).unwrap_err(),
            IdTokenError::NotYetValid
        );
        assert!(run(&with(json!({"nbf": NOW + 60}))).is_ok());
        assert_eq!(
            run(&with(json!({"nbf": "0"}))).unwrap_err(),
            IdTokenError::ClaimType { claim: "nbf" }
        );
    }

    /// R-IDT-11/17: auth_time, if present, must be a number.
    #[test]
    fn r_idt_11_auth_time_must_be_numeric() {
        assert_eq!(
            run(&with(json!({"auth_time": "1700000000"}))).unwrap_err(),
            IdTokenError::ClaimType { claim: "auth_time" }
        );
        assert_eq!(run(&good()).unwrap().auth_time, None);
    }

    /// R-IDT-14: nonce required and equal.
    #[test]
    fn r_idt_14_nonce_mismatch_or_missing_rejected() {
        assert_eq!(
            run(&with(json!({"nonce": "other"}))).unwrap_err(),
            IdTokenError::Nonce
        );
        assert_eq!(
            run(&with(json!({"nonce": ""}))).unwrap_err(),
            IdTokenError::Nonce
        );
        assert_eq!(
            run(&with(json!({"nonce": null}))).unwrap_err(),
            IdTokenError::Missing { claim: "nonce" }
        );
        assert_eq!(
            run(&with(json!({"nonce": 1}))).unwrap_err(),
            IdTokenError::ClaimType { claim: "nonce" }
        );
        // An empty expected nonce never matches, even an empty claim.
        let t = token(
            &with(json!({"nonce": ""})),
            rsa_a(),
            JwsAlg::RS256,
            json!({}),
        );
        let mut e = expect(&[], None);
        e.nonce = "";
        assert_eq!(
            validate_id_token(&t, &jwks(&[rsa_a().jwk()]), &e).unwrap_err(),
            IdTokenError::Nonce
        );
    }

    /// R-IDT-15: sub required, 1..=255 printable ASCII, no spaces or control characters.
    #[test]
    fn r_idt_15_sub_rules() {
        assert_eq!(
            run(&with(json!({"sub": null}))).unwrap_err(),
            IdTokenError::Missing { claim: "sub" }
        );
        assert_eq!(
            run(&with(json!({"sub": 42}))).unwrap_err(),
            IdTokenError::ClaimType { claim: "sub" }
        );
        for bad in [
            String::new(),
            "a".repeat(256),
            "al ice".to_owned(),
            "al\u{1}ice".to_owned(),
            "al\u{0}ice".to_owned(),
            "alice\u{7f}".to_owned(),
            "alicé".to_owned(),
            "alice\n".to_owned(),
        ] {
            assert_eq!(
                run(&with(json!({ "sub": bad }))).unwrap_err(),
                IdTokenError::Subject,
                "{bad:?}"
            );
        }
        assert_eq!(
            run(&with(json!({"sub": "a".repeat(255)})))
                .unwrap()
                .sub
                .len(),
            255
        );
        assert!(run(&with(json!({"sub": "!~"}))).is_ok());
    }

    /// R-IDT-16: at_hash vector from OIDC Core Appendix A.3 (RS256).
    #[test]
    fn r_idt_16_at_hash_core_vector() {
        assert_eq!(
            at_hash(JwsAlg::RS256, "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
    }

    /// R-IDT-16: a matching at_hash is accepted, a wrong one refused.
    #[test]
    fn r_idt_16_at_hash_valid_and_mismatch() {
        let set = jwks(&[rsa_a().jwk()]);
        let at = "access-token-123";
        let ok = token(
            &with(json!({"at_hash": at_hash(JwsAlg::RS256, at)})),
            rsa_a(),
            JwsAlg::RS256,
            json!({}),
        );
        assert!(validate_id_token(&ok, &set, &expect(&[], Some(at))).is_ok());
        assert_eq!(
            validate_id_token(&ok, &set, &expect(&[], Some("other-token"))).unwrap_err(),
            IdTokenError::AtHash
        );
        // A hash of the wrong size (SHA-512 half for RS256) is refused.
        let wrong = token(
            &with(json!({"at_hash": at_hash(JwsAlg::RS512, at)})),
            rsa_a(),
            JwsAlg::RS256,
            json!({}),
        );
        assert_eq!(
            validate_id_token(&wrong, &set, &expect(&[], Some(at))).unwrap_err(),
            IdTokenError::AtHash
        );
        // Without an access token there is nothing to compare.
        assert!(validate_id_token(&wrong, &set, &expect(&[], None)).is_ok());
        let bad_type = token(
            &with(json!({"at_hash": 1})),
            rsa_a(),
            JwsAlg::RS256,
            json!({}),
        );
        assert_eq!(
            validate_id_token(&bad_type, &set, &expect(&[], Some(at))).unwrap_err(),
            IdTokenError::ClaimType { claim: "at_hash" }
        );
    }

    /// R-IDT-16: at_hash uses the alg's hash: SHA-384 for ES384, SHA-512 for EdDSA.
    #[test]
    fn r_idt_16_at_hash_per_alg() {
        let at = "tok";
        let set = jwks(&[ec384().jwk(), ed25519().jwk()]);
        for (key, alg) in [(ec384(), JwsAlg::ES384), (ed25519(), JwsAlg::EdDSA)] {
            let mut e = expect(&[], Some(at));
            let algs = [alg];
            e.allowed_algs = &algs;
            let h = at_hash(alg, at);
            assert_eq!(h.len(), if alg == JwsAlg::ES384 { 32 } else { 43 });
            let t = token(&with(json!({ "at_hash": h })), key, alg, json!({}));
            assert!(validate_id_token(&t, &set, &e).is_ok(), "{alg}");
            let t = token(
                &with(json!({"at_hash": at_hash(JwsAlg::RS256, at)})),
                key,
                alg,
                json!({}),
            );
            assert_eq!(
                validate_id_token(&t, &set, &e).unwrap_err(),
                IdTokenError::AtHash
            );
        }
    }

    /// R-IDT-6 (RFC 8725 §3.1): an ID token with alg HS256 is refused, whether its MAC is keyed
    /// with the RSA public key or anything else; HS256 exists only for the gateway's own keys.
    #[test]
    fn r_idt_6_hs256_id_token_refused() {
        let h = json!({"alg": "HS256", "kid": "rsa-a"}).to_string();
        let input = crate::jose::test_support::signing_input(&h, &good().to_string());
        for secret in [rsa_a().rsa_public_pem().into_bytes(), b"secret".to_vec()] {
            let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &secret);
            let mac = aws_lc_rs::hmac::sign(&key, input.as_bytes());
            let t = format!("{input}.{}", b64(mac.as_ref()));
            let mut e = expect(&[], None);
            e.allowed_algs = &JwsAlg::ALL;
            assert_eq!(
                validate_id_token(&t, &jwks(&[rsa_a().jwk()]), &e).unwrap_err(),
                IdTokenError::Jose(JoseError::AlgNotAllowed)
            );
        }
    }

    /// The neutral claim errors map one to one onto ID-token errors.
    #[test]
    fn claim_errors_map_to_id_token_errors() {
        for (c, i) in [
            (ClaimError::Issuer, IdTokenError::Issuer),
            (ClaimError::Audience, IdTokenError::Audience),
            (ClaimError::Azp, IdTokenError::Azp),
            (ClaimError::Expired, IdTokenError::Expired),
            (ClaimError::IssuedAt, IdTokenError::IssuedAt),
            (ClaimError::NotYetValid, IdTokenError::NotYetValid),
            (ClaimError::Subject, IdTokenError::Subject),
            (
                ClaimError::Missing { claim: "x" },
                IdTokenError::Missing { claim: "x" },
            ),
            (
                ClaimError::ClaimType { claim: "x" },
                IdTokenError::ClaimType { claim: "x" },
            ),
            (
                ClaimError::OutOfRange { claim: "x" },
                IdTokenError::OutOfRange { claim: "x" },
            ),
        ] {
            assert_eq!(IdTokenError::from(c), i);
        }
        assert!(UnknownKid::is_unknown_kid(&IdTokenError::Jose(
            JoseError::UnknownKid
        )));
        assert!(!UnknownKid::is_unknown_kid(&IdTokenError::Issuer));
    }

    /// R-IDT-6: the allow-list in the expectations is what counts.
    #[test]
    fn r_idt_6_allow_list_from_expectations() {
        let t = token(&good(), ec384(), JwsAlg::ES384, json!({}));
        let set = jwks(&[ec384().jwk()]);
        assert_eq!(
            validate_id_token(&t, &set, &expect(&[], None)).unwrap_err(),
            IdTokenError::Jose(JoseError::AlgNotAllowed)
        );
    }

    /// Debug of the expectations never shows the nonce or the access token.
    #[test]
    fn expectations_debug_redacts_secrets() {
        let e = expect(&[], Some("secret-access-token"));
        let d = format!("{e:?}");
        assert!(!d.contains(NONCE) && !d.contains("secret-access-token"));
        assert!(d.contains(CLIENT));
    }

    /// Error messages never contain token contents.
    #[test]
    fn r_idt_error_messages_have_no_token_contents() {
        let e = run(&with(json!({"iss": "https://secret-issuer.example"}))).unwrap_err();
        assert!(!e.to_string().contains("secret"));
    }
}
