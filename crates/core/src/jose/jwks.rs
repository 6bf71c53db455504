//! JWK and JWKS parsing with key hygiene (R-IDT-3, R-IDT-4, R-DP proof check 4).
//!
//! A JWKS is fetched from the network, so every key is judged on its own: a bad key is ignored
//! (RFC 7517 §5, conformance test `ignores-unparseable-key`) and only a document that is not a
//! JSON object with a `keys` array, or that breaks the size limits, is an error. The caller
//! keeps its last-known-good set on error (R-IDT-4); that policy lives with the cache.
//!
//! [`Jwk::parse`] judges one key. The JWKS parser skips keys it refuses; the DPoP verifier
//! (the header's own `jwk`, RFC 9449 §4.3) refuses the proof instead. Both apply the same rules.

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
/// R-IDT-4, RFC 9449 §4.3: members that only private (or symmetric) keys have (RFC 7518
/// §6.2.2, §6.3.2, §6.4).
pub const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// A verified-to-be-well-formed set of public signing keys.
#[derive(Clone, Debug, Default)]
pub struct Jwks {
    keys: Vec<Jwk>,
}

/// Why one JWK was refused. Messages name the rule, never key material.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JwkError {
    #[error("JWK is not a JSON object")]
    NotObject,
    /// R-IDT-3: `kid` not a string of at most 256 characters.
    #[error("JWK kid is not a string of at most 256 characters")]
    Kid,
    /// R-IDT-4, RFC 9449 §4.3: private or symmetric key material.
    #[error("JWK carries private key members")]
    PrivateMembers,
    /// R-IDT-3: `use` other than `sig`.
    #[error("JWK use is not sig")]
    Use,
    /// R-IDT-3: `key_ops` present without `verify`.
    #[error("JWK key_ops does not allow verify")]
    KeyOps,
    /// A required member is absent or not a string.
    #[error("JWK member {0} is missing or not a string")]
    Missing(&'static str),
    /// A key member is not strict unpadded base64url.
    #[error("JWK member {0} is not unpadded base64url")]
    Base64(&'static str),
    /// `kty` other than RSA, EC, OKP.
    #[error("JWK kty not supported")]
    Kty,
    /// `crv` other than P-256/P-384 (EC) or Ed25519 (OKP).
    #[error("JWK crv not supported")]
    Crv,
    /// R-IDT-3: RSA modulus outside 2048..=8192 bits.
    #[error("RSA modulus is not 2048 to 8192 bits")]
    RsaModulusSize,
    /// RSA exponent not odd, not in 3..2^32.
    #[error("RSA exponent out of range")]
    RsaExponent,
    #[error("RSA key rejected")]
    RsaKey,
    /// RFC 7518 §6.2.1.2: coordinates must have the full curve length.
    #[error("EC coordinate has the wrong length")]
    EcCoordinateLength,
    /// The point is not on the curve.
    #[error("EC point rejected")]
    EcPoint,
    /// RFC 8037: an Ed25519 public key is 32 bytes.
    #[error("Ed25519 key has the wrong length")]
    Ed25519Length,
    #[error("Ed25519 key rejected")]
    Ed25519Key,
    /// R-IDT-3: the key's `alg` is not a supported JWS algorithm.
    #[error("JWK alg not supported")]
    Alg,
    /// R-IDT-3: the key's `alg` belongs to another key type.
    #[error("JWK alg does not match its kty")]
    AlgMismatch,
}

/// One usable public signing key. Only public material is held; `Debug` shows no key bytes.
#[derive(Clone)]
pub struct Jwk {
    kid: Option<String>,
    family: KeyFamily,
    /// The key's own `alg`, if it declared one.
    alg: Option<JwsAlg>,
    key: DecodingKey,
    params: PublicParams,
    /// EC keys, already parsed by aws-lc when the point was checked: verifying with it skips a
    /// second parse on every DPoP proof (the same SEC1 point and fixed-size signature form
    /// jsonwebtoken's ES verifier would use).
    ec: Option<ParsedPublicKey>,
}

/// The RFC 7638 required members, decoded (input of the thumbprint).
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum PublicParams {
    /// `n` and `e` without leading zero octets.
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    Ec {
        crv: &'static str,
        x: Vec<u8>,
        y: Vec<u8>,
    },
    Okp {
        crv: &'static str,
        x: Vec<u8>,
    },
}

impl fmt::Debug for Jwk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Jwk")
            .field("kid", &self.kid)
            .field("family", &self.family)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl Jwk {
    /// Judge one JWK (R-IDT-3/4): a JSON object; `kid`, if any, a string of ≤ 256 characters;
    /// no private members; `use` absent or `sig`; `key_ops`, if any, with `verify`; RSA of
    /// 2048–8192 bits, EC P-256/P-384 on the curve with full-length coordinates, or Ed25519;
    /// `alg`, if any, a supported alg of the key's own type.
    pub fn parse(v: &Value) -> Result<Jwk, JwkError> {
        Jwk::from_map(v.as_object().ok_or(JwkError::NotObject)?)
    }

    /// [`Jwk::parse`] for a value already known to be an object.
    pub fn from_map(obj: &Map<String, Value>) -> Result<Jwk, JwkError> {
        let kid = kid_of(obj)?;
        if PRIVATE_MEMBERS.iter().any(|m| obj.contains_key(*m)) {
            return Err(JwkError::PrivateMembers);
        }
        check_use(obj)?;
        let kty = obj
            .get("kty")
            .and_then(Value::as_str)
            .ok_or(JwkError::Missing("kty"))?;
        let (family, key, params, ec) = match kty {
            "RSA" => rsa_key(obj)?,
            "EC" => ec_key(obj)?,
            "OKP" => okp_key(obj)?,
            _ => return Err(JwkError::Kty),
        };
        let alg = key_alg(obj, family)?;
        Ok(Jwk {
            kid,
            family,
            alg,
            key,
            params,
            ec,
        })
    }

    /// The key's `kid`, if it has one.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The key type (and curve).
    pub fn family(&self) -> KeyFamily {
        self.family
    }

    /// The key's own `alg`, if it declared one.
    pub fn alg(&self) -> Option<JwsAlg> {
        self.alg
    }

    /// R-IDT-3: the key type follows the (allow-listed) alg, and the key's own `alg`, if any,
    /// must be that alg. (`use`/`key_ops` were already checked at parse time.)
    pub fn usable_for(&self, alg: JwsAlg) -> bool {
        self.family == alg.key_family() && self.alg.is_none_or(|a| a == alg)
    }

    /// The RFC 7638 SHA-256 thumbprint (base64url); see [`super::jwk_thumbprint_sha256`].
    pub fn thumbprint_sha256(&self) -> String {
        super::thumbprint::jwk_thumbprint_sha256(self)
    }

    pub(crate) fn key(&self) -> &DecodingKey {
        &self.key
    }

    pub(crate) fn params(&self) -> &PublicParams {
        &self.params
    }

    pub(crate) fn ec_parsed(&self) -> Option<&ParsedPublicKey> {
        self.ec.as_ref()
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

    /// The usable keys.
    pub fn keys(&self) -> &[Jwk] {
        &self.keys
    }
}

/// Parse one `keys` entry, logging why it was skipped.
fn parse_entry(entry: &Value) -> Option<Jwk> {
    match Jwk::parse(entry) {
        Ok(k) => Some(k),
        Err(JwkError::PrivateMembers) => {
            // R-IDT-4: an IdP publishing private key material is misconfigured; say so loudly.
            let kid = entry.get("kid").and_then(Value::as_str).unwrap_or("");
            tracing::warn!(kid, "JWKS key with private members ignored");
            None
        }
        Err(reason) => {
            tracing::debug!(%reason, "ignoring JWKS key");
            None
        }
    }
}

/// `kid`, if present, must be a string of at most 256 characters (R-IDT-3).
fn kid_of(obj: &Map<String, Value>) -> Result<Option<String>, JwkError> {
    match obj.get("kid") {
        None => Ok(None),
        Some(Value::String(s)) if s.chars().count() <= KID_MAX_LEN => Ok(Some(s.clone())),
        Some(_) => Err(JwkError::Kid),
    }
}

/// R-IDT-3: `use` absent or `sig`; `key_ops`, if present, must allow `verify`.
fn check_use(obj: &Map<String, Value>) -> Result<(), JwkError> {
    match obj.get("use") {
        None => {}
        Some(Value::String(u)) if u == "sig" => {}
        Some(_) => return Err(JwkError::Use),
    }
    match obj.get("key_ops") {
        None => Ok(()),
        Some(Value::Array(ops)) if ops.iter().any(|o| o.as_str() == Some("verify")) => Ok(()),
        Some(_) => Err(JwkError::KeyOps),
    }
}

/// The key's own `alg`: absent, or a supported alg of the key's family (R-IDT-3).
fn key_alg(obj: &Map<String, Value>, family: KeyFamily) -> Result<Option<JwsAlg>, JwkError> {
    let Some(v) = obj.get("alg") else {
        return Ok(None);
    };
    let alg = v.as_str().and_then(JwsAlg::parse).ok_or(JwkError::Alg)?;
    if alg.key_family() != family {
        return Err(JwkError::AlgMismatch);
    }
    Ok(Some(alg))
}

/// A base64url member decoded strictly.
fn b64_member(obj: &Map<String, Value>, name: &'static str) -> Result<Vec<u8>, JwkError> {
    let s = obj
        .get(name)
        .and_then(Value::as_str)
        .ok_or(JwkError::Missing(name))?;
    URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| JwkError::Base64(name))
}

type Parsed = (
    KeyFamily,
    DecodingKey,
    PublicParams,
    Option<ParsedPublicKey>,
);

/// RSA: modulus 2048..=8192 bits (R-IDT-3), odd exponent 3..2^32, and aws-lc accepts it.
fn rsa_key(obj: &Map<String, Value>) -> Result<Parsed, JwkError> {
    let n_raw = b64_member(obj, "n")?;
    let e_raw = b64_member(obj, "e")?;
    // Tolerate leading zero octets (some IdPs emit them) but measure the real size.
    let n = strip_leading_zeros(&n_raw);
    let e = strip_leading_zeros(&e_raw);
    let bits = bit_len(n);
    if !(RSA_MIN_BITS..=RSA_MAX_BITS).contains(&bits) {
        return Err(JwkError::RsaModulusSize);
    }
    if e.is_empty() || e.len() > 4 || e.last().is_none_or(|b| b & 1 == 0) || e == [1] {
        return Err(JwkError::RsaExponent);
    }
    RsaPublicKeyComponents { n, e }
        .to_parsed_public_key(&RSA_PKCS1_2048_8192_SHA256)
        .map_err(|_| JwkError::RsaKey)?;
    let params = PublicParams::Rsa {
        n: n.to_vec(),
        e: e.to_vec(),
    };
    Ok((
        KeyFamily::Rsa,
        DecodingKey::from_rsa_raw_components(n, e),
        params,
        None,
    ))
}

/// EC: P-256 or P-384, full-length coordinates (RFC 7518 §6.2.1.2), point on the curve.
fn ec_key(obj: &Map<String, Value>) -> Result<Parsed, JwkError> {
    let (family, crv, len, alg) = match obj.get("crv").and_then(Value::as_str) {
        Some("P-256") => (KeyFamily::EcP256, "P-256", 32, &ECDSA_P256_SHA256_FIXED),
        Some("P-384") => (KeyFamily::EcP384, "P-384", 48, &ECDSA_P384_SHA384_FIXED),
        _ => return Err(JwkError::Crv),
    };
    let x = b64_member(obj, "x")?;
    let y = b64_member(obj, "y")?;
    if x.len() != len || y.len() != len {
        return Err(JwkError::EcCoordinateLength);
    }
    let mut point = Vec::with_capacity(1 + 2 * len);
    point.push(0x04);
    point.extend_from_slice(&x);
    point.extend_from_slice(&y);
    let parsed = ParsedPublicKey::new(alg, &point).map_err(|_| JwkError::EcPoint)?;
    // jsonwebtoken's EC verifier takes the uncompressed SEC1 point.
    let key = DecodingKey::from_ec_der(&point);
    Ok((family, key, PublicParams::Ec { crv, x, y }, Some(parsed)))
}

/// OKP: Ed25519 only (RFC 8037), 32-byte public key.
fn okp_key(obj: &Map<String, Value>) -> Result<Parsed, JwkError> {
    if obj.get("crv").and_then(Value::as_str) != Some("Ed25519") {
        return Err(JwkError::Crv);
    }
    let x = b64_member(obj, "x")?;
    if x.len() != 32 {
        return Err(JwkError::Ed25519Length);
    }
    ParsedPublicKey::new(&ED25519, &x).map_err(|_| JwkError::Ed25519Key)?;
    let key = DecodingKey::from_ed_der(&x);
    Ok((
        KeyFamily::Ed25519,
        key,
        PublicParams::Okp { crv: "Ed25519", x },
        None,
    ))
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

    /// R-IDT-3/4: `Jwk::parse` names the exact rule each refused key breaks.
    #[test]
    fn r_idt_4_jwk_parse_exact_errors() {
        let ec = ec256().jwk();
        let n = rsa_a().jwk()["n"].clone();
        let cases = [
            (json!(42), JwkError::NotObject),
            (rsa_a().jwk_with(json!({"kid": 7})), JwkError::Kid),
            (
                rsa_a().jwk_with(json!({"kid": "k".repeat(257)})),
                JwkError::Kid,
            ),
            (
                rsa_a().jwk_with(json!({"d": "AA"})),
                JwkError::PrivateMembers,
            ),
            (
                json!({"kty": "oct", "k": b64(b"0123456789abcdef")}),
                JwkError::PrivateMembers,
            ),
            (rsa_a().jwk_with(json!({"use": "enc"})), JwkError::Use),
            (
                rsa_a().jwk_with(json!({"key_ops": ["encrypt"]})),
                JwkError::KeyOps,
            ),
            (json!({}), JwkError::Missing("kty")),
            (json!({"kty": 5}), JwkError::Missing("kty")),
            (json!({"kty": "XYZ"}), JwkError::Kty),
            (json!({"kty": "RSA"}), JwkError::Missing("n")),
            (
                json!({"kty": "RSA", "n": "!!", "e": "AQAB"}),
                JwkError::Base64("n"),
            ),
            (
                json!({"kty": "RSA", "n": n, "e": "AQAB="}),
                JwkError::Base64("e"),
            ),
            (
                json!({"kty": "RSA", "n": b64(&[0xC5; 128]), "e": "AQAB"}),
                JwkError::RsaModulusSize,
            ),
            (
                json!({"kty": "RSA", "n": n, "e": "AAA"}),
                JwkError::RsaExponent,
            ),
            (
                json!({"kty": "RSA", "n": n, "e": "AQ"}),
                JwkError::RsaExponent,
            ),
            (
                json!({"kty": "EC", "crv": "P-521", "x": ec["x"], "y": ec["y"]}),
                JwkError::Crv,
            ),
            (
                json!({"kty": "EC", "crv": "P-256", "x": ec["x"]}),
                JwkError::Missing("y"),
            ),
            (
                json!({"kty": "EC", "crv": "P-384", "x": ec["x"], "y": ec["y"]}),
                JwkError::EcCoordinateLength,
            ),
            (
                json!({"kty": "EC", "crv": "P-256", "x": ec["x"], "y": ec["x"]}),
                JwkError::EcPoint,
            ),
            (
                json!({"kty": "OKP", "crv": "Ed448", "x": b64(&[1; 57])}),
                JwkError::Crv,
            ),
            (
                json!({"kty": "OKP", "crv": "Ed25519", "x": b64(&[1; 31])}),
                JwkError::Ed25519Length,
            ),
            (rsa_a().jwk_with(json!({"alg": "HS256"})), JwkError::Alg),
            (rsa_a().jwk_with(json!({"alg": 1})), JwkError::Alg),
            (
                rsa_a().jwk_with(json!({"alg": "ES256"})),
                JwkError::AlgMismatch,
            ),
        ];
        for (v, want) in cases {
            assert_eq!(Jwk::parse(&v).unwrap_err(), want, "{v}");
        }
        let k = Jwk::parse(&rsa_a().jwk_with(json!({"alg": "PS256"}))).unwrap();
        assert_eq!(k.kid(), Some("rsa-a"));
        assert_eq!(k.family(), KeyFamily::Rsa);
        assert_eq!(k.alg(), Some(JwsAlg::PS256));
        assert!(k.usable_for(JwsAlg::PS256) && !k.usable_for(JwsAlg::RS256));
        let m = ed25519().jwk();
        assert!(Jwk::from_map(m.as_object().unwrap()).is_ok());
        assert!(!format!("{k:?}").contains(&rsa_a().jwk()["n"].as_str().unwrap()[..20]));
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
