//! Offline access (seed 001): with the `offline_access` scope or `access_type=offline`, the
//! IdP's refresh token is kept with the session — encrypted, server-side only — and every
//! `PORTCULLIS_OFFLINE_RECHECK` seconds Portcullis asks the IdP again whether the person may
//! still be signed in.
//!
//! One re-check of one session:
//! - the refresh grant succeeds → a refreshed ID token (if any) is validated against the
//!   sign-in's (Core §12.2), the claims are mapped again (so groups and roles follow the IdP;
//!   every replica drops its cached user through the change feed), and the rotated refresh
//!   token is stored;
//! - the IdP refuses (an OAuth error such as `invalid_grant`), or its answer breaks a rule (a
//!   refreshed ID token for another `sub`, no role any more) → the session ends on every
//!   replica, with an `auth.refresh` audit event;
//! - no verdict (IdP unreachable, 5xx, throttled) → the session continues and the re-check is
//!   retried after 1, 2, 4, … minutes, never later than the interval.
//!
//! Sessions are leased in the store one replica at a time: a refresh token that rotates must
//! not be used twice (the IdP would take the second use as theft and revoke the grant).

use std::time::Duration;

use portcullis_core::claims::{MappedUser, map_claims};
use portcullis_core::oidc::refresh::{
    OriginalIdToken, RefreshExpectations, RefreshFailure, validate_refreshed_id_token,
};
use portcullis_store::{DueRecheck, RecheckDone};
use serde_json::{Map, Value};

use crate::audit;
use crate::error::WebError;
use crate::idp::exchange::refresh_grant;
use crate::routes::callback::merged_claims;
use crate::state::AppState;

/// How long one replica holds a claimed session (longer than the IdP calls of one re-check
/// can take: token and userinfo requests time out after 10 s each).
pub const LEASE_SECS: i64 = 120;
/// Sessions claimed per store round trip.
const BATCH: i64 = 100;
/// First retry after a re-check without verdict; doubled per failure in a row, capped by the
/// interval.
const RETRY_BASE_SECS: i64 = 60;
/// How often the background task looks for due sessions (real time; due times themselves are
/// on the injected clock).
const TICK: Duration = Duration::from_secs(30);

/// What one pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PassReport {
    /// Re-checked at the IdP and saved.
    pub refreshed: usize,
    /// Ended because the IdP refused or its answer broke a rule.
    pub ended: usize,
    /// No verdict (IdP unreachable): retried later.
    pub deferred: usize,
}

/// The result of one session's re-check.
enum Verdict {
    Refreshed,
    /// End the session; the reason is for the log and the audit trail (no secrets in it).
    End(String),
    /// Retry later; why.
    Retry(String),
    /// Nothing to do (the lease was lost or the session ended meanwhile).
    Skipped,
}

/// Start the background re-checks (a no-op task when offline access is off).
pub fn spawn(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if !state.config.offline.enabled {
            return;
        }
        loop {
            tokio::time::sleep(TICK).await;
            recheck_due_sessions(&state).await;
        }
    })
}

/// One pass: re-check every session that is due now (by `state.clock`), batch by batch.
/// The background task calls it periodically; tests call it directly.
pub async fn recheck_due_sessions(state: &AppState) -> PassReport {
    let mut report = PassReport::default();
    if !state.config.offline.enabled {
        return report;
    }
    // Until an IdP with offline access is loaded nothing can be checked; due sessions wait
    // for the next pass (a session of an IdP that is still loading is deferred).
    if !state
        .idps
        .iter()
        .any(|i| i.oidc.offline_access && i.provider().is_ok())
    {
        return report;
    }
    let lease = match portcullis_core::oidc::pkce::random_token() {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "offline access: no randomness for a lease");
            return report;
        }
    };
    loop {
        let now = state.now();
        let due = match state
            .store
            .sessions
            .claim_rechecks(&lease, now + LEASE_SECS, now, BATCH)
            .await
        {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "offline access: cannot read due sessions");
                return report;
            }
        };
        let full = due.len() as i64 == BATCH;
        for d in &due {
            match recheck(state, d, &lease).await {
                Verdict::Refreshed => report.refreshed += 1,
                Verdict::End(reason) => {
                    end_session(state, d, &reason).await;
                    report.ended += 1;
                }
                Verdict::Retry(reason) => {
                    defer(state, d, &lease, &reason).await;
                    report.deferred += 1;
                }
                Verdict::Skipped => {}
            }
        }
        if !full {
            return report;
        }
    }
}

/// Re-check one leased session at the IdP.
async fn recheck(state: &AppState, due: &DueRecheck, lease: &str) -> Verdict {
    let Some(original) = due
        .id_token
        .as_deref()
        .and_then(|t| OriginalIdToken::from_stored(t).ok())
    else {
        return Verdict::End("the sign-in's ID token is not available".into());
    };
    // The IdP the person signed in with, by the sign-in's issuer.
    let Some(idp) = state.idps.by_issuer(&original.iss) else {
        return Verdict::End(
            "the identity provider of this sign-in is no longer configured".into(),
        );
    };
    let provider = match idp.provider() {
        Ok(p) => p,
        Err(why) => return Verdict::Retry(format!("the IdP is not loaded: {why}")),
    };
    let provider = &provider;
    let cfg = &idp.oidc;
    let keys = state.sessions.keys();
    let Ok(refresh_token) = keys.open_refresh_token(&due.refresh_token, &due.session_id) else {
        // Another secret (beyond the previous one) or a tampered row: nothing to send.
        return Verdict::End("the stored refresh token cannot be decrypted".into());
    };
    let tokens = match refresh_grant(
        &idp.http,
        &provider.metadata.token_endpoint,
        cfg,
        &refresh_token,
        state.now(),
    )
    .await
    {
        Ok(t) => t,
        Err(RefreshFailure::Refused(e)) => return Verdict::End(format!("the IdP refused: {e}")),
        Err(RefreshFailure::Transient(e)) => return Verdict::Retry(e),
    };

    // From here the IdP may have rotated the refresh token: the new one must be stored
    // whatever else happens, unless the session ends.
    let now = state.now();
    // Without a new ID token (the IdP need not send one on refresh), userinfo's claims stand
    // on the sign-in's identity, which userinfo may not override.
    let mut claims = Map::new();
    claims.insert("iss".into(), Value::String(original.iss.clone()));
    claims.insert("sub".into(), Value::String(original.sub.clone()));
    let mut have_claims = false;
    if let Some(id_token) = &tokens.id_token {
        let exp = RefreshExpectations {
            issuer: &provider.metadata.issuer,
            client_id: &cfg.client_id,
            allowed_algs: &cfg.allowed_algs,
            extra_audiences: &[],
            client_audience: cfg.expected_audience.as_deref(),
            now,
        };
        let verify = |jwks: &portcullis_core::jose::Jwks| {
            validate_refreshed_id_token(id_token, jwks, &exp, &original, Some(&tokens.access_token))
        };
        match provider.verify_with_refetch(&idp.http, verify).await {
            Ok(id) => {
                // Google Workspace: the refreshed token must still name an allowed domain.
                if let Err(e) = crate::routes::callback::check_hosted_domain(
                    &cfg.allowed_hosted_domains,
                    &id.claims,
                ) {
                    return Verdict::End(format!("hosted domain: {e}"));
                }
                claims = id.claims;
                have_claims = true;
            }
            Err(e) => return Verdict::End(format!("refreshed ID token rejected: {e}")),
        }
    }
    if provider.metadata.userinfo_endpoint.is_some() {
        match merged_claims(
            idp,
            provider,
            claims.clone(),
            &original.sub,
            &tokens.access_token,
        )
        .await
        {
            Ok(c) => {
                claims = c;
                have_claims = true;
            }
            Err(WebError::IdpUnavailable(e)) => {
                // The grant succeeded: keep the (rotated) token and the old claims; the next
                // re-check reads them again.
                tracing::warn!(error = %e, "offline access: userinfo unavailable; claims not updated this time");
                have_claims = false;
            }
            Err(e) => return Verdict::End(format!("userinfo rejected: {e}")),
        }
    }
    // A refreshed ID token of an Entra ID groups overage carries no groups either: fetched,
    // or the sign-in's outcome (deny ends the session), never silently emptied.
    if have_claims
        && let Err(e) = crate::idp::claim_source::resolve_groups(
            &idp.http,
            &cfg.groups_overage,
            &original.iss,
            &cfg.claim_keys.groups,
            &tokens.access_token,
            &mut claims,
        )
        .await
    {
        return Verdict::End(format!("groups overage: {e}"));
    }
    let profile: Option<MappedUser> = if have_claims {
        match map_claims(&original.iss, &original.sub, &claims, &cfg.claim_keys) {
            Ok(m) => Some(m),
            Err(e) => return Verdict::End(format!("claims rejected: {e}")),
        }
    } else {
        None
    };
    if let Some(m) = &profile
        && state.roles_of(&original.iss, &m.groups).is_err()
    {
        return Verdict::End("the person's groups no longer grant a role".into());
    }

    let keep = tokens.refresh_token.as_deref().unwrap_or(&refresh_token);
    // Re-encrypted every time: a new nonce, and the current key after a secret rotation.
    let Ok(sealed) = keys.seal_refresh_token(keep, &due.session_id) else {
        return Verdict::End("the IdP's refresh token cannot be stored".into());
    };
    let done = RecheckDone {
        session_id: &due.session_id,
        lease,
        refresh_token: &sealed,
        next_at: now + state.config.offline.recheck_interval,
        profile: profile.as_ref(),
    };
    match state.store.sessions.complete_recheck(&done, now).await {
        Ok(saved) if saved.saved => {
            if saved.user_changed {
                // This replica at once; the others through the change feed.
                state.views.users.evict(&due.user_id);
                state.audit.record(
                    now,
                    audit::Entry {
                        action: "auth.refresh",
                        outcome: "ok",
                        actor: None,
                        subject: Some(&due.user_id),
                        ip: None,
                        detail: Some("claims or groups changed at the IdP".into()),
                    },
                );
            }
            tracing::debug!(user = %due.user_id, "offline access: re-checked at the IdP");
            Verdict::Refreshed
        }
        Ok(_) => Verdict::Skipped,
        Err(e) => {
            // The lease runs out and the session is picked up again; with a rotated token the
            // old one is then refused by the IdP and the session ends (fails closed).
            tracing::error!(error = %e, user = %due.user_id, "offline access: re-check not saved");
            Verdict::Skipped
        }
    }
}

/// End a session the IdP no longer vouches for: revoked in the store (every replica learns
/// it through the change feed), at once in this replica's view, audited.
async fn end_session(state: &AppState, due: &DueRecheck, reason: &str) {
    let now = state.now();
    match state
        .store
        .sessions
        .revoke_session(&due.session_id, now)
        .await
    {
        Ok(_) => state
            .views
            .revoked
            .revoke(&due.session_id, due.expires_at, now),
        Err(e) => {
            // The lease expires and the next pass tries again.
            tracing::error!(error = %e, user = %due.user_id, "offline access: cannot end the session");
            return;
        }
    }
    tracing::warn!(event = "auth.refresh", user = %due.user_id, %reason, "offline access: session ended");
    state.audit.record(
        now,
        audit::Entry {
            action: "auth.refresh",
            outcome: "refused",
            actor: None,
            subject: Some(&due.user_id),
            ip: None,
            detail: Some(format!("session ended: {reason}")),
        },
    );
}

/// No verdict: retry after a back-off (1, 2, 4, … minutes, at most the interval).
async fn defer(state: &AppState, due: &DueRecheck, lease: &str, reason: &str) {
    let now = state.now();
    let wait = retry_after(due.failures, state.config.offline.recheck_interval);
    if due.failures == 0 {
        tracing::warn!(user = %due.user_id, %reason, retry_in_s = wait, "offline access: the IdP did not answer the re-check; the session continues");
    } else {
        tracing::debug!(user = %due.user_id, %reason, failures = due.failures + 1, retry_in_s = wait, "offline access: re-check still without answer");
    }
    if let Err(e) = state
        .store
        .sessions
        .defer_recheck(&due.session_id, lease, now + wait)
        .await
    {
        tracing::error!(error = %e, "offline access: cannot schedule the retry");
    }
}

/// Seconds until the next attempt after `failures` re-checks in a row without verdict.
pub fn retry_after(failures: i64, interval: i64) -> i64 {
    let exp = failures.clamp(0, 16) as u32;
    RETRY_BASE_SECS
        .saturating_mul(1_i64 << exp)
        .min(interval)
        .max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_up_to_the_interval() {
        assert_eq!(retry_after(0, 900), 60);
        assert_eq!(retry_after(1, 900), 120);
        assert_eq!(retry_after(3, 900), 480);
        assert_eq!(retry_after(4, 900), 900);
        assert_eq!(retry_after(1000, 900), 900);
        assert_eq!(retry_after(-3, 900), 60);
        assert_eq!(retry_after(0, 60), 60);
    }
}
