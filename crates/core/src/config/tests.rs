#![allow(clippy::unwrap_used, clippy::expect_used)]
//! R-CFG: configuration loading, precedence and every refusal.

use std::collections::HashMap;

use super::*;

const SECRET: &str = "0123456789abcdefghijklmnopqrstuvwxyz";

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let m: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k: &str| m.get(k).cloned()
}

fn base() -> Vec<(&'static str, &'static str)> {
    vec![
        (
            "OIDC_DISCOVERY_URL",
            "https://idp.example.com/.well-known/openid-configuration",
        ),
        ("OIDC_CLIENT_ID", "portcullis"),
        ("OIDC_CLIENT_SECRET", "s3cret"),
        ("JWT_SIGNING_SECRET", SECRET),
        ("OIDC_REDIRECT_URL", "https://app.example.com/api/callback"),
    ]
}

fn problems(pairs: &[(&str, &str)]) -> Vec<String> {
    match load(&env(pairs), None) {
        Ok(_) => vec![],
        Err(p) => p.into_iter().map(|p| p.0).collect(),
    }
}

fn with(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    let mut v: Vec<_> = base()
        .into_iter()
        .filter(|(k, _)| !extra.iter().any(|(e, _)| e == k))
        .collect();
    v.extend_from_slice(extra);
    v
}

#[test]
fn minimal_env_config_loads_with_defaults() {
    let c = load(&env(&base()), None).unwrap();
    assert_eq!(c.oidc.scopes, vec!["openid", "email", "profile"]);
    assert_eq!(c.oidc.allowed_algs, vec![JwsAlg::RS256]);
    assert_eq!(c.oidc.auth_method, ClientAuthMethod::ClientSecretPost);
    assert_eq!(c.listen.to_string(), "0.0.0.0:8080");
    assert_eq!(c.public_url.as_str(), "https://app.example.com/");
    assert_eq!(c.callback_path(), "/api/callback");
    assert_eq!(c.database, DatabaseUrl::Sqlite("portcullis.db".into()));
    assert_eq!(c.oidc.claim_keys.id, "sub");
    assert_eq!(c.oidc.claim_keys.provider, "iss");
    assert!(c.secure_cookies());
    assert!(format!("{c:?}").contains("Secret(***)"));
    assert!(!format!("{c:?}").contains("s3cret"));
}

#[test]
fn r_cfg_empty_value_counts_as_unset() {
    let c = load(
        &env(&with(&[("OIDC_SCOPES", ""), ("OIDC_TOKEN_ENDPOINT", "  ")])),
        None,
    )
    .unwrap();
    assert_eq!(c.oidc.scopes, vec!["openid", "email", "profile"]);
    assert!(c.oidc.endpoints.token_endpoint.is_none());
}

#[test]
fn r_cfg_1_short_secret_refused() {
    let p = problems(&with(&[("JWT_SIGNING_SECRET", "short")]));
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].contains("JWT_SIGNING_SECRET is 5 characters"), "{p:?}");
}

#[test]
fn r_cfg_1_low_entropy_secret_warns() {
    let c = load(
        &env(&with(&[(
            "JWT_SIGNING_SECRET",
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        )])),
        None,
    )
    .unwrap();
    assert!(c.warnings.iter().any(|w| w.contains("low-entropy")));
}

#[test]
fn r_cfg_missing_client_credentials_each_reported() {
    let p = problems(
        &base()
            .into_iter()
            .filter(|(k, _)| !k.starts_with("OIDC_CLIENT"))
            .collect::<Vec<_>>(),
    );
    assert_eq!(p.len(), 2, "{p:?}");
    assert!(p[0].contains("OIDC_CLIENT_ID"));
    assert!(p[1].contains("OIDC_CLIENT_SECRET"));
}

#[test]
fn r_cfg_neither_discovery_nor_endpoints_refused() {
    let p = problems(
        &base()
            .into_iter()
            .filter(|(k, _)| *k != "OIDC_DISCOVERY_URL")
            .collect::<Vec<_>>(),
    );
    assert_eq!(p.len(), 1);
    assert!(p[0].starts_with("no IdP endpoints"), "{p:?}");
    // two of three endpoints is still not enough
    let mut v: Vec<_> = base()
        .into_iter()
        .filter(|(k, _)| *k != "OIDC_DISCOVERY_URL")
        .collect();
    v.push(("OIDC_AUTHORIZATION_ENDPOINT", "https://idp/authorize"));
    v.push(("OIDC_TOKEN_ENDPOINT", "https://idp/token"));
    assert_eq!(problems(&v).len(), 1);
    v.push(("OIDC_USERINFO_ENDPOINT", "https://idp/userinfo"));
    assert!(problems(&v).is_empty());
}

#[test]
fn r_cfg_3_plain_http_idp_needs_insecure_flag() {
    let p = problems(&with(&[(
        "OIDC_DISCOVERY_URL",
        "http://idp.local/.well-known/openid-configuration",
    )]));
    assert_eq!(p.len(), 1);
    assert!(p[0].contains("OIDC_DISCOVERY_URL uses plain http"), "{p:?}");
    let c = load(
        &env(&with(&[
            (
                "OIDC_DISCOVERY_URL",
                "http://idp.local/.well-known/openid-configuration",
            ),
            ("OIDC_ALLOW_INSECURE_HTTP", "true"),
        ])),
        None,
    )
    .unwrap();
    assert!(c.oidc.allow_insecure_http);
    assert!(c.warnings.iter().any(|w| w.contains("development only")));
}

#[test]
fn r_cfg_unknown_jws_algorithm_refused() {
    let p = problems(&with(&[("OIDC_JWS_ALGORITHM", "HS256")]));
    assert_eq!(p.len(), 1);
    assert!(
        p[0].contains("jwsAlgorithm `HS256` is not supported"),
        "{p:?}"
    );
    let c = load(
        &env(&with(&[("OIDC_JWS_ALGORITHM", "ES256,EdDSA,PS256")])),
        None,
    )
    .unwrap();
    assert_eq!(
        c.oidc.allowed_algs,
        vec![JwsAlg::ES256, JwsAlg::EdDSA, JwsAlg::PS256]
    );
}

#[test]
fn r_cfg_every_problem_reported_once_per_line() {
    let p = problems(&[
        ("JWT_SIGNING_SECRET", "tiny"),
        ("OIDC_TOKEN_ENDPOINT", "http://idp/token"),
        ("OIDC_JWS_ALGORITHM", "none"),
        ("PORTCULLIS_LISTEN", "not-an-address"),
    ]);
    assert!(p.len() >= 6, "{p:?}");
    assert!(p.iter().all(|l| !l.contains('\n')));
}

#[test]
fn r_cfg_custom_parameters_cannot_override_protocol_params() {
    let p = problems(&with(&[(
        "OIDC_CUSTOM_PARAMETERS",
        "prompt=login,code_challenge_method=plain",
    )]));
    assert_eq!(p.len(), 1);
    assert!(p[0].contains("code_challenge_method"));
}

#[test]
fn r_cfg_6_public_url_http_non_loopback_refused_loopback_allowed() {
    let p = problems(&with(&[(
        "OIDC_REDIRECT_URL",
        "http://app.example.com/api/callback",
    )]));
    assert_eq!(p.len(), 1, "{p:?}");
    let c = load(
        &env(&with(&[(
            "OIDC_REDIRECT_URL",
            "http://localhost:8080/api/callback",
        )])),
        None,
    )
    .unwrap();
    assert!(c.secure_cookies());
    assert_eq!(c.public_origin(), "http://localhost:8080");
}

#[test]
fn r_cfg_redirect_must_share_public_origin() {
    let p = problems(&with(&[(
        "PORTCULLIS_PUBLIC_URL",
        "https://other.example.com",
    )]));
    assert_eq!(p.len(), 1);
    assert!(p[0].contains("same origin"));
}

#[test]
fn r_cfg_5_ca_pem_rules() {
    let p = problems(&with(&[(
        "OIDC_SIGNER_PEM_URL",
        "-----BEGIN PRIVATE KEY-----\nxx\n-----END PRIVATE KEY-----",
    )]));
    assert!(p[0].contains("private key"), "{p:?}");
    let p = problems(&with(&[(
        "OIDC_SIGNER_PEM_URL",
        "http://ca.example.com/ca.pem",
    )]));
    assert!(p[0].contains("plain http"), "{p:?}");
    let c = load(
        &env(&with(&[("OIDC_SIGNER_PEM_URL", "file:///etc/ca.pem")])),
        None,
    )
    .unwrap();
    assert!(matches!(c.oidc.ca, Some(CaSource::Url(_))));
}

#[test]
fn database_urls() {
    let c = load(
        &env(&with(&[(
            "PORTCULLIS_DATABASE_URL",
            "sqlite:///var/lib/portcullis/p.db",
        )])),
        None,
    )
    .unwrap();
    assert_eq!(
        c.database,
        DatabaseUrl::Sqlite("/var/lib/portcullis/p.db".into())
    );
    assert_eq!(
        problems(&with(&[("PORTCULLIS_DATABASE_URL", "mysql://x")])).len(),
        1
    );
}

/// R-SJ-4: session lifetimes are configurable within bounds; the maximum cannot be shorter
/// than the TTL.
#[test]
fn session_lifetimes_have_defaults_and_bounds() {
    let c = load(&env(&base()), None).unwrap();
    assert_eq!((c.sessions.ttl, c.sessions.absolute), (1800, 43200));
    assert_eq!(c.sessions.refresh_window(), 600);
    let c = load(
        &env(&with(&[
            ("PORTCULLIS_SESSION_TTL", "900"),
            ("PORTCULLIS_SESSION_MAX_LIFETIME", "3600"),
        ])),
        None,
    )
    .unwrap();
    assert_eq!((c.sessions.ttl, c.sessions.absolute), (900, 3600));
    assert_eq!(c.sessions.refresh_window(), 450);
    for (k, v) in [
        ("PORTCULLIS_SESSION_TTL", "1801"),
        ("PORTCULLIS_SESSION_TTL", "59"),
        ("PORTCULLIS_SESSION_TTL", "half an hour"),
        ("PORTCULLIS_SESSION_MAX_LIFETIME", "599"),
    ] {
        let p = problems(&with(&[(k, v)]));
        assert_eq!(p.len(), 1, "{k}={v}: {p:?}");
        assert!(p[0].contains(k), "{p:?}");
    }
    let p = problems(&with(&[
        ("PORTCULLIS_SESSION_TTL", "1800"),
        ("PORTCULLIS_SESSION_MAX_LIFETIME", "1000"),
    ]));
    assert_eq!(p.len(), 1, "{p:?}");
}

#[test]
fn postgres_database_url_is_accepted_and_its_password_never_shown() {
    for url in [
        "postgres://portcullis:dbpass9@db.example.com:5432/portcullis?sslmode=require",
        "postgresql://portcullis:dbpass9@db/portcullis",
    ] {
        let c = load(&env(&with(&[("PORTCULLIS_DATABASE_URL", url)])), None).unwrap();
        assert!(
            matches!(&c.database, DatabaseUrl::Postgres(s) if s.expose() == url),
            "{:?}",
            c.database
        );
        assert!(!format!("{:?}", c.database).contains("dbpass9"));
    }
    let p = problems(&with(&[("PORTCULLIS_DATABASE_URL", "postgres://")]));
    assert_eq!(p.len(), 1, "{p:?}");
    let p = problems(&with(&[(
        "PORTCULLIS_DATABASE_URL",
        "mysql://u:dbpass9@db/x",
    )]));
    assert!(!p[0].contains("dbpass9"), "{p:?}");
}

#[test]
fn env_overrides_file() {
    let yaml = "clientId: from-file\nsecret: file-secret\ndiscoveryUri: https://idp.example.com/.well-known/openid-configuration\n";
    let c = load(
        &env(&[
            ("OIDC_CLIENT_ID", "from-env"),
            ("JWT_SIGNING_SECRET", SECRET),
            ("OIDC_REDIRECT_URL", "https://app.example.com/loginCallback"),
        ]),
        Some(("auth.yaml", yaml)),
    )
    .unwrap();
    assert_eq!(c.oidc.client_id, "from-env");
    assert_eq!(c.oidc.client_secret.expose(), "file-secret");
    assert_eq!(c.callback_path(), "/loginCallback");
}

#[test]
fn r_cfg_yaml_syntax_error_names_the_line() {
    let yaml = "clientId: a\nsecret: [unclosed\ndiscoveryUri: x\n";
    let p = load(&env(&[]), Some(("auth.yaml", yaml))).unwrap_err();
    assert_eq!(p.len(), 1);
    assert!(p[0].0.starts_with("auth.yaml: "), "{p:?}");
    assert!(p[0].0.contains("line"), "{p:?}");
}

#[test]
fn r_cfg_yaml_typo_is_an_error_with_line() {
    let yaml = "clientId: a\ndiscoveryUrl: https://x\n";
    let p = load(&env(&[]), Some(("auth.yaml", yaml))).unwrap_err();
    assert!(p[0].0.contains("discoveryUrl"), "{p:?}");
    assert!(p[0].0.contains("line 2"), "{p:?}");
}

#[test]
fn r_cfg_yaml_duplicate_key_is_an_error() {
    let yaml = "clientId: a\nclientId: b\n";
    assert!(load(&env(&[]), Some(("auth.yaml", yaml))).is_err());
}

#[test]
fn seed_001_authentication_yaml_loads_unchanged() {
    let yaml = include_str!("../../../../fixtures/seeds/seed001-authentication.yaml");
    let raw = parse_file("authentication.yaml", yaml).unwrap();
    assert_eq!(
        raw.client_id.as_deref(),
        Some("<client-id-from-oidc-provider>")
    );
    assert_eq!(raw.discovery_url, None, "\"\" means unset");
    assert_eq!(
        raw.scopes,
        Some(vec!["openid".to_string(), "email".to_string()])
    );
    assert_eq!(raw.claim_keys.username.as_deref(), Some("email"));
    assert_eq!(
        raw.roles["platformAdmin"],
        vec!["oidc-platform-admin-role-for-stackstate"]
    );
    // With the IdP filled in (the guide says to write down the discoveryUri) it validates.
    let c = load(
        &env(&[
            (
                "OIDC_DISCOVERY_URL",
                "https://idp.example.com/.well-known/openid-configuration",
            ),
            ("JWT_SIGNING_SECRET", SECRET),
            (
                "OIDC_REDIRECT_URL",
                "https://stackstate.example.com/loginCallback",
            ),
        ]),
        Some(("authentication.yaml", yaml)),
    )
    .unwrap();
    assert_eq!(c.oidc.custom_parameters["access_type"], "offline");
    assert_eq!(c.oidc.allowed_algs, vec![JwsAlg::RS256]);
    assert_eq!(c.oidc.claim_keys.groups, "groups");
    assert_eq!(c.roles.len(), 4);
}

#[test]
fn seed_001_microsoft_snippet_loads() {
    let yaml = include_str!("../../../../fixtures/seeds/seed001-microsoft.yaml");
    let raw = parse_file("authentication.yaml", yaml).unwrap();
    assert_eq!(
        raw.scopes.unwrap(),
        vec!["openid", "email", "offline_access"]
    );
    assert_eq!(
        raw.claim_keys.username.as_deref(),
        Some("preferred_username")
    );
}

#[test]
fn seed_000_values_discovery_loads_unchanged() {
    let yaml = include_str!("../../../../fixtures/seeds/seed000-values-discovery.yaml");
    let c = load(&env(&[]), Some(("values.yaml", yaml))).unwrap();
    assert_eq!(
        c.oidc.redirect_url.as_str(),
        "https://qualytics.example.com/api/callback"
    );
    assert_eq!(c.public_origin(), "https://qualytics.example.com");
    assert_eq!(c.oidc.client_id, "your-client-id");
    assert!(c.oidc.endpoints.discovery_url.is_some());
}

#[test]
fn seed_000_values_manual_loads_unchanged() {
    let yaml = include_str!("../../../../fixtures/seeds/seed000-values-manual.yaml");
    let c = load(&env(&[]), Some(("values.yaml", yaml))).unwrap();
    assert!(c.oidc.endpoints.discovery_url.is_none());
    assert_eq!(
        c.oidc.endpoints.token_endpoint.as_ref().unwrap().as_str(),
        "https://login.example.com/oauth2/token"
    );
    assert_eq!(c.oidc.scopes, vec!["openid", "email", "profile"]);
}

#[test]
fn unknown_env_vars_are_flagged() {
    let u = unknown_vars(
        [
            "OIDC_CLIENTID",
            "OIDC_CLIENT_ID",
            "PATH",
            "PORTCULLIS_LISTN",
        ]
        .into_iter(),
    );
    assert_eq!(u, vec!["OIDC_CLIENTID", "PORTCULLIS_LISTN"]);
}

/// The README's configuration reference documents every environment variable.
#[test]
fn readme_documents_every_env_var() {
    let readme = include_str!("../../../../README.md");
    for (name, _) in ENV_VARS {
        assert!(readme.contains(&format!("`{name}`")), "README lacks {name}");
    }
}

/// Seed 001: without `redirectUri` the callback is the base URL plus `/loginCallback`.
#[test]
fn seed_001_default_callback_is_login_callback() {
    let yaml = include_str!("../../../../fixtures/seeds/seed001-authentication.yaml");
    let c = load(
        &env(&[
            (
                "OIDC_DISCOVERY_URL",
                "https://idp.example.com/.well-known/openid-configuration",
            ),
            ("JWT_SIGNING_SECRET", SECRET),
            ("PORTCULLIS_PUBLIC_URL", "https://stackstate.example.com"),
        ]),
        Some(("authentication.yaml", yaml)),
    )
    .unwrap();
    assert_eq!(
        c.oidc.redirect_url.as_str(),
        "https://stackstate.example.com/loginCallback"
    );
    // Plain environment configuration keeps seed 000's /api/callback.
    let pairs: Vec<_> = with(&[("PORTCULLIS_PUBLIC_URL", "https://app.example.com")])
        .into_iter()
        .filter(|(k, _)| *k != "OIDC_REDIRECT_URL")
        .collect();
    let c = load(&env(&pairs), None).unwrap();
    assert_eq!(
        c.oidc.redirect_url.as_str(),
        "https://app.example.com/api/callback"
    );
}

proptest::proptest! {
    /// R-RS-5: any YAML text yields settings or a one-line error, never a panic.
    #[test]
    fn yaml_parsing_never_panics(text in ".{0,200}") {
        if let Err(e) = parse_file("f.yaml", &text) {
            proptest::prop_assert!(!e.to_string().contains('\n'));
        }
    }
}

/// R-RS-1 / R-HD: the proxy and connection settings default to the documented values.
#[test]
fn proxy_and_limit_defaults() {
    let c = load(&env(&base()), None).unwrap();
    assert_eq!(c.limits.header_read_timeout.as_secs(), 10);
    assert_eq!(c.limits.keep_alive_timeout.as_secs(), 60);
    assert_eq!(c.limits.max_connections, 10_000);
    assert_eq!(c.limits.max_connections_per_ip, 256);
    assert_eq!(c.proxy.max_body_bytes, 1024 * 1024);
    assert_eq!(c.proxy.body_timeout.as_secs(), 30);
    assert_eq!(c.proxy.allowed_upgrades, vec!["websocket"]);
    assert!(c.proxy.extra_methods.is_empty() && c.proxy.strip_headers.is_empty());
    assert_eq!(c.proxy.identity_headers.user, "x-forwarded-user");
    assert_eq!(
        c.proxy.identity_headers.preferred_username,
        "x-forwarded-preferred-username"
    );
    assert!(!c.oidc.claim_keys.allow_unverified_email);
}

#[test]
fn proxy_and_limit_settings_from_env() {
    let c = load(
        &env(&with(&[
            ("PORTCULLIS_HEADER_READ_TIMEOUT", "1"),
            ("PORTCULLIS_KEEPALIVE_TIMEOUT", "5"),
            ("PORTCULLIS_BODY_TIMEOUT", "2"),
            ("PORTCULLIS_MAX_CONNECTIONS", "100"),
            ("PORTCULLIS_MAX_CONNECTIONS_PER_IP", "10"),
            ("PORTCULLIS_MAX_BODY_BYTES", "4096"),
            ("PORTCULLIS_EXTRA_METHODS", "PROPFIND, MKCOL,PROPFIND,GET"),
            ("PORTCULLIS_ALLOWED_UPGRADES", "WebSocket"),
            ("PORTCULLIS_STRIP_HEADERS", "X_Internal_, x-tenant"),
            ("PORTCULLIS_HEADER_USER", "X-WEBAUTH-USER"),
            ("PORTCULLIS_HEADER_EMAIL", "X-WEBAUTH-EMAIL"),
            ("PORTCULLIS_HEADER_GROUPS", "X-WEBAUTH-GROUPS"),
            ("PORTCULLIS_HEADER_PREFERRED_USERNAME", "X-WEBAUTH-NAME"),
            ("OIDC_ALLOW_UNVERIFIED_EMAIL", "true"),
        ])),
        None,
    )
    .unwrap();
    assert_eq!(c.limits.header_read_timeout.as_secs(), 1);
    assert_eq!(c.limits.keep_alive_timeout.as_secs(), 5);
    assert_eq!(c.proxy.body_timeout.as_secs(), 2);
    assert_eq!(c.limits.max_connections, 100);
    assert_eq!(c.limits.max_connections_per_ip, 10);
    assert_eq!(c.proxy.max_body_bytes, 4096);
    assert_eq!(c.proxy.extra_methods, vec!["PROPFIND", "MKCOL"]);
    assert_eq!(c.proxy.allowed_upgrades, vec!["websocket"]);
    assert_eq!(c.proxy.strip_headers, vec!["x-internal-", "x-tenant"]);
    assert_eq!(c.proxy.identity_headers.user, "x-webauth-user");
    assert_eq!(c.proxy.identity_headers.groups, "x-webauth-groups");
    assert_eq!(
        c.proxy.identity_headers.preferred_username,
        "x-webauth-name"
    );
    assert!(c.oidc.claim_keys.allow_unverified_email);
    // `none` switches upgrades off.
    let c = load(
        &env(&with(&[("PORTCULLIS_ALLOWED_UPGRADES", "none")])),
        None,
    )
    .unwrap();
    assert!(c.proxy.allowed_upgrades.is_empty());
}

/// Every bad value is one clear problem naming its setting.
#[test]
fn proxy_and_limit_settings_refused() {
    for (k, v, says) in [
        ("PORTCULLIS_HEADER_READ_TIMEOUT", "0", "from 1 to 300"),
        ("PORTCULLIS_HEADER_READ_TIMEOUT", "ten", "from 1 to 300"),
        ("PORTCULLIS_KEEPALIVE_TIMEOUT", "3601", "from 1 to 3600"),
        ("PORTCULLIS_BODY_TIMEOUT", "-1", "from 1 to 3600"),
        ("PORTCULLIS_MAX_CONNECTIONS", "0", "from 1 to 1000000"),
        (
            "PORTCULLIS_MAX_CONNECTIONS_PER_IP",
            "1e3",
            "from 1 to 1000000",
        ),
        ("PORTCULLIS_MAX_BODY_BYTES", "1MiB", "whole number"),
        ("PORTCULLIS_EXTRA_METHODS", "CONNECT", "never proxied"),
        ("PORTCULLIS_EXTRA_METHODS", "trace", "never proxied"),
        (
            "PORTCULLIS_EXTRA_METHODS",
            "BAD(METHOD)",
            "not a method name",
        ),
        (
            "PORTCULLIS_ALLOWED_UPGRADES",
            "ws/1/2",
            "not a protocol name",
        ),
        (
            "PORTCULLIS_STRIP_HEADERS",
            "content",
            "would strip `content-length`",
        ),
        ("PORTCULLIS_STRIP_HEADERS", "x:y", "not a header name"),
        ("PORTCULLIS_HEADER_USER", "X User", "must be a header name"),
        ("PORTCULLIS_HEADER_EMAIL", "Authorization", "sets or needs"),
        (
            "PORTCULLIS_HEADER_GROUPS",
            "x_forwarded_for",
            "sets or needs",
        ),
        ("PORTCULLIS_HEADER_GROUPS", "x-forwarded-user", "two claims"),
        ("OIDC_ALLOW_UNVERIFIED_EMAIL", "maybe", "true or false"),
    ] {
        let p = problems(&with(&[(k, v)]));
        assert_eq!(p.len(), 1, "{k}={v}: {p:?}");
        assert!(p[0].contains(says), "{k}={v}: {p:?}");
        assert!(p[0].contains(k) || says == "two claims", "{k}={v}: {p:?}");
    }
    let c = load(
        &env(&with(&[
            ("PORTCULLIS_MAX_CONNECTIONS", "10"),
            ("PORTCULLIS_MAX_CONNECTIONS_PER_IP", "20"),
            ("PORTCULLIS_EXTRA_METHODS", "propfind"),
        ])),
        None,
    )
    .unwrap();
    assert!(c.warnings.iter().any(|w| w.contains("one client can take")));
    assert!(c.warnings.iter().any(|w| w.contains("case-sensitive")));
}

/// The YAML keys under `portcullis:` match the environment variables.
#[test]
fn proxy_and_limit_settings_from_yaml() {
    let yaml = "portcullis:
  headerReadTimeout: 3
  keepAliveTimeout: 30
  bodyTimeout: 4
  maxConnections: 500
  maxConnectionsPerIp: 50
  maxBodyBytes: 2048
  extraMethods: [PROPFIND]
  allowedUpgrades: [websocket]
  stripHeaders: [X-Internal-]
  allowUnverifiedEmail: true
  identityHeaders:
    user: X-WEBAUTH-USER
    email: X-WEBAUTH-EMAIL
    groups: X-WEBAUTH-GROUPS
    preferredUsername: X-WEBAUTH-NAME
";
    let c = load(&env(&base()), Some(("p.yaml", yaml))).unwrap();
    assert_eq!(c.limits.header_read_timeout.as_secs(), 3);
    assert_eq!(c.limits.keep_alive_timeout.as_secs(), 30);
    assert_eq!(c.proxy.body_timeout.as_secs(), 4);
    assert_eq!(c.limits.max_connections, 500);
    assert_eq!(c.limits.max_connections_per_ip, 50);
    assert_eq!(c.proxy.max_body_bytes, 2048);
    assert_eq!(c.proxy.extra_methods, vec!["PROPFIND"]);
    assert_eq!(c.proxy.strip_headers, vec!["x-internal-"]);
    assert!(c.oidc.claim_keys.allow_unverified_email);
    assert_eq!(c.proxy.identity_headers.user, "x-webauth-user");
    assert_eq!(
        c.proxy.identity_headers.preferred_username,
        "x-webauth-name"
    );
    // The environment wins over the file.
    let c = load(
        &env(&with(&[("PORTCULLIS_MAX_BODY_BYTES", "10")])),
        Some(("p.yaml", yaml)),
    )
    .unwrap();
    assert_eq!(c.proxy.max_body_bytes, 10);
}

#[test]
fn seed_001_roles_reach_the_role_map() {
    let yaml = include_str!("../../../../fixtures/seeds/seed001-authentication.yaml");
    let c = load(&env(&base()), Some(("authentication.yaml", yaml))).unwrap();
    let a = &c.authz;
    assert_eq!(
        a.roles.names().collect::<Vec<_>>(),
        ["admin", "guest", "platformAdmin", "powerUser"]
    );
    for (group, role) in [
        ("oidc-guest-role-for-stackstate", "guest"),
        ("oidc-power-user-role-for-stackstate", "powerUser"),
        ("oidc-admin-role-for-stackstate", "admin"),
        ("oidc-platform-admin-role-for-stackstate", "platformAdmin"),
    ] {
        assert_eq!(a.roles_of(&[group.to_string()]), Ok(vec![role.to_string()]));
    }
    assert_eq!(a.no_role, crate::authz::NoRole::Deny);
    assert_eq!(a.roles.granting_groups().len(), 4);
    assert!(a.roles_of(&["someone-else".to_string()]).is_err());
    assert!(a.policies.is_empty());
}

#[test]
fn yaml_custom_roles_no_role_and_policies() {
    let yaml = "admin: [g-admin]\nroles:\n  auditor: [g-audit, g-sec]\nportcullis:\n  noRole: auditor\n  policies:\n    - path: /admin/\n      methods: [GET, POST]\n      roles: [admin]\n    - {path: /audit, roles: [auditor, admin]}\n";
    let c = load(&env(&base()), Some(("p.yaml", yaml))).unwrap();
    let a = &c.authz;
    assert_eq!(c.roles.len(), 2);
    assert_eq!(a.no_role, crate::authz::NoRole::Default("auditor".into()));
    let auditor = a.roles_of(&["g-sec".to_string()]).unwrap();
    assert_eq!(auditor, ["auditor"]);
    assert_eq!(a.roles_of(&[]), Ok(vec!["auditor".to_string()]));
    use crate::authz::Decision;
    assert_eq!(a.decide("GET", "/audit/log", &auditor), Decision::Allow);
    assert_eq!(
        a.decide("GET", "/admin/users", &auditor),
        Decision::Deny {
            needed: vec!["admin".into()]
        }
    );
    assert_eq!(
        a.decide("GET", "/admin/users", &["admin".to_string()]),
        Decision::Allow
    );
    assert_eq!(a.decide("GET", "/home", &auditor), Decision::NoPolicy);
}

#[test]
fn yaml_policy_with_unknown_field_names_the_line() {
    let yaml = "portcullis:\n  policies:\n    - path: /a\n      role: [admin]\n";
    let p = load(&env(&base()), Some(("p.yaml", yaml))).unwrap_err();
    assert_eq!(p.len(), 1);
    assert!(p[0].0.contains("line"), "{p:?}");
}

#[test]
fn env_roles_and_policies_overlay_the_file() {
    let yaml = "admin: [file-admin]\nguest: [file-guest]\nportcullis:\n  policies:\n    - {path: /file, roles: [guest]}\n";
    let c = load(
        &env(&with(&[
            (
                "PORTCULLIS_ROLES",
                r#"{"admin":["g1","g2"],"auditor":["g3"]}"#,
            ),
            ("PORTCULLIS_NO_ROLE", "guest"),
            (
                "PORTCULLIS_POLICIES",
                r#"[{"path":"/admin","methods":["GET"],"roles":["admin","auditor"]}]"#,
            ),
        ])),
        Some(("p.yaml", yaml)),
    )
    .unwrap();
    let a = &c.authz;
    // Role by role: admin replaced, guest kept from the file, auditor added.
    assert_eq!(c.roles["admin"], ["g1", "g2"]);
    assert_eq!(c.roles["guest"], ["file-guest"]);
    assert_eq!(a.roles_of(&["g3".to_string()]), Ok(vec!["auditor".into()]));
    assert_eq!(
        a.roles_of(&["file-admin".to_string()]),
        Ok(vec!["guest".into()])
    );
    // The environment's list replaces the file's.
    assert_eq!(a.policies.iter().count(), 1);
    assert_eq!(
        a.decide("GET", "/file", &[]),
        crate::authz::Decision::NoPolicy
    );
    assert_eq!(
        a.decide("GET", "/admin", &["auditor".to_string()]),
        crate::authz::Decision::Allow
    );
}

#[test]
fn env_authz_problems_each_one_line() {
    let p = problems(&with(&[
        ("PORTCULLIS_ROLES", r#"{"admin":["g1",]}"#),
        ("PORTCULLIS_POLICIES", r#"{"path":"/a"}"#),
        ("PORTCULLIS_NO_ROLE", "boss"),
    ]));
    assert_eq!(p.len(), 3, "{p:?}");
    assert!(
        p[0].starts_with("PORTCULLIS_ROLES is not a JSON object") && p[0].contains("line 1 column"),
        "{p:?}"
    );
    assert!(
        p[1].starts_with("PORTCULLIS_POLICIES is not a JSON array")
            && p[1].contains("line 1 column"),
        "{p:?}"
    );
    assert!(p[2].contains("`boss` is not a configured role"), "{p:?}");
    assert!(p.iter().all(|l| !l.contains('\n')));
    let p = problems(&with(&[
        ("PORTCULLIS_ROLES", r#"{"admin":["g1"]}"#),
        (
            "PORTCULLIS_POLICIES",
            r#"[{"path":"admin","roles":["admin"]},{"path":"/b","roles":[]},{"path":"/c","roles":["ghost"]},{"path":"/d","methods":["G T"],"roles":["admin"]}]"#,
        ),
    ]));
    assert_eq!(p.len(), 4, "{p:?}");
    assert!(
        p[0].contains("entry 1 (`admin`): path `admin` must start with /"),
        "{p:?}"
    );
    assert!(
        p[1].contains("entry 2 (`/b`): the roles list is empty"),
        "{p:?}"
    );
    assert!(
        p[2].contains("entry 3 (`/c`): role `ghost` is not configured"),
        "{p:?}"
    );
    assert!(
        p[3].contains("entry 4 (`/d`): method `G T` is not an HTTP method token"),
        "{p:?}"
    );
}

/// Offline access is off by default; the interval has a default and bounds.
#[test]
fn offline_access_off_by_default_interval_bounds() {
    let c = load(&env(&base()), None).unwrap();
    assert_eq!(c.offline, OfflineAccess::default());
    assert!(!c.offline.enabled);
    assert_eq!(c.offline.recheck_interval, 900);
    assert!(!c.oidc.custom_parameters.contains_key("prompt"));
    for bad in ["59", "86401", "0", "-5", "15m", "1.5"] {
        let p = problems(&with(&[
            ("OIDC_SCOPES", "openid,email,offline_access"),
            ("PORTCULLIS_OFFLINE_RECHECK", bad),
        ]));
        assert_eq!(
            p,
            vec![format!(
                "PORTCULLIS_OFFLINE_RECHECK must be a whole number from 60 to 86400, got `{bad}`"
            )],
            "{bad}"
        );
    }
    for good in [("60", 60), ("86400", 86400), ("600", 600)] {
        let c = load(
            &env(&with(&[
                ("OIDC_SCOPES", "openid,email,offline_access"),
                ("PORTCULLIS_OFFLINE_RECHECK", good.0),
            ])),
            None,
        )
        .unwrap();
        assert_eq!(c.offline.recheck_interval, good.1);
    }
    // Set without offline access: a warning, not a refusal.
    let c = load(&env(&with(&[("PORTCULLIS_OFFLINE_RECHECK", "600")])), None).unwrap();
    assert!(!c.offline.enabled);
    assert!(
        c.warnings
            .iter()
            .any(|w| w.contains("offline access is off")),
        "{:?}",
        c.warnings
    );
}

/// Seed 001's Microsoft shape: the `offline_access` scope turns it on; no prompt is added
/// (the Microsoft identity platform needs none).
#[test]
fn offline_access_microsoft_shape() {
    let yaml = format!(
        "{}\nclientId: portcullis\nsecret: s3cret\ndiscoveryUri: https://login.example.com/v2.0/.well-known/openid-configuration\nportcullis:\n  offlineRecheck: 300\n",
        include_str!("../../../../fixtures/seeds/seed001-microsoft.yaml")
    );
    let c = load(
        &env(&[
            ("JWT_SIGNING_SECRET", SECRET),
            ("OIDC_REDIRECT_URL", "https://obs.example.com/loginCallback"),
        ]),
        Some(("authentication.yaml", &yaml)),
    )
    .unwrap();
    assert!(c.offline.enabled);
    assert_eq!(c.offline.recheck_interval, 300);
    assert_eq!(c.oidc.claim_keys.username, "preferred_username");
    assert!(!c.oidc.custom_parameters.contains_key("prompt"));
    // The environment wins over the file.
    let c = load(
        &env(&[
            ("JWT_SIGNING_SECRET", SECRET),
            ("OIDC_REDIRECT_URL", "https://obs.example.com/loginCallback"),
            ("PORTCULLIS_OFFLINE_RECHECK", "120"),
        ]),
        Some(("authentication.yaml", &yaml)),
    )
    .unwrap();
    assert_eq!(c.offline.recheck_interval, 120);
}

/// Google's shape: `access_type: offline` turns it on and asks for consent (Google issues a
/// refresh token only then) unless customParameters chooses the prompt.
#[test]
fn offline_access_google_shape_and_prompt() {
    let yaml = "clientId: portcullis\nsecret: s3cret\ndiscoveryUri: https://accounts.google.com/.well-known/openid-configuration\nscope: [openid, email]\naccess_type: offline\n";
    let envs = [
        ("JWT_SIGNING_SECRET", SECRET),
        ("OIDC_REDIRECT_URL", "https://obs.example.com/loginCallback"),
    ];
    let c = load(&env(&envs), Some(("authentication.yaml", yaml))).unwrap();
    assert!(c.offline.enabled);
    assert_eq!(c.oidc.custom_parameters["access_type"], "offline");
    assert_eq!(c.oidc.custom_parameters["prompt"], "consent");
    let own = format!("{yaml}customParameters:\n  prompt: select_account consent\n");
    let c = load(&env(&envs), Some(("authentication.yaml", &own))).unwrap();
    assert_eq!(c.oidc.custom_parameters["prompt"], "select_account consent");
    // The same through customParameters alone.
    let c = load(
        &env(&with(&[("OIDC_CUSTOM_PARAMETERS", "access_type=offline")])),
        None,
    )
    .unwrap();
    assert!(c.offline.enabled);
    assert_eq!(c.oidc.custom_parameters["prompt"], "consent");
    // `online` is Google's other value: no offline access, no prompt.
    let online = yaml.replace("access_type: offline", "access_type: online");
    let c = load(&env(&envs), Some(("authentication.yaml", &online))).unwrap();
    assert!(!c.offline.enabled);
    assert!(!c.oidc.custom_parameters.contains_key("prompt"));
    // Anything else is a typo worth a clear line.
    let typo = yaml.replace("access_type: offline", "access_type: ofline");
    let p = match load(&env(&envs), Some(("authentication.yaml", &typo))) {
        Ok(_) => vec![],
        Err(p) => p.into_iter().map(|p| p.0).collect::<Vec<_>>(),
    };
    assert_eq!(
        p,
        vec!["access_type must be offline or online, got `ofline`"]
    );
}

/// An interval as long as the session lifetime never re-checks anything: say so.
#[test]
fn offline_recheck_longer_than_sessions_warns() {
    let c = load(
        &env(&with(&[
            ("OIDC_SCOPES", "openid,offline_access"),
            ("PORTCULLIS_OFFLINE_RECHECK", "3600"),
            ("PORTCULLIS_SESSION_MAX_LIFETIME", "3600"),
        ])),
        None,
    )
    .unwrap();
    assert!(
        c.warnings
            .iter()
            .any(|w| w.contains("before their first re-check")),
        "{:?}",
        c.warnings
    );
}

#[test]
fn admin_roles_default_to_platform_admin_only() {
    let c = load(
        &env(&with(&[(
            "PORTCULLIS_ROLES",
            r#"{"admin":["g-admin"],"platformAdmin":["g-pa"]}"#,
        )])),
        None,
    )
    .unwrap();
    let a = &c.authz;
    assert!(a.admin_roles.is_empty());
    assert!(a.may_administer(&["platformAdmin".to_string()]));
    assert!(!a.may_administer(&["admin".to_string()]));
    assert!(!a.may_administer(&[]));
}

#[test]
fn admin_roles_from_env_and_yaml() {
    let yaml = "admin: [g-admin]\nplatformAdmin: [g-pa]\nroles:\n  auditor: [g-audit]\nportcullis:\n  adminRoles: [admin]\n";
    let c = load(&env(&base()), Some(("p.yaml", yaml))).unwrap();
    assert_eq!(c.authz.admin_roles, ["admin"]);
    assert!(c.authz.may_administer(&["admin".to_string()]));
    assert!(!c.authz.may_administer(&["auditor".to_string()]));
    // The environment wins; platformAdmin may be listed (it always may anyway).
    let c = load(
        &env(&with(&[(
            "PORTCULLIS_ADMIN_ROLES",
            "auditor, platformAdmin,auditor",
        )])),
        Some(("p.yaml", yaml)),
    )
    .unwrap();
    assert_eq!(c.authz.admin_roles, ["auditor"]);
    assert!(c.authz.may_administer(&["platformAdmin".to_string()]));
    assert!(!c.authz.may_administer(&["admin".to_string()]));
}

#[test]
fn admin_roles_must_be_configured_roles() {
    let p = problems(&with(&[
        ("PORTCULLIS_ROLES", r#"{"admin":["g1"]}"#),
        ("PORTCULLIS_ADMIN_ROLES", "admin,boss,Admin"),
    ]));
    assert_eq!(p.len(), 2, "{p:?}");
    assert!(
        p[0].contains(
            "PORTCULLIS_ADMIN_ROLES (adminRoles): role `boss` is not configured (configured: admin)"
        ),
        "{p:?}"
    );
    assert!(p[1].contains("role `Admin` is not configured"), "{p:?}");
}

// --- client authentication toward the IdP: private_key_jwt and PAR ---------------------------

/// A key file in a fresh temporary directory, removed on drop.
struct KeyFile(std::path::PathBuf);

impl KeyFile {
    fn new(contents: &str) -> KeyFile {
        let mut b = [0u8; 8];
        aws_lc_rs::rand::fill(&mut b).unwrap();
        let name: String = b.iter().map(|x| format!("{x:02x}")).collect();
        let p = std::env::temp_dir().join(format!("portcullis-key-{name}.pem"));
        std::fs::write(&p, contents).unwrap();
        KeyFile(p)
    }
    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for KeyFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

use crate::oidc::client_assertion::{AssertionAlg, test_keys};

/// Secret-free base with private_key_jwt and the given key file and extras.
fn pkjwt(path: &str, extra: &[(&str, &str)]) -> Result<Config, Vec<String>> {
    let mut pairs: Vec<(&str, &str)> = base()
        .into_iter()
        .filter(|(k, _)| *k != "OIDC_CLIENT_SECRET")
        .collect();
    pairs.push(("OIDC_TOKEN_ENDPOINT_AUTH_METHOD", "private_key_jwt"));
    pairs.push(("OIDC_CLIENT_KEY_FILE", path));
    pairs.extend_from_slice(extra);
    load(&env(&pairs), None).map_err(|p| p.into_iter().map(|p| p.0).collect())
}

#[test]
fn private_key_jwt_loads_ec_and_rsa_keys_without_a_secret() {
    let ec = KeyFile::new(&test_keys::ec_p256_pem());
    let c = pkjwt(ec.path(), &[("OIDC_CLIENT_KEY_ID", "k-1")]).unwrap();
    assert_eq!(c.oidc.auth_method, ClientAuthMethod::PrivateKeyJwt);
    let key = c.oidc.client_key.as_ref().unwrap();
    assert_eq!((key.alg(), key.kid()), (AssertionAlg::Es256, Some("k-1")));
    assert_eq!(c.oidc.client_secret.expose(), "");
    // No key material in Debug output.
    let d = format!("{c:?}");
    assert!(d.contains("ClientKey") && !d.contains("PRIVATE KEY"));

    let rsa = KeyFile::new(&test_keys::rsa_pem(2048));
    let c = pkjwt(rsa.path(), &[]).unwrap();
    assert_eq!(c.oidc.client_key.unwrap().alg(), AssertionAlg::Rs256);
    let c = pkjwt(rsa.path(), &[("OIDC_CLIENT_ASSERTION_ALG", "PS256")]).unwrap();
    assert_eq!(c.oidc.client_key.unwrap().alg(), AssertionAlg::Ps256);
    // A secret given as well is not kept (it cannot be sent by mistake), and that is said.
    let c = pkjwt(ec.path(), &[("OIDC_CLIENT_SECRET", "s3cret")]).unwrap();
    assert_eq!(c.oidc.client_secret.expose(), "");
    assert!(c.warnings.contains(
        &"OIDC_CLIENT_SECRET is set but not used: the client authenticates with private_key_jwt"
            .to_string()
    ));
    // A key file others may read is a warning; 0600 is quiet.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&ec.0, std::fs::Permissions::from_mode(0o644)).unwrap();
        let c = pkjwt(ec.path(), &[]).unwrap();
        assert!(
            c.warnings.contains(&format!(
                "OIDC_CLIENT_KEY_FILE `{}` is readable by group or others; restrict it to the gateway's user (chmod 600)",
                ec.path()
            )),
            "{:?}",
            c.warnings
        );
        std::fs::set_permissions(&ec.0, std::fs::Permissions::from_mode(0o600)).unwrap();
        let c = pkjwt(ec.path(), &[]).unwrap();
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    }
}

#[test]
fn private_key_jwt_problems_name_the_setting_and_file() {
    let missing = pkjwt("/nonexistent/portcullis/key.pem", &[]).unwrap_err();
    assert_eq!(missing.len(), 1, "{missing:?}");
    assert!(
        missing[0].starts_with(
            "OIDC_CLIENT_KEY_FILE `/nonexistent/portcullis/key.pem`: cannot read it: "
        ),
        "{missing:?}"
    );

    let not_pem = KeyFile::new("hello");
    assert_eq!(
        pkjwt(not_pem.path(), &[]).unwrap_err(),
        vec![format!(
            "OIDC_CLIENT_KEY_FILE `{}`: it is not a PEM file (expected a `-----BEGIN PRIVATE KEY-----` block)",
            not_pem.path()
        )]
    );
    let cert = KeyFile::new("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
    assert!(pkjwt(cert.path(), &[]).unwrap_err()[0].contains("it is not a PEM file"));
    let sec1 = KeyFile::new("-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n");
    assert_eq!(
        pkjwt(sec1.path(), &[]).unwrap_err(),
        vec![format!(
            "OIDC_CLIENT_KEY_FILE `{}`: it is a SEC1 (`EC PRIVATE KEY`) key; convert it to PKCS#8 (`openssl pkcs8 -topk8 -nocrypt -in KEY`)",
            sec1.path()
        )]
    );
    let garbage = KeyFile::new("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
    assert_eq!(
        pkjwt(garbage.path(), &[]).unwrap_err(),
        vec![format!(
            "OIDC_CLIENT_KEY_FILE `{}`: it is not an EC P-256 or RSA (2048 to 8192 bits) private key in PKCS#8",
            garbage.path()
        )]
    );
    let pkcs1 =
        KeyFile::new("-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n");
    assert_eq!(
        pkjwt(pkcs1.path(), &[]).unwrap_err(),
        vec![format!(
            "OIDC_CLIENT_KEY_FILE `{}`: it is a PKCS#1 (`RSA PRIVATE KEY`) key; convert it to PKCS#8 (`openssl pkcs8 -topk8 -nocrypt -in KEY`)",
            pkcs1.path()
        )]
    );
    let encrypted = KeyFile::new(
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
    );
    assert_eq!(
        pkjwt(encrypted.path(), &[]).unwrap_err(),
        vec![format!(
            "OIDC_CLIENT_KEY_FILE `{}`: it is an encrypted key; give an unencrypted PKCS#8 key (`openssl pkcs8 -topk8 -nocrypt`)",
            encrypted.path()
        )]
    );
    let bad_b64 = KeyFile::new("-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n");
    assert_eq!(
        pkjwt(bad_b64.path(), &[]).unwrap_err(),
        vec![format!(
            "OIDC_CLIENT_KEY_FILE `{}`: the PEM block is not valid base64",
            bad_b64.path()
        )]
    );
    // A DER file (binary) instead of PEM.
    let der = KeyFile::new("");
    std::fs::write(&der.0, [0x30u8, 0x82, 0xff, 0xfe, 0x00]).unwrap();
    let p = pkjwt(der.path(), &[]).unwrap_err();
    assert!(
        p[0].starts_with(&format!(
            "OIDC_CLIENT_KEY_FILE `{}`: cannot read it as text: ",
            der.path()
        )),
        "{p:?}"
    );
    let big = KeyFile::new(&"x".repeat(70 * 1024));
    assert!(
        pkjwt(big.path(), &[]).unwrap_err()[0]
            .ends_with("it is larger than 64 KiB; it is not a private key")
    );

    // The algorithm must fit the key.
    let ec = KeyFile::new(&test_keys::ec_p256_pem());
    assert_eq!(
        pkjwt(ec.path(), &[("OIDC_CLIENT_ASSERTION_ALG", "RS256")]).unwrap_err(),
        vec![format!(
            "OIDC_CLIENT_KEY_FILE `{}`: RS256 needs an RSA key, but the key is EC P-256",
            ec.path()
        )]
    );
    let rsa = KeyFile::new(&test_keys::rsa_pem(2048));
    assert_eq!(
        pkjwt(rsa.path(), &[("OIDC_CLIENT_ASSERTION_ALG", "ES256")]).unwrap_err(),
        vec![format!(
            "OIDC_CLIENT_KEY_FILE `{}`: ES256 needs an EC P-256 key, but the key is RSA",
            rsa.path()
        )]
    );
    assert_eq!(
        pkjwt(ec.path(), &[("OIDC_CLIENT_ASSERTION_ALG", "HS256")]).unwrap_err(),
        vec!["OIDC_CLIENT_ASSERTION_ALG `HS256` is not supported; use ES256, RS256 or PS256"]
    );

    // No key file at all.
    let p = problems(&[
        (
            "OIDC_DISCOVERY_URL",
            "https://idp.example.com/.well-known/openid-configuration",
        ),
        ("OIDC_CLIENT_ID", "portcullis"),
        ("JWT_SIGNING_SECRET", SECRET),
        ("OIDC_REDIRECT_URL", "https://app.example.com/api/callback"),
        ("OIDC_TOKEN_ENDPOINT_AUTH_METHOD", "private_key_jwt"),
    ]);
    assert_eq!(
        p,
        vec![
            "OIDC_TOKEN_ENDPOINT_AUTH_METHOD=private_key_jwt needs OIDC_CLIENT_KEY_FILE (clientKeyFile): a PKCS#8 PEM private key, EC P-256 or RSA of at least 2048 bits"
        ]
    );
}

#[test]
fn key_settings_without_private_key_jwt_and_unknown_methods_are_problems() {
    assert_eq!(
        problems(&with(&[
            ("OIDC_CLIENT_KEY_FILE", "/k.pem"),
            ("OIDC_CLIENT_KEY_ID", "k"),
            ("OIDC_CLIENT_ASSERTION_ALG", "ES256"),
        ])),
        vec![
            "OIDC_CLIENT_KEY_FILE is set, but it is used only with OIDC_TOKEN_ENDPOINT_AUTH_METHOD=private_key_jwt",
            "OIDC_CLIENT_KEY_ID is set, but it is used only with OIDC_TOKEN_ENDPOINT_AUTH_METHOD=private_key_jwt",
            "OIDC_CLIENT_ASSERTION_ALG is set, but it is used only with OIDC_TOKEN_ENDPOINT_AUTH_METHOD=private_key_jwt",
        ]
    );
    assert_eq!(
        problems(&with(&[(
            "OIDC_TOKEN_ENDPOINT_AUTH_METHOD",
            "tls_client_auth"
        )])),
        vec![
            "OIDC_TOKEN_ENDPOINT_AUTH_METHOD `tls_client_auth` is not supported; use client_secret_post, client_secret_basic or private_key_jwt"
        ]
    );
    // The secret stays required for the secret methods.
    let no_secret: Vec<_> = base()
        .into_iter()
        .filter(|(k, _)| *k != "OIDC_CLIENT_SECRET")
        .collect();
    assert_eq!(
        problems(&no_secret),
        vec!["OIDC_CLIENT_SECRET (secret) is required"]
    );
}

#[test]
fn pushed_authorization_requests_setting() {
    let c = load(&env(&base()), None).unwrap();
    assert_eq!(c.oidc.pushed_authorization_requests, ParMode::Auto);
    for (v, want) in [
        ("auto", ParMode::Auto),
        ("required", ParMode::Required),
        ("OFF", ParMode::Off),
    ] {
        let c = load(
            &env(&with(&[("OIDC_PUSHED_AUTHORIZATION_REQUESTS", v)])),
            None,
        )
        .unwrap();
        assert_eq!(c.oidc.pushed_authorization_requests, want);
    }
    assert_eq!(
        problems(&with(&[("OIDC_PUSHED_AUTHORIZATION_REQUESTS", "always")])),
        vec!["OIDC_PUSHED_AUTHORIZATION_REQUESTS must be auto, required or off, got `always`"]
    );
}

/// The YAML keys under `portcullis:` match the environment variables; the environment wins.
#[test]
fn client_auth_settings_from_yaml() {
    let key = KeyFile::new(&test_keys::rsa_pem(2048));
    let yaml = format!(
        "portcullis:\n  tokenEndpointAuthMethod: private_key_jwt\n  clientKeyFile: {}\n  clientKeyId: yaml-kid\n  clientAssertionAlg: PS256\n  pushedAuthorizationRequests: required\n",
        key.path()
    );
    let no_secret: Vec<_> = base()
        .into_iter()
        .filter(|(k, _)| *k != "OIDC_CLIENT_SECRET")
        .collect();
    let c = load(&env(&no_secret), Some(("p.yaml", &yaml))).unwrap();
    assert_eq!(c.oidc.auth_method, ClientAuthMethod::PrivateKeyJwt);
    let k = c.oidc.client_key.as_ref().unwrap();
    assert_eq!((k.alg(), k.kid()), (AssertionAlg::Ps256, Some("yaml-kid")));
    assert_eq!(c.oidc.pushed_authorization_requests, ParMode::Required);
    let mut over = no_secret.clone();
    over.push(("OIDC_CLIENT_KEY_ID", "env-kid"));
    over.push(("OIDC_PUSHED_AUTHORIZATION_REQUESTS", "off"));
    let c = load(&env(&over), Some(("p.yaml", &yaml))).unwrap();
    assert_eq!(c.oidc.client_key.unwrap().kid(), Some("env-kid"));
    assert_eq!(c.oidc.pushed_authorization_requests, ParMode::Off);
}

/// Provider profile settings: defaults, and every invalid value is a clear problem.
#[test]
fn provider_profile_settings_and_their_problems() {
    use crate::claim_sources::OverageOutcome;
    let c = load(&env(&base()), None).unwrap();
    assert_eq!(c.oidc.groups_overage.outcome, OverageOutcome::Deny);
    assert_eq!(c.oidc.groups_overage.source_origins, None);
    assert!(c.oidc.allowed_hosted_domains.is_empty());
    assert_eq!(c.oidc.expected_audience, None);

    let c = load(
        &env(&with(&[
            ("OIDC_GROUPS_OVERAGE", "no-groups"),
            ("OIDC_GROUPS_SOURCE_ORIGINS", "https://groups.corp.example"),
            ("OIDC_ALLOWED_HOSTED_DOMAINS", "Example.com, corp.example"),
            (
                "OIDC_EXPECTED_AUDIENCE",
                "microsoft:identityserver:portcullis",
            ),
        ])),
        None,
    )
    .unwrap();
    assert_eq!(c.oidc.groups_overage.outcome, OverageOutcome::NoGroups);
    assert_eq!(
        c.oidc.groups_overage.source_origins,
        Some(vec!["https://groups.corp.example".to_string()])
    );
    assert_eq!(
        c.oidc.allowed_hosted_domains,
        vec!["example.com", "corp.example"]
    );
    assert_eq!(
        c.oidc.expected_audience.as_deref(),
        Some("microsoft:identityserver:portcullis")
    );

    let p = problems(&with(&[
        ("OIDC_GROUPS_OVERAGE", "allow"),
        (
            "OIDC_GROUPS_SOURCE_ORIGINS",
            "http://graph.example,https://graph.microsoft.com/v1.0,nonsense",
        ),
        ("OIDC_ALLOWED_HOSTED_DOMAINS", "example.com,bad_domain"),
        ("OIDC_EXPECTED_AUDIENCE", "https://api.example"),
    ]));
    let has = |s: &str| p.iter().any(|x| x.contains(s));
    assert!(
        has("OIDC_GROUPS_OVERAGE must be deny or no-groups, got `allow`"),
        "{p:?}"
    );
    assert!(has("`http://graph.example` must be https"), "{p:?}");
    assert!(
        has("`https://graph.microsoft.com/v1.0` must be an origin only"),
        "{p:?}"
    );
    assert!(has("`nonsense` is not a valid URL"), "{p:?}");
    assert!(has("`bad_domain` is not a domain name"), "{p:?}");
    assert!(
        has("OIDC_EXPECTED_AUDIENCE `https://api.example` must name this client"),
        "{p:?}"
    );
    assert_eq!(p.len(), 6, "{p:?}");
}

/// YAML (`portcullis:` section, camelCase) carries the same settings.
#[test]
fn provider_profile_settings_from_yaml() {
    let raw = crate::config::parse_file(
        "c.yaml",
        "portcullis:\n  groupsOverage: no-groups\n  groupsSourceOrigins: [\"https://graph.microsoft.com\"]\n  allowedHostedDomains: [example.com]\n  expectedAudience: \"microsoft:identityserver:portcullis\"\n",
    )
    .unwrap();
    assert_eq!(raw.groups_overage.as_deref(), Some("no-groups"));
    assert_eq!(
        raw.groups_source_origins,
        Some(vec!["https://graph.microsoft.com".to_string()])
    );
    assert_eq!(
        raw.allowed_hosted_domains,
        Some(vec!["example.com".to_string()])
    );
    assert_eq!(
        raw.expected_audience.as_deref(),
        Some("microsoft:identityserver:portcullis")
    );
}

// --- an https upstream: custom CA and client certificate -------------------------------------

/// A CA, a client certificate it issued (with its PKCS#8 key), and a second, unrelated key.
struct TlsFiles {
    ca: KeyFile,
    cert: KeyFile,
    key: KeyFile,
    other_key: KeyFile,
}

fn tls_files() -> TlsFiles {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["portcullis".to_string()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    TlsFiles {
        ca: KeyFile::new(&ca_cert.pem()),
        cert: KeyFile::new(&cert.pem()),
        key: KeyFile::new(&key.serialize_pem()),
        other_key: KeyFile::new(&rcgen::KeyPair::generate().unwrap().serialize_pem()),
    }
}

fn upstream_problems(extra: &[(&str, &str)]) -> Vec<String> {
    let mut pairs: Vec<(&str, &str)> = base();
    pairs.extend_from_slice(extra);
    problems(&pairs)
}

#[test]
fn https_upstream_loads_ca_and_client_certificate_from_env_and_yaml() {
    let f = tls_files();
    let mut pairs: Vec<(&str, &str)> = base();
    pairs.extend_from_slice(&[
        ("PORTCULLIS_UPSTREAM", "https://app.internal:8443"),
        ("PORTCULLIS_UPSTREAM_CA_FILE", f.ca.path()),
        ("PORTCULLIS_UPSTREAM_CLIENT_CERT_FILE", f.cert.path()),
        ("PORTCULLIS_UPSTREAM_CLIENT_KEY_FILE", f.key.path()),
    ]);
    let c = load(&env(&pairs), None).unwrap();
    let ca = c.upstream_tls.ca_pem.as_deref().unwrap();
    assert!(ca.contains("BEGIN CERTIFICATE"));
    let id = c.upstream_tls.client.as_ref().unwrap();
    assert!(id.cert_pem.contains("BEGIN CERTIFICATE"));
    assert!(id.key_pem.expose().contains("PRIVATE KEY"));
    // No key material in Debug output.
    assert!(!format!("{c:?}").contains("PRIVATE KEY"));

    // The same from the YAML file, next to `upstream`.
    let yaml = format!(
        "clientId: a\nsecret: b\ndiscoveryUri: https://idp.example.com/.well-known/openid-configuration\nportcullis:\n  upstream: https://10.0.0.7:8443\n  upstreamCaFile: {}\n  upstreamClientCertFile: {}\n  upstreamClientKeyFile: {}\n",
        f.ca.path(),
        f.cert.path(),
        f.key.path()
    );
    let c = load(
        &env(&[
            ("JWT_SIGNING_SECRET", SECRET),
            ("OIDC_REDIRECT_URL", "https://app.example.com/loginCallback"),
        ]),
        Some(("auth.yaml", &yaml)),
    )
    .unwrap();
    assert!(c.upstream_tls.ca_pem.is_some() && c.upstream_tls.client.is_some());

    // Plain http and https without files need nothing.
    let c = load(&env(&with(&[("PORTCULLIS_UPSTREAM", "https://app")])), None).unwrap();
    assert_eq!(c.upstream_tls, UpstreamTls::default());
}

#[test]
fn upstream_tls_settings_need_an_https_upstream() {
    let f = tls_files();
    assert_eq!(
        upstream_problems(&[
            ("PORTCULLIS_UPSTREAM", "http://app:8080"),
            ("PORTCULLIS_UPSTREAM_CA_FILE", f.ca.path()),
        ]),
        vec![
            "PORTCULLIS_UPSTREAM_CA_FILE only apply to an https:// PORTCULLIS_UPSTREAM; the upstream is http://"
        ]
    );
    assert_eq!(
        upstream_problems(&[
            ("PORTCULLIS_UPSTREAM", "http://app:8080"),
            ("PORTCULLIS_UPSTREAM_CLIENT_CERT_FILE", f.cert.path()),
            ("PORTCULLIS_UPSTREAM_CLIENT_KEY_FILE", f.key.path()),
        ]),
        vec![
            "PORTCULLIS_UPSTREAM_CLIENT_CERT_FILE, PORTCULLIS_UPSTREAM_CLIENT_KEY_FILE only apply to an https:// PORTCULLIS_UPSTREAM; the upstream is http://"
        ]
    );
    assert_eq!(
        upstream_problems(&[("PORTCULLIS_UPSTREAM_CA_FILE", f.ca.path())]),
        vec!["PORTCULLIS_UPSTREAM_CA_FILE need an https:// PORTCULLIS_UPSTREAM; none is set"]
    );
}

#[test]
fn upstream_client_certificate_and_key_come_together() {
    let f = tls_files();
    let https = ("PORTCULLIS_UPSTREAM", "https://app:8443");
    assert_eq!(
        upstream_problems(&[
            https,
            ("PORTCULLIS_UPSTREAM_CLIENT_CERT_FILE", f.cert.path())
        ]),
        vec![
            "PORTCULLIS_UPSTREAM_CLIENT_CERT_FILE is set without PORTCULLIS_UPSTREAM_CLIENT_KEY_FILE: give both (the client certificate and its private key) or neither"
        ]
    );
    assert_eq!(
        upstream_problems(&[https, ("PORTCULLIS_UPSTREAM_CLIENT_KEY_FILE", f.key.path())]),
        vec![
            "PORTCULLIS_UPSTREAM_CLIENT_KEY_FILE is set without PORTCULLIS_UPSTREAM_CLIENT_CERT_FILE: give both (the client certificate and its private key) or neither"
        ]
    );
    // A key that is not the certificate's.
    assert_eq!(
        upstream_problems(&[
            https,
            ("PORTCULLIS_UPSTREAM_CLIENT_CERT_FILE", f.cert.path()),
            ("PORTCULLIS_UPSTREAM_CLIENT_KEY_FILE", f.other_key.path()),
        ]),
        vec![format!(
            "PORTCULLIS_UPSTREAM_CLIENT_KEY_FILE `{}` does not belong to PORTCULLIS_UPSTREAM_CLIENT_CERT_FILE `{}`: the key's public key is not the certificate's",
            f.other_key.path(),
            f.cert.path()
        )]
    );
}

#[test]
fn unreadable_or_invalid_upstream_tls_files_are_named() {
    let f = tls_files();
    let https = ("PORTCULLIS_UPSTREAM", "https://app:8443");
    let missing = "/nonexistent/portcullis/ca.pem";
    let p = upstream_problems(&[https, ("PORTCULLIS_UPSTREAM_CA_FILE", missing)]);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].starts_with(
            "PORTCULLIS_UPSTREAM_CA_FILE `/nonexistent/portcullis/ca.pem`: cannot read it: "
        ),
        "{p:?}"
    );

    let not_pem = KeyFile::new("hello\n");
    assert_eq!(
        upstream_problems(&[https, ("PORTCULLIS_UPSTREAM_CA_FILE", not_pem.path())]),
        vec![format!(
            "PORTCULLIS_UPSTREAM_CA_FILE `{}`: no certificate in it (expected `-----BEGIN CERTIFICATE-----` blocks)",
            not_pem.path()
        )]
    );
    // A key is not a CA bundle.
    assert_eq!(
        upstream_problems(&[https, ("PORTCULLIS_UPSTREAM_CA_FILE", f.key.path())]),
        vec![format!(
            "PORTCULLIS_UPSTREAM_CA_FILE `{}`: no certificate in it (expected `-----BEGIN CERTIFICATE-----` blocks)",
            f.key.path()
        )]
    );
    let bad_b64 = KeyFile::new("-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n");
    assert_eq!(
        upstream_problems(&[https, ("PORTCULLIS_UPSTREAM_CA_FILE", bad_b64.path())]),
        vec![format!(
            "PORTCULLIS_UPSTREAM_CA_FILE `{}`: a PEM block is not valid base64",
            bad_b64.path()
        )]
    );
    let garbage = KeyFile::new("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
    let p = upstream_problems(&[https, ("PORTCULLIS_UPSTREAM_CA_FILE", garbage.path())]);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].starts_with(&format!(
            "PORTCULLIS_UPSTREAM_CA_FILE `{}`: certificate 1 is not a valid CA certificate: ",
            garbage.path()
        )),
        "{p:?}"
    );

    // Client certificate file without a certificate, key file without a key, both reported.
    let p = upstream_problems(&[
        https,
        ("PORTCULLIS_UPSTREAM_CLIENT_CERT_FILE", f.key.path()),
        ("PORTCULLIS_UPSTREAM_CLIENT_KEY_FILE", f.cert.path()),
    ]);
    assert_eq!(
        p,
        vec![
            format!(
                "PORTCULLIS_UPSTREAM_CLIENT_CERT_FILE `{}`: no certificate in it (expected `-----BEGIN CERTIFICATE-----` blocks)",
                f.key.path()
            ),
            format!(
                "PORTCULLIS_UPSTREAM_CLIENT_KEY_FILE `{}`: no private key in it (expected a `PRIVATE KEY`, `RSA PRIVATE KEY` or `EC PRIVATE KEY` block)",
                f.cert.path()
            ),
        ]
    );
    let missing_key = "/nonexistent/portcullis/key.pem";
    let p = upstream_problems(&[
        https,
        ("PORTCULLIS_UPSTREAM_CLIENT_CERT_FILE", f.cert.path()),
        ("PORTCULLIS_UPSTREAM_CLIENT_KEY_FILE", missing_key),
    ]);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].starts_with("PORTCULLIS_UPSTREAM_CLIENT_KEY_FILE `/nonexistent/portcullis/key.pem`: cannot read it: "),
        "{p:?}"
    );
    let encrypted = KeyFile::new(
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
    );
    assert_eq!(
        upstream_problems(&[
            https,
            ("PORTCULLIS_UPSTREAM_CLIENT_CERT_FILE", f.cert.path()),
            ("PORTCULLIS_UPSTREAM_CLIENT_KEY_FILE", encrypted.path()),
        ]),
        vec![format!(
            "PORTCULLIS_UPSTREAM_CLIENT_KEY_FILE `{}`: it is an encrypted key; give an unencrypted one",
            encrypted.path()
        )]
    );
    // A PEM key block whose content is no key rustls can use.
    let junk_key = KeyFile::new("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
    let p = upstream_problems(&[
        https,
        ("PORTCULLIS_UPSTREAM_CLIENT_CERT_FILE", f.cert.path()),
        ("PORTCULLIS_UPSTREAM_CLIENT_KEY_FILE", junk_key.path()),
    ]);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].starts_with(&format!(
            "PORTCULLIS_UPSTREAM_CLIENT_KEY_FILE `{}` does not belong to PORTCULLIS_UPSTREAM_CLIENT_CERT_FILE `{}`: the key is not usable: ",
            junk_key.path(),
            f.cert.path()
        )),
        "{p:?}"
    );
}

/// Several identity providers: the environment's IdP plus the file's list.
const TWO_IDPS: &str = r#"
portcullis:
  idpName: Example Staff
  idpEmailDomains: [Example.com]
  identityProviders:
    - id: partner
      name: Partner Corp
      emailDomains: ["@partner.example", partner.example.org]
      discoveryUri: https://login.partner.example/.well-known/openid-configuration
      clientId: gw-at-partner
      secret: partner-secret
      scope: [openid, email, offline_access]
      claims:
        groups: roles
      roles:
        admin: [partner-admins]
"#;

fn load_yaml(yaml: &str, extra: &[(&'static str, &'static str)]) -> Result<Config, Vec<String>> {
    load(&env(&with(extra)), Some(("portcullis.yaml", yaml)))
        .map_err(|p| p.into_iter().map(|p| p.0).collect())
}

#[test]
fn several_idps_load_from_the_file_list() {
    let c = load_yaml(TWO_IDPS, &[]).unwrap();
    assert_eq!(c.idp_label.id, PRIMARY_IDP_ID);
    assert_eq!(c.idp_label.name, "Example Staff");
    assert_eq!(c.idp_label.email_domains, vec!["example.com"]);
    assert_eq!(c.more_idps.len(), 1);
    let p = &c.more_idps[0];
    assert_eq!(p.label.id, "partner");
    assert_eq!(p.label.name, "Partner Corp");
    assert_eq!(
        p.label.email_domains,
        vec!["partner.example", "partner.example.org"]
    );
    assert_eq!(p.oidc.client_id, "gw-at-partner");
    assert_eq!(p.oidc.client_secret.expose(), "partner-secret");
    assert_eq!(p.oidc.claim_keys.groups, "roles");
    // Its own callback: the top-level callback path plus its id (RFC 9700 §4.4.2).
    assert_eq!(
        p.oidc.redirect_url.as_str(),
        "https://app.example.com/api/callback/partner"
    );
    assert_eq!(
        p.oidc.expected_issuer().as_deref(),
        Some("https://login.partner.example")
    );
    assert!(p.oidc.offline_access);
    assert!(!c.oidc.offline_access);
    // Offline access is on for the gateway when any IdP asks for it.
    assert!(c.offline.enabled);
    assert!(p.roles.as_ref().unwrap().contains("admin"));
    // The environment's IdP is unchanged by the list.
    assert_eq!(c.oidc.client_id, "portcullis");
    assert_eq!(c.callback_path(), "/api/callback");
}

#[test]
fn a_single_idp_gets_a_default_chooser_name() {
    let c = load(&env(&base()), None).unwrap();
    assert_eq!(c.idp_label.name, "idp.example.com");
    assert!(c.more_idps.is_empty());
    let c = load(
        &env(&with(&[
            ("OIDC_DISPLAY_NAME", "Staff"),
            ("OIDC_EMAIL_DOMAINS", "a.example,b.example"),
        ])),
        None,
    )
    .unwrap();
    assert_eq!(c.idp_label.name, "Staff");
    assert_eq!(c.idp_label.email_domains, vec!["a.example", "b.example"]);
}

#[test]
fn r_cfg_several_idps_must_be_told_apart() {
    let yaml = r#"
portcullis:
  idpEmailDomains: [example.com]
  identityProviders:
    - name: No id
      discoveryUri: https://a.example/.well-known/openid-configuration
      clientId: a
      secret: s
    - id: Bad_Id
      discoveryUri: https://b.example/.well-known/openid-configuration
      clientId: b
      secret: s
    - id: default
      discoveryUri: https://c.example/.well-known/openid-configuration
      clientId: c
      secret: s
    - id: same-issuer
      discoveryUri: https://idp.example.com/.well-known/openid-configuration
      clientId: d
      secret: s
    - id: same-domain
      emailDomains: [example.com, "not a domain"]
      discoveryUri: https://e.example/.well-known/openid-configuration
      clientId: e
      secret: s
    - id: same-path
      redirectUri: https://app.example.com/api/callback
      discoveryUri: https://f.example/.well-known/openid-configuration
      clientId: f
      secret: s
    - id: elsewhere
      redirectUri: https://evil.example/api/callback
      discoveryUri: https://g.example/.well-known/openid-configuration
      clientId: g
      secret: s
    - id: manual
      authorizationEndpoint: https://h.example/authorize
      tokenEndpoint: https://h.example/token
      clientId: h
      secret: s
    - id: no-client
      discoveryUri: http://i.example/.well-known/openid-configuration
"#;
    let p = load_yaml(yaml, &[]).unwrap_err();
    let has = |needle: &str| {
        assert!(
            p.iter().any(|x| x.contains(needle)),
            "no problem containing {needle:?} in {p:#?}"
        )
    };
    has("identityProviders[0] (#0): `id` is required");
    has("identityProviders[1] (#1): id `Bad_Id` must be");
    has("identityProviders[2] (#2): id `default` is used twice");
    has(
        "identityProviders[3] (same-issuer): issuer `https://idp.example.com` is also IdP `default`'s",
    );
    has(
        "identityProviders[4] (same-domain): email domain `example.com` is already routed to IdP `default`",
    );
    has("identityProviders[4] (same-domain): emailDomains: `not a domain` is not a domain name");
    has(
        "identityProviders[5] (same-path): redirectUri path `/api/callback` is already IdP `default`'s",
    );
    has(
        "identityProviders[6] (elsewhere): redirectUri `https://evil.example/api/callback` must have the same origin",
    );
    has("identityProviders[7] (manual): set discoveryUri (or issuer)");
    has("identityProviders[8] (no-client): OIDC_CLIENT_ID (clientId) is required");
    has("identityProviders[8] (no-client): OIDC_DISCOVERY_URL uses plain http");
}

#[test]
fn r_cfg_idp_list_typo_is_an_error_with_line() {
    let yaml = "portcullis:\n  identityProviders:\n    - id: x\n      clientID: y\n";
    let p = load_yaml(yaml, &[]).unwrap_err();
    assert!(p[0].contains("clientID"), "{p:?}");
    assert!(p[0].contains("line"), "{p:?}");
}
