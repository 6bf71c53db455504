//! The TLS side of an `https://` upstream: one rustls client configuration, built at start-up
//! from the validated settings (custom CA or the platform's roots; an optional client
//! certificate for mTLS). Certificate verification is always on: there is no switch to turn
//! it off.

use std::sync::Arc;

use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use portcullis_core::config::UpstreamTls;
use rustls::ClientConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Why the upstream's TLS configuration could not be built (the files were checked during
/// configuration validation, so this is rare: e.g. no usable system roots).
#[derive(Debug, thiserror::Error)]
pub enum UpstreamTlsError {
    #[error("upstream CA bundle: {0}")]
    Ca(String),
    #[error("upstream client certificate: {0}")]
    ClientCert(String),
    #[error("upstream TLS: {0}")]
    Tls(#[from] rustls::Error),
    /// Not a TLS problem, but found while building the upstream's clients like the others.
    #[error("upstream URL {0}: its host cannot be sent as a Host header")]
    Host(String),
}

/// The two connectors of an https upstream: one offering `h2` and `http/1.1` by ALPN for
/// ordinary requests, one offering only HTTP/1.1 for upgrades (a WebSocket handshake is an
/// HTTP/1.1 exchange).
#[derive(Clone)]
pub struct Connectors {
    pub any: HttpsConnector<HttpConnector>,
    pub h1: HttpsConnector<HttpConnector>,
}

/// Build the connectors over `tcp` (which must not enforce the http scheme).
pub fn connectors(tls: &UpstreamTls, tcp: HttpConnector) -> Result<Connectors, UpstreamTlsError> {
    let config = client_config(tls)?;
    let any = HttpsConnectorBuilder::new()
        .with_tls_config(config.clone())
        .https_only()
        .enable_http1()
        .enable_http2()
        .wrap_connector(tcp.clone());
    let h1 = HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_only()
        .enable_http1()
        .wrap_connector(tcp);
    Ok(Connectors { any, h1 })
}

fn client_config(tls: &UpstreamTls) -> Result<ClientConfig, UpstreamTlsError> {
    // An explicit provider: the process default may not be installed (tests, embedding).
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder =
        ClientConfig::builder_with_provider(provider).with_safe_default_protocol_versions()?;
    let builder = match &tls.ca_pem {
        // The operator's bundle replaces the default roots: only the app's own CA is trusted.
        Some(pem) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                let c = c.map_err(|e| UpstreamTlsError::Ca(e.to_string()))?;
                roots
                    .add(c)
                    .map_err(|e| UpstreamTlsError::Ca(e.to_string()))?;
            }
            builder.with_root_certificates(roots)
        }
        // The platform's roots, as for the IdP (reqwest's default verifier).
        None => {
            use rustls_platform_verifier::BuilderVerifierExt;
            builder.with_platform_verifier()?
        }
    };
    let config = match &tls.client {
        Some(id) => {
            let chain = CertificateDer::pem_slice_iter(id.cert_pem.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| UpstreamTlsError::ClientCert(e.to_string()))?;
            let key = PrivateKeyDer::from_pem_slice(id.key_pem.expose().as_bytes())
                .map_err(|e| UpstreamTlsError::ClientCert(e.to_string()))?;
            builder.with_client_auth_cert(chain, key)?
        }
        None => builder.with_no_client_auth(),
    };
    Ok(config)
}
