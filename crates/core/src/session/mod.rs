//! The gateway session: HKDF subkeys, the HS256 `session+jwt`, and the cookies that carry it.
//!
//! Shaped for the three-tier model (fingerprint, CSRF, DPoP) that a later release adds: the
//! claims and cookie set are one struct each, so new members slot in without new plumbing.

pub mod cookies;
pub mod dpop;
pub mod keys;
pub mod sealed;
pub mod token;

pub use cookies::{CookieNames, Cookies, DuplicateCookie};
pub use dpop::{
    CheckedProof, DpopError, Expected, NonceKeys, check_proof, expected_htu, normalize_htu,
};
pub use keys::SessionKeys;
pub use sealed::SealError;
pub use token::{SESSION_TTL, SessionClaims, SessionError, csrf_hash, fingerprint_hash};
