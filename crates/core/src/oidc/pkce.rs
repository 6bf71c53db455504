//! Per-login secrets and PKCE (R-AZ-2; RFC 7636 §4.1–4.2).

use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The only `code_challenge_method` ever sent: `plain` would leak the verifier (RFC 7636 §7.2,
/// RFC 9700 §2.1.1).
pub const CODE_CHALLENGE_METHOD: &str = "S256";
/// Random bytes behind each `state`, `nonce`, `code_verifier` and tx cookie (R-AZ-2).
pub const RANDOM_TOKEN_BYTES: usize = 32;

/// The system random generator failed; no login can start safely without it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the system random generator failed")]
pub struct RandomError;

/// 32 CSPRNG bytes, base64url without padding: 43 characters from the RFC 7636 §4.1
/// unreserved set, so the same value serves as `state`, `nonce` or `code_verifier` (R-AZ-2).
pub fn random_token() -> Result<String, RandomError> {
    let mut b = [0u8; RANDOM_TOKEN_BYTES];
    aws_lc_rs::rand::fill(&mut b).map_err(|_| RandomError)?;
    Ok(URL_SAFE_NO_PAD.encode(b))
}

/// `code_challenge` = BASE64URL(SHA256(ASCII(verifier))) (RFC 7636 §4.2, method S256).
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, verifier.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7636 Appendix B vector (SECURITY.md §4.3).
    #[test]
    fn r_az_2_pkce_s256_rfc7636_vector() {
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    /// R-AZ-2: 43 characters of the verifier charset, distinct each time.
    #[test]
    fn r_az_2_random_tokens_are_43_chars_and_distinct() {
        let (a, b) = (random_token().ok(), random_token().ok());
        assert_eq!(a.as_ref().map(String::len), Some(43));
        assert_ne!(a, b);
        let a = a.unwrap_or_default();
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
    }
}
