//! RFC 7638 JWK thumbprints (R-DP-B: the session's `cnf.jkt`, the transaction's `dpop_jkt`).
//!
//! The hash input is the JSON object of the key type's required members only, in lexicographic
//! order, without whitespace (RFC 7638 §3.2–3.3). Every member value is base64url or a fixed
//! ASCII name, so nothing needs escaping and the text is built directly.

use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::jwks::{Jwk, PublicParams};

/// The RFC 7638 SHA-256 thumbprint of `jwk`, base64url without padding (43 characters).
///
/// Members: EC `crv,kty,x,y`; RSA `e,kty,n`; OKP `crv,kty,x` (RFC 8037 §2). Optional members
/// (`kid`, `alg`, `use`, `key_ops`, `ext`, …) never change it. RSA `n`/`e` are encoded without
/// leading zero octets, as RFC 7518 §6.3.1 requires, so a key published with padding zeros
/// still has the one canonical thumbprint.
pub fn jwk_thumbprint_sha256(jwk: &Jwk) -> String {
    let input = thumbprint_input(jwk.params());
    URL_SAFE_NO_PAD.encode(digest(&SHA256, input.as_bytes()))
}

/// The canonical JSON text that is hashed.
fn thumbprint_input(params: &PublicParams) -> String {
    let b = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
    match params {
        PublicParams::Rsa { n, e } => {
            format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, b(e), b(n))
        }
        PublicParams::Ec { crv, x, y } => format!(
            r#"{{"crv":"{crv}","kty":"EC","x":"{}","y":"{}"}}"#,
            b(x),
            b(y)
        ),
        PublicParams::Okp { crv, x } => {
            format!(r#"{{"crv":"{crv}","kty":"OKP","x":"{}"}}"#, b(x))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::jose::test_support::{b64, ec256, ed25519, rsa_a};
    use serde_json::json;

    const RFC7638_N: &str = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";

    /// RFC 7638 §3.1: the RSA example and its published thumbprint.
    #[test]
    fn r_dp_rfc7638_rsa_vector() {
        let k = Jwk::parse(&json!({
            "kty": "RSA", "n": RFC7638_N, "e": "AQAB", "alg": "RS256", "kid": "2011-04-29",
        }))
        .unwrap();
        assert_eq!(
            thumbprint_input(k.params()),
            format!(r#"{{"e":"AQAB","kty":"RSA","n":"{RFC7638_N}"}}"#)
        );
        assert_eq!(
            jwk_thumbprint_sha256(&k),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
        assert_eq!(
            k.thumbprint_sha256(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    /// RFC 9449 §6.1/§10: the example proof key and the `jkt` the RFC binds to it.
    #[test]
    fn r_dp_rfc9449_ec_vector() {
        let k = Jwk::parse(&json!({
            "kty": "EC", "crv": "P-256",
            "x": "l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs",
            "y": "9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA",
        }))
        .unwrap();
        assert_eq!(
            jwk_thumbprint_sha256(&k),
            "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
        );
    }

    /// R-DP proof check 11: extra members (kid, alg, use, key_ops, ext) and member order do
    /// not change the thumbprint; a different key does.
    #[test]
    fn r_dp_11_thumbprint_ignores_optional_members() {
        let plain = Jwk::parse(&ec256().jwk()).unwrap();
        let dressed = Jwk::parse(&ec256().jwk_with(json!({
            "kid": "other", "alg": "ES256", "use": "sig", "key_ops": ["verify"], "ext": true,
        })))
        .unwrap();
        assert_eq!(
            jwk_thumbprint_sha256(&plain),
            jwk_thumbprint_sha256(&dressed)
        );
        assert_eq!(jwk_thumbprint_sha256(&plain).len(), 43);
        let other = Jwk::parse(&ed25519().jwk()).unwrap();
        assert_ne!(jwk_thumbprint_sha256(&plain), jwk_thumbprint_sha256(&other));
    }

    /// Cross-check EC, RSA and OKP against jsonwebtoken's independent RFC 7638 code.
    #[test]
    fn r_dp_thumbprint_matches_independent_implementation() {
        for v in [ec256().jwk(), rsa_a().jwk(), ed25519().jwk()] {
            let ours = jwk_thumbprint_sha256(&Jwk::parse(&v).unwrap());
            let theirs: jsonwebtoken::jwk::Jwk = serde_json::from_value(v.clone()).unwrap();
            let theirs = theirs
                .thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256)
                .unwrap();
            assert_eq!(ours, theirs, "{v}");
        }
    }

    /// RSA `n` with a leading zero octet hashes like the minimal encoding.
    #[test]
    fn r_dp_rsa_leading_zero_is_canonicalised() {
        let n = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(RFC7638_N)
            .unwrap();
        let mut padded = vec![0u8];
        padded.extend_from_slice(&n);
        let k = Jwk::parse(&json!({"kty": "RSA", "n": b64(&padded), "e": "AQAB"})).unwrap();
        assert_eq!(
            jwk_thumbprint_sha256(&k),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }
}
