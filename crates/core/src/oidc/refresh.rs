//! Offline access: what a refresh-token grant's answer means (RFC 6749 §5.1/§5.2, §6) and the
//! validation of an ID token that comes back from it (OIDC Core §12.2). Pure: the gateway
//! sends the request (built by [`super::token_request::refresh_token`]) and acts on the
//! verdict.
//!
//! Core §12.2 says a refreshed ID token has the same `iss`, `sub` and `aud` as the one of the
//! original authentication, the same `azp` (none if there was none), an `auth_time` (if any)
//! that is the original authentication's, and otherwise obeys every rule of a sign-in ID token.
//! `nonce` is not required on refresh; Portcullis accepts one only if it is the original's (an
//! ID token carrying another transaction's nonce is not this session's).

use serde_json::{Map, Value};
use subtle::ConstantTimeEq;

use super::id_token::{
    IAT_MAX_AGE_SECS, ID_TOKEN_MAX_LEN, IdTokenClaims, IdTokenError, MAX_SID_LEN, at_hash,
    check_audience_as, check_azp, check_exp, check_iat, check_issuer, check_nbf, check_sub,
    numeric_date, optional_str,
};
use crate::jose::json::parse_strict_object;
use crate::jose::{ClaimError, Jwks, JwsAlg, UnknownKid, VerifyPolicy, parse_compact, verify_jws};

/// The claims of the sign-in's ID token that a refreshed one must repeat. Read from the token
/// stored with the session, which was fully validated at sign-in (its signature is not checked
/// again: it comes from our own database, and the IdP's keys may have rotated since).
#[derive(Clone, PartialEq, Eq)]
pub struct OriginalIdToken {
    pub iss: String,
    pub sub: String,
    /// `aud` as a sorted, de-duplicated list (a string is a list of one).
    pub aud: Vec<String>,
    pub azp: Option<String>,
    pub auth_time: Option<i64>,
    nonce: Option<String>,
}

/// Shows identity claims only; the nonce stays out of logs.
impl std::fmt::Debug for OriginalIdToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OriginalIdToken")
            .field("iss", &self.iss)
            .field("sub", &self.sub)
            .field("aud", &self.aud)
            .field("azp", &self.azp)
            .field("auth_time", &self.auth_time)
            .finish_non_exhaustive()
    }
}

impl OriginalIdToken {
    /// Read the identity claims of a stored sign-in ID token.
    pub fn from_stored(token: &str) -> Result<OriginalIdToken, RefreshedIdTokenError> {
        let bad = |_| RefreshedIdTokenError::Original;
        let jws = parse_compact(token, ID_TOKEN_MAX_LEN).map_err(bad)?;
        let c = &jws.claims;
        let s = |claim| optional_str(c, claim).map_err(|_| RefreshedIdTokenError::Original);
        Ok(OriginalIdToken {
            iss: s("iss")?.ok_or(RefreshedIdTokenError::Original)?.to_owned(),
            sub: s("sub")?.ok_or(RefreshedIdTokenError::Original)?.to_owned(),
            aud: audiences(c).ok_or(RefreshedIdTokenError::Original)?,
            azp: s("azp")?.map(str::to_owned),
            auth_time: numeric_date(c, "auth_time").map_err(|_| RefreshedIdTokenError::Original)?,
            nonce: s("nonce")?.map(str::to_owned),
        })
    }
}

/// `aud` as a sorted set; `None` when absent, empty or not strings.
fn audiences(c: &Map<String, Value>) -> Option<Vec<String>> {
    let mut v: Vec<String> = match c.get("aud")? {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map(str::to_owned))
            .collect::<Option<_>>()?,
        _ => return None,
    };
    v.sort();
    v.dedup();
    (!v.is_empty()).then_some(v)
}

/// What the relying party expects of a refreshed ID token besides the original's claims.
#[derive(Clone, Copy, Debug)]
pub struct RefreshExpectations<'a> {
    /// The discovered issuer (byte for byte, as at sign-in).
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub allowed_algs: &'a [JwsAlg],
    pub extra_audiences: &'a [String],
    /// As [`super::id_token::IdTokenExpectations::client_audience`].
    pub client_audience: Option<&'a str>,
    /// Current unix time in seconds.
    pub now: i64,
}

/// Why a refreshed ID token was refused: any of these ends the session.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefreshedIdTokenError {
    /// A rule every ID token obeys (signature, issuer, audience, expiry, …).
    #[error(transparent)]
    IdToken(#[from] IdTokenError),
    /// Core §12.2: `claim` differs from the original authentication's ID token.
    #[error("refreshed ID token: {claim} differs from the sign-in's")]
    NotOriginal { claim: &'static str },
    /// The session's stored ID token cannot be read (so nothing can be compared).
    #[error("the sign-in's ID token is missing or unreadable")]
    Original,
}

impl UnknownKid for RefreshedIdTokenError {
    fn is_unknown_kid(&self) -> bool {
        matches!(self, RefreshedIdTokenError::IdToken(e) if e.is_unknown_kid())
    }
}

/// Validate the ID token of a refresh response: every sign-in rule except the nonce
/// requirement (in the same order as `validate_id_token`), then Core §12.2 against `original`.
pub fn validate_refreshed_id_token(
    token: &str,
    jwks: &Jwks,
    exp: &RefreshExpectations,
    original: &OriginalIdToken,
    access_token: Option<&str>,
) -> Result<IdTokenClaims, RefreshedIdTokenError> {
    let e = |c: ClaimError| RefreshedIdTokenError::IdToken(c.into());
    let jws = parse_compact(token, ID_TOKEN_MAX_LEN).map_err(IdTokenError::from)?;
    let alg = verify_jws(&jws, jwks, &VerifyPolicy::id_token(exp.allowed_algs))
        .map_err(IdTokenError::from)?;
    let c = &jws.claims;
    let iss = check_issuer(c, exp.issuer).map_err(e)?;
    check_audience_as(c, exp.client_id, exp.client_audience, exp.extra_audiences).map_err(e)?;
    check_azp(c, exp.client_id).map_err(e)?;
    let expires = check_exp(c, exp.now).map_err(e)?;
    let iat = check_iat(c, exp.now, IAT_MAX_AGE_SECS).map_err(e)?;
    check_nbf(c, exp.now).map_err(e)?;
    let sub = check_sub(c).map_err(e)?;
    if let (Some(claimed), Some(at)) = (optional_str(c, "at_hash").map_err(e)?, access_token)
        && !bool::from(claimed.as_bytes().ct_eq(at_hash(alg, at).as_bytes()))
    {
        return Err(IdTokenError::AtHash.into());
    }
    let auth_time = numeric_date(c, "auth_time").map_err(e)?;
    let sid = optional_str(c, "sid").map_err(e)?.map(str::to_owned);
    if sid.as_ref().is_some_and(|s| s.len() > MAX_SID_LEN) {
        return Err(e(ClaimError::OutOfRange { claim: "sid" }));
    }

    // Core §12.2: the same person, at the same client, from the same authentication.
    let not = |claim| RefreshedIdTokenError::NotOriginal { claim };
    if iss != original.iss {
        return Err(not("iss"));
    }
    if sub != original.sub {
        return Err(not("sub"));
    }
    if audiences(c).as_ref() != Some(&original.aud) {
        return Err(not("aud"));
    }
    if optional_str(c, "azp").map_err(e)? != original.azp.as_deref() {
        return Err(not("azp"));
    }
    if let (Some(now_at), Some(then_at)) = (auth_time, original.auth_time)
        && now_at != then_at
    {
        return Err(not("auth_time"));
    }
    // Not required on refresh; when present it must be the sign-in's (constant time). With no
    // nonce at sign-in there is nothing it could legitimately be.
    if let Some(n) = optional_str(c, "nonce").map_err(e)? {
        let same = original
            .nonce
            .as_deref()
            .is_some_and(|o| bool::from(o.as_bytes().ct_eq(n.as_bytes())));
        if !same {
            return Err(not("nonce"));
        }
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

/// The tokens of a successful refresh. Never logged, never sent to the browser.
pub struct RefreshedTokens {
    pub access_token: String,
    /// A rotated refresh token, when the IdP issued one (keep using the old one otherwise).
    pub refresh_token: Option<String>,
    pub id_token: Option<String>,
}

impl std::fmt::Debug for RefreshedTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefreshedTokens")
            .field("refresh_token", &self.refresh_token.as_ref().map(|_| "***"))
            .field("id_token", &self.id_token.as_ref().map(|_| "***"))
            .finish_non_exhaustive()
    }
}

/// Why a refresh did not succeed, and so what to do with the session.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefreshFailure {
    /// The IdP said no (an OAuth error such as `invalid_grant`: the grant was revoked, the
    /// person was disabled, the token expired) or broke the protocol: end the session.
    #[error("the IdP refused the refresh: {0}")]
    Refused(String),
    /// Unreachable, 5xx, throttled, an answer that is not the IdP's JSON: try again later,
    /// the session continues.
    #[error("the refresh did not reach a verdict: {0}")]
    Transient(String),
}

/// Classify a token endpoint answer to a refresh grant.
///
/// - 200 with a JSON object: a `Bearer` `access_token` is required (otherwise refused, as at
///   sign-in); `refresh_token` and `id_token` are optional strings.
/// - 400 or 401 with a JSON object carrying an `error` string (RFC 6749 §5.2): refused.
/// - Anything else (5xx, 429, HTML error pages, garbage): transient.
pub fn classify_refresh_response(
    status: u16,
    body: &[u8],
) -> Result<RefreshedTokens, RefreshFailure> {
    let json = parse_strict_object(body).ok();
    match (status, json) {
        (200, Some(b)) => {
            let s = |k: &str| b.get(k).and_then(Value::as_str).map(str::to_owned);
            if !s("token_type").is_some_and(|t| t.eq_ignore_ascii_case("bearer")) {
                return Err(RefreshFailure::Refused("token_type is not Bearer".into()));
            }
            let Some(access_token) = s("access_token").filter(|t| !t.is_empty()) else {
                return Err(RefreshFailure::Refused("access_token missing".into()));
            };
            Ok(RefreshedTokens {
                access_token,
                refresh_token: s("refresh_token").filter(|t| !t.is_empty()),
                id_token: s("id_token"),
            })
        }
        (400 | 401, Some(b)) if b.get("error").is_some_and(Value::is_string) => {
            let code = b.get("error").and_then(Value::as_str).unwrap_or_default();
            Err(RefreshFailure::Refused(error_code(code)))
        }
        (200, None) => Err(RefreshFailure::Transient(
            "HTTP 200 without a JSON object".into(),
        )),
        (status, _) => Err(RefreshFailure::Transient(format!("HTTP {status}"))),
    }
}

/// An OAuth error code fit for logs and the audit trail: RFC 6749 codes are short ASCII
/// words; anything else the IdP put there is cut and reduced to harmless characters.
fn error_code(code: &str) -> String {
    let c: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        .take(64)
        .collect();
    if c.is_empty() {
        "unknown_error".into()
    } else {
        c
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::jose::JoseError;
    use crate::jose::test_support::{jwks, rsa_a, rsa_b, token};
    use serde_json::json;

    const ISS: &str = "https://idp.example.com";
    const CLIENT: &str = "portcullis";
    const NONCE: &str = "n-0S6_WzA2Mj";
    const NOW: i64 = 1_700_000_000;
    const RS256: &[JwsAlg] = &[JwsAlg::RS256];

    fn sign_in_claims() -> Value {
        json!({
            "iss": ISS, "aud": CLIENT, "sub": "alice", "nonce": NONCE, "azp": CLIENT,
            "auth_time": NOW - 7200, "iat": NOW - 7200, "exp": NOW - 3600,
        })
    }

    fn original() -> OriginalIdToken {
        let t = token(&sign_in_claims(), rsa_a(), JwsAlg::RS256, json!({}));
        OriginalIdToken::from_stored(&t).unwrap()
    }

    /// A good refreshed token: same identity, new iat/exp, the original nonce.
    fn refreshed(changes: Value) -> Value {
        let mut c = json!({
            "iss": ISS, "aud": CLIENT, "sub": "alice", "nonce": NONCE, "azp": CLIENT,
            "auth_time": NOW - 7200, "iat": NOW - 2, "exp": NOW + 300, "groups": ["g2"],
        });
        for (k, v) in changes.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        c
    }

    fn expect() -> RefreshExpectations<'static> {
        RefreshExpectations {
            issuer: ISS,
            client_id: CLIENT,
            allowed_algs: RS256,
            extra_audiences: &[],
            client_audience: None,
            now: NOW,
        }
    }

    fn run(claims: &Value) -> Result<IdTokenClaims, RefreshedIdTokenError> {
        run_with(claims, &original())
    }

    fn run_with(
        claims: &Value,
        orig: &OriginalIdToken,
    ) -> Result<IdTokenClaims, RefreshedIdTokenError> {
        let t = token(claims, rsa_a(), JwsAlg::RS256, json!({}));
        validate_refreshed_id_token(&t, &jwks(&[rsa_a().jwk()]), &expect(), orig, None)
    }

    fn not(claim: &'static str) -> RefreshedIdTokenError {
        RefreshedIdTokenError::NotOriginal { claim }
    }

    #[test]
    fn original_claims_are_read_from_the_stored_token() {
        let o = original();
        assert_eq!((o.iss.as_str(), o.sub.as_str()), (ISS, "alice"));
        assert_eq!(o.aud, vec![CLIENT.to_string()]);
        assert_eq!(o.auth_time, Some(NOW - 7200));
        assert!(!format!("{o:?}").contains(NONCE), "Debug hides the nonce");
        for bad in ["", "a.b", "x.y.z"] {
            assert_eq!(
                OriginalIdToken::from_stored(bad),
                Err(RefreshedIdTokenError::Original)
            );
        }
        let no_sub = token(
            &json!({"iss": ISS, "aud": CLIENT}),
            rsa_a(),
            JwsAlg::RS256,
            json!({}),
        );
        assert!(OriginalIdToken::from_stored(&no_sub).is_err());
    }

    #[test]
    fn a_refreshed_token_of_the_same_authentication_is_accepted() {
        let c = run(&refreshed(json!({}))).unwrap();
        assert_eq!(c.sub, "alice");
        assert_eq!(c.claims["groups"], json!(["g2"]));
        // nonce and auth_time are optional on refresh.
        assert!(run(&refreshed(json!({"nonce": null, "auth_time": null}))).is_ok());
        // aud as an array with the same member is the same audience.
        assert!(run(&refreshed(json!({"aud": [CLIENT]}))).is_ok());
    }

    #[test]
    fn each_identity_claim_must_be_the_originals() {
        assert_eq!(
            run(&refreshed(json!({"sub": "mallory"}))).unwrap_err(),
            not("sub")
        );
        // The issuer is checked against the discovered one first (as at sign-in).
        assert_eq!(
            run(&refreshed(json!({"iss": "https://evil"}))).unwrap_err(),
            RefreshedIdTokenError::IdToken(IdTokenError::Issuer)
        );
        // …and against the sign-in's, should they ever differ.
        let mut other_iss = original();
        other_iss.iss = "https://old-idp.example.com".into();
        assert_eq!(
            run_with(&refreshed(json!({})), &other_iss).unwrap_err(),
            not("iss")
        );
        // An audience the sign-in did not have (and is not ours) fails the usual rule; a
        // trusted extra audience that is new fails §12.2.
        assert_eq!(
            run(&refreshed(json!({"aud": [CLIENT, "other"]}))).unwrap_err(),
            RefreshedIdTokenError::IdToken(IdTokenError::Audience)
        );
        let extra = vec!["api".to_string()];
        let t = token(
            &refreshed(json!({"aud": [CLIENT, "api"]})),
            rsa_a(),
            JwsAlg::RS256,
            json!({}),
        );
        let exp = RefreshExpectations {
            extra_audiences: &extra,
            client_audience: None,
            ..expect()
        };
        assert_eq!(
            validate_refreshed_id_token(&t, &jwks(&[rsa_a().jwk()]), &exp, &original(), None)
                .unwrap_err(),
            not("aud")
        );
        assert_eq!(
            run(&refreshed(json!({"azp": null}))).unwrap_err(),
            not("azp")
        );
        let mut no_azp = original();
        no_azp.azp = None;
        assert_eq!(
            run_with(&refreshed(json!({})), &no_azp).unwrap_err(),
            not("azp")
        );
        assert!(run_with(&refreshed(json!({"azp": null})), &no_azp).is_ok());
        assert_eq!(
            run(&refreshed(json!({"auth_time": NOW - 5}))).unwrap_err(),
            not("auth_time")
        );
    }

    #[test]
    fn a_nonce_must_be_the_sign_ins() {
        assert_eq!(
            run(&refreshed(json!({"nonce": "other"}))).unwrap_err(),
            not("nonce")
        );
        assert_eq!(
            run(&refreshed(json!({"nonce": ""}))).unwrap_err(),
            not("nonce")
        );
        let mut no_nonce = original();
        no_nonce.nonce = None;
        assert_eq!(
            run_with(&refreshed(json!({})), &no_nonce).unwrap_err(),
            not("nonce")
        );
        assert!(run_with(&refreshed(json!({"nonce": null})), &no_nonce).is_ok());
        assert_eq!(
            run(&refreshed(json!({"nonce": 5}))).unwrap_err(),
            RefreshedIdTokenError::IdToken(IdTokenError::ClaimType { claim: "nonce" })
        );
    }

    #[test]
    fn every_sign_in_rule_still_applies() {
        let t = token(
            &refreshed(json!({})),
            rsa_b(),
            JwsAlg::RS256,
            json!({"kid": "rsa-a"}),
        );
        let e =
            validate_refreshed_id_token(&t, &jwks(&[rsa_a().jwk()]), &expect(), &original(), None)
                .unwrap_err();
        assert_eq!(
            e,
            RefreshedIdTokenError::IdToken(IdTokenError::Jose(JoseError::BadSignature))
        );
        let t = token(&refreshed(json!({})), rsa_b(), JwsAlg::RS256, json!({}));
        let e =
            validate_refreshed_id_token(&t, &jwks(&[rsa_a().jwk()]), &expect(), &original(), None)
                .unwrap_err();
        assert!(e.is_unknown_kid(), "an unknown kid asks for a JWKS refetch");
        assert_eq!(
            run(&refreshed(json!({"exp": NOW - 600}))).unwrap_err(),
            RefreshedIdTokenError::IdToken(IdTokenError::Expired)
        );
        assert_eq!(
            run(&refreshed(json!({"iat": NOW - IAT_MAX_AGE_SECS - 60}))).unwrap_err(),
            RefreshedIdTokenError::IdToken(IdTokenError::IssuedAt)
        );
        assert_eq!(
            run(&refreshed(json!({"iat": "now"}))).unwrap_err(),
            RefreshedIdTokenError::IdToken(IdTokenError::ClaimType { claim: "iat" })
        );
        assert_eq!(
            run(&refreshed(json!({"aud": "other"}))).unwrap_err(),
            RefreshedIdTokenError::IdToken(IdTokenError::Audience)
        );
        assert_eq!(
            run(&refreshed(json!({"sub": null}))).unwrap_err(),
            RefreshedIdTokenError::IdToken(IdTokenError::Missing { claim: "sub" })
        );
        // at_hash, when present and the access token known, must match.
        let t = token(
            &refreshed(json!({"at_hash": "nope"})),
            rsa_a(),
            JwsAlg::RS256,
            json!({}),
        );
        let e = validate_refreshed_id_token(
            &t,
            &jwks(&[rsa_a().jwk()]),
            &expect(),
            &original(),
            Some("the-access-token"),
        )
        .unwrap_err();
        assert_eq!(e, RefreshedIdTokenError::IdToken(IdTokenError::AtHash));
        let good = at_hash(JwsAlg::RS256, "the-access-token");
        let t = token(
            &refreshed(json!({"at_hash": good})),
            rsa_a(),
            JwsAlg::RS256,
            json!({}),
        );
        assert!(
            validate_refreshed_id_token(
                &t,
                &jwks(&[rsa_a().jwk()]),
                &expect(),
                &original(),
                Some("the-access-token"),
            )
            .is_ok()
        );
    }

    #[test]
    fn token_responses_are_classified() {
        let ok = classify_refresh_response(
            200,
            br#"{"access_token":"at","token_type":"bearer","refresh_token":"rt2","id_token":"x.y.z"}"#,
        )
        .unwrap();
        assert_eq!(ok.access_token, "at");
        assert_eq!(ok.refresh_token.as_deref(), Some("rt2"));
        assert_eq!(ok.id_token.as_deref(), Some("x.y.z"));
        assert!(!format!("{ok:?}").contains("rt2"), "Debug hides tokens");
        let no_rotation =
            classify_refresh_response(200, br#"{"access_token":"at","token_type":"Bearer"}"#)
                .unwrap();
        assert!(no_rotation.refresh_token.is_none() && no_rotation.id_token.is_none());

        let refused = |s, b: &[u8]| match classify_refresh_response(s, b) {
            Err(RefreshFailure::Refused(r)) => r,
            other => panic!("expected refused, got {other:?}"),
        };
        assert_eq!(
            refused(400, br#"{"error":"invalid_grant"}"#),
            "invalid_grant"
        );
        assert_eq!(
            refused(401, br#"{"error":"invalid_client"}"#),
            "invalid_client"
        );
        assert_eq!(
            refused(400, br#"{"error":"bad\r\nX-Injected: <b>1</b>"}"#),
            "badX-Injectedb1b"
        );
        assert_eq!(
            refused(200, br#"{"access_token":"at","token_type":"mac"}"#),
            "token_type is not Bearer"
        );
        assert_eq!(
            refused(200, br#"{"token_type":"Bearer"}"#),
            "access_token missing"
        );

        for (status, body) in [
            (500, &br#"{"error":"server_error"}"#[..]),
            (503, b"<html>down</html>"),
            (429, br#"{"error":"slow_down"}"#),
            (400, b"<html>bad gateway</html>"),
            (400, br#"{"message":"no error member"}"#),
            (404, br#"{"error":"not_found"}"#),
            (200, b"<html>captive portal</html>"),
        ] {
            assert!(
                matches!(
                    classify_refresh_response(status, body),
                    Err(RefreshFailure::Transient(_))
                ),
                "{status} {}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
