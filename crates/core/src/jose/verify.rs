//! The verifier core (R-IDT-2, -3, -5, -6, -7, R-SJ-1, R-DP proof checks 2–5): header policy,
//! key selection, signature.
//!
//! One function for every token kind: ID tokens, signed UserInfo responses and logout tokens
//! (keys from the IdP's JWKS), DPoP proofs (the header's own `jwk`) and the gateway's session
//! JWT (its own HMAC keys). Each caller states what it accepts through a [`VerifyPolicy`] and
//! where keys come from through a [`KeySource`], then checks its own claims.

use serde_json::{Map, Value};

use super::jwks::KID_MAX_LEN;
use super::key_source::{KeySource, sealed};
use super::{CompactJws, JoseError, JwsAlg};

/// The `typ` an ID token / UserInfo JWT may carry (R-IDT-2).
pub const TYP_JWT: &str = "JWT";
/// The session JWT's `typ` (R-SJ-1).
pub const TYP_SESSION: &str = "session+jwt";
/// The DPoP proof's `typ` (RFC 9449 §4.2).
pub const TYP_DPOP: &str = "dpop+jwt";
/// `typ` values of other JWT kinds, always refused where they do not belong (RFC 8725 §3.11,
/// cross-JWT confusion).
pub const CROSS_JWT_TYPS: [&str; 4] = ["logout+jwt", "dpop+jwt", "at+jwt", "session+jwt"];
/// R-IDT-3: without a `kid`, at most this many candidate keys are tried.
pub const MAX_KEYS_TRIED: usize = 8;

/// What one kind of token accepts.
#[derive(Clone, Copy, Debug)]
pub struct VerifyPolicy<'a> {
    /// R-IDT-6: the only asymmetric algorithms accepted. Empty accepts nothing. Not consulted by
    /// the HMAC key source, which accepts exactly HS256 (HS* is never a [`JwsAlg`]).
    pub allowed_algs: &'a [JwsAlg],
    /// R-IDT-2: accepted `typ` values, compared case-insensitively after RFC 7515 §4.1.9
    /// normalisation (`JWT` ≡ `application/jwt`) unless `typ_exact`. Empty means "absent or
    /// `JWT`".
    pub allowed_typs: &'a [&'a str],
    /// When true, `typ` must be present (e.g. `require_logout_typ`, R-BCL-9).
    pub typ_required: bool,
    /// `typ` values refused even if `allowed_typs` would admit them (defence in depth).
    pub rejected_typs: &'a [&'a str],
    /// Compare `typ` byte for byte, without case folding or the `application/` prefix: our own
    /// tokens (R-SJ-1) and DPoP proofs (R-DP check 2) have exactly one spelling.
    pub typ_exact: bool,
    /// When set, the header may contain only these members (R-SJ-1: exactly `alg` and `typ`).
    pub header_members: Option<&'a [&'a str]>,
}

impl<'a> VerifyPolicy<'a> {
    /// ID tokens and UserInfo JWTs: `typ` absent or `JWT`; other JWT kinds refused (R-IDT-2).
    pub fn id_token(allowed_algs: &'a [JwsAlg]) -> Self {
        VerifyPolicy {
            allowed_algs,
            allowed_typs: &[],
            typ_required: false,
            rejected_typs: &CROSS_JWT_TYPS,
            typ_exact: false,
            header_members: None,
        }
    }

    /// Logout tokens (R-BCL-9): `typ` absent, `JWT` or `logout+jwt` (also
    /// `application/logout+jwt`); with `require_typ`, only `logout+jwt`.
    pub fn logout_token(allowed_algs: &'a [JwsAlg], require_typ: bool) -> Self {
        const REJECTED: [&str; 3] = ["dpop+jwt", "at+jwt", "session+jwt"];
        VerifyPolicy {
            allowed_algs,
            allowed_typs: if require_typ {
                &["logout+jwt"]
            } else {
                &[TYP_JWT, "logout+jwt"]
            },
            typ_required: require_typ,
            rejected_typs: &REJECTED,
            typ_exact: false,
            header_members: None,
        }
    }

    /// The gateway session JWT (R-SJ-1): header exactly `{"alg":"HS256","typ":"session+jwt"}`.
    /// Use with [`super::HmacKeys`]; no asymmetric alg is allowed, so IdP keys never verify it.
    pub fn session() -> VerifyPolicy<'static> {
        VerifyPolicy {
            allowed_algs: &[],
            allowed_typs: &[TYP_SESSION],
            typ_required: true,
            rejected_typs: &[],
            typ_exact: true,
            header_members: Some(&["alg", "typ"]),
        }
    }

    /// DPoP proofs (RFC 9449 §4.3, R-DP checks 2–3): `typ` exactly `dpop+jwt`, `alg` ES256 (the
    /// local policy, SECURITY.md §1.11). Use with [`super::EmbeddedJwk`].
    pub fn dpop_proof() -> VerifyPolicy<'static> {
        VerifyPolicy {
            allowed_algs: &[JwsAlg::ES256],
            allowed_typs: &[TYP_DPOP],
            typ_required: true,
            rejected_typs: &[],
            typ_exact: true,
            header_members: None,
        }
    }
}

/// Verify a parsed compact JWS with keys from `keys` under `policy`.
///
/// The result says what verified it: the alg for a JWKS, the alg and key for an embedded
/// `jwk`, which HMAC key for the gateway's own keys. Claims are *not* checked here (each token
/// kind does that). `UnknownKid` tells the caller to refetch the JWKS once (single-flight,
/// cooldown) and call again (R-IDT-3).
pub fn verify_jws<K: KeySource>(
    jws: &CompactJws,
    keys: K,
    policy: &VerifyPolicy,
) -> Result<K::Verified, JoseError> {
    let name = header_alg_name(&jws.header)?;
    let alg = keys.accept_alg(name, policy, sealed::Token)?;
    check_members(&jws.header, policy)?;
    check_extensions(&jws.header)?;
    check_typ(&jws.header, policy)?;
    let kid = header_kid(&jws.header)?;
    keys.verify_signature(jws, alg, kid, sealed::Token)
}

/// R-IDT-2/5: `alg` required and a string; `none` in any case always refused, whatever the
/// key source (the sources then accept only their own algorithms).
fn header_alg_name(header: &Map<String, Value>) -> Result<&str, JoseError> {
    let name = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or(JoseError::MissingAlg)?;
    if name.eq_ignore_ascii_case("none") {
        return Err(JoseError::AlgNone);
    }
    Ok(name)
}

/// R-IDT-6: a supported asymmetric alg *and* in the allow-list (HS* is not even
/// representable, so it can never pick an IdP key).
pub(crate) fn allowed_asymmetric_alg(name: &str, allowed: &[JwsAlg]) -> Result<JwsAlg, JoseError> {
    JwsAlg::parse(name)
        .filter(|a| allowed.contains(a))
        .ok_or(JoseError::AlgNotAllowed)
}

/// R-SJ-1: where the policy fixes the header members, anything else (`kid`, `jwk`, …) is
/// refused rather than ignored.
fn check_members(header: &Map<String, Value>, policy: &VerifyPolicy) -> Result<(), JoseError> {
    match policy.header_members {
        Some(allowed) if header.keys().any(|k| !allowed.contains(&k.as_str())) => {
            Err(JoseError::HeaderMember)
        }
        _ => Ok(()),
    }
}

/// R-IDT-2: we implement no `crit` extension, so any `crit` is refused (RFC 7515 §4.1.11);
/// `b64` other than `true` would change what is signed (RFC 7797).
fn check_extensions(header: &Map<String, Value>) -> Result<(), JoseError> {
    if header.contains_key("crit") {
        return Err(JoseError::Crit);
    }
    match header.get("b64") {
        None | Some(Value::Bool(true)) => Ok(()),
        Some(_) => Err(JoseError::B64),
    }
}

/// R-IDT-2, RFC 8725 §3.11: explicit typing keeps one kind of JWT from being replayed as another.
fn check_typ(header: &Map<String, Value>, policy: &VerifyPolicy) -> Result<(), JoseError> {
    let typ = match header.get("typ") {
        None if policy.typ_required => return Err(JoseError::Typ),
        None => return Ok(()),
        Some(Value::String(t)) => t.as_str(),
        Some(_) => return Err(JoseError::Typ),
    };
    let same = |expected: &str| {
        if policy.typ_exact {
            typ == expected
        } else {
            typ_eq(typ, expected)
        }
    };
    if policy.rejected_typs.iter().any(|r| same(r)) {
        return Err(JoseError::Typ);
    }
    let allowed: &[&str] = if policy.allowed_typs.is_empty() {
        &[TYP_JWT]
    } else {
        policy.allowed_typs
    };
    if allowed.iter().any(|a| same(a)) {
        Ok(())
    } else {
        Err(JoseError::Typ)
    }
}

/// Media types compare case-insensitively, and a `typ` without `/` means `application/<typ>`
/// (RFC 7515 §4.1.9), so `JWT`, `jwt` and `application/jwt` are one value.
fn typ_eq(a: &str, b: &str) -> bool {
    strip_application(a).eq_ignore_ascii_case(strip_application(b))
}

fn strip_application(t: &str) -> &str {
    const PREFIX: &str = "application/";
    match (t.get(..PREFIX.len()), t.get(PREFIX.len()..)) {
        (Some(p), Some(rest)) if p.eq_ignore_ascii_case(PREFIX) && !rest.contains('/') => rest,
        _ => t,
    }
}

/// R-IDT-3: `kid`, if present, is a string of at most 256 characters (only a map key).
fn header_kid(header: &Map<String, Value>) -> Result<Option<&str>, JoseError> {
    match header.get("kid") {
        None => Ok(None),
        Some(Value::String(k)) if k.chars().count() <= KID_MAX_LEN => Ok(Some(k)),
        Some(_) => Err(JoseError::Kid),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::jose::test_support::{
        TestKey, b64, ec256, ec384, ed25519, jwks, rsa_a, rsa_attacker, rsa_b, signing_input,
        token, token_raw,
    };
    use crate::jose::{Jwks, parse_compact};
    use serde_json::json;

    const MAX: usize = 64 * 1024;
    const RS256: &[JwsAlg] = &[JwsAlg::RS256];

    fn claims() -> Value {
        json!({"sub": "alice", "iss": "https://idp.example"})
    }

    fn check(tok: &str, set: &Jwks, algs: &[JwsAlg]) -> Result<JwsAlg, JoseError> {
        let jws = parse_compact(tok, MAX)?;
        verify_jws(&jws, set, &VerifyPolicy::id_token(algs))
    }

    fn all_keys() -> Jwks {
        jwks(&[rsa_a().jwk(), ec256().jwk(), ec384().jwk(), ed25519().jwk()])
    }

    /// R-IDT-7: valid RS256/384/512 and PS256/384/512 tokens are accepted.
    #[test]
    fn r_idt_7_valid_rsa_tokens_accepted() {
        let set = all_keys();
        for alg in [
            JwsAlg::RS256,
            JwsAlg::RS384,
            JwsAlg::RS512,
            JwsAlg::PS256,
            JwsAlg::PS384,
            JwsAlg::PS512,
        ] {
            let t = token(&claims(), rsa_a(), alg, json!({}));
            assert_eq!(check(&t, &set, &[alg]), Ok(alg), "{alg}");
        }
    }

    /// R-IDT-7: valid ES256 and ES384 tokens are accepted.
    #[test]
    fn r_idt_7_valid_es256_es384_accepted() {
        let set = all_keys();
        let t = token(&claims(), ec256(), JwsAlg::ES256, json!({}));
        assert_eq!(check(&t, &set, &[JwsAlg::ES256]), Ok(JwsAlg::ES256));
        let t = token(&claims(), ec384(), JwsAlg::ES384, json!({}));
        assert_eq!(check(&t, &set, &[JwsAlg::ES384]), Ok(JwsAlg::ES384));
    }

    /// R-IDT-7: valid EdDSA (Ed25519) tokens are accepted.
    #[test]
    fn r_idt_7_valid_eddsa_accepted() {
        let t = token(&claims(), ed25519(), JwsAlg::EdDSA, json!({}));
        assert_eq!(check(&t, &all_keys(), &[JwsAlg::EdDSA]), Ok(JwsAlg::EdDSA));
    }

    /// R-IDT-7: a modified signature or payload fails.
    #[test]
    fn r_idt_7_tampered_signature_rejected() {
        let set = all_keys();
        let t = token(&claims(), rsa_a(), JwsAlg::RS256, json!({}));
        let (input, sig) = t.rsplit_once('.').unwrap();
        let mut raw =
            base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, sig).unwrap();
        raw[10] ^= 1;
        let bad = format!("{input}.{}", b64(&raw));
        assert_eq!(check(&bad, &set, RS256), Err(JoseError::BadSignature));
        // Payload swapped under the original signature.
        let other = signing_input(
            &json!({"alg": "RS256", "kid": "rsa-a"}).to_string(),
            &json!({"sub": "admin"}).to_string(),
        );
        assert_eq!(
            check(&format!("{other}.{sig}"), &set, RS256),
            Err(JoseError::BadSignature)
        );
        // Empty signature.
        assert_eq!(
            check(&format!("{input}."), &set, RS256),
            Err(JoseError::BadSignature)
        );
    }

    /// R-IDT-5: `alg: none` is refused in any case, with or without a signature, even if the
    /// allow-list were to contain everything.
    #[test]
    fn r_idt_5_alg_none_rejected_any_case() {
        let set = all_keys();
        let real_sig = rsa_a().sign(JwsAlg::RS256, b"x");
        for name in ["none", "NONE", "None", "nOnE"] {
            let h = json!({"alg": name, "kid": "rsa-a"}).to_string();
            let input = signing_input(&h, &claims().to_string());
            for sig in [String::new(), b64(&real_sig)] {
                let t = format!("{input}.{sig}");
                assert_eq!(
                    check(&t, &set, &JwsAlg::ALL),
                    Err(JoseError::AlgNone),
                    "{name}"
                );
            }
        }
    }

    /// R-IDT-6 (CVE-2015-9235): HS256 keyed with the RSA public key (PEM) is refused.
    #[test]
    fn r_idt_6_hs256_with_rsa_public_key_rejected() {
        let pem = rsa_a().rsa_public_pem();
        let h = json!({"alg": "HS256", "kid": "rsa-a"}).to_string();
        let input = signing_input(&h, &claims().to_string());
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, pem.as_bytes());
        let mac = aws_lc_rs::hmac::sign(&key, input.as_bytes());
        let t = format!("{input}.{}", b64(mac.as_ref()));
        assert_eq!(
            check(&t, &all_keys(), &JwsAlg::ALL),
            Err(JoseError::AlgNotAllowed)
        );
    }

    /// R-IDT-6: a validly signed token whose alg is not allow-listed is refused (ES256 key in
    /// the JWKS while only RS256 is allowed).
    #[test]
    fn r_idt_6_alg_not_in_allow_list_rejected() {
        let t = token(&claims(), ec256(), JwsAlg::ES256, json!({}));
        assert_eq!(check(&t, &all_keys(), RS256), Err(JoseError::AlgNotAllowed));
        assert_eq!(check(&t, &all_keys(), &[]), Err(JoseError::AlgNotAllowed));
    }

    /// R-IDT-2: `alg` is required and must be a string.
    #[test]
    fn r_idt_2_alg_missing_rejected() {
        let p = claims().to_string();
        for h in [
            json!({"kid": "rsa-a"}),
            json!({"alg": 1}),
            json!({"alg": null}),
        ] {
            let t = token_raw(&h.to_string(), &p, rsa_a(), JwsAlg::RS256);
            assert_eq!(check(&t, &all_keys(), RS256), Err(JoseError::MissingAlg));
        }
    }

    /// R-IDT-3: a kid not in the JWKS gives UnknownKid (the caller refetches once).
    #[test]
    fn r_idt_3_unknown_kid() {
        let t = token(&claims(), rsa_b(), JwsAlg::RS256, json!({}));
        assert_eq!(check(&t, &all_keys(), RS256), Err(JoseError::UnknownKid));
        // After the "refetch" the key is there.
        let set = jwks(&[rsa_a().jwk(), rsa_b().jwk()]);
        assert_eq!(check(&t, &set, RS256), Ok(JwsAlg::RS256));
    }

    /// R-IDT-3: without kid, all candidates are tried and the right one accepts.
    #[test]
    fn r_idt_3_no_kid_try_all_accepts_right_key() {
        let set = jwks(&[rsa_a().jwk(), rsa_b().jwk(), ec256().jwk()]);
        let t = token(&claims(), rsa_b(), JwsAlg::RS256, json!({"kid": null}));
        assert_eq!(check(&t, &set, RS256), Ok(JwsAlg::RS256));
    }

    /// R-IDT-3: without kid, if no candidate verifies, the token is refused.
    #[test]
    fn r_idt_3_no_kid_none_verifies_rejected() {
        let set = jwks(&[rsa_a().jwk(), ec256().jwk()]);
        let t = token(&claims(), rsa_b(), JwsAlg::RS256, json!({"kid": null}));
        assert_eq!(check(&t, &set, RS256), Err(JoseError::BadSignature));
        let t = token(&claims(), ed25519(), JwsAlg::EdDSA, json!({"kid": null}));
        assert_eq!(
            check(&t, &set, &[JwsAlg::EdDSA]),
            Err(JoseError::NoUsableKey)
        );
    }

    /// R-IDT-3: at most 8 candidates are tried without a kid.
    #[test]
    fn r_idt_3_no_kid_at_most_8_candidates() {
        let keys: Vec<TestKey> = (0..9).map(|_| TestKey::ec_p256_fresh()).collect();
        let set = jwks(&keys.iter().map(TestKey::jwk).collect::<Vec<_>>());
        let es = &[JwsAlg::ES256];
        let t8 = token(&claims(), &keys[7], JwsAlg::ES256, json!({"kid": null}));
        assert_eq!(check(&t8, &set, es), Ok(JwsAlg::ES256));
        let t9 = token(&claims(), &keys[8], JwsAlg::ES256, json!({"kid": null}));
        assert_eq!(check(&t9, &set, es), Err(JoseError::BadSignature));
    }

    /// R-IDT-3: a key whose own `alg` differs from the token alg is not used.
    #[test]
    fn r_idt_3_key_alg_mismatch_rejected() {
        let set = jwks(&[rsa_a().jwk_with(json!({"alg": "PS256"}))]);
        let t = token(&claims(), rsa_a(), JwsAlg::RS256, json!({}));
        assert_eq!(check(&t, &set, RS256), Err(JoseError::NoUsableKey));
        let t = token(&claims(), rsa_a(), JwsAlg::PS256, json!({}));
        assert_eq!(check(&t, &set, &[JwsAlg::PS256]), Ok(JwsAlg::PS256));
    }

    /// R-IDT-3: a kid naming a key of the wrong type is not used (the header cannot pick the
    /// key type, R-IDT-6).
    #[test]
    fn r_idt_3_kid_of_wrong_kty_rejected() {
        let t = token(&claims(), rsa_a(), JwsAlg::RS256, json!({"kid": "ec-256"}));
        assert_eq!(check(&t, &all_keys(), RS256), Err(JoseError::NoUsableKey));
    }

    /// R-IDT-3: keys with `use: enc` are never used for signatures.
    #[test]
    fn r_idt_3_use_enc_key_not_used() {
        let set = jwks(&[rsa_a().jwk_with(json!({"use": "enc"}))]);
        let t = token(&claims(), rsa_a(), JwsAlg::RS256, json!({}));
        assert_eq!(check(&t, &set, RS256), Err(JoseError::UnknownKid));
        let t = token(&claims(), rsa_a(), JwsAlg::RS256, json!({"kid": null}));
        assert_eq!(check(&t, &set, RS256), Err(JoseError::NoUsableKey));
    }

    /// R-IDT-4: a JWKS key carrying private members is not used.
    #[test]
    fn r_idt_4_private_member_key_not_used() {
        let set = jwks(&[rsa_a().jwk_with(json!({"d": b64(b"private")}))]);
        let t = token(&claims(), rsa_a(), JwsAlg::RS256, json!({}));
        assert_eq!(check(&t, &set, RS256), Err(JoseError::UnknownKid));
    }

    /// R-IDT-4: garbage entries do not stop the good keys from verifying.
    #[test]
    fn r_idt_4_garbage_jwks_still_verifies() {
        let set = jwks(&[
            json!({"kty": "RSA"}),
            json!(17),
            json!({"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA", "kid": "rsa-a"}),
            rsa_a().jwk(),
        ]);
        let t = token(&claims(), rsa_a(), JwsAlg::RS256, json!({}));
        assert_eq!(check(&t, &set, RS256), Ok(JwsAlg::RS256));
    }

    /// R-IDT-3: kid longer than 256 characters or not a string is refused.
    #[test]
    fn r_idt_3_kid_invalid() {
        for kid in [json!("k".repeat(257)), json!(5), json!(["rsa-a"])] {
            let t = token(&claims(), rsa_a(), JwsAlg::RS256, json!({ "kid": kid }));
            assert_eq!(check(&t, &all_keys(), RS256), Err(JoseError::Kid));
        }
    }

    /// R-IDT-2: any `crit` is refused.
    #[test]
    fn r_idt_2_crit_rejected() {
        for crit in [json!(["exp"]), json!([]), json!("b64"), json!(["b64"])] {
            let t = token(&claims(), rsa_a(), JwsAlg::RS256, json!({ "crit": crit }));
            assert_eq!(check(&t, &all_keys(), RS256), Err(JoseError::Crit));
        }
    }

    /// R-IDT-2: `b64: false` (and any non-`true` b64) is refused.
    #[test]
    fn r_idt_2_b64_false_rejected() {
        for b in [json!(false), json!("false"), json!(0)] {
            let t = token(&claims(), rsa_a(), JwsAlg::RS256, json!({ "b64": b }));
            assert_eq!(check(&t, &all_keys(), RS256), Err(JoseError::B64));
        }
        let t = token(&claims(), rsa_a(), JwsAlg::RS256, json!({"b64": true}));
        assert_eq!(check(&t, &all_keys(), RS256), Ok(JwsAlg::RS256));
    }

    /// R-IDT-2 (CVE-2018-0114): an attacker key embedded as `jwk` with the real kid is never
    /// used.
    #[test]
    fn r_idt_2_embedded_jwk_not_used() {
        let attacker = rsa_attacker();
        assert_eq!(attacker.kid, "rsa-a");
        let t = token(
            &claims(),
            attacker,
            JwsAlg::RS256,
            json!({ "jwk": attacker.jwk() }),
        );
        assert_eq!(check(&t, &all_keys(), RS256), Err(JoseError::BadSignature));
        let t = token(
            &claims(),
            attacker,
            JwsAlg::RS256,
            json!({"kid": null, "jwk": attacker.jwk()}),
        );
        assert_eq!(check(&t, &all_keys(), RS256), Err(JoseError::BadSignature));
    }

    /// R-IDT-2: `jku`, `x5u`, `x5c`, `jwk` are ignored, not errors, on a genuine token.
    #[test]
    fn r_idt_2_key_url_headers_ignored() {
        let extra = json!({
            "jku": "https://evil.example/jwks", "x5u": "https://evil.example/c",
            "x5c": ["AAAA"], "jwk": rsa_attacker().jwk(),
        });
        let t = token(&claims(), rsa_a(), JwsAlg::RS256, extra);
        assert_eq!(check(&t, &all_keys(), RS256), Ok(JwsAlg::RS256));
    }

    /// R-IDT-2 (RFC 8725 §3.11): other JWT kinds' `typ` values are refused.
    #[test]
    fn r_idt_2_typ_cross_jwt_rejected() {
        for typ in [
            json!("logout+jwt"),
            json!("dpop+jwt"),
            json!("at+jwt"),
            json!("session+jwt"),
            json!("application/at+jwt"),
            json!("LOGOUT+JWT"),
            json!("JOSE"),
            json!(""),
            json!(1),
            json!(["JWT"]),
        ] {
            let t = token(&claims(), rsa_a(), JwsAlg::RS256, json!({ "typ": typ }));
            assert_eq!(check(&t, &all_keys(), RS256), Err(JoseError::Typ), "{typ}");
        }
    }

    /// R-IDT-2: `typ` JWT (any case, with or without `application/`) and absent are accepted.
    #[test]
    fn r_idt_2_typ_jwt_or_absent_accepted() {
        for typ in [
            json!("JWT"),
            json!("jwt"),
            json!("application/jwt"),
            json!(null),
        ] {
            let t = token(&claims(), rsa_a(), JwsAlg::RS256, json!({ "typ": typ }));
            assert_eq!(check(&t, &all_keys(), RS256), Ok(JwsAlg::RS256), "{typ}");
        }
    }

    /// R-BCL-9: logout tokens accept absent/JWT/logout+jwt; `require_typ` needs logout+jwt.
    #[test]
    fn r_bcl_9_logout_policy_typs() {
        let set = all_keys();
        let run = |typ: Value, require: bool| {
            let t = token(&claims(), rsa_a(), JwsAlg::RS256, json!({ "typ": typ }));
            let jws = parse_compact(&t, MAX).unwrap();
            verify_jws(&jws, &set, &VerifyPolicy::logout_token(RS256, require))
        };
        for typ in ["JWT", "logout+jwt", "application/logout+jwt"] {
            assert_eq!(run(json!(typ), false), Ok(JwsAlg::RS256), "{typ}");
        }
        assert_eq!(run(json!(null), false), Ok(JwsAlg::RS256));
        for typ in ["at+jwt", "dpop+jwt", "session+jwt", "secevent+jwt"] {
            assert_eq!(run(json!(typ), false), Err(JoseError::Typ), "{typ}");
        }
        assert_eq!(run(json!("logout+jwt"), true), Ok(JwsAlg::RS256));
        assert_eq!(run(json!(null), true), Err(JoseError::Typ));
        assert_eq!(run(json!("JWT"), true), Err(JoseError::Typ));
    }

    /// R-IDT-7: a DER-encoded ECDSA signature is refused before verification.
    #[test]
    fn r_idt_7_ecdsa_der_signature_rejected() {
        let h = json!({"alg": "ES256", "kid": "ec-256"}).to_string();
        let input = signing_input(&h, &claims().to_string());
        let der = ec256().sign_der(input.as_bytes());
        assert_ne!(der.len(), 64);
        let t = format!("{input}.{}", b64(&der));
        assert_eq!(
            check(&t, &all_keys(), &[JwsAlg::ES256]),
            Err(JoseError::EcdsaSignatureLength)
        );
        // ES384 needs exactly 96 bytes.
        let h = json!({"alg": "ES384", "kid": "ec-384"}).to_string();
        let input = signing_input(&h, &claims().to_string());
        let t = format!("{input}.{}", b64(&[1u8; 64]));
        assert_eq!(
            check(&t, &all_keys(), &[JwsAlg::ES384]),
            Err(JoseError::EcdsaSignatureLength)
        );
    }

    /// R-IDT-7 (CVE-2022-21449): r = s = 0, and r, s ≥ n, are refused.
    #[test]
    fn r_idt_7_es256_zero_signature_rejected() {
        let h = json!({"alg": "ES256", "kid": "ec-256"}).to_string();
        let input = signing_input(&h, &claims().to_string());
        for sig in [[0u8; 64], [0xFFu8; 64]] {
            let t = format!("{input}.{}", b64(&sig));
            assert_eq!(
                check(&t, &all_keys(), &[JwsAlg::ES256]),
                Err(JoseError::BadSignature)
            );
        }
        // r = 0 with a genuine s.
        let good = ec256().sign(JwsAlg::ES256, input.as_bytes());
        let mut sig = good.clone();
        sig[..32].fill(0);
        let t = format!("{input}.{}", b64(&sig));
        assert_eq!(
            check(&t, &all_keys(), &[JwsAlg::ES256]),
            Err(JoseError::BadSignature)
        );
    }

    /// R-IDT-7: keys with the same kid are all tried (rotation overlap), still capped.
    #[test]
    fn r_idt_3_duplicate_kid_both_tried() {
        let set = jwks(&[rsa_a().jwk(), rsa_b().jwk_with(json!({"kid": "rsa-a"}))]);
        let t = token(&claims(), rsa_b(), JwsAlg::RS256, json!({"kid": "rsa-a"}));
        assert_eq!(check(&t, &set, RS256), Ok(JwsAlg::RS256));
    }

    /// Verification needs no global provider installation, and installing is idempotent.
    #[test]
    fn crypto_provider_install_is_idempotent() {
        crate::jose::install_crypto_provider();
        crate::jose::install_crypto_provider();
        let t = token(&claims(), rsa_a(), JwsAlg::RS256, json!({}));
        assert_eq!(check(&t, &all_keys(), RS256), Ok(JwsAlg::RS256));
    }
}
