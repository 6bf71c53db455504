//! The authorization request (R-AZ-1, R-AZ-2, R-AZ-6; Core §3.1.2.1, RFC 7636 §4.3).

use std::collections::BTreeMap;

use super::pkce::CODE_CHALLENGE_METHOD;

/// What goes into one authorization request. `Debug` redacts `state` and `nonce`.
#[derive(Clone, Copy)]
pub struct AuthorizationRequest<'a> {
    pub client_id: &'a str,
    /// Exactly the configured value (R-AZ-6).
    pub redirect_uri: &'a str,
    /// Joined with spaces; includes `openid` (checked by configuration).
    pub scopes: &'a [String],
    pub state: &'a str,
    pub nonce: &'a str,
    /// `pkce_challenge(verifier)`; the method is always S256.
    pub code_challenge: &'a str,
    /// Operator-configured extras (seed 001 `customParameters`); configuration refuses the
    /// protocol parameters, so these cannot override them. Sent in key order.
    pub custom_parameters: &'a BTreeMap<String, String>,
}

impl std::fmt::Debug for AuthorizationRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthorizationRequest")
            .field("client_id", &self.client_id)
            .field("redirect_uri", &self.redirect_uri)
            .field("scopes", &self.scopes)
            .field("state", &"[redacted]")
            .field("nonce", &"[redacted]")
            .field("custom_parameters", &self.custom_parameters)
            .finish_non_exhaustive()
    }
}

/// The authorization request parameters, in order: the custom parameters, then
/// `response_type=code` (R-AZ-1), `client_id`, `redirect_uri`, `scope`, `state`, `nonce`,
/// `code_challenge` and `code_challenge_method=S256` (R-AZ-2). The same list goes into the
/// authorization URL or, with PAR (RFC 9126 §2.1), into the pushed request's body.
pub fn authorization_params(req: &AuthorizationRequest) -> Vec<(String, String)> {
    let mut params: Vec<(String, String)> = req
        .custom_parameters
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let scope = req.scopes.join(" ");
    for (k, v) in [
        ("response_type", "code"),
        ("client_id", req.client_id),
        ("redirect_uri", req.redirect_uri),
        ("scope", scope.as_str()),
        ("state", req.state),
        ("nonce", req.nonce),
        ("code_challenge", req.code_challenge),
        ("code_challenge_method", CODE_CHALLENGE_METHOD),
    ] {
        params.push((k.to_owned(), v.to_owned()));
    }
    params
}

/// The authorization URL: the endpoint (its own query kept), then
/// [`authorization_params`], form-urlencoded.
pub fn authorization_url(endpoint: &url::Url, req: &AuthorizationRequest) -> url::Url {
    let mut url = endpoint.clone();
    url.query_pairs_mut()
        .extend_pairs(authorization_params(req));
    url
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn req<'a>(
        scopes: &'a [String],
        custom: &'a BTreeMap<String, String>,
    ) -> AuthorizationRequest<'a> {
        AuthorizationRequest {
            client_id: "portcullis",
            redirect_uri: "https://gw.example.com/api/callback",
            scopes,
            state: "st-1",
            nonce: "n-1",
            code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            custom_parameters: custom,
        }
    }

    /// R-AZ-1/2/6: the exact parameter order and encoding login.rs has always sent.
    #[test]
    fn r_az_authorization_url_parameters_in_order() {
        let scopes = vec![
            "openid".to_owned(),
            "email".to_owned(),
            "profile".to_owned(),
        ];
        let custom: BTreeMap<String, String> =
            [("ui_locales", "de fr"), ("access_type", "offline")]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
        let ep = url::Url::parse("https://idp.example.com/auth?tenant=a").unwrap();
        let u = authorization_url(&ep, &req(&scopes, &custom));
        assert_eq!(
            u.as_str(),
            "https://idp.example.com/auth?tenant=a&access_type=offline&ui_locales=de+fr\
             &response_type=code&client_id=portcullis\
             &redirect_uri=https%3A%2F%2Fgw.example.com%2Fapi%2Fcallback\
             &scope=openid+email+profile&state=st-1&nonce=n-1\
             &code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM\
             &code_challenge_method=S256"
        );
    }

    /// R-AZ-2: S256 always, never plain; no custom parameters means none are added.
    #[test]
    fn r_az_2_always_s256() {
        let scopes = vec!["openid".to_owned()];
        let ep = url::Url::parse("https://idp.example.com/auth").unwrap();
        let none = BTreeMap::new();
        let u = authorization_url(&ep, &req(&scopes, &none));
        let pairs: Vec<(String, String)> = u.query_pairs().into_owned().collect();
        assert_eq!(pairs[0], ("response_type".into(), "code".into()));
        assert_eq!(
            pairs.last().unwrap(),
            &("code_challenge_method".into(), "S256".into())
        );
        assert!(!u.as_str().contains("plain"));
        let d = format!("{:?}", req(&scopes, &none));
        assert!(!d.contains("st-1") && !d.contains("n-1"));
    }
}
