//! TLS towards an `https://` upstream: a custom CA bundle replacing the default roots, and a
//! client certificate for mTLS to the app. The files are read and checked here, at start-up,
//! so a wrong path, a broken PEM or a key that does not belong to its certificate is a
//! configuration problem naming the setting and the file, not a failure on the first request.

use std::io::Read;

use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::Secret;
use super::raw::RawSettings;
use super::validate::Problem;

/// A CA bundle or a certificate chain larger than this is not one (a wrong path).
const MAX_PEM_FILE_BYTES: u64 = 1024 * 1024;

const CA: &str = "PORTCULLIS_UPSTREAM_CA_FILE";
const CERT: &str = "PORTCULLIS_UPSTREAM_CLIENT_CERT_FILE";
const KEY: &str = "PORTCULLIS_UPSTREAM_CLIENT_KEY_FILE";

/// Validated TLS material for the upstream, as PEM text (the gateway builds its rustls
/// configuration from it once, at start-up). Empty for an http upstream.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UpstreamTls {
    /// One or more CA certificates that replace the default roots; `None`: the system roots.
    pub ca_pem: Option<String>,
    /// The client certificate (chain) and its private key, for mTLS to the app.
    pub client: Option<ClientIdentity>,
}

/// A client certificate chain and its key, both PEM, known to match.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientIdentity {
    pub cert_pem: String,
    pub key_pem: Secret,
}

/// Check the upstream TLS settings against the (already parsed) upstream URL.
pub(crate) fn check(
    raw: &RawSettings,
    upstream: Option<&url::Url>,
    problems: &mut Vec<Problem>,
) -> UpstreamTls {
    let mut out = UpstreamTls::default();
    let set: Vec<&str> = [
        (raw.upstream_ca_file.is_some(), CA),
        (raw.upstream_client_cert_file.is_some(), CERT),
        (raw.upstream_client_key_file.is_some(), KEY),
    ]
    .into_iter()
    .filter_map(|(on, name)| on.then_some(name))
    .collect();
    if set.is_empty() {
        return out;
    }
    // Only an https upstream uses them; on http they would be silently ignored.
    match upstream.map(url::Url::scheme) {
        Some("https") => {}
        Some(_) => {
            problems.push(Problem::new(format!(
                "{} only apply to an https:// PORTCULLIS_UPSTREAM; the upstream is http://",
                set.join(", ")
            )));
            return out;
        }
        // No upstream (or an invalid one, reported already).
        None => {
            if raw.upstream.is_none() {
                problems.push(Problem::new(format!(
                    "{} need an https:// PORTCULLIS_UPSTREAM; none is set",
                    set.join(", ")
                )));
            }
            return out;
        }
    }
    if let Some(path) = &raw.upstream_ca_file {
        out.ca_pem = match read_pem_file(path).and_then(|t| check_ca(&t).map(|()| t)) {
            Ok(t) => Some(t),
            Err(e) => {
                problems.push(Problem::new(format!("{CA} `{path}`: {e}")));
                None
            }
        };
    }
    match (&raw.upstream_client_cert_file, &raw.upstream_client_key_file) {
        (None, None) => {}
        (Some(_), None) => problems.push(Problem::new(format!(
            "{CERT} is set without {KEY}: give both (the client certificate and its private key) or neither"
        ))),
        (None, Some(_)) => problems.push(Problem::new(format!(
            "{KEY} is set without {CERT}: give both (the client certificate and its private key) or neither"
        ))),
        (Some(cert_path), Some(key_path)) => {
            let cert = read_pem_file(cert_path)
                .and_then(|t| certs_of(&t).map(|c| (t, c)))
                .map_err(|e| problems.push(Problem::new(format!("{CERT} `{cert_path}`: {e}"))));
            let key = read_pem_file(key_path)
                .and_then(|t| key_of(&t).map(|k| (t, k)))
                .map_err(|e| problems.push(Problem::new(format!("{KEY} `{key_path}`: {e}"))));
            if let (Ok((cert_pem, chain)), Ok((key_pem, key))) = (cert, key) {
                match keys_match(chain, &key) {
                    Ok(()) => {
                        out.client = Some(ClientIdentity {
                            cert_pem,
                            key_pem: Secret::new(key_pem),
                        })
                    }
                    Err(e) => problems.push(Problem::new(format!(
                        "{KEY} `{key_path}` does not belong to {CERT} `{cert_path}`: {e}"
                    ))),
                }
            }
        }
    }
    out
}

/// The file's text, bounded (a wrong path to a huge file must not be read whole).
fn read_pem_file(path: &str) -> Result<String, String> {
    let f = std::fs::File::open(path).map_err(|e| format!("cannot read it: {e}"))?;
    let mut text = String::new();
    f.take(MAX_PEM_FILE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read it as text: {e}"))?;
    if text.len() as u64 > MAX_PEM_FILE_BYTES {
        return Err("it is larger than 1 MiB; it is not a PEM certificate file".into());
    }
    Ok(text)
}

fn pem_error(e: pem::Error) -> String {
    match e {
        pem::Error::Base64Decode(_) => "a PEM block is not valid base64".into(),
        pem::Error::MissingSectionEnd { .. } => "a PEM block has no END line".into(),
        other => format!("it is not valid PEM: {other}"),
    }
}

/// Every `CERTIFICATE` block of a PEM text; at least one.
fn certs_of(text: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(text.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem_error)?;
    if certs.is_empty() {
        return Err("no certificate in it (expected `-----BEGIN CERTIFICATE-----` blocks)".into());
    }
    Ok(certs)
}

/// Every certificate parses as a trust anchor.
fn check_ca(text: &str) -> Result<(), String> {
    let certs = certs_of(text)?;
    let mut roots = rustls::RootCertStore::empty();
    for (i, c) in certs.into_iter().enumerate() {
        roots
            .add(c)
            .map_err(|e| format!("certificate {} is not a valid CA certificate: {e}", i + 1))?;
    }
    Ok(())
}

/// The private key: PKCS#8, PKCS#1 (`RSA PRIVATE KEY`) or SEC1 (`EC PRIVATE KEY`).
fn key_of(text: &str) -> Result<PrivateKeyDer<'static>, String> {
    if text.contains("ENCRYPTED PRIVATE KEY") {
        return Err("it is an encrypted key; give an unencrypted one".into());
    }
    match PrivateKeyDer::from_pem_slice(text.as_bytes()) {
        Ok(k) => Ok(k),
        Err(pem::Error::NoItemsFound) => Err(
            "no private key in it (expected a `PRIVATE KEY`, `RSA PRIVATE KEY` or `EC PRIVATE KEY` block)"
                .into(),
        ),
        Err(e) => Err(pem_error(e)),
    }
}

/// The key is one rustls can sign with, and its public key is the leaf certificate's.
fn keys_match(chain: Vec<CertificateDer<'static>>, key: &PrivateKeyDer<'_>) -> Result<(), String> {
    let signer = rustls::crypto::aws_lc_rs::sign::any_supported_type(key)
        .map_err(|e| format!("the key is not usable: {e}"))?;
    rustls::sign::CertifiedKey::new(chain, signer)
        .keys_match()
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => {
                "the key's public key is not the certificate's".to_string()
            }
            other => other.to_string(),
        })
}
