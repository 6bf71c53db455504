//! `portcullis doctor` against the real OP (tests/harness/op.mjs, served over https with a
//! private CA): a right configuration passes every check (exit 0, JSON parses), and each way of
//! getting it wrong is reported by the check that owns it, with a fix, and exit 1.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use serde_json::{Value, json};

#[path = "../../gateway/tests/common/mod.rs"]
mod common;

use common::{CLIENT_ID, CLIENT_SECRET, JWT_SECRET, Op, TempDir, Upstream};

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

struct Pki {
    ca_path: std::path::PathBuf,
    leaf_path: std::path::PathBuf,
    key_path: std::path::PathBuf,
}

/// A private CA and a leaf for 127.0.0.1; `expires` = (year, month, day) of the leaf's end.
fn pki(dir: &TempDir, tag: &str, expires: Option<(i32, u8, u8)>) -> Pki {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    };
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Portcullis doctor test CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let mut leaf = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    leaf.distinguished_name
        .push(DnType::CommonName, "127.0.0.1");
    leaf.use_authority_key_identifier_extension = true;
    leaf.extended_key_usages
        .push(rcgen::ExtendedKeyUsagePurpose::ServerAuth);
    if let Some((y, m, d)) = expires {
        leaf.not_after = rcgen::date_time_ymd(y, m, d);
    }
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = leaf.signed_by(&leaf_key, &issuer).unwrap();
    let p = |n: &str| dir.0.join(format!("{tag}-{n}"));
    std::fs::write(p("ca.pem"), ca_cert.pem()).unwrap();
    std::fs::write(p("leaf.pem"), leaf.pem()).unwrap();
    std::fs::write(p("key.pem"), leaf_key.serialize_pem()).unwrap();
    Pki {
        ca_path: p("ca.pem"),
        leaf_path: p("leaf.pem"),
        key_path: p("key.pem"),
    }
}

fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Vec<Value> {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", self.stdout, self.stderr))
    }
}

/// `portcullis doctor ARGS` with exactly `env` (plus PATH/HOME).
async fn doctor(args: &[&str], env: &[(String, String)]) -> Run {
    let mut c = tokio::process::Command::new(BIN);
    c.env_clear();
    for k in ["PATH", "HOME"] {
        if let Ok(v) = std::env::var(k) {
            c.env(k, v);
        }
    }
    c.arg("doctor").args(args).envs(env.iter().cloned());
    c.kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(60), c.output())
        .await
        .expect("doctor did not finish within 60 s")
        .unwrap();
    let r = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    // `DOCTOR_SHOW=1 cargo test --test doctor -- --nocapture` shows every report.
    if std::env::var_os("DOCTOR_SHOW").is_some() {
        eprintln!(
            "$ portcullis doctor {}\n{}{}",
            args.join(" "),
            r.stdout,
            r.stderr
        );
    }
    r
}

/// The finding of `check` (the first one, asserting there is one).
fn find<'a>(findings: &'a [Value], check: &str) -> &'a Value {
    findings
        .iter()
        .find(|f| f["check"] == check)
        .unwrap_or_else(|| panic!("no `{check}` finding in {findings:#?}"))
}

fn verdict(findings: &[Value], check: &str) -> String {
    find(findings, check)["verdict"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Assert `check` is a problem whose detail contains `detail` and whose fix contains `fix`,
/// that the exit code is 1, and that no other check is a problem unless listed in `also`.
fn assert_problem(r: &Run, check: &str, detail: &str, fix: &str, also: &[&str]) {
    let f = r.json();
    assert_eq!(r.code, 1, "{}", r.stdout);
    let e = find(&f, check);
    assert_eq!(e["verdict"], "problem", "{e}");
    assert!(
        e["detail"].as_str().unwrap().contains(detail),
        "{check} detail: {e}"
    );
    assert!(e["fix"].as_str().unwrap().contains(fix), "{check} fix: {e}");
    for other in &f {
        if other["verdict"] == "problem" && other["check"] != check {
            assert!(
                also.contains(&other["check"].as_str().unwrap()),
                "unexpected problem {other} (looking at {check})"
            );
        }
    }
}

struct Setup {
    _dir: TempDir,
    op: Op,
    _upstream: Upstream,
    env: Vec<(String, String)>,
    claims_file: String,
}

impl Setup {
    fn env_with(&self, changes: &[(&str, Option<&str>)]) -> Vec<(String, String)> {
        let mut env = self.env.clone();
        for (k, v) in changes {
            env.retain(|(n, _)| n != k);
            if let Some(v) = v {
                env.push((k.to_string(), v.to_string()));
            }
        }
        env
    }
}

/// An https OP signed by a private CA, a registered redirect URI, a running upstream, a
/// migrated SQLite database, roles, and a claims sample of alice.
async fn setup() -> Setup {
    let dir = TempDir::new();
    let pki = pki(&dir, "ok", None);
    let public = format!("http://127.0.0.1:{}", closed_port());
    let redirect = format!("{public}/api/callback");
    // Both callbacks: seed 000's default and seed 001's (with an authentication.yaml).
    let mut client = common::client(&redirect, "client_secret_post", "RS256");
    client["redirect_uris"] = json!([redirect, format!("{public}/loginCallback")]);
    let op = Op::start(json!({
        "tls": {"cert": pki.leaf_path, "key": pki.key_path},
        "clients": [client],
    }))
    .await;
    let upstream = Upstream::start().await;
    let db = dir.0.join("p.db");
    portcullis_store::Store::open_sqlite(db.to_str().unwrap())
        .await
        .unwrap();
    let claims_file = dir.0.join("alice.json");
    std::fs::write(
        &claims_file,
        json!({"iss": op.issuer, "sub": "alice-sub-0001", "email": "alice@example.com",
            "email_verified": true, "name": "Alice Liddell", "preferred_username": "alice",
            "groups": ["admins", "devs"]})
        .to_string(),
    )
    .unwrap();
    let env = [
        ("OIDC_DISCOVERY_URL", op.discovery_url()),
        (
            "OIDC_SIGNER_PEM_URL",
            url::Url::from_file_path(&pki.ca_path).unwrap().to_string(),
        ),
        ("OIDC_CLIENT_ID", CLIENT_ID.into()),
        ("OIDC_CLIENT_SECRET", CLIENT_SECRET.into()),
        ("JWT_SIGNING_SECRET", JWT_SECRET.into()),
        ("PORTCULLIS_PUBLIC_URL", public),
        ("PORTCULLIS_UPSTREAM", format!("http://{}", upstream.addr)),
        (
            "PORTCULLIS_DATABASE_URL",
            format!("sqlite://{}", db.display()),
        ),
        ("PORTCULLIS_ROLES", r#"{"admin":["admins"]}"#.into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    Setup {
        _dir: dir,
        op,
        _upstream: upstream,
        env,
        claims_file: claims_file.display().to_string(),
    }
}

const ALL_CHECKS: &[&str] = &[
    "configuration",
    "jwt-signing-secret",
    "client-secret",
    "redirect-uri",
    "cors-origins",
    "sessions",
    "discovery",
    "issuer",
    "idp-endpoints",
    "tls",
    "tls-certificate",
    "clock-skew",
    "jwks",
    "jws-algorithm",
    "scopes",
    "response-type",
    "pkce",
    "token-endpoint-auth",
    "pushed-authorization",
    "backchannel-logout",
    "redirect-uri-registered",
    "claims",
    "groups",
    "upstream",
    "database",
];

/// Right: every check ok, exit 0, in the documented order; the text form has one aligned line
/// per check, verdict first, and no colour when stdout is not a terminal; no secret printed.
#[tokio::test]
async fn a_right_configuration_passes_every_check() {
    let s = setup().await;
    let r = doctor(&["--json", "--claims", &s.claims_file], &s.env).await;
    let f = r.json();
    let checks: Vec<&str> = f.iter().map(|e| e["check"].as_str().unwrap()).collect();
    assert_eq!(checks, ALL_CHECKS, "{}", r.stdout);
    for e in &f {
        assert_eq!(e["verdict"], "ok", "{e}");
        assert_eq!(e["fix"], Value::Null, "{e}");
        assert_eq!(e.as_object().unwrap().len(), 4, "{e}");
    }
    assert_eq!(r.code, 0);
    assert!(
        find(&f, "redirect-uri-registered")["detail"]
            .as_str()
            .unwrap()
            .starts_with("accepted: the IdP redirects to its sign-in page")
    );
    assert!(
        find(&f, "tls")["detail"]
            .as_str()
            .unwrap()
            .contains("system roots + the custom CA")
    );
    assert!(
        find(&f, "groups")["detail"]
            .as_str()
            .unwrap()
            .contains("role(s): admin")
    );

    // The probe request was a real authorization request with PKCE S256.
    let auth =
        s.op.log()
            .await
            .into_iter()
            .find(|e| e["path"] == "/auth")
            .unwrap();
    assert_eq!(auth["query"]["code_challenge_method"], "S256");
    assert_eq!(auth["query"]["response_type"], "code");
    assert_eq!(auth["query"]["client_id"], CLIENT_ID);

    let text = doctor(&["--claims", &s.claims_file], &s.env).await;
    assert_eq!(text.code, 0);
    assert!(!text.stdout.contains('\x1b'));
    let lines: Vec<&str> = text.stdout.lines().collect();
    assert!(
        lines[0].starts_with("ok       configuration            "),
        "{}",
        text.stdout
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("ok       issuer                   `https://127.0.0.1:"))
    );
    assert!(
        text.stdout
            .ends_with("25 check(s): 0 problem(s), 0 warning(s)\n"),
        "{}",
        text.stdout
    );
    for secret in [CLIENT_SECRET, JWT_SECRET] {
        assert!(!text.stdout.contains(secret) && !r.stdout.contains(secret));
    }

    // The same sources as `serve`: seed 001's authentication.yaml, the environment on top.
    let yaml = s._dir.0.join("authentication.yaml");
    std::fs::write(
        &yaml,
        format!(
            "clientId: \"{CLIENT_ID}\"\nsecret: \"{CLIENT_SECRET}\"\ndiscoveryUri: \"{}\"\njwsAlgorithm: RS256\nscope: [\"openid\", \"email\"]\nusernameField: email\ngroupsField: groups\nadmin: [\"admins\"]\n",
            s.op.discovery_url()
        ),
    )
    .unwrap();
    let env = s.env_with(&[
        ("OIDC_DISCOVERY_URL", None),
        ("OIDC_CLIENT_ID", None),
        ("OIDC_CLIENT_SECRET", None),
        ("PORTCULLIS_ROLES", None),
    ]);
    let r = doctor(
        &[
            "--json",
            "--config",
            yaml.to_str().unwrap(),
            "--claims",
            &s.claims_file,
        ],
        &env,
    )
    .await;
    let f = r.json();
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(f.iter().all(|e| e["verdict"] == "ok"), "{}", r.stdout);
    assert!(
        find(&f, "redirect-uri")["detail"]
            .as_str()
            .unwrap()
            .contains("/loginCallback")
    );
    assert_eq!(
        find(&f, "scopes")["detail"],
        "openid email all advertised by the IdP"
    );

    // Seed 000's manual endpoints: the discovery document is found under the authorization
    // endpoint, as `serve` finds it, and every check still runs.
    let env = s.env_with(&[
        ("OIDC_DISCOVERY_URL", None),
        (
            "OIDC_AUTHORIZATION_ENDPOINT",
            Some(&format!("{}/auth", s.op.issuer)),
        ),
        (
            "OIDC_TOKEN_ENDPOINT",
            Some(&format!("{}/token", s.op.issuer)),
        ),
        (
            "OIDC_USERINFO_ENDPOINT",
            Some(&format!("{}/me", s.op.issuer)),
        ),
    ]);
    let r = doctor(&["--json", "--claims", &s.claims_file], &env).await;
    let f = r.json();
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(f.iter().all(|e| e["verdict"] == "ok"), "{}", r.stdout);
    assert_eq!(f.len(), ALL_CHECKS.len());

    // Without --claims: the claim checks say how to run them, and still exit 0.
    let r = doctor(&["--json"], &s.env).await;
    assert_eq!(r.code, 0);
    let f = r.json();
    assert_eq!(verdict(&f, "claims"), "skipped");
    assert!(
        find(&f, "claims")["detail"]
            .as_str()
            .unwrap()
            .contains("--claims FILE")
    );
}

/// Wrong, in every way the guides' troubleshooting tables name and more; each is reported by
/// its own check with the fix, and exits 1.
#[tokio::test]
async fn each_wrong_configuration_is_named_with_its_fix() {
    let s = setup().await;
    let j = |r: &Run| r.json();

    // The classic trailing-slash issuer.
    s.op.mode(json!({"discovery": {"issuer": format!("{}/", s.op.issuer)}}))
        .await;
    let r = doctor(&["--json"], &s.env).await;
    assert_problem(&r, "issuer", "must be identical", "trailing slash", &[]);
    s.op.control("reset", json!({})).await;

    // Redirect URI not registered at the OP (seed 000: 401 after IdP login).
    let other = format!("http://127.0.0.1:{}", closed_port());
    let r = doctor(
        &["--json"],
        &s.env_with(&[("PORTCULLIS_PUBLIC_URL", Some(&other))]),
    )
    .await;
    assert_problem(
        &r,
        "redirect-uri-registered",
        "the IdP refused the authorization request: invalid_redirect_uri: redirect_uri did not match any of the client's registered redirect_uris",
        &format!("register exactly {other}/api/callback"),
        &[],
    );

    // A scope the OP does not offer.
    let r = doctor(
        &["--json"],
        &s.env_with(&[("OIDC_SCOPES", Some("openid,email,calendar"))]),
    )
    .await;
    assert_problem(
        &r,
        "scopes",
        "does not offer: calendar",
        "remove the scope",
        &["redirect-uri-registered"],
    );

    // jwsAlgorithm the OP has no key for.
    let r = doctor(
        &["--json"],
        &s.env_with(&[("OIDC_JWS_ALGORITHM", Some("ES384"))]),
    )
    .await;
    assert_problem(
        &r,
        "jws-algorithm",
        "jwsAlgorithm is ES384",
        "OIDC_JWS_ALGORITHM",
        &[],
    );
    assert_eq!(verdict(&j(&r), "jwks"), "ok");

    // Token endpoint auth method the client/IdP does not list.
    s.op.mode(
        json!({"discovery": {"token_endpoint_auth_methods_supported": ["client_secret_basic"],
        "code_challenge_methods_supported": ["plain"]}}),
    )
    .await;
    let r = doctor(&["--json"], &s.env).await;
    assert_problem(
        &r,
        "token-endpoint-auth",
        "client_secret_post",
        "OIDC_TOKEN_ENDPOINT_AUTH_METHOD=client_secret_basic",
        &["pkce"],
    );
    assert_eq!(verdict(&j(&r), "pkce"), "problem");
    s.op.control("reset", json!({})).await;

    // A discovery document over the body cap.
    s.op.mode(json!({"discovery": {"padding": "x".repeat(300 * 1024)}}))
        .await;
    let r = doctor(&["--json"], &s.env).await;
    assert_problem(
        &r,
        "discovery",
        "answered more than 262144 bytes",
        "not a portal page",
        &[],
    );
    s.op.control("reset", json!({})).await;

    // The custom CA missing: TLS verification fails (seed 000: SSL certificate errors).
    let r = doctor(&["--json"], &s.env_with(&[("OIDC_SIGNER_PEM_URL", None)])).await;
    assert_problem(
        &r,
        "tls",
        "TLS to 127.0.0.1 failed",
        "set OIDC_SIGNER_PEM_URL",
        &["discovery"],
    );
    assert!(
        find(&j(&r), "discovery")["fix"]
            .as_str()
            .unwrap()
            .contains("`tls`")
    );

    // A short signing secret: a problem, and the IdP checks wait for a valid configuration.
    let r = doctor(
        &["--json"],
        &s.env_with(&[("JWT_SIGNING_SECRET", Some("too-short"))]),
    )
    .await;
    assert_problem(
        &r,
        "jwt-signing-secret",
        "9 characters; at least 32",
        "openssl rand -base64 32",
        &[],
    );
    assert_eq!(verdict(&j(&r), "idp"), "skipped");
    assert!(!r.stdout.contains("too-short"));
    // A long but low-entropy one: a warning only (exit 0).
    let weak = "a".repeat(40);
    let r = doctor(
        &["--json", "--claims", &s.claims_file],
        &s.env_with(&[("JWT_SIGNING_SECRET", Some(&weak))]),
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert_eq!(verdict(&j(&r), "jwt-signing-secret"), "warning");
    assert!(!r.stdout.contains(&weak));

    // Database unreachable; its password never printed.
    let pg = format!(
        "postgres://portcullis:hunter2-secret@127.0.0.1:{}/p",
        closed_port()
    );
    let r = doctor(
        &["--json"],
        &s.env_with(&[("PORTCULLIS_DATABASE_URL", Some(&pg))]),
    )
    .await;
    assert_problem(
        &r,
        "database",
        "cannot open PostgreSQL postgres://portcullis@127.0.0.1:",
        "PORTCULLIS_DATABASE_URL",
        &[],
    );
    assert!(!r.stdout.contains("hunter2"));

    // Upstream down.
    let down = format!("http://127.0.0.1:{}", closed_port());
    let r = doctor(
        &["--json"],
        &s.env_with(&[("PORTCULLIS_UPSTREAM", Some(&down))]),
    )
    .await;
    assert_problem(&r, "upstream", &down, "start the application", &[]);

    // Claims: no groups claim while roles are configured.
    let no_groups = s._dir.0.join("bob.json");
    std::fs::write(
        &no_groups,
        r#"{"sub":"bob","email":"b@example.com","name":"B","preferred_username":"b"}"#,
    )
    .unwrap();
    let r = doctor(&["--json", "--claims", no_groups.to_str().unwrap()], &s.env).await;
    assert_problem(&r, "groups", "`groups`", "groupsField", &[]);

    // CORS origin with a path.
    let r = doctor(
        &["--json"],
        &s.env_with(&[(
            "PORTCULLIS_CORS_ORIGINS",
            Some("https://app.example.com/ui"),
        )]),
    )
    .await;
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(r.json().iter().any(|f| f["verdict"] == "problem"
        && (f["check"] == "cors-origins" || f["check"] == "configuration")));

    // An unreadable --claims file: doctor cannot run (exit 2).
    let r = doctor(&["--claims", "/nonexistent/claims.json"], &s.env).await;
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("cannot read /nonexistent/claims.json"));
}

/// The IdP unreachable: discovery is the problem, the checks that need it are skipped.
#[tokio::test]
async fn an_unreachable_idp_is_a_discovery_problem() {
    let port = closed_port();
    let env: Vec<(String, String)> = [
        (
            "OIDC_DISCOVERY_URL",
            format!("http://127.0.0.1:{port}/.well-known/openid-configuration"),
        ),
        ("OIDC_ALLOW_INSECURE_HTTP", "true".into()),
        ("OIDC_CLIENT_ID", CLIENT_ID.into()),
        ("OIDC_CLIENT_SECRET", CLIENT_SECRET.into()),
        ("JWT_SIGNING_SECRET", JWT_SECRET.into()),
        ("PORTCULLIS_PUBLIC_URL", "http://127.0.0.1:8080".into()),
        (
            "PORTCULLIS_DATABASE_URL",
            "sqlite:///nonexistent-dir/p.db".into(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let r = doctor(&["--json"], &env).await;
    assert_problem(
        &r,
        "discovery",
        "Connection refused",
        "host name, port, DNS and firewalls",
        &[],
    );
    let f = r.json();
    assert_eq!(verdict(&f, "configuration"), "warning"); // the insecure flag
    assert_eq!(verdict(&f, "idp"), "skipped");
    assert_eq!(verdict(&f, "database"), "warning");
    assert_eq!(verdict(&f, "upstream"), "warning");
}

/// A certificate that expires in a few days is a warning (exit 0), with the date.
#[tokio::test]
async fn a_certificate_expiring_soon_is_a_warning() {
    let dir = TempDir::new();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let date = portcullis_core::doctor::format_date(now + 5 * 86_400);
    let ymd: Vec<i32> = date.split('-').map(|p| p.parse().unwrap()).collect();
    let pki = pki(&dir, "soon", Some((ymd[0], ymd[1] as u8, ymd[2] as u8)));
    let public = "http://127.0.0.1:8080";
    let op = Op::start(json!({
        "tls": {"cert": pki.leaf_path, "key": pki.key_path},
        "clients": [common::client(&format!("{public}/api/callback"), "client_secret_post", "RS256")],
    }))
    .await;
    let env: Vec<(String, String)> = [
        ("OIDC_DISCOVERY_URL", op.discovery_url()),
        (
            "OIDC_SIGNER_PEM_URL",
            std::fs::read_to_string(&pki.ca_path).unwrap(),
        ),
        ("OIDC_CLIENT_ID", CLIENT_ID.into()),
        ("OIDC_CLIENT_SECRET", CLIENT_SECRET.into()),
        ("JWT_SIGNING_SECRET", JWT_SECRET.into()),
        ("PORTCULLIS_PUBLIC_URL", public.into()),
        (
            "PORTCULLIS_DATABASE_URL",
            format!("sqlite://{}/p.db", dir.0.display()),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let r = doctor(&["--json"], &env).await;
    let f = r.json();
    assert_eq!(r.code, 0, "{}", r.stdout);
    let e = find(&f, "tls-certificate");
    assert_eq!(e["verdict"], "warning", "{e}");
    let d = e["detail"].as_str().unwrap();
    assert!(
        d.contains(&date) && (d.contains("in 4 day(s)") || d.contains("in 5 day(s)")),
        "{d}"
    );
    assert_eq!(verdict(&f, "tls"), "ok");
}

/// private_key_jwt and pushed authorization requests: the key's public JWK is shown, PAR is
/// reported in use, and the probe pushes its request with a client assertion first (so a key
/// the IdP does not know is found by doctor, not at the first sign-in).
#[tokio::test]
async fn private_key_jwt_with_pushed_authorization_requests() {
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
    use base64::Engine;
    let pem_of = || {
        let doc = EcdsaKeyPair::generate_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &aws_lc_rs::rand::SystemRandom::new(),
        )
        .unwrap();
        format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            base64::engine::general_purpose::STANDARD.encode(doc.as_ref())
        )
    };
    let dir = TempDir::new();
    let (registered, other) = (pem_of(), pem_of());
    let jwk = portcullis_core::oidc::client_assertion::ClientKey::from_pem(
        &registered,
        None,
        Some("k1".into()),
    )
    .unwrap()
    .public_jwk();
    let public = format!("http://127.0.0.1:{}", closed_port());
    let redirect = format!("{public}/api/callback");
    let op = Op::start(json!({
        "par": {"required": true},
        "clients": [{
            "client_id": CLIENT_ID,
            "redirect_uris": [redirect],
            "token_endpoint_auth_method": "private_key_jwt",
            "token_endpoint_auth_signing_alg": "ES256",
            "jwks": {"keys": [jwk]},
        }],
    }))
    .await;
    let key_file = |name: &str, pem: &str| {
        let p = dir.0.join(name);
        std::fs::write(&p, pem).unwrap();
        p.display().to_string()
    };
    let (good, wrong) = (
        key_file("good.pem", &registered),
        key_file("wrong.pem", &other),
    );
    let env = |key: &str| -> Vec<(String, String)> {
        [
            ("OIDC_DISCOVERY_URL", op.discovery_url()),
            ("OIDC_ALLOW_INSECURE_HTTP", "true".into()),
            ("OIDC_CLIENT_ID", CLIENT_ID.into()),
            ("OIDC_TOKEN_ENDPOINT_AUTH_METHOD", "private_key_jwt".into()),
            ("OIDC_CLIENT_KEY_FILE", key.into()),
            ("OIDC_CLIENT_KEY_ID", "k1".into()),
            ("JWT_SIGNING_SECRET", JWT_SECRET.into()),
            ("PORTCULLIS_PUBLIC_URL", public.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    };

    let r = doctor(&["--json"], &env(&good)).await;
    let f = r.json();
    assert!(
        f.iter().all(|e| e["check"] != "client-secret"),
        "{}",
        r.stdout
    );
    let key = find(&f, "client-key");
    assert_eq!(key["verdict"], "ok");
    let detail = key["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("private_key_jwt with an ES256 key (kid `k1`)"),
        "{detail}"
    );
    assert!(detail.contains(jwk["x"].as_str().unwrap()), "{detail}");
    assert_eq!(verdict(&f, "token-endpoint-auth"), "ok");
    let par = find(&f, "pushed-authorization");
    assert_eq!(par["verdict"], "ok");
    assert!(
        par["detail"].as_str().unwrap().starts_with("in use"),
        "{par}"
    );
    assert_eq!(verdict(&f, "redirect-uri-registered"), "ok", "{}", r.stdout);
    let log = op.log().await;
    let pushed: Vec<&Value> = log.iter().filter(|e| e["path"] == "/request").collect();
    assert_eq!(pushed.len(), 1);
    assert_eq!(
        pushed[0]["form"]["client_assertion_type"],
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    );
    let auth = log.iter().find(|e| e["path"] == "/auth").unwrap();
    let keys: Vec<&String> = auth["query"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["client_id", "request_uri"]);

    // A key the IdP does not know: the push is refused and doctor says so.
    let r = doctor(&["--json"], &env(&wrong)).await;
    let f = r.json();
    let probe = find(&f, "redirect-uri-registered");
    assert_eq!(probe["verdict"], "problem");
    assert!(
        probe["detail"]
            .as_str()
            .unwrap()
            .contains("the pushed authorization request failed")
            && probe["detail"].as_str().unwrap().contains("invalid_client"),
        "{probe}"
    );
    assert!(
        probe["fix"]
            .as_str()
            .unwrap()
            .contains("registered public key")
    );
    assert_eq!(r.code, 1);
}

/// Several IdPs: the file's further IdPs are checked too, each finding naming its IdP; the
/// first IdP's checks are unaffected.
#[tokio::test]
async fn every_identity_provider_is_checked() {
    let s = setup().await;
    let port = closed_port();
    let file = s._dir.0.join("portcullis.yaml");
    std::fs::write(
        &file,
        format!(
            "portcullis:\n  identityProviders:\n    - id: partner\n      discoveryUri: https://127.0.0.1:{port}/partner/.well-known/openid-configuration\n      clientId: gw\n      secret: partner-secret\n"
        ),
    )
    .unwrap();
    let r = doctor(&["--json", "--config", file.to_str().unwrap()], &s.env).await;
    let f = r.json();
    assert_eq!(r.code, 1, "{}", r.stdout);
    let partner: Vec<&Value> = f
        .iter()
        .filter(|x| x["detail"].as_str().unwrap().starts_with("IdP `partner`: "))
        .collect();
    let discovery = partner
        .iter()
        .find(|x| x["check"] == "discovery")
        .unwrap_or_else(|| panic!("no partner discovery finding: {f:#?}"));
    assert_eq!(discovery["verdict"], "problem", "{discovery}");
    assert!(
        discovery["detail"]
            .as_str()
            .unwrap()
            .contains("Connection refused"),
        "{discovery}"
    );
    // The partner's redirect URI is its own callback.
    assert!(
        f.iter().any(|x| x["check"] == "redirect-uri"
            && x["detail"]
                .as_str()
                .unwrap()
                .contains("/api/callback/partner")),
        "{f:#?}"
    );
    // The first IdP still passes its checks.
    let first_discovery = f.iter().find(|x| x["check"] == "discovery").unwrap();
    assert_eq!(first_discovery["verdict"], "ok", "{first_discovery}");
    assert!(
        !first_discovery["detail"]
            .as_str()
            .unwrap()
            .starts_with("IdP `")
    );
}
