//! Start-up never blocks on the IdP (R-RS-3): this task loads discovery and JWKS with
//! exponential backoff (capped at 60 s), publishes the provider, then refreshes the JWKS
//! hourly (R-RS-4) keeping the last-known-good keys on failure.

use std::sync::Arc;
use std::time::Duration;

use crate::state::AppState;

use super::provider;

const MAX_BACKOFF: Duration = Duration::from_secs(60);
const JWKS_REFRESH: Duration = Duration::from_secs(3600);

/// Spawn the loader; returns at once.
pub fn spawn(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(500);
        let provider = loop {
            match provider::load(&state.config, &state.idp).await {
                Ok(p) => break Arc::new(p),
                Err(e) => {
                    tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "IdP not loaded yet");
                    state.set_not_ready(e.to_string());
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        };
        tracing::info!(issuer = %provider.metadata.issuer, "IdP metadata and JWKS loaded; ready");
        state.set_provider(provider.clone());
        let mut last_insecure_warn = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(JWKS_REFRESH).await;
            if let Err(e) = provider.refresh_jwks(&state.idp).await {
                tracing::warn!(error = %e, "hourly JWKS refresh failed; keeping the last-known-good keys");
            }
            // R-CFG-4: remind operators every hour that transport security is relaxed.
            if state.config.oidc.allow_insecure_http && last_insecure_warn.elapsed() >= JWKS_REFRESH
            {
                tracing::warn!(
                    "OIDC_ALLOW_INSECURE_HTTP is on: IdP traffic may be plain http (development only)"
                );
                last_insecure_warn = tokio::time::Instant::now();
            }
        }
    })
}
