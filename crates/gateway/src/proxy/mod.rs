//! The reverse proxy: every path that is not Portcullis's own goes to the upstream, streamed,
//! with WebSocket upgrades tunnelled byte-for-byte.
//!
//! Written on hyper-util rather than a proxy crate: identity headers, hop-by-hop rules and the
//! upgrade tunnel must be exact and testable (STACK.md, the reverse-proxy row).

pub mod headers;

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};

use crate::auth::{self, Authed};
use crate::error::{WebError, wants_json};
use crate::state::AppState;

/// The application behind Portcullis.
#[derive(Clone, Debug)]
pub struct Upstream {
    base: url::Url,
    client: Client<HttpConnector, Body>,
}

impl Upstream {
    pub fn new(base: url::Url) -> Upstream {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(std::time::Duration::from_secs(5)));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Upstream { base, client }
    }

    /// The upstream URI for a request path and query (a base path prefix is kept).
    fn uri_for(&self, uri: &Uri) -> Result<Uri, WebError> {
        let prefix = self.base.path().trim_end_matches('/');
        let pq = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let origin = self.base.origin().ascii_serialization();
        format!("{origin}{prefix}{pq}")
            .parse()
            .map_err(|_| WebError::BadRequest("invalid request URI"))
    }
}

/// The fallback handler: authenticate, then forward or ask to sign in.
pub async fn gate(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let json = wants_json(req.headers());
    match auth::authenticate(&state, req.headers()).await {
        Ok(Some(a)) => forward(&state, Some(a), peer, req)
            .await
            .unwrap_or_else(|e| e.render_as(json)),
        Ok(None) => sign_in_or_401(&state, &req),
        Err(e) => e.render_as(json),
    }
}

/// A browser is sent to sign in and brought back (R-RD applies in `/api/login`); API clients
/// (`Accept: application/json`, or any non-GET) get 401 JSON.
fn sign_in_or_401(state: &AppState, req: &Request) -> Response {
    let browser = matches!(*req.method(), Method::GET | Method::HEAD) && !wants_json(req.headers());
    if !browser {
        return WebError::Unauthorized.render_as(true);
    }
    let target = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let rd: String = url::form_urlencoded::byte_serialize(target.as_bytes()).collect();
    // Absolute, on the public origin: the tx cookie must be set on the host the IdP will
    // redirect back to, even if this request arrived under another name (e.g. an IP).
    let login = format!("{}/api/login?rd={rd}", state.public_origin);
    let mut resp = (StatusCode::FOUND, [(header::LOCATION, login)]).into_response();
    crate::routes::no_store(&mut resp);
    resp
}

async fn forward(
    state: &AppState,
    authed: Option<Authed>,
    peer: SocketAddr,
    mut req: Request,
) -> Result<Response, WebError> {
    let Some(up) = &state.upstream else {
        return Ok((
            StatusCode::NOT_FOUND,
            "no upstream is configured (PORTCULLIS_UPSTREAM)",
        )
            .into_response());
    };
    let upgrade = headers::is_upgrade(req.headers());
    let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
    let (mut parts, body) = req.into_parts();
    parts.uri = up.uri_for(&parts.uri)?;
    headers::prepare_request(
        &mut parts.headers,
        authed.as_ref().map(|a| a.user.as_ref()),
        &state.cookies,
        Some(peer.ip()),
        &state.config.public_url,
    );
    let mut resp = up
        .client
        .request(axum::http::Request::from_parts(parts, body))
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "upstream request failed");
            WebError::UpstreamUnavailable
        })?;
    if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
        if let Some(client_upgrade) = client_upgrade {
            let upstream_upgrade = hyper::upgrade::on(&mut resp);
            tokio::spawn(async move {
                match tokio::try_join!(client_upgrade, upstream_upgrade) {
                    Ok((c, u)) => {
                        let (mut c, mut u) = (TokioIo::new(c), TokioIo::new(u));
                        let _ = tokio::io::copy_bidirectional(&mut c, &mut u).await;
                    }
                    Err(e) => tracing::debug!(error = %e, "upgrade failed"),
                }
            });
        }
        let (mut parts, _) = resp.into_parts();
        headers::strip_hop_by_hop(&mut parts.headers, true);
        return Ok(Response::from_parts(parts, Body::empty()));
    }
    let (mut parts, body) = resp.into_parts();
    headers::strip_hop_by_hop(&mut parts.headers, false);
    Ok(Response::from_parts(parts, Body::new(body)))
}
