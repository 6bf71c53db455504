//! Signing the command-line tool in through the browser, with any IdP: the rules of the two
//! grants that end in a freshly minted API token.
//!
//! - **Loopback redirect** (RFC 8252 §7.3 with PKCE, RFC 7636): the CLI listens on a loopback
//!   IP literal, sends the person's browser to Portcullis with a `code_challenge`, and gets a
//!   one-time code at its loopback address after the person approves; it redeems the code
//!   with the `code_verifier`. An intercepted code is useless without the verifier.
//! - **Device authorization** (RFC 8628): the CLI gets a `device_code` (its secret) and a short
//!   `user_code` the person types on the account page of a browser where they are signed in;
//!   the CLI polls until the person approves or denies, or the code expires.
//!
//! Codes and device codes are stored only as their SHA-256 ([`grant_id`]): a copy of the
//! database does not let anyone redeem them. Nothing here does I/O; callers pass `now`.

use aws_lc_rs::digest;
use subtle::ConstantTimeEq;

use crate::oidc::pkce::{self, RandomError};

/// Seconds a loopback authorization code may be redeemed after approval (RFC 6749 §4.1.2
/// recommends at most ten minutes; the CLI redeems it at once).
pub const CODE_TTL: i64 = 60;
/// Seconds a device code lives (RFC 8628 §3.2 `expires_in`).
pub const DEVICE_TTL: i64 = 600;
/// Seconds the CLI waits between polls at first (RFC 8628 §3.2 `interval`, default 5).
pub const POLL_INTERVAL: i64 = 5;
/// What `slow_down` adds to the interval (RFC 8628 §3.5).
pub const SLOW_DOWN_STEP: i64 = 5;
/// The interval never grows beyond this.
pub const MAX_POLL_INTERVAL: i64 = 60;
/// Longest machine name a CLI may announce (it becomes part of the token's name).
pub const MAX_MACHINE_CHARS: usize = 40;
/// Longest `state` the CLI may send (ours are 43 characters).
pub const MAX_STATE: usize = 128;
/// Longest loopback redirect URI.
pub const MAX_REDIRECT_URI: usize = 200;

/// RFC 8628 §6.1: consonants only (no vowels: no words), no easily confused letters.
const USER_CODE_ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
/// Characters of a user code: 20^8 ≈ 2^34.6 codes, against a guessing budget of a few tries a
/// minute per signed-in person over a ten-minute lifetime (§5.1).
pub const USER_CODE_LEN: usize = 8;

/// Why a CLI request was refused. The messages are shown to the person (consent page) or
/// returned as `error_description`, so they say what is wrong in plain words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error(
        "redirect_uri must be http://127.0.0.1:PORT/… or http://[::1]:PORT/… (a loopback IP literal with a port, no query or fragment)"
    )]
    RedirectUri,
    #[error("code_challenge must be an S256 challenge (43 base64url characters)")]
    Challenge,
    #[error("code_challenge_method must be S256")]
    ChallengeMethod,
    #[error("state must be 1 to {MAX_STATE} characters from A–Z, a–z, 0–9, '-', '.', '_', '~'")]
    State,
    #[error("the machine name must be 1 to {MAX_MACHINE_CHARS} printable characters")]
    Machine,
    #[error("the expiry must be between 1 and {} days", crate::apitoken::MAX_EXPIRY_DAYS)]
    Expiry,
}

/// A loopback redirect URI as RFC 8252 §7.3 and §8.3 allow it: `http`, the loopback IP
/// literal `127.0.0.1` or `[::1]` (not `localhost`, which a hostile resolver or hosts file could
/// point elsewhere), an explicit port, no user info, query or fragment.
pub fn loopback_redirect(raw: &str) -> Result<url::Url, RequestError> {
    if raw.is_empty() || raw.len() > MAX_REDIRECT_URI {
        return Err(RequestError::RedirectUri);
    }
    let u = url::Url::parse(raw).map_err(|_| RequestError::RedirectUri)?;
    let loopback_literal = match u.host() {
        Some(url::Host::Ipv4(ip)) => ip == std::net::Ipv4Addr::LOCALHOST,
        Some(url::Host::Ipv6(ip)) => ip == std::net::Ipv6Addr::LOCALHOST,
        _ => false,
    };
    if u.scheme() != "http"
        || !loopback_literal
        || u.port().is_none()
        || !u.username().is_empty()
        || u.password().is_some()
        || u.query().is_some()
        || u.fragment().is_some()
        // The parser normalises; what the CLI sent must already be normal, so the URI the
        // code is bound to is exactly the one redeemed with.
        || u.as_str() != raw
    {
        return Err(RequestError::RedirectUri);
    }
    Ok(u)
}

/// RFC 7636 §4.1 unreserved characters.
fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// An S256 `code_challenge`: exactly 43 base64url characters (a SHA-256 digest).
pub fn check_challenge(challenge: &str, method: &str) -> Result<(), RequestError> {
    // `plain` would hand the verifier to whoever sees the authorization request.
    if method != pkce::CODE_CHALLENGE_METHOD {
        return Err(RequestError::ChallengeMethod);
    }
    let b64url = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
    if challenge.len() != 43 || !challenge.bytes().all(b64url) {
        return Err(RequestError::Challenge);
    }
    Ok(())
}

/// The CLI's `state`: echoed back on the loopback redirect, so kept to characters that need
/// no escaping anywhere.
pub fn check_state(state: &str) -> Result<(), RequestError> {
    if state.is_empty() || state.len() > MAX_STATE || !state.bytes().all(unreserved) {
        return Err(RequestError::State);
    }
    Ok(())
}

/// The machine name a CLI announces, trimmed; it is shown on the consent page (escaped) and
/// becomes the token's name, so it is short and printable.
pub fn check_machine(name: &str) -> Result<String, RequestError> {
    let n = name.trim();
    if n.is_empty() || n.chars().count() > MAX_MACHINE_CHARS || n.chars().any(char::is_control)
    {
        return Err(RequestError::Machine);
    }
    Ok(n.to_string())
}

/// The name of a token minted for the CLI on `machine`.
pub fn token_name(machine: &str) -> String {
    format!("portcullis CLI on {machine}")
}

/// A requested expiry in days, `None` for none.
pub fn check_expiry(days: Option<i64>) -> Result<Option<i64>, RequestError> {
    match days {
        Some(d) if !(1..=crate::apitoken::MAX_EXPIRY_DAYS).contains(&d) => {
            Err(RequestError::Expiry)
        }
        d => Ok(d),
    }
}

/// PKCE verification (RFC 7636 §4.6): the verifier has the §4.1 shape and its S256 equals the
/// stored challenge, compared in constant time.
pub fn verifier_matches(verifier: &str, challenge: &str) -> bool {
    if !(43..=128).contains(&verifier.len()) || !verifier.bytes().all(unreserved) {
        return false;
    }
    pkce::pkce_challenge(verifier)
        .as_bytes()
        .ct_eq(challenge.as_bytes())
        .into()
}

/// What is stored for a code or device code: hex SHA-256 of it. The codes are 256-bit random
/// values, so a fast hash suffices (no guessing to slow down).
pub fn grant_id(secret: &str) -> String {
    let d = digest::digest(&digest::SHA256, secret.as_bytes());
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// A new one-time secret (loopback code or device code): 32 random bytes, base64url.
pub fn new_secret() -> Result<String, RandomError> {
    pkce::random_token()
}

/// A new user code, `USER_CODE_LEN` uniformly random letters of the §6.1 alphabet (rejection
/// sampling keeps them uniform), without the display dash.
pub fn new_user_code() -> Result<String, RandomError> {
    let mut out = String::with_capacity(USER_CODE_LEN);
    let mut buf = [0u8; 16];
    while out.len() < USER_CODE_LEN {
        aws_lc_rs::rand::fill(&mut buf).map_err(|_| RandomError)?;
        for b in buf {
            // 240 = 12 × 20: bytes above it would favour the first letters.
            if b < 240 && out.len() < USER_CODE_LEN {
                out.push(char::from(USER_CODE_ALPHABET[usize::from(b % 20)]));
            }
        }
    }
    Ok(out)
}

/// `BCDFGHJK` → `BCDF-GHJK`: easier to read out and type.
pub fn display_user_code(code: &str) -> String {
    let (a, b) = code.split_at(code.len().min(USER_CODE_LEN / 2));
    format!("{a}-{b}")
}

/// A typed user code in canonical form: case-insensitive, dashes and spaces ignored (§6.1);
/// `None` when it cannot be one.
pub fn normalize_user_code(typed: &str) -> Option<String> {
    if typed.len() > 32 {
        return None;
    }
    let code: String = typed
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (code.len() == USER_CODE_LEN && code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b)))
        .then_some(code)
}

/// Where a device grant stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceStatus {
    Pending,
    Approved,
    Denied,
}

impl DeviceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceStatus::Pending => "pending",
            DeviceStatus::Approved => "approved",
            DeviceStatus::Denied => "denied",
        }
    }

    pub fn parse(s: &str) -> Option<DeviceStatus> {
        match s {
            "pending" => Some(DeviceStatus::Pending),
            "approved" => Some(DeviceStatus::Approved),
            "denied" => Some(DeviceStatus::Denied),
            _ => None,
        }
    }
}

/// What a poll of a device grant decides (RFC 8628 §3.5), and what the store does with the
/// row: `Approved`, `Denied` and `Expired` end the grant (the row is deleted: one answer
/// each); `Pending` records the poll.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PollVerdict {
    /// `authorization_pending`, polling at `interval`.
    Pending { interval: i64 },
    /// `slow_down`: polled sooner than the interval; the new interval is longer.
    SlowDown { interval: i64 },
    Approved,
    /// `access_denied`.
    Denied,
    /// `expired_token`.
    Expired,
}

impl PollVerdict {
    /// Whether the grant is over (its row goes).
    pub fn ends_grant(self) -> bool {
        matches!(
            self,
            PollVerdict::Approved | PollVerdict::Denied | PollVerdict::Expired
        )
    }
}

/// Judge one poll at `now` of a grant in `status`, last polled at `last_poll`, with its
/// current `interval`, expiring at `expires_at`. An approval is honoured even when the poll
/// came early (the client waited for a person, not for us).
pub fn judge_poll(
    status: DeviceStatus,
    last_poll: Option<i64>,
    interval: i64,
    expires_at: i64,
    now: i64,
) -> PollVerdict {
    if now > expires_at {
        return PollVerdict::Expired;
    }
    match status {
        DeviceStatus::Approved => PollVerdict::Approved,
        DeviceStatus::Denied => PollVerdict::Denied,
        DeviceStatus::Pending => match last_poll {
            Some(last) if now - last < interval => PollVerdict::SlowDown {
                interval: (interval + SLOW_DOWN_STEP).min(MAX_POLL_INTERVAL),
            },
            _ => PollVerdict::Pending { interval },
        },
    }
}

/// The loopback redirect carrying the code after approval (RFC 6749 §4.1.2).
pub fn redirect_with_code(redirect_uri: &url::Url, code: &str, state: &str) -> String {
    let mut u = redirect_uri.clone();
    u.query_pairs_mut()
        .append_pair("code", code)
        .append_pair("state", state);
    u.into()
}

/// The loopback redirect after the person said no (RFC 6749 §4.1.2.1 `access_denied`).
pub fn redirect_denied(redirect_uri: &url::Url, state: &str) -> String {
    let mut u = redirect_uri.clone();
    u.query_pairs_mut()
        .append_pair("error", "access_denied")
        .append_pair("state", state);
    u.into()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn rfc8252_only_loopback_ip_literals_with_a_port() {
        for ok in [
            "http://127.0.0.1:43123/callback",
            "http://[::1]:8080/cb",
            "http://127.0.0.1:1/",
        ] {
            assert!(loopback_redirect(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "http://localhost:8080/cb",       // §8.3: not a name
            "https://127.0.0.1:8080/cb",      // loopback is plain http
            "http://127.0.0.2:8080/cb",       // exactly the literal
            "http://127.0.0.1/cb",            // a port is required
            "http://evil.example:8080/cb",    // not loopback
            "http://127.0.0.1:80@evil.example/cb",
            "http://user@127.0.0.1:8080/cb",  // no user info
            "http://127.0.0.1:8080/cb?x=1",   // we add the query
            "http://127.0.0.1:8080/cb#frag",  // no fragment
            "http://127.0.0.1:8080/a/../cb",  // not normalised
            "http://0x7f.1:8080/cb",          // another spelling of 127.0.0.1
            "javascript:alert(1)",
            "http://[::ffff:127.0.0.1]:80/cb",
        ] {
            assert_eq!(
                loopback_redirect(bad),
                Err(RequestError::RedirectUri),
                "{bad}"
            );
        }
        assert!(loopback_redirect(&format!("http://127.0.0.1:1/{}", "a".repeat(300))).is_err());
    }

    #[test]
    fn rfc7636_challenge_state_and_verifier() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert_eq!(check_challenge(challenge, "S256"), Ok(()));
        assert_eq!(
            check_challenge(challenge, "plain"),
            Err(RequestError::ChallengeMethod)
        );
        assert_eq!(
            check_challenge("short", "S256"),
            Err(RequestError::Challenge)
        );
        assert_eq!(
            check_challenge(&format!("{}=", &challenge[..42]), "S256"),
            Err(RequestError::Challenge)
        );
        assert!(verifier_matches(verifier, challenge));
        assert!(!verifier_matches(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXK",
            challenge
        ));
        assert!(!verifier_matches("tooshort", &pkce::pkce_challenge("tooshort")));
        let spaced = format!("{verifier} ");
        assert!(!verifier_matches(&spaced, &pkce::pkce_challenge(&spaced)));
        assert_eq!(check_state("abc-._~XYZ09"), Ok(()));
        for bad in ["", "a b", "<script>", &"a".repeat(MAX_STATE + 1)] {
            assert_eq!(check_state(bad), Err(RequestError::State), "{bad}");
        }
    }

    #[test]
    fn machine_names_and_expiry() {
        assert_eq!(check_machine("  build-box "), Ok("build-box".into()));
        assert_eq!(check_machine(""), Err(RequestError::Machine));
        assert_eq!(check_machine("a\u{7}b"), Err(RequestError::Machine));
        assert_eq!(
            check_machine(&"x".repeat(MAX_MACHINE_CHARS + 1)),
            Err(RequestError::Machine)
        );
        // Fits a token name.
        assert!(
            token_name(&"é".repeat(MAX_MACHINE_CHARS)).chars().count()
                <= crate::apitoken::MAX_NAME_CHARS
        );
        assert_eq!(check_expiry(None), Ok(None));
        assert_eq!(check_expiry(Some(90)), Ok(Some(90)));
        assert_eq!(check_expiry(Some(0)), Err(RequestError::Expiry));
        assert_eq!(check_expiry(Some(366)), Err(RequestError::Expiry));
    }

    #[test]
    fn rfc8628_user_codes() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let c = new_user_code().unwrap();
            assert_eq!(c.len(), USER_CODE_LEN);
            assert!(c.bytes().all(|b| USER_CODE_ALPHABET.contains(&b)));
            assert_eq!(normalize_user_code(&display_user_code(&c)), Some(c.clone()));
            assert_eq!(normalize_user_code(&c.to_lowercase()), Some(c.clone()));
            seen.insert(c);
        }
        assert!(seen.len() > 190, "random");
        assert_eq!(display_user_code("BCDFGHJK"), "BCDF-GHJK");
        assert_eq!(
            normalize_user_code(" bcdf ghjk "),
            Some("BCDFGHJK".into())
        );
        for bad in ["BCDFGHJ", "BCDFGHJKL", "ABCDEFGH", "BCDF-GHJ1", "", &"B".repeat(40)] {
            assert_eq!(normalize_user_code(bad), None, "{bad}");
        }
    }

    #[test]
    fn rfc8628_poll_verdicts() {
        use DeviceStatus::*;
        use PollVerdict as V;
        let exp = 1600;
        assert_eq!(judge_poll(Pending, None, 5, exp, 1000), V::Pending { interval: 5 });
        assert_eq!(judge_poll(Pending, Some(1000), 5, exp, 1005), V::Pending { interval: 5 });
        assert_eq!(
            judge_poll(Pending, Some(1000), 5, exp, 1004),
            V::SlowDown { interval: 10 }
        );
        assert_eq!(
            judge_poll(Pending, Some(1000), MAX_POLL_INTERVAL, exp, 1001),
            V::SlowDown { interval: MAX_POLL_INTERVAL }
        );
        assert_eq!(judge_poll(Approved, Some(1000), 5, exp, 1001), V::Approved);
        assert_eq!(judge_poll(Denied, None, 5, exp, 1001), V::Denied);
        assert_eq!(judge_poll(Approved, None, 5, exp, exp + 1), V::Expired);
        assert_eq!(judge_poll(Pending, None, 5, exp, exp), V::Pending { interval: 5 });
        assert!(V::Approved.ends_grant() && V::Denied.ends_grant() && V::Expired.ends_grant());
        assert!(!V::SlowDown { interval: 10 }.ends_grant());
    }

    #[test]
    fn redirects_carry_code_and_state() {
        let u = loopback_redirect("http://127.0.0.1:5000/cb").unwrap();
        assert_eq!(
            redirect_with_code(&u, "c0de", "st"),
            "http://127.0.0.1:5000/cb?code=c0de&state=st"
        );
        assert_eq!(
            redirect_denied(&u, "st"),
            "http://127.0.0.1:5000/cb?error=access_denied&state=st"
        );
        assert_eq!(grant_id("abc").len(), 64);
        assert_ne!(grant_id("abc"), grant_id("abd"));
    }
}
