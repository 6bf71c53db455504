//! Token-endpoint requests (R-CB-6; RFC 6749 §2.3.1, §4.1.3, §6; RFC 8628 §3.4): pure builders
//! of the form body and the client authentication. The gateway only sends them.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::config::ClientAuthMethod;

/// RFC 6749 §4.1.3.
pub const GRANT_AUTHORIZATION_CODE: &str = "authorization_code";
/// RFC 6749 §6.
pub const GRANT_REFRESH_TOKEN: &str = "refresh_token";
/// RFC 8628 §3.4.
pub const GRANT_DEVICE_CODE: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// Form members whose values are secrets: redacted in `Debug`.
const SECRET_MEMBERS: [&str; 5] = [
    "client_secret",
    "code",
    "code_verifier",
    "refresh_token",
    "device_code",
];

/// How the client authenticates (RFC 6749 §2.3.1).
#[derive(Clone, Copy)]
pub struct ClientCredentials<'a> {
    pub client_id: &'a str,
    pub client_secret: &'a str,
    pub method: ClientAuthMethod,
}

impl std::fmt::Debug for ClientCredentials<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field("method", &self.method)
            .finish()
    }
}

/// A token request ready to send as `application/x-www-form-urlencoded`.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenRequest {
    /// Body members, in order.
    pub form: Vec<(&'static str, String)>,
    /// The `Authorization` header value for `client_secret_basic` (`Basic …`); send it as a
    /// sensitive header.
    pub authorization: Option<String>,
}

impl TokenRequest {
    /// The body as borrowed pairs (what HTTP clients' `form` takes).
    pub fn form_pairs(&self) -> Vec<(&str, &str)> {
        self.form.iter().map(|(k, v)| (*k, v.as_str())).collect()
    }
}

/// Shows member names only for secrets; codes, verifiers and credentials never reach logs.
impl std::fmt::Debug for TokenRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let form: Vec<(&str, &str)> = self
            .form
            .iter()
            .map(|(k, v)| {
                let shown = if SECRET_MEMBERS.contains(k) {
                    "[redacted]"
                } else {
                    v.as_str()
                };
                (*k, shown)
            })
            .collect();
        f.debug_struct("TokenRequest")
            .field("form", &form)
            .field(
                "authorization",
                &self.authorization.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

/// The authorization-code grant (Core §3.1.3.1, RFC 7636 §4.5): `grant_type`, `code`,
/// `redirect_uri`, `code_verifier`, then the client authentication.
pub fn authorization_code(
    creds: &ClientCredentials,
    code: &str,
    redirect_uri: &str,
    code_verifier: &str,
) -> TokenRequest {
    let form = vec![
        ("grant_type", GRANT_AUTHORIZATION_CODE.to_owned()),
        ("code", code.to_owned()),
        ("redirect_uri", redirect_uri.to_owned()),
        ("code_verifier", code_verifier.to_owned()),
    ];
    authenticate(creds, form)
}

/// The refresh-token grant (RFC 6749 §6); `scope`, if given, must not exceed the original.
pub fn refresh_token(
    creds: &ClientCredentials,
    refresh_token: &str,
    scope: Option<&str>,
) -> TokenRequest {
    let mut form = vec![
        ("grant_type", GRANT_REFRESH_TOKEN.to_owned()),
        ("refresh_token", refresh_token.to_owned()),
    ];
    if let Some(s) = scope {
        form.push(("scope", s.to_owned()));
    }
    authenticate(creds, form)
}

/// The device-code grant (RFC 8628 §3.4). `client_id` is in the body only with
/// `client_secret_post`: with Basic the client already authenticates (§3.4 makes `client_id`
/// required only for unauthenticated clients).
pub fn device_code(creds: &ClientCredentials, device_code: &str) -> TokenRequest {
    let form = vec![
        ("grant_type", GRANT_DEVICE_CODE.to_owned()),
        ("device_code", device_code.to_owned()),
    ];
    authenticate(creds, form)
}

/// Append the client authentication: body members for `client_secret_post`, an
/// `Authorization: Basic` header for `client_secret_basic`.
fn authenticate(creds: &ClientCredentials, mut form: Vec<(&'static str, String)>) -> TokenRequest {
    match creds.method {
        ClientAuthMethod::ClientSecretPost => {
            form.push(("client_id", creds.client_id.to_owned()));
            form.push(("client_secret", creds.client_secret.to_owned()));
            TokenRequest {
                form,
                authorization: None,
            }
        }
        ClientAuthMethod::ClientSecretBasic => TokenRequest {
            form,
            authorization: Some(basic_authorization(creds.client_id, creds.client_secret)),
        },
    }
}

/// RFC 6749 §2.3.1: id and secret are each form-urlencoded, joined by `:`, then base64
/// (RFC 7617). Without the encoding step a `:` in the id would split it wrongly.
pub fn basic_authorization(client_id: &str, client_secret: &str) -> String {
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let pair = format!("{}:{}", enc(client_id), enc(client_secret));
    format!("Basic {}", STANDARD.encode(pair))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(method: ClientAuthMethod) -> ClientCredentials<'static> {
        ClientCredentials {
            client_id: "portcullis",
            client_secret: "s3cret",
            method,
        }
    }

    fn pairs(r: &TokenRequest) -> Vec<(&str, &str)> {
        r.form_pairs()
    }

    /// R-CB-6: the code grant with client_secret_post, in order.
    #[test]
    fn r_cb_6_code_grant_post() {
        let r = authorization_code(
            &creds(ClientAuthMethod::ClientSecretPost),
            "the-code",
            "https://gw/api/callback",
            "verifier",
        );
        assert_eq!(
            pairs(&r),
            vec![
                ("grant_type", "authorization_code"),
                ("code", "the-code"),
                ("redirect_uri", "https://gw/api/callback"),
                ("code_verifier", "verifier"),
                ("client_id", "portcullis"),
                ("client_secret", "s3cret"),
            ]
        );
        assert_eq!(r.authorization, None);
    }

    /// R-CB-6: the code grant with client_secret_basic: no credentials in the body.
    #[test]
    fn r_cb_6_code_grant_basic() {
        let r = authorization_code(
            &creds(ClientAuthMethod::ClientSecretBasic),
            "c",
            "https://gw/cb",
            "v",
        );
        assert_eq!(
            pairs(&r),
            vec![
                ("grant_type", "authorization_code"),
                ("code", "c"),
                ("redirect_uri", "https://gw/cb"),
                ("code_verifier", "v"),
            ]
        );
        // base64("portcullis:s3cret")
        assert_eq!(
            r.authorization.as_deref(),
            Some("Basic cG9ydGN1bGxpczpzM2NyZXQ=")
        );
    }

    /// RFC 6749 §2.3.1: id and secret are form-urlencoded before base64.
    #[test]
    fn r_cb_6_basic_credentials_are_form_urlencoded() {
        let h = basic_authorization("my:client id", "p@ss w/rd+%");
        let b64 = h.strip_prefix("Basic ").unwrap_or_default();
        let decoded = STANDARD.decode(b64).unwrap_or_default();
        assert_eq!(
            String::from_utf8(decoded).unwrap_or_default(),
            "my%3Aclient+id:p%40ss+w%2Frd%2B%25"
        );
    }

    /// Refresh and device-code grants, both auth methods.
    #[test]
    fn refresh_and_device_code_grants() {
        let r = refresh_token(
            &creds(ClientAuthMethod::ClientSecretPost),
            "rt",
            Some("openid email"),
        );
        assert_eq!(
            pairs(&r),
            vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", "rt"),
                ("scope", "openid email"),
                ("client_id", "portcullis"),
                ("client_secret", "s3cret"),
            ]
        );
        let r = refresh_token(&creds(ClientAuthMethod::ClientSecretBasic), "rt", None);
        assert_eq!(
            pairs(&r),
            vec![("grant_type", "refresh_token"), ("refresh_token", "rt")]
        );
        assert!(r.authorization.is_some());
        let r = device_code(&creds(ClientAuthMethod::ClientSecretBasic), "dc");
        assert_eq!(
            pairs(&r),
            vec![
                ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                ("device_code", "dc"),
            ]
        );
        let r = device_code(&creds(ClientAuthMethod::ClientSecretPost), "dc");
        assert_eq!(pairs(&r).get(2), Some(&("client_id", "portcullis")));
    }

    /// Debug never shows codes, verifiers, refresh tokens or credentials.
    #[test]
    fn debug_redacts_secrets() {
        let r = authorization_code(
            &creds(ClientAuthMethod::ClientSecretPost),
            "the-code",
            "https://gw/cb",
            "the-verifier",
        );
        let d = format!("{r:?}");
        assert!(!d.contains("the-code") && !d.contains("the-verifier") && !d.contains("s3cret"));
        assert!(d.contains("portcullis") && d.contains("authorization_code"));
        let r = refresh_token(&creds(ClientAuthMethod::ClientSecretBasic), "the-rt", None);
        let d = format!("{r:?}");
        assert!(!d.contains("the-rt") && !d.contains("cG9y"));
        assert!(!format!("{:?}", creds(ClientAuthMethod::ClientSecretPost)).contains("s3cret"));
    }
}
