//! The untyped layer of configuration: every setting as an optional string (or list), filled by
//! the YAML file first and then overridden by the environment. Keeping one flat struct makes
//! precedence trivial (`env.or(file)`) and lets validation report every problem at once.

use std::collections::BTreeMap;

/// Every setting Portcullis understands, before validation. `None` means "not set".
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RawSettings {
    pub api_auth: Option<String>,
    pub discovery_url: Option<String>,
    pub redirect_url: Option<String>,
    /// Scopes as given: a list (YAML `scope`) or split from a comma/space separated string.
    pub scopes: Option<Vec<String>>,
    pub authorization_endpoint: Option<String>,
    pub token_endpoint: Option<String>,
    pub userinfo_endpoint: Option<String>,
    /// Not in seed 000's table: needed to verify ID tokens when no discovery document is used.
    pub issuer: Option<String>,
    pub jwks_uri: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub token_endpoint_auth_method: Option<String>,
    /// `private_key_jwt`: the PEM file of the client's private key, its `kid` and algorithm.
    pub client_key_file: Option<String>,
    pub client_key_id: Option<String>,
    pub client_assertion_alg: Option<String>,
    /// `auto`, `required` or `off` (RFC 9126).
    pub pushed_authorization_requests: Option<String>,
    pub jws_algorithms: Option<Vec<String>>,
    pub custom_parameters: Option<BTreeMap<String, String>>,
    pub access_type: Option<String>,
    pub allow_insecure_http: Option<String>,
    pub signer_pem_url: Option<String>,
    pub jwt_signing_secret: Option<String>,
    /// R-CFG-1: accepted for verification only, so a rotation does not sign everyone out.
    pub jwt_signing_secret_previous: Option<String>,
    pub claim_keys: RawClaimKeys,
    pub roles: BTreeMap<String, Vec<String>>,
    pub listen: Option<String>,
    pub upstream: Option<String>,
    /// PEM CA bundle for an https upstream (replaces the default roots).
    pub upstream_ca_file: Option<String>,
    /// PEM client certificate and key for mTLS to the upstream.
    pub upstream_client_cert_file: Option<String>,
    pub upstream_client_key_file: Option<String>,
    pub database_url: Option<String>,
    pub public_url: Option<String>,
    /// The callback path when no redirect URL is set: `/api/callback` (seed 000), or
    /// `/loginCallback` for a seed 001 `authentication.yaml`.
    pub default_callback_path: Option<String>,
    /// Connection and body limits (R-RS-1), each a decimal number as written.
    pub header_read_timeout: Option<String>,
    pub keep_alive_timeout: Option<String>,
    pub body_timeout: Option<String>,
    pub max_connections: Option<String>,
    pub max_connections_per_ip: Option<String>,
    pub login_starts_per_minute: Option<String>,
    pub backchannel_logouts_per_minute: Option<String>,
    pub worker_threads: Option<String>,
    pub session_ttl: Option<String>,
    pub session_max_lifetime: Option<String>,
    pub max_body_bytes: Option<String>,
    /// Methods beyond the standard ones that may reach the upstream (R-HD-5), e.g. WebDAV's.
    pub extra_methods: Option<Vec<String>>,
    /// `Upgrade` protocols that may be tunnelled (default `websocket`).
    pub allowed_upgrades: Option<Vec<String>>,
    /// Extra inbound headers no client may send (R-HD-1).
    pub strip_headers: Option<Vec<String>>,
    /// Names of the identity headers set towards the upstream.
    pub header_user: Option<String>,
    pub header_email: Option<String>,
    pub header_groups: Option<String>,
    pub header_preferred_username: Option<String>,
    /// Accept sign-ins whose ID token says `email_verified: false`.
    pub allow_unverified_email: Option<String>,
    /// Tier 3 (DPoP-bound sessions) on or off, its path prefixes and server nonces.
    pub dpop: Option<String>,
    pub dpop_paths: Option<Vec<String>>,
    pub dpop_nonce: Option<String>,
    /// Extra frontend origins allowed through CORS (R-CSRF-6).
    pub cors_origins: Option<Vec<String>>,
    /// End the IdP session too at sign-out (RP-initiated logout).
    pub idp_logout: Option<String>,
    /// What a person whose groups grant no role gets: `deny` or a configured role name.
    pub no_role: Option<String>,
    /// Path policies; a list given by the environment replaces the file's whole list.
    pub policies: Option<Vec<RawPolicy>>,
    /// Seconds between re-checks of a session at the IdP (offline access).
    pub offline_recheck: Option<String>,
    /// Roles besides platformAdmin that may use the admin page and API.
    pub admin_roles: Option<Vec<String>>,
    /// Addresses (CIDR) whose forward-auth headers are believed; default none.
    pub forward_auth_trusted_proxies: Option<Vec<String>>,
    /// Where `/metrics` is served (`off` or host:port).
    pub metrics_listen: Option<String>,
    /// Reuse a well-formed client-sent `X-Request-Id`.
    pub trust_request_id: Option<String>,
    /// The signed identity assertion: its header (unset = off), audience, lifetime and key
    /// rotation period in seconds.
    pub assertion_header: Option<String>,
    pub assertion_audience: Option<String>,
    pub assertion_lifetime: Option<String>,
    pub assertion_rotation: Option<String>,
    /// Groups overage (Entra ID): `deny` or `no-groups` when the groups cannot be fetched,
    /// and the origins a distributed groups claim may be fetched from.
    pub groups_overage: Option<String>,
    pub groups_source_origins: Option<Vec<String>>,
    /// Google Workspace: only these hosted domains (`hd` claim) may sign in.
    pub allowed_hosted_domains: Option<Vec<String>>,
    /// ADFS: an extra audience the ID token may carry besides the client id.
    pub expected_audience: Option<String>,
    /// The chooser name and email domains of the IdP above (when there are several).
    pub idp_name: Option<String>,
    pub idp_email_domains: Option<Vec<String>>,
    /// More identity providers (the YAML file's `portcullis.identityProviders`).
    pub identity_providers: Vec<RawIdp>,
    /// Problems found while reading (e.g. invalid JSON in a variable), reported by validation
    /// with all the others.
    pub problems: Vec<String>,
}

/// One additional identity provider as written: its own label, role lists, and the IdP
/// settings of [`RawSettings`] (only those are read from `settings`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RawIdp {
    pub id: Option<String>,
    pub name: Option<String>,
    pub email_domains: Option<Vec<String>>,
    pub roles: Option<BTreeMap<String, Vec<String>>>,
    pub settings: RawSettings,
}

/// One path policy as written (YAML `portcullis.policies` or `PORTCULLIS_POLICIES`). Missing
/// fields default to empty so validation can say what is wrong instead of a parse error.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicy {
    #[serde(default)]
    pub path: String,
    #[serde(default)]
    pub methods: Option<Vec<String>>,
    #[serde(default)]
    pub roles: Vec<String>,
}

/// Claim-mapping overrides (seed 000's seven `OIDC_USER_*_KEY`s plus seed 001's fields).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RawClaimKeys {
    pub id: Option<String>,
    pub email: Option<String>,
    pub name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub picture: Option<String>,
    pub provider: Option<String>,
    pub username: Option<String>,
    pub groups: Option<String>,
}

macro_rules! overlay_fields {
    ($dst:expr, $src:expr; $($f:ident),* $(,)?) => {
        $( if $src.$f.is_some() { $dst.$f = $src.$f.clone(); } )*
    };
}

impl RawSettings {
    /// Overlay `other` on top of `self`: every setting present in `other` wins.
    pub fn overlay(&mut self, other: &RawSettings) {
        overlay_fields!(self, other;
            api_auth, discovery_url, redirect_url, scopes, authorization_endpoint, token_endpoint,
            userinfo_endpoint, issuer, jwks_uri, client_id, client_secret,
            token_endpoint_auth_method, jws_algorithms, custom_parameters, access_type,
            allow_insecure_http, signer_pem_url, jwt_signing_secret, jwt_signing_secret_previous,
            listen, upstream,
            database_url, public_url, default_callback_path, header_read_timeout,
            keep_alive_timeout, body_timeout, max_connections, max_connections_per_ip, login_starts_per_minute, backchannel_logouts_per_minute, worker_threads, session_ttl, session_max_lifetime,
            max_body_bytes, extra_methods, allowed_upgrades, strip_headers, header_user,
            header_email, header_groups, header_preferred_username, allow_unverified_email,
            dpop, dpop_paths, dpop_nonce, cors_origins, idp_logout, no_role, policies,
            offline_recheck);
        overlay_fields!(self, other; admin_roles, forward_auth_trusted_proxies, metrics_listen,
            trust_request_id, assertion_header, assertion_audience, assertion_lifetime,
            assertion_rotation);
        overlay_fields!(self, other; groups_overage, groups_source_origins,
            allowed_hosted_domains, expected_audience);
        overlay_fields!(self, other; upstream_ca_file, upstream_client_cert_file,
            upstream_client_key_file);
        overlay_fields!(self, other; client_key_file, client_key_id, client_assertion_alg,
            pushed_authorization_requests);
        overlay_fields!(self, other; idp_name, idp_email_domains);
        if !other.identity_providers.is_empty() {
            self.identity_providers = other.identity_providers.clone();
        }
        overlay_fields!(self.claim_keys, other.claim_keys;
            id, email, name, given_name, family_name, picture, provider, username, groups);
        for (role, groups) in &other.roles {
            self.roles.insert(role.clone(), groups.clone());
        }
        self.problems.extend(other.problems.iter().cloned());
    }
}

/// Treat an empty (or all-whitespace) value as unset, as seed 000 requires.
pub(crate) fn non_empty(v: Option<String>) -> Option<String> {
    v.and_then(|s| {
        let t = s.trim();
        if t.is_empty() {
            None
        } else {
            Some(t.to_string())
        }
    })
}

/// Split a scope string (`openid,email,profile` or `openid email profile`) into scopes.
pub(crate) fn split_list(s: &str) -> Vec<String> {
    s.split([',', ' '])
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect()
}
