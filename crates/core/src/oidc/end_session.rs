//! OpenID Connect RP-Initiated Logout 1.0 §2: the URL that asks the IdP to end its session and
//! send the browser back to a registered `post_logout_redirect_uri`.

/// What goes into the end-session request.
pub struct EndSessionRequest<'a> {
    pub client_id: &'a str,
    /// Must be registered at the IdP (exact match, like a redirect URI); built from the
    /// public URL, never from the request (R-RD-4).
    pub post_logout_redirect_uri: &'a str,
    /// Opaque value the IdP returns with the redirect.
    pub state: &'a str,
    /// The ID token of the session, when kept (RECOMMENDED by §2; several IdPs skip their
    /// confirmation prompt with it).
    pub id_token_hint: Option<&'a str>,
}

/// `endpoint` with the request's parameters added to any query it already has.
pub fn end_session_url(endpoint: &url::Url, r: &EndSessionRequest) -> url::Url {
    let mut url = endpoint.clone();
    {
        let mut q = url.query_pairs_mut();
        if let Some(hint) = r.id_token_hint {
            q.append_pair("id_token_hint", hint);
        }
        q.append_pair("client_id", r.client_id);
        q.append_pair("post_logout_redirect_uri", r.post_logout_redirect_uri);
        q.append_pair("state", r.state);
    }
    url
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parameters_are_encoded_and_existing_query_kept() {
        let e = url::Url::parse("https://idp.example.com/logout?tenant=a%20b").unwrap();
        let u = end_session_url(
            &e,
            &EndSessionRequest {
                client_id: "portcullis",
                post_logout_redirect_uri: "https://gw.example.com/.portcullis/signed-out",
                state: "s&t=1",
                id_token_hint: None,
            },
        );
        let pairs: Vec<(String, String)> = u.query_pairs().into_owned().collect();
        assert_eq!(
            pairs,
            [
                ("tenant".into(), "a b".into()),
                ("client_id".into(), "portcullis".into()),
                (
                    "post_logout_redirect_uri".into(),
                    "https://gw.example.com/.portcullis/signed-out".into()
                ),
                ("state".into(), "s&t=1".into()),
            ]
        );
        assert_eq!(u.origin(), e.origin());
    }
}
