//! Back-channel logout token validation (R-BCL; OpenID Connect Back-Channel Logout 1.0
//! §2.4–2.6), in the order SECURITY.md §1.12 gives.
//!
//! The token goes through the same verifier as ID tokens ([`crate::jose::verify_jws`], same
//! JWKS, key selection and unknown-kid refetch) under [`VerifyPolicy::logout_token`], and the
//! shared claim checks of [`crate::jose::claims`]. This module adds the logout-only rules
//! (`sub`/`sid`, `events`, no `nonce`, `jti`) and the request-body parsing (R-BCL request
//! handling 1–2). The replay check of step 8 needs a store, so it is the caller's: it
//! remembers `(iss, jti)` for [`LogoutClaims::replay_ttl`] seconds.

use serde_json::{Map, Value};

use crate::jose::claims::{
    SUB_MAX_LEN, check_audience, check_exp, check_iat, check_issuer, optional_str, required_str,
};
use crate::jose::{
    ClaimError, JoseError, Jwks, JwsAlg, UnknownKid, VerifyPolicy, parse_compact, verify_jws,
};
use crate::oidc::id_token::MAX_SID_LEN;

/// R-BCL-1: maximum logout token length (and of the `logout_token` form value).
pub const MAX_LOGOUT_TOKEN: usize = 64 * 1024;
/// R-BCL-6: the `events` member that makes a JWT a logout token (BCL §2.4).
pub const BACKCHANNEL_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// R-BCL-4: a logout token older than this (by `iat`) is refused; the future side is the
/// shared 60 s leeway.
pub const LOGOUT_IAT_MAX_AGE_SECS: i64 = 300;
/// R-BCL-8: `(iss, jti)` is remembered for at least this long.
pub const REPLAY_MIN_TTL_SECS: i64 = 600;
/// R-BCL-8: longest `jti` accepted (it becomes a key in the replay store).
pub const JTI_MAX_LEN: usize = 256;

/// What the relying party expects of a logout token. Holds no secrets.
#[derive(Clone, Copy, Debug)]
pub struct LogoutExpectations<'a> {
    /// The discovered issuer; compared byte for byte (R-BCL-4, as R-IDT-8).
    pub issuer: &'a str,
    /// Our `client_id`; `aud` must contain it (R-BCL-4, as R-IDT-9).
    pub client_id: &'a str,
    /// The ID-token allow-list (default `[RS256]`, R-BCL-3).
    pub allowed_algs: &'a [JwsAlg],
    /// `require_logout_typ`: `typ` must be `logout+jwt` (R-BCL-9).
    pub require_typ: bool,
    /// Current unix time in seconds.
    pub now: i64,
}

/// The validated claims of a logout token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutClaims {
    pub iss: String,
    /// 1–255 bytes when present; at least one of `sub` and `sid` is present.
    pub sub: Option<String>,
    /// 1–255 bytes when present.
    pub sid: Option<String>,
    /// 1–256 bytes.
    pub jti: String,
    /// Floored NumericDate.
    pub iat: i64,
    /// Floored NumericDate.
    pub exp: i64,
}

impl LogoutClaims {
    /// How long `(iss, jti)` must be remembered: `max(exp - now, 600)` seconds from now
    /// (R-BCL-8).
    pub fn replay_ttl(&self, now: i64) -> i64 {
        self.exp.saturating_sub(now).max(REPLAY_MIN_TTL_SECS)
    }
}

/// Why a logout request or token was refused. Messages name the rule, never the token
/// contents; [`LogoutTokenError::description`] is what the 400 response says.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogoutTokenError {
    /// Request handling 2: the form has no `logout_token`.
    #[error("logout_token parameter missing")]
    FormMissing,
    /// Request handling 2: `logout_token` appears more than once.
    #[error("logout_token parameter repeated")]
    FormRepeated,
    /// Request handling 2: `logout_token` is present but empty.
    #[error("logout_token parameter empty")]
    FormEmpty,
    /// Request handling 1: the body is not `application/x-www-form-urlencoded` text.
    #[error("request body is not form-encoded")]
    FormMalformed,
    /// R-BCL-1..3, 9 (size, shape, header, typ, alg, key, signature). Includes `UnknownKid`:
    /// refetch the JWKS once and retry.
    #[error("logout token: {0}")]
    Jose(#[from] JoseError),
    /// R-BCL-4 (`iss`, `aud`, `iat`, `exp`) and the type rules of every claim.
    #[error("logout token: {0}")]
    Claim(#[from] ClaimError),
    /// R-BCL-5: neither `sub` nor `sid`.
    #[error("logout token has neither sub nor sid")]
    NoSubject,
    /// R-BCL-5/8: `sub`, `sid` or `jti` is an empty string.
    #[error("logout token claim {claim} is empty")]
    Empty { claim: &'static str },
    /// `sub`/`sid` over 255 bytes, `jti` over 256: we would have to store it.
    #[error("logout token claim {claim} is too long")]
    TooLong { claim: &'static str },
    /// R-BCL-6: `events` lacks the back-channel logout member.
    #[error("logout token events lacks the back-channel logout event")]
    EventMissing,
    /// R-BCL-6: the back-channel logout member of `events` is not a JSON object.
    #[error("logout token back-channel logout event is not an object")]
    EventNotObject,
    /// R-BCL-7: a `nonce` claim is present (BCL §2.4 forbids it).
    #[error("logout token carries a nonce")]
    Nonce,
}

impl LogoutTokenError {
    /// The short `error_description` for the 400 JSON (BCL §2.8): generic, never token
    /// contents or key details.
    pub fn description(&self) -> &'static str {
        match self {
            LogoutTokenError::FormMissing
            | LogoutTokenError::FormRepeated
            | LogoutTokenError::FormEmpty
            | LogoutTokenError::FormMalformed => "exactly one logout_token form parameter required",
            LogoutTokenError::Jose(e) => jose_description(e),
            LogoutTokenError::Claim(e) => claim_description(e),
            LogoutTokenError::NoSubject
            | LogoutTokenError::Empty { .. }
            | LogoutTokenError::TooLong { .. } => "invalid sub, sid or jti",
            LogoutTokenError::EventMissing | LogoutTokenError::EventNotObject => "invalid events",
            LogoutTokenError::Nonce => "nonce not allowed",
        }
    }

    /// True when the signing key is unknown: refetch the JWKS once and retry (R-BCL-2,
    /// R-IDT-3).
    pub fn is_unknown_kid(&self) -> bool {
        matches!(self, LogoutTokenError::Jose(JoseError::UnknownKid))
    }
}

impl UnknownKid for LogoutTokenError {
    fn is_unknown_kid(&self) -> bool {
        LogoutTokenError::is_unknown_kid(self)
    }
}

fn jose_description(e: &JoseError) -> &'static str {
    match e {
        JoseError::MissingAlg | JoseError::AlgNone | JoseError::AlgNotAllowed => {
            "algorithm not accepted"
        }
        JoseError::Typ => "typ not accepted",
        JoseError::Kid
        | JoseError::UnknownKid
        | JoseError::NoUsableKey
        | JoseError::EcdsaSignatureLength
        | JoseError::BadSignature => "signature verification failed",
        _ => "malformed logout token",
    }
}

fn claim_description(e: &ClaimError) -> &'static str {
    match e {
        ClaimError::Issuer => "issuer mismatch",
        ClaimError::Audience => "audience mismatch",
        ClaimError::Expired => "token expired",
        ClaimError::IssuedAt => "iat outside the accepted window",
        ClaimError::Missing { .. } => "required claim missing",
        _ => "invalid claim",
    }
}

/// The `iss` a logout token claims, before anything is verified: only to choose which IdP's
/// keys and expectations [`validate_logout_token`] then judges it by, when a gateway has
/// several. `None` when the token does not parse or names no issuer.
pub fn claimed_issuer(token: &str) -> Option<String> {
    let jws = parse_compact(token, MAX_LOGOUT_TOKEN).ok()?;
    jws.claims
        .get("iss")
        .and_then(|v| v.as_str())
        .map(str::to_string)
}

/// Validate a logout token (R-BCL validation 1–10, in order) except the replay check of step 8,
/// which the caller does with [`LogoutClaims::replay_ttl`]. Any error means: 400, no state
/// change. On [`LogoutTokenError::is_unknown_kid`], refetch the JWKS once and call again.
pub fn validate_logout_token(
    token: &str,
    jwks: &Jwks,
    exp: &LogoutExpectations,
) -> Result<LogoutClaims, LogoutTokenError> {
    let jws = parse_compact(token, MAX_LOGOUT_TOKEN)?; // R-BCL-1
    // R-BCL-2 (signature, same JWKS and kid rules), 3 (alg allow-list, never none), 9 (typ).
    let policy = VerifyPolicy::logout_token(exp.allowed_algs, exp.require_typ);
    verify_jws(&jws, jwks, &policy)?;
    let c = &jws.claims;
    let iss = check_issuer(c, exp.issuer)?; // R-BCL-4
    check_audience(c, exp.client_id, &[])?;
    let iat = check_iat(c, exp.now, LOGOUT_IAT_MAX_AGE_SECS)?;
    let expires = check_exp(c, exp.now)?;
    let (sub, sid) = check_subject(c)?; // R-BCL-5
    check_events(c)?; // R-BCL-6
    if c.contains_key("nonce") {
        return Err(LogoutTokenError::Nonce); // R-BCL-7
    }
    let jti = bounded_str(required_str(c, "jti")?, "jti", JTI_MAX_LEN)?; // R-BCL-8
    // R-BCL-10: every other claim is ignored.
    Ok(LogoutClaims {
        iss,
        sub,
        sid,
        jti,
        iat,
        exp: expires,
    })
}

/// R-BCL-5: `sub`, `sid` or both, each a non-empty string of bounded length.
fn check_subject(
    c: &Map<String, Value>,
) -> Result<(Option<String>, Option<String>), LogoutTokenError> {
    let sub = optional_str(c, "sub")?
        .map(|s| bounded_str(s, "sub", SUB_MAX_LEN))
        .transpose()?;
    let sid = optional_str(c, "sid")?
        .map(|s| bounded_str(s, "sid", MAX_SID_LEN))
        .transpose()?;
    if sub.is_none() && sid.is_none() {
        return Err(LogoutTokenError::NoSubject);
    }
    Ok((sub, sid))
}

/// A string claim that must be 1..=`max` bytes.
fn bounded_str(s: &str, claim: &'static str, max: usize) -> Result<String, LogoutTokenError> {
    if s.is_empty() {
        Err(LogoutTokenError::Empty { claim })
    } else if s.len() > max {
        Err(LogoutTokenError::TooLong { claim })
    } else {
        Ok(s.to_owned())
    }
}

/// R-BCL-6: `events` is an object whose back-channel logout member is an object.
fn check_events(c: &Map<String, Value>) -> Result<(), LogoutTokenError> {
    const CLAIM: &str = "events";
    let events = match c.get(CLAIM) {
        None => return Err(ClaimError::Missing { claim: CLAIM }.into()),
        Some(Value::Object(events)) => events,
        Some(_) => return Err(ClaimError::ClaimType { claim: CLAIM }.into()),
    };
    match events.get(BACKCHANNEL_EVENT) {
        None => Err(LogoutTokenError::EventMissing),
        Some(Value::Object(_)) => Ok(()),
        Some(_) => Err(LogoutTokenError::EventNotObject),
    }
}

/// R-BCL request handling 1–2: the form body (already size-limited by the caller) must carry
/// `logout_token` exactly once; other parameters are ignored.
///
/// Strict `application/x-www-form-urlencoded`: the body is visible ASCII only (a form
/// serializer percent-encodes everything else), every `%` starts a two-hex-digit escape, and
/// every decoded name and value is UTF-8. Anything else is [`LogoutTokenError::FormMalformed`].
/// Empty pairs (`&&`) are skipped; a name without `=` has an empty value.
pub fn logout_token_from_form(body: &[u8]) -> Result<String, LogoutTokenError> {
    if !body.iter().all(|b| (0x21..=0x7E).contains(b)) {
        return Err(LogoutTokenError::FormMalformed);
    }
    let mut found: Option<String> = None;
    for pair in body.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
        let (name, value) = match pair.iter().position(|b| *b == b'=') {
            Some(i) => (pair.get(..i), pair.get(i + 1..)),
            None => (Some(pair), Some(&b""[..])),
        };
        let (Some(name), Some(value)) = (name, value) else {
            return Err(LogoutTokenError::FormMalformed);
        };
        let name = form_decode(name)?;
        let value = form_decode(value)?;
        if name != "logout_token" {
            continue; // request handling 2: other parameters are ignored
        }
        if found.is_some() {
            return Err(LogoutTokenError::FormRepeated);
        }
        found = Some(value);
    }
    match found {
        None => Err(LogoutTokenError::FormMissing),
        Some(t) if t.is_empty() => Err(LogoutTokenError::FormEmpty),
        Some(t) if t.len() > MAX_LOGOUT_TOKEN => Err(JoseError::TooLarge.into()),
        Some(t) => Ok(t),
    }
}

/// Decode one form component: `+` is a space, `%XX` a byte; the result must be UTF-8.
fn form_decode(raw: &[u8]) -> Result<String, LogoutTokenError> {
    let mut out = Vec::with_capacity(raw.len());
    let mut bytes = raw.iter();
    while let Some(&b) = bytes.next() {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = bytes.next().and_then(|h| hex_value(*h));
                let lo = bytes.next().and_then(|l| hex_value(*l));
                let (Some(hi), Some(lo)) = (hi, lo) else {
                    return Err(LogoutTokenError::FormMalformed);
                };
                out.push(hi << 4 | lo);
            }
            _ => out.push(b),
        }
    }
    String::from_utf8(out).map_err(|_| LogoutTokenError::FormMalformed)
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::jose::test_support::{b64, ec256, jwks, rsa_a, rsa_attacker, rsa_b, token};
    use serde_json::json;

    const ISS: &str = "https://idp.example.com";
    const CLIENT: &str = "portcullis";
    const NOW: i64 = 1_700_000_000;
    const RS256: &[JwsAlg] = &[JwsAlg::RS256];

    fn good() -> Value {
        json!({
            "iss": ISS, "aud": CLIENT, "sub": "alice", "sid": "s-1", "jti": "j-1",
            "iat": NOW - 5, "exp": NOW + 120,
            "events": { BACKCHANNEL_EVENT: {} },
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

    fn expect(require_typ: bool) -> LogoutExpectations<'static> {
        LogoutExpectations {
            issuer: ISS,
            client_id: CLIENT,
            allowed_algs: RS256,
            require_typ,
            now: NOW,
        }
    }

    fn run_with(
        claims: &Value,
        header: Value,
        require_typ: bool,
    ) -> Result<LogoutClaims, LogoutTokenError> {
        let t = token(claims, rsa_a(), JwsAlg::RS256, header);
        validate_logout_token(&t, &jwks(&[rsa_a().jwk()]), &expect(require_typ))
    }

    fn run(claims: &Value) -> Result<LogoutClaims, LogoutTokenError> {
        run_with(claims, json!({}), false)
    }

    fn claim_err(e: ClaimError) -> LogoutTokenError {
        LogoutTokenError::Claim(e)
    }

    /// R-BCL: a valid RS256 token from the JWKS is accepted and its claims returned.
    #[test]
    fn r_bcl_valid_token_accepted() {
        let c = run(&good()).unwrap();
        assert_eq!(
            c,
            LogoutClaims {
                iss: ISS.to_owned(),
                sub: Some("alice".to_owned()),
                sid: Some("s-1".to_owned()),
                jti: "j-1".to_owned(),
                iat: NOW - 5,
                exp: NOW + 120,
            }
        );
        // sub alone and sid alone are each enough (R-BCL-5); aud as an array (R-IDT-9).
        let c = run(&with(json!({"sid": null}))).unwrap();
        assert_eq!((c.sub.as_deref(), c.sid), (Some("alice"), None));
        let c = run(&with(json!({"sub": null}))).unwrap();
        assert_eq!((c.sub, c.sid.as_deref()), (None, Some("s-1")));
        assert!(run(&with(json!({"aud": [CLIENT]}))).is_ok());
    }

    /// R-BCL-1: a token over 64 KiB is refused.
    #[test]
    fn r_bcl_1_oversize_rejected() {
        let c = with(json!({"pad": "x".repeat(MAX_LOGOUT_TOKEN)}));
        assert_eq!(
            run(&c).unwrap_err(),
            LogoutTokenError::Jose(JoseError::TooLarge)
        );
        let long = "a".repeat(MAX_LOGOUT_TOKEN + 1);
        assert_eq!(
            validate_logout_token(&long, &jwks(&[]), &expect(false)).unwrap_err(),
            LogoutTokenError::Jose(JoseError::TooLarge)
        );
    }

    /// R-BCL-1: an encrypted (JWE, five segments) token and other shapes are refused.
    #[test]
    fn r_bcl_1_jwe_and_bad_shape_rejected() {
        let set = jwks(&[rsa_a().jwk()]);
        let e = validate_logout_token("a.b.c.d.e", &set, &expect(false)).unwrap_err();
        assert_eq!(e, LogoutTokenError::Jose(JoseError::Jwe));
        let e = validate_logout_token("a.b", &set, &expect(false)).unwrap_err();
        assert_eq!(e, LogoutTokenError::Jose(JoseError::Segments));
        let t = token(&good(), rsa_a(), JwsAlg::RS256, json!({}));
        let e = validate_logout_token(&format!("{t}="), &set, &expect(false)).unwrap_err();
        assert!(
            matches!(e, LogoutTokenError::Jose(JoseError::Base64(_))),
            "{e:?}"
        );
    }

    /// R-BCL-2: a signature by another key under our kid is refused, before any claim.
    #[test]
    fn r_bcl_2_bad_signature_rejected() {
        let t = token(
            &with(json!({"iss": "https://evil"})),
            rsa_attacker(),
            JwsAlg::RS256,
            json!({}),
        );
        assert_eq!(
            validate_logout_token(&t, &jwks(&[rsa_a().jwk()]), &expect(false)).unwrap_err(),
            LogoutTokenError::Jose(JoseError::BadSignature)
        );
        // A flipped signature byte.
        let t = token(&good(), rsa_a(), JwsAlg::RS256, json!({}));
        let (input, sig) = t.rsplit_once('.').unwrap();
        let mut raw =
            base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, sig).unwrap();
        raw[0] ^= 1;
        let t = format!("{input}.{}", b64(&raw));
        assert_eq!(
            validate_logout_token(&t, &jwks(&[rsa_a().jwk()]), &expect(false)).unwrap_err(),
            LogoutTokenError::Jose(JoseError::BadSignature)
        );
    }

    /// R-BCL-2: an unknown kid is reported so the caller can refetch the JWKS once.
    #[test]
    fn r_bcl_2_unknown_kid_flagged() {
        let t = token(&good(), rsa_b(), JwsAlg::RS256, json!({}));
        let e = validate_logout_token(&t, &jwks(&[rsa_a().jwk()]), &expect(false)).unwrap_err();
        assert!(e.is_unknown_kid());
        assert!(UnknownKid::is_unknown_kid(&e));
        assert!(!LogoutTokenError::Nonce.is_unknown_kid());
        // After the refetch the key is there and the token passes.
        let set = jwks(&[rsa_a().jwk(), rsa_b().jwk()]);
        assert!(validate_logout_token(&t, &set, &expect(false)).is_ok());
    }

    /// R-BCL-3: alg none is refused, in any spelling, with or without a signature.
    #[test]
    fn r_bcl_3_alg_none_rejected() {
        for alg in ["none", "None", "NONE"] {
            for sig in ["", "c2ln"] {
                let t = format!(
                    "{}.{}.{sig}",
                    b64(json!({ "alg": alg }).to_string().as_bytes()),
                    b64(good().to_string().as_bytes())
                );
                assert_eq!(
                    validate_logout_token(&t, &jwks(&[rsa_a().jwk()]), &expect(false)).unwrap_err(),
                    LogoutTokenError::Jose(JoseError::AlgNone),
                    "{alg}"
                );
            }
        }
    }

    /// R-BCL-3: a token validly signed with ES256 by a JWKS key is refused when only RS256 is
    /// allowed; accepted when ES256 is allowed.
    #[test]
    fn r_bcl_3_es256_when_rs256_expected_rejected() {
        let set = jwks(&[rsa_a().jwk(), ec256().jwk()]);
        let t = token(&good(), ec256(), JwsAlg::ES256, json!({}));
        assert_eq!(
            validate_logout_token(&t, &set, &expect(false)).unwrap_err(),
            LogoutTokenError::Jose(JoseError::AlgNotAllowed)
        );
        let mut e = expect(false);
        e.allowed_algs = &[JwsAlg::ES256];
        assert!(validate_logout_token(&t, &set, &e).is_ok());
    }

    /// R-BCL-4: iss must match byte for byte.
    #[test]
    fn r_bcl_4_wrong_iss_rejected() {
        for iss in ["https://idp.example.com/", "https://evil.example"] {
            assert_eq!(
                run(&with(json!({ "iss": iss }))).unwrap_err(),
                claim_err(ClaimError::Issuer)
            );
        }
        assert_eq!(
            run(&with(json!({"iss": null}))).unwrap_err(),
            claim_err(ClaimError::Missing { claim: "iss" })
        );
    }

    /// R-BCL-4: aud must contain client_id, with no untrusted extra audience.
    #[test]
    fn r_bcl_4_wrong_aud_rejected() {
        for aud in [
            json!("other"),
            json!([]),
            json!(["other"]),
            json!([CLIENT, "other"]),
        ] {
            assert_eq!(
                run(&with(json!({ "aud": aud }))).unwrap_err(),
                claim_err(ClaimError::Audience),
                "{aud}"
            );
        }
        assert_eq!(
            run(&with(json!({"aud": null}))).unwrap_err(),
            claim_err(ClaimError::Missing { claim: "aud" })
        );
        assert_eq!(
            run(&with(json!({"aud": 1}))).unwrap_err(),
            claim_err(ClaimError::ClaimType { claim: "aud" })
        );
    }

    /// R-BCL-4: iat within [now − 300 s, now + 60 s]; required; numeric.
    #[test]
    fn r_bcl_4_iat_window() {
        assert_eq!(
            run(&with(json!({"iat": NOW - 301}))).unwrap_err(),
            claim_err(ClaimError::IssuedAt)
        );
        assert!(run(&with(json!({"iat": NOW - 300}))).is_ok());
        assert_eq!(
            run(&with(json!({"iat": NOW + 61}))).unwrap_err(),
            claim_err(ClaimError::IssuedAt)
        );
        assert!(run(&with(json!({"iat": NOW + 60}))).is_ok());
        assert_eq!(
            run(&with(json!({"iat": null}))).unwrap_err(),
            claim_err(ClaimError::Missing { claim: "iat" })
        );
        assert_eq!(
            run(&with(json!({"iat": "1700000000"}))).unwrap_err(),
            claim_err(ClaimError::ClaimType { claim: "iat" })
        );
    }

    /// R-BCL-4 (§2.4 final): exp is required, a number (never a string), and not expired
    /// beyond the 60 s leeway (R-IDT-11).
    #[test]
    fn r_bcl_4_exp_missing_string_expired() {
        assert_eq!(
            run(&with(json!({"exp": null}))).unwrap_err(),
            claim_err(ClaimError::Missing { claim: "exp" })
        );
        for bad in [json!("9999999999"), json!(true), json!({}), json!([NOW])] {
            assert_eq!(
                run(&with(json!({ "exp": bad }))).unwrap_err(),
                claim_err(ClaimError::ClaimType { claim: "exp" }),
                "{bad}"
            );
        }
        let mut c = good();
        c["exp"] = Value::Null;
        assert_eq!(
            run(&c).unwrap_err(),
            claim_err(ClaimError::ClaimType { claim: "exp" })
        );
        assert_eq!(
            run(&with(json!({"exp": -1}))).unwrap_err(),
            claim_err(ClaimError::OutOfRange { claim: "exp" })
        );
        assert_eq!(
            run(&with(json!({"exp": NOW - 61}))).unwrap_err(),
            claim_err(ClaimError::Expired)
        );
        assert!(run(&with(json!({"exp": NOW - 60}))).is_ok());
        // R-IDT-11: a fractional NumericDate is floored, not refused.
        let c = run(&with(json!({"exp": (NOW + 100) as f64 + 0.9}))).unwrap();
        assert_eq!(c.exp, NOW + 100);
    }

    /// R-BCL-5: neither sub nor sid is refused.
    #[test]
    fn r_bcl_5_neither_sub_nor_sid_rejected() {
        assert_eq!(
            run(&with(json!({"sub": null, "sid": null}))).unwrap_err(),
            LogoutTokenError::NoSubject
        );
    }

    /// R-BCL-5: an empty sid or sub is refused (not treated as absent), as are non-strings
    /// and over-long values.
    #[test]
    fn r_bcl_5_empty_wrong_type_or_long_sub_sid_rejected() {
        assert_eq!(
            run(&with(json!({"sid": ""}))).unwrap_err(),
            LogoutTokenError::Empty { claim: "sid" }
        );
        assert_eq!(
            run(&with(json!({"sub": null, "sid": ""}))).unwrap_err(),
            LogoutTokenError::Empty { claim: "sid" }
        );
        assert_eq!(
            run(&with(json!({"sub": ""}))).unwrap_err(),
            LogoutTokenError::Empty { claim: "sub" }
        );
        for claim in ["sub", "sid"] {
            assert_eq!(
                run(&with(json!({ claim: 7 }))).unwrap_err(),
                claim_err(ClaimError::ClaimType { claim })
            );
            let mut c = good();
            c[claim] = Value::Null;
            assert_eq!(
                run(&c).unwrap_err(),
                claim_err(ClaimError::ClaimType { claim })
            );
            assert_eq!(
                run(&with(json!({ claim: "x".repeat(256) }))).unwrap_err(),
                LogoutTokenError::TooLong { claim }
            );
            assert!(run(&with(json!({ claim: "x".repeat(255) }))).is_ok());
        }
    }

    /// R-BCL-6: events missing or not an object is refused.
    #[test]
    fn r_bcl_6_events_missing_or_array_rejected() {
        assert_eq!(
            run(&with(json!({"events": null}))).unwrap_err(),
            claim_err(ClaimError::Missing { claim: "events" })
        );
        for bad in [
            json!([BACKCHANNEL_EVENT]),
            json!([{ BACKCHANNEL_EVENT: {} }]),
            json!(BACKCHANNEL_EVENT),
        ] {
            assert_eq!(
                run(&with(json!({ "events": bad }))).unwrap_err(),
                claim_err(ClaimError::ClaimType { claim: "events" }),
                "{bad}"
            );
        }
    }

    /// R-BCL-6: the back-channel logout member must be present and an object.
    #[test]
    fn r_bcl_6_event_member_missing_or_not_object_rejected() {
        for bad in [
            json!({}),
            json!({"http://schemas.openid.net/event/other": {}}),
        ] {
            assert_eq!(
                run(&with(json!({ "events": bad }))).unwrap_err(),
                LogoutTokenError::EventMissing
            );
        }
        for bad in [json!(true), json!("x"), json!([]), json!(null)] {
            assert_eq!(
                run(&with(json!({ "events": { BACKCHANNEL_EVENT: bad } }))).unwrap_err(),
                LogoutTokenError::EventNotObject,
                "{bad}"
            );
        }
        // Other members next to it, and members inside it, are ignored.
        let events = json!({ BACKCHANNEL_EVENT: {"x": 1}, "urn:other": [] });
        assert!(run(&with(json!({ "events": events }))).is_ok());
    }

    /// R-BCL-7: a nonce claim is refused, whatever its value (a replayed ID token has one).
    #[test]
    fn r_bcl_7_nonce_present_rejected() {
        assert_eq!(
            run(&with(json!({"nonce": "n-1"}))).unwrap_err(),
            LogoutTokenError::Nonce
        );
        let mut c = good();
        c["nonce"] = Value::Null;
        assert_eq!(run(&c).unwrap_err(), LogoutTokenError::Nonce);
    }

    /// R-BCL-8: jti is a required, non-empty, bounded string.
    #[test]
    fn r_bcl_8_jti_missing_or_not_string_rejected() {
        assert_eq!(
            run(&with(json!({"jti": null}))).unwrap_err(),
            claim_err(ClaimError::Missing { claim: "jti" })
        );
        for bad in [json!(1), json!(["j"]), json!({})] {
            assert_eq!(
                run(&with(json!({ "jti": bad }))).unwrap_err(),
                claim_err(ClaimError::ClaimType { claim: "jti" })
            );
        }
        assert_eq!(
            run(&with(json!({"jti": ""}))).unwrap_err(),
            LogoutTokenError::Empty { claim: "jti" }
        );
        assert_eq!(
            run(&with(json!({"jti": "j".repeat(JTI_MAX_LEN + 1)}))).unwrap_err(),
            LogoutTokenError::TooLong { claim: "jti" }
        );
        assert!(run(&with(json!({"jti": "j".repeat(JTI_MAX_LEN)}))).is_ok());
    }

    /// R-BCL-8: `(iss, jti)` is remembered for max(exp − now, 600) seconds.
    #[test]
    fn r_bcl_8_replay_ttl() {
        let mut c = run(&good()).unwrap();
        assert_eq!(c.replay_ttl(NOW), 600);
        c.exp = NOW + 601;
        assert_eq!(c.replay_ttl(NOW), 601);
        c.exp = NOW + 3600;
        assert_eq!(c.replay_ttl(NOW), 3600);
        c.exp = NOW - 50;
        assert_eq!(c.replay_ttl(NOW), 600);
        c.exp = 0;
        assert_eq!(c.replay_ttl(i64::MAX), 600);
        c.exp = i64::MAX;
        assert_eq!(c.replay_ttl(i64::MIN), i64::MAX);
    }

    /// R-BCL-9: typ of other JWT kinds is refused.
    #[test]
    fn r_bcl_9_typ_other_kinds_rejected() {
        for typ in [
            "at+jwt",
            "dpop+jwt",
            "session+jwt",
            "application/at+jwt",
            "secevent+jwt",
        ] {
            for require in [false, true] {
                assert_eq!(
                    run_with(&good(), json!({ "typ": typ }), require).unwrap_err(),
                    LogoutTokenError::Jose(JoseError::Typ),
                    "{typ}"
                );
            }
        }
        assert_eq!(
            run_with(&good(), json!({"typ": 1}), false).unwrap_err(),
            LogoutTokenError::Jose(JoseError::Typ)
        );
    }

    /// R-BCL-9: typ absent, JWT, logout+jwt and application/logout+jwt are accepted.
    #[test]
    fn r_bcl_9_typ_accepted_values() {
        for typ in [
            json!(null),
            json!("JWT"),
            json!("logout+jwt"),
            json!("application/logout+jwt"),
        ] {
            assert!(
                run_with(&good(), json!({ "typ": typ }), false).is_ok(),
                "{typ}"
            );
        }
    }

    /// R-BCL-9: with require_logout_typ, typ must be logout+jwt; absent and JWT are refused.
    #[test]
    fn r_bcl_9_require_typ() {
        for typ in [json!(null), json!("JWT")] {
            assert_eq!(
                run_with(&good(), json!({ "typ": typ }), true).unwrap_err(),
                LogoutTokenError::Jose(JoseError::Typ),
                "{typ}"
            );
        }
        for typ in ["logout+jwt", "application/logout+jwt"] {
            assert!(
                run_with(&good(), json!({ "typ": typ }), true).is_ok(),
                "{typ}"
            );
        }
    }

    /// R-BCL-10: unknown claims are ignored.
    #[test]
    fn r_bcl_10_unknown_claims_ignored() {
        let c =
            with(json!({"foo": "bar", "nested": {"a": [1, 2]}, "azp": "someone-else", "nbf": 0}));
        assert_eq!(run(&c).unwrap(), run(&good()).unwrap());
    }

    /// The 400 description is generic and never echoes token contents.
    #[test]
    fn r_bcl_error_description_generic() {
        let e = run(&with(json!({"iss": "https://secret-issuer.example"}))).unwrap_err();
        assert_eq!(e.description(), "issuer mismatch");
        assert!(!e.to_string().contains("secret"));
        assert_eq!(
            LogoutTokenError::Jose(JoseError::AlgNone).description(),
            "algorithm not accepted"
        );
        assert_eq!(
            LogoutTokenError::Jose(JoseError::BadSignature).description(),
            "signature verification failed"
        );
        assert_eq!(
            LogoutTokenError::Jose(JoseError::Jwe).description(),
            "malformed logout token"
        );
        assert_eq!(
            LogoutTokenError::FormRepeated.description(),
            LogoutTokenError::FormMissing.description()
        );
    }

    fn form(body: &str) -> Result<String, LogoutTokenError> {
        logout_token_from_form(body.as_bytes())
    }

    /// Request handling 2: exactly one logout_token is returned; other parameters ignored.
    #[test]
    fn r_bcl_form_single_token_with_ignored_parameter() {
        assert_eq!(form("logout_token=a.b.c").unwrap(), "a.b.c");
        assert_eq!(
            form("ignored_parameter=x&logout_token=a.b.c&other=%20y").unwrap(),
            "a.b.c"
        );
        assert_eq!(form("logout_token=a.b.c&").unwrap(), "a.b.c");
        assert_eq!(form("logout%5Ftoken=a%2Eb.c").unwrap(), "a.b.c");
        // A real token round-trips.
        let t = token(&good(), rsa_a(), JwsAlg::RS256, json!({}));
        let got = form(&format!("logout_token={t}&ignored_parameter=1")).unwrap();
        assert!(validate_logout_token(&got, &jwks(&[rsa_a().jwk()]), &expect(false)).is_ok());
    }

    /// Request handling 2: a missing logout_token is refused.
    #[test]
    fn r_bcl_form_missing() {
        for body in [
            "",
            "ignored_parameter=x",
            "logout_token_x=a",
            "Logout_Token=a",
            "&&",
        ] {
            assert_eq!(
                form(body).unwrap_err(),
                LogoutTokenError::FormMissing,
                "{body:?}"
            );
        }
    }

    /// Request handling 2: logout_token twice is refused, even with equal values.
    #[test]
    fn r_bcl_form_twice() {
        for body in [
            "logout_token=a&logout_token=a",
            "logout_token=a&logout_token=b",
            "logout_token=a&logout%5ftoken=",
        ] {
            assert_eq!(
                form(body).unwrap_err(),
                LogoutTokenError::FormRepeated,
                "{body:?}"
            );
        }
    }

    /// Request handling 2: an empty logout_token is refused.
    #[test]
    fn r_bcl_form_empty() {
        for body in ["logout_token=", "logout_token", "x=1&logout_token="] {
            assert_eq!(
                form(body).unwrap_err(),
                LogoutTokenError::FormEmpty,
                "{body:?}"
            );
        }
    }

    /// Request handling 1: a body that is not form-encoded is refused.
    #[test]
    fn r_bcl_form_not_form_encoded() {
        for body in [
            &b"{\"logout_token\": \"a.b.c\"}"[..],
            b"logout_token=a.b.c\n",
            b"logout_token=a b",
            b"logout_token=%zz",
            b"logout_token=abc%2",
            b"logout_token=%ff%fe",
            b"logout_token=\xc3\xa9",
            b"\0\x01\x02",
        ] {
            assert_eq!(
                logout_token_from_form(body).unwrap_err(),
                LogoutTokenError::FormMalformed,
                "{body:?}"
            );
        }
    }

    /// Request handling 1: a logout_token value over 64 KiB is refused before parsing.
    #[test]
    fn r_bcl_form_oversize_token() {
        let body = format!("logout_token={}", "a".repeat(MAX_LOGOUT_TOKEN + 1));
        assert_eq!(
            form(&body).unwrap_err(),
            LogoutTokenError::Jose(JoseError::TooLarge)
        );
    }
}
