//! The JWS algorithms Portcullis accepts (R-IDT-6).
//!
//! There is deliberately no `none` and no `HS*` variant: a token naming them can never reach a
//! verifier, so "HS256 keyed with the RSA public key" (RFC 8725 §3.1, CVE-2015-9235) is
//! impossible by construction rather than by a check someone could forget.

use std::fmt;
use std::str::FromStr;

/// An asymmetric JWS algorithm (RFC 7518 §3.1, RFC 8037 for EdDSA).
#[allow(clippy::upper_case_acronyms)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JwsAlg {
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    EdDSA,
}

/// The key family an algorithm implies. The allow-listed alg picks the key type, never the
/// token header (R-IDT-6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyFamily {
    /// `kty: RSA` (RS*, PS*).
    Rsa,
    /// `kty: EC, crv: P-256` (ES256).
    EcP256,
    /// `kty: EC, crv: P-384` (ES384).
    EcP384,
    /// `kty: OKP, crv: Ed25519` (EdDSA).
    Ed25519,
}

impl JwsAlg {
    /// Every supported algorithm, in the order used in messages.
    pub const ALL: [JwsAlg; 9] = [
        JwsAlg::RS256,
        JwsAlg::RS384,
        JwsAlg::RS512,
        JwsAlg::PS256,
        JwsAlg::PS384,
        JwsAlg::PS512,
        JwsAlg::ES256,
        JwsAlg::ES384,
        JwsAlg::EdDSA,
    ];

    /// The registered JWA name (RFC 7518 §3.1).
    pub fn as_str(&self) -> &'static str {
        match self {
            JwsAlg::RS256 => "RS256",
            JwsAlg::RS384 => "RS384",
            JwsAlg::RS512 => "RS512",
            JwsAlg::PS256 => "PS256",
            JwsAlg::PS384 => "PS384",
            JwsAlg::PS512 => "PS512",
            JwsAlg::ES256 => "ES256",
            JwsAlg::ES384 => "ES384",
            JwsAlg::EdDSA => "EdDSA",
        }
    }

    /// Exact, case-sensitive lookup (JOSE names are case-sensitive, RFC 7515 §4.1.1).
    pub fn parse(s: &str) -> Option<JwsAlg> {
        JwsAlg::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// The key family this algorithm requires (R-IDT-3, R-IDT-6).
    pub fn key_family(&self) -> KeyFamily {
        match self {
            JwsAlg::RS256
            | JwsAlg::RS384
            | JwsAlg::RS512
            | JwsAlg::PS256
            | JwsAlg::PS384
            | JwsAlg::PS512 => KeyFamily::Rsa,
            JwsAlg::ES256 => KeyFamily::EcP256,
            JwsAlg::ES384 => KeyFamily::EcP384,
            JwsAlg::EdDSA => KeyFamily::Ed25519,
        }
    }

    /// Raw R‖S length for ECDSA (RFC 7518 §3.4, R-IDT-7); `None` for other families.
    pub fn ecdsa_signature_len(&self) -> Option<usize> {
        match self {
            JwsAlg::ES256 => Some(64),
            JwsAlg::ES384 => Some(96),
            _ => None,
        }
    }

    /// The hash used for `at_hash`/`c_hash` (Core §3.1.3.6): the alg's own hash; EdDSA
    /// (Ed25519) uses SHA-512 per the OIDC Core errata.
    pub fn oidc_hash(&self) -> &'static aws_lc_rs::digest::Algorithm {
        use aws_lc_rs::digest::{SHA256, SHA384, SHA512};
        match self {
            JwsAlg::RS256 | JwsAlg::PS256 | JwsAlg::ES256 => &SHA256,
            JwsAlg::RS384 | JwsAlg::PS384 | JwsAlg::ES384 => &SHA384,
            JwsAlg::RS512 | JwsAlg::PS512 | JwsAlg::EdDSA => &SHA512,
        }
    }

    /// The matching jsonwebtoken algorithm, used only for the raw signature check.
    pub(crate) fn to_jsonwebtoken(self) -> jsonwebtoken::Algorithm {
        use jsonwebtoken::Algorithm as A;
        match self {
            JwsAlg::RS256 => A::RS256,
            JwsAlg::RS384 => A::RS384,
            JwsAlg::RS512 => A::RS512,
            JwsAlg::PS256 => A::PS256,
            JwsAlg::PS384 => A::PS384,
            JwsAlg::PS512 => A::PS512,
            JwsAlg::ES256 => A::ES256,
            JwsAlg::ES384 => A::ES384,
            JwsAlg::EdDSA => A::EdDSA,
        }
    }
}

impl fmt::Display for JwsAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error for an algorithm name that is not supported (e.g. in configuration).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unsupported JWS algorithm `{name}` (supported, case-sensitive: RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA; `none` and HS* are never accepted)"
)]
pub struct UnsupportedAlg {
    /// The rejected name, as given by the operator.
    pub name: String,
}

impl FromStr for JwsAlg {
    type Err = UnsupportedAlg;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JwsAlg::parse(s).ok_or_else(|| UnsupportedAlg { name: s.to_owned() })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    /// R-IDT-6: names round-trip exactly.
    #[test]
    fn r_idt_6_alg_names_round_trip() {
        for a in JwsAlg::ALL {
            assert_eq!(JwsAlg::parse(a.as_str()), Some(a));
            assert_eq!(a.as_str().parse::<JwsAlg>().unwrap(), a);
        }
    }

    /// R-IDT-5/6: none, HS* and wrong case are not algorithms we know.
    #[test]
    fn r_idt_5_6_alg_parse_rejects_none_hs_and_case() {
        for bad in [
            "none", "NONE", "HS256", "HS512", "rs256", "Rs256", "eddsa", "ES512", "",
        ] {
            assert_eq!(JwsAlg::parse(bad), None, "{bad}");
        }
        let err = "HS256".parse::<JwsAlg>().unwrap_err().to_string();
        assert!(err.contains("HS256") && err.contains("RS256") && err.contains("EdDSA"));
    }
}
