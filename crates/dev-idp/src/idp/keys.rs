//! The IdP's signing key: RSA 2048 / RS256, generated at start-up with aws-lc-rs.
//!
//! aws-lc-rs exports the private key as PKCS#8, while jsonwebtoken's
//! `EncodingKey::from_rsa_der` wants the PKCS#1 `RSAPrivateKey` (it calls
//! `RsaKeyPair::from_der`), so the PKCS#1 structure is taken out of the
//! PKCS#8 envelope with a minimal DER reader.

use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::KeyPair as _;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::Serialize;

use crate::idp::DevIdpError;
use crate::idp::util::{b64url, sha256};

pub(crate) const ALG: Algorithm = Algorithm::RS256;
pub(crate) const ALG_NAME: &str = "RS256";

pub(crate) struct SigningKey {
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    jwk: serde_json::Value,
}

impl SigningKey {
    pub(crate) fn generate() -> Result<Self, DevIdpError> {
        let key_err = |what: &str| DevIdpError::KeyGeneration(what.to_owned());
        let pair = KeyPair::generate(KeySize::Rsa2048)
            .map_err(|_| key_err("RSA-2048 key generation failed"))?;
        let pkcs8 = pair.as_der().map_err(|_| key_err("PKCS#8 export failed"))?;
        let pkcs1 = pkcs1_from_pkcs8(pkcs8.as_ref())
            .ok_or_else(|| key_err("unexpected PKCS#8 structure"))?;
        KeyPair::from_der(pkcs1).map_err(|_| key_err("PKCS#1 re-import failed"))?;

        let public = pair.public_key();
        let n = b64url(public.modulus().big_endian_without_leading_zero());
        let e = b64url(public.exponent().big_endian_without_leading_zero());
        // RFC 7638 JWK thumbprint as the key id.
        let thumbprint_input = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
        let kid = b64url(&sha256(thumbprint_input.as_bytes()));
        let jwk = serde_json::json!({
            "kty": "RSA",
            "use": "sig",
            "alg": ALG_NAME,
            "kid": kid,
            "n": n,
            "e": e,
        });
        let decoding = DecodingKey::from_rsa_components(&n, &e)
            .map_err(|e| DevIdpError::KeyGeneration(format!("public key: {e}")))?;
        let key = SigningKey {
            kid,
            encoding: EncodingKey::from_rsa_der(pkcs1),
            decoding,
            jwk,
        };
        key.self_test()?;
        Ok(key)
    }

    /// Signs and verifies a throw-away token, so a broken key fails at start-up.
    fn self_test(&self) -> Result<(), DevIdpError> {
        let exp = crate::idp::util::now() + 60;
        let token = self
            .sign("JWT", &serde_json::json!({ "exp": exp, "test": true }))
            .map_err(|e| DevIdpError::KeyGeneration(format!("self-test signing: {e}")))?;
        let mut validation = Validation::new(ALG);
        validation.validate_aud = false;
        jsonwebtoken::decode::<serde_json::Value>(&token, &self.decoding, &validation)
            .map_err(|e| DevIdpError::KeyGeneration(format!("self-test verification: {e}")))?;
        Ok(())
    }

    /// Signs `claims` as a JWS with the given `typ` header and this key's `kid`.
    pub(crate) fn sign<T: Serialize>(
        &self,
        typ: &str,
        claims: &T,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let mut header = Header::new(ALG);
        header.typ = Some(typ.to_owned());
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding)
    }

    /// Verifies a token this IdP signed (signature and issuer only; expiry
    /// and audience are the caller's business).
    pub(crate) fn verify_own(
        &self,
        token: &str,
        issuer: &str,
    ) -> Result<serde_json::Map<String, serde_json::Value>, jsonwebtoken::errors::Error> {
        let mut validation = Validation::new(ALG);
        validation.validate_aud = false;
        validation.validate_exp = false;
        validation.required_spec_claims.clear();
        validation.set_issuer(&[issuer]);
        jsonwebtoken::decode(token, &self.decoding, &validation).map(|t| t.claims)
    }

    pub(crate) fn jwks(&self) -> serde_json::Value {
        serde_json::json!({ "keys": [self.jwk] })
    }
}

/// One DER TLV: returns (tag, contents, rest).
fn der_tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let (len_bytes, after) = rest.split_at(n);
        rest = after;
        len_bytes
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b))
    };
    if rest.len() < len {
        return None;
    }
    let (contents, rest) = rest.split_at(len);
    Some((tag, contents, rest))
}

/// PKCS#8 `PrivateKeyInfo ::= SEQUENCE { version INTEGER, algorithm
/// AlgorithmIdentifier (rsaEncryption), privateKey OCTET STRING }` →
/// the PKCS#1 `RSAPrivateKey` DER inside the OCTET STRING.
fn pkcs1_from_pkcs8(der: &[u8]) -> Option<&[u8]> {
    const RSA_ENCRYPTION_OID: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
    let (tag, seq, _) = der_tlv(der)?;
    if tag != 0x30 {
        return None;
    }
    let (tag, _version, rest) = der_tlv(seq)?;
    if tag != 0x02 {
        return None;
    }
    let (tag, alg_id, rest) = der_tlv(rest)?;
    if tag != 0x30 {
        return None;
    }
    let (tag, oid, _) = der_tlv(alg_id)?;
    if tag != 0x06 || oid != RSA_ENCRYPTION_OID {
        return None;
    }
    let (tag, private_key, _) = der_tlv(rest)?;
    if tag != 0x04 {
        return None;
    }
    Some(private_key)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn generated_key_signs_and_publishes_a_matching_jwk() {
        let key = SigningKey::generate().unwrap();
        let jwks = key.jwks();
        let set: jsonwebtoken::jwk::JwkSet = serde_json::from_value(jwks).unwrap();
        let jwk = set.find(&key.kid).unwrap();
        assert!(!key.jwk.as_object().unwrap().contains_key("d"));
        let token = key
            .sign(
                "JWT",
                &serde_json::json!({"exp": 4_000_000_000u64, "iss": "x"}),
            )
            .unwrap();
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.kid.as_deref(), Some(key.kid.as_str()));
        let mut v = Validation::new(ALG);
        v.validate_aud = false;
        jsonwebtoken::decode::<serde_json::Value>(&token, &DecodingKey::from_jwk(jwk).unwrap(), &v)
            .unwrap();
        assert!(key.verify_own(&token, "x").is_ok());
        assert!(key.verify_own(&token, "y").is_err());
    }

    #[test]
    fn der_reader_rejects_garbage() {
        assert!(pkcs1_from_pkcs8(&[]).is_none());
        assert!(pkcs1_from_pkcs8(&[0x30, 0x82, 0xff]).is_none());
        assert!(pkcs1_from_pkcs8(&[0x30, 0x03, 0x02, 0x01, 0x00]).is_none());
    }
}
