//! `private_key_jwt` client authentication (RFC 7523 §2.2, §3; OIDC Core §9): the client's
//! private key, parsed and checked once at start-up, and the signed `client_assertion` JWT.
//!
//! Pure: the claims take `now` and the `jti` as inputs; signing takes the random generator
//! (ECDSA and RSA-PSS signatures are randomised) so tests and the gateway pass their own.

use std::fmt;

use aws_lc_rs::rand::SecureRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    self, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair, RsaKeyPair,
};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};

/// RFC 7523 §2.2: the `client_assertion_type` of a JWT bearer assertion.
pub const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// How long an assertion is valid: long enough for one request, short enough that a captured
/// one is useless soon after (RFC 7523 §3 asks for a limited lifetime).
pub const ASSERTION_LIFETIME_SECS: i64 = 60;
/// Random bytes behind each `jti` (128 bits: unique without coordination).
pub const JTI_BYTES: usize = 16;

/// The algorithms a client assertion may be signed with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AssertionAlg {
    Es256,
    Rs256,
    Ps256,
}

impl AssertionAlg {
    pub const ALL: [AssertionAlg; 3] = [
        AssertionAlg::Es256,
        AssertionAlg::Rs256,
        AssertionAlg::Ps256,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AssertionAlg::Es256 => "ES256",
            AssertionAlg::Rs256 => "RS256",
            AssertionAlg::Ps256 => "PS256",
        }
    }

    /// Case-sensitive, as JWA names are.
    pub fn parse(s: &str) -> Option<AssertionAlg> {
        AssertionAlg::ALL.into_iter().find(|a| a.as_str() == s)
    }

    fn wants_rsa(self) -> bool {
        !matches!(self, AssertionAlg::Es256)
    }
}

impl fmt::Display for AssertionAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a client key cannot be used; each message says what to do.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClientKeyError {
    #[error("it is not a PEM file (expected a `-----BEGIN PRIVATE KEY-----` block)")]
    NotPem,
    #[error(
        "it is an encrypted key; give an unencrypted PKCS#8 key (`openssl pkcs8 -topk8 -nocrypt`)"
    )]
    Encrypted,
    #[error("it is a {0} key; convert it to PKCS#8 (`openssl pkcs8 -topk8 -nocrypt -in KEY`)")]
    NotPkcs8(&'static str),
    #[error("the PEM block is not valid base64")]
    BadBase64,
    #[error("it is not an EC P-256 or RSA (2048 to 8192 bits) private key in PKCS#8")]
    Unsupported,
    #[error("the RSA key has {0} bits; at least 2048 are required")]
    RsaTooSmall(usize),
    #[error("{alg} needs {needs} key, but the key is {has}")]
    AlgMismatch {
        alg: AssertionAlg,
        needs: &'static str,
        has: &'static str,
    },
    #[error("signing the client assertion failed")]
    Sign,
}

enum Signer {
    Ec(EcdsaKeyPair),
    Rsa(RsaKeyPair),
}

/// The client's private key with the algorithm and `kid` it signs with. `Debug` shows neither
/// key material nor anything derived from it.
pub struct ClientKey {
    signer: Signer,
    alg: AssertionAlg,
    kid: Option<String>,
}

impl fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientKey")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl ClientKey {
    /// Parse a PKCS#8 PEM private key (EC P-256, or RSA of at least 2048 bits). `alg` defaults
    /// to ES256 for EC keys and RS256 for RSA keys; an `alg` the key cannot make is refused.
    pub fn from_pem(
        pem: &str,
        alg: Option<AssertionAlg>,
        kid: Option<String>,
    ) -> Result<ClientKey, ClientKeyError> {
        let der = pkcs8_der(pem)?;
        let signer =
            if let Ok(kp) = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der) {
                Signer::Ec(kp)
            } else if let Ok(kp) = RsaKeyPair::from_pkcs8(&der) {
                let bits = kp.public_modulus_len() * 8;
                if bits < KeySize::Rsa2048.len() * 8 {
                    return Err(ClientKeyError::RsaTooSmall(bits));
                }
                Signer::Rsa(kp)
            } else {
                return Err(ClientKeyError::Unsupported);
            };
        let is_rsa = matches!(signer, Signer::Rsa(_));
        let alg = alg.unwrap_or(if is_rsa {
            AssertionAlg::Rs256
        } else {
            AssertionAlg::Es256
        });
        if alg.wants_rsa() != is_rsa {
            return Err(ClientKeyError::AlgMismatch {
                alg,
                needs: if alg.wants_rsa() {
                    "an RSA"
                } else {
                    "an EC P-256"
                },
                has: if is_rsa { "RSA" } else { "EC P-256" },
            });
        }
        Ok(ClientKey { signer, alg, kid })
    }

    pub fn alg(&self) -> AssertionAlg {
        self.alg
    }

    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The public half as a JWK (with `alg`, `use: sig` and `kid` if set): what to register at
    /// the IdP (its `jwks`).
    pub fn public_jwk(&self) -> Value {
        let mut jwk = match &self.signer {
            Signer::Ec(kp) => {
                // Uncompressed point: 0x04 || x || y, 32 bytes each for P-256.
                let p = kp.public_key().as_ref();
                json!({
                    "kty": "EC", "crv": "P-256",
                    "x": URL_SAFE_NO_PAD.encode(p.get(1..33).unwrap_or_default()),
                    "y": URL_SAFE_NO_PAD.encode(p.get(33..).unwrap_or_default()),
                })
            }
            Signer::Rsa(kp) => {
                let pk = kp.public_key();
                json!({
                    "kty": "RSA",
                    "n": URL_SAFE_NO_PAD.encode(pk.modulus().big_endian_without_leading_zero()),
                    "e": URL_SAFE_NO_PAD.encode(pk.exponent().big_endian_without_leading_zero()),
                })
            }
        };
        jwk["alg"] = json!(self.alg.as_str());
        jwk["use"] = json!("sig");
        if let Some(kid) = &self.kid {
            jwk["kid"] = json!(kid);
        }
        jwk
    }

    fn sign(&self, msg: &[u8], rng: &dyn SecureRandom) -> Result<Vec<u8>, ClientKeyError> {
        match (&self.signer, self.alg) {
            (Signer::Ec(kp), _) => kp
                .sign(rng, msg)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| ClientKeyError::Sign),
            (Signer::Rsa(kp), alg) => {
                let enc: &'static dyn signature::RsaEncoding = match alg {
                    AssertionAlg::Ps256 => &signature::RSA_PSS_SHA256,
                    _ => &signature::RSA_PKCS1_SHA256,
                };
                let mut out = vec![0; kp.public_modulus_len()];
                kp.sign(enc, rng, msg, &mut out)
                    .map_err(|_| ClientKeyError::Sign)?;
                Ok(out)
            }
        }
    }
}

/// The `-----BEGIN PRIVATE KEY-----` block's DER; other key blocks get a message saying how to
/// convert them.
fn pkcs8_der(pem: &str) -> Result<Vec<u8>, ClientKeyError> {
    const BEGIN: &str = "-----BEGIN PRIVATE KEY-----";
    const END: &str = "-----END PRIVATE KEY-----";
    if pem.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        return Err(ClientKeyError::Encrypted);
    }
    let Some(start) = pem.find(BEGIN) else {
        if pem.contains("-----BEGIN EC PRIVATE KEY-----") {
            return Err(ClientKeyError::NotPkcs8("SEC1 (`EC PRIVATE KEY`)"));
        }
        if pem.contains("-----BEGIN RSA PRIVATE KEY-----") {
            return Err(ClientKeyError::NotPkcs8("PKCS#1 (`RSA PRIVATE KEY`)"));
        }
        return Err(ClientKeyError::NotPem);
    };
    let body = pem.get(start + BEGIN.len()..).unwrap_or_default();
    let Some(end) = body.find(END) else {
        return Err(ClientKeyError::NotPem);
    };
    let b64: String = body
        .get(..end)
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    STANDARD.decode(b64).map_err(|_| ClientKeyError::BadBase64)
}

/// The claims of one client assertion (RFC 7523 §3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AssertionClaims {
    /// `iss` and `sub`: the client id.
    pub client_id: String,
    pub aud: String,
    pub jti: String,
    pub iat: i64,
    pub exp: i64,
}

/// The claims for a request to `aud` at `now`, with `jti` from [`JTI_BYTES`] random bytes.
pub fn assertion_claims(client_id: &str, aud: &str, jti: &str, now: i64) -> AssertionClaims {
    AssertionClaims {
        client_id: client_id.to_owned(),
        aud: aud.to_owned(),
        jti: jti.to_owned(),
        iat: now,
        exp: now + ASSERTION_LIFETIME_SECS,
    }
}

/// The signed compact JWT. `typ` is `JWT` (what IdPs expect of RFC 7523 assertions).
pub fn sign_assertion(
    key: &ClientKey,
    claims: &AssertionClaims,
    rng: &dyn SecureRandom,
) -> Result<String, ClientKeyError> {
    let mut header = json!({"alg": key.alg.as_str(), "typ": "JWT"});
    if let Some(kid) = &key.kid {
        header["kid"] = json!(kid);
    }
    let payload = json!({
        "iss": claims.client_id,
        "sub": claims.client_id,
        "aud": claims.aud,
        "jti": claims.jti,
        "iat": claims.iat,
        "exp": claims.exp,
    });
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(payload.to_string())
    );
    let sig = key.sign(input.as_bytes(), rng)?;
    Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig)))
}

/// A fresh `jti`: [`JTI_BYTES`] random bytes, base64url.
pub fn random_jti(rng: &dyn SecureRandom) -> Result<String, ClientKeyError> {
    let mut b = [0u8; JTI_BYTES];
    rng.fill(&mut b).map_err(|_| ClientKeyError::Sign)?;
    Ok(URL_SAFE_NO_PAD.encode(b))
}

/// Test keys as PEM (generated at test time; nothing committed).
#[cfg(test)]
pub mod test_keys {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use aws_lc_rs::encoding::AsDer;

    fn pem(der: &[u8]) -> String {
        let b64 = STANDARD.encode(der);
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            lines.join("\n")
        )
    }

    /// A fresh EC P-256 key, PKCS#8 PEM.
    pub fn ec_p256_pem() -> String {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        pem(doc.as_ref())
    }

    /// A fresh RSA key of `bits` (2048, 3072, 4096), PKCS#8 PEM.
    pub fn rsa_pem(bits: usize) -> String {
        let size = match bits {
            3072 => KeySize::Rsa3072,
            4096 => KeySize::Rsa4096,
            _ => KeySize::Rsa2048,
        };
        let kp = RsaKeyPair::generate(size).unwrap();
        pem(AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&kp)
            .unwrap()
            .as_ref())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::jose::{Jwks, JwsAlg, VerifyPolicy, parse_compact, verify_jws};
    use aws_lc_rs::rand::SystemRandom;

    fn claims() -> AssertionClaims {
        assertion_claims(
            "portcullis",
            "https://idp.example.com/token",
            "jti-1",
            1_000,
        )
    }

    fn decode(part: &str) -> Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
    }

    /// RFC 7523 §3: iss = sub = client id, aud, jti, iat = now, exp = now + 60.
    #[test]
    fn claims_and_header() {
        let key = ClientKey::from_pem(&test_keys::ec_p256_pem(), None, Some("k1".into())).unwrap();
        let jwt = sign_assertion(&key, &claims(), &SystemRandom::new()).unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(
            decode(parts[0]),
            json!({"alg": "ES256", "typ": "JWT", "kid": "k1"})
        );
        assert_eq!(
            decode(parts[1]),
            json!({"iss": "portcullis", "sub": "portcullis", "aud": "https://idp.example.com/token",
                "jti": "jti-1", "iat": 1_000, "exp": 1_060})
        );
    }

    /// Each algorithm's signature verifies with the published public JWK (our own verifier).
    #[test]
    fn signatures_verify_with_the_public_jwk() {
        let cases = [
            (test_keys::ec_p256_pem(), None, JwsAlg::ES256),
            (test_keys::rsa_pem(2048), None, JwsAlg::RS256),
            (
                test_keys::rsa_pem(2048),
                Some(AssertionAlg::Ps256),
                JwsAlg::PS256,
            ),
        ];
        for (pem, alg, jws_alg) in cases {
            let key = ClientKey::from_pem(&pem, alg, None).unwrap();
            assert_eq!(key.alg().as_str(), jws_alg.as_str());
            let jwt = sign_assertion(&key, &claims(), &SystemRandom::new()).unwrap();
            let jwks = json!({"keys": [key.public_jwk()]}).to_string();
            let jwks = Jwks::parse(jwks.as_bytes()).unwrap();
            let parsed = parse_compact(&jwt, 16 * 1024).unwrap();
            let algs = [jws_alg];
            assert_eq!(
                verify_jws(&parsed, &jwks, &VerifyPolicy::id_token(&algs)),
                Ok(jws_alg),
                "{jws_alg} assertion must verify"
            );
        }
    }

    #[test]
    fn key_problems_are_named() {
        let ec = test_keys::ec_p256_pem();
        let rsa = test_keys::rsa_pem(2048);
        assert_eq!(
            ClientKey::from_pem(&ec, Some(AssertionAlg::Rs256), None).unwrap_err(),
            ClientKeyError::AlgMismatch {
                alg: AssertionAlg::Rs256,
                needs: "an RSA",
                has: "EC P-256"
            }
        );
        assert!(matches!(
            ClientKey::from_pem(&rsa, Some(AssertionAlg::Es256), None),
            Err(ClientKeyError::AlgMismatch { .. })
        ));
        assert_eq!(
            ClientKey::from_pem("hello", None, None).unwrap_err(),
            ClientKeyError::NotPem
        );
        assert_eq!(
            ClientKey::from_pem(
                "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n",
                None,
                None
            )
            .unwrap_err(),
            ClientKeyError::NotPkcs8("SEC1 (`EC PRIVATE KEY`)")
        );
        assert_eq!(
            ClientKey::from_pem(
                "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
                None,
                None
            )
            .unwrap_err(),
            ClientKeyError::Encrypted
        );
        assert_eq!(
            ClientKey::from_pem(
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
                None,
                None
            )
            .unwrap_err(),
            ClientKeyError::Unsupported
        );
        // Debug shows no key material.
        let d = format!("{:?}", ClientKey::from_pem(&ec, None, None).unwrap());
        assert!(d.contains("Es256") && !d.contains("signer"));
    }

    #[test]
    fn jti_is_128_random_bits() {
        let rng = SystemRandom::new();
        let (a, b) = (random_jti(&rng).unwrap(), random_jti(&rng).unwrap());
        assert_eq!(URL_SAFE_NO_PAD.decode(&a).unwrap().len(), 16);
        assert_ne!(a, b);
    }
}
