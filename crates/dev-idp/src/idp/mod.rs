//! The DEVELOPMENT-ONLY OpenID Provider.
//!
//! Authorization code flow with mandatory PKCE (S256), confidential clients
//! (`client_secret_post` / `client_secret_basic`), RS256 ID tokens, userinfo,
//! refresh tokens (with `offline_access`), RP-initiated logout and
//! back-channel logout. State lives in memory only.

pub(crate) mod config;
pub(crate) mod keys;
pub(crate) mod pages;
pub(crate) mod routes;
pub(crate) mod state;
pub(crate) mod util;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};

pub use config::{DevClient, DevIdpConfig, DevUser, demo_users};

use keys::SigningKey;
use state::State;

/// Name of the IdP browser-session cookie. Distinctive, because cookies are
/// not isolated by port and the gateway may run on the same host.
pub(crate) const SESSION_COOKIE: &str = "portcullis_dev_idp_session";

/// Errors building a [`DevIdp`].
#[derive(Debug, thiserror::Error)]
pub enum DevIdpError {
    #[error("invalid dev IdP issuer {0}")]
    InvalidIssuer(String),
    #[error("invalid dev IdP client {0}")]
    InvalidClient(String),
    #[error("invalid dev IdP user {0}")]
    InvalidUser(String),
    #[error("dev IdP signing key: {0}")]
    KeyGeneration(String),
    #[error("dev IdP HTTP client: {0}")]
    HttpClient(String),
}

/// The development OpenID Provider. Build with [`DevIdp::new`], serve
/// [`DevIdp::router`].
pub struct DevIdp {
    issuer: String,
    /// Path prefix of the issuer ("" or e.g. "/idp").
    base_path: String,
    secure_cookies: bool,
    clients: HashMap<String, DevClient>,
    users: Vec<DevUser>,
    key: SigningKey,
    state: Mutex<State>,
    http: reqwest::Client,
}

impl std::fmt::Debug for DevIdp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevIdp")
            .field("issuer", &self.issuer)
            .field("clients", &self.clients.keys().collect::<Vec<_>>())
            .field("users", &self.users.len())
            .finish_non_exhaustive()
    }
}

impl DevIdp {
    /// Validates the configuration and generates a fresh RSA-2048 signing key.
    pub fn new(cfg: DevIdpConfig) -> Result<Arc<DevIdp>, DevIdpError> {
        let (issuer, base_path) = config::validate(&cfg)?;
        let key = SigningKey::generate()?;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(5))
            .build()
            .map_err(|e| DevIdpError::HttpClient(e.to_string()))?;
        tracing::warn!(
            issuer = %issuer,
            "starting the Portcullis DEVELOPMENT IdP: for local demos only, never production"
        );
        Ok(Arc::new(DevIdp {
            secure_cookies: cfg.issuer.scheme() == "https",
            issuer,
            base_path,
            clients: cfg
                .clients
                .into_iter()
                .map(|c| (c.client_id.clone(), c))
                .collect(),
            users: cfg.users,
            key,
            state: Mutex::new(State::default()),
            http,
        }))
    }

    /// The issuer identifier (no trailing slash).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The IdP's routes, nested under the issuer's path if it has one.
    pub fn router(self: &Arc<Self>) -> axum::Router {
        routes::router(Arc::clone(self))
    }

    /// `issuer` + `path` (path starts with '/').
    pub(crate) fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }

    /// Path-only form of an endpoint, for form actions and cookies.
    pub(crate) fn local_path(&self, path: &str) -> String {
        format!("{}{path}", self.base_path)
    }

    pub(crate) fn client(&self, client_id: &str) -> Option<&DevClient> {
        self.clients.get(client_id)
    }

    pub(crate) fn user(&self, username: &str) -> Option<&DevUser> {
        self.users.iter().find(|u| u.username == username)
    }

    /// Locks the state (recovering from poisoning: it is plain data) and
    /// purges expired entries.
    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        let mut guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
        guard.purge(util::now());
        guard
    }
}

/// Serves `router` on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, router: axum::Router) -> std::io::Result<()> {
    axum::serve(listener, router).await
}

/// Serves `router` on `listener` until `shutdown` completes.
pub async fn serve_with_shutdown<F>(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    shutdown: F,
) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}
