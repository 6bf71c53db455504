//! Configuration: the seed-000 environment table and the seed-001/seed-000 YAML shapes, layered
//! (environment over file), then validated into a typed [`Config`] or a list of problems —
//! one clear line each (R-CFG).

mod assertion;
mod authz;
mod browser;
mod client_auth;
mod env;
mod file;
mod forward_auth;
mod idps;
mod observability;
mod offline;
mod proxy;
mod raw;
mod session;
mod upstream_tls;
mod validate;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;

pub use assertion::AssertionSettings;
pub use browser::{BrowserSettings, DpopSettings};
pub use client_auth::ParMode;
pub use env::{ENV_VARS, from_env, unknown_vars};
pub use file::{FileError, STANDARD_ROLES, parse as parse_file};
pub use forward_auth::ForwardAuthSettings;
pub use observability::{MAX_REQUEST_ID_LEN, ObservabilitySettings, SUGGESTED_METRICS_LISTEN};
pub use offline::{OFFLINE_ACCESS_SCOPE, OfflineAccess};
pub use proxy::{ConnectionLimits, IdentityHeaderNames, ProxySettings, STANDARD_METHODS, is_token};
pub use raw::{RawClaimKeys, RawIdp, RawPolicy, RawSettings};
pub use session::SessionLifetimes;
pub use upstream_tls::{ClientIdentity, UpstreamTls};
pub use validate::{Problem, check_ca_pem, validate};

use crate::jose::JwsAlg;

/// A secret string whose `Debug` never shows the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    /// The secret itself; call sites are the few places that must use it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// How Portcullis authenticates at the token endpoint (RFC 6749 §2.3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuthMethod {
    /// seed 000's default: id and secret in the POST body.
    ClientSecretPost,
    /// HTTP Basic with form-urlencoded id and secret.
    ClientSecretBasic,
    /// A JWT signed with the client's private key (RFC 7523 §2.2, OIDC Core §9); no secret.
    PrivateKeyJwt,
}

impl ClientAuthMethod {
    /// The registered name (`token_endpoint_auth_method`).
    pub fn as_str(self) -> &'static str {
        match self {
            ClientAuthMethod::ClientSecretPost => "client_secret_post",
            ClientAuthMethod::ClientSecretBasic => "client_secret_basic",
            ClientAuthMethod::PrivateKeyJwt => "private_key_jwt",
        }
    }
}

/// Where the IdP's endpoints come from (seed 000: discovery recommended, manual as fallback).
#[derive(Clone, Debug, PartialEq)]
pub struct IdpEndpoints {
    pub discovery_url: Option<url::Url>,
    /// Individually configured endpoints win over discovered ones (seed 000's precedence rule).
    pub authorization_endpoint: Option<url::Url>,
    pub token_endpoint: Option<url::Url>,
    pub userinfo_endpoint: Option<url::Url>,
    pub issuer: Option<String>,
    pub jwks_uri: Option<url::Url>,
}

/// Where the custom CA for IdP TLS comes from (R-CFG-5).
#[derive(Clone, Debug, PartialEq)]
pub enum CaSource {
    /// PEM text given inline or read from a `file://` URL at load time.
    Pem(String),
    /// Fetched at start-up (system roots verify an https URL).
    Url(url::Url),
}

/// Claim keys, each possibly a dotted path into nested claims (e.g. `realm_access.roles`).
#[derive(Clone, Debug, PartialEq)]
pub struct ClaimKeys {
    pub id: String,
    pub email: String,
    pub name: String,
    pub given_name: String,
    pub family_name: String,
    pub picture: String,
    pub provider: String,
    pub username: String,
    pub groups: String,
    /// Sign-ins whose claims say `email_verified: false` are refused unless this is set
    /// (`OIDC_ALLOW_UNVERIFIED_EMAIL`); when set, such an email is dropped from the profile.
    pub allow_unverified_email: bool,
}

/// The OpenID Connect client settings.
#[derive(Clone, Debug)]
pub struct OidcConfig {
    pub endpoints: IdpEndpoints,
    pub client_id: String,
    /// Empty with `private_key_jwt`.
    pub client_secret: Secret,
    pub auth_method: ClientAuthMethod,
    /// The private key of `private_key_jwt`, loaded and checked at start-up.
    pub client_key: Option<std::sync::Arc<crate::oidc::client_assertion::ClientKey>>,
    /// Pushed authorization requests (RFC 9126).
    pub pushed_authorization_requests: ParMode,
    pub scopes: Vec<String>,
    pub allowed_algs: Vec<JwsAlg>,
    /// Extra authorization request parameters (seed 001 `customParameters`, `access_type`).
    pub custom_parameters: BTreeMap<String, String>,
    pub redirect_url: url::Url,
    pub allow_insecure_http: bool,
    pub ca: Option<CaSource>,
    pub claim_keys: ClaimKeys,
    /// Groups that did not fit in the token (Entra ID): fetched or refused.
    pub groups_overage: crate::claim_sources::OverageSettings,
    /// Google Workspace hosted domains (`hd`) allowed to sign in, lowercase; empty = any.
    pub allowed_hosted_domains: Vec<String>,
    /// One more audience an ID token may name besides the client id (ADFS); the client id
    /// must still be among the audiences.
    pub expected_audience: Option<String>,
    /// Refresh tokens are kept and sessions re-checked (`offline_access` scope or
    /// `access_type: offline`).
    pub offline_access: bool,
}

impl OidcConfig {
    /// The issuer this IdP will have, when the configuration already says it: the configured
    /// issuer, else the one a discovery URL implies (OIDC Discovery §4.3 requires the two to
    /// match, and loading checks it). `None` with manual endpoints and no issuer.
    pub fn expected_issuer(&self) -> Option<String> {
        if let Some(i) = &self.endpoints.issuer {
            return Some(i.clone());
        }
        let d = self.endpoints.discovery_url.as_ref()?;
        d.as_str()
            .strip_suffix(crate::oidc::discovery::WELL_KNOWN)
            .map(str::to_string)
    }
}

/// How one identity provider is named and chosen when a gateway has several.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdpLabel {
    /// Short id (`[a-z0-9-]`): `/api/login?idp=<id>` and the default callback path of an
    /// additional IdP. The IdP of the environment contract is [`PRIMARY_IDP_ID`].
    pub id: String,
    /// What the sign-in chooser shows.
    pub name: String,
    /// Lower-case email domains whose people sign in here without the chooser.
    pub email_domains: Vec<String>,
}

/// The id of the IdP configured by the environment contract (or the file's top level).
pub const PRIMARY_IDP_ID: &str = "default";

/// One more identity provider (`portcullis.identityProviders` in the YAML file).
#[derive(Clone, Debug)]
pub struct AdditionalIdp {
    pub label: IdpLabel,
    pub oidc: OidcConfig,
    /// This IdP's group lists per role; `None` uses the gateway's mapping.
    pub roles: Option<crate::authz::RoleMap>,
}

/// Where users and sessions are stored.
#[derive(Clone, Debug, PartialEq)]
pub enum DatabaseUrl {
    /// An SQLite file (created if missing).
    Sqlite(String),
    /// A PostgreSQL URL (`postgres://` or `postgresql://`), for several replicas.
    Postgres(Secret),
}

/// The validated configuration of one gateway.
#[derive(Clone, Debug)]
pub struct Config {
    /// The identity provider of the environment contract (seed 000), always present.
    pub oidc: OidcConfig,
    /// Its id, chooser name and email domains.
    pub idp_label: IdpLabel,
    /// More identity providers, in the file's order (none unless the file lists them).
    pub more_idps: Vec<AdditionalIdp>,
    pub jwt_signing_secret: Secret,
    /// The secret before the last rotation: sessions it signed stay valid until they expire.
    pub previous_jwt_signing_secret: Option<Secret>,
    pub listen: SocketAddr,
    pub upstream: Option<url::Url>,
    /// CA bundle and client certificate for an https upstream (empty for http).
    pub upstream_tls: UpstreamTls,
    pub database: DatabaseUrl,
    /// The public base URL (`https://<dnsRecord>`), never derived from request headers
    /// (R-CFG-6). No trailing slash.
    pub public_url: url::Url,
    /// Group lists per role (seed 001), as configured; [`Config::authz`] holds the typed map.
    pub roles: BTreeMap<String, Vec<String>>,
    /// Group → role mapping, `noRole` and path policies.
    pub authz: crate::authz::AuthzSettings,
    /// What the reverse proxy forwards and how (R-HD, R-RS-1).
    pub proxy: ProxySettings,
    /// Client connection limits and timeouts (R-RS-1).
    pub limits: ConnectionLimits,
    /// Browser session lifetimes (R-SJ-4).
    pub sessions: SessionLifetimes,
    /// DPoP-bound sessions and CORS (R-DP, R-CSRF-6).
    pub browser: BrowserSettings,
    /// IdP refresh tokens kept server-side and periodic re-checks at the IdP (seed 001).
    pub offline: OfflineAccess,
    /// Who may ask `/api/forward-auth` about a request (default: nobody).
    pub forward_auth: ForwardAuthSettings,
    /// The metrics listener and request ids.
    pub observability: ObservabilitySettings,
    /// The signed identity assertion towards the app (off unless a header is named).
    pub assertion: AssertionSettings,
    /// Non-fatal findings to log at start-up.
    pub warnings: Vec<String>,
}

impl Config {
    /// The public origin, e.g. `https://gw.example.com` (no trailing slash).
    pub fn public_origin(&self) -> String {
        self.public_url.origin().ascii_serialization()
    }

    /// Whether cookies get `Secure` and the `__Host-` prefix (R-CK-3): any https URL, and
    /// http on loopback (a secure context in browsers).
    pub fn secure_cookies(&self) -> bool {
        self.public_url.scheme() == "https" || is_loopback_url(&self.public_url)
    }

    /// The path the callback is served on (the path of the redirect URL).
    pub fn callback_path(&self) -> &str {
        self.oidc.redirect_url.path()
    }
}

/// `http://localhost`, `http://127.0.0.1`, `http://[::1]` (any port).
pub fn is_loopback_url(u: &url::Url) -> bool {
    match u.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Load configuration: the YAML file (if any) first, then the environment on top.
/// `file` is `(path, contents)`.
pub fn load(
    env: &dyn Fn(&str) -> Option<String>,
    file: Option<(&str, &str)>,
) -> Result<Config, Vec<Problem>> {
    let mut raw = match file {
        Some((path, text)) => {
            parse_file(path, text).map_err(|e| vec![Problem::new(e.to_string())])?
        }
        None => RawSettings::default(),
    };
    raw.overlay(&from_env(env));
    validate(&raw)
}

#[cfg(test)]
mod tests;
