//! Provider metadata (Discovery §3–4, R-CFG-2/3/7): checking a discovery document and merging
//! it with the configured endpoints. Pure; the gateway fetches and retries.
//!
//! Hand-written rather than `openidconnect` (no back-channel logout token, ramosbugs/
//! openidconnect-rs#68; no DPoP, #54): see STACK.md.

use serde_json::{Map, Value};

use crate::config::IdpEndpoints;
use crate::jose::json::parse_strict_object;
use crate::jose::{JsonError, Jwks, JwsAlg};

/// The discovery suffix (Discovery §4).
pub const WELL_KNOWN: &str = "/.well-known/openid-configuration";

/// Endpoint members whose scheme is checked (R-CFG-3).
const URL_MEMBERS: [&str; 7] = [
    "issuer",
    "authorization_endpoint",
    "token_endpoint",
    "userinfo_endpoint",
    "jwks_uri",
    "end_session_endpoint",
    "pushed_authorization_request_endpoint",
];

/// Endpoints and issuer in effect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderMetadata {
    pub issuer: String,
    pub authorization_endpoint: url::Url,
    pub token_endpoint: url::Url,
    pub userinfo_endpoint: Option<url::Url>,
    pub jwks_uri: url::Url,
    pub end_session_endpoint: Option<url::Url>,
    /// RFC 9207: the IdP promises `iss` in authorization responses.
    pub iss_parameter_supported: bool,
    /// RFC 9126 §5: where authorization requests may be pushed (only from discovery).
    pub pushed_authorization_request_endpoint: Option<url::Url>,
    /// RFC 9126 §5: the IdP accepts authorization requests only when pushed.
    pub require_pushed_authorization_requests: bool,
}

/// Why provider metadata was refused (the gateway's readiness reason; one clear line each).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiscoveryError {
    #[error("discovery document at {url} is not a JSON object: {reason}")]
    NotObject { url: String, reason: JsonError },
    /// R-CFG-2: no normalisation of slashes or case.
    #[error("discovery issuer `{issuer}` does not match the discovery URL (expected `{expected}`)")]
    IssuerMismatch { issuer: String, expected: String },
    #[error("the IdP does not support response_type=code")]
    NoCodeResponseType,
    /// R-CFG-3.
    #[error(
        "discovery `{name}` is not https ({value}); set OIDC_ALLOW_INSECURE_HTTP=true for development only"
    )]
    NotHttps { name: &'static str, value: String },
    #[error("discovery `{name}` is not a URL: {reason}")]
    NotUrl { name: &'static str, reason: String },
    #[error("the IdP issuer is unknown")]
    UnknownIssuer,
    #[error("the IdP metadata has no `{0}`")]
    Missing(&'static str),
    /// R-CFG-7.
    #[error(
        "the IdP signs ID tokens with {supported:?}, none of which is allowed by jwsAlgorithm ({allowed})"
    )]
    AlgsNotSupported {
        supported: Vec<Value>,
        allowed: String,
    },
    /// R-CFG-7.
    #[error("the IdP's JWKS has no key usable with jwsAlgorithm ({allowed})")]
    NoUsableKey { allowed: String },
}

/// Parse and check a discovery document fetched from `url` (Discovery §4.3, R-CFG-2/3): strict
/// JSON object; `issuer` identical to the URL minus the well-known suffix; `code` among the
/// response types if they are listed; every endpoint https (or http with `insecure`).
pub fn parse_discovery(
    url: &url::Url,
    body: &[u8],
    insecure: bool,
) -> Result<Map<String, Value>, DiscoveryError> {
    let doc = parse_strict_object(body).map_err(|reason| DiscoveryError::NotObject {
        url: url.to_string(),
        reason,
    })?;
    let expected = url
        .as_str()
        .strip_suffix(WELL_KNOWN)
        .unwrap_or(url.as_str());
    let issuer = doc.get("issuer").and_then(Value::as_str).unwrap_or("");
    if issuer != expected {
        return Err(DiscoveryError::IssuerMismatch {
            issuer: issuer.to_owned(),
            expected: expected.to_owned(),
        });
    }
    if let Some(rt) = doc
        .get("response_types_supported")
        .and_then(Value::as_array)
        && !rt.iter().any(|v| v.as_str() == Some("code"))
    {
        return Err(DiscoveryError::NoCodeResponseType);
    }
    for name in URL_MEMBERS {
        if let Some(v) = doc.get(name).and_then(Value::as_str) {
            check_scheme(name, v, insecure)?;
        }
    }
    Ok(doc)
}

/// R-CFG-3 also for endpoints listed inside a discovery document.
fn check_scheme(name: &'static str, v: &str, insecure: bool) -> Result<(), DiscoveryError> {
    match url::Url::parse(v) {
        Ok(u) if u.scheme() == "https" || (u.scheme() == "http" && insecure) => Ok(()),
        Ok(_) => Err(DiscoveryError::NotHttps {
            name,
            value: v.to_owned(),
        }),
        Err(e) => Err(DiscoveryError::NotUrl {
            name,
            reason: e.to_string(),
        }),
    }
}

/// Where to look for the discovery document of manually configured endpoints: under each
/// successively shorter prefix of the authorization endpoint's path, longest first (finds the
/// Okta, Keycloak and Entra layouts).
pub fn discovery_candidates(authorization_endpoint: &url::Url) -> Vec<url::Url> {
    let segments: Vec<&str> = authorization_endpoint
        .path()
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    (0..segments.len())
        .rev()
        .filter_map(|n| {
            let prefix: String = segments
                .get(..n)
                .unwrap_or_default()
                .iter()
                .map(|s| format!("/{s}"))
                .collect();
            authorization_endpoint
                .join(&format!("{prefix}{WELL_KNOWN}"))
                .ok()
        })
        .collect()
}

/// Configured endpoints win over discovered ones (seed 000's precedence rule); issuer,
/// authorization, token and JWKS endpoints are required from one or the other. The end-session
/// endpoint and RFC 9207 support come only from discovery.
pub fn merge(
    configured: &IdpEndpoints,
    discovered: Option<&Map<String, Value>>,
) -> Result<ProviderMetadata, DiscoveryError> {
    let d = |k: &str| -> Option<url::Url> {
        discovered
            .and_then(|d| d.get(k))
            .and_then(Value::as_str)
            .and_then(|s| url::Url::parse(s).ok())
    };
    let need = |v: Option<url::Url>, name: &'static str| v.ok_or(DiscoveryError::Missing(name));
    let flag = |k: &str| {
        discovered
            .and_then(|d| d.get(k))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    };
    let issuer = configured
        .issuer
        .clone()
        .or_else(|| {
            discovered
                .and_then(|d| d.get("issuer"))
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .ok_or(DiscoveryError::UnknownIssuer)?;
    Ok(ProviderMetadata {
        issuer,
        authorization_endpoint: need(
            configured
                .authorization_endpoint
                .clone()
                .or_else(|| d("authorization_endpoint")),
            "authorization_endpoint",
        )?,
        token_endpoint: need(
            configured
                .token_endpoint
                .clone()
                .or_else(|| d("token_endpoint")),
            "token_endpoint",
        )?,
        userinfo_endpoint: configured
            .userinfo_endpoint
            .clone()
            .or_else(|| d("userinfo_endpoint")),
        jwks_uri: need(
            configured.jwks_uri.clone().or_else(|| d("jwks_uri")),
            "jwks_uri",
        )?,
        end_session_endpoint: d("end_session_endpoint"),
        iss_parameter_supported: flag("authorization_response_iss_parameter_supported"),
        pushed_authorization_request_endpoint: d("pushed_authorization_request_endpoint"),
        require_pushed_authorization_requests: flag("require_pushed_authorization_requests"),
    })
}

/// R-CFG-7: the IdP must be able to sign with an allowed algorithm: if discovery lists its ID
/// token algs, one must be allowed; the JWKS must hold a key usable with one.
pub fn check_algs(
    discovered: Option<&Map<String, Value>>,
    allowed: &[JwsAlg],
    jwks: &Jwks,
) -> Result<(), DiscoveryError> {
    let names: Vec<&str> = allowed.iter().map(JwsAlg::as_str).collect();
    if let Some(supported) = discovered
        .and_then(|d| d.get("id_token_signing_alg_values_supported"))
        .and_then(Value::as_array)
        && !supported
            .iter()
            .filter_map(Value::as_str)
            .any(|s| names.contains(&s))
    {
        return Err(DiscoveryError::AlgsNotSupported {
            supported: supported.clone(),
            allowed: names.join(","),
        });
    }
    if !allowed.iter().any(|a| jwks.supports_alg(*a)) {
        return Err(DiscoveryError::NoUsableKey {
            allowed: names.join(","),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::jose::test_support::{jwks, rsa_a};
    use serde_json::json;

    const ISS: &str = "https://idp.example.com/realms/a";

    fn u(s: &str) -> url::Url {
        url::Url::parse(s).unwrap()
    }

    fn disc_url() -> url::Url {
        u(&format!("{ISS}{WELL_KNOWN}"))
    }

    fn doc() -> Value {
        json!({
            "issuer": ISS,
            "authorization_endpoint": format!("{ISS}/auth"),
            "token_endpoint": format!("{ISS}/token"),
            "userinfo_endpoint": format!("{ISS}/userinfo"),
            "jwks_uri": format!("{ISS}/certs"),
            "end_session_endpoint": format!("{ISS}/logout"),
            "response_types_supported": ["code", "id_token"],
            "authorization_response_iss_parameter_supported": true,
            "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        })
    }

    fn parse(v: &Value, insecure: bool) -> Result<Map<String, Value>, DiscoveryError> {
        parse_discovery(&disc_url(), v.to_string().as_bytes(), insecure)
    }

    fn none() -> IdpEndpoints {
        IdpEndpoints {
            discovery_url: None,
            authorization_endpoint: None,
            token_endpoint: None,
            userinfo_endpoint: None,
            issuer: None,
            jwks_uri: None,
        }
    }

    /// Discovery §4.3: a good document parses.
    #[test]
    fn r_cfg_2_good_document() {
        assert_eq!(parse(&doc(), false).unwrap()["issuer"], ISS);
    }

    /// R-CFG-2: issuer must equal the discovery URL minus the suffix, byte for byte.
    #[test]
    fn r_cfg_2_issuer_mismatch() {
        for iss in [
            json!(format!("{ISS}/")),
            json!("https://IDP.example.com/realms/a"),
            json!(1),
        ] {
            let mut d = doc();
            d["issuer"] = iss;
            assert!(matches!(
                parse(&d, false).unwrap_err(),
                DiscoveryError::IssuerMismatch { .. }
            ));
        }
        let mut d = doc();
        d["issuer"] = json!("https://evil");
        assert_eq!(
            parse(&d, false).unwrap_err().to_string(),
            format!(
                "discovery issuer `https://evil` does not match the discovery URL (expected `{ISS}`)"
            )
        );
    }

    /// Not a strict JSON object.
    #[test]
    fn discovery_not_object() {
        for (body, reason) in [
            (&b"[]"[..], JsonError::NotObject),
            (b"<html>", JsonError::Invalid),
            (
                br#"{"issuer":"a","issuer":"b"}"#,
                JsonError::DuplicateMember,
            ),
        ] {
            assert_eq!(
                parse_discovery(&disc_url(), body, false).unwrap_err(),
                DiscoveryError::NotObject {
                    url: disc_url().to_string(),
                    reason
                }
            );
        }
    }

    /// R-AZ-1: an IdP that lists response types without `code` is refused.
    #[test]
    fn r_az_1_code_response_type_required() {
        let mut d = doc();
        d["response_types_supported"] = json!(["id_token token"]);
        assert_eq!(
            parse(&d, false).unwrap_err(),
            DiscoveryError::NoCodeResponseType
        );
        d.as_object_mut()
            .unwrap()
            .remove("response_types_supported");
        assert!(parse(&d, false).is_ok());
    }

    /// R-CFG-3: http endpoints only with the insecure flag; non-URLs never.
    #[test]
    fn r_cfg_3_endpoint_schemes() {
        let mut d = doc();
        d["token_endpoint"] = json!("http://idp.example.com/token");
        assert_eq!(
            parse(&d, false).unwrap_err(),
            DiscoveryError::NotHttps {
                name: "token_endpoint",
                value: "http://idp.example.com/token".into()
            }
        );
        assert!(parse(&d, true).is_ok());
        d["jwks_uri"] = json!("not a url");
        assert!(matches!(
            parse(&d, true).unwrap_err(),
            DiscoveryError::NotUrl {
                name: "jwks_uri",
                ..
            }
        ));
        let mut d = doc();
        d["userinfo_endpoint"] = json!("ftp://idp.example.com/u");
        assert!(matches!(
            parse(&d, true).unwrap_err(),
            DiscoveryError::NotHttps { .. }
        ));
    }

    /// Seed 000: discovered values fill in what is not configured.
    #[test]
    fn merge_discovered_only() {
        let d = parse(&doc(), false).unwrap();
        let m = merge(&none(), Some(&d)).unwrap();
        assert_eq!(
            m,
            ProviderMetadata {
                issuer: ISS.into(),
                authorization_endpoint: u(&format!("{ISS}/auth")),
                token_endpoint: u(&format!("{ISS}/token")),
                userinfo_endpoint: Some(u(&format!("{ISS}/userinfo"))),
                jwks_uri: u(&format!("{ISS}/certs")),
                end_session_endpoint: Some(u(&format!("{ISS}/logout"))),
                iss_parameter_supported: true,
                pushed_authorization_request_endpoint: None,
                require_pushed_authorization_requests: false,
            }
        );
    }

    /// Seed 000's precedence rule: configured endpoints win over discovered ones.
    #[test]
    fn merge_configured_wins() {
        let d = parse(&doc(), false).unwrap();
        let ep = IdpEndpoints {
            discovery_url: Some(disc_url()),
            authorization_endpoint: Some(u("https://login.example.com/authorize")),
            token_endpoint: Some(u("https://login.example.com/token")),
            userinfo_endpoint: Some(u("https://login.example.com/me")),
            issuer: Some("https://configured-issuer".into()),
            jwks_uri: Some(u("https://login.example.com/keys")),
        };
        let m = merge(&ep, Some(&d)).unwrap();
        assert_eq!(m.issuer, "https://configured-issuer");
        assert_eq!(
            m.authorization_endpoint.as_str(),
            "https://login.example.com/authorize"
        );
        assert_eq!(m.token_endpoint.as_str(), "https://login.example.com/token");
        assert_eq!(
            m.userinfo_endpoint.unwrap().as_str(),
            "https://login.example.com/me"
        );
        assert_eq!(m.jwks_uri.as_str(), "https://login.example.com/keys");
        // Only discovery knows these.
        assert_eq!(
            m.end_session_endpoint.unwrap().as_str(),
            format!("{ISS}/logout")
        );
        assert!(m.iss_parameter_supported);
    }

    /// Manual configuration without discovery; missing pieces are named.
    #[test]
    fn merge_manual_and_missing() {
        let mut ep = none();
        assert_eq!(merge(&ep, None).unwrap_err(), DiscoveryError::UnknownIssuer);
        ep.issuer = Some(ISS.into());
        assert_eq!(
            merge(&ep, None).unwrap_err(),
            DiscoveryError::Missing("authorization_endpoint")
        );
        ep.authorization_endpoint = Some(u("https://i/auth"));
        assert_eq!(
            merge(&ep, None).unwrap_err(),
            DiscoveryError::Missing("token_endpoint")
        );
        assert_eq!(
            merge(&ep, None).unwrap_err().to_string(),
            "the IdP metadata has no `token_endpoint`"
        );
        ep.token_endpoint = Some(u("https://i/token"));
        assert_eq!(
            merge(&ep, None).unwrap_err(),
            DiscoveryError::Missing("jwks_uri")
        );
        ep.jwks_uri = Some(u("https://i/jwks"));
        let m = merge(&ep, None).unwrap();
        assert_eq!(m.userinfo_endpoint, None);
        assert_eq!(m.end_session_endpoint, None);
        assert!(!m.iss_parameter_supported);
        // A discovered value that is not a URL counts as absent.
        let bad = json!({"issuer": ISS, "authorization_endpoint": "::", "token_endpoint": "x",
            "jwks_uri": "https://i/jwks"});
        assert_eq!(
            merge(&none(), Some(bad.as_object().unwrap())).unwrap_err(),
            DiscoveryError::Missing("authorization_endpoint")
        );
    }

    /// R-CFG-7: allowed algs must meet the IdP's algs and its JWKS.
    #[test]
    fn r_cfg_7_algs() {
        let d = parse(&doc(), false).unwrap();
        let set = jwks(&[rsa_a().jwk()]);
        assert!(check_algs(Some(&d), &[JwsAlg::RS256], &set).is_ok());
        assert!(check_algs(None, &[JwsAlg::RS256], &set).is_ok());
        let e = check_algs(Some(&d), &[JwsAlg::EdDSA, JwsAlg::PS256], &set).unwrap_err();
        assert_eq!(
            e,
            DiscoveryError::AlgsNotSupported {
                supported: vec![json!("RS256"), json!("ES256")],
                allowed: "EdDSA,PS256".into()
            }
        );
        assert!(e.to_string().contains("jwsAlgorithm (EdDSA,PS256)"));
        assert_eq!(
            check_algs(Some(&d), &[JwsAlg::ES256], &set).unwrap_err(),
            DiscoveryError::NoUsableKey {
                allowed: "ES256".into()
            }
        );
    }

    /// Manual endpoints: discovery is looked for under each path prefix, longest first.
    #[test]
    fn discovery_candidates_longest_prefix_first() {
        let c = discovery_candidates(&u("https://idp.example.com/realms/a/protocol/auth"));
        let c: Vec<&str> = c.iter().map(url::Url::as_str).collect();
        assert_eq!(
            c,
            vec![
                "https://idp.example.com/realms/a/protocol/.well-known/openid-configuration",
                "https://idp.example.com/realms/a/.well-known/openid-configuration",
                "https://idp.example.com/realms/.well-known/openid-configuration",
                "https://idp.example.com/.well-known/openid-configuration",
            ]
        );
        assert!(discovery_candidates(&u("https://idp.example.com/")).is_empty());
    }
}
