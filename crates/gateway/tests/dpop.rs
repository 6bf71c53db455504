//! Tier 3 through the gateway (R-DP, SECURITY.md §1.11): every proof check refused with the
//! exact answer of §0.3 — 401, `WWW-Authenticate: DPoP error="invalid_dpop_proof",
//! algs="ES256"`, `{"error":"unauthorized"}` — no cookie set, the app not reached; the binding
//! made at `POST /api/login`; server nonces; the scope of the check (API paths yes, pages no);
//! tier 3 turned off; CORS for configured frontend origins (R-CSRF-6).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::*;
use serde_json::{Value, json};

/// A signed-in browser (with its DPoP key) and the URL of an API path of the app.
async fn signed_in(env: &TestEnv) -> (Browser, String) {
    let b = Browser::new();
    b.sign_in(env, "/", ALICE.0, ALICE.1).await;
    (b, format!("{}/api/items", env.base))
}

/// `POST url` with the browser's cookies and CSRF token and the given `DPoP` header values.
async fn post_with(b: &Browser, env: &TestEnv, url: &str, proofs: &[&str]) -> reqwest::Response {
    let mut r = b
        .raw()
        .post(url)
        .header("cookie", b.session_cookies(&env.base))
        .header("x-csrf-token", b.csrf_token(&env.base))
        .header("accept", "application/json")
        .body("x");
    for p in proofs {
        r = r.header("dpop", *p);
    }
    r.send().await.unwrap()
}

/// §0.3's DPoP refusal, exactly; nothing set, the app not reached.
async fn assert_dpop_refused(
    env: &TestEnv,
    r: reqwest::Response,
    upstream_before: usize,
    case: &str,
) {
    assert_eq!(r.status(), 401, "[{case}]");
    assert_eq!(
        r.headers()["www-authenticate"],
        r#"DPoP error="invalid_dpop_proof", algs="ES256""#,
        "[{case}]"
    );
    assert!(
        r.headers().get("set-cookie").is_none(),
        "[{case}] no cookie"
    );
    assert_eq!(
        r.text().await.unwrap(),
        r#"{"error":"unauthorized"}"#,
        "[{case}]"
    );
    assert_eq!(env.upstream.count(), upstream_before, "[{case}] NP");
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

fn claims(b: &Browser, method: &str, url: &str) -> Value {
    let mut jti = [0u8; 18];
    aws_lc_rs::rand::fill(&mut jti).unwrap();
    json!({"jti": URL_SAFE_NO_PAD.encode(jti), "htm": method, "htu": htu(url), "iat": b.server_now()})
}

/// Replace a proof's signature with `sig`.
fn with_signature(proof: &str, sig: &[u8]) -> String {
    let (input, _) = proof.rsplit_once('.').unwrap();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

/// R-DP checks 1–9 and 11: each malformed or mismatched proof, sent by the rightful browser
/// with its valid cookies and CSRF token, is refused identically.
#[tokio::test]
async fn r_dp_every_proof_check_refuses() {
    let env = TestEnv::start().await;
    let (b, url) = signed_in(&env).await;
    let key = b.dpop.clone().unwrap();
    // Control: a correct proof passes.
    let ok = b.proof("POST", &url);
    assert_eq!(post_with(&b, &env, &url, &[&ok]).await.status(), 200);
    let before = env.upstream.count();

    let c = || claims(&b, "POST", &url);
    let h = || key.header();
    let other = DpopKey::new();
    let now = b.server_now();
    // A correct proof with one edit to its header, claims or signature.
    let header_with = |edit: &dyn Fn(&mut Value)| {
        let mut hd = h();
        edit(&mut hd);
        key.sign(&hd, &c())
    };
    let claims_with = |edit: &dyn Fn(&mut Value)| {
        let mut cl = c();
        edit(&mut cl);
        key.sign(&h(), &cl)
    };
    let signature_with = |edit: &dyn Fn(&mut Vec<u8>)| {
        let p = b.proof("POST", &url);
        let mut raw = URL_SAFE_NO_PAD
            .decode(p.rsplit_once('.').unwrap().1)
            .unwrap();
        edit(&mut raw);
        with_signature(&p, &raw)
    };
    let mut cases: Vec<(&str, Vec<String>)> = vec![
        ("R-DP-1 no DPoP header", vec![]),
        (
            "R-DP-1 two DPoP headers",
            vec![b.proof("POST", &url), b.proof("POST", &url)],
        ),
        (
            "R-DP-1 over 8 KiB",
            vec![claims_with(&|cl| {
                cl["pad"] = json!("x".repeat(8 * 1024));
            })],
        ),
        ("R-DP-1 not a JWS", vec!["not.a-jws".into()]),
        (
            "R-DP-2 typ JWT",
            vec![header_with(&|hd| {
                hd["typ"] = json!("JWT");
            })],
        ),
        (
            "R-DP-2 typ absent",
            vec![header_with(&|hd| {
                hd.as_object_mut().unwrap().remove("typ");
            })],
        ),
        (
            "R-DP-3 alg none",
            vec![{
                let mut hd = h();
                hd["alg"] = json!("none");
                format!("{}.{}.", b64(&hd), b64(&c()))
            }],
        ),
        (
            "R-DP-3 alg HS256",
            vec![header_with(&|hd| {
                hd["alg"] = json!("HS256");
            })],
        ),
        (
            "R-DP-3 alg ES384",
            vec![header_with(&|hd| {
                hd["alg"] = json!("ES384");
            })],
        ),
        (
            "R-DP-4 jwk with private d",
            vec![header_with(&|hd| {
                hd["jwk"]["d"] = json!(URL_SAFE_NO_PAD.encode([7u8; 32]));
            })],
        ),
        (
            "R-DP-4 jwk x of 31 bytes",
            vec![header_with(&|hd| {
                hd["jwk"]["x"] = json!(URL_SAFE_NO_PAD.encode([1u8; 31]));
            })],
        ),
        (
            "R-DP-4 jwk point not on the curve",
            vec![header_with(&|hd| {
                hd["jwk"]["y"] = json!(URL_SAFE_NO_PAD.encode([1u8; 32]));
            })],
        ),
        (
            "R-DP-4 jwk P-384",
            vec![header_with(&|hd| {
                hd["jwk"]["crv"] = json!("P-384");
            })],
        ),
        (
            "R-DP-4 jwk missing",
            vec![header_with(&|hd| {
                hd.as_object_mut().unwrap().remove("jwk");
            })],
        ),
        (
            "R-DP-5 signature by another key",
            vec![other.sign(&h(), &c())],
        ),
        (
            "R-DP-5 DER signature",
            vec![{
                let p = b.proof("POST", &url);
                let raw = URL_SAFE_NO_PAD
                    .decode(p.rsplit_once('.').unwrap().1)
                    .unwrap();
                let mut der = vec![0x30, 0x44, 0x02, 0x20];
                der.extend_from_slice(&raw[..32]);
                der.extend_from_slice(&[0x02, 0x20]);
                der.extend_from_slice(&raw[32..]);
                with_signature(&p, &der)
            }],
        ),
        (
            "R-DP-5 R = 0",
            vec![signature_with(&|raw| {
                raw[..32].fill(0);
            })],
        ),
        (
            "R-DP-5 S = n (not below the order)",
            vec![signature_with(&|raw| {
                let n = hex32("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551");
                raw[32..].copy_from_slice(&n);
            })],
        ),
        (
            "R-DP-6 jti too short",
            vec![claims_with(&|cl| {
                cl["jti"] = json!("short");
            })],
        ),
        (
            "R-DP-6 jti a number",
            vec![claims_with(&|cl| {
                cl["jti"] = json!(1234567890123456789u64);
            })],
        ),
        (
            "R-DP-6 iat a string",
            vec![claims_with(&|cl| {
                cl["iat"] = json!(now.to_string());
            })],
        ),
        (
            "R-DP-6 htm missing",
            vec![claims_with(&|cl| {
                cl.as_object_mut().unwrap().remove("htm");
            })],
        ),
        (
            "R-DP-7 htm lowercase",
            vec![key.sign(&h(), &claims(&b, "post", &url))],
        ),
        (
            "R-DP-7 htm GET for a POST",
            vec![key.sign(&h(), &claims(&b, "GET", &url))],
        ),
        (
            "R-DP-8 htu another path",
            vec![key.sign(
                &h(),
                &claims(&b, "POST", &format!("{}/api/other", env.base)),
            )],
        ),
        (
            "R-DP-8 htu another host",
            vec![key.sign(&h(), &claims(&b, "POST", "https://evil.example/api/items"))],
        ),
        (
            "R-DP-8 htu with a query",
            vec![claims_with(&|cl| {
                cl["htu"] = json!(format!("{url}?a=1"));
            })],
        ),
        (
            "R-DP-8 htu with a fragment",
            vec![claims_with(&|cl| {
                cl["htu"] = json!(format!("{url}#f"));
            })],
        ),
        (
            "R-DP-8 htu trailing slash",
            vec![claims_with(&|cl| {
                cl["htu"] = json!(format!("{url}/"));
            })],
        ),
        (
            "R-DP-8 htu path case",
            vec![claims_with(&|cl| {
                cl["htu"] = json!(url.replace("/api/items", "/api/Items"));
            })],
        ),
        (
            "R-DP-9 iat 121 s old",
            vec![claims_with(&|cl| {
                cl["iat"] = json!(now - 121);
            })],
        ),
        (
            "R-DP-9 iat 60 s ahead (over the 30 s allowed)",
            vec![claims_with(&|cl| {
                cl["iat"] = json!(now + 60);
            })],
        ),
        // R-DP-11: a valid proof from a key other than the session's.
        (
            "R-DP-11 another key's valid proof",
            vec![other.proof("POST", &url, now, None)],
        ),
    ];
    for (case, proofs) in cases.drain(..) {
        let refs: Vec<&str> = proofs.iter().map(String::as_str).collect();
        let r = post_with(&b, &env, &url, &refs).await;
        assert_dpop_refused(&env, r, before, case).await;
    }
    // Equivalent htu spellings are accepted (RFC 3986 §6.2.2–6.2.3): scheme case, `%7E` for `~`.
    let tilde = format!("{}/api/~me", env.base);
    let mut cl = claims(&b, "POST", &tilde);
    cl["htu"] = json!(format!("{}/api/%7Eme", env.base).replace("http://", "HTTP://"));
    let r = post_with(&b, &env, &tilde, &[&key.sign(&h(), &cl)]).await;
    assert_eq!(r.status(), 200, "normalised htu must match");
    // The rightful request still works after all that.
    let r = post_with(&b, &env, &url, &[&b.proof("POST", &url)]).await;
    assert_eq!(r.status(), 200);
}

fn hex32(s: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
    }
    out
}

/// R-DP check 10: a proof is good once — also for a GET, and also when replayed at once.
#[tokio::test]
async fn r_dp_10_a_proof_is_accepted_once() {
    let env = TestEnv::start().await;
    let (b, url) = signed_in(&env).await;
    let p = b.proof("POST", &url);
    assert_eq!(post_with(&b, &env, &url, &[&p]).await.status(), 200);
    let before = env.upstream.count();
    assert_dpop_refused(
        &env,
        post_with(&b, &env, &url, &[&p]).await,
        before,
        "replay",
    )
    .await;
    // GET on an API path needs a proof too, and the same rule.
    let g = b.proof("GET", &url);
    let get = |p: &str| {
        b.raw()
            .get(&url)
            .header("cookie", b.session_cookies(&env.base))
            .header("accept", "application/json")
            .header("dpop", p.to_string())
            .send()
    };
    assert_eq!(get(&g).await.unwrap().status(), 200);
    let before = env.upstream.count();
    assert_dpop_refused(&env, get(&g).await.unwrap(), before, "GET replay").await;
}

/// R-DP scope: page navigations (outside the DPoP paths) never need a proof; Portcullis's own
/// session API always does; the sign-out page is a page.
#[tokio::test]
async fn r_dp_scope_pages_free_api_bound() {
    let env = TestEnv::start().await;
    let (b, _) = signed_in(&env).await;
    let page = b
        .raw()
        .get(format!("{}/reports", env.base))
        .header("cookie", b.session_cookies(&env.base))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200, "a page needs no proof");
    let logout_page = b
        .raw()
        .get(format!("{}/api/logout", env.base))
        .header("cookie", b.session_cookies(&env.base))
        .send()
        .await
        .unwrap();
    assert_eq!(logout_page.status(), 200);
    let session = b
        .raw()
        .get(format!("{}/api/session", env.base))
        .header("cookie", b.session_cookies(&env.base))
        .send()
        .await
        .unwrap();
    assert_eq!(session.status(), 401);
    assert!(
        session.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("DPoP ")
    );
    // With a proof (the harness browser adds one on /api/ paths), it answers.
    assert_eq!(b.session_status(&env.base).await, 200);
    // POST /api/logout without a proof: refused, the session lives on.
    let r = b
        .raw()
        .post(format!("{}/api/logout", env.base))
        .header("cookie", b.session_cookies(&env.base))
        .header("x-csrf-token", b.csrf_token(&env.base))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().get("set-cookie").is_none());
    assert_eq!(b.session_status(&env.base).await, 200);
    // With one, it ends the session.
    assert_eq!(post_logout(&b, &env).await.status, 200);
    assert_eq!(b.session_status(&env.base).await, 401);
}

/// R-DP-B: `POST /api/login` without a valid proof starts nothing (no transaction stored, no
/// tx cookie); a GET of `/api/login` is the sign-in page; a sign-in completes bound to the
/// key that signed the login proof (`cnf.jkt`).
#[tokio::test]
async fn r_dp_b_login_needs_a_proof_and_binds_the_session() {
    let env = TestEnv::start().await;
    let login = format!("{}/api/login?rd=%2Freports", env.base);
    let anon = Browser::without_dpop();
    let page = anon.get(&login).await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("src=\"/.portcullis/sign-in.js\""),
        "{}",
        page.body
    );
    assert!(page.body.contains("<noscript>"));
    assert_eq!(page.header("cache-control").as_deref(), Some("no-store"));
    assert!(
        page.header("content-security-policy")
            .unwrap()
            .contains("script-src 'self'")
    );
    assert!(page.set_cookies().is_empty(), "the page stores nothing");
    for (case, proof) in [
        ("no proof", None),
        ("garbage", Some("x.y.z".to_string())),
        (
            "proof for GET",
            Some(DpopKey::new().proof("GET", &login, anon.server_now(), None)),
        ),
        (
            "proof for another path",
            Some(DpopKey::new().proof(
                "POST",
                &format!("{}/api/session", env.base),
                anon.server_now(),
                None,
            )),
        ),
    ] {
        let mut r = anon.raw().post(&login).header("accept", "application/json");
        if let Some(p) = proof {
            r = r.header("dpop", p);
        }
        let r = r.send().await.unwrap();
        assert_eq!(r.status(), 401, "[{case}]");
        assert!(
            r.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .contains("invalid_dpop_proof")
        );
        assert!(
            r.headers().get("set-cookie").is_none(),
            "[{case}] no tx cookie"
        );
        assert_eq!(env.login_txs().await, 0, "[{case}] nothing stored");
    }
    // From another origin: 403 before anything.
    let key = DpopKey::new();
    let r = anon
        .raw()
        .post(&login)
        .header("origin", "https://evil.example")
        .header("dpop", key.proof("POST", &login, anon.server_now(), None))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(env.login_txs().await, 0);
    // The harness browser does what the sign-in page's script does.
    let b = Browser::new();
    let r = b.sign_in(&env, "/reports", ALICE.0, ALICE.1).await;
    assert!(r.location().unwrap().ends_with("/reports"));
    let jwt = b.cookie(&env.base, "__Host-session").unwrap();
    let claims: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(jwt.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["cnf"]["jkt"], b.dpop.as_ref().unwrap().thumbprint());
}

/// R-DP-12: with server nonces on, a proof without the current nonce is answered 401
/// `use_dpop_nonce` with a `DPoP-Nonce`; the client retries with it and passes; successful
/// answers keep the nonce current.
#[tokio::test]
async fn r_dp_12_server_nonce() {
    let env = TestEnv::start_with(Options {
        tweak: Box::new(|raw, _| raw.dpop_nonce = Some("true".into())),
        ..Default::default()
    })
    .await;
    // Sign-in itself goes through the nonce dance (the harness retries as client.js does).
    let (b, url) = signed_in(&env).await;
    let key = b.dpop.clone().unwrap();
    let before = env.upstream.count();
    let r = post_with(
        &b,
        &env,
        &url,
        &[&key.proof("POST", &url, b.server_now(), None)],
    )
    .await;
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.headers()["www-authenticate"],
        r#"DPoP error="use_dpop_nonce", algs="ES256""#
    );
    let nonce = r.headers()["dpop-nonce"].to_str().unwrap().to_string();
    assert!(r.headers().get("set-cookie").is_none());
    assert_eq!(env.upstream.count(), before);
    let r = post_with(
        &b,
        &env,
        &url,
        &[&key.proof("POST", &url, b.server_now(), Some("stale-or-made-up"))],
    )
    .await;
    assert_eq!(r.status(), 401);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("use_dpop_nonce")
    );
    let r = post_with(
        &b,
        &env,
        &url,
        &[&key.proof("POST", &url, b.server_now(), Some(&nonce))],
    )
    .await;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers().get("dpop-nonce").is_some(),
        "the nonce is kept current"
    );
    assert_eq!(env.upstream.count(), before + 1);
}

/// Tier 3 off (`PORTCULLIS_DPOP=false`): `/api/login` goes straight to the IdP, sessions carry
/// no `cnf`, and API requests need no proof — the documented cost.
#[tokio::test]
async fn dpop_off_binds_nothing() {
    let env = TestEnv::start_with(Options {
        tweak: Box::new(|raw, _| raw.dpop = Some("false".into())),
        ..Default::default()
    })
    .await;
    let b = Browser::without_dpop();
    let r = b.get(&format!("{}/api/login", env.base)).await;
    assert_eq!(r.status, 302, "straight to the IdP");
    b.sign_in(&env, "/", ALICE.0, ALICE.1).await;
    let jwt = b.cookie(&env.base, "__Host-session").unwrap();
    let claims: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(jwt.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    assert!(claims.get("cnf").is_none());
    let url = format!("{}/api/items", env.base);
    assert_eq!(post_with(&b, &env, &url, &[]).await.status(), 200);
    assert_eq!(b.session_status(&env.base).await, 200);
}

/// R-DP-B: a session minted while tier 3 was off is not accepted once it is on (no unbound
/// session exists while DPoP is on): 401 on the API, a fresh sign-in for pages.
#[tokio::test]
async fn r_dp_b_unbound_session_refused_when_dpop_is_on() {
    let env = TestEnv::start().await;
    let keys = portcullis_core::session::SessionKeys::derive(JWT_SECRET);
    let b = Browser::new();
    b.sign_in(&env, "/", ALICE.0, ALICE.1).await;
    // Re-sign the session's claims without cnf (what a DPoP-off gateway issued).
    let jwt = b.cookie(&env.base, "__Host-session").unwrap();
    let mut claims =
        portcullis_core::session::SessionClaims::verify(&jwt, &keys, &env.base, b.server_now())
            .unwrap();
    assert!(claims.jkt.is_some());
    claims.jkt = None;
    b.set_cookie(&env.base, "__Host-session", &claims.issue(&keys));
    let before = env.upstream.count();
    let url = format!("{}/api/items", env.base);
    let r = post_with(&b, &env, &url, &[&b.proof("POST", &url)]).await;
    assert_eq!(r.status(), 401);
    assert_eq!(env.upstream.count(), before);
    let page = b
        .raw()
        .get(format!("{}/reports", env.base))
        .header("cookie", b.session_cookies(&env.base))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 302, "pages send the person to sign in again");
}

/// R-CSRF-6: CORS only for configured frontend origins — the exact origin with credentials,
/// never `*`, never a reflected origin; preflights answered by Portcullis; the app's own CORS
/// headers replaced.
#[tokio::test]
async fn r_csrf_6_cors_for_configured_origins_only() {
    let env = TestEnv::start_with(Options {
        tweak: Box::new(|raw, _| raw.cors_origins = Some(vec!["https://app.example.com".into()])),
        ..Default::default()
    })
    .await;
    let (b, url) = signed_in(&env).await;
    let http = reqwest::Client::new();
    let preflight = |origin: &str| {
        http.request(reqwest::Method::OPTIONS, &url)
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "dpop, x-csrf-token")
            .send()
    };
    let before = env.upstream.count();
    let r = preflight("https://app.example.com").await.unwrap();
    assert_eq!(r.status(), 204);
    let h = r.headers();
    assert_eq!(h["access-control-allow-origin"], "https://app.example.com");
    assert_eq!(h["access-control-allow-credentials"], "true");
    assert!(
        h["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("dpop")
    );
    assert!(
        h["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("x-csrf-token")
    );
    assert_eq!(h["vary"], "Origin");
    for evil in [
        "https://evil.example",
        "https://app.example.com.evil.example",
        "null",
        "https://APP.example.com",
    ] {
        let r = preflight(evil).await.unwrap();
        assert_eq!(r.status(), 403, "{evil}");
        assert!(
            r.headers().get("access-control-allow-origin").is_none(),
            "{evil}"
        );
    }
    assert_eq!(
        env.upstream.count(),
        before,
        "preflights never reach the app"
    );
    // A credentialed request from the configured origin passes CSRF's Origin check and is
    // granted to that origin only.
    let mut r = b
        .raw()
        .post(&url)
        .header("cookie", b.session_cookies(&env.base))
        .header("x-csrf-token", b.csrf_token(&env.base))
        .header("origin", "https://app.example.com")
        .header("sec-fetch-site", "cross-site")
        .header("dpop", b.proof("POST", &url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    assert_eq!(r.headers()["access-control-allow-credentials"], "true");
    assert!(
        r.headers()["access-control-expose-headers"]
            .to_str()
            .unwrap()
            .contains("dpop-nonce")
    );
    // From an origin not configured: refused (403 csrf), and no CORS grant.
    r = b
        .raw()
        .post(&url)
        .header("cookie", b.session_cookies(&env.base))
        .header("x-csrf-token", b.csrf_token(&env.base))
        .header("origin", "https://evil.example")
        .header("dpop", b.proof("POST", &url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.headers().get("access-control-allow-origin").is_none());
    // A GET from an unconfigured origin gets its answer without any grant (the browser then
    // hides it from that origin's script).
    let r = b
        .raw()
        .get(format!("{}/reports", env.base))
        .header("cookie", b.session_cookies(&env.base))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("access-control-allow-origin").is_none());
}

/// The browser client is served by Portcullis as a JavaScript module.
#[tokio::test]
async fn browser_client_is_served() {
    let env = TestEnv::start().await;
    let r = reqwest::get(format!("{}/.portcullis/client.js", env.base))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    let body = r.text().await.unwrap();
    assert!(body.contains("export async function portcullisFetch"));
    assert!(
        body.contains("false, ["),
        "the key is generated non-extractable"
    );
    let r = reqwest::get(format!("{}/.portcullis/nope.js", env.base))
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}
