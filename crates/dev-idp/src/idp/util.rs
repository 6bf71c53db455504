//! Small helpers: time, randomness, hashing, parameter and cookie parsing.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::{constant_time, digest, rand};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Seconds since the Unix epoch.
pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A fresh random value of `bytes` random bytes, base64url-encoded without padding.
pub(crate) fn random_token(bytes: usize) -> Result<String, RandomError> {
    let mut buf = vec![0u8; bytes];
    rand::fill(&mut buf).map_err(|_| RandomError)?;
    Ok(URL_SAFE_NO_PAD.encode(&buf))
}

/// The system random number generator failed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RandomError;

pub(crate) fn b64url(data: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(data)
}

pub(crate) fn sha256(data: &[u8]) -> Vec<u8> {
    digest::digest(&digest::SHA256, data).as_ref().to_vec()
}

/// BASE64URL(SHA256(input)), as used by PKCE S256.
pub(crate) fn s256(input: &str) -> String {
    b64url(&sha256(input.as_bytes()))
}

/// `at_hash`: base64url of the left-most half of SHA-256 of the access token.
pub(crate) fn at_hash(access_token: &str) -> String {
    let hash = sha256(access_token.as_bytes());
    b64url(&hash[..hash.len() / 2])
}

/// Constant-time string comparison that also hides the lengths (compares digests).
pub(crate) fn ct_eq(a: &str, b: &str) -> bool {
    constant_time::verify_slices_are_equal(&sha256(a.as_bytes()), &sha256(b.as_bytes())).is_ok()
}

/// Form/query parameters, with the names that appeared more than once.
#[derive(Debug, Default)]
pub(crate) struct Params {
    map: HashMap<String, String>,
    duplicates: Vec<String>,
}

impl Params {
    /// Parses `application/x-www-form-urlencoded` data (query string or body).
    pub(crate) fn parse(raw: &[u8]) -> Self {
        let mut params = Params::default();
        for (k, v) in url::form_urlencoded::parse(raw) {
            let k = k.into_owned();
            match params.map.entry(k) {
                std::collections::hash_map::Entry::Occupied(e) => {
                    if !params.duplicates.contains(e.key()) {
                        params.duplicates.push(e.key().clone());
                    }
                }
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(v.into_owned());
                }
            }
        }
        params
    }

    /// The value of `name`; empty values count as absent (RFC 6749 §3.1).
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.map
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    pub(crate) fn is_duplicated(&self, name: &str) -> bool {
        self.duplicates.iter().any(|d| d == name)
    }

    pub(crate) fn first_duplicate(&self) -> Option<&str> {
        self.duplicates.first().map(String::as_str)
    }
}

/// Decodes `%XX` escapes; other bytes pass through. Returns raw bytes.
pub(crate) fn percent_decode_bytes(input: &str) -> Vec<u8> {
    percent_encoding::percent_decode_str(input).collect()
}

/// `application/x-www-form-urlencoded` decoding of one component ("+" is a space),
/// as RFC 6749 §2.3.1 requires for client_secret_basic credentials.
pub(crate) fn form_urldecode(input: &str) -> Option<String> {
    String::from_utf8(percent_decode_bytes(&input.replace('+', " "))).ok()
}

/// The value of the cookie `name` from the request's `Cookie` headers.
pub(crate) fn cookie_value(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| k.trim() == name)
        .map(|(_, v)| v.trim().trim_matches('"').to_owned())
        .filter(|v| !v.is_empty())
}

/// RFC 7636 code_verifier / code_challenge syntax: 43..=128 unreserved characters.
pub(crate) fn is_pkce_value(s: &str) -> bool {
    (43..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode_bytes("a%20b"), b"a b");
        assert_eq!(percent_decode_bytes("%C3%98"), "Ø".as_bytes());
        assert_eq!(percent_decode_bytes("100%"), b"100%");
        assert_eq!(percent_decode_bytes("%4"), b"%4");
        assert_eq!(percent_decode_bytes("%zz"), b"%zz");
        assert_eq!(form_urldecode("a+b%2Bc%3A").unwrap(), "a b+c:");
    }

    #[test]
    fn pkce_s256_rfc7636_vector() {
        assert_eq!(
            s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn params_detect_duplicates() {
        let p = Params::parse(b"a=1&b=2&a=3&c=");
        assert_eq!(p.get("a"), Some("1"));
        assert!(p.is_duplicated("a"));
        assert_eq!(p.get("c"), None);
    }
}
