//! The HTTP client used for every IdP call (discovery, JWKS, token, userinfo, PAR).
//!
//! Its own trust store: system roots plus the operator's custom CA (R-CFG-5), used only here.
//! No redirects, connect 5 s / total 10 s, and body caps enforced while streaming (R-RS-2).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue};

pub use crate::metrics::IdpCall;
use crate::metrics::Metrics;

/// Body caps (R-RS-2).
pub const CAP_DISCOVERY: usize = 256 * 1024;
pub const CAP_JWKS: usize = 256 * 1024;
pub const CAP_TOKEN: usize = 1024 * 1024;
pub const CAP_USERINFO: usize = 1024 * 1024;
/// A PAR answer is a `request_uri` and `expires_in`: small.
pub const CAP_PAR: usize = 64 * 1024;

/// What went wrong talking to the IdP. Mapped to 502 on request paths.
#[derive(Debug, thiserror::Error)]
pub enum IdpError {
    #[error("could not reach {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("{url} answered more than {cap} bytes")]
    TooLarge { url: String, cap: usize },
    #[error("{url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{url}: {reason}")]
    Invalid { url: String, reason: String },
    #[error("custom CA: {0}")]
    Ca(String),
}

/// A response body read under a cap.
#[derive(Debug)]
pub struct CappedResponse {
    pub status: u16,
    pub content_type: String,
    pub body: Bytes,
}

/// The IdP client; cheap to clone.
#[derive(Clone, Debug)]
pub struct IdpHttp {
    client: reqwest::Client,
    /// Where each call's duration and failure is counted (none for one-off clients).
    metrics: Option<Arc<Metrics>>,
}

impl IdpCall {
    /// The body cap of this kind of call (R-RS-2).
    pub fn cap(self) -> usize {
        match self {
            IdpCall::Discovery => CAP_DISCOVERY,
            IdpCall::Jwks => CAP_JWKS,
            IdpCall::Token | IdpCall::Refresh => CAP_TOKEN,
            IdpCall::Userinfo => CAP_USERINFO,
            IdpCall::Par => CAP_PAR,
            IdpCall::GroupsSource => portcullis_core::claim_sources::MAX_SOURCE_BYTES,
        }
    }
}

impl IdpHttp {
    /// Build the client, trusting `ca_pem` (if any) in addition to the system roots.
    pub fn new(ca_pem: Option<&str>) -> Result<IdpHttp, IdpError> {
        let mut b = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            // Idle connections are reused only while younger than the keep-alive timeout
            // servers commonly use (Node.js closes after 5 s): a request sent on a connection
            // the IdP is just closing fails with a reset (seen as a rare 502 at the callback
            // in the soak run). reqwest's default keeps them 90 s.
            .pool_idle_timeout(Duration::from_secs(4))
            .user_agent(concat!("portcullis/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem.as_bytes())
                .map_err(|e| IdpError::Ca(e.to_string()))?;
            if certs.is_empty() {
                return Err(IdpError::Ca("no certificate in PEM".into()));
            }
            b = b.tls_certs_merge(certs);
        }
        let client = b.build().map_err(|e| IdpError::Ca(e.to_string()))?;
        Ok(IdpHttp {
            client,
            metrics: None,
        })
    }

    /// Count this client's calls in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> IdpHttp {
        self.metrics = Some(metrics);
        self
    }

    /// The metrics this client records into, if any.
    pub fn metrics(&self) -> Option<&Metrics> {
        self.metrics.as_deref()
    }

    /// Time `call` and count it as failed when it brought no usable answer: no response,
    /// over-size, or HTTP 5xx (a 4xx is the IdP's answer, e.g. `invalid_grant`).
    async fn counted(
        &self,
        call: IdpCall,
        f: impl Future<Output = Result<CappedResponse, IdpError>>,
    ) -> Result<CappedResponse, IdpError> {
        let start = Instant::now();
        let r = f.await;
        if let Some(m) = &self.metrics {
            let failed = r.as_ref().map_or(true, |r| r.status >= 500);
            m.idp_call(call, start.elapsed(), failed);
        }
        r
    }

    /// GET `url` for `call` with optional bearer token, reading at most `call.cap()` bytes.
    pub async fn get(
        &self,
        url: &url::Url,
        bearer: Option<&str>,
        call: IdpCall,
    ) -> Result<CappedResponse, IdpError> {
        self.counted(call, self.get_uncounted(url, bearer, call.cap()))
            .await
    }

    /// [`IdpHttp::get`] without metrics, for what is not an IdP call (the custom CA's URL).
    pub async fn get_uncounted(
        &self,
        url: &url::Url,
        bearer: Option<&str>,
        cap: usize,
    ) -> Result<CappedResponse, IdpError> {
        let mut req = self
            .client
            .get(url.clone())
            .header("accept", "application/json, application/jwt");
        if let Some(t) = bearer {
            req = req.bearer_auth(t);
        }
        read_capped(url, req.send().await, cap).await
    }

    /// POST a form, with an optional `Authorization` header value (e.g. the `Basic …` of
    /// `core::oidc::token_request`), sent as a sensitive header so it never shows in logs.
    pub async fn post_form(
        &self,
        url: &url::Url,
        form: &[(&str, &str)],
        authorization: Option<&str>,
        call: IdpCall,
    ) -> Result<CappedResponse, IdpError> {
        self.counted(
            call,
            self.post_form_uncounted(url, form, authorization, call.cap()),
        )
        .await
    }

    /// POST a JSON body with a bearer token (a distributed claim source, e.g. Microsoft
    /// Graph's `getMemberObjects`), counted as `call`.
    pub async fn post_json(
        &self,
        url: &url::Url,
        bearer: &str,
        body: &serde_json::Value,
        call: IdpCall,
    ) -> Result<CappedResponse, IdpError> {
        let req = self
            .client
            .post(url.clone())
            .header("accept", "application/json")
            .json(body)
            .bearer_auth(bearer);
        self.counted(call, async {
            read_capped(url, req.send().await, call.cap()).await
        })
        .await
    }

    async fn post_form_uncounted(
        &self,
        url: &url::Url,
        form: &[(&str, &str)],
        authorization: Option<&str>,
        cap: usize,
    ) -> Result<CappedResponse, IdpError> {
        let mut req = self
            .client
            .post(url.clone())
            .header("accept", "application/json")
            .form(form);
        if let Some(value) = authorization {
            let mut v = HeaderValue::from_str(value).map_err(|_| IdpError::Invalid {
                url: redact(url),
                reason: "client credentials are not a valid header value".into(),
            })?;
            v.set_sensitive(true);
            req = req.header(AUTHORIZATION, v);
        }
        read_capped(url, req.send().await, cap).await
    }
}

async fn read_capped(
    url: &url::Url,
    sent: Result<reqwest::Response, reqwest::Error>,
    cap: usize,
) -> Result<CappedResponse, IdpError> {
    let label = redact(url);
    let mut resp = sent.map_err(|e| IdpError::Unreachable {
        url: label.clone(),
        reason: error_chain(&e),
    })?;
    let status = resp.status().as_u16();
    let content_type = content_type(resp.headers());
    if resp.content_length().is_some_and(|l| l > cap as u64) {
        return Err(IdpError::TooLarge { url: label, cap });
    }
    let mut body = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > cap {
                    return Err(IdpError::TooLarge { url: label, cap });
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(e) => {
                return Err(IdpError::Unreachable {
                    url: label,
                    reason: error_chain(&e),
                });
            }
        }
    }
    Ok(CappedResponse {
        status,
        content_type,
        body: Bytes::from(body),
    })
}

fn content_type(h: &HeaderMap) -> String {
    h.get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default()
}

/// URL without query (tokens never go in queries, but be safe in logs).
fn redact(u: &url::Url) -> String {
    let mut u = u.clone();
    u.set_query(None);
    u.to_string()
}

/// reqwest's Display hides the cause (e.g. the TLS error); operators need it.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
