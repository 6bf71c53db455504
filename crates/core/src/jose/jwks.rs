//! JWKS parsing with key hygiene (R-IDT-3, R-IDT-4).
//!
//! A JWKS is fetched from the network, so every key is judged on its own: a bad key is ignored
//! (RFC 7517 §5, conformance test `ignores-unparseable-key`) and only a document that is not a
//! JSON object with a `keys` array, or that breaks the size limits, is an error. The caller
//! keeps its last-known-good set on error (R-IDT-4); that policy lives with the cache.

use std::fmt;

use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P384_SHA384_FIXED, ED25519, ParsedPublicKey,
    RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::DecodingKey;
use serde_json::{Map, Value};

use super::json::{MAX_DEPTH, parse_strict};
use super::{JoseError, JwsAlg, KeyFamily};

/// R-IDT-4: maximum JWKS document size.
pub const JWKS_MAX_BYTES: usize = 256 * 1024;
/// R-IDT-4: maximum number of entries in `keys`.
pub const JWKS_MAX_KEYS: usize = 64;
/// R-IDT-3: maximum `kid` length (token header and JWKS).
pub const KID_MAX_LEN: usize = 256;

/// R-IDT-3: RSA moduli below this are too weak; above, aws-lc cannot verify.
const RSA_MIN_BITS: usize = 2048;
const RSA_MAX_BITS: usize = 8192;
/// R-IDT-4: members that only private (or symmetric) keys have (RFC 7518 §6.2.2, §6.3.2, §6.4).
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// A verified-to-be-well-formed set of public signing keys.
#[derive(Clone, Debug, Default)]
pub struct Jwks {
    keys: Vec<JwkKey>,
}

/// One usable public key. Only public material is held; `Debug` shows no key bytes.
#[derive(Clone)]
pub(crate) struct JwkKey {
    pub(crate) kid: Option<String>,
    pub(crate) family: KeyFamily,
    /// The key's own `alg`, if it declared one.
    pub(crate) alg: Option<JwsAlg>,
    pub(crate) key: DecodingKey,
}

impl fmt::Debug for JwkKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwkKey")
            .field("kid", &self.kid)
            .field("family", &self.family)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl JwkKey {
    /// R-IDT-3: the key type follows the (allow-listed) alg, and the key's own `alg`, if any,
    /// must be that alg. (`use`/`key_ops` were already checked at parse time.)
    pub(crate) fn usable_for(&self, alg: JwsAlg) -> bool {
        self.family == alg.key_family() && self.alg.is_none_or(|a| a == alg)
    }
}

impl Jwks {
    /// Parse a JWKS document (R-IDT-4). Errors only for a document over 256 KiB, with more than
    /// 64 keys, that is not strict JSON, or that is not an object with a `keys` array. Unusable
    /// keys are skipped; keys carrying private members are skipped with a warning.
    pub fn parse(bytes: &[u8]) -> Result<Jwks, JoseError> {
        if bytes.len() > JWKS_MAX_BYTES {
            return Err(JoseError::JwksTooLarge);
        }
        let doc = match parse_strict(bytes, MAX_DEPTH) {
            Ok(Value::Object(doc)) => doc,
            Ok(_) => return Err(JoseError::JwksShape),
            Err(e) => return Err(JoseError::JwksJson(e)),
        };
        let entries = doc
            .get("keys")
            .and_then(Value::as_array)
            .ok_or(JoseError::JwksShape)?;
        if entries.len() > JWKS_MAX_KEYS {
            return Err(JoseError::JwksTooManyKeys);
        }
        let keys = entries.iter().filter_map(parse_entry).collect();
        Ok(Jwks { keys })
    }

    /// Number of usable keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when no key survived the hygiene checks.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether a usable key has this `kid` (drives the unknown-kid refetch, R-IDT-3).
    pub fn contains_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }

    /// Whether at least one key could verify a token signed with `alg`.
    pub fn supports_alg(&self, alg: JwsAlg) -> bool {
        self.keys.iter().any(|k| k.usable_for(alg))
    }

    /// The kids of the usable keys (for logs and diagnostics; kids are public).
    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().filter_map(|k| k.kid.as_deref())
    }

    pub(crate) fn keys(&self) -> &[JwkKey] {
        &self.keys
    }
}

/// Parse one `keys` entry, logging (at debug) why it was skipped.
fn parse_entry(entry: &Value) -> Option<JwkKey> {
    match parse_key(entry) {
        Ok(k) => Some(k),
        Err(reason) => {
            tracing::debug!(reason, "ignoring JWKS key");
            None
        }
    }
}

/// Why a key was skipped (a static string: no key material in logs).
type Skip = &'static str;

fn parse_key(entry: &Value) -> Result<JwkKey, Skip> {
    let obj = entry.as_object().ok_or("not an object")?;
    let kid = kid_of(obj)?;
    if PRIVATE_MEMBERS.iter().any(|m| obj.contains_key(*m)) {
        // R-IDT-4: an IdP publishing private key material is misconfigured; say so loudly.
        tracing::warn!(
            kid = kid.as_deref().unwrap_or(""),
            "JWKS key with private members ignored"
        );
        return Err("private members");
    }
    check_use(obj)?;
    let kty = obj
        .get("kty")
        .and_then(Value::as_str)
        .ok_or("kty missing")?;
    let (family, key) = match kty {
        "RSA" => rsa_key(obj)?,
        "EC" => ec_key(obj)?,
        "OKP" => okp_key(obj)?,
        _ => return Err("unsupported kty"),
    };
    let alg = key_alg(obj, family)?;
    Ok(JwkKey {
        kid,
        family,
        alg,
        key,
    })
}

/// `kid`, if present, must be a string of at most 256 characters (R-IDT-3).
fn kid_of(obj: &Map<String, Value>) -> Result<Option<String>, Skip> {
    match obj.get("kid") {
        None => Ok(None),
        Some(Value::String(s)) if s.chars().count() <= KID_MAX_LEN => Ok(Some(s.clone())),
        Some(_) => Err("bad kid"),
    }
}

/// R-IDT-3: `use` absent or `sig`; `key_ops`, if present, must allow `verify`.
fn check_use(obj: &Map<String, Value>) -> Result<(), Skip> {
    match obj.get("use") {
        None => {}
        Some(Value::String(u)) if u == "sig" => {}
        Some(_) => return Err("use is not sig"),
    }
    match obj.get("key_ops") {
        None => Ok(()),
        Some(Value::Array(ops)) if ops.iter().any(|o| o.as_str() == Some("verify")) => Ok(()),
        Some(_) => Err("key_ops without verify"),
    }
}

/// The key's own `alg`: absent, or a supported alg of the key's family (R-IDT-3).
fn key_alg(obj: &Map<String, Value>, family: KeyFamily) -> Result<Option<JwsAlg>, Skip> {
    let Some(v) = obj.get("alg") else {
        return Ok(None);
    };
    let alg = v
        .as_str()
        .and_then(JwsAlg::parse)
        .ok_or("unsupported key alg")?;
    if alg.key_family() != family {
        return Err("key alg does not match kty");
    }
    Ok(Some(alg))
}

/// A base64url member decoded strictly.
fn b64_member(obj: &Map<String, Value>, name: &str) -> Result<Vec<u8>, Skip> {
    let s = obj
        .get(name)
        .and_then(Value::as_str)
        .ok_or("member missing")?;
    URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| "member not base64url")
}

/// RSA: modulus 2048..=8192 bits (R-IDT-3), odd exponent 3..2^32, and aws-lc accepts it.
fn rsa_key(obj: &Map<String, Value>) -> Result<(KeyFamily, DecodingKey), Skip> {
    let n_raw = b64_member(obj, "n")?;
    let e_raw = b64_member(obj, "e")?;
    // Tolerate leading zero octets (some IdPs emit them) but measure the real size.
    let n = strip_leading_zeros(&n_raw);
    let e = strip_leading_zeros(&e_raw);
    let bits = bit_len(n);
    if !(RSA_MIN_BITS..=RSA_MAX_BITS).contains(&bits) {
        return Err("RSA modulus size out of range");
    }
    if e.is_empty() || e.len() > 4 || e.last().is_none_or(|b| b & 1 == 0) || e == [1] {
        return Err("RSA exponent out of range");
    }
    RsaPublicKeyComponents { n, e }
        .to_parsed_public_key(&RSA_PKCS1_2048_8192_SHA256)
        .map_err(|_| "RSA key rejected")?;
    Ok((KeyFamily::Rsa, DecodingKey::from_rsa_raw_components(n, e)))
}

/// EC: P-256 or P-384, full-length coordinates (RFC 7518 §6.2.1.2), point on the curve.
fn ec_key(obj: &Map<String, Value>) -> Result<(KeyFamily, DecodingKey), Skip> {
    let (family, len, alg) = match obj.get("crv").and_then(Value::as_str) {
        Some("P-256") => (KeyFamily::EcP256, 32, &ECDSA_P256_SHA256_FIXED),
        Some("P-384") => (KeyFamily::EcP384, 48, &ECDSA_P384_SHA384_FIXED),
        _ => return Err("unsupported crv"),
    };
    let x = b64_member(obj, "x")?;
    let y = b64_member(obj, "y")?;
    if x.len() != len || y.len() != len {
        return Err("EC coordinate length");
    }
    let mut point = Vec::with_capacity(1 + 2 * len);
    point.push(0x04);
    point.extend_from_slice(&x);
    point.extend_from_slice(&y);
    ParsedPublicKey::new(alg, &point).map_err(|_| "EC point rejected")?;
    // jsonwebtoken's EC verifier takes the uncompressed SEC1 point.
    Ok((family, DecodingKey::from_ec_der(&point)))
}

/// OKP: Ed25519 only (RFC 8037), 32-byte public key.
fn okp_key(obj: &Map<String, Value>) -> Result<(KeyFamily, DecodingKey), Skip> {
    if obj.get("crv").and_then(Value::as_str) != Some("Ed25519") {
        return Err("unsupported crv");
    }
    let x = b64_member(obj, "x")?;
    if x.len() != 32 {
        return Err("Ed25519 key length");
    }
    ParsedPublicKey::new(&ED25519, &x).map_err(|_| "Ed25519 key rejected")?;
    Ok((KeyFamily::Ed25519, DecodingKey::from_ed_der(&x)))
}

fn strip_leading_zeros(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    b.get(start..).unwrap_or_default()
}

/// Bit length of a big-endian integer without leading zero octets.
fn bit_len(b: &[u8]) -> usize {
    match b.first() {
        None => 0,
        Some(&top) => (b.len() - 1) * 8 + (8 - top.leading_zeros() as usize),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::jose::JsonError;
    use crate::jose::test_support::{b64, ec256, ec384, ed25519, jwks, rsa_a};
    use serde_json::json;

    /// R-IDT-4: RSA, EC P-256/P-384 and Ed25519 public keys are accepted.
    #[test]
    fn r_idt_4_parses_good_keys() {
        let set = jwks(&[rsa_a().jwk(), ec256().jwk(), ec384().jwk(), ed25519().jwk()]);
        assert_eq!(set.len(), 4);
        assert!(!set.is_empty());
        assert!(set.contains_kid("rsa-a") && set.contains_kid("ed-1"));
        assert!(!set.contains_kid("nope"));
        for a in JwsAlg::ALL {
            assert!(set.supports_alg(a), "{a}");
        }
        // Debug shows no key material.
        let dbg = format!("{set:?}");
        let n = rsa_a().jwk()["n"].as_str().unwrap().to_owned();
        assert!(!dbg.contains(&n[..20]));
    }

    /// R-IDT-4: keys with private members are ignored.
    #[test]
    fn r_idt_4_private_members_ignored() {
        for m in ["d", "p", "q", "dp", "dq", "qi", "k"] {
            let k = rsa_a().jwk_with(json!({ m: b64(b"secret") }));
            assert!(jwks(&[k]).is_empty(), "{m}");
        }
        let oct = json!({"kty": "oct", "k": b64(b"0123456789abcdef0123456789abcdef")});
        assert!(jwks(&[oct]).is_empty());
    }

    /// R-IDT-3: RSA moduli under 2048 bits are ignored.
    #[test]
    fn r_idt_3_rsa_1024_ignored() {
        let mut n = vec![0xC5u8; 128];
        n[127] |= 1;
        let k = json!({"kty": "RSA", "kid": "small", "n": b64(&n), "e": "AQAB"});
        assert!(jwks(&[k]).is_empty());
        // A 2047-bit modulus is still too small.
        let mut n = vec![0x7Fu8; 256];
        n[255] |= 1;
        let k = json!({"kty": "RSA", "n": b64(&n), "e": "AQAB"});
        assert!(jwks(&[k]).is_empty());
    }

    /// R-IDT-3: keys marked for encryption are ignored.
    #[test]
    fn r_idt_3_use_enc_ignored() {
        assert!(jwks(&[rsa_a().jwk_with(json!({"use": "enc"}))]).is_empty());
        assert!(jwks(&[rsa_a().jwk_with(json!({"use": 1}))]).is_empty());
        assert!(jwks(&[rsa_a().jwk_with(json!({"key_ops": ["encrypt"]}))]).is_empty());
        assert_eq!(jwks(&[rsa_a().jwk_with(json!({"use": "sig"}))]).len(), 1);
        assert_eq!(
            jwks(&[rsa_a().jwk_with(json!({"key_ops": ["verify"]}))]).len(),
            1
        );
    }

    /// R-IDT-3: a key's `alg` must be a supported alg of its own family.
    #[test]
    fn r_idt_3_key_alg_checked() {
        assert!(jwks(&[rsa_a().jwk_with(json!({"alg": "RSA-OAEP"}))]).is_empty());
        assert!(jwks(&[rsa_a().jwk_with(json!({"alg": "ES256"}))]).is_empty());
        assert!(jwks(&[rsa_a().jwk_with(json!({"alg": "HS256"}))]).is_empty());
        let set = jwks(&[rsa_a().jwk_with(json!({"alg": "PS256"}))]);
        assert!(set.supports_alg(JwsAlg::PS256));
        assert!(!set.supports_alg(JwsAlg::RS256));
    }

    /// R-IDT-4: garbage entries are skipped, good keys survive (`ignores-unparseable-key`).
    #[test]
    fn r_idt_4_garbage_keys_skipped_good_keys_kept() {
        let ec = ec256().jwk();
        let set = jwks(&[
            json!(42),
            json!("key"),
            json!(null),
            json!({}),
            json!({"kty": "RSA"}),
            json!({"kty": "RSA", "n": "!!", "e": "AQAB"}),
            json!({"kty": "RSA", "n": rsa_a().jwk()["n"], "e": "AAA"}),
            json!({"kty": "RSA", "n": rsa_a().jwk()["n"], "e": "AQAB=" }),
            json!({"kty": "EC", "crv": "P-256", "x": ec["x"], "y": ec["x"]}),
            json!({"kty": "EC", "crv": "P-521", "x": ec["x"], "y": ec["y"]}),
            json!({"kty": "EC", "crv": "P-256", "x": ec["x"]}),
            json!({"kty": "OKP", "crv": "Ed448", "x": b64(&[1; 57])}),
            json!({"kty": "OKP", "crv": "Ed25519", "x": b64(&[1; 31])}),
            json!({"kty": "XYZ", "kid": "x"}),
            json!({"kty": 5}),
            rsa_a().jwk_with(json!({"kid": 7})),
            rsa_a().jwk_with(json!({"kid": "k".repeat(257)})),
            rsa_a().jwk(),
            ec,
        ]);
        assert_eq!(set.len(), 2);
        assert!(set.contains_kid("rsa-a") && set.contains_kid("ec-256"));
    }

    /// R-IDT-4: more than 64 keys is an error (the caller keeps last-known-good).
    #[test]
    fn r_idt_4_too_many_keys() {
        let keys: Vec<_> = (0..65).map(|_| json!({"kty": "XYZ"})).collect();
        let doc = json!({ "keys": keys }).to_string();
        assert_eq!(
            Jwks::parse(doc.as_bytes()).unwrap_err(),
            JoseError::JwksTooManyKeys
        );
        let keys: Vec<_> = (0..64).map(|_| rsa_a().jwk()).collect();
        assert_eq!(jwks(&keys).len(), 64);
    }

    /// R-IDT-4: documents over 256 KiB are refused.
    #[test]
    fn r_idt_4_too_large() {
        let pad = "x".repeat(JWKS_MAX_BYTES);
        let doc = json!({ "keys": [rsa_a().jwk()], "pad": pad }).to_string();
        assert_eq!(
            Jwks::parse(doc.as_bytes()).unwrap_err(),
            JoseError::JwksTooLarge
        );
    }

    /// R-IDT-4: only a non-object / missing `keys` / non-JSON document is an error.
    #[test]
    fn r_idt_4_document_shape() {
        assert_eq!(Jwks::parse(b"[]").unwrap_err(), JoseError::JwksShape);
        assert_eq!(Jwks::parse(b"{}").unwrap_err(), JoseError::JwksShape);
        assert_eq!(
            Jwks::parse(br#"{"keys":{}}"#).unwrap_err(),
            JoseError::JwksShape
        );
        assert!(matches!(
            Jwks::parse(b"<html>").unwrap_err(),
            JoseError::JwksJson(_)
        ));
        assert_eq!(
            Jwks::parse(br#"{"keys":[],"keys":[]}"#).unwrap_err(),
            JoseError::JwksJson(JsonError::DuplicateMember)
        );
        assert!(Jwks::parse(br#"{"keys":[]}"#).unwrap().is_empty());
    }

    proptest::proptest! {
        /// R-IDT-4 / R-RS: JWKS parsing never panics on arbitrary bytes.
        #[test]
        fn r_idt_4_jwks_parse_never_panics(b in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048)) {
            let _ = Jwks::parse(&b);
        }

        /// Same, with JSON-shaped key entries of arbitrary member values.
        #[test]
        fn r_idt_4_jwks_parse_never_panics_shaped(
            kty in "(RSA|EC|OKP|oct|[a-z]{0,3})",
            crv in "(P-256|P-384|Ed25519|[A-Z0-9-]{0,6})",
            n in "[A-Za-z0-9_-]{0,400}",
            e in "[A-Za-z0-9_-]{0,8}",
        ) {
            let doc = json!({"keys": [{"kty": kty, "crv": crv, "n": n, "e": e, "x": n, "y": e}]});
            let _ = Jwks::parse(doc.to_string().as_bytes());
        }
    }
}
