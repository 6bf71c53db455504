//! The signed identity assertion (`PORTCULLIS_ASSERTION_HEADER`): people signed in through the
//! real OP; the recording upstream receives the ES256 JWT, which the test verifies with an
//! independent implementation (`jsonwebtoken`) against the keys Portcullis publishes at
//! `/.portcullis/jwks.json`. A client's copy never reaches the app, anonymous requests never
//! get one, rotation keeps in-flight assertions verifiable, replicas with the same secret
//! publish the same keys, the cache hands out one token for half its lifetime, and the
//! forward-auth answer carries one too. Off by default: no header, and the JWKS path is 404.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use common::*;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use portcullis_core::time::ManualClock;
use serde_json::Value;

const HEADER: &str = "x-portcullis-assertion";
const ROTATION: i64 = 3600;

/// A gateway with assertions on (one-hour key periods), alice (admins, devs) admin and
/// powerUser, bob (devs) powerUser; `more` adjusts further.
async fn env_with(
    clock: Arc<ManualClock>,
    more: impl FnOnce(&mut portcullis_core::config::RawSettings) + Send + 'static,
) -> TestEnv {
    TestEnv::start_with(Options {
        clock: Some(clock),
        tweak: Box::new(move |raw, _| {
            raw.assertion_header = Some("X-Portcullis-Assertion".into());
            raw.assertion_rotation = Some(ROTATION.to_string());
            raw.roles.insert("admin".into(), vec!["admins".into()]);
            raw.roles.insert("powerUser".into(), vec!["devs".into()]);
            more(raw);
        }),
        ..Default::default()
    })
    .await
}

/// `GET /.portcullis/jwks.json`, anonymously.
async fn jwks(base: &str) -> (Resp, JwkSet) {
    let r = answer(reqwest::Client::new().get(format!("{base}/.portcullis/jwks.json"))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let set: JwkSet = serde_json::from_str(&r.body).unwrap();
    (r, set)
}

fn kid(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

/// Verify `token` with the key its `kid` names in `set`: ES256 only, `iss` and `aud` exact.
/// `exp` is checked against the gateway's clock by the callers (the test clock moves).
fn verify(token: &str, set: &JwkSet, iss: &str, aud: &str) -> Result<Value, String> {
    let header = jsonwebtoken::decode_header(token).map_err(|e| e.to_string())?;
    assert_eq!(header.alg, Algorithm::ES256);
    assert_eq!(header.typ.as_deref(), Some("JWT"));
    let jwk = set
        .find(header.kid.as_deref().unwrap_or_default())
        .ok_or("kid not in the JWKS")?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
    let mut v = Validation::new(Algorithm::ES256);
    v.set_issuer(&[iss]);
    v.set_audience(&[aud]);
    v.validate_exp = false;
    v.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    jsonwebtoken::decode::<Value>(token, &key, &v)
        .map(|d| d.claims)
        .map_err(|e| e.to_string())
}

fn last_assertion(env: &TestEnv) -> Option<String> {
    env.upstream.requests().pop().unwrap().one(HEADER)
}

/// The upstream receives one assertion per signed-in request, verifiable with the published
/// key: signature, `iss` (Portcullis), `aud` (the upstream's origin), `sub`, the identity
/// headers' values and the roles, `exp` = `iat` + 60 s. A client's copies (any spelling) are
/// removed and replaced (R-HD-1); anonymous requests never reach the app, with or without one.
#[tokio::test]
async fn r_hd_1_upstream_receives_a_verifiable_assertion_never_a_client_copy() {
    let clock = ManualClock::at_now();
    let env = env_with(clock.clone(), |_| {}).await;
    let b = Browser::new();
    b.sign_in(&env, "/", ALICE.0, ALICE.1).await;

    let forged = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9.";
    let r = b
        .get_with(
            &format!("{}/reports", env.base),
            &[
                ("X-Portcullis-Assertion", forged),
                ("X_Portcullis_Assertion", forged),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let got = env.upstream.requests().pop().unwrap();
    let token = got.one(HEADER).expect("the upstream gets an assertion");
    assert_ne!(token, forged);
    assert!(got.header("x_portcullis_assertion").is_empty());

    let (resp, set) = jwks(&env.base).await;
    assert_eq!(
        resp.header("content-type").unwrap(),
        "application/jwk-set+json"
    );
    assert_eq!(
        resp.header("cache-control").unwrap(),
        format!("public, max-age={}", ROTATION / 4)
    );
    assert_eq!(set.keys.len(), 3, "previous, current and next");
    let raw: Value = serde_json::from_str(&resp.body).unwrap();
    for k in raw["keys"].as_array().unwrap() {
        assert_eq!(k["kty"], "EC");
        assert_eq!(k["crv"], "P-256");
        assert_eq!(k["use"], "sig");
        assert_eq!(k["alg"], "ES256");
        assert!(k.get("d").is_none(), "never a private key");
    }
    // Signed with the current (middle) key.
    assert_eq!(
        Some(kid(&token).as_str()),
        raw["keys"][1]["kid"].as_str(),
        "{raw}"
    );

    let upstream_origin = format!("http://{}", env.upstream.addr);
    let c = verify(&token, &set, &env.base, &upstream_origin).unwrap();
    assert_eq!(c["sub"], "alice-sub-0001");
    assert_eq!(c["idp_iss"], env.op.issuer.as_str());
    assert_eq!(c["email"], "alice@example.com");
    assert_eq!(c["name"], "Alice Liddell");
    assert_eq!(c["preferred_username"], "alice");
    assert_eq!(c["groups"], serde_json::json!(["admins", "devs"]));
    assert_eq!(c["roles"], serde_json::json!(["admin", "powerUser"]));
    // The same values as the identity headers.
    assert_eq!(c["user"].as_str(), got.one("x-forwarded-user").as_deref());
    assert_eq!(
        got.one("x-forwarded-roles").as_deref(),
        Some("admin,powerUser")
    );
    let iat = c["iat"].as_i64().unwrap();
    assert_eq!(iat, env.gw.state.now());
    assert_eq!(c["exp"].as_i64().unwrap(), iat + 60);

    // Another audience, issuer or a changed claim: refused by the verifier.
    assert!(verify(&token, &set, &env.base, "http://other.example").is_err());
    assert!(verify(&token, &set, "http://evil.example", &upstream_origin).is_err());
    let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
    let mut claims = c.clone();
    claims["roles"] = serde_json::json!(["admin", "platformAdmin"]);
    use base64::Engine;
    parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(&claims).unwrap());
    assert!(verify(&parts.join("."), &set, &env.base, &upstream_origin).is_err());

    // Bob: his own subject and roles.
    let bob = Browser::new();
    bob.sign_in(&env, "/", BOB.0, BOB.1).await;
    let r = bob.get(&format!("{}/bob", env.base)).await;
    assert_eq!(r.status, 200);
    let c = verify(
        &last_assertion(&env).unwrap(),
        &set,
        &env.base,
        &upstream_origin,
    )
    .unwrap();
    assert_eq!(c["sub"], "bob-sub-0002");
    assert_eq!(c["roles"], serde_json::json!(["powerUser"]));

    // An API token is a signed-in request too: alice's assertion.
    let (token_secret, _) = new_token(&b, &env, "ci").await;
    let r = answer(
        program("127.0.0.1")
            .get(format!("{}/by-token", env.base))
            .bearer_auth(&token_secret),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let c = verify(
        &last_assertion(&env).unwrap(),
        &set,
        &env.base,
        &upstream_origin,
    )
    .unwrap();
    assert_eq!(c["sub"], "alice-sub-0001");
    assert_eq!(c["roles"], serde_json::json!(["admin", "powerUser"]));

    // Anonymous: never forwarded (sign-in redirect, 401 for programs), forged copy or not.
    let before = env.upstream.count();
    let anon = Browser::new();
    let r = anon
        .get_with(
            &format!("{}/reports", env.base),
            &[("X-Portcullis-Assertion", &token)],
        )
        .await;
    assert_eq!(r.status, 302);
    let r = answer(
        reqwest::Client::new()
            .get(format!("{}/reports", env.base))
            .header("accept", "application/json")
            .header("X-Portcullis-Assertion", &token),
    )
    .await;
    assert_eq!(r.status, 401);
    assert_eq!(env.upstream.count(), before, "the app is not reached");
}

/// Off by default: the app gets no assertion and the JWKS path answers 404 (like any unknown
/// file under `/.portcullis/`).
#[tokio::test]
async fn off_by_default() {
    let env = TestEnv::start().await;
    let b = Browser::new();
    b.sign_in(&env, "/", ALICE.0, ALICE.1).await;
    let r = b.get(&format!("{}/reports", env.base)).await;
    assert_eq!(r.status, 200);
    assert!(last_assertion(&env).is_none());
    assert!(env.gw.state.assertion.is_none());
    let r = answer(reqwest::Client::new().get(format!("{}/.portcullis/jwks.json", env.base))).await;
    assert_eq!(r.status, 404, "{}", r.body);
    // The assets route still serves its files.
    let r = answer(reqwest::Client::new().get(format!("{}/.portcullis/client.js", env.base))).await;
    assert_eq!(r.status, 200);
}

/// The cache: the same token while more than half its lifetime is left (30 of 60 s), a fresh
/// one after.
#[tokio::test]
async fn cached_for_half_its_lifetime() {
    let clock = ManualClock::at_now();
    let env = env_with(clock.clone(), |_| {}).await;
    let b = Browser::new();
    b.sign_in(&env, "/", ALICE.0, ALICE.1).await;
    let url = format!("{}/page", env.base);
    b.get(&url).await;
    let first = last_assertion(&env).unwrap();
    b.get(&url).await;
    assert_eq!(last_assertion(&env).unwrap(), first);
    clock.advance(29);
    b.get(&url).await;
    assert_eq!(last_assertion(&env).unwrap(), first, "29 s in: reused");
    clock.advance(1);
    b.get(&url).await;
    let second = last_assertion(&env).unwrap();
    assert_ne!(second, first, "30 s in: a fresh one");
    let (_, set) = jwks(&env.base).await;
    let aud = format!("http://{}", env.upstream.addr);
    let c1 = verify(&first, &set, &env.base, &aud).unwrap();
    let c2 = verify(&second, &set, &env.base, &aud).unwrap();
    assert_eq!(
        c2["iat"].as_i64().unwrap(),
        c1["iat"].as_i64().unwrap() + 30
    );
}

/// Rotation with the gateway's clock: an assertion signed at the end of period N verifies
/// against the JWKS served in period N+1 (the previous key is still published); a fresh one
/// in N+1 uses the new key, which the JWKS of period N already announced as the next.
#[tokio::test]
async fn rotation_keeps_the_previous_key_published() {
    let clock = ManualClock::at_now();
    let env = env_with(clock.clone(), |_| {}).await;
    let b = Browser::new();
    b.sign_in(&env, "/", ALICE.0, ALICE.1).await;
    let url = format!("{}/page", env.base);
    let aud = format!("http://{}", env.upstream.addr);
    // Walk to 5 s before a boundary at least a minute away, in steps the session survives
    // (a request re-issues it when less than 10 minutes are left).
    let now = env.gw.state.now();
    let mut boundary = (now.div_euclid(ROTATION) + 1) * ROTATION;
    if boundary - now < 60 {
        boundary += ROTATION;
    }
    assert_eq!(b.get(&url).await.status, 200);
    while env.gw.state.now() < boundary - 5 {
        clock.advance((boundary - 5 - env.gw.state.now()).min(300));
        assert_eq!(b.get(&url).await.status, 200);
    }
    let old = last_assertion(&env).unwrap();
    let (_, set_n) = jwks(&env.base).await;
    let kids_n: Vec<String> = set_n
        .keys
        .iter()
        .map(|k| k.common.key_id.clone().unwrap())
        .collect();
    assert_eq!(kid(&old), kids_n[1]);

    // Period N+1.
    clock.advance(10);
    let (_, set_n1) = jwks(&env.base).await;
    let kids_n1: Vec<String> = set_n1
        .keys
        .iter()
        .map(|k| k.common.key_id.clone().unwrap())
        .collect();
    assert_eq!(kids_n1[..2], kids_n[1..], "the window moved by one key");
    let c = verify(&old, &set_n1, &env.base, &aud).expect("the previous key still verifies");
    assert!(c["exp"].as_i64().unwrap() > env.gw.state.now());

    // 31 s after it was signed the cached one is no longer handed out: a fresh one, new kid.
    clock.advance(26);
    assert_eq!(b.get(&url).await.status, 200);
    let new = last_assertion(&env).unwrap();
    assert_ne!(new, old);
    assert_eq!(kid(&new), kids_n1[1]);
    assert_eq!(kid(&new), kids_n[2], "announced a period ahead");
    verify(&new, &set_n1, &env.base, &aud).unwrap();
    verify(&new, &set_n, &env.base, &aud).expect("an app's cached set already has it");

    // Two periods on, the key of period N is gone: N's assertions no longer verify.
    clock.advance(ROTATION);
    let (_, set_n2) = jwks(&env.base).await;
    assert!(set_n2.find(&kids_n[1]).is_none());
    assert!(verify(&old, &set_n2, &env.base, &aud).is_err());
}

/// Two gateways with the same secret publish the same keys, and an assertion of one verifies
/// with the other's JWKS; a configured audience replaces the upstream's origin; during a
/// secret rotation the previous secret's keys stay published (R-CFG-1).
#[tokio::test]
async fn replicas_with_the_same_secret_publish_the_same_keys() {
    let clock = ManualClock::at_now();
    let a = env_with(clock.clone(), |raw| {
        raw.assertion_audience = Some("https://app.example.com".into());
    })
    .await;
    let b = env_with(clock.clone(), |_| {}).await;
    let (ra, set_a) = jwks(&a.base).await;
    let (rb, _) = jwks(&b.base).await;
    assert_eq!(ra.body, rb.body);

    let alice = Browser::new();
    alice.sign_in(&a, "/", ALICE.0, ALICE.1).await;
    assert_eq!(alice.get(&format!("{}/x", a.base)).await.status, 200);
    let token = last_assertion(&a).unwrap();
    let (_, set_b) = jwks(&b.base).await;
    let c = verify(&token, &set_b, &a.base, "https://app.example.com").unwrap();
    assert_eq!(c["sub"], "alice-sub-0001");
    verify(&token, &set_a, &a.base, "https://app.example.com").unwrap();

    // A rolling rotation of the signing secret: a replica on the new secret (the old one as
    // JWT_SIGNING_SECRET_PREVIOUS) signs with new keys and still publishes the old ones, so
    // what a replica on the old secret signs keeps verifying.
    let rotated = env_with(clock.clone(), |raw| {
        raw.jwt_signing_secret = Some("a-new-signing-secret-0123456789-abcdefgh".into());
        raw.jwt_signing_secret_previous = Some(JWT_SECRET.into());
    })
    .await;
    let (_, set_r) = jwks(&rotated.base).await;
    assert_eq!(set_r.keys.len(), 6);
    verify(&token, &set_r, &a.base, "https://app.example.com").unwrap();
    let bob = Browser::new();
    bob.sign_in(&rotated, "/", BOB.0, BOB.1).await;
    assert_eq!(bob.get(&format!("{}/x", rotated.base)).await.status, 200);
    let new = last_assertion(&rotated).unwrap();
    assert!(set_a.find(&kid(&new)).is_none(), "signed with a new key");
    verify(
        &new,
        &set_r,
        &rotated.base,
        &format!("http://{}", rotated.upstream.addr),
    )
    .unwrap();
}

/// Forward-auth: the 200 answer carries the assertion for the proxy to copy upstream, its
/// audience the original request's origin as the trusted proxy states it (or the configured
/// one); refusals carry none.
#[tokio::test]
async fn forward_auth_answer_carries_it() {
    let clock = ManualClock::at_now();
    let env = env_with(clock.clone(), |raw| {
        raw.upstream = None;
        raw.forward_auth_trusted_proxies = Some(vec!["127.0.0.1/32".into()]);
    })
    .await;
    let alice = Browser::new();
    alice.sign_in(&env, "/", ALICE.0, ALICE.1).await;
    let cookies = alice.session_cookies(&env.base);
    let proxy = program("127.0.0.1");
    let url = format!("{}/api/forward-auth", env.base);
    let ask = || {
        proxy
            .get(&url)
            .header("x-forwarded-method", "GET")
            .header("x-forwarded-uri", "/reports")
            .header("x-forwarded-proto", "https")
            .header("x-forwarded-host", "app.example.com")
    };
    let r = answer(ask().header("cookie", &cookies)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.headers.get_all(HEADER).iter().count(), 1);
    let token = r.header(HEADER).unwrap();
    let (_, set) = jwks(&env.base).await;
    let c = verify(&token, &set, &env.base, "https://app.example.com").unwrap();
    assert_eq!(c["sub"], "alice-sub-0001");
    assert_eq!(c["roles"], serde_json::json!(["admin", "powerUser"]));
    assert_eq!(c["user"].as_str(), r.header("x-forwarded-user").as_deref());

    // Without X-Forwarded-Host (nginx's recipe sends none): Portcullis's own origin, not the
    // sub-request's Host.
    let r = answer(
        proxy
            .get(&url)
            .header("cookie", &cookies)
            .header("x-original-method", "GET")
            .header("x-original-uri", "/reports"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    verify(&r.header(HEADER).unwrap(), &set, &env.base, &env.base).unwrap();

    // No credential: 401, no assertion; a client's copy is not echoed.
    let r = answer(
        ask()
            .header("accept", "application/json")
            .header("X-Portcullis-Assertion", &token),
    )
    .await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.header(HEADER).is_none());

    // A configured audience wins over the proxy's headers.
    let env2 = env_with(clock.clone(), |raw| {
        raw.upstream = None;
        raw.forward_auth_trusted_proxies = Some(vec!["127.0.0.1/32".into()]);
        raw.assertion_audience = Some("urn:example:app".into());
    })
    .await;
    let bob = Browser::new();
    bob.sign_in(&env2, "/", BOB.0, BOB.1).await;
    let r = answer(
        proxy
            .get(format!("{}/api/forward-auth", env2.base))
            .header("cookie", bob.session_cookies(&env2.base))
            .header("x-forwarded-method", "GET")
            .header("x-forwarded-uri", "/")
            .header("x-forwarded-host", "app.example.com"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let (_, set2) = jwks(&env2.base).await;
    let c = verify(
        &r.header(HEADER).unwrap(),
        &set2,
        &env2.base,
        "urn:example:app",
    )
    .unwrap();
    assert_eq!(c["sub"], "bob-sub-0002");
}

/// Invalid settings stop the start with one clear problem each.
#[test]
fn invalid_settings_are_problems() {
    let dir = TempDir::new();
    let mut raw = portcullis_core::config::RawSettings {
        discovery_url: Some("http://127.0.0.1:1/.well-known/openid-configuration".into()),
        redirect_url: Some("http://127.0.0.1:8080/api/callback".into()),
        client_id: Some(CLIENT_ID.into()),
        client_secret: Some(CLIENT_SECRET.into()),
        allow_insecure_http: Some("true".into()),
        jwt_signing_secret: Some(JWT_SECRET.into()),
        database_url: Some(format!("sqlite://{}", dir.0.join("p.db").display())),
        ..Default::default()
    };
    // Valid: the header joins the names stripped from clients (R-HD-1), in normal form.
    raw.assertion_header = Some("X_Portcullis_Assertion".into());
    let c = portcullis_core::config::validate(&raw).unwrap();
    assert_eq!(
        c.assertion.header.as_deref(),
        Some("x_portcullis_assertion")
    );
    assert!(
        c.proxy
            .strip_headers
            .contains(&"x-portcullis-assertion".to_string()),
        "{:?}",
        c.proxy.strip_headers
    );
    assert_eq!((c.assertion.lifetime, c.assertion.rotation), (60, 86_400));

    raw.assertion_header = Some("X-Forwarded-Email".into());
    raw.assertion_lifetime = Some("0".into());
    raw.assertion_rotation = Some("60".into());
    let problems: Vec<String> = portcullis_core::config::validate(&raw)
        .unwrap_err()
        .into_iter()
        .map(|p| p.0)
        .collect();
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert!(problems[0].contains("PORTCULLIS_ASSERTION_HEADER may not be `x-forwarded-email`"));
    assert!(
        problems[1]
            .contains("PORTCULLIS_ASSERTION_LIFETIME must be a whole number from 10 to 3600")
    );
    assert!(problems[2].contains("PORTCULLIS_ASSERTION_ROTATION must be a whole number from 3600"));
}

/// nginx in front (the README's forward-auth recipe, cut to what this needs, plus the two
/// lines the "Signed identity assertion" section adds): `{LISTEN}`, `{PORTCULLIS}`, `{APP}`.
const NGINX_WITH_ASSERTION: &str = r#"upstream portcullis { server {PORTCULLIS}; }
upstream app { server {APP}; }
server {
    listen {LISTEN};
    location /api/ { proxy_pass http://portcullis; }
    location /.portcullis/ { proxy_pass http://portcullis; }
    location = /_portcullis_auth {
        internal;
        proxy_pass http://portcullis/api/forward-auth;
        proxy_pass_request_body off;
        proxy_set_header Content-Length "";
        proxy_set_header X-Original-Method $request_method;
        proxy_set_header X-Original-URI $request_uri;
        proxy_set_header X-Forwarded-Method "";
        proxy_set_header X-Forwarded-Uri "";
        proxy_set_header X-Forwarded-Host $http_host;
    }
    location @portcullis_sign_in {
        if ($portcullis_sign_in) { return 302 $portcullis_sign_in; }
        return 401;
    }
    location / {
        auth_request /_portcullis_auth;
        auth_request_set $portcullis_sign_in $upstream_http_location;
        error_page 401 = @portcullis_sign_in;
        auth_request_set $pc_assertion $upstream_http_x_portcullis_assertion;
        proxy_set_header X-Portcullis-Assertion $pc_assertion;
        auth_request_set $pc_cookie $upstream_http_x_portcullis_upstream_cookie;
        proxy_set_header Cookie $pc_cookie;
        proxy_pass http://app;
    }
}
"#;

/// The real nginx (`auth_request`) copies the forward-auth answer's assertion onto the
/// request to the app, replacing a client's copy; its audience is the site's origin from
/// `X-Forwarded-Host`.
#[tokio::test]
async fn nginx_copies_the_assertion_to_the_app() {
    let nginx = ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .find(|p| std::path::Path::new(p).is_file())
        .expect("nginx is not installed (apt-get install -y nginx; scripts/test installs it)");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let public = format!("http://127.0.0.1:{port}");
    let mut env = TestEnv::start_with(Options {
        public_base: Some(public.clone()),
        clock: Some(ManualClock::at_now()),
        tweak: Box::new(|raw, _| {
            raw.upstream = None;
            raw.forward_auth_trusted_proxies = Some(vec!["127.0.0.1/32".into()]);
            raw.assertion_header = Some("X-Portcullis-Assertion".into());
            raw.roles.insert("admin".into(), vec!["admins".into()]);
        }),
        ..Default::default()
    })
    .await;
    let dir = TempDir::new();
    let d = dir.0.display();
    let server = NGINX_WITH_ASSERTION
        .replace("{LISTEN}", &format!("127.0.0.1:{port}"))
        .replace("{PORTCULLIS}", &env.gw.addr.to_string())
        .replace("{APP}", &env.upstream.addr.to_string());
    let conf = format!(
        "master_process off;\ndaemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log info;\nevents {{ worker_connections 256; }}\nhttp {{\n  access_log {d}/access.log;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n{server}\n}}\n"
    );
    let file = dir.0.join("nginx.conf");
    std::fs::write(&file, conf).unwrap();
    let _nginx = tokio::process::Command::new(nginx)
        .arg("-p")
        .arg(&dir.0)
        .arg("-c")
        .arg(&file)
        .arg("-e")
        .arg(dir.0.join("error.log"))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("nginx starts");
    let mut up = false;
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            up = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        up,
        "nginx did not start: {}",
        std::fs::read_to_string(dir.0.join("error.log")).unwrap_or_default()
    );
    // From here on everything, sign-in included, goes through nginx.
    env.base = public.clone();
    let alice = Browser::new();
    alice.sign_in(&env, "/", ALICE.0, ALICE.1).await;
    let r = alice
        .get_with(
            &format!("{public}/reports"),
            &[("X-Portcullis-Assertion", "forged")],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let token = last_assertion(&env).expect("nginx copies the assertion");
    assert_ne!(token, "forged");
    let (_, set) = jwks(&public).await;
    let c = verify(&token, &set, &public, &public).unwrap();
    assert_eq!(c["sub"], "alice-sub-0001");
    assert_eq!(c["roles"], serde_json::json!(["admin"]));

    // Anonymous through nginx: refused, the app not reached.
    let before = env.upstream.count();
    let r = answer(
        reqwest::Client::new()
            .get(format!("{public}/reports"))
            .header("accept", "application/json")
            .header("X-Portcullis-Assertion", &token),
    )
    .await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(env.upstream.count(), before);
}
