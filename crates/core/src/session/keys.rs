//! Key separation (R-CFG-1, RFC 8725 §3.12): `JWT_SIGNING_SECRET` is never used directly;
//! each purpose gets its own HKDF-SHA256 subkey, so a MAC made for one purpose can never
//! verify as another (CVE-2023-48309 shape).

use aws_lc_rs::{hkdf, hmac};

use super::sealed::{SealError, SealKey};
use crate::jose::HmacKeys;

/// Salt for the HKDF extract step; versioned so a future scheme can rotate it.
const SALT: &[u8] = b"portcullis/session-keys/v1";

/// The subkeys derived from the signing secret.
pub struct SessionKeys {
    session_jwt: hmac::Key,
    /// Verification-only key from the previous secret (R-CFG-1).
    previous_session_jwt: Option<hmac::Key>,
    tx_binding: hmac::Key,
    csrf: hmac::Key,
    dpop_nonce: hmac::Key,
    /// AES-256-GCM key for IdP refresh tokens at rest, and the previous secret's (decryption
    /// only, so stored tokens survive a rotation).
    refresh_token: Option<SealKey>,
    previous_refresh_token: Option<SealKey>,
    /// The pepper of API token hashes (R-AT-1), and the previous secret's during a rotation.
    api_token_pepper: hmac::Key,
    previous_api_token_pepper: Option<hmac::Key>,
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKeys(***)")
    }
}

/// HKDF output length marker for a 32-byte HMAC-SHA256 key.
struct Len32;
impl hkdf::KeyType for Len32 {
    fn len(&self) -> usize {
        32
    }
}

fn derive(prk: &hkdf::Prk, purpose: &'static [u8]) -> hmac::Key {
    hmac::Key::new(hmac::HMAC_SHA256, &derive_bytes(prk, purpose))
}

fn derive_bytes(prk: &hkdf::Prk, purpose: &'static [u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let info = [purpose];
    // `expand`/`fill` only fail for lengths over 255*32 bytes; 32 is fixed, so the fallback
    // (an all-zero key) is unreachable — kept to avoid a panic path on a request.
    if let Ok(okm) = prk.expand(&info, Len32) {
        let _ = okm.fill(&mut out);
    }
    out
}

/// 32 bytes of HKDF-SHA256 output from `secret` for `info` (its parts concatenated), with the
/// same extract step as the subkeys above: for keys built outside this struct, such as the
/// identity assertion's signing keys (one per rotation period, so `info` holds the period).
/// Every replica with the same secret derives the same bytes.
pub fn derive_secret_bytes(secret: &str, info: &[&[u8]]) -> [u8; 32] {
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, SALT).extract(secret.as_bytes());
    let mut out = [0u8; 32];
    // Fails only for lengths over 255*32 bytes; 32 is fixed (see `derive_bytes`).
    if let Ok(okm) = prk.expand(info, Len32) {
        let _ = okm.fill(&mut out);
    }
    out
}

/// HKDF info of the refresh-token encryption key: its own label, so the AES key shares no
/// bytes with any HMAC subkey (RFC 8725 §3.12 key separation).
const REFRESH_TOKEN_INFO: &[u8] = b"idp-refresh-token/aes-256-gcm";

fn seal_key(prk: &hkdf::Prk) -> Option<SealKey> {
    SealKey::new(&derive_bytes(prk, REFRESH_TOKEN_INFO))
}

impl SessionKeys {
    /// Derive every subkey from the configured secret.
    pub fn derive(secret: &str) -> Self {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, SALT).extract(secret.as_bytes());
        SessionKeys {
            session_jwt: derive(&prk, b"session+jwt"),
            previous_session_jwt: None,
            tx_binding: derive(&prk, b"oidc-tx-binding"),
            csrf: derive(&prk, b"csrf-token"),
            dpop_nonce: derive(&prk, b"dpop-nonce"),
            refresh_token: seal_key(&prk),
            previous_refresh_token: None,
            api_token_pepper: derive(&prk, b"api-token-pepper"),
            previous_api_token_pepper: None,
        }
    }

    /// Also accept sessions signed with `previous` (verification only, R-CFG-1).
    pub fn with_previous(mut self, previous: &str) -> Self {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, SALT).extract(previous.as_bytes());
        self.previous_session_jwt = Some(derive(&prk, b"session+jwt"));
        self.previous_refresh_token = seal_key(&prk);
        self.previous_api_token_pepper = Some(derive(&prk, b"api-token-pepper"));
        self
    }

    /// Encrypt an IdP refresh token for storage with session `session_id` (current key).
    pub fn seal_refresh_token(&self, token: &str, session_id: &str) -> Result<String, SealError> {
        self.refresh_token
            .as_ref()
            .ok_or(SealError::Seal)?
            .seal(token, session_id)
    }

    /// Decrypt a stored refresh token of session `session_id`: current key, then the previous
    /// secret's during a rotation.
    pub fn open_refresh_token(&self, sealed: &str, session_id: &str) -> Result<String, SealError> {
        let keys = [&self.refresh_token, &self.previous_refresh_token];
        for key in keys.into_iter().flatten() {
            if let Ok(t) = key.open(sealed, session_id) {
                return Ok(t);
            }
        }
        Err(SealError::Open)
    }

    /// The previous secret's session key, if a rotation is in progress.
    pub fn previous_session_jwt(&self) -> Option<&hmac::Key> {
        self.previous_session_jwt.as_ref()
    }

    /// Key for the HS256 session JWT.
    pub fn session_jwt(&self) -> &hmac::Key {
        &self.session_jwt
    }

    /// The session-JWT keys as a verifier key source: current, plus previous during a rotation.
    pub fn session_jwt_keys(&self) -> HmacKeys<'_> {
        HmacKeys {
            current: &self.session_jwt,
            previous: self.previous_session_jwt.as_ref(),
        }
    }

    /// Key for the session's `csrf_h`: HMAC of the CSRF token (R-CSRF-2).
    pub fn csrf(&self) -> &hmac::Key {
        &self.csrf
    }

    /// Key for hashing the login-transaction browser binding.
    pub fn tx_binding(&self) -> &hmac::Key {
        &self.tx_binding
    }

    /// Key for the stateless DPoP server nonces (R-DP check 12): every replica derives the
    /// same key, so a nonce issued by one is accepted by all.
    pub fn dpop_nonce(&self) -> &hmac::Key {
        &self.dpop_nonce
    }

    /// The pepper API tokens are hashed with (R-AT-1): new tokens use the current one; during
    /// a signing-secret rotation tokens hashed with the previous one still verify.
    pub fn api_token_pepper(&self) -> crate::apitoken::Pepper<'_> {
        crate::apitoken::Pepper {
            current: &self.api_token_pepper,
            previous: self.previous_api_token_pepper.as_ref(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Labelled bytes: deterministic, and different for another label, info or secret.
    #[test]
    fn derived_secret_bytes_are_separated() {
        let s = "0123456789abcdef0123456789abcdef";
        let a = derive_secret_bytes(s, &[b"label-a", b"1"]);
        assert_eq!(a, derive_secret_bytes(s, &[b"label-a", b"1"]));
        assert_ne!(a, derive_secret_bytes(s, &[b"label-b", b"1"]));
        assert_ne!(a, derive_secret_bytes(s, &[b"label-a", b"2"]));
        assert_ne!(
            a,
            derive_secret_bytes("0123456789abcdef0123456789abcdeX", &[b"label-a", b"1"])
        );
        // Not the session key's bytes either.
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, SALT).extract(s.as_bytes());
        assert_ne!(derive_secret_bytes(s, &[b"session+jwt"]), [0u8; 32]);
        assert_eq!(
            derive_secret_bytes(s, &[b"session+jwt"]),
            derive_bytes(&prk, b"session+jwt")
        );
        assert_ne!(a, derive_bytes(&prk, b"session+jwt"));
    }

    #[test]
    fn r_sj_5_subkeys_differ_per_purpose_and_secret() {
        let k = SessionKeys::derive("0123456789abcdef0123456789abcdef");
        let a = hmac::sign(k.session_jwt(), b"x");
        let b = hmac::sign(k.tx_binding(), b"x");
        assert_ne!(a.as_ref(), b.as_ref());
        let others = [k.csrf(), k.dpop_nonce(), k.api_token_pepper().current]
            .map(|key| hmac::sign(key, b"x"));
        for o in &others {
            assert_ne!(o.as_ref(), a.as_ref());
            assert_ne!(o.as_ref(), b.as_ref());
        }
        assert_ne!(others[0].as_ref(), others[1].as_ref());
        assert_ne!(others[2].as_ref(), others[0].as_ref());
        assert_ne!(others[2].as_ref(), others[1].as_ref());
        let k2 = SessionKeys::derive("0123456789abcdef0123456789abcdeX");
        assert_ne!(hmac::sign(k2.session_jwt(), b"x").as_ref(), a.as_ref());
        // deterministic: restarts keep sessions valid
        let k3 = SessionKeys::derive("0123456789abcdef0123456789abcdef");
        assert_eq!(hmac::sign(k3.session_jwt(), b"x").as_ref(), a.as_ref());
    }
}
