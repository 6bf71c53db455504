//! Token-endpoint requests (R-CB-6; RFC 6749 §2.3.1, §4.1.3, §6; RFC 8628 §3.4) and pushed
//! authorization requests (RFC 9126 §2.1): pure builders of the form body and the client
//! authentication (client_secret_post, client_secret_basic, private_key_jwt). The gateway only
//! sends them.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::client_assertion::CLIENT_ASSERTION_TYPE;

/// RFC 6749 §4.1.3.
pub const GRANT_AUTHORIZATION_CODE: &str = "authorization_code";
/// RFC 6749 §6.
pub const GRANT_REFRESH_TOKEN: &str = "refresh_token";
/// RFC 8628 §3.4.
pub const GRANT_DEVICE_CODE: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// Form members whose values are secrets (or, for a pushed request, the sign-in's `state`
/// and `nonce`): redacted in `Debug`.
const SECRET_MEMBERS: [&str; 8] = [
    "client_secret",
    "client_assertion",
    "state",
    "nonce",
    "code",
    "code_verifier",
    "refresh_token",
    "device_code",
];

/// What proves the client's identity.
#[derive(Clone, Copy)]
pub enum ClientProof<'a> {
    /// `client_secret_post`: id and secret in the body.
    SecretPost(&'a str),
    /// `client_secret_basic`: id and secret in `Authorization: Basic`.
    SecretBasic(&'a str),
    /// `private_key_jwt` (RFC 7523 §2.2): a client assertion signed for this one request.
    Assertion(&'a str),
}

/// How the client authenticates (RFC 6749 §2.3.1, RFC 7523 §2.2).
#[derive(Clone, Copy)]
pub struct ClientCredentials<'a> {
    pub client_id: &'a str,
    pub proof: ClientProof<'a>,
}

impl std::fmt::Debug for ClientCredentials<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let method = match self.proof {
            ClientProof::SecretPost(_) => "client_secret_post",
            ClientProof::SecretBasic(_) => "client_secret_basic",
            ClientProof::Assertion(_) => "private_key_jwt",
        };
        f.debug_struct("ClientCredentials")
            .field("client_id", &self.client_id)
            .field("proof", &"[redacted]")
            .field("method", &method)
            .finish()
    }
}

/// A token request ready to send as `application/x-www-form-urlencoded`.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenRequest {
    /// Body members, in order.
    pub form: Vec<(String, String)>,
    /// The `Authorization` header value for `client_secret_basic` (`Basic …`); send it as a
    /// sensitive header.
    pub authorization: Option<String>,
}

impl TokenRequest {
    /// The body as borrowed pairs (what HTTP clients' `form` takes).
    pub fn form_pairs(&self) -> Vec<(&str, &str)> {
        self.form
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }
}

/// Shows member names only for secrets; codes, verifiers and credentials never reach logs.
impl std::fmt::Debug for TokenRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let form: Vec<(&str, &str)> = self
            .form
            .iter()
            .map(|(k, v)| {
                let shown = if SECRET_MEMBERS.contains(&k.as_str()) {
                    "[redacted]"
                } else {
                    v.as_str()
                };
                (k.as_str(), shown)
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
        ("grant_type", GRANT_AUTHORIZATION_CODE),
        ("code", code),
        ("redirect_uri", redirect_uri),
        ("code_verifier", code_verifier),
    ];
    authenticate(creds, owned(&form), true)
}

/// The refresh-token grant (RFC 6749 §6); `scope`, if given, must not exceed the original.
pub fn refresh_token(
    creds: &ClientCredentials,
    refresh_token: &str,
    scope: Option<&str>,
) -> TokenRequest {
    let mut form = vec![
        ("grant_type", GRANT_REFRESH_TOKEN),
        ("refresh_token", refresh_token),
    ];
    if let Some(s) = scope {
        form.push(("scope", s));
    }
    authenticate(creds, owned(&form), true)
}

/// The device-code grant (RFC 8628 §3.4). `client_id` is in the body with
/// `client_secret_post` and `private_key_jwt`, not with Basic: there the client already
/// authenticates (§3.4 makes `client_id` required only for unauthenticated clients).
pub fn device_code(creds: &ClientCredentials, device_code: &str) -> TokenRequest {
    let form = vec![
        ("grant_type", GRANT_DEVICE_CODE),
        ("device_code", device_code),
    ];
    authenticate(creds, owned(&form), true)
}

/// A pushed authorization request (RFC 9126 §2.1): the authorization parameters
/// ([`super::authorize::authorization_params`], which carry `client_id` already), then the
/// client authentication, exactly as at the token endpoint.
pub fn pushed_authorization(
    creds: &ClientCredentials,
    authorization_params: Vec<(String, String)>,
) -> TokenRequest {
    let has_client_id = authorization_params.iter().any(|(k, _)| k == "client_id");
    authenticate(creds, authorization_params, !has_client_id)
}

fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Append the client authentication: body members for `client_secret_post` and
/// `private_key_jwt`, an `Authorization: Basic` header for `client_secret_basic`. `client_id`
/// is added to the body unless the body has it already (a pushed request).
fn authenticate(
    creds: &ClientCredentials,
    mut form: Vec<(String, String)>,
    add_client_id: bool,
) -> TokenRequest {
    let mut push = |k: &str, v: &str| form.push((k.to_owned(), v.to_owned()));
    let authorization = match creds.proof {
        ClientProof::SecretPost(secret) => {
            if add_client_id {
                push("client_id", creds.client_id);
            }
            push("client_secret", secret);
            None
        }
        ClientProof::SecretBasic(secret) => Some(basic_authorization(creds.client_id, secret)),
        ClientProof::Assertion(jwt) => {
            // RFC 7521 §4.2 makes client_id optional; sent so the IdP finds the client before
            // it reads the assertion (its `iss`/`sub` say the same).
            if add_client_id {
                push("client_id", creds.client_id);
            }
            push("client_assertion_type", CLIENT_ASSERTION_TYPE);
            push("client_assertion", jwt);
            None
        }
    };
    TokenRequest {
        form,
        authorization,
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

    #[derive(Clone, Copy)]
    enum ClientAuthMethod {
        ClientSecretPost,
        ClientSecretBasic,
    }

    fn creds(method: ClientAuthMethod) -> ClientCredentials<'static> {
        ClientCredentials {
            client_id: "portcullis",
            proof: match method {
                ClientAuthMethod::ClientSecretPost => ClientProof::SecretPost("s3cret"),
                ClientAuthMethod::ClientSecretBasic => ClientProof::SecretBasic("s3cret"),
            },
        }
    }

    fn jwt_creds() -> ClientCredentials<'static> {
        ClientCredentials {
            client_id: "portcullis",
            proof: ClientProof::Assertion("eyJhbGciOiJFUzI1NiJ9.e30.sig"),
        }
    }

    /// private_key_jwt: assertion type and assertion in the body, no secret, no header.
    #[test]
    fn r_cb_6_private_key_jwt_grants() {
        let r = authorization_code(&jwt_creds(), "c", "https://gw/cb", "v");
        assert_eq!(
            pairs(&r),
            vec![
                ("grant_type", "authorization_code"),
                ("code", "c"),
                ("redirect_uri", "https://gw/cb"),
                ("code_verifier", "v"),
                ("client_id", "portcullis"),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
                ),
                ("client_assertion", "eyJhbGciOiJFUzI1NiJ9.e30.sig"),
            ]
        );
        assert_eq!(r.authorization, None);
        assert!(!pairs(&r).iter().any(|(k, _)| *k == "client_secret"));
        let r = refresh_token(&jwt_creds(), "rt", None);
        assert_eq!(
            pairs(&r).get(4),
            Some(&("client_assertion", "eyJhbGciOiJFUzI1NiJ9.e30.sig"))
        );
        assert!(!format!("{r:?}").contains("e30.sig"));
    }

    /// RFC 9126 §2.1: the authorization parameters plus the client authentication, with
    /// client_id once.
    #[test]
    fn pushed_request_body() {
        let params = vec![
            ("client_id".to_owned(), "portcullis".to_owned()),
            ("state".to_owned(), "st".to_owned()),
        ];
        let r = pushed_authorization(&creds(ClientAuthMethod::ClientSecretPost), params.clone());
        assert_eq!(
            pairs(&r),
            vec![
                ("client_id", "portcullis"),
                ("state", "st"),
                ("client_secret", "s3cret")
            ]
        );
        let r = pushed_authorization(&jwt_creds(), params.clone());
        assert_eq!(
            pairs(&r).iter().filter(|(k, _)| *k == "client_id").count(),
            1
        );
        assert_eq!(pairs(&r).len(), 4);
        let r = pushed_authorization(&creds(ClientAuthMethod::ClientSecretBasic), params);
        assert_eq!(pairs(&r).len(), 2);
        assert!(r.authorization.is_some());
        assert!(!format!("{r:?}").contains("\"st\""));
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
