//! The YAML configuration file. Two shapes load unchanged:
//! - seed 001's `authentication.yaml` (`clientId`, `secret`, `discoveryUri`, `jwsAlgorithm`,
//!   `scope`, `usernameField`, `groupsField`, `access_type`, `customParameters`,
//!   `redirectUri`, `jwtClaims`, role lists at the top level or under `roles`);
//! - seed 000's Helm `values.yaml` (`global.dnsRecord`, `global.authType`, `secrets.oidc.*`,
//!   `secrets.auth.jwt_signing_secret`; `secrets.postgres`/`secrets.rabbitmq` are accepted and
//!   ignored).
//!
//! Portcullis's own settings live under `portcullis:`. Unknown keys are errors, so a typo is
//! reported with its line instead of being silently ignored.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::IgnoredAny;

use super::raw::{RawClaimKeys, RawIdp, RawPolicy, RawSettings, non_empty, split_list};

/// The four standard roles of seed 001, accepted at the top level of the file.
pub const STANDARD_ROLES: [&str; 4] = ["guest", "powerUser", "admin", "platformAdmin"];

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(rename = "clientId")]
    client_id: Option<String>,
    secret: Option<String>,
    #[serde(rename = "discoveryUri")]
    discovery_uri: Option<String>,
    #[serde(rename = "jwsAlgorithm")]
    jws_algorithm: Option<String>,
    scope: Option<Vec<String>>,
    #[serde(rename = "usernameField")]
    username_field: Option<String>,
    #[serde(rename = "groupsField")]
    groups_field: Option<String>,
    #[serde(rename = "jwtClaims")]
    jwt_claims: Option<JwtClaims>,
    access_type: Option<String>,
    #[serde(rename = "redirectUri")]
    redirect_uri: Option<String>,
    #[serde(rename = "customParameters")]
    custom_parameters: Option<BTreeMap<String, String>>,
    guest: Option<Vec<String>>,
    #[serde(rename = "powerUser")]
    power_user: Option<Vec<String>>,
    admin: Option<Vec<String>>,
    #[serde(rename = "platformAdmin")]
    platform_admin: Option<Vec<String>>,
    roles: Option<BTreeMap<String, Vec<String>>>,
    global: Option<Global>,
    secrets: Option<Secrets>,
    portcullis: Option<Own>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct JwtClaims {
    #[serde(rename = "usernameField")]
    username_field: Option<String>,
    #[serde(rename = "groupsField")]
    groups_field: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Global {
    #[serde(rename = "dnsRecord")]
    dns_record: Option<String>,
    #[serde(rename = "authType")]
    auth_type: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Secrets {
    oidc: Option<SecretsOidc>,
    auth: Option<SecretsAuth>,
    // Other services' secrets in the same values.yaml: accepted, not ours.
    #[serde(rename = "postgres")]
    _postgres: Option<IgnoredAny>,
    #[serde(rename = "rabbitmq")]
    _rabbitmq: Option<IgnoredAny>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretsAuth {
    jwt_signing_secret: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretsOidc {
    oidc_discovery_url: Option<String>,
    oidc_client_id: Option<String>,
    oidc_client_secret: Option<String>,
    oidc_scopes: Option<String>,
    oidc_authorization_endpoint: Option<String>,
    oidc_token_endpoint: Option<String>,
    oidc_userinfo_endpoint: Option<String>,
    oidc_allow_insecure_transport: Option<bool>,
    oidc_signer_pem_url: Option<String>,
    oidc_user_id_key: Option<String>,
    oidc_user_email_key: Option<String>,
    oidc_user_name_key: Option<String>,
    oidc_user_fname_key: Option<String>,
    oidc_user_lname_key: Option<String>,
    oidc_user_picture_key: Option<String>,
    oidc_user_provider_key: Option<String>,
}

/// Portcullis's own settings (camelCase like seed 001).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Own {
    listen: Option<String>,
    upstream: Option<String>,
    upstream_ca_file: Option<String>,
    upstream_client_cert_file: Option<String>,
    upstream_client_key_file: Option<String>,
    database_url: Option<String>,
    public_url: Option<String>,
    jwt_signing_secret: Option<String>,
    previous_jwt_signing_secret: Option<String>,
    issuer: Option<String>,
    jwks_uri: Option<String>,
    token_endpoint_auth_method: Option<String>,
    client_key_file: Option<String>,
    client_key_id: Option<String>,
    client_assertion_alg: Option<String>,
    pushed_authorization_requests: Option<String>,
    allow_insecure_http: Option<bool>,
    signer_pem_url: Option<String>,
    allow_unverified_email: Option<bool>,
    header_read_timeout: Option<u64>,
    keep_alive_timeout: Option<u64>,
    body_timeout: Option<u64>,
    max_connections: Option<u64>,
    max_connections_per_ip: Option<u64>,
    login_starts_per_minute: Option<u64>,
    backchannel_logouts_per_minute: Option<u64>,
    worker_threads: Option<u64>,
    session_ttl: Option<u64>,
    session_max_lifetime: Option<u64>,
    max_body_bytes: Option<u64>,
    extra_methods: Option<Vec<String>>,
    allowed_upgrades: Option<Vec<String>>,
    strip_headers: Option<Vec<String>>,
    identity_headers: Option<IdentityHeaders>,
    dpop: Option<bool>,
    dpop_paths: Option<Vec<String>>,
    dpop_nonce: Option<bool>,
    cors_origins: Option<Vec<String>>,
    groups_overage: Option<String>,
    groups_source_origins: Option<Vec<String>>,
    allowed_hosted_domains: Option<Vec<String>>,
    expected_audience: Option<String>,
    idp_logout: Option<bool>,
    no_role: Option<String>,
    policies: Option<Vec<RawPolicy>>,
    offline_recheck: Option<u64>,
    admin_roles: Option<Vec<String>>,
    forward_auth_trusted_proxies: Option<Vec<String>>,
    metrics_listen: Option<String>,
    trust_request_id: Option<bool>,
    assertion: Option<Assertion>,
    idp_name: Option<String>,
    idp_email_domains: Option<Vec<String>>,
    identity_providers: Option<Vec<FileIdp>>,
}

/// One entry of `portcullis.identityProviders`: an IdP besides the top-level one, with the
/// same keys as the top level (seed 001's names where they exist) and its own role lists.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct FileIdp {
    id: Option<String>,
    name: Option<String>,
    email_domains: Option<Vec<String>>,
    discovery_uri: Option<String>,
    issuer: Option<String>,
    jwks_uri: Option<String>,
    authorization_endpoint: Option<String>,
    token_endpoint: Option<String>,
    userinfo_endpoint: Option<String>,
    client_id: Option<String>,
    secret: Option<String>,
    token_endpoint_auth_method: Option<String>,
    client_key_file: Option<String>,
    client_key_id: Option<String>,
    client_assertion_alg: Option<String>,
    pushed_authorization_requests: Option<String>,
    jws_algorithm: Option<String>,
    scope: Option<Vec<String>>,
    custom_parameters: Option<BTreeMap<String, String>>,
    #[serde(alias = "access_type")]
    access_type: Option<String>,
    redirect_uri: Option<String>,
    signer_pem_url: Option<String>,
    allow_unverified_email: Option<bool>,
    username_field: Option<String>,
    groups_field: Option<String>,
    claims: Option<FileClaims>,
    groups_overage: Option<String>,
    groups_source_origins: Option<Vec<String>>,
    allowed_hosted_domains: Option<Vec<String>>,
    expected_audience: Option<String>,
    roles: Option<BTreeMap<String, Vec<String>>>,
}

/// Claim keys of an additional IdP (seed 000's `OIDC_USER_*_KEY`s by their meaning).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct FileClaims {
    id: Option<String>,
    email: Option<String>,
    name: Option<String>,
    given_name: Option<String>,
    family_name: Option<String>,
    picture: Option<String>,
    provider: Option<String>,
    username: Option<String>,
    groups: Option<String>,
}

impl FileIdp {
    fn into_raw(self) -> RawIdp {
        let s = |v: Option<String>| non_empty(v);
        let c = self.claims.unwrap_or_default();
        let mut custom = self.custom_parameters.unwrap_or_default();
        custom.retain(|k, _| !k.trim().is_empty());
        RawIdp {
            id: s(self.id),
            name: s(self.name),
            email_domains: self.email_domains,
            roles: self.roles,
            settings: RawSettings {
                discovery_url: s(self.discovery_uri),
                issuer: s(self.issuer),
                jwks_uri: s(self.jwks_uri),
                authorization_endpoint: s(self.authorization_endpoint),
                token_endpoint: s(self.token_endpoint),
                userinfo_endpoint: s(self.userinfo_endpoint),
                client_id: s(self.client_id),
                client_secret: s(self.secret),
                token_endpoint_auth_method: s(self.token_endpoint_auth_method),
                client_key_file: s(self.client_key_file),
                client_key_id: s(self.client_key_id),
                client_assertion_alg: s(self.client_assertion_alg),
                pushed_authorization_requests: s(self.pushed_authorization_requests),
                jws_algorithms: s(self.jws_algorithm).map(|a| split_list(&a)),
                scopes: self.scope,
                custom_parameters: (!custom.is_empty()).then_some(custom),
                access_type: s(self.access_type),
                redirect_url: s(self.redirect_uri),
                signer_pem_url: s(self.signer_pem_url),
                allow_unverified_email: self.allow_unverified_email.map(|b| b.to_string()),
                claim_keys: RawClaimKeys {
                    id: s(c.id),
                    email: s(c.email),
                    name: s(c.name),
                    given_name: s(c.given_name),
                    family_name: s(c.family_name),
                    picture: s(c.picture),
                    provider: s(c.provider),
                    username: s(c.username).or(s(self.username_field)),
                    groups: s(c.groups).or(s(self.groups_field)),
                },
                groups_overage: s(self.groups_overage),
                groups_source_origins: self.groups_source_origins,
                allowed_hosted_domains: self.allowed_hosted_domains,
                expected_audience: s(self.expected_audience),
                ..RawSettings::default()
            },
        }
    }
}

/// `portcullis.assertion`: the signed identity assertion (off without `header`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Assertion {
    header: Option<String>,
    audience: Option<String>,
    lifetime: Option<u64>,
    rotation: Option<u64>,
}

/// `portcullis.identityHeaders`: names of the headers set towards the upstream.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct IdentityHeaders {
    user: Option<String>,
    email: Option<String>,
    groups: Option<String>,
    preferred_username: Option<String>,
}

/// A YAML file that could not be read, with its position.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct FileError {
    pub path: String,
    pub message: String,
}

/// Parse YAML text into raw settings. `path` only labels errors.
pub fn parse(path: &str, text: &str) -> Result<RawSettings, FileError> {
    // An empty file (or one holding only comments) is a valid, empty configuration.
    if text
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
    {
        return Ok(RawSettings::default());
    }
    let file: FileConfig = serde_saphyr::from_str(text).map_err(|e| FileError {
        path: path.to_string(),
        message: one_line(&e),
    })?;
    Ok(file.into_raw())
}

/// serde-saphyr renders a multi-line snippet; config errors must be one line per problem.
fn one_line(e: &serde_saphyr::Error) -> String {
    let first = e
        .to_string()
        .lines()
        .next()
        .unwrap_or("invalid YAML")
        .trim()
        .to_string();
    match e.location() {
        Some(loc) if !first.contains("line ") => {
            format!("line {} column {}: {first}", loc.line(), loc.column())
        }
        _ => first,
    }
}

impl FileConfig {
    fn into_raw(self) -> RawSettings {
        let s = |v: Option<String>| non_empty(v);
        let oidc = self.secrets.as_ref().and_then(|x| x.oidc.as_ref());
        let o = |f: fn(&SecretsOidc) -> &Option<String>| s(oidc.and_then(|x| f(x).clone()));
        let mut own = self.portcullis.unwrap_or_default();
        let ih = own.identity_headers.take().unwrap_or_default();
        let asr = own.assertion.take().unwrap_or_default();
        let num = |v: Option<u64>| v.map(|n| n.to_string());
        let global = self.global.unwrap_or_default();
        let dns = s(global.dns_record);

        let mut roles = self.roles.unwrap_or_default();
        for (name, groups) in STANDARD_ROLES.iter().zip([
            self.guest,
            self.power_user,
            self.admin,
            self.platform_admin,
        ]) {
            if let Some(g) = groups {
                roles.insert((*name).to_string(), g);
            }
        }
        let claims = self.jwt_claims.unwrap_or_default();
        // seed 001: "the base URL of StackState suffixed with /loginCallback".
        let seed001 =
            self.client_id.is_some() || self.secret.is_some() || self.discovery_uri.is_some();
        let mut custom = self.custom_parameters.unwrap_or_default();
        custom.retain(|k, _| !k.trim().is_empty());

        RawSettings {
            api_auth: s(global.auth_type),
            discovery_url: s(self.discovery_uri).or_else(|| o(|x| &x.oidc_discovery_url)),
            // seed 000: the redirect URL is generated from global.dnsRecord.
            redirect_url: s(self.redirect_uri)
                .or_else(|| dns.as_ref().map(|d| format!("https://{d}/api/callback"))),
            scopes: self
                .scope
                .or_else(|| o(|x| &x.oidc_scopes).map(|v| split_list(&v))),
            authorization_endpoint: o(|x| &x.oidc_authorization_endpoint),
            token_endpoint: o(|x| &x.oidc_token_endpoint),
            userinfo_endpoint: o(|x| &x.oidc_userinfo_endpoint),
            issuer: s(own.issuer),
            jwks_uri: s(own.jwks_uri),
            client_id: s(self.client_id).or_else(|| o(|x| &x.oidc_client_id)),
            client_secret: s(self.secret).or_else(|| o(|x| &x.oidc_client_secret)),
            token_endpoint_auth_method: s(own.token_endpoint_auth_method),
            client_key_file: s(own.client_key_file),
            client_key_id: s(own.client_key_id),
            client_assertion_alg: s(own.client_assertion_alg),
            pushed_authorization_requests: s(own.pushed_authorization_requests),
            jws_algorithms: s(self.jws_algorithm).map(|a| split_list(&a)),
            custom_parameters: (!custom.is_empty()).then_some(custom),
            access_type: s(self.access_type),
            allow_insecure_http: own
                .allow_insecure_http
                .or(oidc.and_then(|x| x.oidc_allow_insecure_transport))
                .map(|b| b.to_string()),
            signer_pem_url: s(own.signer_pem_url).or_else(|| o(|x| &x.oidc_signer_pem_url)),
            jwt_signing_secret_previous: s(own.previous_jwt_signing_secret),
            jwt_signing_secret: s(own.jwt_signing_secret).or_else(|| {
                s(self
                    .secrets
                    .as_ref()
                    .and_then(|x| x.auth.as_ref())
                    .and_then(|a| a.jwt_signing_secret.clone()))
            }),
            claim_keys: RawClaimKeys {
                id: o(|x| &x.oidc_user_id_key),
                email: o(|x| &x.oidc_user_email_key),
                name: o(|x| &x.oidc_user_name_key),
                given_name: o(|x| &x.oidc_user_fname_key),
                family_name: o(|x| &x.oidc_user_lname_key),
                picture: o(|x| &x.oidc_user_picture_key),
                provider: o(|x| &x.oidc_user_provider_key),
                username: s(self.username_field).or(s(claims.username_field)),
                groups: s(self.groups_field).or(s(claims.groups_field)),
            },
            roles,
            listen: s(own.listen),
            upstream: s(own.upstream),
            upstream_ca_file: s(own.upstream_ca_file),
            upstream_client_cert_file: s(own.upstream_client_cert_file),
            upstream_client_key_file: s(own.upstream_client_key_file),
            database_url: s(own.database_url),
            public_url: s(own.public_url).or_else(|| dns.as_ref().map(|d| format!("https://{d}"))),
            default_callback_path: seed001.then(|| "/loginCallback".to_string()),
            allow_unverified_email: own.allow_unverified_email.map(|b| b.to_string()),
            header_read_timeout: num(own.header_read_timeout),
            keep_alive_timeout: num(own.keep_alive_timeout),
            body_timeout: num(own.body_timeout),
            max_connections: num(own.max_connections),
            max_connections_per_ip: num(own.max_connections_per_ip),
            login_starts_per_minute: num(own.login_starts_per_minute),
            backchannel_logouts_per_minute: num(own.backchannel_logouts_per_minute),
            worker_threads: num(own.worker_threads),
            session_ttl: num(own.session_ttl),
            session_max_lifetime: num(own.session_max_lifetime),
            max_body_bytes: num(own.max_body_bytes),
            extra_methods: own.extra_methods,
            allowed_upgrades: own.allowed_upgrades,
            strip_headers: own.strip_headers,
            header_user: s(ih.user),
            header_email: s(ih.email),
            header_groups: s(ih.groups),
            header_preferred_username: s(ih.preferred_username),
            dpop: own.dpop.map(|b| b.to_string()),
            dpop_paths: own.dpop_paths,
            dpop_nonce: own.dpop_nonce.map(|b| b.to_string()),
            cors_origins: own.cors_origins,
            groups_overage: s(own.groups_overage),
            groups_source_origins: own.groups_source_origins,
            allowed_hosted_domains: own.allowed_hosted_domains,
            expected_audience: s(own.expected_audience),
            idp_logout: own.idp_logout.map(|b| b.to_string()),
            no_role: s(own.no_role),
            policies: own.policies,
            offline_recheck: num(own.offline_recheck),
            admin_roles: own.admin_roles,
            forward_auth_trusted_proxies: own.forward_auth_trusted_proxies,
            metrics_listen: s(own.metrics_listen),
            trust_request_id: own.trust_request_id.map(|b| b.to_string()),
            assertion_header: s(asr.header),
            assertion_audience: s(asr.audience),
            assertion_lifetime: num(asr.lifetime),
            assertion_rotation: num(asr.rotation),
            idp_name: s(own.idp_name),
            idp_email_domains: own.idp_email_domains,
            identity_providers: own
                .identity_providers
                .unwrap_or_default()
                .into_iter()
                .map(FileIdp::into_raw)
                .collect(),
            problems: Vec::new(),
        }
    }
}
