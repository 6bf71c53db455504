//! The gateway session JWT (R-SJ): `{"alg":"HS256","typ":"session+jwt"}`, HMAC with the
//! HKDF session subkey, strict claim types. Parsed by the same strict compact-JWS pre-pass as
//! ID tokens (`jose::parse_compact`), so duplicate members and malformed segments fail alike.

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};

use super::keys::SessionKeys;
use crate::jose::claims::{optional_str, required_integer_date, required_str};
use crate::jose::{ClaimError, JoseError, VerifyPolicy, parse_compact, verify_jws};

/// Seed 000: 30-minute JWT TTL.
pub const SESSION_TTL: i64 = 30 * 60;
/// R-SJ-3: leeway for our own tokens.
pub const LEEWAY: i64 = 5;
/// R-SJ-3: the token must fit in a 4096-byte cookie.
pub const MAX_LEN: usize = 3584;
/// R-SJ-1: the one `typ`, shared with the verifier's session policy.
const TYP: &str = crate::jose::verify::TYP_SESSION;

/// The claims of a session (R-SJ-2). Fingerprint, CSRF and DPoP members join in a later
/// release; IdP claims and groups are never embedded (R-SJ-3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionClaims {
    /// The public base URL (both `iss` and `aud`).
    pub iss: String,
    /// Internal user id.
    pub sub: String,
    /// Server-side session id.
    pub sid: String,
    pub iat: i64,
    pub exp: i64,
    pub auth_time: i64,
    /// R-FP: base64url SHA-256 of the fingerprint cookie's value.
    pub fph: String,
    /// R-CSRF-2: base64url HMAC (CSRF subkey) of the CSRF token.
    pub csrf_h: String,
    /// R-DP-B: `cnf.jkt`, the RFC 7638 thumbprint of the browser key the session is bound to
    /// (absent only when DPoP is turned off).
    pub jkt: Option<String>,
    /// The IdP's session id (`sid` of the ID token), for back-channel logout.
    pub idp_sid: Option<String>,
}

/// Why a session token was refused. Callers answer every variant with the same 401.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SessionError {
    #[error("malformed session token")]
    Malformed,
    #[error("session token header not accepted")]
    Header,
    #[error("session token signature invalid")]
    Signature,
    #[error("session token claim `{0}` missing or of the wrong type")]
    Claim(&'static str),
    #[error("session token issued for another gateway")]
    Audience,
    #[error("session token expired")]
    Expired,
}

impl SessionClaims {
    /// Encode and sign.
    pub fn issue(&self, keys: &SessionKeys) -> String {
        let header = json!({"alg": crate::jose::key_source::HS256, "typ": TYP});
        let mut claims = json!({
            "iss": self.iss, "aud": self.iss, "sub": self.sub, "sid": self.sid,
            "iat": self.iat, "exp": self.exp, "auth_time": self.auth_time, "fph": self.fph,
            "csrf_h": self.csrf_h,
        });
        if let Some(obj) = claims.as_object_mut() {
            if let Some(jkt) = &self.jkt {
                obj.insert("cnf".into(), json!({ "jkt": jkt }));
            }
            if let Some(idp_sid) = &self.idp_sid {
                obj.insert("idp_sid".into(), Value::String(idp_sid.clone()));
            }
        }
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let tag = hmac::sign(keys.session_jwt(), input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
    }

    /// Verify signature, header and claims (R-SJ-1..3). `public_url` is the expected `iss`/`aud`.
    pub fn verify(
        token: &str,
        keys: &SessionKeys,
        public_url: &str,
        now: i64,
    ) -> Result<SessionClaims, SessionError> {
        let jws = parse_compact(token, MAX_LEN).map_err(|_| SessionError::Malformed)?;
        // R-SJ-1: exactly `{"alg":"HS256","typ":"session+jwt"}`, our HMAC subkeys only; the
        // one verifier core judges it like every other JWS.
        verify_jws(&jws, keys.session_jwt_keys(), &VerifyPolicy::session()).map_err(
            |e| match e {
                JoseError::BadSignature => SessionError::Signature,
                _ => SessionError::Header,
            },
        )?;
        let c = &jws.claims;
        let iss = string(c, "iss")?;
        if iss != public_url || string(c, "aud")? != public_url {
            return Err(SessionError::Audience);
        }
        let claims = SessionClaims {
            iss,
            sub: string(c, "sub")?,
            sid: string(c, "sid")?,
            iat: int(c, "iat")?,
            exp: int(c, "exp")?,
            auth_time: int(c, "auth_time")?,
            fph: string(c, "fph")?,
            csrf_h: string(c, "csrf_h")?,
            jkt: confirmation(c)?,
            idp_sid: optional_str(c, "idp_sid")
                .map_err(claim_error)?
                .map(str::to_owned),
        };
        claims.timely(now)?;
        Ok(claims)
    }

    /// The time checks of [`SessionClaims::verify`] alone, at `now`: what a verified token
    /// must still pass when it is presented again.
    pub fn timely(&self, now: i64) -> Result<(), SessionError> {
        if self.exp > self.iat + SESSION_TTL || self.iat > now + LEEWAY {
            return Err(SessionError::Claim("exp"));
        }
        if now > self.exp + LEEWAY {
            return Err(SessionError::Expired);
        }
        Ok(())
    }
}

/// R-FP: the `fph` claim for a fingerprint cookie value: base64url(SHA-256(value)).
pub fn fingerprint_hash(fingerprint: &str) -> String {
    URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        fingerprint.as_bytes(),
    ))
}

/// R-CSRF-2: the `csrf_h` claim for a CSRF token: base64url(HMAC(CSRF subkey, token)). A
/// token/cookie pair planted by a sibling subdomain has no matching `csrf_h`.
pub fn csrf_hash(keys: &SessionKeys, token: &str) -> String {
    URL_SAFE_NO_PAD.encode(hmac::sign(keys.csrf(), token.as_bytes()))
}

impl SessionClaims {
    /// R-FP-1: whether `cookie` (the `__Host-fp` value) is this session's fingerprint,
    /// compared in constant time.
    pub fn fingerprint_matches(&self, cookie: Option<&str>) -> bool {
        use subtle::ConstantTimeEq;
        cookie.is_some_and(|c| {
            fingerprint_hash(c)
                .as_bytes()
                .ct_eq(self.fph.as_bytes())
                .into()
        })
    }

    /// R-CSRF-1/2: the `X-CSRF-Token` header equals the csrf cookie, and its HMAC is this
    /// session's `csrf_h`; both compared in constant time.
    pub fn csrf_matches(&self, keys: &SessionKeys, header: &str, cookie: Option<&str>) -> bool {
        use subtle::ConstantTimeEq;
        let Some(cookie) = cookie else { return false };
        let pair: bool = header.as_bytes().ct_eq(cookie.as_bytes()).into();
        let bound: bool = csrf_hash(keys, header)
            .as_bytes()
            .ct_eq(self.csrf_h.as_bytes())
            .into();
        pair & bound && !header.is_empty()
    }
}

/// Every claim failure is the same 401; the variant names the claim for logs.
fn claim_error(e: ClaimError) -> SessionError {
    match e {
        ClaimError::Missing { claim }
        | ClaimError::ClaimType { claim }
        | ClaimError::OutOfRange { claim } => SessionError::Claim(claim),
        ClaimError::Issuer | ClaimError::Audience | ClaimError::Azp => SessionError::Audience,
        ClaimError::Expired => SessionError::Expired,
        ClaimError::IssuedAt | ClaimError::NotYetValid => SessionError::Claim("iat"),
        ClaimError::Subject => SessionError::Claim("sub"),
    }
}

/// `cnf` (RFC 7800) with exactly a non-empty `jkt` string, or absent.
fn confirmation(c: &Map<String, Value>) -> Result<Option<String>, SessionError> {
    let Some(cnf) = c.get("cnf") else {
        return Ok(None);
    };
    match cnf.as_object() {
        Some(o) if o.len() == 1 => match o.get("jkt").and_then(Value::as_str) {
            Some(jkt) if !jkt.is_empty() => Ok(Some(jkt.to_owned())),
            _ => Err(SessionError::Claim("cnf")),
        },
        _ => Err(SessionError::Claim("cnf")),
    }
}

/// A required, non-empty string claim.
fn string(c: &Map<String, Value>, name: &'static str) -> Result<String, SessionError> {
    match required_str(c, name).map_err(claim_error)? {
        "" => Err(SessionError::Claim(name)),
        s => Ok(s.to_owned()),
    }
}

/// NumericDate as a JSON integer only (strings/bools/null rejected — CVE-2026-25537).
fn int(c: &Map<String, Value>, name: &'static str) -> Result<i64, SessionError> {
    required_integer_date(c, name).map_err(claim_error)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    const URL: &str = "https://gw.example.com";

    fn keys() -> SessionKeys {
        SessionKeys::derive("0123456789abcdef0123456789abcdef")
    }

    fn claims(now: i64) -> SessionClaims {
        SessionClaims {
            iss: URL.into(),
            sub: "u1".into(),
            sid: "s1".into(),
            iat: now,
            exp: now + SESSION_TTL,
            auth_time: now,
            fph: fingerprint_hash("fp-value"),
            csrf_h: csrf_hash(&keys(), "csrf-value"),
            jkt: Some("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I".into()),
            idp_sid: Some("idp-1".into()),
        }
    }

    #[test]
    fn r_sj_2_cnf_jkt_round_trips_and_is_strict() {
        let k = keys();
        let t = claims(1_000_000).issue(&k);
        let c = SessionClaims::verify(&t, &k, URL, 1_000_100).unwrap();
        assert_eq!(
            c.jkt.as_deref(),
            Some("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I")
        );
        let unbound = SessionClaims {
            jkt: None,
            ..claims(1_000_000)
        };
        let c = SessionClaims::verify(&unbound.issue(&k), &k, URL, 1_000_100).unwrap();
        assert_eq!(c.jkt, None);
        for cnf in [
            json!("x"),
            json!({}),
            json!({"jkt": 5}),
            json!({"jkt": ""}),
            json!({"jkt": "a", "x5t#S256": "b"}),
        ] {
            let body = json!({"iss": URL, "aud": URL, "sub": "u", "sid": "s", "iat": 1_000_000,
                "exp": 1_000_000 + SESSION_TTL, "auth_time": 1_000_000, "fph": "f",
                "csrf_h": "c", "cnf": cnf});
            let t = forge(
                &json!({"alg": "HS256", "typ": "session+jwt"}),
                &body,
                k.session_jwt(),
            );
            assert_eq!(
                SessionClaims::verify(&t, &k, URL, 1_000_100),
                Err(SessionError::Claim("cnf")),
                "{cnf}"
            );
        }
    }

    fn forge(header: &Value, body: &Value, key: &hmac::Key) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(body.to_string())
        );
        let tag = hmac::sign(key, input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
    }

    #[test]
    fn r_fp_1_fingerprint_must_match_its_hash() {
        let c = claims(1_000_000);
        assert!(c.fingerprint_matches(Some("fp-value")));
        assert!(!c.fingerprint_matches(Some("fp-valuf")));
        assert!(!c.fingerprint_matches(Some("")));
        assert!(!c.fingerprint_matches(None));
    }

    #[test]
    fn r_csrf_1_2_header_cookie_pair_must_be_bound_to_the_session() {
        let k = keys();
        let c = claims(1_000_000);
        assert!(c.csrf_matches(&k, "csrf-value", Some("csrf-value")));
        assert!(
            !c.csrf_matches(&k, "csrf-value", Some("other")),
            "header ≠ cookie"
        );
        assert!(!c.csrf_matches(&k, "csrf-value", None), "no cookie");
        // A pair planted by a sibling subdomain: equal, but not this session's.
        assert!(!c.csrf_matches(&k, "planted", Some("planted")));
        assert!(!c.csrf_matches(&k, "", Some("")));
        // The CSRF subkey is its own: the session key does not make a valid csrf_h.
        assert_ne!(csrf_hash(&k, "csrf-value"), fingerprint_hash("csrf-value"));
    }

    #[test]
    fn r_sj_2_a_token_without_fph_is_refused() {
        let k = keys();
        let body = json!({"iss": URL, "aud": URL, "sub": "u", "sid": "s", "iat": 1_000_000,
            "exp": 1_000_000 + SESSION_TTL, "auth_time": 1_000_000, "csrf_h": "c"});
        let t = forge(
            &json!({"alg": "HS256", "typ": "session+jwt"}),
            &body,
            k.session_jwt(),
        );
        assert_eq!(
            SessionClaims::verify(&t, &k, URL, 1_000_100),
            Err(SessionError::Claim("fph"))
        );
    }

    #[test]
    fn round_trip() {
        let c = claims(1_000_000);
        let t = c.issue(&keys());
        assert!(t.len() < MAX_LEN);
        assert_eq!(
            SessionClaims::verify(&t, &keys(), URL, 1_000_100).unwrap(),
            c
        );
    }

    #[test]
    fn r_sj_expired_and_wrong_audience_rejected() {
        let t = claims(1_000_000).issue(&keys());
        assert_eq!(
            SessionClaims::verify(&t, &keys(), URL, 1_000_000 + SESSION_TTL + LEEWAY + 1),
            Err(SessionError::Expired)
        );
        assert_eq!(
            SessionClaims::verify(&t, &keys(), "https://other.example.com", 1_000_000),
            Err(SessionError::Audience)
        );
    }

    /// R-SJ-3: leeway is 5 s (accepted at exp + 5, refused at exp + 6); a token over 3.5 KiB
    /// is refused before any work; the largest real token fits in a 4096-byte cookie.
    #[test]
    fn r_sj_3_leeway_and_size() {
        let t = claims(1_000_000).issue(&keys());
        let exp = 1_000_000 + SESSION_TTL;
        assert!(SessionClaims::verify(&t, &keys(), URL, exp + LEEWAY).is_ok());
        assert_eq!(
            SessionClaims::verify(&t, &keys(), URL, exp + LEEWAY + 1),
            Err(SessionError::Expired)
        );
        assert_eq!(LEEWAY, 5);
        let mut big = claims(1_000_000);
        big.idp_sid = Some("s".repeat(MAX_LEN));
        assert_eq!(
            SessionClaims::verify(&big.issue(&keys()), &keys(), URL, 1_000_100),
            Err(SessionError::Malformed)
        );
        // Everything we put in a session at its longest (ids of 64, an IdP sid of 255).
        let mut longest = claims(1_000_000);
        longest.sub = "u".repeat(64);
        longest.sid = "s".repeat(64);
        longest.idp_sid = Some("i".repeat(255));
        let t = longest.issue(&keys());
        assert!(t.len() + "__Host-session=".len() < 4096, "{}", t.len());
    }

    #[test]
    fn r_sj_1_other_secret_alg_and_typ_rejected() {
        let now = 1_000_000;
        let t = claims(now).issue(&SessionKeys::derive("another-secret-another-secret-xx"));
        assert_eq!(
            SessionClaims::verify(&t, &keys(), URL, now),
            Err(SessionError::Signature)
        );
        let body =
            json!({"iss":URL,"aud":URL,"sub":"u","sid":"s","iat":now,"exp":now+60,"auth_time":now});
        for h in [
            json!({"alg":"none","typ":"session+jwt"}),
            json!({"alg":"HS512","typ":"session+jwt"}),
            json!({"alg":"HS256","typ":"JWT"}),
            json!({"alg":"HS256"}),
            json!({"alg":"HS256","typ":"session+jwt","kid":"x"}),
        ] {
            let t = forge(&h, &body, keys().session_jwt());
            assert_eq!(
                SessionClaims::verify(&t, &keys(), URL, now),
                Err(SessionError::Header),
                "{h}"
            );
        }
    }

    /// R-CFG-1: after a rotation, sessions signed with the previous secret stay valid only
    /// while that secret is configured as previous.
    #[test]
    fn r_cfg_1_previous_secret_verifies_only() {
        let now = 1_000_000;
        let old = SessionKeys::derive("old-secret-old-secret-old-secret-xx");
        let t = claims(now).issue(&old);
        let rotated = SessionKeys::derive("0123456789abcdef0123456789abcdef");
        assert_eq!(
            SessionClaims::verify(&t, &rotated, URL, now),
            Err(SessionError::Signature)
        );
        let rotating = SessionKeys::derive("0123456789abcdef0123456789abcdef")
            .with_previous("old-secret-old-secret-old-secret-xx");
        assert!(SessionClaims::verify(&t, &rotating, URL, now).is_ok());
        // new sessions are signed with the current secret only
        let fresh = claims(now).issue(&rotating);
        assert!(SessionClaims::verify(&fresh, &rotated, URL, now).is_ok());
        assert_eq!(
            SessionClaims::verify(&fresh, &old, URL, now),
            Err(SessionError::Signature)
        );
    }

    #[test]
    fn r_sj_5_tx_subkey_cannot_mint_sessions() {
        let now = 1_000_000;
        let body =
            json!({"iss":URL,"aud":URL,"sub":"u","sid":"s","iat":now,"exp":now+60,"auth_time":now});
        let t = forge(
            &json!({"alg":"HS256","typ":"session+jwt"}),
            &body,
            keys().tx_binding(),
        );
        assert_eq!(
            SessionClaims::verify(&t, &keys(), URL, now),
            Err(SessionError::Signature)
        );
    }

    #[test]
    fn r_sj_2_claim_types_enforced() {
        let now = 1_000_000;
        let h = json!({"alg":"HS256","typ":"session+jwt"});
        for body in [
            json!({"iss":URL,"aud":URL,"sub":"u","sid":"s","iat":now,"exp":"9999999999","auth_time":now}),
            json!({"iss":URL,"aud":URL,"sub":"u","sid":"s","iat":now,"exp":null,"auth_time":now}),
            json!({"iss":URL,"aud":URL,"sub":"u","iat":now,"exp":now+60,"auth_time":now}),
            json!({"iss":URL,"aud":URL,"sub":"u","sid":"s","iat":now,"exp":now+7200,"auth_time":now}),
        ] {
            let t = forge(&h, &body, keys().session_jwt());
            assert!(
                SessionClaims::verify(&t, &keys(), URL, now).is_err(),
                "{body}"
            );
        }
    }

    /// R-SJ-2: each claim rule names its claim (fractional dates, wrong types, empty strings).
    #[test]
    fn r_sj_2_claim_errors_are_exact() {
        let now = 1_000_000;
        let h = json!({"alg":"HS256","typ":"session+jwt"});
        let good = json!({"iss":URL,"aud":URL,"sub":"u","sid":"s","iat":now,"exp":now+60,"auth_time":now,"fph":"h","csrf_h":"c"});
        for (k, v, want) in [
            ("fph", json!(""), SessionError::Claim("fph")),
            ("fph", json!(7), SessionError::Claim("fph")),
            ("csrf_h", json!(""), SessionError::Claim("csrf_h")),
            ("idp_sid", json!(5), SessionError::Claim("idp_sid")),
            ("iat", json!(1_000_000.5), SessionError::Claim("iat")),
            ("auth_time", json!(-1), SessionError::Claim("auth_time")),
            ("sid", json!(""), SessionError::Claim("sid")),
            ("sub", json!(["u"]), SessionError::Claim("sub")),
            ("aud", json!([URL]), SessionError::Claim("aud")),
            ("iss", json!("https://other"), SessionError::Audience),
        ] {
            let mut body = good.clone();
            body[k] = v;
            let t = forge(&h, &body, keys().session_jwt());
            assert_eq!(
                SessionClaims::verify(&t, &keys(), URL, now),
                Err(want),
                "{k}"
            );
        }
        let t = forge(&h, &good, keys().session_jwt());
        assert!(SessionClaims::verify(&t, &keys(), URL, now).is_ok());
    }

    #[test]
    fn garbage_never_panics() {
        for t in [
            "",
            ".",
            "..",
            "a.b.c",
            "x".repeat(10_000).as_str(),
            "eyJ9.eyJ9.AA",
        ] {
            assert!(SessionClaims::verify(t, &keys(), URL, 0).is_err());
        }
    }
}
