//! Offline access (seed 001): on when the scope asks for `offline_access` (the Microsoft
//! identity platform's shape) or `access_type: offline` is set (Google's). Portcullis then
//! keeps the IdP's refresh token server-side and re-checks the person at the IdP every
//! `recheck_interval` seconds.

use std::collections::BTreeMap;

use super::raw::RawSettings;
use super::validate::Problem;

/// The scope that asks for a refresh token (OIDC Core §11).
pub const OFFLINE_ACCESS_SCOPE: &str = "offline_access";
/// Default seconds between re-checks of a session at the IdP.
pub const DEFAULT_RECHECK_SECS: i64 = 900;
/// Bounds of the interval: not more often than a minute (every session costs an IdP call),
/// at least daily.
pub const MIN_RECHECK_SECS: u64 = 60;
pub const MAX_RECHECK_SECS: u64 = 86_400;

/// Offline access settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OfflineAccess {
    /// Keep refresh tokens and re-check sessions at the IdP.
    pub enabled: bool,
    /// Seconds between two re-checks of one session.
    pub recheck_interval: i64,
}

impl Default for OfflineAccess {
    fn default() -> Self {
        OfflineAccess {
            enabled: false,
            recheck_interval: DEFAULT_RECHECK_SECS,
        }
    }
}

/// Whether one IdP's sign-ins ask for offline access: the `offline_access` scope, or
/// `access_type=offline` in the authorization parameters (which already hold it from the
/// file).
///
/// Google issues a refresh token only when the person is shown the consent screen, so with
/// `access_type=offline` Portcullis asks for it with `prompt=consent` unless
/// `customParameters` sets `prompt` itself (then the operator decides).
pub(super) fn idp_wants_offline(
    scopes: &[String],
    params: &mut BTreeMap<String, String>,
    problems: &mut Vec<Problem>,
) -> bool {
    let access_type = params.get("access_type").map(String::as_str);
    let google = match access_type {
        None | Some("online") => false,
        Some("offline") => true,
        Some(other) => {
            problems.push(Problem::new(format!(
                "access_type must be offline or online, got `{other}`"
            )));
            false
        }
    };
    if google {
        params
            .entry("prompt".into())
            .or_insert_with(|| "consent".into());
    }
    google || scopes.iter().any(|s| s == OFFLINE_ACCESS_SCOPE)
}

/// The gateway's offline access: on when any IdP asks for it; the re-check interval.
pub(super) fn check(
    raw: &RawSettings,
    enabled: bool,
    session_max_lifetime: i64,
    problems: &mut Vec<Problem>,
    warnings: &mut Vec<String>,
) -> OfflineAccess {
    let recheck_interval = super::proxy::number(
        "PORTCULLIS_OFFLINE_RECHECK",
        &raw.offline_recheck,
        DEFAULT_RECHECK_SECS as u64,
        MIN_RECHECK_SECS,
        MAX_RECHECK_SECS,
        problems,
    ) as i64;
    if raw.offline_recheck.is_some() && !enabled {
        warnings.push(
            "PORTCULLIS_OFFLINE_RECHECK is set but offline access is off: add offline_access to the scope or set access_type: offline".into(),
        );
    }
    if enabled && recheck_interval >= session_max_lifetime {
        warnings.push(format!(
            "PORTCULLIS_OFFLINE_RECHECK ({recheck_interval} s) is not shorter than the session lifetime ({session_max_lifetime} s): sessions end before their first re-check at the IdP"
        ));
    }
    OfflineAccess {
        enabled,
        recheck_interval,
    }
}
