//! Client authentication toward the IdP through the real OP (oidc-provider): `private_key_jwt`
//! (RFC 7523, OIDC Core §9) for the code exchange, refresh grants and pushed requests, and
//! Pushed Authorization Requests (RFC 9126): the redirect carries only `client_id` and
//! `request_uri`, `required` without an advertised endpoint keeps the gateway not ready, and
//! every failure of the push ends with an error answer and nothing stored. Keys are generated
//! at test time (nothing committed). R-CB-6.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use common::*;
use portcullis_core::config::RawSettings;
use portcullis_core::oidc::client_assertion::{AssertionAlg, ClientKey};
use portcullis_core::time::ManualClock;
use portcullis_gateway::offline::{PassReport, recheck_due_sessions};
use serde_json::{Value, json};
use tokio::net::TcpListener;

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

// ------------------------------------------------------------------------------------------
// Test keys, made now
// ------------------------------------------------------------------------------------------

fn pem(der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        lines.join("\n")
    )
}

/// A fresh PKCS#8 PEM key for `alg` (EC P-256 for ES256, RSA 2048 otherwise).
fn key_pem(alg: &str) -> String {
    if alg == "ES256" {
        let doc =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .unwrap();
        pem(doc.as_ref())
    } else {
        let kp = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
        pem(AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&kp)
            .unwrap()
            .as_ref())
    }
}

/// The public JWK of `pem` as the IdP registers it.
fn public_jwk(pem: &str, alg: &str, kid: &str) -> Value {
    ClientKey::from_pem(pem, AssertionAlg::parse(alg), Some(kid.into()))
        .unwrap()
        .public_jwk()
}

/// The OP's registration of Portcullis as a private_key_jwt client with `jwk`.
fn pkjwt_client(redirect: &str, alg: &str, jwk: &Value) -> Value {
    let origin = url::Url::parse(redirect)
        .unwrap()
        .origin()
        .ascii_serialization();
    json!({
        "client_id": CLIENT_ID,
        "redirect_uris": [redirect],
        "post_logout_redirect_uris": [format!("{origin}/.portcullis/signed-out")],
        "token_endpoint_auth_method": "private_key_jwt",
        "token_endpoint_auth_signing_alg": alg,
        "jwks": {"keys": [jwk]},
        "id_token_signed_response_alg": "RS256",
    })
}

/// Where the gateway will listen, known before the OP starts (the redirect URI names it).
async fn listener() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://127.0.0.1:{}", l.local_addr().unwrap().port());
    (l, base)
}

/// The key file of a private_key_jwt gateway (removed on drop).
struct KeyFile {
    _dir: TempDir,
    path: String,
}

impl KeyFile {
    fn new(pem: &str) -> KeyFile {
        let dir = TempDir::new();
        let path = dir.0.join("client-key.pem");
        std::fs::write(&path, pem).unwrap();
        // As a deployment keeps it: readable by the gateway's user only.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        KeyFile {
            path: path.to_str().unwrap().to_string(),
            _dir: dir,
        }
    }
}

/// private_key_jwt with the key at `path`, signing with `alg` under `kid-<alg>`.
fn use_private_key_jwt(raw: &mut RawSettings, path: &str, alg: &str) {
    raw.token_endpoint_auth_method = Some("private_key_jwt".into());
    raw.client_secret = None;
    raw.client_key_file = Some(path.to_string());
    raw.client_key_id = Some(format!("kid-{alg}"));
    raw.client_assertion_alg = Some(alg.into());
}

/// OP with a private_key_jwt client holding `registered` (PEM), gateway signing with `used`.
async fn start_pkjwt(
    alg: &'static str,
    registered: &str,
    used: &str,
    op_more: Value,
    tweak: fn(&mut RawSettings),
    clock: Option<Arc<ManualClock>>,
) -> (TestEnv, KeyFile) {
    let (l, base) = listener().await;
    let redirect = format!("{base}/api/callback");
    let jwk = public_jwk(registered, alg, &format!("kid-{alg}"));
    let mut op_extra = json!({"clients": [pkjwt_client(&redirect, alg, &jwk)]});
    for (k, v) in op_more.as_object().unwrap() {
        op_extra[k] = v.clone();
    }
    let key = KeyFile::new(used);
    let path = key.path.clone();
    let env = TestEnv::start_with(Options {
        listener: Some(l),
        op_extra,
        clock,
        tweak: Box::new(move |raw, _| {
            use_private_key_jwt(raw, &path, alg);
            tweak(raw);
        }),
        ..Default::default()
    })
    .await;
    (env, key)
}

fn no_tweak(_: &mut RawSettings) {}

fn b64_json(part: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

/// Check one client assertion the OP received: header alg/kid, RFC 7523 claims for `aud`.
fn assert_assertion(form: &Value, alg: &str, aud: &str) {
    assert_eq!(form["client_assertion_type"], ASSERTION_TYPE, "{form}");
    assert!(
        form.get("client_secret").is_none(),
        "no secret with private_key_jwt: {form}"
    );
    let jwt = form["client_assertion"].as_str().unwrap();
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3);
    let h = b64_json(parts[0]);
    assert_eq!(h["alg"], alg);
    assert_eq!(h["kid"], format!("kid-{alg}"));
    let c = b64_json(parts[1]);
    assert_eq!(c["iss"], CLIENT_ID);
    assert_eq!(c["sub"], CLIENT_ID);
    assert_eq!(c["aud"], aud);
    assert_eq!(
        c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(),
        60,
        "{c}"
    );
    let jti = URL_SAFE_NO_PAD.decode(c["jti"].as_str().unwrap()).unwrap();
    assert_eq!(jti.len(), 16, "128-bit jti");
}

async fn logged(env: &TestEnv, path: &str) -> Vec<Value> {
    env.op
        .log()
        .await
        .into_iter()
        .filter(|e| e["path"] == path)
        .collect()
}

// ------------------------------------------------------------------------------------------
// private_key_jwt
// ------------------------------------------------------------------------------------------

/// A full sign-in whose code exchange authenticates with a client assertion signed by `alg`.
async fn sign_in_with_private_key_jwt(alg: &'static str) {
    let pem = key_pem(alg);
    let (env, _key) = start_pkjwt(alg, &pem, &pem, json!({}), no_tweak, None).await;
    let b = Browser::new();
    b.sign_in(&env, "/", ALICE.0, ALICE.1).await;
    assert_eq!(env.sessions().await, 1);
    let token = logged(&env, "/token").await;
    assert_eq!(token.len(), 1);
    let form = &token[0]["form"];
    assert_eq!(form["grant_type"], "authorization_code");
    assert_eq!(form["client_id"], CLIENT_ID);
    assert_assertion(form, alg, &format!("{}/token", env.op.issuer));
    // The test OP does not advertise PAR: the parameters went in the authorization URL.
    let auth = logged(&env, "/auth").await;
    assert!(auth[0]["query"]["code_challenge"].is_string());
}

/// R-CB-6: private_key_jwt with an EC P-256 key (ES256).
#[tokio::test]
async fn r_cb_6_private_key_jwt_es256_sign_in() {
    sign_in_with_private_key_jwt("ES256").await;
}

/// R-CB-6: private_key_jwt with an RSA key (RS256).
#[tokio::test]
async fn r_cb_6_private_key_jwt_rs256_sign_in() {
    sign_in_with_private_key_jwt("RS256").await;
}

/// R-CB-6: private_key_jwt with an RSA key (PS256).
#[tokio::test]
async fn r_cb_6_private_key_jwt_ps256_sign_in() {
    sign_in_with_private_key_jwt("PS256").await;
}

/// R-CB-6: the OP knows another key: it refuses the exchange (invalid_client), the person
/// gets the sign-in failure page, nobody is signed in, no session cookie.
#[tokio::test]
async fn r_cb_6_private_key_jwt_wrong_key_is_refused() {
    let registered = key_pem("ES256");
    let used = key_pem("ES256");
    let (env, _key) = start_pkjwt("ES256", &registered, &used, json!({}), no_tweak, None).await;
    let b = Browser::new();
    let cb = b.start_login(&env, "/", ALICE.0, ALICE.1).await;
    let r = b.get(&cb).await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(
        r.body.contains("Sign-in failed: the identity provider"),
        "{}",
        r.body
    );
    assert!(!r.sets_session(), "{:?}", r.set_cookies());
    assert!(b.cookie(&env.base, "__Host-session").is_none());
    env.assert_nothing_stored().await;
    let token = logged(&env, "/token").await;
    assert_eq!(token.len(), 1, "one attempt, no retry");
    assert!(token[0]["form"]["client_assertion"].is_string());
}

/// Offline access: the refresh grant of a re-check uses private_key_jwt too, with a fresh
/// assertion (a new jti) for the token endpoint.
#[tokio::test]
async fn private_key_jwt_refresh_grant() {
    fn offline(raw: &mut RawSettings) {
        raw.scopes = Some(vec![
            "openid".into(),
            "email".into(),
            "offline_access".into(),
        ]);
        raw.offline_recheck = Some("60".into());
    }
    let pem = key_pem("RS256");
    let clock = ManualClock::at_now();
    let (env, _key) = start_pkjwt(
        "RS256",
        &pem,
        &pem,
        json!({"refresh_tokens": "microsoft"}),
        offline,
        Some(clock.clone()),
    )
    .await;
    env.gw.stop_offline_rechecks();
    let b = Browser::new();
    b.sign_in(&env, "/", ALICE.0, ALICE.1).await;
    clock.advance(61);
    let r = recheck_due_sessions(&env.gw.state).await;
    assert_eq!(
        r,
        PassReport {
            refreshed: 1,
            ..Default::default()
        }
    );
    let token = logged(&env, "/token").await;
    assert_eq!(token.len(), 2);
    let (code, refresh) = (&token[0]["form"], &token[1]["form"]);
    assert_eq!(refresh["grant_type"], "refresh_token");
    let aud = format!("{}/token", env.op.issuer);
    assert_assertion(refresh, "RS256", &aud);
    let jti = |f: &Value| {
        let jwt = f["client_assertion"].as_str().unwrap().to_string();
        b64_json(jwt.split('.').nth(1).unwrap())["jti"].clone()
    };
    assert_ne!(jti(code), jti(refresh), "every assertion has its own jti");
    let (status, _) = b.get_json(&format!("{}/api/session", env.base)).await;
    assert_eq!(status, 200);
}

// ------------------------------------------------------------------------------------------
// Pushed authorization requests
// ------------------------------------------------------------------------------------------

fn dpop_off(raw: &mut RawSettings) {
    raw.dpop = Some("false".into());
}

fn query_keys(url: &str) -> Vec<String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .map(|(k, _)| k.into_owned())
        .collect()
}

/// RFC 9126: the OP requires PAR; `/api/login` pushes the parameters (client_secret_post)
/// and redirects with only client_id and request_uri; the sign-in completes.
#[tokio::test]
async fn par_sign_in_redirect_carries_only_client_id_and_request_uri() {
    let env = TestEnv::start_with(Options {
        op_extra: json!({"par": {"required": true}}),
        tweak: Box::new(|raw, _| dpop_off(raw)),
        ..Default::default()
    })
    .await;
    let b = Browser::new();
    let r = b.get(&format!("{}/api/login?rd=/x", env.base)).await;
    assert_eq!(r.status, 302, "{}", r.body);
    let loc = r.location().unwrap();
    assert!(
        loc.starts_with(&format!("{}/auth?", env.op.issuer)),
        "{loc}"
    );
    assert_eq!(query_keys(&loc), ["client_id", "request_uri"], "{loc}");
    let q: std::collections::HashMap<String, String> = url::Url::parse(&loc)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    assert_eq!(q["client_id"], CLIENT_ID);
    assert!(q["request_uri"].starts_with("urn:ietf:params:oauth:request_uri:"));

    // The OP saw the push, with every authorization parameter and the client authentication.
    let pushed = logged(&env, "/request").await;
    assert_eq!(pushed.len(), 1);
    assert_eq!(pushed[0]["method"], "POST");
    let form = &pushed[0]["form"];
    for k in [
        "state",
        "nonce",
        "code_challenge",
        "redirect_uri",
        "scope",
        "response_type",
    ] {
        assert!(form[k].is_string(), "{k} missing in {form}");
    }
    assert_eq!(form["code_challenge_method"], "S256");
    assert_eq!(form["client_id"], CLIENT_ID);
    assert_eq!(form["client_secret"], CLIENT_SECRET);
    assert_eq!(form["redirect_uri"], format!("{}/api/callback", env.base));

    let cb = b.authorize_at_op(&loc, &env.base, ALICE.0, ALICE.1).await;
    let r = b.get(&cb).await;
    assert_eq!(r.status, 302, "{}", r.body);
    assert!(r.sets_session());
    assert_eq!(r.location(), Some(format!("{}/x", env.base)));
    // The browser's trip to /auth carried nothing but the reference.
    let auth = logged(&env, "/auth").await;
    let keys: Vec<&String> = auth[0]["query"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["client_id", "request_uri"]);
}

/// PAR under `auto` (the OP offers it without requiring it) with private_key_jwt and the
/// default DPoP-bound sign-in: the push authenticates with an assertion for the issuer.
#[tokio::test]
async fn par_with_private_key_jwt_and_dpop() {
    let pem = key_pem("ES256");
    let (env, _key) = start_pkjwt(
        "ES256",
        &pem,
        &pem,
        json!({"par": {"required": false}}),
        no_tweak,
        None,
    )
    .await;
    let b = Browser::new();
    b.sign_in(&env, "/", ALICE.0, ALICE.1).await;
    let pushed = logged(&env, "/request").await;
    assert_eq!(pushed.len(), 1);
    assert_assertion(&pushed[0]["form"], "ES256", &env.op.issuer);
    assert_eq!(pushed[0]["form"]["client_id"], CLIENT_ID);
    let token = logged(&env, "/token").await;
    assert_assertion(
        &token[0]["form"],
        "ES256",
        &format!("{}/token", env.op.issuer),
    );
    let auth = logged(&env, "/auth").await;
    assert!(auth[0]["query"].get("code_challenge").is_none());
}

/// `off`: even with an OP that offers PAR, the parameters travel in the authorization URL.
#[tokio::test]
async fn par_off_keeps_the_parameters_in_the_url() {
    let env = TestEnv::start_with(Options {
        op_extra: json!({"par": {"required": false}}),
        tweak: Box::new(|raw, _| {
            dpop_off(raw);
            raw.pushed_authorization_requests = Some("off".into());
        }),
        ..Default::default()
    })
    .await;
    let r = Browser::new().get(&format!("{}/api/login", env.base)).await;
    assert_eq!(r.status, 302);
    assert!(query_keys(&r.location().unwrap()).contains(&"code_challenge".to_string()));
    assert!(logged(&env, "/request").await.is_empty());
}

/// `required` with an OP that does not advertise PAR: not ready, /readyz says why, and
/// sign-in answers 503.
#[tokio::test]
async fn par_required_without_an_advertised_endpoint_is_not_ready() {
    let op = Op::start(json!({})).await;
    let upstream = Upstream::start().await;
    let dir = TempDir::new();
    let (l, base) = listener().await;
    let mut raw = settings(
        &format!("{base}/api/callback"),
        &op.discovery_url(),
        "client_secret_post",
        "RS256",
        &upstream,
        &dir,
    );
    raw.pushed_authorization_requests = Some("required".into());
    let config = portcullis_core::config::validate(&raw).unwrap();
    let _gw = portcullis_gateway::start(config, l).await.unwrap();
    let http = reqwest::Client::new();
    let mut reason = String::new();
    for _ in 0..100 {
        let r = http.get(format!("{base}/readyz")).send().await.unwrap();
        assert_eq!(r.status(), 503);
        let v: Value = r.json().await.unwrap();
        reason = v["reason"].as_str().unwrap_or_default().to_string();
        if reason.contains("required") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        reason.contains("OIDC_PUSHED_AUTHORIZATION_REQUESTS=required, but the IdP's discovery document has no pushed_authorization_request_endpoint"),
        "{reason}"
    );
    let r = http
        .get(format!("{base}/api/login"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert!(op.calls("/request").await == 0);
}

/// Every way the push can fail: an error page for browsers (JSON for API clients), no
/// cookie, no session, and the sign-in's transaction dropped.
#[tokio::test]
async fn par_failures_answer_an_error_and_store_nothing() {
    let env = TestEnv::start_with(Options {
        op_extra: json!({"par": {"required": true}}),
        tweak: Box::new(|raw, _| dpop_off(raw)),
        ..Default::default()
    })
    .await;
    let cases: Vec<(Value, u16, &str, &str)> = vec![
        (
            json!({"status": 400, "raw": r#"{"error":"invalid_request","error_description":"no"}"#}),
            502,
            "idp_refused",
            "the identity provider refused this application's sign-in request",
        ),
        (
            json!({"status": 500, "raw": "<html>down</html>", "content_type": "text/html"}),
            502,
            "idp_refused",
            "the identity provider refused",
        ),
        (
            json!({"status": 201, "raw": "not json"}),
            502,
            "idp_unavailable",
            "could not be reached or gave an invalid answer",
        ),
        (
            json!({"status": 201, "raw": r#"{"expires_in":60}"#}),
            502,
            "idp_unavailable",
            "could not be reached or gave an invalid answer",
        ),
        (
            json!({"status": 201, "huge_bytes": 2_000_000}),
            502,
            "idp_unavailable",
            "could not be reached or gave an invalid answer",
        ),
    ];
    for (fault, status, code, sentence) in cases {
        env.op.mode(json!({"paths": {"/request": fault}})).await;
        // A browser: the HTML page.
        let b = Browser::new();
        let r = b.get(&format!("{}/api/login", env.base)).await;
        assert_eq!(r.status, status, "{fault}: {}", r.body);
        assert!(r.body.contains(sentence), "{fault}: {}", r.body);
        assert!(r.set_cookies().is_empty(), "{fault}: {:?}", r.set_cookies());
        assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
        // An API client: JSON with the code.
        let r = b
            .get_with(
                &format!("{}/api/login", env.base),
                &[("accept", "application/json")],
            )
            .await;
        assert_eq!(r.status, status);
        let v: Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(v["error"], code, "{fault}: {v}");
        assert!(r.set_cookies().is_empty());
        assert_eq!(env.login_txs().await, 0, "{fault}: no transaction kept");
        env.assert_nothing_stored().await;
    }
    // The push was tried each time, never the authorization endpoint.
    assert_eq!(env.op.calls("/request").await, 10);
    assert_eq!(env.op.calls("/auth").await, 0);
}

/// PAR with private_key_jwt and a key the OP does not know: the push is refused
/// (invalid_client) before the browser ever reaches the IdP.
#[tokio::test]
async fn par_with_a_wrong_key_is_refused_at_the_push() {
    let (env, _key) = start_pkjwt(
        "PS256",
        &key_pem("PS256"),
        &key_pem("PS256"),
        json!({"par": {"required": true}}),
        dpop_off,
        None,
    )
    .await;
    let r = Browser::new().get(&format!("{}/api/login", env.base)).await;
    assert_eq!(r.status, 502, "{}", r.body);
    assert!(
        r.body
            .contains("refused this application's sign-in request")
    );
    assert!(r.set_cookies().is_empty());
    assert_eq!(env.login_txs().await, 0);
    env.assert_nothing_stored().await;
    let pushed = logged(&env, "/request").await;
    assert_eq!(pushed.len(), 1);
    assert!(pushed[0]["form"]["client_assertion"].is_string());
}

/// PAR with client_secret_basic: the push authenticates in the Authorization header (the OP
/// accepts it), so the pushed body holds no secret; the sign-in completes.
#[tokio::test]
async fn par_with_client_secret_basic() {
    let env = TestEnv::start_with(Options {
        auth_method: "client_secret_basic",
        op_extra: json!({"par": {"required": true}}),
        ..Default::default()
    })
    .await;
    let b = Browser::new();
    b.sign_in(&env, "/", ALICE.0, ALICE.1).await;
    let pushed = logged(&env, "/request").await;
    assert_eq!(pushed.len(), 1);
    let form = &pushed[0]["form"];
    assert!(form.get("client_secret").is_none(), "{form}");
    assert!(form.get("client_assertion").is_none(), "{form}");
    assert_eq!(form["client_id"], CLIENT_ID);
    assert_eq!(env.sessions().await, 1);
}
