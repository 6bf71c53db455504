//! The IdP as Portcullis knows it once loaded: endpoints (discovered, with configured ones
//! taking precedence), issuer, and the JWKS with last-known-good semantics.
//!
//! Hand-written rather than `openidconnect` (no back-channel logout token, ramosbugs/
//! openidconnect-rs#68; no DPoP, #54; old RustCrypto generation): see STACK.md.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use portcullis_core::config::{Config, IdpEndpoints};
use portcullis_core::jose::{Jwks, JwsAlg};
use serde_json::{Map, Value};

use super::client::{CAP_DISCOVERY, CAP_JWKS, IdpError, IdpHttp};

const WELL_KNOWN: &str = "/.well-known/openid-configuration";
/// Minimum time between JWKS refetches for an unknown `kid` (R-IDT-3).
pub const REFETCH_COOLDOWN: Duration = Duration::from_secs(5);

/// Endpoints and issuer in effect.
#[derive(Clone, Debug)]
pub struct Metadata {
    pub issuer: String,
    pub authorization_endpoint: url::Url,
    pub token_endpoint: url::Url,
    pub userinfo_endpoint: Option<url::Url>,
    pub jwks_uri: url::Url,
    pub end_session_endpoint: Option<url::Url>,
    /// RFC 9207: the IdP promises `iss` in authorization responses.
    pub iss_parameter_supported: bool,
}

/// A loaded IdP: metadata plus a JWKS that refreshes without ever emptying.
#[derive(Debug)]
pub struct Provider {
    pub metadata: Metadata,
    jwks: ArcSwap<Jwks>,
    /// Single-flight guard and time of the last fetch.
    refetch: tokio::sync::Mutex<Instant>,
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
        if last.elapsed() < REFETCH_COOLDOWN {
            return false;
        }
        *last = Instant::now();
        match fetch_jwks(http, &self.metadata.jwks_uri).await {
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

    /// Periodic refresh (R-RS-4): keep the old set on failure.
    pub async fn refresh_jwks(&self, http: &IdpHttp) -> Result<(), IdpError> {
        let j = fetch_jwks(http, &self.metadata.jwks_uri).await?;
        self.jwks.store(Arc::new(j));
        *self.refetch.lock().await = Instant::now();
        Ok(())
    }
}

/// Why the IdP could not be loaded (readiness reason).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Http(#[from] IdpError),
    #[error("{0}")]
    Invalid(String),
}

/// Load metadata and keys. Never called on a request path; the loader task retries it.
pub async fn load(config: &Config, http: &IdpHttp) -> Result<Provider, LoadError> {
    let ep = &config.oidc.endpoints;
    let discovered = match &ep.discovery_url {
        Some(url) => Some(fetch_discovery(http, url, config.oidc.allow_insecure_http).await?),
        None if ep.issuer.is_none() || ep.jwks_uri.is_none() => {
            Some(discover_from_endpoints(http, ep, config.oidc.allow_insecure_http).await?)
        }
        None => None,
    };
    let metadata = merge(ep, discovered.as_ref())?;
    let jwks = fetch_jwks(http, &metadata.jwks_uri).await?;
    check_algs(discovered.as_ref(), &config.oidc.allowed_algs, &jwks)?;
    Ok(Provider {
        metadata,
        jwks: ArcSwap::from_pointee(jwks),
        refetch: tokio::sync::Mutex::new(Instant::now()),
    })
}

async fn fetch_jwks(http: &IdpHttp, url: &url::Url) -> Result<Jwks, IdpError> {
    let r = http.get(url, None, CAP_JWKS).await?;
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
    let r = http.get(url, None, CAP_DISCOVERY).await?;
    if r.status != 200 {
        return Err(IdpError::Status {
            url: url.to_string(),
            status: r.status,
        }
        .into());
    }
    let doc = portcullis_core::jose::json::parse_strict_object(&r.body).map_err(|e| {
        LoadError::Invalid(format!(
            "discovery document at {url} is not a JSON object: {e}"
        ))
    })?;
    // R-CFG-2: issuer identical to the discovery URL minus the well-known suffix, no
    // normalisation of slashes or case.
    let expected = url
        .as_str()
        .strip_suffix(WELL_KNOWN)
        .unwrap_or(url.as_str());
    let issuer = doc.get("issuer").and_then(Value::as_str).unwrap_or("");
    if issuer != expected {
        return Err(LoadError::Invalid(format!(
            "discovery issuer `{issuer}` does not match the discovery URL (expected `{expected}`)"
        )));
    }
    if let Some(rt) = doc
        .get("response_types_supported")
        .and_then(Value::as_array)
        && !rt.iter().any(|v| v.as_str() == Some("code"))
    {
        return Err(LoadError::Invalid(
            "the IdP does not support response_type=code".into(),
        ));
    }
    for k in [
        "issuer",
        "authorization_endpoint",
        "token_endpoint",
        "userinfo_endpoint",
        "jwks_uri",
        "end_session_endpoint",
    ] {
        if let Some(v) = doc.get(k).and_then(Value::as_str) {
            check_scheme(k, v, insecure)?;
        }
    }
    Ok(doc)
}

/// R-CFG-3 also for endpoints listed inside a discovery document.
fn check_scheme(name: &str, v: &str, insecure: bool) -> Result<(), LoadError> {
    match url::Url::parse(v) {
        Ok(u) if u.scheme() == "https" || (u.scheme() == "http" && insecure) => Ok(()),
        Ok(_) => Err(LoadError::Invalid(format!(
            "discovery `{name}` is not https ({v}); set OIDC_ALLOW_INSECURE_HTTP=true for development only"
        ))),
        Err(e) => Err(LoadError::Invalid(format!(
            "discovery `{name}` is not a URL: {e}"
        ))),
    }
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
    let segments: Vec<&str> = auth.path().split('/').filter(|s| !s.is_empty()).collect();
    for n in (0..segments.len()).rev() {
        let prefix = segments[..n]
            .iter()
            .map(|s| format!("/{s}"))
            .collect::<String>();
        let Ok(url) = auth.join(&format!("{prefix}{WELL_KNOWN}")) else {
            continue;
        };
        if let Ok(doc) = fetch_discovery(http, &url, insecure).await {
            tracing::info!(%url, "found the IdP's discovery document for the manual endpoints");
            return Ok(doc);
        }
    }
    Err(LoadError::Invalid(
        "manual endpoint configuration: the IdP's issuer and JWKS are unknown and no discovery document was found; set OIDC_ISSUER and OIDC_JWKS_URI".into(),
    ))
}

/// Configured endpoints win over discovered ones (seed 000's precedence rule).
fn merge(ep: &IdpEndpoints, doc: Option<&Map<String, Value>>) -> Result<Metadata, LoadError> {
    let d = |k: &str| -> Option<url::Url> {
        doc.and_then(|d| d.get(k))
            .and_then(Value::as_str)
            .and_then(|s| url::Url::parse(s).ok())
    };
    let need = |v: Option<url::Url>, name: &str| {
        v.ok_or_else(|| LoadError::Invalid(format!("the IdP metadata has no `{name}`")))
    };
    let issuer = ep
        .issuer
        .clone()
        .or_else(|| {
            doc.and_then(|d| d.get("issuer"))
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .ok_or_else(|| LoadError::Invalid("the IdP issuer is unknown".into()))?;
    Ok(Metadata {
        issuer,
        authorization_endpoint: need(
            ep.authorization_endpoint
                .clone()
                .or_else(|| d("authorization_endpoint")),
            "authorization_endpoint",
        )?,
        token_endpoint: need(
            ep.token_endpoint.clone().or_else(|| d("token_endpoint")),
            "token_endpoint",
        )?,
        userinfo_endpoint: ep
            .userinfo_endpoint
            .clone()
            .or_else(|| d("userinfo_endpoint")),
        jwks_uri: need(ep.jwks_uri.clone().or_else(|| d("jwks_uri")), "jwks_uri")?,
        end_session_endpoint: d("end_session_endpoint"),
        iss_parameter_supported: doc
            .and_then(|d| d.get("authorization_response_iss_parameter_supported"))
            .and_then(Value::as_bool)
            .unwrap_or(false),
    })
}

/// R-CFG-7: the IdP must be able to sign with an allowed algorithm.
fn check_algs(
    doc: Option<&Map<String, Value>>,
    allowed: &[JwsAlg],
    jwks: &Jwks,
) -> Result<(), LoadError> {
    let names: Vec<String> = allowed.iter().map(|a| a.as_str().to_string()).collect();
    if let Some(supported) = doc
        .and_then(|d| d.get("id_token_signing_alg_values_supported"))
        .and_then(Value::as_array)
        && !supported
            .iter()
            .filter_map(Value::as_str)
            .any(|s| names.iter().any(|n| n == s))
    {
        return Err(LoadError::Invalid(format!(
            "the IdP signs ID tokens with {supported:?}, none of which is allowed by jwsAlgorithm ({})",
            names.join(",")
        )));
    }
    if !allowed.iter().any(|a| jwks.supports_alg(*a)) {
        return Err(LoadError::Invalid(format!(
            "the IdP's JWKS has no key usable with jwsAlgorithm ({})",
            names.join(",")
        )));
    }
    Ok(())
}
