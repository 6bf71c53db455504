//! API tokens (R-AT): the format, minting, and the one verification function.
//!
//! A token is `pcs_<id>_<secret>`: a recognisable prefix (secret scanners and people can tell
//! it apart), a 12-character base62 id that is stored in the clear and used for the lookup,
//! and a 43-character base62 encoding of 32 CSPRNG bytes. Only `HMAC-SHA256(pepper, secret)`
//! is stored; the pepper is an HKDF subkey of the signing secret
//! ([`crate::session::SessionKeys::api_token_pepper`]), so a copy of the database alone does
//! not let anyone check guesses.
//!
//! Verification always computes the HMAC, whether or not the id was found (a dummy hash
//! stands in for an unknown id), and compares in constant time: an unknown id and a wrong
//! secret cost the same work and get the same answer (R-AT-2).

use aws_lc_rs::hmac;
use subtle::ConstantTimeEq;

use crate::oidc::pkce::RandomError;

/// Every Portcullis API token starts with this.
pub const PREFIX: &str = "pcs_";
/// Characters of the id part.
pub const ID_LEN: usize = 12;
/// Characters of the secret part: 32 bytes in base62 (62^43 > 2^256).
pub const SECRET_LEN: usize = 43;
/// Length of a whole token.
pub const TOKEN_LEN: usize = PREFIX.len() + ID_LEN + 1 + SECRET_LEN;
/// Bytes of a stored hash (HMAC-SHA256).
pub const HASH_LEN: usize = 32;
/// Longest expiry a person may choose, in days.
pub const MAX_EXPIRY_DAYS: i64 = 365;
/// Live (unrevoked, unexpired) tokens one person may hold.
pub const MAX_TOKENS_PER_USER: i64 = 50;
/// Longest token name, in characters.
pub const MAX_NAME_CHARS: usize = 64;

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A token split into its parts (borrowed from the presented text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Presented<'a> {
    pub id: &'a str,
    pub secret: &'a str,
}

/// Parse a presented token strictly: prefix, exact lengths, base62 only. Anything else is not
/// a Portcullis token (`None`).
pub fn parse(token: &str) -> Option<Presented<'_>> {
    let rest = token.strip_prefix(PREFIX)?;
    if token.len() != TOKEN_LEN {
        return None;
    }
    let (id, secret) = (rest.get(..ID_LEN)?, rest.get(ID_LEN + 1..)?);
    if rest.as_bytes().get(ID_LEN) != Some(&b'_') {
        return None;
    }
    let base62 = |s: &str| s.bytes().all(|b| b.is_ascii_alphanumeric());
    (base62(id) && base62(secret) && secret.len() == SECRET_LEN).then_some(Presented { id, secret })
}

/// Whether `id` has the shape of a token id (for ids in URLs).
pub fn is_id(id: &str) -> bool {
    id.len() == ID_LEN && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The keys tokens are hashed with: the current pepper, and during a signing-secret rotation
/// the previous one (verification only), so tokens made before the rotation keep working.
pub struct Pepper<'a> {
    pub current: &'a hmac::Key,
    pub previous: Option<&'a hmac::Key>,
}

/// `HMAC-SHA256(pepper, secret)`: what is stored for a token.
pub fn hash(pepper: &hmac::Key, secret: &str) -> [u8; HASH_LEN] {
    let tag = hmac::sign(pepper, secret.as_bytes());
    let mut out = [0u8; HASH_LEN];
    out.copy_from_slice(tag.as_ref());
    out
}

/// Check `secret` against the stored hash of the token its id names; `stored` is `None`
/// when no token has that id. Both cases compute the HMAC(s) and a constant-time comparison.
pub fn verify(pepper: &Pepper<'_>, secret: &str, stored: Option<&[u8]>) -> bool {
    verify_with(
        |key_index| match (key_index, pepper.previous) {
            (0, _) => Some(hash(pepper.current, secret)),
            (_, Some(prev)) => Some(hash(prev, secret)),
            _ => None,
        },
        stored,
    )
}

/// The structure of [`verify`], with the HMAC as a parameter so a test can see that it runs
/// for an unknown id too. `mac(i)` is the HMAC of the presented secret under key `i` (0: the
/// current pepper, 1: the previous one, `None` if there is none).
fn verify_with(mac: impl Fn(usize) -> Option<[u8; HASH_LEN]>, stored: Option<&[u8]>) -> bool {
    // An unknown id is compared against a hash no secret produces in practice; the result is
    // discarded by `found` below, but the work is the same.
    let dummy = [0u8; HASH_LEN];
    let found = stored.is_some_and(|s| s.len() == HASH_LEN);
    let against = match stored {
        Some(s) if s.len() == HASH_LEN => s,
        _ => &dummy[..],
    };
    let mut ok = subtle::Choice::from(0u8);
    for i in 0..2 {
        if let Some(m) = mac(i) {
            ok |= m.ct_eq(against);
        }
    }
    found && bool::from(ok)
}

/// A freshly made token: the plaintext (shown once, never stored) and what is stored.
pub struct Minted {
    pub id: String,
    /// The whole token, `pcs_<id>_<secret>`.
    pub plaintext: String,
    pub hash: [u8; HASH_LEN],
}

impl std::fmt::Debug for Minted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Minted")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Make a new token hashed with `pepper`.
pub fn mint(pepper: &hmac::Key) -> Result<Minted, RandomError> {
    let id = random_base62(ID_LEN)?;
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| RandomError)?;
    let secret = base62_fixed(&bytes, SECRET_LEN);
    let hash = hash(pepper, &secret);
    Ok(Minted {
        plaintext: format!("{PREFIX}{id}_{secret}"),
        id,
        hash,
    })
}

/// `len` uniformly random base62 characters (rejection sampling: bytes ≥ 248 are skipped so
/// every character is equally likely).
fn random_base62(len: usize) -> Result<String, RandomError> {
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 32];
    while out.len() < len {
        aws_lc_rs::rand::fill(&mut buf).map_err(|_| RandomError)?;
        for b in buf {
            if b < 248 && out.len() < len {
                out.push(char::from(ALPHABET[usize::from(b % 62)]));
            }
        }
    }
    Ok(out)
}

/// `bytes` as a big-endian number in base62, left-padded to `width` digits (`width` must hold
/// the number: 43 digits hold 32 bytes).
fn base62_fixed(bytes: &[u8], width: usize) -> String {
    let mut num = bytes.to_vec();
    let mut out = vec![ALPHABET[0]; width];
    for slot in out.iter_mut().rev() {
        let mut rem = 0u32;
        for b in num.iter_mut() {
            let acc = (rem << 8) | u32::from(*b);
            *b = (acc / 62) as u8;
            rem = acc % 62;
        }
        *slot = ALPHABET[rem as usize];
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Why a requested token was refused (the person's own input).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("give the token a name of 1 to {MAX_NAME_CHARS} characters")]
    Name,
    #[error("the expiry must be between 1 and {MAX_EXPIRY_DAYS} days")]
    Expiry,
}

/// Validate a requested name (trimmed; printable, at most [`MAX_NAME_CHARS`]) and expiry in
/// days (`None`: never expires); returns the name to store and the absolute expiry.
pub fn check_request(
    name: &str,
    expires_in_days: Option<i64>,
    now: i64,
) -> Result<(String, Option<i64>), RequestError> {
    let name = name.trim();
    if name.is_empty()
        || name.chars().count() > MAX_NAME_CHARS
        || name.chars().any(char::is_control)
    {
        return Err(RequestError::Name);
    }
    let expires_at = match expires_in_days {
        None => None,
        Some(d) if (1..=MAX_EXPIRY_DAYS).contains(&d) => Some(now + d * 86_400),
        Some(_) => return Err(RequestError::Expiry),
    };
    Ok((name.to_string(), expires_at))
}

/// The token in an `Authorization` header value, if it is `Bearer pcs_…` (the scheme is
/// case-insensitive, RFC 9110 §11.1). Other bearer values (the app's own tokens, JWTs) are
/// not Portcullis's: `None`.
pub fn from_authorization(value: &[u8]) -> Option<&str> {
    let v = std::str::from_utf8(value).ok()?;
    let (scheme, rest) = v.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let t = rest.trim();
    t.starts_with(PREFIX).then_some(t)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::cell::Cell;

    use super::*;

    fn key(b: &[u8]) -> hmac::Key {
        hmac::Key::new(hmac::HMAC_SHA256, b)
    }

    #[test]
    fn r_at_1_format_and_round_trip() {
        let k = key(b"pepper");
        let m = mint(&k).unwrap();
        assert_eq!(m.plaintext.len(), TOKEN_LEN);
        assert!(m.plaintext.starts_with("pcs_"));
        let p = parse(&m.plaintext).unwrap();
        assert_eq!(p.id, m.id);
        assert!(is_id(p.id));
        assert_eq!(hash(&k, p.secret), m.hash);
        let pepper = Pepper {
            current: &k,
            previous: None,
        };
        assert!(verify(&pepper, p.secret, Some(&m.hash)));
        // Another pepper (another deployment's secret) does not verify it.
        let other = key(b"other");
        let wrong = Pepper {
            current: &other,
            previous: None,
        };
        assert!(!verify(&wrong, p.secret, Some(&m.hash)));
        // ... unless it is the previous one during a rotation.
        let rotated = Pepper {
            current: &other,
            previous: Some(&k),
        };
        assert!(verify(&rotated, p.secret, Some(&m.hash)));
        // Two tokens differ.
        assert_ne!(mint(&k).unwrap().plaintext, m.plaintext);
    }

    #[test]
    fn r_at_1_malformed_tokens_are_not_tokens() {
        let k = key(b"pepper");
        let t = mint(&k).unwrap().plaintext;
        assert!(parse(&t).is_some());
        for bad in [
            String::new(),
            "pcs_".into(),
            t[..t.len() - 1].to_string(),
            format!("{t}x"),
            t.replacen("pcs_", "pct_", 1),
            t.replacen("pcs_", "PCS_", 1),
            format!("{}-{}", &t[..16], &t[17..]),
            format!("{}é{}", &t[..20], &t[22..]),
            format!("{}+{}", &t[..30], &t[31..]),
        ] {
            assert!(parse(&bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn base62_is_fixed_width() {
        assert_eq!(base62_fixed(&[0u8; 32], 43), "0".repeat(43));
        let max = base62_fixed(&[0xffu8; 32], 43);
        assert_eq!(max.len(), 43);
        assert_ne!(&max[..1], "0", "2^256-1 needs all 43 digits");
        assert_eq!(base62_fixed(&[0, 61], 3), "00z");
        assert_eq!(base62_fixed(&[0, 62], 3), "010");
    }

    /// R-AT-2: the HMAC runs, and is compared, whether or not the id is known.
    #[test]
    fn r_at_2_unknown_id_and_wrong_secret_do_the_same_work() {
        let calls = Cell::new(0);
        let mac = |i: usize| {
            calls.set(calls.get() + 1);
            (i == 0).then_some([7u8; HASH_LEN])
        };
        // Unknown id: the HMAC is computed against the dummy, and the answer is no.
        assert!(!verify_with(mac, None));
        let unknown = calls.replace(0);
        // Known id, wrong secret.
        assert!(!verify_with(mac, Some(&[8u8; HASH_LEN])));
        let wrong = calls.replace(0);
        // Known id, right secret.
        assert!(verify_with(mac, Some(&[7u8; HASH_LEN])));
        let right = calls.replace(0);
        assert_eq!((unknown, wrong, right), (2, 2, 2));
        // A stored value of another length never matches (and still costs the same).
        assert!(!verify_with(mac, Some(&[7u8; 16])));
        assert_eq!(calls.get(), 2);
        // Even an all-zero secret hash does not match the dummy for an unknown id.
        assert!(!verify_with(|_| Some([0u8; HASH_LEN]), None));
    }

    #[test]
    fn requests_are_bounded() {
        assert_eq!(
            check_request("  laptop ", Some(30), 1000).unwrap(),
            ("laptop".to_string(), Some(1000 + 30 * 86_400))
        );
        assert_eq!(check_request("ci", None, 0).unwrap().1, None);
        assert_eq!(check_request(" ", None, 0), Err(RequestError::Name));
        assert_eq!(check_request("a\nb", None, 0), Err(RequestError::Name));
        assert_eq!(
            check_request(&"x".repeat(MAX_NAME_CHARS + 1), None, 0),
            Err(RequestError::Name)
        );
        assert!(check_request(&"é".repeat(MAX_NAME_CHARS), None, 0).is_ok());
        for d in [0, -1, MAX_EXPIRY_DAYS + 1] {
            assert_eq!(check_request("x", Some(d), 0), Err(RequestError::Expiry));
        }
        assert!(check_request("x", Some(MAX_EXPIRY_DAYS), 0).is_ok());
    }

    #[test]
    fn r_at_2_only_bearer_pcs_values_are_ours() {
        assert_eq!(from_authorization(b"Bearer pcs_abc"), Some("pcs_abc"));
        assert_eq!(from_authorization(b"bearer pcs_abc"), Some("pcs_abc"));
        assert_eq!(from_authorization(b"Bearer eyJhbGciOi.x.y"), None);
        assert_eq!(from_authorization(b"Basic pcs_abc"), None);
        assert_eq!(from_authorization(b"pcs_abc"), None);
        assert_eq!(from_authorization(b"Bearer \xff"), None);
    }
}
