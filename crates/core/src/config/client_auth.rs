//! How Portcullis authenticates to the IdP (token endpoint, PAR endpoint): client secret (post
//! or basic) or `private_key_jwt` with a key file, and whether pushed authorization requests
//! (RFC 9126) are used.
//!
//! The key file is read and parsed here, once, while the configuration is validated: a missing,
//! unreadable or wrong key is then reported with every other problem (by `serve`, `serve
//! --check` and `doctor` alike) instead of surfacing at the first sign-in. This is the one file
//! read of validation; the parsing itself is the pure `oidc::client_assertion`.

use std::sync::Arc;

use super::ClientAuthMethod;
use super::raw::RawSettings;
use super::validate::Problem;
use crate::oidc::client_assertion::{AssertionAlg, ClientKey};

/// When `/api/login` pushes the authorization request to the IdP first (RFC 9126).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ParMode {
    /// When discovery advertises `pushed_authorization_request_endpoint`.
    #[default]
    Auto,
    /// Always; an IdP that does not advertise the endpoint keeps the gateway not ready.
    Required,
    /// Never (the parameters travel in the authorization URL).
    Off,
}

impl ParMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ParMode::Auto => "auto",
            ParMode::Required => "required",
            ParMode::Off => "off",
        }
    }
}

/// Longest key file read: a 8192-bit RSA key in PEM is under 7 KB.
const MAX_KEY_FILE_BYTES: u64 = 64 * 1024;

/// The validated client authentication.
pub(super) struct ClientAuth {
    pub method: ClientAuthMethod,
    pub secret: Option<String>,
    pub key: Option<Arc<ClientKey>>,
    pub par: ParMode,
}

pub(super) fn check(
    raw: &RawSettings,
    problems: &mut Vec<Problem>,
    warnings: &mut Vec<String>,
) -> ClientAuth {
    let mut problem = |s: String| problems.push(Problem::new(s));
    let method = match raw.token_endpoint_auth_method.as_deref() {
        None | Some("client_secret_post") => ClientAuthMethod::ClientSecretPost,
        Some("client_secret_basic") => ClientAuthMethod::ClientSecretBasic,
        Some("private_key_jwt") => ClientAuthMethod::PrivateKeyJwt,
        Some(other) => {
            problem(format!(
                "OIDC_TOKEN_ENDPOINT_AUTH_METHOD `{other}` is not supported; use client_secret_post, client_secret_basic or private_key_jwt"
            ));
            ClientAuthMethod::ClientSecretPost
        }
    };
    let par = match raw
        .pushed_authorization_requests
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("auto") => ParMode::Auto,
        Some("required") => ParMode::Required,
        Some("off") => ParMode::Off,
        Some(other) => {
            problem(format!(
                "OIDC_PUSHED_AUTHORIZATION_REQUESTS must be auto, required or off, got `{other}`"
            ));
            ParMode::Auto
        }
    };
    let alg = raw
        .client_assertion_alg
        .as_deref()
        .and_then(|a| match AssertionAlg::parse(a) {
            Some(alg) => Some(alg),
            None => {
                problem(format!(
                    "OIDC_CLIENT_ASSERTION_ALG `{a}` is not supported; use ES256, RS256 or PS256"
                ));
                None
            }
        });
    let mut secret = raw.client_secret.clone();
    let mut key = None;
    if method == ClientAuthMethod::PrivateKeyJwt {
        // Not used with a key; dropped so it cannot be sent by mistake.
        if secret.take().is_some() {
            warnings.push(
                "OIDC_CLIENT_SECRET is set but not used: the client authenticates with private_key_jwt".into(),
            );
        }
        match &raw.client_key_file {
            None => problem(
                "OIDC_TOKEN_ENDPOINT_AUTH_METHOD=private_key_jwt needs OIDC_CLIENT_KEY_FILE (clientKeyFile): a PKCS#8 PEM private key, EC P-256 or RSA of at least 2048 bits".into(),
            ),
            Some(path) => match read_key_file(path) {
                Err(e) => problem(format!("OIDC_CLIENT_KEY_FILE `{path}`: {e}")),
                Ok(pem) => match ClientKey::from_pem(&pem, alg, raw.client_key_id.clone()) {
                    Ok(k) => {
                        if readable_by_others(path) {
                            warnings.push(format!(
                                "OIDC_CLIENT_KEY_FILE `{path}` is readable by group or others; restrict it to the gateway's user (chmod 600)"
                            ));
                        }
                        key = Some(Arc::new(k));
                    }
                    Err(e) => problem(format!("OIDC_CLIENT_KEY_FILE `{path}`: {e}")),
                },
            },
        }
    } else {
        if secret.is_none() {
            problem("OIDC_CLIENT_SECRET (secret) is required".into());
        }
        for (set, name) in [
            (raw.client_key_file.is_some(), "OIDC_CLIENT_KEY_FILE"),
            (raw.client_key_id.is_some(), "OIDC_CLIENT_KEY_ID"),
            (
                raw.client_assertion_alg.is_some(),
                "OIDC_CLIENT_ASSERTION_ALG",
            ),
        ] {
            if set {
                problem(format!(
                    "{name} is set, but it is used only with OIDC_TOKEN_ENDPOINT_AUTH_METHOD=private_key_jwt"
                ));
            }
        }
    }
    ClientAuth {
        method,
        secret,
        key,
        par,
    }
}

/// Whether the key file's mode lets group or others read it (unix only).
fn readable_by_others(path: &str) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o044 != 0)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        false
    }
}

/// The key file's text, bounded (a wrong path to a huge file must not be read whole).
fn read_key_file(path: &str) -> Result<String, String> {
    use std::io::Read;
    let f = std::fs::File::open(path).map_err(|e| format!("cannot read it: {e}"))?;
    let mut text = String::new();
    f.take(MAX_KEY_FILE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read it as text: {e}"))?;
    if text.len() as u64 > MAX_KEY_FILE_BYTES {
        return Err("it is larger than 64 KiB; it is not a private key".into());
    }
    Ok(text)
}
