//! The HTTP side of the command-line tool: Portcullis's JSON API with `Authorization: Bearer`,
//! and the translation of every way it can go wrong into one plain sentence.

use std::time::Duration;

use reqwest::StatusCode;
use serde::Deserialize;

use super::{Error, Exit};

/// Names a private certificate authority (PEM) to trust besides the system's.
pub const CA_VAR: &str = "PORTCULLIS_CA_CERT";

/// The server's origin from what the person typed. Plain `http` only for this machine: a
/// token must not cross a network in the clear.
pub fn base_url(input: &str) -> Result<url::Url, Error> {
    let bad = |why: &str| {
        Error::new(
            Exit::Usage,
            format!("invalid server address `{input}`: {why}"),
        )
    };
    let mut u = url::Url::parse(input.trim()).map_err(|e| bad(&e.to_string()))?;
    let loopback = match u.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => return Err(bad("it has no host name")),
    };
    match u.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => {
            return Err(bad(
                "use https:// (a token is never sent over plain http, except to this machine)",
            ));
        }
        _ => return Err(bad("use an https:// address")),
    }
    u.set_path("/");
    u.set_query(None);
    u.set_fragment(None);
    Ok(u)
}

/// The account page, where tokens are created and revoked.
pub fn account_url(base: &url::Url) -> url::Url {
    let mut u = base.clone();
    u.set_path("/.portcullis/account");
    u
}

/// `YYYY-MM-DD` (UTC) for unix seconds.
pub fn date(secs: i64) -> String {
    // Howard Hinnant's days-to-civil algorithm.
    let z = secs.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Who the server says the token belongs to (`GET /api/session`).
#[derive(Debug, Deserialize)]
pub struct Who {
    pub user: WhoUser,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub api_token: Option<TokenInfo>,
}

#[derive(Debug, Deserialize)]
pub struct WhoUser {
    pub user_id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct TokenInfo {
    pub id: String,
    pub name: String,
    pub expires_at: Option<i64>,
}

impl Who {
    /// `Name <email> (user id)`, with what is known.
    pub fn display_name(&self) -> String {
        let u = &self.user;
        match (&u.name, &u.email) {
            (Some(n), Some(e)) => format!("{n} <{e}> ({})", u.user_id),
            (None, Some(e)) => format!("{e} ({})", u.user_id),
            (Some(n), None) => format!("{n} ({})", u.user_id),
            (None, None) => u.user_id.clone(),
        }
    }
}

/// A token as the API lists it.
#[derive(Debug, Deserialize)]
pub struct Listed {
    pub id: String,
    pub name: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
    #[serde(default)]
    pub expired: bool,
}

#[derive(Debug, Deserialize)]
struct List {
    tokens: Vec<Listed>,
}

/// A created token, with its plaintext.
#[derive(Debug, Deserialize)]
pub struct New {
    pub id: String,
    pub name: String,
    pub token: String,
}

/// Why a call failed, before it is put into words for a base URL.
#[derive(Debug)]
pub enum Failure {
    /// 401: the token is invalid, revoked, expired, or its user inactive.
    Refused,
    /// 403.
    Forbidden,
    NotFound,
    /// 400/409 with the server's sentence.
    Invalid(String),
    RateLimited(Option<u64>),
    Server(StatusCode),
    NotPortcullis(String),
    Unreachable(String),
    Tls(String),
}

impl Failure {
    pub fn into_error(self, base: &url::Url) -> Error {
        let account = account_url(base);
        match self {
            Failure::Refused => Error::new(
                Exit::Refused,
                format!(
                    "{base} refused the token: it is invalid, revoked or expired, or your account is disabled. Create a new one at {account} and run `portcullis login` again"
                ),
            ),
            Failure::Forbidden => Error::new(
                Exit::Forbidden,
                format!("{base} does not allow this with an API token"),
            ),
            Failure::NotFound => Error::new(Exit::Other, "you have no active token with that id"),
            Failure::Invalid(why) => Error::new(Exit::Other, why),
            Failure::RateLimited(after) => Error::new(
                Exit::ServerError,
                format!(
                    "{base} refused: too many failed attempts from this address; try again in {} seconds",
                    after.unwrap_or(60)
                ),
            ),
            Failure::Server(status) => Error::new(
                Exit::ServerError,
                format!(
                    "{base} answered with an error (HTTP {}); try again later",
                    status.as_u16()
                ),
            ),
            Failure::NotPortcullis(what) => Error::new(
                Exit::NotPortcullis,
                format!(
                    "{base} does not look like a Portcullis server ({what}); check the address"
                ),
            ),
            Failure::Unreachable(why) => {
                Error::new(Exit::Unreachable, format!("cannot reach {base}: {why}"))
            }
            Failure::Tls(why) => Error::new(
                Exit::Tls,
                format!(
                    "TLS problem with {base}: {why}. If the server uses a private certificate authority, set {CA_VAR} to its PEM file"
                ),
            ),
        }
    }
}

/// A Portcullis server and the token to present to it.
pub struct Api {
    base: url::Url,
    token: String,
    http: reqwest::Client,
}

impl Api {
    pub fn new(base: url::Url, token: String) -> Result<Api, Error> {
        // Both providers may be compiled in (through other crates): pick ours explicitly.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let mut b = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .user_agent(concat!("portcullis-cli/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = std::env::var_os(CA_VAR).filter(|v| !v.is_empty()) {
            let pem = std::fs::read(&path).map_err(|e| {
                Error::new(
                    Exit::Usage,
                    format!("cannot read {CA_VAR} {}: {e}", path.to_string_lossy()),
                )
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                Error::new(
                    Exit::Usage,
                    format!("{CA_VAR} {} is not PEM: {e}", path.to_string_lossy()),
                )
            })?;
            b = b.tls_certs_merge(certs);
        }
        let http = b
            .build()
            .map_err(|e| Error::new(Exit::Other, format!("cannot set up HTTPS: {e}")))?;
        Ok(Api { base, token, http })
    }

    pub fn base(&self) -> &url::Url {
        &self.base
    }

    fn url(&self, path: &str) -> url::Url {
        let mut u = self.base.clone();
        u.set_path(path);
        u
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<reqwest::Response, Failure> {
        // No token yet while signing in through the browser.
        let req = if self.token.is_empty() {
            req
        } else {
            req.bearer_auth(&self.token)
        };
        req.header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| classify(&e))
    }

    /// `GET /api/session`: the check that this is Portcullis and the token is good.
    pub async fn session(&self) -> Result<Who, Failure> {
        let r = self.send(self.http.get(self.url("/api/session"))).await?;
        let status = r.status();
        if status == StatusCode::OK {
            return json::<Who>(r).await.ok_or_else(|| {
                Failure::NotPortcullis("its /api/session is not Portcullis's".into())
            });
        }
        Err(failure(r).await)
    }

    /// `POST path` with a form body, for the command-line sign-in's OAuth-style endpoints:
    /// the status and the JSON answer, or a failure when the answer is not Portcullis's JSON
    /// (a 429 or 5xx is a failure too).
    pub async fn post_form(
        &self,
        path: &str,
        form: &[(&str, &str)],
    ) -> Result<(StatusCode, serde_json::Value), Failure> {
        let r = self.send(self.http.post(self.url(path)).form(form)).await?;
        let status = r.status();
        if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            return Err(failure(r).await);
        }
        match json::<serde_json::Value>(r).await {
            Some(v) if v.is_object() => Ok((status, v)),
            _ => Err(Failure::NotPortcullis(format!(
                "its {path} answered HTTP {} without Portcullis's JSON",
                status.as_u16()
            ))),
        }
    }

    pub async fn list(&self) -> Result<Vec<Listed>, Failure> {
        let r = self.send(self.http.get(self.url("/api/tokens"))).await?;
        if r.status() == StatusCode::OK {
            return json::<List>(r)
                .await
                .map(|l| l.tokens)
                .ok_or_else(|| Failure::NotPortcullis("unexpected answer".into()));
        }
        Err(failure(r).await)
    }

    pub async fn create(&self, name: &str, days: Option<i64>) -> Result<New, Failure> {
        let body = serde_json::json!({"name": name, "expires_in_days": days});
        let r = self
            .send(self.http.post(self.url("/api/tokens")).json(&body))
            .await?;
        if r.status() == StatusCode::CREATED {
            return json::<New>(r)
                .await
                .ok_or_else(|| Failure::NotPortcullis("unexpected answer".into()));
        }
        Err(failure(r).await)
    }

    pub async fn revoke(&self, id: &str) -> Result<(), Failure> {
        if !portcullis_core::apitoken::is_id(id) {
            return Err(Failure::NotFound);
        }
        let r = self
            .send(self.http.delete(self.url(&format!("/api/tokens/{id}"))))
            .await?;
        match r.status() {
            StatusCode::NO_CONTENT => Ok(()),
            _ => Err(failure(r).await),
        }
    }
}

async fn json<T: serde::de::DeserializeOwned>(r: reqwest::Response) -> Option<T> {
    let is_json = r
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !is_json {
        return None;
    }
    let bytes = r.bytes().await.ok()?;
    serde_json::from_slice(&bytes).ok()
}

#[derive(Deserialize)]
struct ErrorBody {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

/// An unsuccessful answer. Portcullis's refusals are JSON with an `error` code; anything
/// else at these paths means another server.
async fn failure(r: reqwest::Response) -> Failure {
    let status = r.status();
    let retry = r
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    if status.is_redirection() {
        let to = r
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("elsewhere")
            .to_string();
        return Failure::NotPortcullis(format!("it redirects to {to}"));
    }
    let body = json::<ErrorBody>(r).await;
    match (status, body) {
        (StatusCode::UNAUTHORIZED, Some(b)) if b.error == "unauthorized" => Failure::Refused,
        (StatusCode::FORBIDDEN, Some(_)) => Failure::Forbidden,
        (StatusCode::NOT_FOUND, Some(b)) if b.error == "not_found" => Failure::NotFound,
        (StatusCode::BAD_REQUEST | StatusCode::CONFLICT, Some(b)) => {
            Failure::Invalid(b.error_description.unwrap_or(b.error))
        }
        (StatusCode::TOO_MANY_REQUESTS, Some(_)) => Failure::RateLimited(retry),
        (s, Some(_)) if s.is_server_error() => Failure::Server(s),
        (s, _)
            if s == StatusCode::BAD_GATEWAY
                || s == StatusCode::SERVICE_UNAVAILABLE
                || s == StatusCode::GATEWAY_TIMEOUT =>
        {
            // A load balancer in front of a Portcullis that is down.
            Failure::Server(s)
        }
        (s, _) => Failure::NotPortcullis(format!("HTTP {}", s.as_u16())),
    }
}

/// Put a transport failure into words: TLS problems named as such, then unreachable servers.
fn classify(e: &reqwest::Error) -> Failure {
    let mut chain: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(t) = tls_error(err) {
            return Failure::Tls(t);
        }
        chain.push(err.to_string());
        cur = err.source();
    }
    if e.is_timeout() {
        return Failure::Unreachable("it did not answer in time".into());
    }
    // The innermost cause is the useful one ("Connection refused (os error 111)", DNS).
    let last = chain.last().cloned().unwrap_or_else(|| e.to_string());
    // rustls errors can arrive as text only (wrapped by the connector), so the words count.
    let lower = last.to_ascii_lowercase();
    if lower.contains("corrupt message") || lower.contains("invalidcontenttype") {
        return Failure::Tls("the server did not answer with TLS (is it plain http?)".into());
    }
    if chain.iter().any(|c| {
        let c = c.to_ascii_lowercase();
        c.contains("certificate") || c.contains("tls") || c.contains("handshake")
    }) {
        return Failure::Tls(last);
    }
    Failure::Unreachable(last)
}

/// The rustls error in `err` (directly, or inside an I/O error), in words.
fn tls_error(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    let describe = |t: &rustls::Error| match t {
        rustls::Error::InvalidCertificate(c) => {
            format!("the server's certificate is not valid for it or not trusted ({c:?})")
        }
        rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => {
            "the server did not answer with TLS (is it plain http?)".to_string()
        }
        other => other.to_string(),
    };
    if let Some(t) = err.downcast_ref::<rustls::Error>() {
        return Some(describe(t));
    }
    let io = err.downcast_ref::<std::io::Error>()?;
    io.get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .map(describe)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(
            base_url("https://gw.example.com/some/path?q#f")
                .unwrap()
                .as_str(),
            "https://gw.example.com/"
        );
        assert_eq!(
            base_url("http://127.0.0.1:8080").unwrap().as_str(),
            "http://127.0.0.1:8080/"
        );
        assert!(base_url("http://localhost").is_ok());
        for bad in ["http://gw.example.com", "ftp://x", "gw.example.com", ""] {
            assert_eq!(base_url(bad).unwrap_err().exit, Exit::Usage, "{bad}");
        }
    }

    #[test]
    fn dates() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(951_782_400), "2000-02-29");
        assert_eq!(date(1_798_761_600), "2027-01-01");
    }
}
