//! DPoP proof checks (RFC 9449 §4.3; SECURITY.md §1.11, R-DP proof checks 1–13).
//!
//! [`check_proof`] runs every *stateless* check on a request's `DPoP` header and returns the
//! key thumbprint and `jti`. Two checks need state and stay with the caller:
//! - R-DP-10 replay: insert [`CheckedProof::replay_key`] into the shared cache (set-if-absent,
//!   TTL [`REPLAY_TTL`]); already present → [`DpopError::Replay`].
//! - R-DP-11 binding: [`CheckedProof::matches_jkt`] against the session's `cnf.jkt`; a
//!   mismatch → [`DpopError::Thumbprint`].
//!
//! The JWS itself goes through the one strict verifier (`jose::parse_compact`, `verify_jws`
//! with [`VerifyPolicy::dpop_proof`] and [`EmbeddedJwk`]); this module only maps its errors and
//! checks the claims. Every failure is a 401: `invalid_dpop_proof`, or `use_dpop_nonce` when
//! [`DpopError::is_nonce`] (RFC 9449 §7.1, §9; SECURITY.md §0.3).

use std::fmt;

use aws_lc_rs::{digest, hmac};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use subtle::ConstantTimeEq;

use super::keys::SessionKeys;
use crate::jose::claims::{required_integer_date, required_str};
use crate::jose::{
    ClaimError, CompactJws, EmbeddedJwk, JoseError, JwkError, VerifyPolicy, jwk_thumbprint_sha256,
    parse_compact, verify_jws,
};

/// Max size of a DPoP header value (R-DP check 1).
pub const MAX_PROOF_LEN: usize = 8192;
/// iat window (R-DP check 9): `now - IAT_PAST ≤ iat ≤ now + IAT_FUTURE` (RFC 9449 §11.1).
pub const IAT_PAST: i64 = 120;
/// See [`IAT_PAST`].
pub const IAT_FUTURE: i64 = 30;
/// How long a (jkt, jti) must be remembered for replay detection (≥ 180 s, R-DP-10).
pub const REPLAY_TTL: i64 = 180;
/// R-DP check 6: `jti` length in characters.
pub const JTI_MIN_CHARS: usize = 16;
/// See [`JTI_MIN_CHARS`].
pub const JTI_MAX_CHARS: usize = 128;
/// R-DP check 12: a server nonce changes every period and is accepted for two (60–120 s).
pub const NONCE_PERIOD: i64 = 60;

// A proof stays acceptable for at most IAT_PAST + IAT_FUTURE seconds after it is first seen,
// so a shorter replay memory would let it be replayed once forgotten.
const _: () = assert!(REPLAY_TTL >= IAT_PAST + IAT_FUTURE);

/// Why a DPoP proof was refused. Messages name the rule, never proof contents. The gateway
/// answers all of them with 401.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DpopError {
    /// R-DP check 1: no `DPoP` header.
    #[error("DPoP header missing")]
    Missing,
    /// R-DP check 1: more than one `DPoP` header.
    #[error("more than one DPoP header")]
    Multiple,
    /// R-DP check 1: over [`MAX_PROOF_LEN`] bytes.
    #[error("DPoP proof too large")]
    TooLarge,
    /// R-DP check 1: not UTF-8, not a single compact JWS, or not strict JSON.
    #[error("DPoP proof is not a compact JWS")]
    Malformed,
    /// R-DP checks 2–3 (and the verifier's header rules): the named header member (`typ`,
    /// `alg`, `jwk`, `crit`, `b64`, `kid`) is missing or not accepted.
    #[error("DPoP proof header `{0}` not accepted")]
    Header(&'static str),
    /// R-DP check 4: the `jwk` is not a public EC P-256 key with 32-byte coordinates on the
    /// curve.
    #[error("DPoP proof jwk: {0}")]
    Jwk(JwkError),
    /// R-DP check 5: not raw R‖S of 64 bytes, or does not verify with the `jwk`.
    #[error("DPoP proof signature invalid")]
    Signature,
    /// R-DP check 6: the named claim is missing, of the wrong JSON type or out of range.
    #[error("DPoP proof claim `{0}` missing or invalid")]
    Claim(&'static str),
    /// R-DP check 7: `htm` is not the request method.
    #[error("DPoP proof htm does not match the request method")]
    Method,
    /// R-DP check 8: `htu` is not the request URI.
    #[error("DPoP proof htu does not match the request URI")]
    Htu,
    /// R-DP check 9: `iat` outside the window.
    #[error("DPoP proof iat outside the accepted window")]
    Iat,
    /// R-DP check 12: server nonces are on and the proof's `nonce` is missing, stale or wrong.
    #[error("DPoP nonce missing or stale")]
    NonceRequired,
    /// R-DP check 10 (caller): the (jkt, jti) pair was seen before.
    #[error("DPoP proof replayed")]
    Replay,
    /// R-DP check 11 (caller): the proof key is not the session's `cnf.jkt`.
    #[error("DPoP key does not match the session")]
    Thumbprint,
}

impl DpopError {
    /// True when the answer is `use_dpop_nonce` (with a fresh `DPoP-Nonce`) rather than
    /// `invalid_dpop_proof` (RFC 9449 §9).
    pub fn is_nonce(&self) -> bool {
        matches!(self, DpopError::NonceRequired)
    }
}

/// What the request must match.
#[derive(Clone, Copy, Debug)]
pub struct Expected<'a> {
    /// The request method, compared case-sensitively with `htm` (RFC 9110 §9.1).
    pub method: &'a str,
    /// Public base URL + request path (no query), as produced by [`expected_htu`].
    pub htu: &'a str,
    /// Unix seconds (the gateway's clock).
    pub now: i64,
    /// `Some` when server nonces are on (R-DP check 12).
    pub nonce: Option<&'a NonceKeys>,
}

/// A proof that passed every stateless check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedProof {
    /// RFC 7638 SHA-256 thumbprint of the proof key, base64url (43 characters).
    pub jkt: String,
    pub jti: String,
    pub iat: i64,
}

impl CheckedProof {
    /// The replay-cache key for (jkt, jti) (R-DP-10): base64url SHA-256, 43 characters
    /// whatever the `jti`, so stored keys stay small. `jkt` has a fixed length, and the
    /// separator keeps (jkt, jti) pairs from colliding by concatenation.
    pub fn replay_key(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.replay_digest())
    }

    /// The raw 32 bytes behind [`CheckedProof::replay_key`], for in-memory caches (fixed
    /// size, no allocation per entry).
    pub fn replay_digest(&self) -> [u8; 32] {
        let mut ctx = digest::Context::new(&digest::SHA256);
        ctx.update(b"portcullis/dpop-jti/v1\0");
        ctx.update(self.jkt.as_bytes());
        ctx.update(b"\0");
        ctx.update(self.jti.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.finish().as_ref());
        out
    }

    /// R-DP check 11: whether the proof key is the session's `cnf.jkt` (constant time).
    pub fn matches_jkt(&self, cnf_jkt: &str) -> bool {
        self.jkt.as_bytes().ct_eq(cnf_jkt.as_bytes()).into()
    }
}

/// Check a request's `DPoP` header values (all of them, in order; none → `Missing`, more than
/// one → `Multiple`) against the request (R-DP checks 1–9, 12; 13: `ath` is ignored because
/// cookie sessions carry no access token the page could hash).
pub fn check_proof(values: &[&[u8]], expected: &Expected) -> Result<CheckedProof, DpopError> {
    // Check 1.
    let raw = match values {
        [] => return Err(DpopError::Missing),
        [one] => *one,
        _ => return Err(DpopError::Multiple),
    };
    if raw.len() > MAX_PROOF_LEN {
        return Err(DpopError::TooLarge);
    }
    let text = std::str::from_utf8(raw).map_err(|_| DpopError::Malformed)?;
    let jws = parse_compact(text, MAX_PROOF_LEN).map_err(|e| jose_error(e, None))?;
    // Checks 2–5: typ exactly dpop+jwt, alg ES256 only, public P-256 jwk (Jwk::parse refuses
    // private members, short/long coordinates and points off the curve; `usable_for(ES256)`
    // refuses every other key type), raw R‖S verified by aws-lc (r, s = 0 or ≥ n refused).
    let verified = verify_jws(&jws, EmbeddedJwk, &VerifyPolicy::dpop_proof())
        .map_err(|e| jose_error(e, Some(&jws)))?;
    let jkt = jwk_thumbprint_sha256(&verified.jwk);

    // Check 6: presence and types first, so a malformed proof is never reported as a mismatch.
    let c = &jws.claims;
    let jti = required_str(c, "jti").map_err(claim_error)?;
    let htm = required_str(c, "htm").map_err(claim_error)?;
    let htu = required_str(c, "htu").map_err(claim_error)?;
    // JSON integer only: strings, fractions and null are type errors (CVE-2026-25537 shape).
    let iat = required_integer_date(c, "iat").map_err(claim_error)?;
    if !(JTI_MIN_CHARS..=JTI_MAX_CHARS).contains(&jti.chars().count()) {
        return Err(DpopError::Claim("jti"));
    }
    // Check 7.
    if htm != expected.method {
        return Err(DpopError::Method);
    }
    // Check 8: `expected.htu` is already normalised by `expected_htu`.
    if normalize_htu(htu).as_deref() != Some(expected.htu) {
        return Err(DpopError::Htu);
    }
    // Check 9.
    let now = expected.now;
    if iat < now.saturating_sub(IAT_PAST) || iat > now.saturating_add(IAT_FUTURE) {
        return Err(DpopError::Iat);
    }
    // Check 12 last: `use_dpop_nonce` is only worth answering to an otherwise valid proof.
    if let Some(keys) = expected.nonce {
        // Any other type, like a wrong value, just earns a fresh nonce.
        let nonce = c.get("nonce").and_then(Value::as_str);
        if !nonce.is_some_and(|n| keys.accepts(n, now)) {
            return Err(DpopError::NonceRequired);
        }
    }
    Ok(CheckedProof {
        jkt,
        jti: jti.to_owned(),
        iat,
    })
}

/// Map a verifier error to the R-DP check it breaks. Exhaustive on purpose: a new verifier
/// error must be classified here.
fn jose_error(e: JoseError, jws: Option<&CompactJws>) -> DpopError {
    match e {
        JoseError::TooLarge => DpopError::TooLarge,
        JoseError::Jwe
        | JoseError::Segments
        | JoseError::Base64(_)
        | JoseError::Json(..)
        | JoseError::JwksTooLarge
        | JoseError::JwksTooManyKeys
        | JoseError::JwksJson(_)
        | JoseError::JwksShape => DpopError::Malformed,
        JoseError::Typ => DpopError::Header("typ"),
        JoseError::MissingAlg | JoseError::AlgNone | JoseError::AlgNotAllowed => {
            DpopError::Header("alg")
        }
        JoseError::HeaderMember => DpopError::Header("header"),
        JoseError::Crit => DpopError::Header("crit"),
        JoseError::B64 => DpopError::Header("b64"),
        JoseError::Kid | JoseError::UnknownKid => DpopError::Header("kid"),
        JoseError::JwkMissing => DpopError::Header("jwk"),
        JoseError::Jwk(j) => DpopError::Jwk(j),
        // A well-formed public key of another kind than ES256 needs (RSA, OKP, P-384).
        JoseError::NoUsableKey => DpopError::Jwk(wrong_key_kind(jws)),
        JoseError::EcdsaSignatureLength | JoseError::BadSignature => DpopError::Signature,
    }
}

/// `Crv` for an EC key on another curve, `Kty` for any other key type.
fn wrong_key_kind(jws: Option<&CompactJws>) -> JwkError {
    let kty = jws
        .and_then(|j| j.header.get("jwk"))
        .and_then(|k| k.get("kty"))
        .and_then(Value::as_str);
    if kty == Some("EC") {
        JwkError::Crv
    } else {
        JwkError::Kty
    }
}

/// Every claim failure names its claim.
fn claim_error(e: ClaimError) -> DpopError {
    match e {
        ClaimError::Missing { claim }
        | ClaimError::ClaimType { claim }
        | ClaimError::OutOfRange { claim } => DpopError::Claim(claim),
        ClaimError::IssuedAt | ClaimError::NotYetValid | ClaimError::Expired => DpopError::Iat,
        ClaimError::Issuer | ClaimError::Audience | ClaimError::Azp | ClaimError::Subject => {
            DpopError::Claim("claims")
        }
    }
}

/// The `htu` a proof for this request must carry: the public base URL (`https://gw.example.com`,
/// or with a path prefix such as `http://localhost:8080/base`) joined with the request path,
/// normalised by [`normalize_htu`]. `path` is the origin-form path as received, without query
/// (`Uri::path()`); `None` if it cannot be a request target (not starting with `/`, containing
/// `?` or `#`, or characters no URI may hold).
pub fn expected_htu(public_base: &url::Url, path: &str) -> Option<String> {
    if !path.starts_with('/') {
        return None;
    }
    let host = public_base.host_str()?;
    // `port()` is already None for the scheme's default port.
    let port = public_base
        .port()
        .map(|p| format!(":{p}"))
        .unwrap_or_default();
    let prefix = public_base.path().trim_end_matches('/');
    normalize_htu(&format!(
        "{}://{host}{port}{prefix}{path}",
        public_base.scheme()
    ))
}

/// Normalise an `htu` for comparison (R-DP check 8): RFC 3986 §6.2.2.1–6.2.2.2 and §6.2.3.
///
/// - Scheme and host lowercased; only `http`/`https`, no userinfo, host a DNS name or IP
///   literal in ASCII.
/// - Default port dropped (`:443` for https, `:80` for http), an empty port too; other ports
///   kept as decimal.
/// - Percent-encoded unreserved characters (`ALPHA / DIGIT / - . _ ~`) decoded; the hex of
///   the remaining percent-encodings uppercased.
/// - Empty path → `/`. Path case and trailing slashes are significant.
/// - Bytes RFC 3986 does not allow in a path but browsers send raw (`|`, `^`, `[`, `]`, `{`,
///   `}`, …, and UTF-8 above 0x7F) are taken as their percent-encoding, their only URI
///   spelling. Backslash (read as `/` by some servers), space and control characters make the
///   value invalid.
/// - Dot segments are **not** removed (§6.2.2.3 skipped): the request path is normalised by
///   this same function as received, so both sides agree, and clients resolve `.`/`..` before
///   sending anyway.
///
/// Returns `None` (never matches) for a value containing `?` or `#`, or that is not an
/// absolute http(s) URI.
pub fn normalize_htu(s: &str) -> Option<String> {
    if s.contains(['?', '#']) {
        return None;
    }
    let (scheme, rest) = s.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => 443,
        "http" => 80,
        _ => return None,
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let (host, port) = split_authority(authority)?;
    let mut out = String::with_capacity(s.len() + 1);
    out.push_str(&scheme);
    out.push_str("://");
    out.push_str(&host.to_ascii_lowercase());
    if let Some(p) = port.filter(|p| *p != default_port) {
        out.push(':');
        out.push_str(&p.to_string());
    }
    if path.is_empty() {
        out.push('/');
    } else {
        normalize_path(path, &mut out)?;
    }
    Some(out)
}

/// `host[:port]`: an ASCII DNS name / IPv4 address or a bracketed IPv6 literal, and an
/// optional decimal port (empty → none). Userinfo and anything else → `None`.
fn split_authority(authority: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if authority.starts_with('[') {
        let end = authority.find(']')?;
        let (host, rest) = authority.split_at(end + 1);
        let inner = host.get(1..host.len() - 1)?;
        let ok = !inner.is_empty()
            && inner
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
        if !ok {
            return None;
        }
        match rest {
            "" => (host, ""),
            _ => (host, rest.strip_prefix(':')?),
        }
    } else {
        let (host, port) = authority.split_once(':').unwrap_or((authority, ""));
        let ok = !host.is_empty() && host.bytes().all(is_unreserved);
        if !ok {
            return None;
        }
        (host, port)
    };
    if port.is_empty() {
        return Some((host, None));
    }
    // Digits only: `u16::from_str` would also take a leading `+`.
    if !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((host, Some(port.parse().ok()?)))
}

/// Append the normalised `path` (starting with `/`) to `out`; `None` if it is invalid.
fn normalize_path(path: &str, out: &mut String) -> Option<()> {
    let mut bytes = path.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'%' => {
                let hi = hex_value(bytes.next()?)?;
                let lo = hex_value(bytes.next()?)?;
                let v = hi << 4 | lo;
                if is_unreserved(v) {
                    out.push(char::from(v));
                } else {
                    push_pct(out, v);
                }
            }
            b'/' | b':' | b'@' => out.push(char::from(b)),
            _ if is_unreserved(b) || is_sub_delim(b) => out.push(char::from(b)),
            b'\\' => return None,
            0x21..=0x7E | 0x80..=0xFF => push_pct(out, b),
            _ => return None,
        }
    }
    Some(())
}

fn push_pct(out: &mut String, b: u8) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push('%');
    out.push(char::from(HEX[usize::from(b >> 4)]));
    out.push(char::from(HEX[usize::from(b & 0xF)]));
}

fn hex_value(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// RFC 3986 §2.3.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// RFC 3986 §2.2.
fn is_sub_delim(b: u8) -> bool {
    matches!(
        b,
        b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'='
    )
}

/// Stateless server nonces (RFC 9449 §8–9, R-DP check 12): the HMAC of a 60-second time
/// bucket under an HKDF subkey, so every replica issues and accepts the same values without
/// shared state. A nonce made with a previous `JWT_SIGNING_SECRET` is simply refused: the
/// client retries with the fresh one the 401 carries.
#[derive(Clone)]
pub struct NonceKeys {
    key: hmac::Key,
}

impl fmt::Debug for NonceKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NonceKeys(***)")
    }
}

impl NonceKeys {
    /// Use the session keys' DPoP-nonce subkey.
    pub fn new(keys: &SessionKeys) -> NonceKeys {
        NonceKeys {
            key: keys.dpop_nonce().clone(),
        }
    }

    /// The current nonce (changes every [`NONCE_PERIOD`] seconds; the same value for every call
    /// within a period, so it can be cached). base64url, 43 characters (RFC 9449 §8.1 NQCHAR).
    pub fn current(&self, now: i64) -> String {
        self.for_period(now.div_euclid(NONCE_PERIOD))
    }

    /// Whether `nonce` is the current or the previous period's nonce, compared in constant
    /// time (both are always computed and compared).
    pub fn accepts(&self, nonce: &str, now: i64) -> bool {
        let period = now.div_euclid(NONCE_PERIOD);
        let current: bool = nonce
            .as_bytes()
            .ct_eq(self.for_period(period).as_bytes())
            .into();
        let previous: bool = nonce
            .as_bytes()
            .ct_eq(self.for_period(period.saturating_sub(1)).as_bytes())
            .into();
        current | previous
    }

    fn for_period(&self, period: i64) -> String {
        URL_SAFE_NO_PAD.encode(hmac::sign(&self.key, &period.to_be_bytes()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::jose::test_support::{b64, ec256, ec384, ed25519, rsa_a, signing_input, token_raw};
    use crate::jose::{Jwks, JwsAlg};
    use serde_json::json;

    const NOW: i64 = 1_700_000_000;
    const HTU: &str = "https://gw.example.com/api/data";
    /// 16 characters, the shortest accepted.
    const JTI: &str = "0123456789abcdef";

    /// RFC 9449 §4.1 Figure 3/4: the example proof (key `0ZcO…A4I`, RFC 9449 §6.1).
    const RFC9449_PROOF: &str = concat!(
        "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6Ik",
        "VDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCR",
        "nMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JE",
        "QSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIj",
        "oiUE9TVCIsImh0dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGUuY29tL3Rva2VuIiwia",
        "WF0IjoxNTYyMjYyNjE2fQ.2-GxA6T8lP4vfrg8v-FdWP0A0zdrj8igiMLvqRMUvwnQg",
        "4PtFLbdLXiOSsX0x7NVY-FNyJK70nfbV37xRZT3Lg",
    );

    /// The test key's public JWK as WebCrypto would export its core: kty, crv, x, y.
    fn jwk() -> Value {
        let mut j = ec256().jwk();
        j.as_object_mut().unwrap().remove("kid");
        j
    }

    fn header() -> Value {
        json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk()})
    }

    fn claims() -> Value {
        json!({"jti": JTI, "htm": "GET", "htu": HTU, "iat": NOW})
    }

    /// Header and claims signed with the P-256 test key (aws-lc, ES256 fixed R‖S).
    fn sign(h: &Value, c: &Value) -> String {
        token_raw(&h.to_string(), &c.to_string(), ec256(), JwsAlg::ES256)
    }

    /// A valid proof after `edit` changed its header and claims; then signed.
    fn proof(edit: impl FnOnce(&mut Value, &mut Value)) -> String {
        let (mut h, mut c) = (header(), claims());
        edit(&mut h, &mut c);
        sign(&h, &c)
    }

    /// Set member `k` of `v`, or remove it for `null`.
    fn set(v: &mut Value, k: &str, x: Value) {
        if x.is_null() {
            v.as_object_mut().unwrap().remove(k);
        } else {
            v[k] = x;
        }
    }

    fn claim(k: &'static str, x: Value) -> String {
        proof(|_, c| set(c, k, x))
    }

    fn head(k: &'static str, x: Value) -> String {
        proof(|h, _| set(h, k, x))
    }

    fn expected() -> Expected<'static> {
        Expected {
            method: "GET",
            htu: HTU,
            now: NOW,
            nonce: None,
        }
    }

    fn check(p: &str) -> Result<CheckedProof, DpopError> {
        check_proof(&[p.as_bytes()], &expected())
    }

    /// `p` with its signature segment replaced by `sig`.
    fn with_sig(p: &str, sig: &[u8]) -> String {
        let (input, _) = p.rsplit_once('.').unwrap();
        format!("{input}.{}", b64(sig))
    }

    fn sig_of(p: &str) -> Vec<u8> {
        URL_SAFE_NO_PAD
            .decode(p.rsplit_once('.').unwrap().1)
            .unwrap()
    }

    /// RFC 7638 for a P-256 JWK, built by hand (independent of `jwk_thumbprint_sha256`).
    fn rfc7638(jwk: &Value) -> String {
        let input = format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            jwk["x"].as_str().unwrap(),
            jwk["y"].as_str().unwrap()
        );
        b64(digest::digest(&digest::SHA256, input.as_bytes()).as_ref())
    }

    fn nonce_keys(secret: &str) -> NonceKeys {
        NonceKeys::new(&SessionKeys::derive(secret))
    }

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    /// R-DP checks 1–9, 11: a valid proof passes and yields its thumbprint, jti and iat.
    #[test]
    fn r_dp_valid_proof_passes() {
        let got = check(&proof(|_, _| {})).unwrap();
        assert_eq!(
            got,
            CheckedProof {
                jkt: rfc7638(&jwk()),
                jti: JTI.to_owned(),
                iat: NOW,
            }
        );
        assert_eq!(got.jkt.len(), 43);
        assert!(got.matches_jkt(&rfc7638(&jwk())));
        assert!(!got.matches_jkt(&got.jkt[..42]));
        assert!(!got.matches_jkt(""));
    }

    /// RFC 9449 §4.1 example proof, checked at its own time; its key's RFC 7638 thumbprint is
    /// the `jkt` RFC 9449 §6.1 publishes.
    #[test]
    fn r_dp_rfc9449_example_proof_and_thumbprint() {
        let at = |now, method| Expected {
            method,
            htu: "https://server.example.com/token",
            now,
            nonce: None,
        };
        let got = check_proof(&[RFC9449_PROOF.as_bytes()], &at(1_562_262_616, "POST")).unwrap();
        assert_eq!(got.jkt, "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I");
        assert_eq!(got.jti, "-BwC3ESc6acc2lTc");
        assert_eq!(got.iat, 1_562_262_616);
        let p = [RFC9449_PROOF.as_bytes()];
        assert_eq!(
            check_proof(&p, &at(1_562_262_616 + IAT_PAST + 1, "POST")),
            Err(DpopError::Iat)
        );
        assert_eq!(
            check_proof(&p, &at(1_562_262_616, "GET")),
            Err(DpopError::Method)
        );
    }

    /// R-DP check 1: exactly one DPoP header.
    #[test]
    fn r_dp_1_exactly_one_header() {
        let p = proof(|_, _| {});
        assert_eq!(check_proof(&[], &expected()), Err(DpopError::Missing));
        assert_eq!(
            check_proof(&[p.as_bytes(), p.as_bytes()], &expected()),
            Err(DpopError::Multiple)
        );
        let other = proof(|_, c| c["jti"] = json!("fedcba9876543210"));
        assert_eq!(
            check_proof(&[p.as_bytes(), other.as_bytes()], &expected()),
            Err(DpopError::Multiple)
        );
        // Two proofs folded into one value are not a single compact JWS.
        let folded = format!("{p}, {other}");
        assert_eq!(check(&folded), Err(DpopError::Malformed));
    }

    /// R-DP check 1: at most 8 KiB; refused on length alone, before parsing.
    #[test]
    fn r_dp_1_size_limit() {
        assert_eq!(
            check_proof(&[&[b'a'; MAX_PROOF_LEN + 1]], &expected()),
            Err(DpopError::TooLarge)
        );
        assert_eq!(
            check_proof(&[&[b'a'; MAX_PROOF_LEN]], &expected()),
            Err(DpopError::Malformed)
        );
        // A valid proof padded by an ignored claim: accepted up to the limit, refused past it.
        let padded = |n: usize| proof(|_, c| c["pad"] = json!("x".repeat(n)));
        let base = padded(0).len();
        let mut n = (MAX_PROOF_LEN - base) * 3 / 4 - 8;
        let mut largest_ok = 0;
        loop {
            let p = padded(n);
            if p.len() > MAX_PROOF_LEN {
                assert_eq!(check(&p), Err(DpopError::TooLarge), "{}", p.len());
                break;
            }
            assert!(check(&p).is_ok(), "{}", p.len());
            largest_ok = p.len();
            n += 1;
        }
        assert!(largest_ok >= MAX_PROOF_LEN - 2, "{largest_ok}");
    }

    /// R-DP check 1: not UTF-8, not three segments, JWE, whitespace, strict JSON (duplicate
    /// claim) → malformed.
    #[test]
    fn r_dp_1_single_compact_jws() {
        let p = proof(|_, _| {});
        let (h, rest) = p.split_once('.').unwrap();
        for bad in [
            String::new(),
            "a.b".to_owned(),
            format!("{p}.x.y"),
            format!(" {p}"),
            format!("{h}.{rest}="),
            format!("Bearer {p}"),
        ] {
            assert_eq!(check(&bad), Err(DpopError::Malformed), "{bad:?}");
        }
        let mut not_utf8 = p.clone().into_bytes();
        not_utf8[3] = 0xff;
        assert_eq!(
            check_proof(&[&not_utf8], &expected()),
            Err(DpopError::Malformed)
        );
        let dup = token_raw(
            &header().to_string(),
            &format!(r#"{{"jti":"{JTI}","htm":"POST","htm":"GET","htu":"{HTU}","iat":{NOW}}}"#),
            ec256(),
            JwsAlg::ES256,
        );
        assert_eq!(check(&dup), Err(DpopError::Malformed));
    }

    /// R-DP check 2: `typ` exactly `dpop+jwt` (absent, JWT, other case, media-type form,
    /// other JWT kinds, not a string).
    #[test]
    fn r_dp_2_typ_must_be_dpop_jwt() {
        for typ in [
            json!(null),
            json!("JWT"),
            json!("jwt"),
            json!("DPoP+JWT"),
            json!("application/dpop+jwt"),
            json!("dpop+jwt "),
            json!("session+jwt"),
            json!(["dpop+jwt"]),
            json!(1),
        ] {
            assert_eq!(
                check(&head("typ", typ.clone())),
                Err(DpopError::Header("typ")),
                "{typ}"
            );
        }
    }

    /// R-DP check 3: `alg` ES256 only: none, HS256, RS256, ES384 (each correctly signed for
    /// its alg), wrong case, missing.
    #[test]
    fn r_dp_3_alg_es256_only() {
        let bad = Err(DpopError::Header("alg"));
        let c = claims().to_string();
        // none, with and without a signature.
        let h = json!({"typ": "dpop+jwt", "alg": "none", "jwk": jwk()}).to_string();
        let input = signing_input(&h, &c);
        assert_eq!(check(&format!("{input}.")), bad);
        let p = proof(|h, _| h["alg"] = json!("none"));
        assert_eq!(check(&p), bad);
        // HS256 keyed with the public key's x coordinate.
        let h = json!({"typ": "dpop+jwt", "alg": "HS256", "jwk": jwk()}).to_string();
        let input = signing_input(&h, &c);
        let key = hmac::Key::new(hmac::HMAC_SHA256, jwk()["x"].as_str().unwrap().as_bytes());
        let mac = hmac::sign(&key, input.as_bytes());
        assert_eq!(check(&format!("{input}.{}", b64(mac.as_ref()))), bad);
        // RS256 with an RSA jwk, ES384 with a P-384 jwk: genuine, but not the local policy.
        for (key, alg) in [(rsa_a(), JwsAlg::RS256), (ec384(), JwsAlg::ES384)] {
            let h = json!({"typ": "dpop+jwt", "alg": alg.as_str(), "jwk": key.jwk()});
            let p = token_raw(&h.to_string(), &c, key, alg);
            assert_eq!(check(&p), bad, "{alg}");
        }
        for alg in [json!("es256"), json!("ES512"), json!(null), json!(256)] {
            assert_eq!(check(&head("alg", alg.clone())), bad, "{alg}");
        }
    }

    /// R-DP check 4: the key is EC P-256; RSA, P-384, Ed25519 and symmetric keys are refused,
    /// as are a missing or non-object `jwk`.
    #[test]
    fn r_dp_4_jwk_must_be_ec_p256() {
        for (key, want) in [
            (rsa_a().jwk(), JwkError::Kty),
            (ec384().jwk(), JwkError::Crv),
            (ed25519().jwk(), JwkError::Kty),
            (
                json!({"kty": "EC", "crv": "secp256k1", "x": jwk()["x"], "y": jwk()["y"]}),
                JwkError::Crv,
            ),
            (
                json!({"kty": "oct", "k": b64(b"secret")}),
                JwkError::PrivateMembers,
            ),
            (json!("key"), JwkError::NotObject),
        ] {
            assert_eq!(
                check(&head("jwk", key.clone())),
                Err(DpopError::Jwk(want)),
                "{key}"
            );
        }
        assert_eq!(
            check(&head("jwk", json!(null))),
            Err(DpopError::Header("jwk"))
        );
    }

    /// R-DP check 4: `x` and `y` are exactly 32 bytes, i.e. 43 canonical base64url characters.
    #[test]
    fn r_dp_4_coordinates_exactly_32_bytes() {
        let j = jwk();
        let with = |x: Value, y: Value| {
            check(&head(
                "jwk",
                json!({"kty": "EC", "crv": "P-256", "x": x, "y": y}),
            ))
        };
        let short = Err(DpopError::Jwk(JwkError::EcCoordinateLength));
        assert_eq!(with(json!(b64(&[7; 31])), j["y"].clone()), short);
        assert_eq!(with(json!(b64(&[7; 33])), j["y"].clone()), short);
        assert_eq!(with(j["x"].clone(), json!(b64(&[7; 31]))), short);
        // Leading zero octets must be kept, not stripped (RFC 7518 §6.2.1.2).
        let x = URL_SAFE_NO_PAD.decode(j["x"].as_str().unwrap()).unwrap();
        assert_eq!(with(json!(b64(&x[1..])), j["y"].clone()), short);
        // 43 characters but with non-zero trailing bits, or padded: not canonical base64url.
        let xs = j["x"].as_str().unwrap();
        let (head43, last) = xs.split_at(42);
        const ALPHABET: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let i = ALPHABET.find(last).unwrap();
        let flipped = &ALPHABET[(i ^ 1)..=(i ^ 1)];
        let bad_b64 = Err(DpopError::Jwk(JwkError::Base64("x")));
        assert_eq!(
            with(json!(format!("{head43}{flipped}")), j["y"].clone()),
            bad_b64
        );
        assert_eq!(with(json!(format!("{xs}=")), j["y"].clone()), bad_b64);
        assert_eq!(
            with(json!(1), j["y"].clone()),
            Err(DpopError::Jwk(JwkError::Missing("x")))
        );
    }

    /// R-DP check 4: the point must be on the curve.
    #[test]
    fn r_dp_4_point_must_be_on_curve() {
        let j = jwk();
        let mut y = URL_SAFE_NO_PAD.decode(j["y"].as_str().unwrap()).unwrap();
        y[31] ^= 1;
        for y in [json!(b64(&y)), j["x"].clone(), json!(b64(&[0; 32]))] {
            let p = head(
                "jwk",
                json!({"kty": "EC", "crv": "P-256", "x": j["x"], "y": y}),
            );
            assert_eq!(check(&p), Err(DpopError::Jwk(JwkError::EcPoint)));
        }
    }

    /// R-DP check 4: no private members (`d` and the RSA/symmetric ones), although the
    /// signature itself is genuine.
    #[test]
    fn r_dp_4_private_members_refused() {
        for m in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
            let p = head("jwk", ec256().jwk_with(json!({ m: b64(&[1; 32]) })));
            assert_eq!(
                check(&p),
                Err(DpopError::Jwk(JwkError::PrivateMembers)),
                "{m}"
            );
        }
    }

    /// R-DP check 5: signed by another key, tampered payload, DER encoding, wrong lengths.
    #[test]
    fn r_dp_5_signature_raw_r_s_verified() {
        let p = proof(|_, _| {});
        let (input, _) = p.rsplit_once('.').unwrap();
        let other = crate::jose::test_support::TestKey::ec_p256_fresh();
        let foreign = token_raw(
            &header().to_string(),
            &claims().to_string(),
            &other,
            JwsAlg::ES256,
        );
        assert_eq!(check(&foreign), Err(DpopError::Signature));
        let swapped = format!(
            "{}.{}",
            signing_input(
                &header().to_string(),
                &json!({"jti": JTI, "htm": "POST", "htu": HTU, "iat": NOW}).to_string()
            ),
            p.rsplit_once('.').unwrap().1
        );
        assert_eq!(check(&swapped), Err(DpopError::Signature));
        let der = ec256().sign_der(input.as_bytes());
        assert_ne!(der.len(), 64);
        assert_eq!(check(&with_sig(&p, &der)), Err(DpopError::Signature));
        let sig = sig_of(&p);
        for bad in [&sig[..63], &[sig.as_slice(), &[0]].concat(), &[][..]] {
            assert_eq!(check(&with_sig(&p, bad)), Err(DpopError::Signature));
        }
        let mut flipped = sig.clone();
        flipped[40] ^= 1;
        assert_eq!(check(&with_sig(&p, &flipped)), Err(DpopError::Signature));
    }

    /// R-DP check 5 (CVE-2022-21449): R = 0, S = 0, and R or S equal to n or above are refused.
    #[test]
    fn r_dp_5_zero_and_out_of_range_r_s_rejected() {
        let p = proof(|_, _| {});
        let sig = sig_of(&p);
        let (r, s) = sig.split_at(32);
        let n = p256::to_be(&p256::N);
        let max = [0xff; 32];
        for (r, s) in [
            (&[0; 32][..], s),
            (r, &[0; 32][..]),
            (&[0; 32][..], &[0; 32][..]),
            (r, &n[..]),
            (r, &max[..]),
            (&n[..], s),
            (&max[..], s),
        ] {
            let bad = [r, s].concat();
            assert_eq!(check(&with_sig(&p, &bad)), Err(DpopError::Signature));
        }
    }

    /// R-DP check 5: S ≥ n is refused, not reduced mod n. A random S is almost never small
    /// enough for S + n to fit 32 bytes, so a key is crafted for which (r, 1) is valid: pick
    /// k, r = x(kG) mod n, d = (k − z)/r mod n (then z/1·G + r/1·Q = kG). The key must not be
    /// part of what is signed, so this goes through the JWKS key source; it shares the
    /// signature check (`verify_with_any`, aws-lc) with the embedded-jwk source DPoP uses.
    #[test]
    fn r_dp_5_s_plus_n_not_reduced() {
        use aws_lc_rs::agreement::{ECDH_P256, PrivateKey};
        use aws_lc_rs::rand::{SecureRandom, SystemRandom};

        let point = |scalar: &p256::U| {
            let k = PrivateKey::from_private_key(&ECDH_P256, &p256::to_be(scalar)).unwrap();
            k.compute_public_key().unwrap().as_ref().to_vec()
        };
        let input = signing_input(r#"{"alg":"ES256","kid":"k"}"#, r#"{"sub":"s"}"#);
        let hash = digest::digest(&digest::SHA256, input.as_bytes());
        let z = p256::reduce(&p256::from_be(hash.as_ref()));
        let mut kb = [0u8; 32];
        SystemRandom::new().fill(&mut kb).unwrap();
        kb[0] &= 0x7f; // k < 2^255 < n
        let k = p256::from_be(&kb);
        let r = p256::reduce(&p256::from_be(&point(&k)[1..33]));
        let d = p256::mul_mod(&p256::sub_mod(&k, &z), &p256::inv(&r));
        let q = point(&d);
        let set = Jwks::parse(
            json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "k",
                "x": b64(&q[1..33]), "y": b64(&q[33..])}]})
            .to_string()
            .as_bytes(),
        )
        .unwrap();
        let verify = |s: &p256::U| {
            let sig = [p256::to_be(&r), p256::to_be(s)].concat();
            let jws = parse_compact(&format!("{input}.{}", b64(&sig)), MAX_PROOF_LEN).unwrap();
            verify_jws(&jws, &set, &VerifyPolicy::id_token(&[JwsAlg::ES256]))
        };
        let one = [1, 0, 0, 0];
        assert_eq!(verify(&one), Ok(JwsAlg::ES256), "crafted (r, 1) is valid");
        let (one_plus_n, carry) = p256::add(&one, &p256::N);
        assert!(!carry);
        assert_eq!(verify(&one_plus_n), Err(JoseError::BadSignature));
        assert_eq!(verify(&p256::N), Err(JoseError::BadSignature));
    }

    /// R-DP check 6: `jti` is a string of 16–128 characters (counted as characters).
    #[test]
    fn r_dp_6_jti_string_of_16_to_128_chars() {
        let bad = Err(DpopError::Claim("jti"));
        for ok in ["a".repeat(16), "a".repeat(128), "é".repeat(16)] {
            assert!(check(&claim("jti", json!(ok))).is_ok(), "{ok}");
        }
        for jti in [
            json!("a".repeat(15)),
            json!("a".repeat(129)),
            json!("é".repeat(15)),
            json!(""),
            json!(1234567890123456789_u64),
            json!(["0123456789abcdef"]),
            json!(null),
        ] {
            assert_eq!(check(&claim("jti", jti.clone())), bad, "{jti}");
        }
    }

    /// R-DP check 6: `htm`, `htu` and `iat` present with their JSON types; a type error is
    /// reported as such, never as a mismatch.
    #[test]
    fn r_dp_6_claims_present_with_types() {
        for (k, v) in [
            ("htm", json!(null)),
            ("htm", json!(1)),
            ("htm", json!(["GET"])),
            ("htu", json!(null)),
            ("htu", json!([HTU])),
            ("htu", json!({"href": HTU})),
            ("iat", json!(null)),
            ("iat", json!(NOW.to_string())),
            ("iat", json!(1_700_000_000.0)),
            ("iat", json!(1_700_000_000.5)),
            ("iat", json!(-1)),
            ("iat", json!(true)),
        ] {
            // `null` here removes the claim; present-but-null is checked next.
            assert_eq!(
                check(&claim(k, v.clone())),
                Err(DpopError::Claim(k)),
                "{k}: {v}"
            );
            let null = proof(|_, c| c[k] = Value::Null);
            assert_eq!(check(&null), Err(DpopError::Claim(k)), "{k}: null");
        }
    }

    /// R-DP check 7: `htm` equals the method exactly (case-sensitive, RFC 9110 §9.1).
    #[test]
    fn r_dp_7_htm_exact_case_sensitive() {
        for htm in ["get", "Get", "POST", "GET ", ""] {
            assert_eq!(
                check(&claim("htm", json!(htm))),
                Err(DpopError::Method),
                "{htm}"
            );
        }
        let post = Expected {
            method: "POST",
            ..expected()
        };
        let p = claim("htm", json!("POST"));
        assert!(check_proof(&[p.as_bytes()], &post).is_ok());
    }

    /// R-DP check 8: an `htu` with a query or fragment never matches, even an empty one.
    #[test]
    fn r_dp_8_htu_with_query_or_fragment_never_matches() {
        for htu in [
            format!("{HTU}?a=1"),
            format!("{HTU}?"),
            format!("{HTU}#frag"),
            format!("{HTU}#"),
            format!("{HTU}%3Fa"), // an encoded `?` is part of the path: another resource
        ] {
            assert_eq!(
                check(&claim("htu", json!(htu))),
                Err(DpopError::Htu),
                "{htu}"
            );
        }
    }

    /// R-DP check 8: another host, scheme, port, userinfo trick or a relative `htu`.
    #[test]
    fn r_dp_8_htu_other_origin_rejected() {
        for htu in [
            "https://evil.example.com/api/data",
            "https://gw.example.com.evil.com/api/data",
            "https://gw.example.com@evil.com/api/data",
            "https://evil.com@gw.example.com/api/data",
            "http://gw.example.com/api/data",
            "https://gw.example.com:8443/api/data",
            "https://gw.example.com:80/api/data",
            "wss://gw.example.com/api/data",
            "//gw.example.com/api/data",
            "/api/data",
            "",
        ] {
            assert_eq!(
                check(&claim("htu", json!(htu))),
                Err(DpopError::Htu),
                "{htu}"
            );
        }
    }

    /// R-DP check 8: RFC 3986 §6.2.2–6.2.3 equivalents are accepted: `:443`, case of scheme
    /// and host, an empty port, percent-encoded unreserved characters (`%7E` ≡ `~`).
    #[test]
    fn r_dp_8_htu_normalised_equivalents_accepted() {
        for htu in [
            "https://gw.example.com:443/api/data",
            "HTTPS://GW.Example.COM/api/data",
            "https://gw.example.com:/api/data",
            "https://gw.example.com/%61pi/%64ata",
        ] {
            assert!(check(&claim("htu", json!(htu))).is_ok(), "{htu}");
        }
        let base = url::Url::parse("https://gw.example.com").unwrap();
        for path in ["/api/~me", "/api/%7Eme", "/api/%7eme"] {
            let want = expected_htu(&base, path).unwrap();
            assert_eq!(want, "https://gw.example.com/api/~me");
            let exp = Expected {
                htu: &want,
                ..expected()
            };
            for htu in [
                "https://gw.example.com/api/~me",
                "https://gw.example.com/api/%7Eme",
                "https://gw.example.com/api/%7eme",
            ] {
                let p = claim("htu", json!(htu));
                assert!(check_proof(&[p.as_bytes()], &exp).is_ok(), "{path} {htu}");
            }
        }
        // Reserved characters stay encoded (only the hex case is normalised): `%2f` ≡ `%2F`,
        // but neither is `/`.
        let want = expected_htu(&base, "/api/a%2fb").unwrap();
        let exp = Expected {
            htu: &want,
            ..expected()
        };
        let ok = claim("htu", json!("https://gw.example.com/api/a%2Fb"));
        assert!(check_proof(&[ok.as_bytes()], &exp).is_ok());
        let slash = claim("htu", json!("https://gw.example.com/api/a/b"));
        assert_eq!(check_proof(&[slash.as_bytes()], &exp), Err(DpopError::Htu));
    }

    /// R-DP check 8: path case and trailing slashes are significant.
    #[test]
    fn r_dp_8_htu_path_case_and_trailing_slash_significant() {
        for htu in [
            "https://gw.example.com/api/data/",
            "https://gw.example.com/API/data",
            "https://gw.example.com/api/Data",
            "https://gw.example.com/api//data",
            "https://gw.example.com/api/data/.",
            "https://gw.example.com/api/x/../data",
            "https://gw.example.com/api/%2564ata",
        ] {
            assert_eq!(
                check(&claim("htu", json!(htu))),
                Err(DpopError::Htu),
                "{htu}"
            );
        }
    }

    /// R-DP check 9: `now − 120 ≤ iat ≤ now + 30`, inclusive.
    #[test]
    fn r_dp_9_iat_window() {
        for iat in [NOW - IAT_PAST, NOW, NOW + IAT_FUTURE] {
            assert!(check(&claim("iat", json!(iat))).is_ok(), "{iat}");
        }
        for iat in [NOW - IAT_PAST - 1, NOW + IAT_FUTURE + 1, 0, 1 << 53] {
            assert_eq!(
                check(&claim("iat", json!(iat))),
                Err(DpopError::Iat),
                "{iat}"
            );
        }
        // A string is a type error, not an out-of-window date.
        assert_eq!(
            check(&claim("iat", json!(NOW.to_string()))),
            Err(DpopError::Claim("iat"))
        );
        assert_eq!(
            check(&claim("iat", json!(u64::MAX))),
            Err(DpopError::Claim("iat"))
        );
    }

    /// R-DP-10: the replay key is a fixed-length digest of (jkt, jti), distinct per pair, and
    /// the replay memory outlives every proof's acceptance window.
    #[test]
    fn r_dp_10_replay_key() {
        let a = check(&proof(|_, _| {})).unwrap();
        let long = check(&claim("jti", json!("j".repeat(128)))).unwrap();
        assert_eq!(a.replay_key().len(), 43);
        assert_eq!(long.replay_key().len(), 43);
        assert_eq!(a.replay_key(), a.clone().replay_key());
        assert_ne!(a.replay_key(), long.replay_key());
        let other_key = CheckedProof {
            jkt: rfc7638(&ec384().jwk()),
            ..a.clone()
        };
        assert_ne!(a.replay_key(), other_key.replay_key());
        assert!(
            a.replay_key()
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        const { assert!(REPLAY_TTL >= 180 && REPLAY_TTL >= IAT_PAST + IAT_FUTURE) };
    }

    /// R-DP check 11: extra JWK members (kid, alg, use, key_ops, ext) and member order do not
    /// change the thumbprint; another key does.
    #[test]
    fn r_dp_11_extra_jwk_members_do_not_change_thumbprint() {
        let plain = check(&proof(|_, _| {})).unwrap().jkt;
        let j = jwk();
        for dressed in [
            ec256().jwk_with(json!({"kid": "k1", "alg": "ES256", "use": "sig",
                "key_ops": ["verify"], "ext": true})),
            json!({"y": j["y"], "x": j["x"], "kty": "EC", "crv": "P-256"}),
            json!({"crv": "P-256", "ext": true, "key_ops": ["verify"], "kty": "EC",
                "x": j["x"], "y": j["y"]}),
        ] {
            assert_eq!(
                check(&head("jwk", dressed.clone())).unwrap().jkt,
                plain,
                "{dressed}"
            );
        }
        let other = crate::jose::test_support::TestKey::ec_p256_fresh();
        let h = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": other.jwk()});
        let p = token_raw(&h.to_string(), &claims().to_string(), &other, JwsAlg::ES256);
        let got = check(&p).unwrap();
        assert_ne!(got.jkt, plain);
        assert_eq!(got.jkt, rfc7638(&other.jwk()));
    }

    /// R-DP check 12: with server nonces on, the current and the previous period's nonce are
    /// accepted; missing, older, future, foreign or non-string nonces ask for a fresh one.
    #[test]
    fn r_dp_12_nonce() {
        let keys = nonce_keys(SECRET);
        let exp = Expected {
            nonce: Some(&keys),
            ..expected()
        };
        let run = |n: Value| check_proof(&[claim("nonce", n).as_bytes()], &exp);
        let e = run(Value::Null).unwrap_err();
        assert_eq!(e, DpopError::NonceRequired);
        assert!(e.is_nonce());
        assert!(run(json!(keys.current(NOW))).is_ok());
        assert!(run(json!(keys.current(NOW - NONCE_PERIOD))).is_ok());
        for stale in [
            json!(keys.current(NOW - 2 * NONCE_PERIOD)),
            json!(keys.current(NOW + NONCE_PERIOD)),
            json!(nonce_keys("another-secret-another-secret-xx").current(NOW)),
            json!(""),
            json!(format!("{}x", keys.current(NOW))),
            json!(1),
        ] {
            assert_eq!(run(stale.clone()), Err(DpopError::NonceRequired), "{stale}");
        }
        // Checked last: an otherwise invalid proof gets invalid_dpop_proof, not a nonce.
        let p = proof(|_, c| c["htm"] = json!("POST"));
        let e = check_proof(&[p.as_bytes()], &exp).unwrap_err();
        assert_eq!(e, DpopError::Method);
        assert!(!e.is_nonce());
        // With nonces off, a nonce claim is ignored.
        assert!(check(&claim("nonce", json!("anything"))).is_ok());
    }

    /// R-DP check 12: one nonce per 60-second period, valid for that period and the next,
    /// the same on every replica (same secret), URL-safe.
    #[test]
    fn r_dp_12_nonce_keys_periods() {
        let keys = nonce_keys(SECRET);
        let start = NOW - NOW.rem_euclid(NONCE_PERIOD);
        let n = keys.current(start);
        assert_eq!(keys.current(start + NONCE_PERIOD - 1), n);
        assert_ne!(keys.current(start + NONCE_PERIOD), n);
        assert_ne!(keys.current(start - 1), n);
        assert_eq!(nonce_keys(SECRET).current(start), n, "another replica");
        assert_eq!(n.len(), 43);
        assert!(
            n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert!(keys.accepts(&n, start));
        assert!(keys.accepts(&n, start + 2 * NONCE_PERIOD - 1));
        assert!(!keys.accepts(&n, start + 2 * NONCE_PERIOD));
        assert!(!keys.accepts(&n, start - 1));
        assert!(!keys.accepts("", start));
        // Negative and extreme clocks do not panic.
        assert!(keys.accepts(&keys.current(-5), -5));
        assert!(keys.accepts(&keys.current(i64::MIN), i64::MIN));
        assert!(keys.accepts(&keys.current(i64::MAX), i64::MAX));
        assert_eq!(format!("{keys:?}"), "NonceKeys(***)");
    }

    /// R-DP check 13: `ath` is not applicable to cookie sessions and is ignored.
    #[test]
    fn r_dp_13_ath_ignored() {
        for ath in [
            json!("fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"),
            json!(7),
        ] {
            assert!(check(&claim("ath", ath)).is_ok());
        }
    }

    /// Header members the verifier refuses for every JWS: crit, a bad kid.
    #[test]
    fn r_dp_header_crit_and_kid() {
        assert_eq!(
            check(&head("crit", json!(["htm"]))),
            Err(DpopError::Header("crit"))
        );
        assert_eq!(check(&head("kid", json!(5))), Err(DpopError::Header("kid")));
        assert!(check(&head("kid", json!("any"))).is_ok());
    }

    #[test]
    fn r_dp_only_nonce_error_asks_for_a_nonce() {
        for e in [
            DpopError::Missing,
            DpopError::Multiple,
            DpopError::TooLarge,
            DpopError::Malformed,
            DpopError::Header("typ"),
            DpopError::Jwk(JwkError::EcPoint),
            DpopError::Signature,
            DpopError::Claim("jti"),
            DpopError::Method,
            DpopError::Htu,
            DpopError::Iat,
            DpopError::Replay,
            DpopError::Thumbprint,
        ] {
            assert!(!e.is_nonce(), "{e}");
        }
        assert!(DpopError::NonceRequired.is_nonce());
    }

    /// R-DP check 8: the normalisation itself.
    #[test]
    fn r_dp_8_normalize_htu() {
        for (input, want) in [
            ("https://gw.example.com", "https://gw.example.com/"),
            ("HtTpS://GW.EXAMPLE.com/A/b", "https://gw.example.com/A/b"),
            ("https://gw.example.com:443/", "https://gw.example.com/"),
            ("https://gw.example.com:0443/", "https://gw.example.com/"),
            ("https://gw.example.com:/x", "https://gw.example.com/x"),
            ("https://gw.example.com:80/", "https://gw.example.com:80/"),
            ("http://localhost:80/x", "http://localhost/x"),
            ("http://localhost:443/x", "http://localhost:443/x"),
            ("http://LOCALHOST:8080/base/", "http://localhost:8080/base/"),
            ("http://127.0.0.1:8080/", "http://127.0.0.1:8080/"),
            ("https://[::1]:8443/a", "https://[::1]:8443/a"),
            ("https://[FE80::A]/", "https://[fe80::a]/"),
            ("https://h/%7e%7E%41%2d%2E%5f", "https://h/~~A-._"),
            ("https://h/%2f%3a%c3%a9%25", "https://h/%2F%3A%C3%A9%25"),
            (
                "https://h/a|b^c[d]{e}\"`<>",
                "https://h/a%7Cb%5Ec%5Bd%5D%7Be%7D%22%60%3C%3E",
            ),
            ("https://h/é", "https://h/%C3%A9"),
            ("https://h/!$&'()*+,;=:@-._~", "https://h/!$&'()*+,;=:@-._~"),
            ("https://h/a/./b/../c", "https://h/a/./b/../c"),
            ("https://h//x", "https://h//x"),
        ] {
            assert_eq!(normalize_htu(input).as_deref(), Some(want), "{input}");
        }
        for bad in [
            "https://h/?",
            "https://h/#",
            "https://h/a?b",
            "https://h?x",
            "ftp://h/",
            "wss://h/",
            "https:/h/",
            "https//h/",
            "https://",
            "https:///x",
            "https://u@h/",
            "https://u:p@h/",
            "https://h:abc/",
            "https://h:+443/",
            "https://h:-1/",
            "https://h:65536/",
            "https://h:443:443/",
            "https://ho st/",
            "https://hé/",
            "https://h%41/",
            "https://[]/",
            "https://[::1/",
            "https://[::1]x/",
            "https://[v1.x]/",
            "https://h/a b",
            "https://h/a\\b",
            "https://h/a\tb",
            "https://h/a\u{7f}",
            "https://h/%",
            "https://h/%4",
            "https://h/%zz",
            " https://h/",
            "https://h/ ",
            "",
        ] {
            assert_eq!(normalize_htu(bad), None, "{bad:?}");
        }
    }

    /// R-DP check 8: the expected `htu` is the public base URL plus the request path, with
    /// the same normalisation; anything that is not an origin-form path has none.
    #[test]
    fn r_dp_8_expected_htu() {
        let url = |s| url::Url::parse(s).unwrap();
        for (base, path, want) in [
            (
                "https://gw.example.com",
                "/api/data",
                "https://gw.example.com/api/data",
            ),
            ("https://gw.example.com/", "/", "https://gw.example.com/"),
            (
                "https://GW.example.com:443/",
                "/a/",
                "https://gw.example.com/a/",
            ),
            (
                "https://gw.example.com:8443",
                "/a",
                "https://gw.example.com:8443/a",
            ),
            (
                "http://localhost:8080/base",
                "/api",
                "http://localhost:8080/base/api",
            ),
            (
                "http://localhost:8080/base/",
                "/api",
                "http://localhost:8080/base/api",
            ),
            ("http://[::1]:8080/", "/x", "http://[::1]:8080/x"),
            (
                "https://gw.example.com",
                "/a/%7e/%2f",
                "https://gw.example.com/a/~/%2F",
            ),
            (
                "https://gw.example.com",
                "/a|b",
                "https://gw.example.com/a%7Cb",
            ),
            ("https://gw.example.com", "//x", "https://gw.example.com//x"),
        ] {
            assert_eq!(
                expected_htu(&url(base), path).as_deref(),
                Some(want),
                "{base} {path}"
            );
        }
        let base = url("https://gw.example.com");
        for bad in ["", "*", "api", "/a?b", "/a#b", "/a b", "/a\\b", "/%zz"] {
            assert_eq!(expected_htu(&base, bad), None, "{bad:?}");
        }
        assert_eq!(expected_htu(&url("file:///tmp"), "/x"), None);
    }

    /// Minimal arithmetic mod the P-256 group order n, for crafting signatures in
    /// `r_dp_5_s_plus_n_not_reduced` (256-bit, little-endian u64 limbs; slow but simple).
    mod p256 {
        pub type U = [u64; 4];
        /// n = FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551.
        pub const N: U = [
            0xF3B9_CAC2_FC63_2551,
            0xBCE6_FAAD_A717_9E84,
            0xFFFF_FFFF_FFFF_FFFF,
            0xFFFF_FFFF_0000_0000,
        ];

        pub fn from_be(b: &[u8]) -> U {
            let mut r = [0; 4];
            for (i, chunk) in b.chunks_exact(8).enumerate() {
                r[3 - i] = u64::from_be_bytes(chunk.try_into().unwrap());
            }
            r
        }

        pub fn to_be(a: &U) -> [u8; 32] {
            let mut out = [0; 32];
            for (i, chunk) in out.chunks_exact_mut(8).enumerate() {
                chunk.copy_from_slice(&a[3 - i].to_be_bytes());
            }
            out
        }

        fn geq(a: &U, b: &U) -> bool {
            for i in (0..4).rev() {
                if a[i] != b[i] {
                    return a[i] > b[i];
                }
            }
            true
        }

        pub fn add(a: &U, b: &U) -> (U, bool) {
            let mut r = [0; 4];
            let mut carry = 0u128;
            for i in 0..4 {
                let s = u128::from(a[i]) + u128::from(b[i]) + carry;
                r[i] = s as u64;
                carry = s >> 64;
            }
            (r, carry != 0)
        }

        /// a − b mod 2^256.
        fn sub(a: &U, b: &U) -> U {
            let mut r = [0; 4];
            let mut borrow = false;
            for i in 0..4 {
                let (d, b1) = a[i].overflowing_sub(b[i]);
                let (d, b2) = d.overflowing_sub(u64::from(borrow));
                r[i] = d;
                borrow = b1 || b2;
            }
            r
        }

        /// a mod n for a < 2n.
        pub fn reduce(a: &U) -> U {
            if geq(a, &N) { sub(a, &N) } else { *a }
        }

        fn add_mod(a: &U, b: &U) -> U {
            let (s, carry) = add(a, b);
            if carry || geq(&s, &N) { sub(&s, &N) } else { s }
        }

        pub fn sub_mod(a: &U, b: &U) -> U {
            if geq(a, b) {
                sub(a, b)
            } else {
                add(&sub(a, b), &N).0
            }
        }

        pub fn mul_mod(a: &U, b: &U) -> U {
            let mut acc = [0; 4];
            for i in (0..256).rev() {
                acc = add_mod(&acc, &acc);
                if (b[i / 64] >> (i % 64)) & 1 == 1 {
                    acc = add_mod(&acc, a);
                }
            }
            acc
        }

        /// a^(n−2) mod n (Fermat; n is prime).
        pub fn inv(a: &U) -> U {
            let e = sub(&N, &[2, 0, 0, 0]);
            let mut r = [1, 0, 0, 0];
            for i in (0..256).rev() {
                r = mul_mod(&r, &r);
                if (e[i / 64] >> (i % 64)) & 1 == 1 {
                    r = mul_mod(&r, a);
                }
            }
            r
        }

        #[test]
        fn p256_arithmetic_sanity() {
            let a = [12345, 678, 9, 0x1234];
            assert_eq!(mul_mod(&a, &inv(&a)), [1, 0, 0, 0]);
            assert_eq!(
                sub_mod(&[1, 0, 0, 0], &[2, 0, 0, 0]),
                sub(&N, &[1, 0, 0, 0])
            );
            assert_eq!(from_be(&to_be(&N)), N);
        }
    }

    proptest::proptest! {
        /// R-DP / R-RS: arbitrary header bytes never panic.
        #[test]
        fn r_dp_check_proof_never_panics(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256),
        ) {
            let _ = check_proof(&[&bytes], &expected());
        }

        /// Same, for token-shaped text.
        #[test]
        fn r_dp_check_proof_never_panics_tokenish(s in "[A-Za-z0-9_.-]{0,300}") {
            let _ = check_proof(&[s.as_bytes()], &expected());
        }

        /// R-DP check 8: normalisation never panics and is idempotent.
        #[test]
        fn r_dp_8_normalize_htu_idempotent(
            s in "(http|https|HTTPS|ftp)://[a-zA-Z0-9.@\\[\\]:-]{0,16}(:[0-9]{0,6})?(/[a-zA-Z0-9%~._|^!$&'()*+,;=:@é\\\\ -]{0,12}){0,4}",
        ) {
            if let Some(n) = normalize_htu(&s) {
                proptest::prop_assert_eq!(normalize_htu(&n), Some(n.clone()));
            }
        }

        /// Same, on arbitrary text.
        #[test]
        fn r_dp_8_normalize_htu_never_panics(s in "\\PC{0,64}") {
            if let Some(n) = normalize_htu(&s) {
                proptest::prop_assert_eq!(normalize_htu(&n), Some(n.clone()));
            }
        }
    }
}
