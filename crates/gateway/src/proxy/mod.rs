//! The reverse proxy: every path that is not Portcullis's own goes to the upstream, streamed,
//! with WebSocket upgrades tunnelled byte-for-byte while their session lasts.
//!
//! Written on hyper-util rather than a proxy crate: identity headers, hop-by-hop rules and the
//! upgrade tunnel must be exact and testable (STACK.md, the reverse-proxy row).

pub mod body;
pub mod headers;
pub mod pool;
pub mod tls;
pub mod tunnel;

use std::net::SocketAddr;
use std::sync::OnceLock;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::uri::{Authority, Scheme};
use axum::http::{HeaderMap, Method, StatusCode, Uri, Version, header};
use axum::response::{IntoResponse, Response};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use portcullis_core::config::{Config, STANDARD_METHODS, UpstreamTls};

use crate::auth::{Authed, MaybeAuthed};
use crate::error::{WebError, wants_json};
use crate::metrics::UpstreamError;
use crate::state::AppState;
use body::{BodyError, LimitedBody};
use headers::HeaderRules;
use portcullis_core::authz::Decision;

/// The application behind Portcullis.
#[derive(Clone, Debug)]
pub struct Upstream {
    base: url::Url,
    /// Scheme and authority of `base`, parsed once; `None` only if `base` cannot be an
    /// authority (then URIs are built by formatting).
    target: Option<(Scheme, Authority)>,
    /// `base`'s path without the trailing `/` (empty for the root).
    prefix: String,
    /// One connection pool per worker thread (index [`crate::workers::current`]; slot 0 for
    /// any other thread): an upstream connection is driven by a task on the thread that
    /// opened it, so sharing it with another worker would wake that thread per request.
    clients: Box<[Pool]>,
    /// Header names and limits from the configuration, resolved once (see [`Upstream::rules`]).
    rules: OnceLock<HeaderRules>,
}

/// One worker's connections to the upstream.
// One per worker, built once: the size difference costs nothing, boxing would add a pointer
// hop per request.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
enum Pool {
    /// `http://`: HTTP/1.1 only (no h2c), on this crate's own keep-alive pool.
    Plain(pool::H1Pool),
    /// `https://`: `any` negotiates h2 or HTTP/1.1 by ALPN; upgrades go through `h1`, which
    /// offers only HTTP/1.1 (an upgrade is an HTTP/1.1 exchange).
    Tls {
        any: Client<HttpsConnector<HttpConnector>, LimitedBody>,
        h1: Client<HttpsConnector<HttpConnector>, LimitedBody>,
    },
}

/// The upstream's answer, or why there is none (boxed: only on the error path).
type Sent = Result<Response, Box<dyn std::error::Error + Send + Sync>>;

impl Pool {
    /// Send `req`, whose URI is in absolute form (the https client needs it; the plain pool
    /// sends the origin form it is given with [`Upstream::origin_form`]).
    async fn send(&self, req: axum::http::Request<LimitedBody>, upgrade: bool) -> Sent {
        let resp = match self {
            Pool::Plain(p) => p.send(req).await?.map(axum::body::Body::new),
            Pool::Tls { h1, .. } if upgrade => h1.request(req).await?.map(axum::body::Body::new),
            Pool::Tls { any, .. } => any.request(req).await?.map(axum::body::Body::new),
        };
        Ok(resp)
    }
}

impl Upstream {
    /// An upstream for `workers` worker threads (see [`crate::workers`]), plain http or https
    /// with `tls`'s trust and client certificate. The TLS configuration is built here, once.
    pub fn new(
        base: url::Url,
        workers: usize,
        tls: &UpstreamTls,
    ) -> Result<Upstream, tls::UpstreamTlsError> {
        let clients = if base.scheme() == "https" {
            let mut connector = HttpConnector::new();
            connector.set_connect_timeout(Some(std::time::Duration::from_secs(5)));
            connector.set_nodelay(true);
            // The TLS connector sits on top of TCP: the TCP connector must accept https URIs.
            connector.enforce_http(false);
            let client = || Client::builder(TokioExecutor::new());
            let c = tls::connectors(tls, connector)?;
            (0..=workers)
                .map(|_| Pool::Tls {
                    any: client().build(c.any.clone()),
                    h1: client().build(c.h1.clone()),
                })
                .collect()
        } else {
            let no_host = || tls::UpstreamTlsError::Host(base.to_string());
            let host = host_for_authority(&base, base.host_str().ok_or_else(no_host)?);
            let port = base.port_or_known_default().unwrap_or(80);
            let addr: std::sync::Arc<str> = format!("{host}:{port}").into();
            // Exactly what hyper-util's client sent: the authority, with a non-default port.
            let host = match base.port() {
                Some(p) => format!("{host}:{p}"),
                None => host,
            };
            let host = axum::http::HeaderValue::try_from(host).map_err(|_| no_host())?;
            (0..=workers)
                .map(|_| Pool::Plain(pool::H1Pool::new(addr.clone(), host.clone())))
                .collect()
        };
        let target = base.host_str().and_then(|h| {
            let scheme = Scheme::try_from(base.scheme()).ok()?;
            let auth = match base.port() {
                Some(p) => Authority::try_from(format!("{}:{p}", host_for_authority(&base, h))),
                None => Authority::try_from(host_for_authority(&base, h)),
            }
            .ok()?;
            Some((scheme, auth))
        });
        let prefix = base.path().trim_end_matches('/').to_string();
        Ok(Upstream {
            base,
            target,
            prefix,
            clients,
            rules: OnceLock::new(),
        })
    }

    /// [`Upstream::new`] with the header rules resolved now, at start-up.
    pub fn with_config(base: url::Url, config: &Config) -> Result<Upstream, tls::UpstreamTlsError> {
        let workers = crate::workers::count(config.limits.worker_threads);
        let up = Upstream::new(base, workers, &config.upstream_tls)?;
        let _ = up.rules.set(HeaderRules::from_config(config));
        Ok(up)
    }

    /// The header rules: resolved at start-up by [`Upstream::with_config`], or once on the
    /// first request when built with [`Upstream::new`]; never per request.
    pub fn rules(&self, config: &Config) -> &HeaderRules {
        self.rules.get_or_init(|| HeaderRules::from_config(config))
    }

    /// The calling thread's connection pool.
    fn client(&self) -> &Pool {
        let i = crate::workers::current();
        // Slot 0 exists always; a worker index beyond the pools (not expected) shares it.
        self.clients.get(i).unwrap_or(&self.clients[0])
    }

    /// The origin-form URI (path and query) for the plain pool: the request's own, or with
    /// the base path prefix in front.
    fn origin_form(&self, uri: &Uri) -> Result<Uri, WebError> {
        let pq = uri.path_and_query();
        if self.prefix.is_empty() {
            let pq = pq
                .cloned()
                .unwrap_or_else(|| axum::http::uri::PathAndQuery::from_static("/"));
            return Ok(Uri::from(pq));
        }
        let pq = pq.map(|p| p.as_str()).unwrap_or("/");
        format!("{}{pq}", self.prefix)
            .parse()
            .map_err(|_| WebError::BadRequest("invalid request URI"))
    }

    /// The upstream URI for a request path and query (a base path prefix is kept).
    fn uri_for(&self, uri: &Uri) -> Result<Uri, WebError> {
        if let (Some((scheme, authority)), true) = (&self.target, self.prefix.is_empty()) {
            // The common case: no new string, the path-and-query is shared.
            let mut parts = axum::http::uri::Parts::default();
            parts.scheme = Some(scheme.clone());
            parts.authority = Some(authority.clone());
            parts.path_and_query = Some(
                uri.path_and_query()
                    .cloned()
                    .unwrap_or_else(|| axum::http::uri::PathAndQuery::from_static("/")),
            );
            return Uri::from_parts(parts).map_err(|_| WebError::BadRequest("invalid request URI"));
        }
        let pq = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let origin = self.base.origin().ascii_serialization();
        format!("{origin}{}{pq}", self.prefix)
            .parse()
            .map_err(|_| WebError::BadRequest("invalid request URI"))
    }
}

/// IPv6 hosts keep their brackets in an authority.
fn host_for_authority(base: &url::Url, host: &str) -> String {
    match base.host() {
        Some(url::Host::Ipv6(ip)) => format!("[{ip}]"),
        _ => host.to_string(),
    }
}

/// R-HD-5: the standard methods (CONNECT and TRACE excluded) and the configured extra ones,
/// matched case-sensitively: `get` is not `GET`.
pub fn method_allowed(m: &Method, extra: &[String]) -> bool {
    matches!(
        *m,
        Method::GET
            | Method::HEAD
            | Method::POST
            | Method::PUT
            | Method::PATCH
            | Method::DELETE
            | Method::OPTIONS
    ) || extra.iter().any(|e| e == m.as_str())
}

/// A refusal the proxy answers itself, in the shape of [`WebError`]'s (JSON for API clients,
/// the error page for browsers, never cached).
// Local until WebError grows variants for these (405 with a configured `Allow`, a refused
// upgrade, a stalled body).
/// 405 with the methods this gateway allows.
fn method_not_allowed(extra: &[String]) -> WebError {
    let mut allow = STANDARD_METHODS.join(", ");
    for m in extra {
        allow.push_str(", ");
        allow.push_str(m);
    }
    WebError::MethodNotAllowed(allow.into())
}

/// The declared body length, if any (hyper has already refused malformed framing).
fn content_length(h: &HeaderMap) -> Option<u64> {
    h.get(header::CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}

/// Refusals that need no identity: a method (R-HD-5) or upgrade that is never proxied, and a
/// declared body over the cap (R-RS-1). Such requests never reach the upstream.
pub fn precheck(state: &AppState, method: &Method, h: &HeaderMap) -> Result<(), WebError> {
    let proxy = &state.config.proxy;
    if !method_allowed(method, &proxy.extra_methods) {
        return Err(method_not_allowed(&proxy.extra_methods));
    }
    if headers::is_upgrade(h) && !headers::upgrade_allowed(h, &proxy.allowed_upgrades) {
        return Err(WebError::UpgradeNotAllowed);
    }
    if content_length(h).is_some_and(|n| n > proxy.max_body_bytes) {
        return Err(WebError::TooLarge(StatusCode::PAYLOAD_TOO_LARGE));
    }
    Ok(())
}

/// The fallback handler: forward a signed-in request or ask to sign in. The front middleware
/// has already refused what is never proxied ([`precheck`], before authentication) and
/// authenticated the request.
pub async fn gate(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    MaybeAuthed(authed): MaybeAuthed,
    req: Request,
) -> Result<Response, WebError> {
    match authed {
        // R-CSRF: an unsafe request without a valid token never reaches the app.
        Some(Authed { csrf: Err(why), .. }) => Err(WebError::Csrf(why)),
        Some(a) => {
            authorize(&state, &a, req.method().as_str(), req.uri().path())?;
            forward(&state, Some(a), peer, req).await
        }
        None => Ok(sign_in_or_401(&state, &req)),
    }
}

/// Roles and path policies: a person whose groups grant no role (when roles are required) and
/// a request a policy does not allow get 403 saying what would grant access; the app is not
/// reached. Decisions use the normalised path only (R-HD-5). Forward-auth decides its original
/// request here too, so both modes refuse exactly the same requests.
pub(crate) fn authorize(
    state: &AppState,
    a: &Authed,
    method: &str,
    raw_path: &str,
) -> Result<(), WebError> {
    let roles = a
        .roles
        .as_deref()
        .map_err(|e| WebError::NoAccess(e.clone()))?;
    match state.config.authz.decide(method, raw_path, roles) {
        Decision::Deny { needed } => {
            tracing::info!(event = "authz.denied", user = %a.user.id, path = %raw_path, "policy refused the request");
            Err(WebError::Forbidden(if needed.is_empty() {
                "This request is not allowed here.".to_string()
            } else {
                format!(
                    "You do not have access to this page. It needs one of these roles: {}.",
                    needed.join(", ")
                )
            }))
        }
        Decision::Allow | Decision::NoPolicy => Ok(()),
    }
}

/// A browser is sent to sign in and brought back (R-RD applies in `/api/login`); API clients
/// (`Accept: application/json`, or any non-GET) get 401 JSON.
fn sign_in_or_401(state: &AppState, req: &Request) -> Response {
    let browser = matches!(*req.method(), Method::GET | Method::HEAD) && !wants_json(req.headers());
    if !browser {
        // API clients get JSON whatever they asked for.
        return WebError::Unauthorized.render_as(true);
    }
    let target = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let mut resp = (
        StatusCode::FOUND,
        [(header::LOCATION, sign_in_url(state, target))],
    )
        .into_response();
    crate::routes::no_store(&mut resp);
    resp
}

/// The sign-in URL that brings the person back to `target` (a request path and query; R-RD
/// is applied to it in `/api/login`). Absolute, on the public origin: the tx cookie must be
/// set on the host the IdP will redirect back to, even if this request arrived under another
/// name (e.g. an IP).
pub(crate) fn sign_in_url(state: &AppState, target: &str) -> String {
    let rd: String = url::form_urlencoded::byte_serialize(target.as_bytes()).collect();
    format!("{}/api/login?rd={rd}", state.public_origin)
}

async fn forward(
    state: &AppState,
    authed: Option<Authed>,
    peer: SocketAddr,
    mut req: Request,
) -> Result<Response, WebError> {
    let Some(up) = &state.upstream else {
        // Signed in, but nothing to show: say so instead of a bare 404.
        return Err(WebError::NoUpstream);
    };
    let rules = up.rules(&state.config);
    // Allowed upgrades only: `gate` refused the others.
    let upgrade = headers::is_upgrade(req.headers());
    let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
    let (mut parts, body) = req.into_parts();
    // Set by the front middleware (client copies replaced); kept aside because the header rules
    // below may remove it (`Connection: x-request-id`, `PORTCULLIS_STRIP_HEADERS`).
    let request_id = parts.headers.get(crate::request_id::HEADER).cloned();
    let pool = up.client();
    parts.uri = match pool {
        Pool::Plain(_) => up.origin_form(&parts.uri)?,
        Pool::Tls { .. } => up.uri_for(&parts.uri)?,
    };
    // Sent as HTTP/1.1 whatever the client used (an h2 request would fail on an HTTP/1.1
    // connection with UserUnsupportedVersion); on a connection that negotiated h2 the client
    // sends it as h2 all the same. The authority is in the URI: Host (HTTP/1.1) or
    // `:authority` (h2) is set from it, the client's Host having been removed.
    parts.version = Version::HTTP_11;
    headers::prepare_request(
        &mut parts.headers,
        authed.as_ref().map(|a| a.identity_headers(&rules.identity)),
        &state.cookies,
        Some(peer.ip()),
        rules,
        // Sessions travel in cookies, and another Authorization header is the app's own; one
        // that carried a Portcullis API token never reaches the app (R-HD-4).
        authed.as_ref().is_some_and(|a| a.api_token().is_some()),
    );
    // The signed identity assertion, when configured (nothing at all otherwise).
    crate::assertion::attach(state, authed.as_ref(), &mut parts.headers)?;
    // Exactly one `X-Request-Id`, ours, whatever the header rules above removed.
    if let Some(id) = request_id {
        parts.headers.insert(crate::request_id::HEADER, id);
    }
    let body = LimitedBody::new(body, rules.max_body_bytes, rules.body_timeout);
    let sent = std::time::Instant::now();
    let mut resp = match pool
        .send(axum::http::Request::from_parts(parts, body), upgrade)
        .await
    {
        Ok(r) => {
            state.metrics.proxied(sent.elapsed(), r.status().as_u16());
            r
        }
        Err(e) => {
            return match BodyError::find(&*e) {
                Some(BodyError::TooLarge) => Err(WebError::TooLarge(StatusCode::PAYLOAD_TOO_LARGE)),
                Some(BodyError::Idle) => Err(WebError::RequestTimeout),
                _ => {
                    state.metrics.upstream_error(UpstreamError::Unreachable);
                    // The chain names the cause (refused, unknown CA, wrong name, ...): the
                    // client error's own text says only "client error (Connect)".
                    tracing::warn!(error = %error_chain(&*e), "upstream request failed");
                    Err(WebError::UpstreamUnavailable)
                }
            };
        }
    };
    if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
        if let (Some(client_upgrade), Some(a)) = (client_upgrade, &authed) {
            let upstream_upgrade = hyper::upgrade::on(&mut resp);
            let watch = tunnel::SessionWatch::of(a);
            tokio::spawn(tunnel::run(
                state.clone(),
                client_upgrade,
                upstream_upgrade,
                watch,
            ));
        }
        let (mut parts, _) = resp.into_parts();
        headers::strip_hop_by_hop(&mut parts.headers, true);
        return Ok(Response::from_parts(parts, axum::body::Body::empty()));
    }
    headers::strip_hop_by_hop(resp.headers_mut(), false);
    Ok(resp)
}

/// An error and its sources, `: `-separated (only on the error path).
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// R-HD-5: standard methods in their exact spelling, plus configured extras.
    #[test]
    fn r_hd_5_methods_are_matched_case_sensitively() {
        let extra = vec!["PROPFIND".to_string()];
        for m in [
            "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "PROPFIND",
        ] {
            let m = Method::from_bytes(m.as_bytes()).unwrap();
            assert!(method_allowed(&m, &extra), "{m}");
        }
        for m in ["get", "Get", "FOO", "CONNECT", "TRACE", "propfind", "MKCOL"] {
            let m = Method::from_bytes(m.as_bytes()).unwrap();
            assert!(!method_allowed(&m, &extra), "{m}");
        }
    }
}
