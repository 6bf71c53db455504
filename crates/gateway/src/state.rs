//! Shared state of one gateway process. Everything a request needs is here and in memory:
//! the request path does no database round trip for a signed-in user (DESIGN.md "State").

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use arc_swap::ArcSwapOption;
use portcullis_core::config::{CaSource, Config, check_ca_pem};
use portcullis_core::session::{CookieNames, SessionKeys};
use portcullis_store::{Store, User};

use crate::idp::{IdpHttp, Provider};
use crate::proxy::Upstream;

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("custom CA (OIDC_SIGNER_PEM_URL): {0}")]
    Ca(String),
    #[error("store: {0}")]
    Store(#[from] portcullis_store::StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
}

/// Handle to the shared state; cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub config: Arc<Config>,
    pub store: Store,
    pub idp: IdpHttp,
    pub keys: SessionKeys,
    pub cookies: CookieNames,
    /// `iss`/`aud` of session tokens: the public origin.
    pub public_origin: String,
    pub upstream: Option<Upstream>,
    pub revoked: RevocationView,
    pub users: UserCache,
    provider: ArcSwapOption<Provider>,
    not_ready: RwLock<String>,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// Build the state: custom CA, IdP client, keys, revocation view seeded from the store.
    /// `ca_pem` is the custom CA from [`load_ca`] (loaded before the store is opened, so a
    /// refused start leaves nothing behind).
    pub async fn new(
        config: Config,
        store: Store,
        ca_pem: Option<String>,
    ) -> Result<AppState, StartError> {
        let ca = ca_pem;
        let idp = IdpHttp::new(ca.as_deref()).map_err(|e| StartError::Ca(e.to_string()))?;
        let mut keys = SessionKeys::derive(config.jwt_signing_secret.expose());
        if let Some(prev) = &config.previous_jwt_signing_secret {
            keys = keys.with_previous(prev.expose());
        }
        let revoked = RevocationView::default();
        let now = portcullis_core::time::now_unix();
        for (sid, exp) in store.revoked_session_ids(now).await? {
            revoked.revoke(&sid, exp);
        }
        let upstream = config.upstream.clone().map(Upstream::new);
        Ok(AppState(Arc::new(Inner {
            cookies: CookieNames::new(config.secure_cookies()),
            public_origin: config.public_origin(),
            config: Arc::new(config),
            store,
            idp,
            keys,
            upstream,
            revoked,
            users: UserCache::default(),
            provider: ArcSwapOption::empty(),
            not_ready: RwLock::new("loading the IdP's metadata".into()),
        })))
    }

    /// The loaded IdP, or why it is not loaded.
    pub fn provider(&self) -> Result<Arc<Provider>, String> {
        self.provider.load_full().ok_or_else(|| {
            self.not_ready
                .read()
                .map(|r| r.clone())
                .unwrap_or_else(|_| "not ready".into())
        })
    }

    pub fn set_provider(&self, p: Arc<Provider>) {
        self.provider.store(Some(p));
    }

    pub fn set_not_ready(&self, reason: String) {
        if let Ok(mut r) = self.not_ready.write() {
            *r = reason;
        }
    }
}

/// Read the custom CA: inline PEM, `file://`, or `https://` (system roots) — R-CFG-5.
pub async fn load_ca(config: &Config) -> Result<Option<String>, StartError> {
    let pem = match &config.oidc.ca {
        None => return Ok(None),
        Some(CaSource::Pem(p)) => p.clone(),
        Some(CaSource::Url(u)) if u.scheme() == "file" => {
            let path = u
                .to_file_path()
                .map_err(|_| StartError::Ca(format!("bad file URL {u}")))?;
            std::fs::read_to_string(&path)
                .map_err(|e| StartError::Ca(format!("cannot read {}: {e}", path.display())))?
        }
        Some(CaSource::Url(u)) => {
            let http = IdpHttp::new(None).map_err(|e| StartError::Ca(e.to_string()))?;
            let r = http
                .get(u, None, 256 * 1024)
                .await
                .map_err(|e| StartError::Ca(e.to_string()))?;
            if r.status != 200 {
                return Err(StartError::Ca(format!("{u} answered HTTP {}", r.status)));
            }
            String::from_utf8(r.body.to_vec())
                .map_err(|_| StartError::Ca(format!("{u} is not PEM text")))?
        }
    };
    check_ca_pem(&pem).map_err(StartError::Ca)?;
    Ok(Some(pem))
}

/// Revoked session ids until their absolute expiry. Written at logout (and by the store's
/// change feed in a multi-replica release); read on every request.
#[derive(Default)]
pub struct RevocationView {
    revoked: RwLock<HashMap<String, i64>>,
}

impl RevocationView {
    pub fn revoke(&self, sid: &str, expires_at: i64) {
        if let Ok(mut m) = self.revoked.write() {
            let now = portcullis_core::time::now_unix();
            m.retain(|_, exp| *exp >= now);
            m.insert(sid.to_string(), expires_at);
        }
    }

    /// Fails closed: a poisoned lock counts as revoked.
    pub fn is_revoked(&self, sid: &str) -> bool {
        self.revoked
            .read()
            .map(|m| m.contains_key(sid))
            .unwrap_or(true)
    }
}

/// Signed-in users by internal id, filled at sign-in and on first use after a restart.
#[derive(Default)]
pub struct UserCache {
    users: RwLock<HashMap<String, Arc<User>>>,
}

/// Bound on cached users; beyond it the cache starts over (entries reload on demand).
const USER_CACHE_MAX: usize = 100_000;

impl UserCache {
    pub fn get(&self, id: &str) -> Option<Arc<User>> {
        self.users.read().ok().and_then(|m| m.get(id).cloned())
    }

    pub fn put(&self, user: User) -> Arc<User> {
        let u = Arc::new(user);
        if let Ok(mut m) = self.users.write() {
            if m.len() >= USER_CACHE_MAX {
                m.clear();
            }
            m.insert(u.id.clone(), u.clone());
        }
        u
    }
}
