//! Turn raw settings into a [`Config`], collecting every problem instead of stopping at the
//! first (R-CFG): an operator fixes a broken deployment in one round, not five.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;

use crate::claim_sources::{OverageOutcome, OverageSettings};

use super::raw::RawSettings;
use super::{
    CaSource, ClaimKeys, Config, DatabaseUrl, IdpEndpoints, IdpLabel, OidcConfig, Secret,
    is_loopback_url,
};
use crate::jose::JwsAlg;

/// One configuration problem, printed as one line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem(pub String);

impl Problem {
    pub fn new(s: impl Into<String>) -> Self {
        Problem(s.into())
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Authorization-request parameters Portcullis sets itself; `customParameters` may not
/// override them (that would switch off PKCE, state or the exact redirect URI).
const PROTECTED_PARAMS: &[&str] = &[
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "response_mode",
    "request",
    "request_uri",
];

/// Minimum length of `JWT_SIGNING_SECRET` (seed 000; R-CFG-1).
pub const MIN_SECRET_LEN: usize = 32;

pub(super) struct Ctx {
    pub(super) problems: Vec<Problem>,
    pub(super) warnings: Vec<String>,
    pub(super) insecure: bool,
}

impl Ctx {
    pub(super) fn problem(&mut self, s: impl Into<String>) {
        self.problems.push(Problem::new(s));
    }

    /// Parse an IdP URL and enforce https unless the insecure flag is set (R-CFG-3).
    fn idp_url(&mut self, name: &str, value: &Option<String>) -> Option<url::Url> {
        let v = value.as_ref()?;
        match url::Url::parse(v) {
            Ok(u) if u.scheme() == "https" => Some(u),
            Ok(u) if u.scheme() == "http" && self.insecure => Some(u),
            Ok(u) if u.scheme() == "http" => {
                self.problem(format!(
                    "{name} uses plain http ({v}); use https, or set OIDC_ALLOW_INSECURE_HTTP=true for development only"
                ));
                None
            }
            Ok(u) => {
                self.problem(format!(
                    "{name} must be an https URL, got scheme `{}`",
                    u.scheme()
                ));
                None
            }
            Err(e) => {
                self.problem(format!("{name} is not a valid URL ({e}): {v}"));
                None
            }
        }
    }
}

fn parse_bool(name: &str, v: &Option<String>, ctx: &mut Ctx) -> bool {
    match v.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("false") | Some("0") | Some("no") => false,
        Some("true") | Some("1") | Some("yes") => true,
        Some(other) => {
            ctx.problem(format!("{name} must be true or false, got `{other}`"));
            false
        }
    }
}

/// Validate raw settings into a [`Config`], or every problem found.
pub fn validate(raw: &RawSettings) -> Result<Config, Vec<Problem>> {
    let mut ctx = Ctx {
        problems: Vec::new(),
        warnings: Vec::new(),
        insecure: false,
    };
    ctx.insecure = parse_bool(
        "OIDC_ALLOW_INSECURE_HTTP",
        &raw.allow_insecure_http,
        &mut ctx,
    );
    if ctx.insecure {
        ctx.warnings.push(
            "OIDC_ALLOW_INSECURE_HTTP is on: plain-http IdP endpoints are allowed (development only)"
                .into(),
        );
    }

    if let Some(mode) = &raw.api_auth
        && !mode.eq_ignore_ascii_case("OIDC")
    {
        ctx.problem(format!("API_AUTH must be OIDC, got `{mode}`"));
    }

    let secret = check_secret(raw, &mut ctx);
    let previous = raw.jwt_signing_secret_previous.clone();
    if previous.as_ref().is_some_and(|p| p.len() < MIN_SECRET_LEN) {
        ctx.problem(format!(
            "JWT_SIGNING_SECRET_PREVIOUS must be at least {MIN_SECRET_LEN} characters"
        ));
    }
    let (public_url, redirect_url) = check_urls(raw, &mut ctx);
    let oidc = check_oidc(raw, redirect_url, &mut ctx);

    let listen = raw.listen.as_deref().unwrap_or("0.0.0.0:8080");
    let listen: Option<SocketAddr> = listen.parse().ok().or_else(|| {
        ctx.problem(format!(
            "PORTCULLIS_LISTEN must be host:port (e.g. 0.0.0.0:8080), got `{listen}`"
        ));
        None
    });
    let upstream = raw
        .upstream
        .as_ref()
        .and_then(|u| match url::Url::parse(u) {
            Ok(p) if matches!(p.scheme(), "http" | "https") && p.host().is_some() => Some(p),
            _ => {
                ctx.problem(format!(
                    "PORTCULLIS_UPSTREAM must be an http(s) URL, got `{u}`"
                ));
                None
            }
        });
    let upstream_tls = super::upstream_tls::check(raw, upstream.as_ref(), &mut ctx.problems);
    let database = check_database(raw, &mut ctx);
    for p in &raw.problems {
        ctx.problem(p.clone());
    }
    check_roles(&raw.roles, &mut ctx);
    let authz = super::authz::check(raw, &mut ctx.problems, &mut ctx.warnings);
    let (mut proxy, limits) = super::proxy::check(raw, &mut ctx.problems, &mut ctx.warnings);
    let assertion = super::assertion::check(
        raw,
        &proxy.identity_headers.all(),
        &mut ctx.problems,
        &mut ctx.warnings,
    );
    // R-HD-1: a client's copy of the assertion header never reaches the app, in any spelling.
    if let Some(h) = &assertion.header {
        let n = crate::headers::normalize(h);
        if !proxy.strip_headers.contains(&n) {
            proxy.strip_headers.push(n);
        }
    }
    let sessions = super::session::check(raw, &mut ctx.problems);
    let browser = super::browser::check(raw, ctx.insecure, &mut ctx.problems);
    let forward_auth = super::forward_auth::check(raw, &mut ctx.problems, &mut ctx.warnings);
    let idp_label = primary_label(raw, oidc.as_ref(), &mut ctx);
    let more_idps = super::idps::check(raw, &public_url, oidc.as_ref(), &idp_label, &mut ctx);
    let any_offline = oidc.as_ref().is_some_and(|o| o.offline_access)
        || more_idps.iter().any(|i| i.oidc.offline_access);
    let offline = super::offline::check(
        raw,
        any_offline,
        sessions.absolute,
        &mut ctx.problems,
        &mut ctx.warnings,
    );

    let observability = super::observability::check(raw, listen, &mut ctx.problems);

    match (listen, public_url, oidc, database, ctx.problems.is_empty()) {
        (Some(listen), Some(public_url), Some(oidc), Some(database), true) => Ok(Config {
            oidc,
            idp_label,
            more_idps,
            jwt_signing_secret: Secret::new(secret),
            previous_jwt_signing_secret: previous.map(Secret::new),
            listen,
            upstream,
            upstream_tls,
            database,
            public_url,
            roles: raw.roles.clone(),
            authz,
            proxy,
            limits,
            sessions,
            browser,
            offline,
            forward_auth,
            observability,
            assertion,
            warnings: ctx.warnings,
        }),
        _ => Err(ctx.problems),
    }
}

/// One identity provider's client settings (the top level's, or one entry of
/// `identityProviders`); `None` without a redirect URL (its problem is already reported).
pub(super) fn check_oidc(
    raw: &RawSettings,
    redirect_url: Option<url::Url>,
    ctx: &mut Ctx,
) -> Option<OidcConfig> {
    let client_id = raw.client_id.clone().unwrap_or_else(|| {
        ctx.problem("OIDC_CLIENT_ID (clientId) is required");
        String::new()
    });
    // The secret (or private_key_jwt key) and PAR, reported where the secret always was.
    let client_auth = super::client_auth::check(raw, &mut ctx.problems, &mut ctx.warnings);
    let endpoints = check_endpoints(raw, ctx);
    let allowed_algs = check_algs(raw, ctx);
    let scopes = raw
        .scopes
        .clone()
        .unwrap_or_else(|| vec!["openid".into(), "email".into(), "profile".into()]);
    if !scopes.iter().any(|s| s == "openid") {
        ctx.problem(format!(
            "scopes must include `openid`, got `{}`",
            scopes.join(",")
        ));
    }
    let mut custom_parameters = check_custom_params(raw, ctx);
    let ca = check_ca(raw, ctx);
    let claim_keys = claim_keys(raw, ctx);
    let offline_access =
        super::offline::idp_wants_offline(&scopes, &mut custom_parameters, &mut ctx.problems);
    let groups_overage = groups_overage(raw, ctx);
    let allowed_hosted_domains = hosted_domains(raw, ctx);
    // The alias counts as this client's own audience, so it must name this client: ADFS's
    // `microsoft:identityserver:<client-id>`. Anything else would accept tokens for others.
    let expected_audience = raw.expected_audience.clone().filter(|a| a != &client_id);
    if let Some(a) = &expected_audience
        && (client_id.is_empty() || !a.ends_with(&format!(":{client_id}")))
    {
        ctx.problem(format!(
            "OIDC_EXPECTED_AUDIENCE `{a}` must name this client: end with `:` and the client id, e.g. microsoft:identityserver:{client_id}"
        ));
    }
    Some(OidcConfig {
        endpoints,
        client_id,
        client_secret: Secret::new(client_auth.secret.unwrap_or_default()),
        auth_method: client_auth.method,
        client_key: client_auth.key,
        pushed_authorization_requests: client_auth.par,
        scopes,
        allowed_algs,
        custom_parameters,
        redirect_url: redirect_url?,
        allow_insecure_http: ctx.insecure,
        ca,
        claim_keys,
        groups_overage,
        allowed_hosted_domains,
        expected_audience,
        offline_access,
    })
}

/// The chooser name and email domains of the top-level IdP (only shown with several).
fn primary_label(raw: &RawSettings, oidc: Option<&OidcConfig>, ctx: &mut Ctx) -> IdpLabel {
    let name = raw.idp_name.clone().unwrap_or_else(|| {
        oidc.and_then(|o| {
            o.expected_issuer().or_else(|| {
                o.endpoints
                    .authorization_endpoint
                    .as_ref()
                    .map(|u| u.to_string())
            })
        })
        .and_then(|u| url::Url::parse(&u).ok())
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_else(|| "Single sign-on".into())
    });
    let email_domains = email_domains("OIDC_EMAIL_DOMAINS", raw.idp_email_domains.as_ref(), ctx);
    IdpLabel {
        id: super::PRIMARY_IDP_ID.into(),
        name,
        email_domains,
    }
}

/// Email domains routed to one IdP: bare domain names, lower-cased.
pub(super) fn email_domains(what: &str, list: Option<&Vec<String>>, ctx: &mut Ctx) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for d in list.into_iter().flatten() {
        let d = d.trim().trim_start_matches('@').to_ascii_lowercase();
        if is_domain(&d) {
            if !out.contains(&d) {
                out.push(d);
            }
        } else {
            ctx.problem(format!(
                "{what}: `{d}` is not a domain name (e.g. example.com)"
            ));
        }
    }
    out
}

fn is_domain(d: &str) -> bool {
    !d.is_empty()
        && d.contains('.')
        && !d.starts_with('.')
        && !d.ends_with('.')
        && d.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
}

fn check_secret(raw: &RawSettings, ctx: &mut Ctx) -> String {
    let Some(secret) = raw.jwt_signing_secret.clone() else {
        ctx.problem("JWT_SIGNING_SECRET is required (at least 32 characters; generate with `openssl rand -base64 32`)");
        return String::new();
    };
    if secret.len() < MIN_SECRET_LEN {
        ctx.problem(format!(
            "JWT_SIGNING_SECRET is {} characters; it must be at least {MIN_SECRET_LEN} (generate with `openssl rand -base64 32`)",
            secret.len()
        ));
    } else {
        let distinct: std::collections::BTreeSet<char> = secret.chars().collect();
        if distinct.len() < 8 {
            ctx.warnings.push(format!(
                "JWT_SIGNING_SECRET has only {} distinct characters: it looks low-entropy; generate one with `openssl rand -base64 32`",
                distinct.len()
            ));
        }
    }
    secret
}

fn check_endpoints(raw: &RawSettings, ctx: &mut Ctx) -> IdpEndpoints {
    let discovery_url = ctx.idp_url("OIDC_DISCOVERY_URL", &raw.discovery_url);
    let authorization_endpoint =
        ctx.idp_url("OIDC_AUTHORIZATION_ENDPOINT", &raw.authorization_endpoint);
    let token_endpoint = ctx.idp_url("OIDC_TOKEN_ENDPOINT", &raw.token_endpoint);
    let userinfo_endpoint = ctx.idp_url("OIDC_USERINFO_ENDPOINT", &raw.userinfo_endpoint);
    let jwks_uri = ctx.idp_url("OIDC_JWKS_URI", &raw.jwks_uri);
    let issuer = raw.issuer.clone();
    if issuer.is_some() {
        ctx.idp_url("OIDC_ISSUER", &raw.issuer);
    }
    let all_three = raw.authorization_endpoint.is_some()
        && raw.token_endpoint.is_some()
        && raw.userinfo_endpoint.is_some();
    if raw.discovery_url.is_none() && !all_three {
        ctx.problem(
            "no IdP endpoints: set OIDC_DISCOVERY_URL (discoveryUri), or all three of OIDC_AUTHORIZATION_ENDPOINT, OIDC_TOKEN_ENDPOINT and OIDC_USERINFO_ENDPOINT",
        );
    }
    if let Some(iss) = &issuer
        && iss.ends_with('/')
        && raw.discovery_url.is_none()
    {
        ctx.warnings.push(format!(
            "OIDC_ISSUER `{iss}` ends with `/`: it must match the IdP's `iss` claim byte for byte"
        ));
    }
    IdpEndpoints {
        discovery_url,
        authorization_endpoint,
        token_endpoint,
        userinfo_endpoint,
        issuer,
        jwks_uri,
    }
}

fn check_algs(raw: &RawSettings, ctx: &mut Ctx) -> Vec<JwsAlg> {
    let names = raw
        .jws_algorithms
        .clone()
        .unwrap_or_else(|| vec!["RS256".into()]);
    let mut algs = Vec::new();
    for n in &names {
        match JwsAlg::parse(n) {
            Some(a) if !algs.contains(&a) => algs.push(a),
            Some(_) => {}
            None => ctx.problem(format!(
                "jwsAlgorithm `{n}` is not supported; use one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA"
            )),
        }
    }
    if names.is_empty() {
        ctx.problem("jwsAlgorithm is empty; use e.g. RS256");
    }
    algs
}

fn check_custom_params(raw: &RawSettings, ctx: &mut Ctx) -> BTreeMap<String, String> {
    let mut params = raw.custom_parameters.clone().unwrap_or_default();
    for (k, v) in &params {
        if PROTECTED_PARAMS.contains(&k.as_str()) {
            ctx.problem(format!(
                "customParameters may not set `{k}`: Portcullis sets it itself"
            ));
        } else if v.is_empty() {
            ctx.problem(format!(
                "customParameters `{k}` has no value (write {k}=value)"
            ));
        }
    }
    // seed 001's `access_type: offline` is an authorization request parameter.
    if let Some(at) = &raw.access_type {
        params
            .entry("access_type".into())
            .or_insert_with(|| at.clone());
    }
    params
}

fn check_ca(raw: &RawSettings, ctx: &mut Ctx) -> Option<CaSource> {
    let v = raw.signer_pem_url.as_ref()?;
    if v.trim_start().starts_with("-----BEGIN") {
        return match check_ca_pem(v) {
            Ok(()) => Some(CaSource::Pem(v.clone())),
            Err(e) => {
                ctx.problem(format!("OIDC_SIGNER_PEM_URL: {e}"));
                None
            }
        };
    }
    match url::Url::parse(v) {
        Ok(u) if u.scheme() == "file" || u.scheme() == "https" => Some(CaSource::Url(u)),
        Ok(u) if u.scheme() == "http" && ctx.insecure => Some(CaSource::Url(u)),
        Ok(u) if u.scheme() == "http" => {
            ctx.problem("OIDC_SIGNER_PEM_URL uses plain http; use https or file://, or set OIDC_ALLOW_INSECURE_HTTP=true for development only");

            None
        }
        _ => {
            ctx.problem(format!(
                "OIDC_SIGNER_PEM_URL must be a file://, https:// URL or inline PEM, got `{v}`"
            ));
            None
        }
    }
}

/// R-CFG-5: at least one CERTIFICATE block and no private key.
pub fn check_ca_pem(pem: &str) -> Result<(), String> {
    if pem.contains("PRIVATE KEY-----") {
        return Err("the CA PEM contains a private key; give only the CA certificate".into());
    }
    if !pem.contains("-----BEGIN CERTIFICATE-----") {
        return Err("the CA PEM contains no CERTIFICATE block".into());
    }
    Ok(())
}

fn check_urls(raw: &RawSettings, ctx: &mut Ctx) -> (Option<url::Url>, Option<url::Url>) {
    let parse = |name: &str, v: &Option<String>, ctx: &mut Ctx| -> Option<url::Url> {
        let v = v.as_ref()?;
        match url::Url::parse(v) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Some(u),
            _ => {
                ctx.problem(format!("{name} must be an absolute http(s) URL, got `{v}`"));
                None
            }
        }
    };
    let redirect = parse("OIDC_REDIRECT_URL", &raw.redirect_url, ctx);
    let public = parse("PORTCULLIS_PUBLIC_URL", &raw.public_url, ctx);
    if raw.redirect_url.is_none() && raw.public_url.is_none() {
        ctx.problem("set OIDC_REDIRECT_URL (e.g. https://app.example.com/api/callback) or PORTCULLIS_PUBLIC_URL");
        return (None, None);
    }
    // Public URL: configured, else the origin of the redirect URL.
    let public = match (public, &redirect) {
        (Some(p), _) => Some(p),
        (None, Some(r)) => url::Url::parse(&r.origin().ascii_serialization()).ok(),
        (None, None) => None,
    };
    let public = public.map(|mut p| {
        // Only the origin plus an optional path prefix matters; drop query/fragment.
        p.set_query(None);
        p.set_fragment(None);
        p
    });
    let redirect = match (redirect, &public) {
        (Some(r), _) => Some(r),
        (None, Some(p)) => p
            .join(
                raw.default_callback_path
                    .as_deref()
                    .unwrap_or("/api/callback"),
            )
            .ok(),
        (None, None) => None,
    };
    if let (Some(p), Some(r)) = (&public, &redirect) {
        if p.origin() != r.origin() {
            ctx.problem(format!(
                "OIDC_REDIRECT_URL `{r}` must have the same origin as the public URL `{p}`"
            ));
        }
        if r.query().is_some() || r.fragment().is_some() {
            ctx.problem("OIDC_REDIRECT_URL must not contain a query or fragment");
        }
        if p.scheme() == "http" && !is_loopback_url(p) {
            if ctx.insecure {
                // R-CK-3: the cookies lose `Secure` and the `__Host-` prefix; say so.
                ctx.warnings.push(format!(
                    "the public URL `{p}` is plain http: session cookies are sent without Secure and without the __Host- prefix (development only)"
                ));
            } else {
                ctx.problem(format!(
                    "the public URL `{p}` is plain http: cookies would travel unencrypted; use https (or set OIDC_ALLOW_INSECURE_HTTP=true for development only)"
                ));
            }
        }
        if p.path() != "/" {
            ctx.problem(format!(
                "PORTCULLIS_PUBLIC_URL `{p}` has a path; Portcullis must be served at the root of its origin"
            ));
        }
        if is_reserved_path(r.path()) {
            ctx.problem(format!(
                "OIDC_REDIRECT_URL path `{}` collides with a Portcullis endpoint",
                r.path()
            ));
        }
    }
    (public, redirect)
}

/// Portcullis's own routes that a custom callback path may not take over.
pub(super) fn is_reserved_path(p: &str) -> bool {
    matches!(
        p,
        "/" | "/api/login" | "/api/logout" | "/api/session" | "/healthz" | "/readyz"
    ) || p.starts_with("/.portcullis/")
}

/// `OIDC_GROUPS_OVERAGE` and `OIDC_GROUPS_SOURCE_ORIGINS`.
fn groups_overage(raw: &RawSettings, ctx: &mut Ctx) -> OverageSettings {
    let outcome = match raw.groups_overage.as_deref() {
        None => OverageOutcome::Deny,
        Some(v) => OverageOutcome::parse(v).unwrap_or_else(|| {
            ctx.problem(format!(
                "OIDC_GROUPS_OVERAGE must be deny or no-groups, got `{v}`"
            ));
            OverageOutcome::Deny
        }),
    };
    let source_origins = raw.groups_source_origins.as_ref().map(|list| {
        let mut out = Vec::new();
        for o in list {
            match url::Url::parse(o) {
                Ok(u) if u.path() != "/" || u.query().is_some() || !u.username().is_empty() => {
                    ctx.problem(format!(
                        "OIDC_GROUPS_SOURCE_ORIGINS: `{o}` must be an origin only (scheme://host[:port]), without path, query or credentials"
                    ));
                }
                Ok(u) if u.scheme() == "https" || (u.scheme() == "http" && ctx.insecure) => {
                    out.push(u.origin().ascii_serialization());
                }
                Ok(_) => ctx.problem(format!(
                    "OIDC_GROUPS_SOURCE_ORIGINS: `{o}` must be https (http only with OIDC_ALLOW_INSECURE_HTTP=true)"
                )),
                Err(e) => ctx.problem(format!(
                    "OIDC_GROUPS_SOURCE_ORIGINS: `{o}` is not a valid URL ({e})"
                )),
            }
        }
        out
    });
    OverageSettings {
        outcome,
        source_origins,
    }
}

/// `OIDC_ALLOWED_HOSTED_DOMAINS`: bare domain names, compared case-insensitively.
fn hosted_domains(raw: &RawSettings, ctx: &mut Ctx) -> Vec<String> {
    let mut out = Vec::new();
    for d in raw.allowed_hosted_domains.iter().flatten() {
        let d = d.trim().to_ascii_lowercase();
        let ok = !d.is_empty()
            && d.contains('.')
            && d.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
        if ok {
            out.push(d);
        } else {
            ctx.problem(format!(
                "OIDC_ALLOWED_HOSTED_DOMAINS: `{d}` is not a domain name (e.g. example.com)"
            ));
        }
    }
    out
}

fn claim_keys(raw: &RawSettings, ctx: &mut Ctx) -> ClaimKeys {
    let k = &raw.claim_keys;
    let or = |v: &Option<String>, d: &str| v.clone().unwrap_or_else(|| d.to_string());
    let keys = ClaimKeys {
        id: or(&k.id, "sub"),
        email: or(&k.email, "email"),
        name: or(&k.name, "name"),
        given_name: or(&k.given_name, "given_name"),
        family_name: or(&k.family_name, "family_name"),
        picture: or(&k.picture, "picture"),
        provider: or(&k.provider, "iss"),
        username: or(&k.username, "preferred_username"),
        groups: or(&k.groups, "groups"),
        allow_unverified_email: parse_bool(
            "OIDC_ALLOW_UNVERIFIED_EMAIL",
            &raw.allow_unverified_email,
            ctx,
        ),
    };
    if matches!(
        keys.id.as_str(),
        "email" | "preferred_username" | "name" | "upn"
    ) {
        // R-CFG-8: identity stays (iss, sub) regardless; this only changes the shown user id.
        ctx.warnings.push(format!(
            "OIDC_USER_ID_KEY={} is a mutable claim; Portcullis still identifies users by (iss, sub)",
            keys.id
        ));
    }
    keys
}

fn check_database(raw: &RawSettings, ctx: &mut Ctx) -> Option<DatabaseUrl> {
    let v = raw
        .database_url
        .as_deref()
        .unwrap_or("sqlite://portcullis.db");
    if let Some(rest) = v.strip_prefix("sqlite:") {
        // sqlite:///abs/path, sqlite://relative/path, sqlite:relative, sqlite::memory:
        let path = rest.strip_prefix("//").unwrap_or(rest);
        if path.is_empty() {
            ctx.problem("PORTCULLIS_DATABASE_URL names no SQLite file (e.g. sqlite:///var/lib/portcullis/p.db)");
            return None;
        }
        return Some(DatabaseUrl::Sqlite(path.to_string()));
    }
    if v.starts_with("postgres://") || v.starts_with("postgresql://") {
        // The URL carries the password: it never appears in a problem message.
        return match url::Url::parse(v) {
            Ok(u) if u.host_str().is_some_and(|h| !h.is_empty()) => {
                Some(DatabaseUrl::Postgres(Secret::new(v.to_string())))
            }
            _ => {
                ctx.problem("PORTCULLIS_DATABASE_URL is not a valid PostgreSQL URL (e.g. postgres://portcullis:PASSWORD@db.example.com:5432/portcullis?sslmode=require)");
                None
            }
        };
    }
    let shown: String = v
        .split('@')
        .next_back()
        .unwrap_or(v)
        .chars()
        .take(60)
        .collect();
    ctx.problem(format!(
        "PORTCULLIS_DATABASE_URL must start with sqlite:// (e.g. sqlite:///var/lib/portcullis/p.db) or postgres:// (several replicas), got `…{shown}`"
    ));
    None
}

fn check_roles(roles: &BTreeMap<String, Vec<String>>, ctx: &mut Ctx) {
    for (role, groups) in roles {
        if role.trim().is_empty() {
            ctx.problem("a role name is empty");
        }
        if groups.iter().any(|g| g.trim().is_empty()) {
            ctx.problem(format!("role `{role}` lists an empty group name"));
        }
    }
}
