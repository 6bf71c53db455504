//! Shared state of one gateway process. Everything a request needs is here and in memory:
//! the request path does no database round trip for a signed-in user (DESIGN.md "State").

use std::sync::Arc;

use portcullis_core::config::{CaSource, Config, OidcConfig, check_ca_pem};
use portcullis_core::session::{CookieNames, SessionKeys};
use portcullis_core::time::Clock;
use portcullis_store::Store;

use crate::dpop::DpopGuard;
use crate::idp::{Idp, IdpHttp, Idps};
use crate::limiter::RateLimiter;
use crate::proxy::Upstream;
use crate::sessions::SessionService;
use crate::views::Views;

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("custom CA (OIDC_SIGNER_PEM_URL): {0}")]
    Ca(String),
    #[error("database: {0}")]
    Store(#[from] portcullis_store::StoreError),
    #[error("cannot create the database directory {dir}: {source}")]
    DatabaseDir {
        dir: String,
        #[source]
        source: std::io::Error,
    },
    #[error("identity assertion keys: {0}")]
    Assertion(#[from] crate::assertion::AssertionError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    UpstreamTls(#[from] crate::proxy::tls::UpstreamTlsError),
    #[error("cannot start the connection worker threads: {0}")]
    Workers(#[source] std::io::Error),
}

/// Handle to the shared state; cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub config: Arc<Config>,
    pub store: Store,
    /// The identity providers (one unless the file lists more).
    pub idps: Idps,
    /// Browser sessions: keys, lifetimes, cookies.
    pub sessions: SessionService,
    /// Gateway cookie names (the same as `sessions.cookies`).
    pub cookies: CookieNames,
    /// The public origin (`iss`/`aud` of session tokens, absolute redirects).
    pub public_origin: String,
    pub upstream: Option<Upstream>,
    /// The identity-header rules when there is no upstream (forward-auth only); resolved at
    /// start-up like the upstream's own, so both answer with the same names.
    header_rules: crate::proxy::headers::HeaderRules,
    /// Revoked sessions and cached users, kept current by the change feed.
    pub views: Views,
    /// Sign-in starts per client address.
    pub login_limiter: RateLimiter,
    /// Back-channel logout requests per source address (R-BCL: 60 per minute).
    pub bcl_limiter: RateLimiter,
    /// Rate limits of the command-line sign-in.
    pub cli: crate::routes::cli_login::CliLimits,
    /// The audit trail (store table + log line).
    pub audit: crate::audit::Audit,
    /// Tier 3 (R-DP): `None` when DPoP is turned off.
    pub dpop: Option<DpopGuard>,
    /// The only source of "now" for requests and background tasks (tests inject their own).
    pub clock: Arc<dyn Clock>,
    /// Prometheus metrics, served on their own listener.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The signed identity assertion; `None` when off (the hot path then does nothing).
    pub assertion: Option<crate::assertion::Assertions>,
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
        clock: Arc<dyn Clock>,
    ) -> Result<AppState, StartError> {
        let ca = ca_pem;
        let metrics = Arc::new(crate::metrics::Metrics::new());
        let http = |ca: Option<&str>| {
            IdpHttp::new(ca)
                .map(|h| h.with_metrics(metrics.clone()))
                .map_err(|e| StartError::Ca(e.to_string()))
        };
        let primary = Arc::new(Idp::new(
            config.idp_label.clone(),
            config.oidc.clone(),
            http(ca.as_deref())?,
            None,
        ));
        let mut more = Vec::new();
        for extra in &config.more_idps {
            let ca = load_ca_of(&extra.oidc).await?;
            more.push(Arc::new(Idp::new(
                extra.label.clone(),
                extra.oidc.clone(),
                http(ca.as_deref())?,
                extra.roles.clone(),
            )));
        }
        let idps = Idps::new(primary, more);
        let mut keys = SessionKeys::derive(config.jwt_signing_secret.expose());
        if let Some(prev) = &config.previous_jwt_signing_secret {
            keys = keys.with_previous(prev.expose());
        }
        let views = Views::default();
        let now = clock.now();
        for (sid, exp) in store.sessions.revoked_sessions(now).await? {
            views.revoked.revoke(&sid, exp, now);
        }
        let cookies = CookieNames::new(config.secure_cookies());
        let public_origin = config.public_origin();
        let login_limiter = RateLimiter::new(config.limits.login_starts_per_minute);
        let dpop = config.browser.dpop.enabled.then(|| {
            DpopGuard::new(
                config.public_url.clone(),
                &keys,
                config.browser.dpop.nonce,
                &store,
            )
        });
        let sessions = SessionService::new(
            keys,
            cookies.clone(),
            public_origin.clone(),
            config.sessions,
            crate::workers::count(config.limits.worker_threads),
        );
        let upstream = config
            .upstream
            .clone()
            .map(|u| Upstream::with_config(u, &config))
            .transpose()?;
        let audit = crate::audit::Audit::new(store.clone());
        let header_rules = crate::proxy::headers::HeaderRules::from_config(&config);
        let bcl_limiter = RateLimiter::new(config.limits.backchannel_logouts_per_minute);
        // Keys of the current period derived now, not on the first request.
        let assertion = crate::assertion::Assertions::new(&config, now)?;
        Ok(AppState(Arc::new(Inner {
            assertion,
            header_rules,
            cookies,
            public_origin,
            config: Arc::new(config),
            store,
            idps,
            sessions,
            upstream,
            views,
            login_limiter,
            bcl_limiter,
            cli: Default::default(),
            audit,
            dpop,
            clock,
            metrics,
        })))
    }

    /// The header rules identity headers are built with: the upstream's, or the same rules
    /// resolved for forward-auth when there is no upstream.
    pub fn header_rules(&self) -> &crate::proxy::headers::HeaderRules {
        match &self.upstream {
            Some(up) => up.rules(&self.config),
            None => &self.header_rules,
        }
    }

    /// Now, in unix seconds, from the injected clock.
    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// The IdP of the environment contract.
    pub fn primary_idp(&self) -> &Arc<Idp> {
        self.idps.primary()
    }

    /// The roles of a person of IdP `issuer` with `groups`: that IdP's own group lists when
    /// it has them, else the gateway's; `noRole` applies either way.
    pub fn roles_of(
        &self,
        issuer: &str,
        groups: &[String],
    ) -> Result<Vec<String>, portcullis_core::authz::NoRoleRefused> {
        let authz = &self.config.authz;
        match self.idps.by_issuer(issuer).and_then(|i| i.roles()) {
            Some(map) => map.resolve(groups, &authz.no_role),
            None => authz.roles_of(groups),
        }
    }
}

/// Read the custom CA: inline PEM, `file://`, or `https://` (system roots) — R-CFG-5.
pub async fn load_ca(config: &Config) -> Result<Option<String>, StartError> {
    load_ca_of(&config.oidc).await
}

/// One IdP's custom CA (see [`load_ca`]).
pub async fn load_ca_of(oidc: &OidcConfig) -> Result<Option<String>, StartError> {
    let pem = match &oidc.ca {
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
                .get_uncounted(u, None, 256 * 1024)
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
