//! Start-up never blocks on the IdP (R-RS-3): this task loads discovery and JWKS with
//! exponential backoff (capped at 60 s), publishes the provider, then refreshes the JWKS
//! hourly (R-RS-4) keeping the last-known-good keys on failure.
//!
//! Logging follows the readiness state, not the attempts: the first failure of a streak is a
//! WARN, further retries are DEBUG, and becoming ready is one INFO. The not-ready reason (shown
//! by `/readyz` and carried by sign-in's "not ready" error) tells "still starting" from "the
//! IdP cannot be reached, since how long, and why".

use std::sync::Arc;
use std::time::Duration;

use crate::state::AppState;

use super::{Idp, provider};

const MAX_BACKOFF: Duration = Duration::from_secs(60);
const JWKS_REFRESH: Duration = Duration::from_secs(3600);
/// While waiting to retry, the "since <n> s" of the not-ready reason is refreshed this often, so
/// it does not go stale during a 60 s backoff.
const REASON_REFRESH: Duration = Duration::from_secs(5);

/// The not-ready reason before the first attempt has failed.
pub const STARTING_UP: &str = "starting up: loading the identity provider's configuration";

/// The not-ready reason once loading has failed: for how long (since the first failed attempt
/// of the current streak) and the latest cause.
pub fn unreachable_reason(failing_for_secs: i64, cause: &str) -> String {
    format!(
        "the identity provider cannot be reached (since {} s): {cause}",
        failing_for_secs.max(0)
    )
}

/// Spawn the loaders, one per IdP, each on its own; returns at once. Aborting the returned
/// task stops them all (they live in its `JoinSet`).
pub fn spawn(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut set = tokio::task::JoinSet::new();
        for idp in state.idps.iter() {
            set.spawn(run(state.clone(), idp.clone()));
        }
        while set.join_next().await.is_some() {}
    })
}

/// Load one IdP (retrying), publish it, then refresh its JWKS hourly.
async fn run(state: AppState, idp: Arc<Idp>) {
    idp.set_not_ready(STARTING_UP.into());
    let id = idp.label.id.as_str();
    let mut backoff = Duration::from_millis(500);
    // When the current streak of failed attempts started (`state.now()`), and attempts.
    let mut failing_since: Option<i64> = None;
    let mut attempts: u32 = 0;
    let provider = loop {
        let attempt_started = state.now();
        attempts += 1;
        let loaded = provider::load(&idp.oidc, &idp.http, state.clock.clone())
            .await
            .and_then(|p| check_issuer_unique(&state, &idp, p));
        match loaded {
            Ok(p) => break Arc::new(p),
            Err(e) => {
                let cause = e.to_string();
                let first = failing_since.is_none();
                let since = *failing_since.get_or_insert(attempt_started);
                if first {
                    // The state change (starting → not ready) is the WARN; the retries of
                    // the same streak are DEBUG, so a long outage does not flood the log.
                    tracing::warn!(idp = id, error = %cause, retry_in_ms = backoff.as_millis() as u64,
                        "the IdP cannot be loaded; not ready (retrying in the background; further failures are logged at DEBUG)");
                } else {
                    tracing::debug!(idp = id, error = %cause, attempts, retry_in_ms = backoff.as_millis() as u64,
                        "the IdP still cannot be loaded");
                }
                idp.set_not_ready(unreachable_reason(state.now() - since, &cause));
                wait_refreshing_reason(&state, &idp, backoff, since, &cause).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    };
    match failing_since {
        Some(since) => tracing::info!(
            idp = id,
            issuer = %provider.metadata.issuer,
            attempts,
            unreachable_for_s = state.now() - since,
            "the IdP is reachable again: metadata and JWKS loaded; ready"
        ),
        None => tracing::info!(
            idp = id,
            issuer = %provider.metadata.issuer,
            "IdP metadata and JWKS loaded; ready"
        ),
    }
    idp.set_provider(provider.clone());
    let mut last_insecure_warn = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(JWKS_REFRESH).await;
        if let Err(e) = provider.refresh_jwks(&idp.http).await {
            tracing::warn!(idp = id, error = %e, "hourly JWKS refresh failed; keeping the last-known-good keys");
        }
        // R-CFG-4: remind operators every hour that transport security is relaxed.
        if idp.oidc.allow_insecure_http && last_insecure_warn.elapsed() >= JWKS_REFRESH {
            tracing::warn!(
                "OIDC_ALLOW_INSECURE_HTTP is on: IdP traffic may be plain http (development only)"
            );
            last_insecure_warn = tokio::time::Instant::now();
        }
    }
}

/// Two IdPs with one issuer could not be told apart (sessions, back-channel logouts): the
/// configuration refuses it where it knows the issuers; this catches an IdP whose issuer is
/// only known once loaded.
fn check_issuer_unique(
    state: &AppState,
    idp: &Arc<Idp>,
    p: provider::Provider,
) -> Result<provider::Provider, provider::LoadError> {
    let iss = &p.metadata.issuer;
    match state
        .idps
        .iter()
        .find(|o| !Arc::ptr_eq(o, idp) && o.has_issuer(iss))
    {
        Some(other) => Err(provider::LoadError::Invalid(format!(
            "its issuer {iss} is also IdP `{}`'s; each IdP needs its own issuer",
            other.label.id
        ))),
        None => Ok(p),
    }
}

/// Sleep for `backoff` (tokio time: the runtime's timer), updating the "since" of the reason
/// every [`REASON_REFRESH`].
async fn wait_refreshing_reason(
    state: &AppState,
    idp: &Idp,
    backoff: Duration,
    since: i64,
    cause: &str,
) {
    let mut left = backoff;
    while !left.is_zero() {
        let step = left.min(REASON_REFRESH);
        tokio::time::sleep(step).await;
        left -= step;
        idp.set_not_ready(unreachable_reason(state.now() - since, cause));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_tell_starting_up_from_unreachable() {
        assert!(STARTING_UP.starts_with("starting up"));
        let r = unreachable_reason(42, "connection refused");
        assert_eq!(
            r,
            "the identity provider cannot be reached (since 42 s): connection refused"
        );
        assert!(!r.contains("starting up"));
        // A clock stepping back never shows a negative duration.
        assert!(unreachable_reason(-3, "x").contains("(since 0 s)"));
    }
}
