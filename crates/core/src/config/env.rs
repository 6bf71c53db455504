//! The environment-variable contract: seed 000's "Environment Variable Reference", name for
//! name, plus Portcullis's own `PORTCULLIS_*` settings. An empty value counts as unset.
//!
//! Written by hand rather than with envy/figment because the contract is a fixed table of
//! names, not a prefix/nesting scheme (see STACK.md).

use super::raw::{RawSettings, non_empty, split_list};

/// `(variable, what it sets)` — the single source of truth, also used for the README table
/// test and the unknown-variable warning.
pub const ENV_VARS: &[(&str, &str)] = &[
    ("API_AUTH", "authentication mode; must be OIDC"),
    ("OIDC_DISCOVERY_URL", "IdP discovery document URL"),
    ("OIDC_REDIRECT_URL", "callback URL registered at the IdP"),
    (
        "OIDC_SCOPES",
        "comma-separated scopes (default openid,email,profile)",
    ),
    (
        "OIDC_AUTHORIZATION_ENDPOINT",
        "manual authorization endpoint",
    ),
    ("OIDC_TOKEN_ENDPOINT", "manual token endpoint"),
    ("OIDC_USERINFO_ENDPOINT", "manual userinfo endpoint"),
    (
        "OIDC_ISSUER",
        "issuer, when not discovered (Portcullis addition)",
    ),
    (
        "OIDC_JWKS_URI",
        "JWKS URL, when not discovered (Portcullis addition)",
    ),
    ("OIDC_CLIENT_ID", "OAuth2 client id"),
    ("OIDC_CLIENT_SECRET", "OAuth2 client secret"),
    (
        "OIDC_TOKEN_ENDPOINT_AUTH_METHOD",
        "client_secret_post (default), client_secret_basic or private_key_jwt",
    ),
    (
        "OIDC_CLIENT_KEY_FILE",
        "private_key_jwt: PEM file of the client's PKCS#8 private key (EC P-256 or RSA >= 2048 bits)",
    ),
    (
        "OIDC_CLIENT_KEY_ID",
        "private_key_jwt: kid put in the client assertion's header (optional)",
    ),
    (
        "OIDC_CLIENT_ASSERTION_ALG",
        "private_key_jwt: ES256, RS256 or PS256 (default ES256 for EC keys, RS256 for RSA keys)",
    ),
    (
        "OIDC_PUSHED_AUTHORIZATION_REQUESTS",
        "pushed authorization requests (RFC 9126): auto (default; when the IdP advertises them), required or off",
    ),
    (
        "OIDC_JWS_ALGORITHM",
        "allowed ID token algorithms, comma-separated (default RS256)",
    ),
    (
        "OIDC_CUSTOM_PARAMETERS",
        "extra authorization request parameters, k=v,k=v",
    ),
    ("OIDC_USER_ID_KEY", "claim for the user id (default sub)"),
    ("OIDC_USER_EMAIL_KEY", "claim for the email (default email)"),
    (
        "OIDC_USER_NAME_KEY",
        "claim for the display name (default name)",
    ),
    (
        "OIDC_USER_FNAME_KEY",
        "claim for the first name (default given_name)",
    ),
    (
        "OIDC_USER_LNAME_KEY",
        "claim for the last name (default family_name)",
    ),
    (
        "OIDC_USER_PICTURE_KEY",
        "claim for the picture URL (default picture)",
    ),
    (
        "OIDC_USER_PROVIDER_KEY",
        "claim for the provider name (default iss)",
    ),
    (
        "OIDC_USER_USERNAME_KEY",
        "claim for the username (default preferred_username)",
    ),
    (
        "OIDC_USER_GROUPS_KEY",
        "claim for the groups (default groups)",
    ),
    (
        "OIDC_GROUPS_OVERAGE",
        "when the ID token says the groups did not fit (Entra ID groups overage) and they cannot be fetched: deny (default) or no-groups",
    ),
    (
        "OIDC_GROUPS_SOURCE_ORIGINS",
        "origins a distributed groups claim may be fetched from, comma-separated (default: the issuer's origin and https://graph.microsoft.com)",
    ),
    (
        "OIDC_ALLOWED_HOSTED_DOMAINS",
        "Google Workspace: only these hosted domains (hd claim) may sign in, comma-separated (default: any)",
    ),
    (
        "OIDC_EXPECTED_AUDIENCE",
        "an extra ID token audience besides the client id, e.g. ADFS's microsoft:identityserver:<client-id>",
    ),
    (
        "OIDC_DISPLAY_NAME",
        "with several IdPs: this IdP's name on the sign-in chooser (default: its host name)",
    ),
    (
        "OIDC_EMAIL_DOMAINS",
        "with several IdPs: email domains sent straight to this IdP, comma-separated",
    ),
    (
        "OIDC_ALLOW_INSECURE_HTTP",
        "allow http:// IdP endpoints (development only)",
    ),
    (
        "OIDC_SIGNER_PEM_URL",
        "custom CA PEM for IdP TLS: file://, https:// or inline PEM",
    ),
    (
        "JWT_SIGNING_SECRET",
        "session signing secret, at least 32 characters",
    ),
    (
        "JWT_SIGNING_SECRET_PREVIOUS",
        "previous signing secret, still accepted for verification while rotating",
    ),
    ("PORTCULLIS_LISTEN", "listen address (default 0.0.0.0:8080)"),
    (
        "PORTCULLIS_UPSTREAM",
        "base URL of the application behind Portcullis",
    ),
    (
        "PORTCULLIS_UPSTREAM_CA_FILE",
        "PEM CA bundle that verifies an https upstream (replaces the system roots)",
    ),
    (
        "PORTCULLIS_UPSTREAM_CLIENT_CERT_FILE",
        "PEM client certificate (chain) presented to an https upstream (mTLS)",
    ),
    (
        "PORTCULLIS_UPSTREAM_CLIENT_KEY_FILE",
        "PEM private key of the upstream client certificate (PKCS#8, PKCS#1 or SEC1)",
    ),
    (
        "PORTCULLIS_DATABASE_URL",
        "sqlite:///path/file.db (default sqlite://portcullis.db)",
    ),
    (
        "PORTCULLIS_PUBLIC_URL",
        "public base URL (default: origin of the redirect URL)",
    ),
    ("PORTCULLIS_CONFIG", "path of a YAML configuration file"),
    (
        "OIDC_ALLOW_UNVERIFIED_EMAIL",
        "accept sign-ins with email_verified=false (the email is then not forwarded); default false",
    ),
    (
        "PORTCULLIS_HEADER_READ_TIMEOUT",
        "seconds from accept to a complete request head (default 10, 1-300)",
    ),
    (
        "PORTCULLIS_KEEPALIVE_TIMEOUT",
        "seconds an idle keep-alive connection stays open (default 60, 1-3600)",
    ),
    (
        "PORTCULLIS_BODY_TIMEOUT",
        "seconds a proxied request body may stall between chunks (default 30, 1-3600)",
    ),
    (
        "PORTCULLIS_MAX_CONNECTIONS",
        "concurrent client connections (default 10000, 1-1000000)",
    ),
    (
        "PORTCULLIS_MAX_CONNECTIONS_PER_IP",
        "concurrent connections per client address (default 256, 1-1000000)",
    ),
    (
        "PORTCULLIS_SESSION_TTL",
        "seconds a session JWT is valid, also the idle timeout (default 1800, 60-1800)",
    ),
    (
        "PORTCULLIS_SESSION_MAX_LIFETIME",
        "seconds from sign-in after which a session is no longer refreshed (default 43200)",
    ),
    (
        "PORTCULLIS_LOGIN_STARTS_PER_MINUTE",
        "sign-ins one client address may start per minute (default 60, 1-100000)",
    ),
    (
        "PORTCULLIS_BACKCHANNEL_LOGOUTS_PER_MINUTE",
        "back-channel logout requests one address may send per minute (default 60, 1-100000)",
    ),
    (
        "PORTCULLIS_WORKER_THREADS",
        "threads serving connections (default: one per CPU core, 1-256)",
    ),
    (
        "PORTCULLIS_MAX_BODY_BYTES",
        "largest proxied request body in bytes (default 1048576)",
    ),
    (
        "PORTCULLIS_EXTRA_METHODS",
        "extra request methods passed to the upstream, comma-separated (e.g. PROPFIND,MKCOL)",
    ),
    (
        "PORTCULLIS_ALLOWED_UPGRADES",
        "Upgrade protocols tunnelled to the upstream, comma-separated (default websocket; none = no upgrades)",
    ),
    (
        "PORTCULLIS_STRIP_HEADERS",
        "extra inbound header names (and prefixes) removed from every request, comma-separated",
    ),
    (
        "PORTCULLIS_DPOP",
        "bind browser sessions to a browser key with DPoP proofs (default true; false turns tier 3 off)",
    ),
    (
        "PORTCULLIS_DPOP_PATHS",
        "path prefixes whose proxied requests must carry a DPoP proof, comma-separated (default /api/; none = only Portcullis's own API)",
    ),
    (
        "PORTCULLIS_DPOP_NONCE",
        "require a server-issued DPoP nonce in every proof (default false)",
    ),
    (
        "PORTCULLIS_CORS_ORIGINS",
        "extra frontend origins allowed to call with credentials (CORS), comma-separated, e.g. https://app.example.com",
    ),
    (
        "PORTCULLIS_IDP_LOGOUT",
        "sign-out also ends the session at the IdP when it offers an end-session endpoint (default true)",
    ),
    (
        "PORTCULLIS_HEADER_USER",
        "identity header carrying the user id (default X-Forwarded-User)",
    ),
    (
        "PORTCULLIS_HEADER_EMAIL",
        "identity header carrying the email (default X-Forwarded-Email)",
    ),
    (
        "PORTCULLIS_HEADER_GROUPS",
        "identity header carrying the groups (default X-Forwarded-Groups)",
    ),
    (
        "PORTCULLIS_HEADER_PREFERRED_USERNAME",
        "identity header carrying the username (default X-Forwarded-Preferred-Username)",
    ),
    (
        "PORTCULLIS_ROLES",
        "role to IdP groups as a JSON object, e.g. {\"admin\":[\"g1\"],\"auditor\":[\"g3\"]}; overrides the file's lists role by role",
    ),
    (
        "PORTCULLIS_NO_ROLE",
        "what a person whose groups grant no role gets: deny (default) or a configured role",
    ),
    (
        "PORTCULLIS_OFFLINE_RECHECK",
        "seconds between re-checks of a signed-in person at the IdP with offline access (default 900, 60-86400)",
    ),
    (
        "PORTCULLIS_POLICIES",
        "path policies as a JSON array of {path, methods (optional), roles}; replaces the file's list",
    ),
    (
        "PORTCULLIS_ADMIN_ROLES",
        "roles besides platformAdmin (which always may) that may use the admin page and API, e.g. admin; default none",
    ),
    (
        "PORTCULLIS_FORWARD_AUTH_TRUSTED_PROXIES",
        "addresses or CIDR ranges of the proxies allowed to use /api/forward-auth, comma-separated, e.g. 10.0.0.5,fd00::/8; default none (forward-auth refused)",
    ),
    (
        "PORTCULLIS_METRICS_LISTEN",
        "host:port of the separate Prometheus /metrics listener, e.g. 127.0.0.1:9464 (default off)",
    ),
    (
        "PORTCULLIS_TRUST_REQUEST_ID",
        "reuse a well-formed X-Request-Id sent by the client instead of a fresh one (default false)",
    ),
    (
        "PORTCULLIS_ASSERTION_HEADER",
        "header carrying a signed ES256 identity assertion (JWT) to the app, e.g. X-Portcullis-Assertion (default: none, off)",
    ),
    (
        "PORTCULLIS_ASSERTION_AUDIENCE",
        "aud of the assertion (default: the upstream's origin; forward-auth: the original request's)",
    ),
    (
        "PORTCULLIS_ASSERTION_LIFETIME",
        "seconds an assertion is valid (default 60, 10-3600)",
    ),
    (
        "PORTCULLIS_ASSERTION_ROTATION",
        "seconds one assertion signing key is used (default 86400, 3600-7776000)",
    ),
];

/// Read the settings present in the environment (through `get`, so tests need no real env).
pub fn from_env(get: &dyn Fn(&str) -> Option<String>) -> RawSettings {
    let v = |name: &str| non_empty(get(name));
    let mut raw = RawSettings {
        api_auth: v("API_AUTH"),
        discovery_url: v("OIDC_DISCOVERY_URL"),
        redirect_url: v("OIDC_REDIRECT_URL"),
        scopes: v("OIDC_SCOPES").map(|s| split_list(&s)),
        authorization_endpoint: v("OIDC_AUTHORIZATION_ENDPOINT"),
        token_endpoint: v("OIDC_TOKEN_ENDPOINT"),
        userinfo_endpoint: v("OIDC_USERINFO_ENDPOINT"),
        issuer: v("OIDC_ISSUER"),
        jwks_uri: v("OIDC_JWKS_URI"),
        client_id: v("OIDC_CLIENT_ID"),
        client_secret: v("OIDC_CLIENT_SECRET"),
        token_endpoint_auth_method: v("OIDC_TOKEN_ENDPOINT_AUTH_METHOD"),
        client_key_file: v("OIDC_CLIENT_KEY_FILE"),
        client_key_id: v("OIDC_CLIENT_KEY_ID"),
        client_assertion_alg: v("OIDC_CLIENT_ASSERTION_ALG"),
        pushed_authorization_requests: v("OIDC_PUSHED_AUTHORIZATION_REQUESTS"),
        jws_algorithms: v("OIDC_JWS_ALGORITHM").map(|s| split_list(&s)),
        custom_parameters: v("OIDC_CUSTOM_PARAMETERS").map(|s| parse_kv_list(&s)),
        access_type: None,
        allow_insecure_http: v("OIDC_ALLOW_INSECURE_HTTP"),
        signer_pem_url: v("OIDC_SIGNER_PEM_URL"),
        jwt_signing_secret: v("JWT_SIGNING_SECRET"),
        jwt_signing_secret_previous: v("JWT_SIGNING_SECRET_PREVIOUS"),
        listen: v("PORTCULLIS_LISTEN"),
        upstream: v("PORTCULLIS_UPSTREAM"),
        upstream_ca_file: v("PORTCULLIS_UPSTREAM_CA_FILE"),
        upstream_client_cert_file: v("PORTCULLIS_UPSTREAM_CLIENT_CERT_FILE"),
        upstream_client_key_file: v("PORTCULLIS_UPSTREAM_CLIENT_KEY_FILE"),
        database_url: v("PORTCULLIS_DATABASE_URL"),
        public_url: v("PORTCULLIS_PUBLIC_URL"),
        allow_unverified_email: v("OIDC_ALLOW_UNVERIFIED_EMAIL"),
        header_read_timeout: v("PORTCULLIS_HEADER_READ_TIMEOUT"),
        keep_alive_timeout: v("PORTCULLIS_KEEPALIVE_TIMEOUT"),
        body_timeout: v("PORTCULLIS_BODY_TIMEOUT"),
        max_connections: v("PORTCULLIS_MAX_CONNECTIONS"),
        max_connections_per_ip: v("PORTCULLIS_MAX_CONNECTIONS_PER_IP"),
        login_starts_per_minute: v("PORTCULLIS_LOGIN_STARTS_PER_MINUTE"),
        backchannel_logouts_per_minute: v("PORTCULLIS_BACKCHANNEL_LOGOUTS_PER_MINUTE"),
        worker_threads: v("PORTCULLIS_WORKER_THREADS"),
        session_ttl: v("PORTCULLIS_SESSION_TTL"),
        session_max_lifetime: v("PORTCULLIS_SESSION_MAX_LIFETIME"),
        max_body_bytes: v("PORTCULLIS_MAX_BODY_BYTES"),
        extra_methods: v("PORTCULLIS_EXTRA_METHODS").map(|s| split_list(&s)),
        allowed_upgrades: v("PORTCULLIS_ALLOWED_UPGRADES").map(|s| split_list(&s)),
        strip_headers: v("PORTCULLIS_STRIP_HEADERS").map(|s| split_list(&s)),
        header_user: v("PORTCULLIS_HEADER_USER"),
        header_email: v("PORTCULLIS_HEADER_EMAIL"),
        header_groups: v("PORTCULLIS_HEADER_GROUPS"),
        header_preferred_username: v("PORTCULLIS_HEADER_PREFERRED_USERNAME"),
        dpop: v("PORTCULLIS_DPOP"),
        dpop_paths: v("PORTCULLIS_DPOP_PATHS").map(|s| split_list(&s)),
        dpop_nonce: v("PORTCULLIS_DPOP_NONCE"),
        cors_origins: v("PORTCULLIS_CORS_ORIGINS").map(|s| split_list(&s)),
        groups_overage: v("OIDC_GROUPS_OVERAGE"),
        groups_source_origins: v("OIDC_GROUPS_SOURCE_ORIGINS").map(|s| split_list(&s)),
        allowed_hosted_domains: v("OIDC_ALLOWED_HOSTED_DOMAINS").map(|s| split_list(&s)),
        expected_audience: v("OIDC_EXPECTED_AUDIENCE"),
        idp_name: v("OIDC_DISPLAY_NAME"),
        idp_email_domains: v("OIDC_EMAIL_DOMAINS").map(|s| split_list(&s)),
        idp_logout: v("PORTCULLIS_IDP_LOGOUT"),
        no_role: v("PORTCULLIS_NO_ROLE"),
        offline_recheck: v("PORTCULLIS_OFFLINE_RECHECK"),
        admin_roles: v("PORTCULLIS_ADMIN_ROLES").map(|s| split_list(&s)),
        forward_auth_trusted_proxies: v("PORTCULLIS_FORWARD_AUTH_TRUSTED_PROXIES")
            .map(|s| split_list(&s)),
        metrics_listen: v("PORTCULLIS_METRICS_LISTEN"),
        trust_request_id: v("PORTCULLIS_TRUST_REQUEST_ID"),
        assertion_header: v("PORTCULLIS_ASSERTION_HEADER"),
        assertion_audience: v("PORTCULLIS_ASSERTION_AUDIENCE"),
        assertion_lifetime: v("PORTCULLIS_ASSERTION_LIFETIME"),
        assertion_rotation: v("PORTCULLIS_ASSERTION_ROTATION"),
        ..Default::default()
    };
    if let Some(json) = v("PORTCULLIS_ROLES") {
        match serde_json::from_str(&json) {
            Ok(roles) => raw.roles = roles,
            Err(e) => raw.problems.push(format!(
                "PORTCULLIS_ROLES is not a JSON object of role to list of groups (e.g. {{\"admin\":[\"g1\"]}}): {e}"
            )),
        }
    }
    if let Some(json) = v("PORTCULLIS_POLICIES") {
        match serde_json::from_str(&json) {
            Ok(policies) => raw.policies = Some(policies),
            Err(e) => raw.problems.push(format!(
                "PORTCULLIS_POLICIES is not a JSON array of {{\"path\", \"methods\", \"roles\"}} objects: {e}"
            )),
        }
    }
    let keys = &mut raw.claim_keys;
    keys.id = v("OIDC_USER_ID_KEY");
    keys.email = v("OIDC_USER_EMAIL_KEY");
    keys.name = v("OIDC_USER_NAME_KEY");
    keys.given_name = v("OIDC_USER_FNAME_KEY");
    keys.family_name = v("OIDC_USER_LNAME_KEY");
    keys.picture = v("OIDC_USER_PICTURE_KEY");
    keys.provider = v("OIDC_USER_PROVIDER_KEY");
    keys.username = v("OIDC_USER_USERNAME_KEY");
    keys.groups = v("OIDC_USER_GROUPS_KEY");
    raw
}

/// Names in the environment that look like ours but are not (typos such as `OIDC_CLIENTID`).
/// Reported as warnings: other software in the same pod may use `OIDC_*` too.
pub fn unknown_vars<'a>(names: impl Iterator<Item = &'a str>) -> Vec<String> {
    names
        .filter(|n| n.starts_with("OIDC_") || n.starts_with("PORTCULLIS_"))
        .filter(|n| !ENV_VARS.iter().any(|(known, _)| known == n))
        .map(str::to_string)
        .collect()
}

/// `k=v,k2=v2` → map (entries without `=` are kept with an empty value so validation can
/// report them).
fn parse_kv_list(s: &str) -> std::collections::BTreeMap<String, String> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.trim().to_string(), v.trim().to_string()),
            None => (p.to_string(), String::new()),
        })
        .collect()
}
