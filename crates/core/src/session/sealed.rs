//! IdP refresh tokens at rest (RFC 9700 §4.14; SECURITY.md §1.17 note): AES-256-GCM under a
//! key of their own (an HKDF subkey of the signing secret, see [`super::keys`]), a fresh random
//! 96-bit nonce for every encryption (never a counter or a fixed IV: CVE-2021-32791), and the
//! session id as additional authenticated data, so a ciphertext copied into another session's
//! row does not decrypt.
//!
//! Stored form: `v1.` + base64url(nonce ‖ ciphertext ‖ tag). The plaintext never leaves the
//! server: it is decrypted only to be sent to the IdP's token endpoint.

use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Prefix of the stored form; a future scheme gets another.
const VERSION: &str = "v1.";
/// Domain separation of the AAD: ciphertexts of this purpose only, bound to one session.
const AAD_LABEL: &[u8] = b"portcullis/idp-refresh-token/v1\0";
/// Refresh tokens longer than this are refused (they are opaque strings of a few hundred
/// bytes in practice; a bound keeps rows and work small whatever the IdP sends).
pub const MAX_REFRESH_TOKEN_LEN: usize = 8 * 1024;
const TAG_LEN: usize = 16;

/// Why a refresh token could not be sealed or opened. Says nothing about the contents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("refresh token is empty or longer than {MAX_REFRESH_TOKEN_LEN} bytes")]
    Size,
    #[error("refresh token encryption failed")]
    Seal,
    /// Unknown version, bad encoding, wrong key, wrong session, or tampered.
    #[error("stored refresh token cannot be decrypted")]
    Open,
}

/// An AES-256-GCM key for refresh tokens. `Debug` shows nothing.
pub struct SealKey(RandomizedNonceKey);

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealKey(***)")
    }
}

impl SealKey {
    /// A key from 32 bytes of HKDF output; `None` only if the library refuses the length,
    /// which cannot happen for 32 bytes.
    pub(crate) fn new(bytes: &[u8; 32]) -> Option<SealKey> {
        RandomizedNonceKey::new(&AES_256_GCM, bytes)
            .ok()
            .map(SealKey)
    }

    /// Encrypt `token` for the session `session_id` (a fresh random nonce each call).
    pub fn seal(&self, token: &str, session_id: &str) -> Result<String, SealError> {
        if token.is_empty() || token.len() > MAX_REFRESH_TOKEN_LEN {
            return Err(SealError::Size);
        }
        let mut buf = token.as_bytes().to_vec();
        let nonce = self
            .0
            .seal_in_place_append_tag(aad(session_id), &mut buf)
            .map_err(|_| SealError::Seal)?;
        let mut out = Vec::with_capacity(NONCE_LEN + buf.len());
        out.extend_from_slice(nonce.as_ref());
        out.extend_from_slice(&buf);
        Ok(format!("{VERSION}{}", URL_SAFE_NO_PAD.encode(out)))
    }

    /// Decrypt a value made by [`SealKey::seal`] for the same session.
    pub fn open(&self, sealed: &str, session_id: &str) -> Result<String, SealError> {
        let b64 = sealed.strip_prefix(VERSION).ok_or(SealError::Open)?;
        // Base64 of nonce + the longest token + tag, with room to spare: longer is not ours.
        if b64.len() > 2 * (NONCE_LEN + MAX_REFRESH_TOKEN_LEN + TAG_LEN) {
            return Err(SealError::Open);
        }
        let raw = URL_SAFE_NO_PAD.decode(b64).map_err(|_| SealError::Open)?;
        if raw.len() < NONCE_LEN + TAG_LEN + 1 {
            return Err(SealError::Open);
        }
        let (nonce, body) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::Open)?;
        let mut body = body.to_vec();
        let plain = self
            .0
            .open_in_place(nonce, aad(session_id), &mut body)
            .map_err(|_| SealError::Open)?;
        String::from_utf8(plain.to_vec()).map_err(|_| SealError::Open)
    }
}

/// The AAD: a purpose label, then the session id (the label ends with NUL, which no session
/// id contains, so label and id cannot run into each other).
fn aad(session_id: &str) -> Aad<Vec<u8>> {
    let mut a = Vec::with_capacity(AAD_LABEL.len() + session_id.len());
    a.extend_from_slice(AAD_LABEL);
    a.extend_from_slice(session_id.as_bytes());
    Aad::from(a)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::session::SessionKeys;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";
    const OTHER: &str = "fedcba9876543210fedcba9876543210";

    #[test]
    fn round_trip_with_a_fresh_nonce_each_time() {
        let k = SessionKeys::derive(SECRET);
        let a = k.seal_refresh_token("rt-secret-value", "sid-1").unwrap();
        let b = k.seal_refresh_token("rt-secret-value", "sid-1").unwrap();
        assert!(a.starts_with("v1.") && !a.contains("rt-secret-value"));
        assert_ne!(a, b, "a random nonce per encryption");
        assert_eq!(
            k.open_refresh_token(&a, "sid-1").unwrap(),
            "rt-secret-value"
        );
        assert_eq!(
            k.open_refresh_token(&b, "sid-1").unwrap(),
            "rt-secret-value"
        );
        // The same secret after a restart (every replica) opens it too.
        let again = SessionKeys::derive(SECRET);
        assert_eq!(
            again.open_refresh_token(&a, "sid-1").unwrap(),
            "rt-secret-value"
        );
    }

    #[test]
    fn bound_to_the_session_id() {
        let k = SessionKeys::derive(SECRET);
        let a = k.seal_refresh_token("rt", "sid-1").unwrap();
        assert_eq!(k.open_refresh_token(&a, "sid-2"), Err(SealError::Open));
        assert_eq!(k.open_refresh_token(&a, "sid-1x"), Err(SealError::Open));
        assert_eq!(k.open_refresh_token(&a, ""), Err(SealError::Open));
    }

    #[test]
    fn tampering_is_detected() {
        let k = SessionKeys::derive(SECRET);
        let a = k.seal_refresh_token("a-refresh-token", "sid-1").unwrap();
        let raw = URL_SAFE_NO_PAD.decode(&a[3..]).unwrap();
        for i in [0, NONCE_LEN, raw.len() - 1] {
            let mut t = raw.clone();
            t[i] ^= 1;
            let forged = format!("v1.{}", URL_SAFE_NO_PAD.encode(&t));
            assert_eq!(k.open_refresh_token(&forged, "sid-1"), Err(SealError::Open));
        }
        let cut = format!("v1.{}", URL_SAFE_NO_PAD.encode(&raw[..raw.len() - 1]));
        assert_eq!(k.open_refresh_token(&cut, "sid-1"), Err(SealError::Open));
        for bad in [
            "",
            "v1.",
            "v2.AAAA",
            "v1.!!!",
            &a[3..],
            "v1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        ] {
            assert_eq!(
                k.open_refresh_token(bad, "sid-1"),
                Err(SealError::Open),
                "{bad}"
            );
        }
    }

    #[test]
    fn other_secret_fails_previous_secret_still_opens() {
        let old = SessionKeys::derive(OTHER);
        let sealed = old.seal_refresh_token("rt-old", "sid-1").unwrap();
        let new = SessionKeys::derive(SECRET);
        assert_eq!(
            new.open_refresh_token(&sealed, "sid-1"),
            Err(SealError::Open)
        );
        let rotating = SessionKeys::derive(SECRET).with_previous(OTHER);
        assert_eq!(
            rotating.open_refresh_token(&sealed, "sid-1").unwrap(),
            "rt-old"
        );
        // New encryptions use the current key only.
        let fresh = rotating.seal_refresh_token("rt-new", "sid-1").unwrap();
        assert_eq!(new.open_refresh_token(&fresh, "sid-1").unwrap(), "rt-new");
        assert_eq!(
            old.open_refresh_token(&fresh, "sid-1"),
            Err(SealError::Open)
        );
    }

    #[test]
    fn size_bounds() {
        let k = SessionKeys::derive(SECRET);
        assert_eq!(
            k.seal_refresh_token("", "s"),
            Err(SealError::Size),
            "an empty token is refused"
        );
        let long = "r".repeat(MAX_REFRESH_TOKEN_LEN + 1);
        assert_eq!(k.seal_refresh_token(&long, "s"), Err(SealError::Size));
        let max = "r".repeat(MAX_REFRESH_TOKEN_LEN);
        let s = k.seal_refresh_token(&max, "s").unwrap();
        assert_eq!(k.open_refresh_token(&s, "s").unwrap(), max);
    }
}
