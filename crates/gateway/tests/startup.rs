//! Start-up and configuration against a real OpenID Provider: the gateway never blocks on the
//! IdP (R-RS-3), refuses to become ready on a wrong discovery issuer (R-CFG-2), on no usable
//! signing algorithm (R-CFG-7) or on http endpoints inside https discovery (R-CFG-3), and
//! trusts a custom CA for IdP TLS only when given one (R-CFG-5).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use portcullis_core::config::{RawSettings, validate};
use portcullis_gateway::RunningGateway;
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// A gateway started without waiting for readiness (unlike `TestEnv`).
struct Gw {
    gw: RunningGateway,
    upstream: Upstream,
    _dir: TempDir,
}

async fn bind() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    (listener, base)
}

/// A port with nothing listening on it (bound, then released).
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// The settings `TestEnv` uses, for a gateway at `base` and the given discovery URL.
fn settings(base: &str, discovery: &str, upstream: &Upstream, dir: &TempDir) -> RawSettings {
    common::settings(
        &format!("{base}/api/callback"),
        discovery,
        "client_secret_post",
        "RS256",
        upstream,
        dir,
    )
}

async fn start_gw(
    listener: TcpListener,
    base: &str,
    discovery: &str,
    tweak: impl FnOnce(&mut RawSettings),
) -> Gw {
    let upstream = Upstream::start().await;
    let dir = TempDir::new();
    let mut raw = settings(base, discovery, &upstream, &dir);
    tweak(&mut raw);
    let config = validate(&raw).unwrap_or_else(|p| panic!("test config invalid: {p:?}"));
    let gw = portcullis_gateway::start(config, listener).await.unwrap();
    Gw {
        gw,
        upstream,
        _dir: dir,
    }
}

async fn readyz(base: &str) -> (u16, Option<String>, Value) {
    let r = reqwest::get(format!("{base}/readyz")).await.unwrap();
    let status = r.status().as_u16();
    let retry = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    (status, retry, r.json().await.unwrap())
}

/// Poll `/readyz` until its not-ready reason satisfies `pred` (the loader has tried at least
/// once); returns the last body. Panics if it became ready or never matched.
async fn wait_reason(base: &str, pred: impl Fn(&str) -> bool) -> Value {
    let mut last = Value::Null;
    for _ in 0..200 {
        let (status, retry, v) = readyz(base).await;
        assert_eq!(status, 503, "must not become ready: {v}");
        assert!(retry.is_some(), "503 /readyz without Retry-After");
        assert_eq!(v["status"], "not_ready");
        if v["reason"].as_str().is_some_and(&pred) {
            return v;
        }
        last = v;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the readiness reason never matched: {last}");
}

async fn wait_ready(base: &str, within: Duration) -> Value {
    let start = Instant::now();
    loop {
        let (status, _, v) = readyz(base).await;
        if status == 200 {
            return v;
        }
        assert!(start.elapsed() < within, "not ready within {within:?}: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `/api/login` answers 503 with `Retry-After` (HTML and JSON) and sends nobody to the IdP.
async fn assert_login_503(base: &str) {
    let b = Browser::new();
    let r = b.get(&format!("{base}/api/login")).await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.header("retry-after").as_deref(), Some("5"));
    assert!(r.location().is_none());
    assert!(!r.sets_session());
    let r = b
        .get_with(
            &format!("{base}/api/login"),
            &[("accept", "application/json")],
        )
        .await;
    assert_eq!(r.status, 503);
    assert!(r.header("retry-after").is_some());
    let v: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["error"], "not_ready");
}

/// Sign in without a `TestEnv`: protected page → /api/login → OP form → callback → page.
async fn sign_in(b: &Browser, base: &str, op_issuer: &str, path: &str, user: (&str, &str)) {
    let r = b.get(&format!("{base}{path}")).await;
    assert_eq!(r.status, 302, "{}", r.body);
    let login = url::Url::parse(base)
        .unwrap()
        .join(&r.location().unwrap())
        .unwrap()
        .to_string();
    let r = b.get(&login).await;
    assert_eq!(r.status, 302, "/api/login: {}", r.body);
    let authorize = r.location().unwrap();
    assert!(authorize.starts_with(op_issuer), "{authorize}");
    let cb = b.authorize_at_op(&authorize, base, user.0, user.1).await;
    let r = b.get(&cb).await;
    assert_eq!(r.status, 302, "callback: {} {}", r.status, r.body);
    assert!(r.sets_session());
    let page = b.get(&format!("{base}{path}")).await;
    assert_eq!(page.status, 200, "{}", page.body);
}

/// R-RS-3, R-CFG-4: with the IdP down at start the process is live at once, not ready
/// (503 + Retry-After + a reason), logins answer 503 and a browser is still sent to sign in;
/// when the IdP comes up, the retry loop loads it and sign-in works.
#[tokio::test]
async fn r_rs_3_idp_down_at_start_then_comes_up() {
    let (listener, base) = bind().await;
    let op_port = closed_port();
    let discovery = format!("http://127.0.0.1:{op_port}/.well-known/openid-configuration");
    let g = start_gw(listener, &base, &discovery, |_| {}).await;

    let h = reqwest::get(format!("{base}/healthz")).await.unwrap();
    assert_eq!(h.status(), 200, "live immediately, whatever the IdP");
    let (status, retry, v) = readyz(&base).await;
    assert_eq!(status, 503);
    assert_eq!(retry.as_deref(), Some("5"));
    assert_eq!(v["status"], "not_ready");
    assert!(!v["reason"].as_str().unwrap().is_empty());
    assert_eq!(v["insecure_transport"], true, "R-CFG-4");
    let v = wait_reason(&base, |r| r.contains("could not reach")).await;
    assert!(
        v["reason"].as_str().unwrap().contains(&op_port.to_string()),
        "{v}"
    );

    assert_login_503(&base).await;
    let b = Browser::new();
    let r = b.get(&format!("{base}/reports?y=1")).await;
    assert_eq!(r.status, 302);
    let loc = r.location().unwrap();
    assert!(loc.ends_with("/api/login?rd=%2Freports%3Fy%3D1"), "{loc}");
    let r = b
        .get(url::Url::parse(&base).unwrap().join(&loc).unwrap().as_str())
        .await;
    assert_eq!(r.status, 503);
    assert!(r.header("retry-after").is_some());
    let r = b
        .get_with(
            &format!("{base}/api/data"),
            &[("accept", "application/json")],
        )
        .await;
    assert_eq!(r.status, 401, "API clients get 401, not 503");
    assert_eq!(g.upstream.count(), 0, "NP");

    // The IdP comes up on the configured port; the loader's backoff picks it up.
    let op = Op::start(json!({
        "port": op_port,
        "clients": [client(&format!("{base}/api/callback"), "client_secret_post", "RS256")],
    }))
    .await;
    let v = wait_ready(&base, Duration::from_secs(20)).await;
    assert_eq!(v["issuer"], op.issuer);
    assert_eq!(v["insecure_transport"], true);
    sign_in(&Browser::new(), &base, &op.issuer, "/after", ALICE).await;
    assert_eq!(g.upstream.count(), 1);
    assert_eq!(
        g.gw.state
            .store
            .count(portcullis_store::Table::Users)
            .await
            .unwrap(),
        1
    );
}

/// R-CFG-2 (Disc §4.3): a discovery document whose issuer differs from the discovery URL
/// keeps the gateway not ready, with the reason naming the issuer; logins answer 503.
#[tokio::test]
async fn r_cfg_2_discovery_issuer_mismatch_is_not_ready() {
    let (listener, base) = bind().await;
    let op = Op::start(json!({
        "clients": [client(&format!("{base}/api/callback"), "client_secret_post", "RS256")],
    }))
    .await;
    op.mode(json!({"discovery": {"issuer": "http://evil.example"}}))
        .await;
    let _g = start_gw(listener, &base, &op.discovery_url(), |_| {}).await;
    let v = wait_reason(&base, |r| r.contains("issuer")).await;
    let reason = v["reason"].as_str().unwrap();
    assert!(reason.contains("http://evil.example"), "{reason}");
    assert!(reason.contains(&op.issuer), "{reason}");
    assert_login_503(&base).await;
    assert_eq!(op.calls("/auth").await, 0);
    assert_eq!(op.calls("/token").await, 0);
    // Stays not ready on later retries.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(readyz(&base).await.0, 503);
}

/// R-CFG-7: jwsAlgorithm ES256 while discovery's `id_token_signing_alg_values_supported` has
/// no ES256 → not ready with a reason naming the algorithms.
#[tokio::test]
async fn r_cfg_7_no_allowed_signing_alg_is_not_ready() {
    let (listener, base) = bind().await;
    let op = Op::start(json!({
        "clients": [client(&format!("{base}/api/callback"), "client_secret_post", "ES256")],
    }))
    .await;
    op.mode(json!({"discovery": {"id_token_signing_alg_values_supported": ["RS256", "PS256"]}}))
        .await;
    let _g = start_gw(listener, &base, &op.discovery_url(), |raw| {
        raw.jws_algorithms = Some(vec!["ES256".into()]);
    })
    .await;
    let v = wait_reason(&base, |r| r.contains("jwsAlgorithm")).await;
    let reason = v["reason"].as_str().unwrap();
    assert!(reason.contains("ES256"), "{reason}");
    assert!(reason.contains("RS256"), "{reason}");
    assert_login_503(&base).await;
}

/// R-CFG-7: `response_types_supported` without `code` → not ready.
#[tokio::test]
async fn r_cfg_7_no_code_response_type_is_not_ready() {
    let (listener, base) = bind().await;
    let op = Op::start(json!({
        "clients": [client(&format!("{base}/api/callback"), "client_secret_post", "RS256")],
    }))
    .await;
    op.mode(json!({"discovery": {"response_types_supported": ["id_token"]}}))
        .await;
    let _g = start_gw(listener, &base, &op.discovery_url(), |_| {}).await;
    wait_reason(&base, |r| r.contains("response_type=code")).await;
    assert_login_503(&base).await;
}

// ------------------------------------------------------------------------------------------
// TLS to the IdP: a custom CA (R-CFG-5) and https rules (R-CFG-3)
// ------------------------------------------------------------------------------------------

/// A CA and a leaf certificate for 127.0.0.1/localhost, written to `dir`.
struct Pki {
    ca_pem: String,
    ca_path: std::path::PathBuf,
    leaf_path: std::path::PathBuf,
    key_path: std::path::PathBuf,
    key_pem: String,
}

fn pki(dir: &TempDir) -> Pki {
    pki_for(dir, &["127.0.0.1", "localhost"])
}

fn pki_for(dir: &TempDir, names: &[&str]) -> Pki {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    };
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Portcullis test CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);

    let mut leaf_params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    leaf_params
        .distinguished_name
        .push(DnType::CommonName, names[0]);
    leaf_params.use_authority_key_identifier_extension = true;
    leaf_params
        .extended_key_usages
        .push(rcgen::ExtendedKeyUsagePurpose::ServerAuth);
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();

    let ca_path = dir.0.join("ca.pem");
    let leaf_path = dir.0.join("leaf.pem");
    let key_path = dir.0.join("leaf-key.pem");
    std::fs::write(&ca_path, ca_cert.pem()).unwrap();
    std::fs::write(&leaf_path, leaf.pem()).unwrap();
    std::fs::write(&key_path, leaf_key.serialize_pem()).unwrap();
    Pki {
        ca_pem: ca_cert.pem(),
        ca_path,
        leaf_path,
        key_path,
        key_pem: leaf_key.serialize_pem(),
    }
}

/// An https OP (certificate from `pki`) accepting the given redirect URIs.
async fn https_op(pki: &Pki, redirects: &[&str]) -> Op {
    let mut c = client(redirects[0], "client_secret_post", "RS256");
    c["redirect_uris"] = json!(redirects);
    let op = Op::start(json!({
        "tls": {"cert": pki.leaf_path, "key": pki.key_path},
        "clients": [c],
    }))
    .await;
    assert!(op.issuer.starts_with("https://127.0.0.1:"), "{}", op.issuer);
    op
}

fn file_url(p: &std::path::Path) -> String {
    url::Url::from_file_path(p).unwrap().to_string()
}

/// R-CFG-5 / R-CFG-4: an https IdP signed by a private CA. With the CA as a `file://` URL
/// (and, separately, as inline PEM) and WITHOUT the insecure flag, the gateway becomes ready
/// and a full sign-in works; without the CA it stays not ready with a certificate reason —
/// the insecure flag never disables verification.
#[tokio::test]
async fn r_cfg_5_custom_ca_trusts_https_idp_and_nothing_else_does() {
    let dir = TempDir::new();
    let pki = pki(&dir);
    let (l_file, base_file) = bind().await;
    let (l_inline, base_inline) = bind().await;
    let (l_none, base_none) = bind().await;
    let (l_insecure, base_insecure) = bind().await;
    let cb = |b: &str| format!("{b}/api/callback");
    let op = https_op(
        &pki,
        &[
            &cb(&base_file),
            &cb(&base_inline),
            &cb(&base_none),
            &cb(&base_insecure),
        ],
    )
    .await;

    let ca_url = file_url(&pki.ca_path);
    let g_file = start_gw(l_file, &base_file, &op.discovery_url(), |raw| {
        raw.allow_insecure_http = None;
        raw.signer_pem_url = Some(ca_url);
    })
    .await;
    let ca_pem = pki.ca_pem.clone();
    let _g_inline = start_gw(l_inline, &base_inline, &op.discovery_url(), |raw| {
        raw.allow_insecure_http = None;
        raw.signer_pem_url = Some(ca_pem);
    })
    .await;
    let _g_none = start_gw(l_none, &base_none, &op.discovery_url(), |raw| {
        raw.allow_insecure_http = None;
    })
    .await;
    let _g_insecure = start_gw(l_insecure, &base_insecure, &op.discovery_url(), |_| {}).await;

    let v = wait_ready(&base_file, Duration::from_secs(10)).await;
    assert_eq!(v["issuer"], op.issuer);
    assert_eq!(v["insecure_transport"], false);
    wait_ready(&base_inline, Duration::from_secs(10)).await;

    let b = Browser::new();
    sign_in(&b, &base_file, &op.issuer, "/secure/page", ALICE).await;
    let got = g_file.upstream.requests().pop().unwrap();
    assert_eq!(got.uri, "/secure/page");
    assert_eq!(
        got.one("x-forwarded-user").as_deref(),
        Some("alice-sub-0001")
    );
    let user = g_file
        .gw
        .state
        .store
        .users
        .user_by_identity(&op.issuer, "alice-sub-0001")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.profile.email.as_deref(), Some("alice@example.com"));

    let cert_problem = |r: &str| r.to_ascii_lowercase().contains("certificate");
    for base in [&base_none, &base_insecure] {
        let v = wait_reason(base, cert_problem).await;
        let reason = v["reason"].as_str().unwrap();
        assert!(reason.contains(&op.issuer), "names the URL: {reason}");
        assert_login_503(base).await;
    }
}

/// R-CFG-5: the custom CA adds trust, it never disables hostname verification: a certificate
/// from the trusted CA for another name keeps the gateway not ready — even with the insecure
/// flag on (R-CFG-4: the flag only permits the http scheme).
#[tokio::test]
async fn r_cfg_5_hostname_verification_stays_on_with_custom_ca() {
    let dir = TempDir::new();
    let pki = pki_for(&dir, &["idp.other.example"]);
    let (listener, base) = bind().await;
    let op = https_op(&pki, &[&format!("{base}/api/callback")]).await;
    let ca_url = file_url(&pki.ca_path);
    let _g = start_gw(listener, &base, &op.discovery_url(), |raw| {
        raw.signer_pem_url = Some(ca_url);
    })
    .await;
    let v = wait_reason(&base, |r| r.to_ascii_lowercase().contains("certificate")).await;
    assert!(v["reason"].as_str().unwrap().contains(&op.issuer), "{v}");
    assert_login_503(&base).await;
}

/// R-CFG-5: a CA PEM that contains a private key (or no certificate) is a configuration
/// error — inline PEM is refused by `validate()`, a `file://` PEM when the gateway starts.
#[tokio::test]
async fn r_cfg_5_ca_pem_with_private_key_is_refused() {
    let dir = TempDir::new();
    let pki = pki(&dir);
    let upstream = Upstream::start().await;
    let base = "http://127.0.0.1:8080";
    let discovery = "https://idp.example.com/.well-known/openid-configuration";

    let mut raw = settings(base, discovery, &upstream, &dir);
    raw.allow_insecure_http = None;
    raw.signer_pem_url = Some(format!("{}{}", pki.ca_pem, pki.key_pem));
    let problems = validate(&raw).expect_err("a PEM with a private key must be refused");
    assert!(
        problems
            .iter()
            .any(|p| p.0.contains("OIDC_SIGNER_PEM_URL") && p.0.contains("private key")),
        "{problems:?}"
    );
    raw.signer_pem_url = Some(pki.key_pem.clone());
    let problems = validate(&raw).expect_err("a PEM with only a key must be refused");
    assert!(
        problems.iter().any(|p| p.0.contains("private key")),
        "{problems:?}"
    );

    let bad = dir.0.join("bad-ca.pem");
    std::fs::write(&bad, format!("{}{}", pki.ca_pem, pki.key_pem)).unwrap();
    raw.signer_pem_url = Some(file_url(&bad));
    let config = validate(&raw).unwrap();
    let (listener, _) = bind().await;
    let err = match portcullis_gateway::start(config, listener).await {
        Ok(_) => panic!("the gateway must refuse a CA file holding a private key"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("private key"), "{err}");

    let empty = dir.0.join("empty.pem");
    std::fs::write(&empty, "not a pem\n").unwrap();
    raw.signer_pem_url = Some(file_url(&empty));
    let config = validate(&raw).unwrap();
    let (listener, _) = bind().await;
    let err = match portcullis_gateway::start(config, listener).await {
        Ok(_) => panic!("the gateway must refuse a CA file without a certificate"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("CERTIFICATE"), "{err}");
}

/// R-CFG-3: an http discovery URL needs OIDC_ALLOW_INSECURE_HTTP; so does an http CA URL.
#[tokio::test]
async fn r_cfg_3_http_idp_urls_need_the_insecure_flag() {
    let dir = TempDir::new();
    let upstream = Upstream::start().await;
    let mut raw = settings(
        "http://127.0.0.1:8080",
        "http://idp.example.com/.well-known/openid-configuration",
        &upstream,
        &dir,
    );
    raw.allow_insecure_http = None;
    raw.signer_pem_url = Some("http://idp.example.com/ca.pem".into());
    let problems = validate(&raw).expect_err("http IdP URLs must be refused");
    assert!(
        problems
            .iter()
            .any(|p| p.0.contains("OIDC_DISCOVERY_URL") && p.0.contains("plain http")),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.0.contains("OIDC_SIGNER_PEM_URL") && p.0.contains("plain http")),
        "{problems:?}"
    );
    raw.allow_insecure_http = Some("true".into());
    let config = validate(&raw).unwrap();
    assert!(config.oidc.allow_insecure_http);
    assert!(
        config
            .warnings
            .iter()
            .any(|w| w.contains("OIDC_ALLOW_INSECURE_HTTP")),
        "R-CFG-4: the flag is warned about"
    );
}

/// R-CFG-3: an https discovery document that lists a plain-http endpoint keeps the gateway
/// not ready (without the insecure flag).
#[tokio::test]
async fn r_cfg_3_http_endpoint_inside_https_discovery_is_not_ready() {
    let dir = TempDir::new();
    let pki = pki(&dir);
    let (listener, base) = bind().await;
    let op = https_op(&pki, &[&format!("{base}/api/callback")]).await;
    op.mode(json!({"discovery": {"token_endpoint": "http://127.0.0.1:9/token"}}))
        .await;
    let ca_url = file_url(&pki.ca_path);
    let _g = start_gw(listener, &base, &op.discovery_url(), |raw| {
        raw.allow_insecure_http = None;
        raw.signer_pem_url = Some(ca_url);
    })
    .await;
    let v = wait_reason(&base, |r| r.contains("token_endpoint")).await;
    assert!(v["reason"].as_str().unwrap().contains("not https"), "{v}");
    assert_login_503(&base).await;
}
