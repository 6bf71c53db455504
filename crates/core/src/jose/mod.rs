//! JOSE: the one strict verifier core (R-IDT-1..7), shared by ID tokens, signed UserInfo,
//! logout tokens (R-BCL), the gateway session JWT (R-SJ) and DPoP proofs (R-DP); plus the
//! JWT claim checks they share ([`claims`]) and RFC 7638 thumbprints.
//!
//! Parsing, header policy, key selection and JWKS hygiene are ours; `jsonwebtoken` (on
//! aws-lc-rs) is used only for the raw signature check. Reasons: `jsonwebtoken` decodes with
//! serde_json (duplicate members silently collapse), ignores unknown JWK members (so private
//! keys would slip through) and does not check `typ`/`crit` (see STACK.md, the JOSE row).
//!
//! Crypto provider: verification calls `jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER`
//! directly, never the process-wide default, so it works (and cannot panic) whether or not
//! [`install_crypto_provider`] was called and whatever another crate installed.

pub mod alg;
pub mod claims;
pub mod compact;
pub mod json;
pub mod jwks;
pub mod key_source;
pub mod thumbprint;
pub mod verify;

pub use alg::{JwsAlg, KeyFamily, UnsupportedAlg};
pub use claims::ClaimError;
pub use compact::{CompactJws, parse_compact};
pub use json::JsonError;
pub use jwks::{Jwk, JwkError, Jwks};
pub use key_source::{EmbeddedJwk, HmacKeyUsed, HmacKeys, KeySource, VerifiedJwk};
pub use thumbprint::jwk_thumbprint_sha256;
pub use verify::{VerifyPolicy, verify_jws};

use std::fmt;

/// Install aws-lc-rs as jsonwebtoken's process-wide crypto provider. Idempotent: a second call
/// (or a provider installed earlier by someone else) is silently kept.
///
/// Our verifier does not need this (it uses the aws-lc provider explicitly). Call it once at
/// start-up anyway, because other code that uses `jsonwebtoken::encode`/`decode` (session JWT,
/// dev IdP) goes through the global default, which panics on first use if the dependency graph
/// ever enables both of jsonwebtoken's crypto features.
pub fn install_crypto_provider() {
    // Err only means "already installed"; there is nothing to do about it.
    let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
}

/// Which part of a compact JWS an error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Segment {
    Header,
    Payload,
    Signature,
}

impl fmt::Display for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Segment::Header => "header",
            Segment::Payload => "payload",
            Segment::Signature => "signature",
        })
    }
}

/// Why a JWS or JWKS was refused. Messages are short and never contain token contents.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoseError {
    /// R-IDT-1: over the size cap.
    #[error("token too large")]
    TooLarge,
    /// R-IDT-1: five segments, i.e. an encrypted token; ID Token encryption is not configured.
    #[error("encrypted tokens (JWE) are not accepted")]
    Jwe,
    /// R-IDT-1: not exactly three segments.
    #[error("not a compact JWS (three segments expected)")]
    Segments,
    /// R-IDT-1: not unpadded base64url (padding, whitespace, bad characters, non-canonical).
    #[error("{0} is not unpadded base64url")]
    Base64(Segment),
    /// R-IDT-1: not a UTF-8 JSON object, duplicate members or too deep.
    #[error("{0}: {1}")]
    Json(Segment, JsonError),
    /// R-IDT-2: `alg` missing or not a string.
    #[error("alg header missing or invalid")]
    MissingAlg,
    /// R-IDT-5: `alg: none`, in any spelling.
    #[error("alg none is never accepted")]
    AlgNone,
    /// R-IDT-6: the algorithm is unknown, HS*, or not in the configured allow-list.
    #[error("algorithm not allowed")]
    AlgNotAllowed,
    /// R-SJ-1: a header member the policy does not allow (e.g. `kid` on a session JWT).
    #[error("header member not accepted for this token")]
    HeaderMember,
    /// R-IDT-2: `crit` present (we implement no critical extension).
    #[error("crit header is not supported")]
    Crit,
    /// R-IDT-2: `b64` other than `true` (RFC 7797 unencoded payload).
    #[error("unencoded payload (b64) is not supported")]
    B64,
    /// R-IDT-2: `typ` not acceptable for this kind of token (RFC 8725 §3.11).
    #[error("typ not accepted for this token")]
    Typ,
    /// R-IDT-3: `kid` not a string or longer than 256 characters.
    #[error("kid header invalid")]
    Kid,
    /// R-IDT-3: no key with this `kid`; the caller refetches the JWKS once and retries.
    #[error("unknown kid")]
    UnknownKid,
    /// R-IDT-3: no JWKS key fits the algorithm (kty/crv/use/alg).
    #[error("no usable key for this algorithm")]
    NoUsableKey,
    /// R-DP check 4: a DPoP proof without a `jwk` header member.
    #[error("jwk header missing")]
    JwkMissing,
    /// R-DP check 4 (RFC 9449 §4.3): the embedded `jwk` is refused (private members, bad key).
    #[error("jwk header: {0}")]
    Jwk(JwkError),
    /// R-IDT-7: ECDSA signature is not raw R‖S of the exact length.
    #[error("ECDSA signature has the wrong length")]
    EcdsaSignatureLength,
    /// R-IDT-7: no candidate key verified the signature.
    #[error("signature verification failed")]
    BadSignature,
    /// R-IDT-4: JWKS document over 256 KiB.
    #[error("JWKS document too large")]
    JwksTooLarge,
    /// R-IDT-4: more than 64 keys.
    #[error("JWKS has too many keys")]
    JwksTooManyKeys,
    /// R-IDT-4: JWKS is not strict JSON.
    #[error("JWKS: {0}")]
    JwksJson(JsonError),
    /// R-IDT-4: JWKS is not an object with a `keys` array.
    #[error("JWKS is not an object with a keys array")]
    JwksShape,
}

/// Errors that can mean "signed with a key we have not fetched yet": the caller refetches the
/// JWKS once (single-flight, cooldown) and verifies again (R-IDT-3, Core §10.1.1).
pub trait UnknownKid {
    /// True when the signing key's `kid` is not in the JWKS.
    fn is_unknown_kid(&self) -> bool;
}

impl UnknownKid for JoseError {
    fn is_unknown_kid(&self) -> bool {
        matches!(self, JoseError::UnknownKid)
    }
}

/// Shared helpers for the tests of `jose` and `oidc`: real keys generated with aws-lc-rs and
/// an independent signer (aws-lc-rs directly, not the code under test).
#[cfg(test)]
pub(crate) mod test_support {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::sync::OnceLock;

    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::rsa::KeySize;
    use aws_lc_rs::signature::{self as sig, EcdsaKeyPair, Ed25519KeyPair, KeyPair};
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    use serde_json::{Value, json};

    use super::{Jwks, JwsAlg};

    pub(crate) fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    pub(crate) enum Signer {
        Rsa(sig::RsaKeyPair),
        Ec {
            fixed: EcdsaKeyPair,
            der: EcdsaKeyPair,
            crv: &'static str,
        },
        Ed(Ed25519KeyPair),
    }

    pub(crate) struct TestKey {
        pub signer: Signer,
        pub kid: String,
    }

    impl TestKey {
        fn rsa(kid: &str) -> TestKey {
            let kp = sig::RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
            TestKey {
                signer: Signer::Rsa(kp),
                kid: kid.to_owned(),
            }
        }

        fn ec(kid: &str, p384: bool) -> TestKey {
            let rng = SystemRandom::new();
            let (fixed_alg, der_alg, crv) = if p384 {
                (
                    &sig::ECDSA_P384_SHA384_FIXED_SIGNING,
                    &sig::ECDSA_P384_SHA384_ASN1_SIGNING,
                    "P-384",
                )
            } else {
                (
                    &sig::ECDSA_P256_SHA256_FIXED_SIGNING,
                    &sig::ECDSA_P256_SHA256_ASN1_SIGNING,
                    "P-256",
                )
            };
            let pkcs8 = EcdsaKeyPair::generate_pkcs8(fixed_alg, &rng).unwrap();
            TestKey {
                signer: Signer::Ec {
                    fixed: EcdsaKeyPair::from_pkcs8(fixed_alg, pkcs8.as_ref()).unwrap(),
                    der: EcdsaKeyPair::from_pkcs8(der_alg, pkcs8.as_ref()).unwrap(),
                    crv,
                },
                kid: kid.to_owned(),
            }
        }

        /// A fresh P-256 key without kid (cheap; for multi-key tests).
        pub(crate) fn ec_p256_fresh() -> TestKey {
            let mut k = TestKey::ec("", false);
            k.kid.clear();
            k
        }

        fn ed(kid: &str) -> TestKey {
            TestKey {
                signer: Signer::Ed(Ed25519KeyPair::generate().unwrap()),
                kid: kid.to_owned(),
            }
        }

        /// Public JWK with `kid` (unless empty), without `alg`/`use`.
        pub(crate) fn jwk(&self) -> Value {
            let mut j = self.jwk_inner();
            if self.kid.is_empty() {
                j.as_object_mut().unwrap().remove("kid");
            }
            j
        }

        fn jwk_inner(&self) -> Value {
            match &self.signer {
                Signer::Rsa(kp) => {
                    let pk = kp.public_key();
                    json!({
                        "kty": "RSA", "kid": self.kid,
                        "n": b64(pk.modulus().big_endian_without_leading_zero()),
                        "e": b64(pk.exponent().big_endian_without_leading_zero()),
                    })
                }
                Signer::Ec { fixed, crv, .. } => {
                    let point = fixed.public_key().as_ref();
                    let half = (point.len() - 1) / 2;
                    json!({
                        "kty": "EC", "crv": crv, "kid": self.kid,
                        "x": b64(&point[1..1 + half]), "y": b64(&point[1 + half..]),
                    })
                }
                Signer::Ed(kp) => json!({
                    "kty": "OKP", "crv": "Ed25519", "kid": self.kid,
                    "x": b64(kp.public_key().as_ref()),
                }),
            }
        }

        /// Public JWK plus extra members (e.g. `alg`, `use`).
        pub(crate) fn jwk_with(&self, extra: Value) -> Value {
            let mut j = self.jwk();
            for (k, v) in extra.as_object().unwrap() {
                j[k] = v.clone();
            }
            j
        }

        /// The RSA public key as PEM text (what an attacker would use as an HMAC secret).
        pub(crate) fn rsa_public_pem(&self) -> String {
            let Signer::Rsa(kp) = &self.signer else {
                panic!("not RSA")
            };
            let der = kp.public_key().as_der().unwrap();
            format!(
                "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
                STANDARD.encode(der.as_ref())
            )
        }

        pub(crate) fn sign(&self, alg: JwsAlg, msg: &[u8]) -> Vec<u8> {
            let rng = SystemRandom::new();
            match (&self.signer, alg) {
                (Signer::Rsa(kp), _) => {
                    let enc: &'static dyn sig::RsaEncoding = match alg {
                        JwsAlg::RS256 => &sig::RSA_PKCS1_SHA256,
                        JwsAlg::RS384 => &sig::RSA_PKCS1_SHA384,
                        JwsAlg::RS512 => &sig::RSA_PKCS1_SHA512,
                        JwsAlg::PS256 => &sig::RSA_PSS_SHA256,
                        JwsAlg::PS384 => &sig::RSA_PSS_SHA384,
                        JwsAlg::PS512 => &sig::RSA_PSS_SHA512,
                        _ => panic!("RSA key cannot sign {alg}"),
                    };
                    let mut out = vec![0; kp.public_modulus_len()];
                    kp.sign(enc, &rng, msg, &mut out).unwrap();
                    out
                }
                (Signer::Ec { fixed, .. }, JwsAlg::ES256 | JwsAlg::ES384) => {
                    fixed.sign(&rng, msg).unwrap().as_ref().to_vec()
                }
                (Signer::Ed(kp), JwsAlg::EdDSA) => kp.sign(msg).as_ref().to_vec(),
                _ => panic!("key cannot sign {alg}"),
            }
        }

        /// ASN.1 DER ECDSA signature (wrong encoding for JWS, R-IDT-7).
        pub(crate) fn sign_der(&self, msg: &[u8]) -> Vec<u8> {
            let Signer::Ec { der, .. } = &self.signer else {
                panic!("not EC")
            };
            der.sign(&SystemRandom::new(), msg)
                .unwrap()
                .as_ref()
                .to_vec()
        }
    }

    macro_rules! cached_key {
        ($name:ident, $make:expr) => {
            pub(crate) fn $name() -> &'static TestKey {
                static K: OnceLock<TestKey> = OnceLock::new();
                K.get_or_init(|| $make)
            }
        };
    }

    cached_key!(rsa_a, TestKey::rsa("rsa-a"));
    cached_key!(rsa_b, TestKey::rsa("rsa-b"));
    cached_key!(rsa_attacker, TestKey::rsa("rsa-a"));
    cached_key!(ec256, TestKey::ec("ec-256", false));
    cached_key!(ec384, TestKey::ec("ec-384", true));
    cached_key!(ed25519, TestKey::ed("ed-1"));

    /// `header.payload` from raw JSON text (lets tests write duplicates).
    pub(crate) fn signing_input(header_json: &str, payload_json: &str) -> String {
        format!(
            "{}.{}",
            b64(header_json.as_bytes()),
            b64(payload_json.as_bytes())
        )
    }

    /// A compact JWS from raw JSON text, signed by `key` with `alg`.
    pub(crate) fn token_raw(
        header_json: &str,
        payload_json: &str,
        key: &TestKey,
        alg: JwsAlg,
    ) -> String {
        let input = signing_input(header_json, payload_json);
        let sig = key.sign(alg, input.as_bytes());
        format!("{input}.{}", b64(&sig))
    }

    /// A compact JWS with header `{"alg": alg, "kid": key.kid}` plus `extra_header`.
    pub(crate) fn token(claims: &Value, key: &TestKey, alg: JwsAlg, extra_header: Value) -> String {
        let mut h = json!({"alg": alg.as_str(), "kid": key.kid});
        for (k, v) in extra_header.as_object().unwrap() {
            if v.is_null() {
                h.as_object_mut().unwrap().remove(k);
            } else {
                h[k] = v.clone();
            }
        }
        token_raw(&h.to_string(), &claims.to_string(), key, alg)
    }

    pub(crate) fn jwks(keys: &[Value]) -> Jwks {
        Jwks::parse(json!({ "keys": keys }).to_string().as_bytes()).unwrap()
    }
}
