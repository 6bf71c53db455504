//! The signed identity assertion (`PORTCULLIS_ASSERTION_*`, YAML `portcullis.assertion`): an
//! ES256 JWT about the signed-in person in a header of every proxied request (and of the
//! forward-auth answer), for apps that do not trust plain identity headers. Off unless a
//! header name is set.

use super::proxy::{header_name, number};
use super::raw::RawSettings;
use super::validate::Problem;
use crate::headers;

/// Default seconds an assertion is valid.
pub const DEFAULT_LIFETIME_SECS: u64 = 60;
/// Bounds of the lifetime: long enough for a slow upstream, short enough to be an assertion
/// about this request and not a credential to keep.
pub const MIN_LIFETIME_SECS: u64 = 10;
pub const MAX_LIFETIME_SECS: u64 = 3600;
/// Default seconds one signing key is used (a day).
pub const DEFAULT_ROTATION_SECS: u64 = 86_400;
/// Bounds of the rotation period. Never shorter than the longest lifetime: an assertion
/// signed at the end of a period must still verify with the previous key, published for one
/// more period only.
pub const MIN_ROTATION_SECS: u64 = MAX_LIFETIME_SECS;
pub const MAX_ROTATION_SECS: u64 = 90 * 86_400;

/// Headers Portcullis itself sets or reads beside the identity headers: the assertion may
/// not take one of them over (the request id is set after it, forward-auth's cookie header
/// is another answer header, the CSRF token is the client's).
const OWN_HEADERS: &[&str] = &[
    "x-request-id",
    "x-portcullis-upstream-cookie",
    "x-csrf-token",
    "dpop-nonce",
];

/// The validated settings (`Config.assertion`); `header: None` = off.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AssertionSettings {
    /// Lower-case header name, e.g. `x-portcullis-assertion`.
    pub header: Option<String>,
    /// `aud` for every assertion, instead of the upstream's (or forward-auth's original
    /// request's) origin.
    pub audience: Option<String>,
    /// Seconds from `iat` to `exp`.
    pub lifetime: i64,
    /// Seconds one signing key is used.
    pub rotation: i64,
}

impl Default for AssertionSettings {
    fn default() -> Self {
        AssertionSettings {
            header: None,
            audience: None,
            lifetime: DEFAULT_LIFETIME_SECS as i64,
            rotation: DEFAULT_ROTATION_SECS as i64,
        }
    }
}

impl AssertionSettings {
    pub fn enabled(&self) -> bool {
        self.header.is_some()
    }
}

/// Validate the settings; `identity` are the configured identity header names (the assertion
/// may not take one of them over).
pub(super) fn check(
    raw: &RawSettings,
    identity: &[&str],
    problems: &mut Vec<Problem>,
    warnings: &mut Vec<String>,
) -> AssertionSettings {
    let d = AssertionSettings::default();
    let before = problems.len();
    let header = raw.assertion_header.as_ref().map(|_| {
        header_name(
            "PORTCULLIS_ASSERTION_HEADER",
            &raw.assertion_header,
            "",
            problems,
        )
    });
    let header = header.filter(|h| !h.is_empty() && problems.len() == before);
    if let Some(h) = &header {
        let n = headers::normalize(h);
        if headers::is_identity_header(&n) || identity.iter().any(|i| headers::normalize(i) == n) {
            problems.push(Problem::new(format!(
                "PORTCULLIS_ASSERTION_HEADER may not be `{h}`: that is an identity header name; use its own, e.g. X-Portcullis-Assertion"
            )));
        } else if OWN_HEADERS.contains(&n.as_str()) {
            problems.push(Problem::new(format!(
                "PORTCULLIS_ASSERTION_HEADER may not be `{h}`: Portcullis uses that header itself; use its own, e.g. X-Portcullis-Assertion"
            )));
        }
    }
    let audience = raw.assertion_audience.clone();
    if let Some(a) = &audience
        && (a.len() > 512 || a.chars().any(|c| c.is_control() || c.is_whitespace()))
    {
        problems.push(Problem::new(format!(
            "PORTCULLIS_ASSERTION_AUDIENCE must be one word such as https://app.example.com (no spaces, at most 512 characters), got `{a}`"
        )));
    }
    let lifetime = number(
        "PORTCULLIS_ASSERTION_LIFETIME",
        &raw.assertion_lifetime,
        DEFAULT_LIFETIME_SECS,
        MIN_LIFETIME_SECS,
        MAX_LIFETIME_SECS,
        problems,
    ) as i64;
    let rotation = number(
        "PORTCULLIS_ASSERTION_ROTATION",
        &raw.assertion_rotation,
        DEFAULT_ROTATION_SECS,
        MIN_ROTATION_SECS,
        MAX_ROTATION_SECS,
        problems,
    ) as i64;
    let set_without_header = raw.assertion_audience.is_some()
        || raw.assertion_lifetime.is_some()
        || raw.assertion_rotation.is_some();
    if raw.assertion_header.is_none() && set_without_header {
        warnings.push(
            "PORTCULLIS_ASSERTION_AUDIENCE/_LIFETIME/_ROTATION are set but PORTCULLIS_ASSERTION_HEADER is not: no assertion is sent".into(),
        );
    }
    AssertionSettings {
        header,
        audience,
        lifetime: if lifetime > 0 { lifetime } else { d.lifetime },
        rotation: if rotation > 0 { rotation } else { d.rotation },
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn run(f: impl FnOnce(&mut RawSettings)) -> (AssertionSettings, Vec<String>, Vec<String>) {
        let mut raw = RawSettings::default();
        f(&mut raw);
        let (mut p, mut w) = (Vec::new(), Vec::new());
        let s = check(&raw, &["x-webauth-user"], &mut p, &mut w);
        (s, p.into_iter().map(|p| p.0).collect(), w)
    }

    #[test]
    fn off_by_default() {
        let (s, p, w) = run(|_| {});
        assert_eq!(s, AssertionSettings::default());
        assert!(!s.enabled() && p.is_empty() && w.is_empty());
    }

    #[test]
    fn valid_settings() {
        let (s, p, w) = run(|r| {
            r.assertion_header = Some("X-Portcullis-Assertion".into());
            r.assertion_audience = Some("https://app.example.com".into());
            r.assertion_lifetime = Some("120".into());
            r.assertion_rotation = Some("3600".into());
        });
        assert!(p.is_empty() && w.is_empty(), "{p:?} {w:?}");
        assert_eq!(s.header.as_deref(), Some("x-portcullis-assertion"));
        assert_eq!(s.audience.as_deref(), Some("https://app.example.com"));
        assert_eq!((s.lifetime, s.rotation), (120, 3600));
    }

    /// Every bad value is one problem naming its setting.
    #[test]
    fn bad_values_are_problems() {
        for (f, want) in [
            (
                Box::new(|r: &mut RawSettings| r.assertion_header = Some("X Bad".into()))
                    as Box<dyn FnOnce(&mut RawSettings)>,
                "PORTCULLIS_ASSERTION_HEADER must be a header name",
            ),
            (
                Box::new(|r: &mut RawSettings| r.assertion_header = Some("Cookie".into())),
                "PORTCULLIS_ASSERTION_HEADER may not be `Cookie`",
            ),
            (
                Box::new(|r: &mut RawSettings| {
                    r.assertion_header = Some("X-Forwarded-User".into())
                }),
                "that is an identity header name",
            ),
            (
                Box::new(|r: &mut RawSettings| r.assertion_header = Some("X_WebAuth_User".into())),
                "that is an identity header name",
            ),
            (
                Box::new(|r: &mut RawSettings| r.assertion_header = Some("X-Request-Id".into())),
                "Portcullis uses that header itself",
            ),
            (
                Box::new(|r: &mut RawSettings| {
                    r.assertion_header = Some("X-A".into());
                    r.assertion_lifetime = Some("5".into());
                }),
                "PORTCULLIS_ASSERTION_LIFETIME must be a whole number from 10 to 3600, got `5`",
            ),
            (
                Box::new(|r: &mut RawSettings| {
                    r.assertion_header = Some("X-A".into());
                    r.assertion_rotation = Some("60".into());
                }),
                "PORTCULLIS_ASSERTION_ROTATION must be a whole number from 3600 to 7776000, got `60`",
            ),
            (
                Box::new(|r: &mut RawSettings| {
                    r.assertion_header = Some("X-A".into());
                    r.assertion_audience = Some("two words".into());
                }),
                "PORTCULLIS_ASSERTION_AUDIENCE must be one word",
            ),
        ] {
            let (s, p, _) = run(f);
            assert_eq!(p.len(), 1, "{want}: {p:?}");
            assert!(p[0].contains(want), "{want}: {}", p[0]);
            if want.contains("HEADER must") || want.contains("`Cookie`") {
                assert!(s.header.is_none());
            }
        }
    }

    #[test]
    fn settings_without_a_header_warn() {
        let (s, p, w) = run(|r| r.assertion_lifetime = Some("30".into()));
        assert!(!s.enabled() && p.is_empty());
        assert!(w[0].contains("PORTCULLIS_ASSERTION_HEADER is not"), "{w:?}");
    }

    #[test]
    fn env_and_yaml_both_set_it() {
        let raw = super::super::from_env(&|k| match k {
            "PORTCULLIS_ASSERTION_HEADER" => Some("X-Portcullis-Assertion".into()),
            "PORTCULLIS_ASSERTION_AUDIENCE" => Some("https://app.example.com".into()),
            "PORTCULLIS_ASSERTION_LIFETIME" => Some("30".into()),
            "PORTCULLIS_ASSERTION_ROTATION" => Some("7200".into()),
            _ => None,
        });
        assert_eq!(
            raw.assertion_header.as_deref(),
            Some("X-Portcullis-Assertion")
        );
        assert_eq!(
            raw.assertion_audience.as_deref(),
            Some("https://app.example.com")
        );
        assert_eq!(raw.assertion_lifetime.as_deref(), Some("30"));
        assert_eq!(raw.assertion_rotation.as_deref(), Some("7200"));
        let raw = super::super::parse_file(
            "f.yaml",
            "portcullis:\n  assertion:\n    header: X-Portcullis-Assertion\n    audience: https://app.example.com\n    lifetime: 30\n    rotation: 7200\n",
        )
        .unwrap();
        assert_eq!(
            raw.assertion_header.as_deref(),
            Some("X-Portcullis-Assertion")
        );
        assert_eq!(
            raw.assertion_audience.as_deref(),
            Some("https://app.example.com")
        );
        assert_eq!(raw.assertion_lifetime.as_deref(), Some("30"));
        assert_eq!(raw.assertion_rotation.as_deref(), Some("7200"));
        let e = super::super::parse_file("f.yaml", "portcullis:\n  assertion:\n    hedaer: X\n")
            .unwrap_err();
        assert!(e.message.contains("hedaer"), "{}", e.message);
    }
}
