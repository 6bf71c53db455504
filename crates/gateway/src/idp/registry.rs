//! The identity providers of one gateway: the one of the environment contract, then those of
//! the file's `identityProviders` list. Each has its own client settings, HTTP client (its
//! own CA), role lists and loaded metadata; requests find theirs by id (sign-in), callback
//! path (the callback), or issuer (sessions, offline re-checks, back-channel logouts).

use std::sync::{Arc, RwLock};

use arc_swap::ArcSwapOption;
use portcullis_core::authz::RoleMap;
use portcullis_core::config::{IdpLabel, OidcConfig};

use super::{IdpHttp, Provider};
use crate::error::WebError;

/// One configured identity provider and, once loaded, its metadata and keys.
pub struct Idp {
    pub label: IdpLabel,
    pub oidc: OidcConfig,
    /// Talks to this IdP only (its custom CA, if any).
    pub http: IdpHttp,
    /// This IdP's group lists per role; `None`: the gateway's.
    roles: Option<RoleMap>,
    /// The issuer the configuration implies, known before loading.
    expected_issuer: Option<String>,
    provider: ArcSwapOption<Provider>,
    not_ready: RwLock<String>,
}

impl Idp {
    pub fn new(label: IdpLabel, oidc: OidcConfig, http: IdpHttp, roles: Option<RoleMap>) -> Idp {
        Idp {
            expected_issuer: oidc.expected_issuer(),
            label,
            oidc,
            http,
            roles,
            provider: ArcSwapOption::empty(),
            not_ready: RwLock::new("loading the IdP's metadata".into()),
        }
    }

    /// The loaded metadata, or why it is not loaded.
    pub fn provider(&self) -> Result<Arc<Provider>, String> {
        self.provider.load_full().ok_or_else(|| {
            self.not_ready
                .read()
                .map(|r| r.clone())
                .unwrap_or_else(|_| "not ready".into())
        })
    }

    /// The loaded metadata, or the 503 that explains why sign-in is unavailable.
    pub fn ready_provider(&self) -> Result<Arc<Provider>, WebError> {
        // Until the first attempt fails the loader's reason says "starting up"; after that
        // the page says the IdP cannot be reached.
        self.provider().map_err(|reason| WebError::NotReady {
            starting: reason.starts_with("starting up") || reason.starts_with("loading"),
            reason,
        })
    }

    pub fn set_provider(&self, p: Arc<Provider>) {
        self.provider.store(Some(p));
    }

    /// Record why the IdP is not loaded (after a failed attempt).
    pub fn set_not_ready(&self, reason: String) {
        if let Ok(mut r) = self.not_ready.write() {
            *r = reason;
        }
    }

    /// Whether tokens with this `iss` are this IdP's: its loaded issuer, else the one its
    /// configuration implies.
    pub fn has_issuer(&self, iss: &str) -> bool {
        match self.provider.load().as_ref() {
            Some(p) => p.metadata.issuer == iss,
            None => self.expected_issuer.as_deref() == Some(iss),
        }
    }

    /// The issuer the configuration implies (before loading).
    pub fn expected_issuer(&self) -> Option<&str> {
        self.expected_issuer.as_deref()
    }

    /// The path this IdP's authorization responses arrive on.
    pub fn callback_path(&self) -> &str {
        self.oidc.redirect_url.path()
    }

    /// This IdP's own group lists per role, if it has them.
    pub fn roles(&self) -> Option<&RoleMap> {
        self.roles.as_ref()
    }
}

/// Every IdP of the gateway; the first is the environment contract's.
pub struct Idps {
    primary: Arc<Idp>,
    /// All of them, the primary first.
    all: Vec<Arc<Idp>>,
}

impl Idps {
    pub fn new(primary: Arc<Idp>, more: Vec<Arc<Idp>>) -> Idps {
        let mut all = vec![primary.clone()];
        all.extend(more);
        Idps { primary, all }
    }

    /// The IdP of the environment contract.
    pub fn primary(&self) -> &Arc<Idp> {
        &self.primary
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<Idp>> {
        self.all.iter()
    }

    /// More than one: sign-in shows the chooser.
    pub fn several(&self) -> bool {
        self.all.len() > 1
    }

    pub fn get(&self, id: &str) -> Option<&Arc<Idp>> {
        self.all.iter().find(|i| i.label.id == id)
    }

    /// The IdP whose issuer `iss` is. With a single IdP that is always it: an issuer change
    /// at that IdP must not orphan its users (their tokens are checked against it anyway).
    pub fn by_issuer(&self, iss: &str) -> Option<&Arc<Idp>> {
        if !self.several() {
            return Some(&self.primary);
        }
        self.all.iter().find(|i| i.has_issuer(iss))
    }

    /// The IdP whose redirect URI has this path.
    pub fn by_callback_path(&self, path: &str) -> Option<&Arc<Idp>> {
        self.all.iter().find(|i| i.callback_path() == path)
    }

    /// The IdP an email address (or bare domain) is routed to, if its domain is listed.
    pub fn for_email(&self, email_or_domain: &str) -> Option<&Arc<Idp>> {
        let domain = email_or_domain
            .rsplit_once('@')
            .map_or(email_or_domain, |(_, d)| d)
            .trim()
            .to_ascii_lowercase();
        self.all
            .iter()
            .find(|i| i.label.email_domains.contains(&domain))
    }
}
