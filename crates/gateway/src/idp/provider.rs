//! The IdP as Portcullis knows it once loaded: endpoints (discovered, with configured ones
//! taking precedence), issuer, and the JWKS with last-known-good semantics.
//!
//! Hand-written rather than `openidconnect` (no back-channel logout token, ramosbugs/
//! openidconnect-rs#68; no DPoP, #54; old RustCrypto generation): see STACK.md.

use std::sync::Arc;

use arc_swap::ArcSwap;
use portcullis_core::config::{IdpEndpoints, OidcConfig, ParMode};
use portcullis_core::jose::{Jwks, UnknownKid};
use portcullis_core::oidc::discovery::{
    DiscoveryError, check_algs, discovery_candidates, merge, parse_discovery,
};
use portcullis_core::time::Clock;
use serde_json::{Map, Value};

use super::client::{IdpCall, IdpError, IdpHttp};
use crate::metrics::JwksTrigger;

/// Endpoints and issuer in effect (the merge itself is `core::oidc::discovery::merge`).
pub use portcullis_core::oidc::discovery::ProviderMetadata as Metadata;

/// Minimum time between JWKS refetches for an unknown `kid`, in seconds (R-IDT-3).
pub const REFETCH_COOLDOWN_SECS: i64 = 5;

/// A loaded IdP: metadata plus a JWKS that refreshes without ever emptying.
#[derive(Debug)]
pub struct Provider {
    pub metadata: Metadata,
    jwks: ArcSwap<Jwks>,
    /// Single-flight guard and time of the last fetch (unix seconds, from `clock`).
    refetch: tokio::sync::Mutex<i64>,
    clock: Arc<dyn Clock>,
}

impl Provider {
    pub fn jwks(&self) -> Arc<Jwks> {
        self.jwks.load_full()
    }

    /// Refetch the JWKS because a token named an unknown `kid` (Core §10.1.1). Single-flight
    /// with a cooldown; on failure the last-known-good set stays (R-IDT-4). Returns whether a
    /// new set is in place.
    pub async fn refetch_jwks(&self, http: &IdpHttp) -> bool {
        let mut last = self.refetch.lock().await;
        let now = self.clock.now();
        if now - *last < REFETCH_COOLDOWN_SECS {
            return false;
        }
        *last = now;
        let fetched = fetch_jwks(http, &self.metadata.jwks_uri).await;
        if let Some(m) = http.metrics() {
            m.jwks_refresh(JwksTrigger::UnknownKid, fetched.is_ok());
        }
        match fetched {
            Ok(j) => {
                self.jwks.store(Arc::new(j));
                tracing::info!("JWKS refreshed after unknown kid");
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "JWKS refetch failed; keeping the last-known-good keys");
                false
            }
        }
    }

    /// Verify with the current JWKS; if the key's `kid` is unknown, refetch the JWKS once
    /// (single-flight, cooldown: [`Provider::refetch_jwks`]) and verify again (R-IDT-3,
    /// Core §10.1.1). Any other error, or a second unknown kid, is returned as is.
    ///
    /// `verify` is e.g. `|jwks| validate_id_token(token, jwks, &exp)`.
    pub async fn verify_with_refetch<T, E: UnknownKid>(
        &self,
        http: &IdpHttp,
        verify: impl Fn(&Jwks) -> Result<T, E>,
    ) -> Result<T, E> {
        match verify(&self.jwks()) {
            Err(e) if e.is_unknown_kid() => {
                self.refetch_jwks(http).await;
                verify(&self.jwks())
            }
            other => other,
        }
    }

    /// Periodic refresh (R-RS-4): keep the old set on failure.
    pub async fn refresh_jwks(&self, http: &IdpHttp) -> Result<(), IdpError> {
        let fetched = fetch_jwks(http, &self.metadata.jwks_uri).await;
        if let Some(m) = http.metrics() {
            m.jwks_refresh(JwksTrigger::Periodic, fetched.is_ok());
        }
        let j = fetched?;
        self.jwks.store(Arc::new(j));
        *self.refetch.lock().await = self.clock.now();
        Ok(())
    }
}

/// Why the IdP could not be loaded (readiness reason).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Http(#[from] IdpError),
    /// Discovery document or merged metadata refused (R-CFG-2/3/7).
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    #[error("{0}")]
    Invalid(String),
}

/// Load metadata and keys. Never called on a request path; the loader task retries it.
pub async fn load(
    oidc: &OidcConfig,
    http: &IdpHttp,
    clock: Arc<dyn Clock>,
) -> Result<Provider, LoadError> {
    let ep = &oidc.endpoints;
    let discovered = match &ep.discovery_url {
        Some(url) => Some(fetch_discovery(http, url, oidc.allow_insecure_http).await?),
        None if ep.issuer.is_none() || ep.jwks_uri.is_none() => {
            Some(discover_from_endpoints(http, ep, oidc.allow_insecure_http).await?)
        }
        None => None,
    };
    let metadata = merge(ep, discovered.as_ref())?;
    check_par(oidc.pushed_authorization_requests, &metadata)?;
    let jwks = fetch_jwks(http, &metadata.jwks_uri).await?;
    check_algs(discovered.as_ref(), &oidc.allowed_algs, &jwks)?;
    Ok(Provider {
        metadata,
        jwks: ArcSwap::from_pointee(jwks),
        refetch: tokio::sync::Mutex::new(clock.now()),
        clock,
    })
}

/// RFC 9126: `required` needs an advertised PAR endpoint (not ready until the IdP has one).
/// An IdP that requires PAR is used with it under `auto`; under `off` every sign-in would be
/// refused there, which the log says.
fn check_par(mode: ParMode, metadata: &Metadata) -> Result<(), LoadError> {
    let advertised = metadata.pushed_authorization_request_endpoint.is_some();
    match mode {
        ParMode::Required if !advertised => Err(LoadError::Invalid(
            "OIDC_PUSHED_AUTHORIZATION_REQUESTS=required, but the IdP's discovery document has no pushed_authorization_request_endpoint; enable pushed authorization requests at the IdP or set OIDC_PUSHED_AUTHORIZATION_REQUESTS=auto".into(),
        )),
        ParMode::Auto if metadata.require_pushed_authorization_requests && !advertised => {
            Err(LoadError::Invalid(
                "the IdP requires pushed authorization requests (require_pushed_authorization_requests) but advertises no pushed_authorization_request_endpoint".into(),
            ))
        }
        ParMode::Off if metadata.require_pushed_authorization_requests => {
            tracing::warn!(
                "the IdP requires pushed authorization requests, but OIDC_PUSHED_AUTHORIZATION_REQUESTS=off: sign-ins will be refused by the IdP; set it to auto"
            );
            Ok(())
        }
        _ => Ok(()),
    }
}

async fn fetch_jwks(http: &IdpHttp, url: &url::Url) -> Result<Jwks, IdpError> {
    let r = http.get(url, None, IdpCall::Jwks).await?;
    if r.status != 200 {
        return Err(IdpError::Status {
            url: url.to_string(),
            status: r.status,
        });
    }
    let jwks = Jwks::parse(&r.body).map_err(|e| IdpError::Invalid {
        url: url.to_string(),
        reason: e.to_string(),
    })?;
    if jwks.is_empty() {
        return Err(IdpError::Invalid {
            url: url.to_string(),
            reason: "no usable signing key".into(),
        });
    }
    Ok(jwks)
}

/// Fetch and check a discovery document (Disc §4.3, R-CFG-2/3).
async fn fetch_discovery(
    http: &IdpHttp,
    url: &url::Url,
    insecure: bool,
) -> Result<Map<String, Value>, LoadError> {
    let r = http.get(url, None, IdpCall::Discovery).await?;
    if r.status != 200 {
        return Err(IdpError::Status {
            url: url.to_string(),
            status: r.status,
        }
        .into());
    }
    Ok(parse_discovery(url, &r.body, insecure)?)
}

/// Manual endpoints without issuer/JWKS (seed 000's three-endpoint example): look for the
/// IdP's discovery document under successively shorter prefixes of the authorization
/// endpoint's path (finds Okta, Keycloak, Entra layouts). Without it no ID token could be
/// verified, so failing here keeps the gateway not-ready rather than trusting unsigned data.
async fn discover_from_endpoints(
    http: &IdpHttp,
    ep: &IdpEndpoints,
    insecure: bool,
) -> Result<Map<String, Value>, LoadError> {
    let Some(auth) = &ep.authorization_endpoint else {
        return Err(LoadError::Invalid("no authorization endpoint".into()));
    };
    for url in discovery_candidates(auth) {
        if let Ok(doc) = fetch_discovery(http, &url, insecure).await {
            tracing::info!(%url, "found the IdP's discovery document for the manual endpoints");
            return Ok(doc);
        }
    }
    Err(LoadError::Invalid(
        "manual endpoint configuration: the IdP's issuer and JWKS are unknown and no discovery document was found; set OIDC_ISSUER and OIDC_JWKS_URI".into(),
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::sync::atomic::{AtomicUsize, Ordering};

    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use portcullis_core::jose::JoseError;
    use serde_json::json;

    use super::*;

    /// A JWKS with one fresh P-256 key named `kid`.
    fn jwks_doc(kid: &str) -> String {
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .unwrap();
        let kp =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
        let p = kp.public_key().as_ref();
        json!({"keys": [{
            "kty": "EC", "crv": "P-256", "kid": kid,
            "x": URL_SAFE_NO_PAD.encode(&p[1..33]), "y": URL_SAFE_NO_PAD.encode(&p[33..]),
        }]})
        .to_string()
    }

    /// A provider whose JWKS holds `old`, and a JWKS endpoint (serving `new`) that counts hits.
    async fn provider_with_server() -> (Provider, Arc<AtomicUsize>) {
        let hits = Arc::new(AtomicUsize::new(0));
        let body = jwks_doc("new");
        let counter = hits.clone();
        let app = axum::Router::new().route(
            "/jwks",
            axum::routing::get(move || {
                counter.fetch_add(1, Ordering::SeqCst);
                let body = body.clone();
                async move { body }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let base = format!("http://{addr}");
        let u = |p: &str| url::Url::parse(&format!("{base}{p}")).unwrap();
        let metadata = Metadata {
            issuer: base.clone(),
            authorization_endpoint: u("/auth"),
            token_endpoint: u("/token"),
            userinfo_endpoint: None,
            jwks_uri: u("/jwks"),
            end_session_endpoint: None,
            iss_parameter_supported: false,
            pushed_authorization_request_endpoint: None,
            require_pushed_authorization_requests: false,
        };
        let provider = Provider {
            metadata,
            jwks: ArcSwap::from_pointee(Jwks::parse(jwks_doc("old").as_bytes()).unwrap()),
            // Past the cooldown, so the first unknown kid may refetch.
            refetch: tokio::sync::Mutex::new(1_000 - REFETCH_COOLDOWN_SECS * 2),
            clock: portcullis_core::time::ManualClock::new(1_000),
        };
        (provider, hits)
    }

    /// Stands in for `validate_id_token`: succeeds when the JWKS has `kid`.
    fn needs(kid: &'static str) -> impl Fn(&Jwks) -> Result<&'static str, JoseError> {
        move |jwks| {
            if jwks.contains_kid(kid) {
                Ok(kid)
            } else {
                Err(JoseError::UnknownKid)
            }
        }
    }

    /// R-IDT-3: a known kid verifies without any fetch.
    #[tokio::test]
    async fn r_idt_3_known_kid_no_refetch() {
        let (p, hits) = provider_with_server().await;
        let http = IdpHttp::new(None).unwrap();
        assert_eq!(p.verify_with_refetch(&http, needs("old")).await, Ok("old"));
        assert_eq!(hits.load(Ordering::SeqCst), 0);
    }

    /// R-IDT-3: an unknown kid refetches once and verifies with the new set.
    #[tokio::test]
    async fn r_idt_3_unknown_kid_refetches_once_then_verifies() {
        let (p, hits) = provider_with_server().await;
        let http = IdpHttp::new(None).unwrap();
        assert_eq!(p.verify_with_refetch(&http, needs("new")).await, Ok("new"));
        assert_eq!(hits.load(Ordering::SeqCst), 1);
        assert!(p.jwks().contains_kid("new") && !p.jwks().contains_kid("old"));
    }

    /// R-IDT-3: still unknown after the refetch → UnknownKid; a second attempt within the
    /// cooldown does not fetch again.
    #[tokio::test]
    async fn r_idt_3_still_unknown_and_cooldown() {
        let (p, hits) = provider_with_server().await;
        let http = IdpHttp::new(None).unwrap();
        assert_eq!(
            p.verify_with_refetch(&http, needs("other")).await,
            Err(JoseError::UnknownKid)
        );
        assert_eq!(hits.load(Ordering::SeqCst), 1);
        assert_eq!(
            p.verify_with_refetch(&http, needs("other")).await,
            Err(JoseError::UnknownKid)
        );
        assert_eq!(hits.load(Ordering::SeqCst), 1);
    }

    /// RFC 9126: `required` needs an advertised endpoint; `auto` cannot serve an IdP that
    /// requires PAR without one; `off` against an IdP that requires it only warns.
    #[tokio::test]
    async fn par_readiness() {
        let (p, _) = provider_with_server().await;
        let mut m = p.metadata.clone();
        let err = |mode, m: &Metadata| check_par(mode, m).map_err(|e| e.to_string());
        assert!(err(ParMode::Auto, &m).is_ok());
        assert!(err(ParMode::Off, &m).is_ok());
        assert_eq!(
            err(ParMode::Required, &m).unwrap_err(),
            "OIDC_PUSHED_AUTHORIZATION_REQUESTS=required, but the IdP's discovery document has no pushed_authorization_request_endpoint; enable pushed authorization requests at the IdP or set OIDC_PUSHED_AUTHORIZATION_REQUESTS=auto"
        );
        m.require_pushed_authorization_requests = true;
        assert_eq!(
            err(ParMode::Auto, &m).unwrap_err(),
            "the IdP requires pushed authorization requests (require_pushed_authorization_requests) but advertises no pushed_authorization_request_endpoint"
        );
        assert!(err(ParMode::Off, &m).is_ok());
        m.pushed_authorization_request_endpoint = Some(url::Url::parse("https://idp/par").unwrap());
        for mode in [ParMode::Auto, ParMode::Required, ParMode::Off] {
            assert!(err(mode, &m).is_ok());
        }
    }

    /// Any other error is returned without a refetch.
    #[tokio::test]
    async fn other_errors_do_not_refetch() {
        let (p, hits) = provider_with_server().await;
        let http = IdpHttp::new(None).unwrap();
        let r: Result<(), JoseError> = p
            .verify_with_refetch(&http, |_| Err(JoseError::BadSignature))
            .await;
        assert_eq!(r, Err(JoseError::BadSignature));
        assert_eq!(hits.load(Ordering::SeqCst), 0);
    }
}
