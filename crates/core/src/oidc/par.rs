//! Pushed Authorization Requests (RFC 9126): the IdP's answer to a pushed request, and the
//! authorization URL that then carries only `client_id` and `request_uri` (§4). The request
//! body is [`super::token_request::pushed_authorization`]. Pure; the gateway sends it.

use serde_json::Value;

use crate::jose::json::parse_strict_object;

/// A successful push (RFC 9126 §2.2).
#[derive(Clone, PartialEq, Eq)]
pub struct PushedRequest {
    /// Opaque reference to the pushed parameters; one-time use at the IdP.
    pub request_uri: String,
    /// Seconds the reference is valid.
    pub expires_in: i64,
}

/// `request_uri` is a bearer reference to this sign-in's parameters: not for logs.
impl std::fmt::Debug for PushedRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushedRequest")
            .field("request_uri", &"[redacted]")
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

/// Why a push failed; the message goes to the log, the person sees a generic page.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParError {
    /// The IdP answered with an OAuth error (RFC 9126 §2.3), e.g. `invalid_client`.
    #[error("the pushed authorization request was refused: HTTP {status}: {error}")]
    Refused { status: u16, error: String },
    /// Anything that is not a usable answer.
    #[error("the pushed authorization request got an invalid answer (HTTP {status}): {reason}")]
    Invalid { status: u16, reason: String },
}

/// Longest `request_uri` accepted: it goes into a redirect URL.
pub const MAX_REQUEST_URI_LEN: usize = 1024;

/// Read the PAR endpoint's answer: 201 (or 200, which some IdPs send) with a JSON object
/// holding a non-empty `request_uri` and a positive `expires_in`.
pub fn parse_par_response(status: u16, body: &[u8]) -> Result<PushedRequest, ParError> {
    let invalid = |reason: &str| ParError::Invalid {
        status,
        reason: reason.to_owned(),
    };
    let obj = parse_strict_object(body);
    if !(status == 201 || status == 200) {
        let error = obj
            .ok()
            .and_then(|o| o.get("error").and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_else(|| "no OAuth error in the answer".to_owned());
        // Bounded: an error code is short; never echo a large body into the log.
        let error: String = error.chars().take(100).collect();
        return Err(ParError::Refused { status, error });
    }
    let obj = obj.map_err(|e| invalid(&format!("not a JSON object ({e})")))?;
    let request_uri = obj
        .get("request_uri")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| invalid("no `request_uri`"))?;
    if request_uri.len() > MAX_REQUEST_URI_LEN {
        return Err(invalid("`request_uri` is too long"));
    }
    let expires_in = obj
        .get("expires_in")
        .and_then(Value::as_i64)
        .filter(|n| *n > 0)
        .ok_or_else(|| invalid("no positive `expires_in`"))?;
    Ok(PushedRequest {
        request_uri: request_uri.to_owned(),
        expires_in,
    })
}

/// RFC 9126 §4: the authorization endpoint (its own query kept) with only `client_id` and
/// `request_uri`; everything else travelled in the pushed request.
pub fn par_authorization_url(endpoint: &url::Url, client_id: &str, request_uri: &str) -> url::Url {
    let mut url = endpoint.clone();
    url.query_pairs_mut()
        .append_pair("client_id", client_id)
        .append_pair("request_uri", request_uri);
    url
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const URN: &str = "urn:ietf:params:oauth:request_uri:6esc_11ACC5bwc014ltc14eY22c";

    #[test]
    fn success_201_and_200() {
        let body = format!(r#"{{"request_uri":"{URN}","expires_in":60}}"#);
        for status in [201, 200] {
            let p = parse_par_response(status, body.as_bytes()).unwrap();
            assert_eq!((p.request_uri.as_str(), p.expires_in), (URN, 60));
            assert!(!format!("{p:?}").contains("6esc"));
        }
    }

    #[test]
    fn failures_are_classified() {
        assert_eq!(
            parse_par_response(401, br#"{"error":"invalid_client"}"#),
            Err(ParError::Refused {
                status: 401,
                error: "invalid_client".into()
            })
        );
        assert_eq!(
            parse_par_response(500, b"<html>oops</html>"),
            Err(ParError::Refused {
                status: 500,
                error: "no OAuth error in the answer".into()
            })
        );
        let invalid = |status, body: &[u8]| {
            matches!(
                parse_par_response(status, body),
                Err(ParError::Invalid { .. })
            )
        };
        assert!(invalid(201, b"not json"));
        assert!(invalid(201, br#"{"expires_in":60}"#));
        assert!(invalid(201, br#"{"request_uri":"","expires_in":60}"#));
        assert!(invalid(
            201,
            format!(r#"{{"request_uri":"{URN}"}}"#).as_bytes()
        ));
        assert!(invalid(
            201,
            format!(r#"{{"request_uri":"{URN}","expires_in":0}}"#).as_bytes()
        ));
        let long = "u".repeat(MAX_REQUEST_URI_LEN + 1);
        assert!(invalid(
            201,
            format!(r#"{{"request_uri":"{long}","expires_in":60}}"#).as_bytes()
        ));
    }

    /// RFC 9126 §4: only client_id and request_uri; the endpoint's own query stays.
    #[test]
    fn authorization_url_carries_only_client_id_and_request_uri() {
        let ep = url::Url::parse("https://idp.example.com/auth?tenant=a").unwrap();
        let u = par_authorization_url(&ep, "portcullis", URN);
        assert_eq!(
            u.as_str(),
            "https://idp.example.com/auth?tenant=a&client_id=portcullis\
             &request_uri=urn%3Aietf%3Aparams%3Aoauth%3Arequest_uri%3A6esc_11ACC5bwc014ltc14eY22c"
        );
    }
}
