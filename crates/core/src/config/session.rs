//! Browser session lifetimes (R-SJ-4): the JWT's time to live (also the idle timeout) and the
//! absolute lifetime within which it is re-issued.

use super::raw::RawSettings;
use super::validate::Problem;
use crate::session::SESSION_TTL;

/// How long browser sessions last.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionLifetimes {
    /// Seconds a session JWT is valid (and so the idle timeout): 60–1800 (R-SJ-2).
    pub ttl: i64,
    /// Seconds from sign-in after which no refresh happens: 10 minutes to 30 days.
    pub absolute: i64,
}

impl Default for SessionLifetimes {
    fn default() -> Self {
        SessionLifetimes {
            ttl: SESSION_TTL,
            absolute: 12 * 3600,
        }
    }
}

impl SessionLifetimes {
    /// A JWT with less than this left is re-issued: 10 minutes, or half the TTL if shorter.
    pub fn refresh_window(&self) -> i64 {
        (self.ttl / 2).min(600)
    }
}

pub(super) fn check(raw: &RawSettings, problems: &mut Vec<Problem>) -> SessionLifetimes {
    let d = SessionLifetimes::default();
    let ttl = super::proxy::number(
        "PORTCULLIS_SESSION_TTL",
        &raw.session_ttl,
        d.ttl as u64,
        60,
        SESSION_TTL as u64,
        problems,
    ) as i64;
    let absolute = super::proxy::number(
        "PORTCULLIS_SESSION_MAX_LIFETIME",
        &raw.session_max_lifetime,
        d.absolute as u64,
        600,
        30 * 24 * 3600,
        problems,
    ) as i64;
    if absolute < ttl {
        problems.push(Problem::new(format!(
            "PORTCULLIS_SESSION_MAX_LIFETIME ({absolute} s) is shorter than PORTCULLIS_SESSION_TTL ({ttl} s)"
        )));
    }
    SessionLifetimes { ttl, absolute }
}
