//! The IdP's discovery document (`parse_discovery`, secure and insecure), then what the gateway
//! does with an accepted one: `merge` with configured endpoints, `check_algs` against a JWKS,
//! and `discovery_candidates` of the authorization endpoint.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use portcullis_core::config::IdpEndpoints;
use portcullis_core::jose::JwsAlg;
use portcullis_core::oidc::discovery::{
    WELL_KNOWN, check_algs, discovery_candidates, merge, parse_discovery,
};
use portcullis_fuzz::{ISSUER, jwks};

fn url() -> &'static url::Url {
    static U: OnceLock<url::Url> = OnceLock::new();
    U.get_or_init(|| match url::Url::parse(&format!("{ISSUER}{WELL_KNOWN}")) {
        Ok(u) => u,
        Err(_) => std::process::abort(),
    })
}

fuzz_target!(|data: &[u8]| {
    for insecure in [false, true] {
        let Ok(doc) = parse_discovery(url(), data, insecure) else {
            continue;
        };
        // Accepted means: the issuer is the discovery URL's, byte for byte.
        assert_eq!(doc.get("issuer").and_then(|v| v.as_str()), Some(ISSUER));
        let configured = IdpEndpoints {
            discovery_url: Some(url().clone()),
            authorization_endpoint: None,
            token_endpoint: None,
            userinfo_endpoint: None,
            issuer: None,
            jwks_uri: None,
        };
        if let Ok(meta) = merge(&configured, Some(&doc)) {
            assert_eq!(meta.issuer, ISSUER);
            let _ = discovery_candidates(&meta.authorization_endpoint);
        }
        let _ = check_algs(Some(&doc), &[JwsAlg::RS256, JwsAlg::EdDSA], jwks());
    }
});
