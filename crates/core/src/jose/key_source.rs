//! Where [`super::verify_jws`] gets its keys, and what each source accepts.
//!
//! - `&Jwks`: the IdP's published keys (ID tokens, UserInfo JWTs, logout tokens). Asymmetric
//!   algs from the policy's allow-list; the header's `jwk`/`jku`/`x5u`/`x5c` are never read
//!   (R-IDT-2, RFC 8725 §3.10, CVE-2018-0114).
//! - [`EmbeddedJwk`]: the header's own `jwk`, for DPoP proofs only (RFC 9449 §4.2–4.3): `typ`
//!   must be `dpop+jwt`, the alg asymmetric and allow-listed, the key public.
//! - [`HmacKeys`]: the gateway's own HKDF subkeys (R-SJ-1): exactly HS256, current key then the
//!   previous one during a rotation (R-CFG-1). HS256 exists only here, so no token naming it can
//!   reach an IdP key (RFC 8725 §3.1, CVE-2015-9235).
//!
//! The trait is sealed and its methods take a private token: a source cannot be implemented
//! elsewhere, and its signature check cannot be called without the header checks around it.

use aws_lc_rs::hmac;
use jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER;
use serde_json::Value;

use super::verify::{MAX_KEYS_TRIED, TYP_DPOP, VerifyPolicy, allowed_asymmetric_alg};
use super::{CompactJws, JoseError, Jwk, Jwks, JwsAlg};

/// The only algorithm the HMAC source accepts (R-SJ-1).
pub const HS256: &str = "HS256";

pub(crate) mod sealed {
    /// Proof that the call comes from `verify_jws`.
    #[derive(Clone, Copy)]
    pub struct Token;
    pub trait Sealed {}
}

/// A source of verification keys for [`super::verify_jws`].
pub trait KeySource: sealed::Sealed {
    /// What a successful verification returns.
    type Verified;
    /// The algorithm this source resolved from the header.
    #[doc(hidden)]
    type Alg: Copy;

    /// Accept or refuse the header's `alg` (already known not to be `none`).
    #[doc(hidden)]
    fn accept_alg(
        &self,
        name: &str,
        policy: &VerifyPolicy,
        _: sealed::Token,
    ) -> Result<Self::Alg, JoseError>;

    /// Check the signature (header policy already passed).
    #[doc(hidden)]
    fn verify_signature(
        &self,
        jws: &CompactJws,
        alg: Self::Alg,
        kid: Option<&str>,
        _: sealed::Token,
    ) -> Result<Self::Verified, JoseError>;
}

impl sealed::Sealed for &Jwks {}

/// The IdP's JWKS. Returns the verified alg (needed for `at_hash`, R-IDT-16).
impl KeySource for &Jwks {
    type Verified = JwsAlg;
    type Alg = JwsAlg;

    fn accept_alg(
        &self,
        name: &str,
        policy: &VerifyPolicy,
        _: sealed::Token,
    ) -> Result<JwsAlg, JoseError> {
        allowed_asymmetric_alg(name, policy.allowed_algs)
    }

    fn verify_signature(
        &self,
        jws: &CompactJws,
        alg: JwsAlg,
        kid: Option<&str>,
        _: sealed::Token,
    ) -> Result<JwsAlg, JoseError> {
        let candidates = candidate_keys(self, alg, kid)?;
        check_signature_shape(alg, jws.signature())?;
        verify_with_any(&candidates, alg, jws)?;
        Ok(alg)
    }
}

/// The JWS header's own `jwk`: for DPoP proofs only (RFC 9449 §4.3 checks 4–6).
#[derive(Clone, Copy, Debug)]
pub struct EmbeddedJwk;

/// A JWS verified with its embedded key: the alg and the (public) key, whose thumbprint binds
/// the session (R-DP-B).
#[derive(Clone, Debug)]
pub struct VerifiedJwk {
    pub alg: JwsAlg,
    pub jwk: Jwk,
}

impl sealed::Sealed for EmbeddedJwk {}

impl KeySource for EmbeddedJwk {
    type Verified = VerifiedJwk;
    type Alg = JwsAlg;

    /// RFC 9449 §4.3 check 5: asymmetric and allow-listed; never `none` or HS*.
    fn accept_alg(
        &self,
        name: &str,
        policy: &VerifyPolicy,
        _: sealed::Token,
    ) -> Result<JwsAlg, JoseError> {
        allowed_asymmetric_alg(name, policy.allowed_algs)
    }

    fn verify_signature(
        &self,
        jws: &CompactJws,
        alg: JwsAlg,
        _kid: Option<&str>,
        _: sealed::Token,
    ) -> Result<VerifiedJwk, JoseError> {
        // A self-signed key proves possession, not identity: only a DPoP proof may use it,
        // whatever policy the caller passed (RFC 8725 §3.10).
        if jws.header.get("typ").and_then(Value::as_str) != Some(TYP_DPOP) {
            return Err(JoseError::Typ);
        }
        let value = jws.header.get("jwk").ok_or(JoseError::JwkMissing)?;
        // RFC 9449 §4.3 check 5: public key only (Jwk::parse refuses d, p, q, dp, dq, qi, oth, k).
        let jwk = Jwk::parse(value).map_err(JoseError::Jwk)?;
        // The key type follows the allow-listed alg, never the other way round (R-IDT-6).
        if !jwk.usable_for(alg) {
            return Err(JoseError::NoUsableKey);
        }
        check_signature_shape(alg, jws.signature())?;
        verify_with_any(&[&jwk], alg, jws)?;
        Ok(VerifiedJwk { alg, jwk })
    }
}

/// The gateway's own HMAC keys: `current` signs and verifies; `previous` (during a secret
/// rotation, R-CFG-1) only verifies. Pair with a policy that pins an exact `typ` (such as
/// [`VerifyPolicy::session`]): together with a per-purpose HKDF subkey, that keeps one kind of
/// gateway token from passing as another (R-SJ-5, RFC 8725 §3.12).
#[derive(Clone, Copy)]
pub struct HmacKeys<'a> {
    pub current: &'a hmac::Key,
    pub previous: Option<&'a hmac::Key>,
}

impl std::fmt::Debug for HmacKeys<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HmacKeys(***)")
    }
}

/// Which HMAC key verified the token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HmacKeyUsed {
    Current,
    /// The previous secret: the caller may want to re-issue under the current one.
    Previous,
}

impl sealed::Sealed for HmacKeys<'_> {}

impl KeySource for HmacKeys<'_> {
    type Verified = HmacKeyUsed;
    type Alg = ();

    /// R-SJ-1: exactly `HS256`, case-sensitive; no alg agility at all.
    fn accept_alg(&self, name: &str, _: &VerifyPolicy, _: sealed::Token) -> Result<(), JoseError> {
        if name == HS256 {
            Ok(())
        } else {
            Err(JoseError::AlgNotAllowed)
        }
    }

    /// Constant-time tag comparison (aws-lc `hmac::verify`).
    fn verify_signature(
        &self,
        jws: &CompactJws,
        (): (),
        _kid: Option<&str>,
        _: sealed::Token,
    ) -> Result<HmacKeyUsed, JoseError> {
        let ok = |k: &hmac::Key| hmac::verify(k, jws.signing_input(), jws.signature()).is_ok();
        if ok(self.current) {
            Ok(HmacKeyUsed::Current)
        } else if self.previous.is_some_and(ok) {
            Ok(HmacKeyUsed::Previous)
        } else {
            Err(JoseError::BadSignature)
        }
    }
}

/// R-IDT-3: keys whose type matches the allow-listed alg (never the header's say-so), whose own
/// `alg` (if any) equals it; with a `kid`, only that kid; at most [`MAX_KEYS_TRIED`].
fn candidate_keys<'j>(
    jwks: &'j Jwks,
    alg: JwsAlg,
    kid: Option<&str>,
) -> Result<Vec<&'j Jwk>, JoseError> {
    let candidates: Vec<&Jwk> = jwks
        .keys()
        .iter()
        .filter(|k| k.usable_for(alg))
        .filter(|k| kid.is_none() || k.kid() == kid)
        .take(MAX_KEYS_TRIED)
        .collect();
    match kid {
        _ if !candidates.is_empty() => Ok(candidates),
        // Rotation: the IdP may have a key we have not fetched yet.
        Some(k) if !jwks.contains_kid(k) => Err(JoseError::UnknownKid),
        _ => Err(JoseError::NoUsableKey),
    }
}

/// R-IDT-7: ECDSA signatures must be raw R‖S of the exact size (RFC 7518 §3.4), not DER.
fn check_signature_shape(alg: JwsAlg, sig: &[u8]) -> Result<(), JoseError> {
    match alg.ecdsa_signature_len() {
        Some(len) if sig.len() != len => Err(JoseError::EcdsaSignatureLength),
        _ => Ok(()),
    }
}

/// R-IDT-7: accept if one candidate verifies. Uses the aws-lc provider explicitly so no global
/// provider state is involved; aws-lc rejects ECDSA r/s = 0 or ≥ n (CVE-2022-21449).
fn verify_with_any(keys: &[&Jwk], alg: JwsAlg, jws: &CompactJws) -> Result<(), JoseError> {
    let jwt_alg = alg.to_jsonwebtoken();
    let signature = jws.signature().to_vec();
    let verified = keys.iter().any(|k| match k.ec_parsed() {
        // EC: the key aws-lc parsed when the JWK was judged (`usable_for` tied the curve to
        // the alg, and the parsed key's algorithm is that curve's fixed-size ECDSA).
        Some(parsed) => parsed.verify_sig(jws.signing_input(), &signature).is_ok(),
        None => (DEFAULT_PROVIDER.verifier_factory)(&jwt_alg, k.key())
            .is_ok_and(|v| v.verify(jws.signing_input(), &signature).is_ok()),
    });
    if verified {
        Ok(())
    } else {
        Err(JoseError::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::jose::test_support::{
        b64, ec256, ec384, ed25519, jwks, rsa_a, signing_input, token, token_raw,
    };
    use crate::jose::{JwkError, KeyFamily, parse_compact};
    use serde_json::json;

    const MAX: usize = 8 * 1024;

    fn proof_claims() -> Value {
        json!({"jti": "0123456789abcdef", "htm": "GET", "htu": "https://gw/api/x", "iat": 1})
    }

    /// A DPoP-shaped header: typ dpop+jwt, the signer's own public jwk, no kid.
    fn dpop_header(jwk: Value) -> Value {
        json!({"typ": "dpop+jwt", "jwk": jwk, "kid": null})
    }

    fn dpop(tok: &str, policy: &VerifyPolicy) -> Result<VerifiedJwk, JoseError> {
        let jws = parse_compact(tok, MAX)?;
        crate::jose::verify_jws(&jws, EmbeddedJwk, policy)
    }

    fn es256_proof(extra: Value) -> String {
        let mut h = dpop_header(ec256().jwk());
        for (k, v) in extra.as_object().unwrap() {
            h[k] = v.clone();
        }
        token(&proof_claims(), ec256(), JwsAlg::ES256, h)
    }

    /// R-DP checks 2–5: a valid ES256 proof verifies against its own jwk, which is returned
    /// for the thumbprint.
    #[test]
    fn r_dp_embedded_jwk_es256_accepted() {
        let v = dpop(&es256_proof(json!({})), &VerifyPolicy::dpop_proof()).unwrap();
        assert_eq!(v.alg, JwsAlg::ES256);
        assert_eq!(v.jwk.family(), KeyFamily::EcP256);
        let expected = Jwk::parse(&ec256().jwk()).unwrap().thumbprint_sha256();
        assert_eq!(v.jwk.thumbprint_sha256(), expected);
        // A kid in the header is allowed and irrelevant (RFC 9449 does not use it).
        let t = es256_proof(json!({"kid": "whatever"}));
        assert!(dpop(&t, &VerifyPolicy::dpop_proof()).is_ok());
    }

    /// The embedded source supports every asymmetric alg a wider policy allows.
    #[test]
    fn r_dp_embedded_jwk_other_asymmetric_algs() {
        let all = VerifyPolicy {
            allowed_algs: &JwsAlg::ALL,
            ..VerifyPolicy::dpop_proof()
        };
        for (key, alg) in [
            (rsa_a(), JwsAlg::RS256),
            (rsa_a(), JwsAlg::PS256),
            (ec384(), JwsAlg::ES384),
            (ed25519(), JwsAlg::EdDSA),
        ] {
            let t = token(&proof_claims(), key, alg, dpop_header(key.jwk()));
            assert_eq!(dpop(&t, &all).unwrap().alg, alg, "{alg}");
        }
    }

    /// R-DP check 2: typ must be exactly dpop+jwt (absent, JWT, other case, media-type form).
    #[test]
    fn r_dp_2_typ_must_be_dpop_jwt() {
        for typ in [
            json!(null),
            json!("JWT"),
            json!("DPoP+JWT"),
            json!("application/dpop+jwt"),
            json!("at+jwt"),
            json!(1),
        ] {
            let mut h = dpop_header(ec256().jwk());
            h["typ"] = typ.clone();
            if typ.is_null() {
                h.as_object_mut().unwrap().remove("typ");
            }
            let t = token(&proof_claims(), ec256(), JwsAlg::ES256, h);
            assert_eq!(
                dpop(&t, &VerifyPolicy::dpop_proof()).unwrap_err(),
                JoseError::Typ,
                "{typ}"
            );
        }
    }

    /// The embedded key is for DPoP only: under an ID-token policy (typ JWT accepted) the
    /// source still refuses, so a self-signed ID token can never verify.
    #[test]
    fn r_idt_2_embedded_jwk_refused_outside_dpop() {
        let h = json!({"typ": "JWT", "jwk": ec256().jwk(), "kid": null});
        let t = token(&proof_claims(), ec256(), JwsAlg::ES256, h);
        let policy = VerifyPolicy::id_token(&[JwsAlg::ES256]);
        assert_eq!(dpop(&t, &policy).unwrap_err(), JoseError::Typ);
        let h = json!({"jwk": ec256().jwk(), "kid": null});
        let t = token(&proof_claims(), ec256(), JwsAlg::ES256, h);
        assert_eq!(dpop(&t, &policy).unwrap_err(), JoseError::Typ);
    }

    /// R-DP check 3: only the allow-listed asymmetric alg; none and HS256 never.
    #[test]
    fn r_dp_3_alg_policy() {
        let t = token(
            &proof_claims(),
            rsa_a(),
            JwsAlg::RS256,
            dpop_header(rsa_a().jwk()),
        );
        assert_eq!(
            dpop(&t, &VerifyPolicy::dpop_proof()).unwrap_err(),
            JoseError::AlgNotAllowed
        );
        let claims = proof_claims().to_string();
        for (alg, want) in [
            ("none", JoseError::AlgNone),
            ("NONE", JoseError::AlgNone),
            ("HS256", JoseError::AlgNotAllowed),
            ("es256", JoseError::AlgNotAllowed),
        ] {
            let h = json!({"alg": alg, "typ": "dpop+jwt", "jwk": ec256().jwk()}).to_string();
            let input = signing_input(&h, &claims);
            let key = hmac::Key::new(hmac::HMAC_SHA256, b"x");
            let t = format!(
                "{input}.{}",
                b64(hmac::sign(&key, input.as_bytes()).as_ref())
            );
            assert_eq!(
                dpop(&t, &VerifyPolicy::dpop_proof()).unwrap_err(),
                want,
                "{alg}"
            );
        }
    }

    /// R-DP check 4: no jwk, or a jwk that is not an object.
    #[test]
    fn r_dp_4_jwk_missing_or_not_object() {
        let t = token(
            &proof_claims(),
            ec256(),
            JwsAlg::ES256,
            json!({"typ": "dpop+jwt", "kid": null}),
        );
        assert_eq!(
            dpop(&t, &VerifyPolicy::dpop_proof()).unwrap_err(),
            JoseError::JwkMissing
        );
        let t = es256_proof(json!({"jwk": "key"}));
        assert_eq!(
            dpop(&t, &VerifyPolicy::dpop_proof()).unwrap_err(),
            JoseError::Jwk(JwkError::NotObject)
        );
    }

    /// R-DP check 4 (RFC 9449 §4.3): any private member in the jwk refuses the proof, even
    /// though the signature is genuine.
    #[test]
    fn r_dp_4_jwk_private_members_refused() {
        for m in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
            let t = es256_proof(json!({ "jwk": ec256().jwk_with(json!({ m: b64(b"secret") })) }));
            assert_eq!(
                dpop(&t, &VerifyPolicy::dpop_proof()).unwrap_err(),
                JoseError::Jwk(JwkError::PrivateMembers),
                "{m}"
            );
        }
    }

    /// R-DP check 4: coordinates of the wrong length, a point off the curve, `use: enc`.
    #[test]
    fn r_dp_4_jwk_bad_key_refused() {
        let ec = ec256().jwk();
        let cases = [
            (
                json!({"kty": "EC", "crv": "P-256", "x": b64(&[1; 31]), "y": ec["y"]}),
                JwkError::EcCoordinateLength,
            ),
            (
                json!({"kty": "EC", "crv": "P-256", "x": ec["x"], "y": ec["x"]}),
                JwkError::EcPoint,
            ),
            (ec256().jwk_with(json!({"use": "enc"})), JwkError::Use),
            (json!({"kty": "oct", "kid": "x"}), JwkError::Kty),
        ];
        for (jwk, want) in cases {
            let t = es256_proof(json!({ "jwk": jwk }));
            assert_eq!(
                dpop(&t, &VerifyPolicy::dpop_proof()).unwrap_err(),
                JoseError::Jwk(want)
            );
        }
    }

    /// R-IDT-6 for DPoP: a jwk of another type than the alg implies is not used.
    #[test]
    fn r_dp_4_jwk_family_must_match_alg() {
        let t = es256_proof(json!({ "jwk": ec384().jwk() }));
        assert_eq!(
            dpop(&t, &VerifyPolicy::dpop_proof()).unwrap_err(),
            JoseError::NoUsableKey
        );
        let t = es256_proof(json!({ "jwk": ec256().jwk_with(json!({"alg": "ES384"})) }));
        assert_eq!(
            dpop(&t, &VerifyPolicy::dpop_proof()).unwrap_err(),
            JoseError::Jwk(JwkError::AlgMismatch)
        );
    }

    /// R-DP check 5: signed by another key than the embedded one; DER; r = s = 0.
    #[test]
    fn r_dp_5_signature_rules() {
        let other = crate::jose::test_support::TestKey::ec_p256_fresh();
        let t = token(
            &proof_claims(),
            &other,
            JwsAlg::ES256,
            dpop_header(ec256().jwk()),
        );
        assert_eq!(
            dpop(&t, &VerifyPolicy::dpop_proof()).unwrap_err(),
            JoseError::BadSignature
        );
        let h = json!({"alg": "ES256", "typ": "dpop+jwt", "jwk": ec256().jwk()}).to_string();
        let input = signing_input(&h, &proof_claims().to_string());
        let der = ec256().sign_der(input.as_bytes());
        assert_eq!(
            dpop(
                &format!("{input}.{}", b64(&der)),
                &VerifyPolicy::dpop_proof()
            )
            .unwrap_err(),
            JoseError::EcdsaSignatureLength
        );
        assert_eq!(
            dpop(
                &format!("{input}.{}", b64(&[0; 64])),
                &VerifyPolicy::dpop_proof()
            )
            .unwrap_err(),
            JoseError::BadSignature
        );
        // crit is refused here too.
        let t = es256_proof(json!({"crit": ["htm"]}));
        assert_eq!(
            dpop(&t, &VerifyPolicy::dpop_proof()).unwrap_err(),
            JoseError::Crit
        );
    }

    fn keys() -> (hmac::Key, hmac::Key) {
        (
            hmac::Key::new(hmac::HMAC_SHA256, &[7; 32]),
            hmac::Key::new(hmac::HMAC_SHA256, &[9; 32]),
        )
    }

    fn mac(header: &Value, key: &hmac::Key) -> String {
        let input = signing_input(&header.to_string(), r#"{"sub":"u"}"#);
        format!(
            "{input}.{}",
            b64(hmac::sign(key, input.as_bytes()).as_ref())
        )
    }

    fn session(tok: &str, source: HmacKeys) -> Result<HmacKeyUsed, JoseError> {
        let jws = parse_compact(tok, MAX)?;
        crate::jose::verify_jws(&jws, source, &VerifyPolicy::session())
    }

    /// R-SJ-1, R-CFG-1: current key, previous key, unknown key.
    #[test]
    fn r_sj_1_hmac_current_previous_other() {
        let (cur, prev) = keys();
        let h = json!({"alg": "HS256", "typ": "session+jwt"});
        let only = HmacKeys {
            current: &cur,
            previous: None,
        };
        let both = HmacKeys {
            current: &cur,
            previous: Some(&prev),
        };
        assert_eq!(session(&mac(&h, &cur), only), Ok(HmacKeyUsed::Current));
        assert_eq!(session(&mac(&h, &prev), both), Ok(HmacKeyUsed::Previous));
        assert_eq!(session(&mac(&h, &prev), only), Err(JoseError::BadSignature));
        let stranger = hmac::Key::new(hmac::HMAC_SHA256, &[1; 32]);
        assert_eq!(
            session(&mac(&h, &stranger), both),
            Err(JoseError::BadSignature)
        );
        assert!(!format!("{both:?}").contains('7'));
    }

    /// R-SJ-1: only HS256 (exact case), only typ session+jwt (exact), only alg and typ.
    #[test]
    fn r_sj_1_hmac_header_rules() {
        let (cur, _) = keys();
        let src = HmacKeys {
            current: &cur,
            previous: None,
        };
        for (h, want) in [
            (
                json!({"alg": "none", "typ": "session+jwt"}),
                JoseError::AlgNone,
            ),
            (
                json!({"alg": "HS512", "typ": "session+jwt"}),
                JoseError::AlgNotAllowed,
            ),
            (
                json!({"alg": "hs256", "typ": "session+jwt"}),
                JoseError::AlgNotAllowed,
            ),
            (
                json!({"alg": "RS256", "typ": "session+jwt"}),
                JoseError::AlgNotAllowed,
            ),
            (json!({"typ": "session+jwt"}), JoseError::MissingAlg),
            (json!({"alg": "HS256"}), JoseError::Typ),
            (json!({"alg": "HS256", "typ": "JWT"}), JoseError::Typ),
            (
                json!({"alg": "HS256", "typ": "SESSION+JWT"}),
                JoseError::Typ,
            ),
            (
                json!({"alg": "HS256", "typ": "application/session+jwt"}),
                JoseError::Typ,
            ),
            (
                json!({"alg": "HS256", "typ": "session+jwt", "kid": "x"}),
                JoseError::HeaderMember,
            ),
            (
                json!({"alg": "HS256", "typ": "session+jwt", "jwk": ec256().jwk()}),
                JoseError::HeaderMember,
            ),
            (
                json!({"alg": "HS256", "typ": "session+jwt", "crit": ["x"]}),
                JoseError::HeaderMember,
            ),
        ] {
            assert_eq!(session(&mac(&h, &cur), src), Err(want), "{h}");
        }
    }

    /// RFC 8725 §3.1: the session policy can never be satisfied by IdP keys, and an
    /// HS256 token never reaches a JWKS key (CVE-2015-9235).
    #[test]
    fn r_idt_6_hs256_never_via_jwks() {
        let set = jwks(&[rsa_a().jwk()]);
        let (cur, _) = keys();
        let h = json!({"alg": "HS256", "typ": "session+jwt"});
        let jws = parse_compact(&mac(&h, &cur), MAX).unwrap();
        assert_eq!(
            crate::jose::verify_jws(&jws, &set, &VerifyPolicy::session()),
            Err(JoseError::AlgNotAllowed)
        );
        let t = token_raw(
            &json!({"alg": "RS256", "typ": "session+jwt", "kid": "rsa-a"}).to_string(),
            r#"{"sub":"u"}"#,
            rsa_a(),
            JwsAlg::RS256,
        );
        let jws = parse_compact(&t, MAX).unwrap();
        assert_eq!(
            crate::jose::verify_jws(&jws, &set, &VerifyPolicy::session()),
            Err(JoseError::AlgNotAllowed)
        );
    }
}
