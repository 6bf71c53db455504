//! A person signs in with a real browser (headless Debian Chromium) through the real OpenID
//! Provider and reaches the app behind Portcullis.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use serde_json::{Value, json};

/// Open a protected page, get sent to the OP's login form, sign in, land back on the page;
/// the browser keeps the session cookie as R-CK says and page scripts cannot read it.
#[tokio::test]
async fn browser_sign_in_reaches_the_app_and_logout_ends_it() {
    let env = TestEnv::start().await;
    let Some(seen) = run_browser(json!({
        "url": format!("{}/welcome?x=1", env.base),
        "user": ALICE.0,
        "password": ALICE.1,
        "user_field": "input[name=login]",
        "password_field": "input[name=password]",
        "submit": "button[type=submit]",
        "logout": format!("{}/api/logout", env.base),
        "api": {"path": "/api/items"},
        "screenshot_logout": screenshot("sign-out-page.png"),
        "screenshot_signed_out": screenshot("signed-out-page.png"),
    }))
    .await
    else {
        return;
    };
    assert!(
        seen["login_page"]
            .as_str()
            .unwrap()
            .starts_with(&env.op.issuer),
        "{seen}"
    );
    assert_eq!(seen["final_url"], format!("{}/welcome?x=1", env.base));
    assert_eq!(seen["body"], "upstream saw /welcome");
    let doc_cookie = seen["document_cookie"].as_str().unwrap();
    assert!(
        !doc_cookie.contains("__Host-session")
            && !doc_cookie.contains("__Host-fp")
            && !doc_cookie.contains("__Host-oidc_tx"),
        "{doc_cookie}"
    );
    // The one cookie the page may read: the CSRF token it echoes in X-CSRF-Token.
    assert!(doc_cookie.starts_with("csrf_token="), "{doc_cookie}");
    let cookies = seen["cookies"].as_array().unwrap();
    let session = cookies
        .iter()
        .find(|c| c["name"] == "__Host-session")
        .expect("session cookie kept");
    assert_eq!(session["secure"], true);
    assert_eq!(session["httpOnly"], true);
    assert_eq!(session["sameSite"], "Lax");
    assert_eq!(session["path"], "/");
    assert_eq!(seen["session_status"], 200);
    assert_eq!(seen["session"]["user"]["email"], "alice@example.com");
    assert_eq!(seen["logout_page_title"], "Sign out");
    assert!(
        seen["after_logout_body"]
            .as_str()
            .unwrap()
            .contains("You are signed out"),
        "{seen}"
    );
    assert_eq!(seen["session_status_after_logout"], 401);
    // RP-initiated logout: the IdP ended its session and sent the browser back to the
    // signed-out page; opening the app again asks for the password at the IdP.
    let after = url::Url::parse(seen["after_logout_url"].as_str().unwrap()).unwrap();
    assert_eq!(after.path(), "/.portcullis/signed-out", "{seen}");
    assert!(
        seen["after_logout_body"]
            .as_str()
            .unwrap()
            .contains("also signed out at your organisation's sign-in service"),
        "{seen}"
    );
    assert!(
        env.op
            .log()
            .await
            .iter()
            .any(|c| c["path"] == "/session/end/confirm"),
        "the OP ended its session"
    );
    assert_eq!(seen["after_logout_asks_password"], true, "{seen}");
    let left = seen["cookies_after_logout"].as_array().unwrap();
    assert!(
        !left
            .iter()
            .any(|c| c == "__Host-session" || c == "__Host-fp" || c == "csrf_token"),
        "{left:?}"
    );
    // The session ended server-side: its cookies, with a fresh proof from the browser's key
    // and the CSRF token, are refused and never reach the app.
    assert_eq!(seen["api"]["status"], 200, "{seen}");
    let req = &seen["api_request"];
    let before = env.upstream.count();
    let r = reqwest::Client::new()
        .post(req["url"].as_str().unwrap())
        .header("cookie", req["cookie"].as_str().unwrap())
        .header("x-csrf-token", req["csrf"].as_str().unwrap())
        .header("dpop", seen["proof_for_after_logout"].as_str().unwrap())
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(env.upstream.count(), before);
    let got = env
        .upstream
        .requests()
        .into_iter()
        .find(|r| r.uri == "/welcome?x=1")
        .unwrap();
    assert_eq!(
        got.one("x-forwarded-user").as_deref(),
        Some("alice-sub-0001")
    );
    assert_eq!(
        got.one("x-forwarded-groups").as_deref(),
        Some("admins,devs")
    );
    assert!(
        got.one("cookie")
            .is_none_or(|c| !c.contains("__Host-session"))
    );
}

/// Where the browser tests leave screenshots to look at (target/screenshots).
fn screenshot(name: &str) -> String {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name).display().to_string()
}

/// R-DP in a real browser: the sign-in page makes a non-extractable P-256 key (kept in
/// IndexedDB) and starts the login with a proof; the session is bound to that key; an API call
/// from the page through the browser client succeeds; after the clock jumps 25 minutes the
/// next call corrects its clock from `Date`, passes, and the session is re-issued without the
/// person noticing. The same request replayed outside the browser — the same proof, no
/// proof, another key's proof, no fingerprint cookie, no CSRF header, another origin — is
/// refused with SECURITY.md's status and never reaches the app.
#[tokio::test]
async fn r_dp_browser_key_binds_the_session_and_replays_are_refused() {
    let clock = portcullis_core::time::ManualClock::at_now();
    let env = TestEnv::start_with(Options {
        clock: Some(clock.clone()),
        ..Default::default()
    })
    .await;
    // The test's clock, moved by the browser script when it is time to.
    let advance = {
        let clock = clock.clone();
        let app = axum::Router::new().route(
            "/advance",
            axum::routing::post(move || {
                let clock = clock.clone();
                async move {
                    clock.advance(25 * 60);
                    "moved"
                }
            }),
        );
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(l, app).await });
        format!("http://{addr}/advance")
    };
    let Some(seen) = run_browser(json!({
        "url": format!("{}/reports", env.base),
        "user": ALICE.0,
        "password": ALICE.1,
        "user_field": "input[name=login]",
        "password_field": "input[name=password]",
        "submit": "button[type=submit]",
        "api": {"path": "/api/items", "advance_url": advance, "spare_proofs": 4},
        "screenshot_sign_in": screenshot("sign-in-page.png"),
    }))
    .await
    else {
        return;
    };
    assert_eq!(seen["passed_sign_in_page"], true, "{seen}");
    assert_eq!(seen["login_had_proof"], true, "{seen}");
    assert_eq!(seen["final_url"], format!("{}/reports", env.base));
    assert_eq!(seen["sign_in_page_title"], "Signing in");
    // R-DP-B-1: the private key is not extractable, not exportable, and kept in IndexedDB.
    let key = &seen["key"];
    assert_eq!(key["extractable"], false, "{key}");
    assert_eq!(key["exported"], "InvalidAccessError", "{key}");
    assert_eq!(key["algorithm"], "ECDSA");
    assert_eq!(key["curve"], "P-256");
    assert_eq!(key["in_indexeddb"], true, "{key}");
    assert_eq!(key["stored_extractable"], false, "{key}");
    // R-CK: the page sees only the CSRF cookie.
    let doc_cookie = seen["document_cookie"].as_str().unwrap();
    assert!(
        doc_cookie.starts_with("csrf_token=") && !doc_cookie.contains(';'),
        "{doc_cookie}"
    );
    let ours = ["__Host-session", "__Host-fp", "csrf_token"];
    // (Cookies are not isolated by port: the OP's own cookies on 127.0.0.1 are in the list.)
    for c in seen["cookies"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| ours.iter().any(|n| c["name"] == *n))
    {
        assert_eq!(c["secure"], true, "{c}");
        assert_eq!(c["path"], "/", "{c}");
        assert_eq!(c["sameSite"], "Lax", "{c}");
        assert_eq!(c["domain"], "127.0.0.1", "no Domain attribute: {c}");
        assert_eq!(c["httpOnly"], c["name"] != "csrf_token", "{c}");
    }
    assert_eq!(seen["session_status"], 200, "{seen}");
    // The API call from the page.
    assert_eq!(seen["api"]["status"], 200, "{seen}");
    assert_eq!(seen["api"]["body"], "upstream saw /api/items");
    // Refresh: the first call after the jump carried an iat by the old clock (401), the client
    // learnt the server's clock from `Date` and retried; the session cookie was re-issued.
    assert_eq!(seen["api_after_advance"]["status"], 200, "{seen}");
    assert_eq!(seen["api_after_advance_attempts"], 2, "{seen}");
    assert_eq!(seen["refreshed"], true, "{seen}");

    // The session is bound to the browser's key: cnf.jkt = the thumbprint of the proofs' jwk.
    let req = &seen["api_request"];
    let cookie = req["cookie"].as_str().unwrap().to_string();
    let jwt = cookie
        .split("; ")
        .find_map(|c| c.strip_prefix("__Host-session="))
        .unwrap();
    let claims = decode_part(jwt.split('.').nth(1).unwrap());
    let proof_header = decode_part(req["dpop"].as_str().unwrap().split('.').next().unwrap());
    assert_eq!(
        proof_header["jwk"].get("d"),
        None,
        "only the public key travels"
    );
    let jkt = claims["cnf"]["jkt"].as_str().unwrap();
    // The refreshed JWT: same session, a later expiry (by the gateway's clock).
    let first = seen["cookies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "__Host-session")
        .unwrap()["value"]
        .as_str()
        .unwrap()
        .to_string();
    let first = decode_part(first.split('.').nth(1).unwrap());
    assert_eq!(first["sid"], claims["sid"]);
    assert_eq!(first["cnf"], claims["cnf"]);
    assert!(claims["exp"].as_i64().unwrap() >= first["exp"].as_i64().unwrap() + 25 * 60);
    assert_eq!(jkt, thumbprint(&proof_header["jwk"]));

    let upstream_before = env.upstream.count();
    let url = req["url"].as_str().unwrap().to_string();
    let csrf = req["csrf"].as_str().unwrap().to_string();
    let send =
        |cookie: String, csrf: Option<String>, proof: Option<String>, origin: Option<&str>| {
            let mut r = reqwest::Client::new()
                .post(&url)
                .header("cookie", cookie)
                .header("accept", "application/json")
                .body("replayed");
            if let Some(c) = csrf {
                r = r.header("x-csrf-token", c);
            }
            if let Some(p) = proof {
                r = r.header("dpop", p);
            }
            if let Some(o) = origin {
                r = r.header("origin", o);
            }
            async move { r.send().await.unwrap() }
        };
    let dpop_401 = |r: &reqwest::Response, case: &str| {
        assert_eq!(r.status(), 401, "{case}");
        assert_eq!(
            r.headers()["www-authenticate"],
            r#"DPoP error="invalid_dpop_proof", algs="ES256""#,
            "{case}"
        );
        assert!(
            r.headers().get("set-cookie").is_none(),
            "{case}: no cookie set"
        );
    };
    let spare: Vec<String> = seen["spare_proofs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect();
    // R-DP check 10: the very request the page sent, replayed.
    let r = send(
        cookie.clone(),
        Some(csrf.clone()),
        req["dpop"].as_str().map(String::from),
        None,
    )
    .await;
    dpop_401(&r, "replayed proof");
    assert_eq!(r.text().await.unwrap(), r#"{"error":"unauthorized"}"#);
    // Stolen cookies without the key: no proof, or a proof from the thief's own key.
    dpop_401(
        &send(cookie.clone(), Some(csrf.clone()), None, None).await,
        "no proof",
    );
    let thief = DpopKey::new();
    let now = seen_server_now(&seen);
    let p = thief.proof("POST", &url, now, None);
    dpop_401(
        &send(cookie.clone(), Some(csrf.clone()), Some(p), None).await,
        "another key",
    );
    // R-FP-1: a valid proof, but no fingerprint cookie → 401 (unauthorized, not DPoP).
    let no_fp: String = cookie
        .split("; ")
        .filter(|c| !c.starts_with("__Host-fp="))
        .collect::<Vec<_>>()
        .join("; ");
    let r = send(no_fp, Some(csrf.clone()), Some(spare[0].clone()), None).await;
    assert_eq!(r.status(), 401, "no fingerprint cookie");
    assert_eq!(r.text().await.unwrap(), r#"{"error":"unauthorized"}"#);
    // R-CSRF-1: a valid proof, no CSRF header → 403.
    let r = send(cookie.clone(), None, Some(spare[1].clone()), None).await;
    assert_eq!(r.status(), 403, "no CSRF header");
    assert_eq!(r.text().await.unwrap(), r#"{"error":"csrf"}"#);
    // R-CSRF-3: a valid proof and token, from another origin → 403.
    let r = send(
        cookie.clone(),
        Some(csrf.clone()),
        Some(spare[2].clone()),
        Some("https://evil.example"),
    )
    .await;
    assert_eq!(r.status(), 403, "another origin");
    assert!(r.headers().get("access-control-allow-origin").is_none());
    assert_eq!(
        env.upstream.count(),
        upstream_before,
        "no refused request reached the app"
    );
    // Control: the last spare proof with everything right passes (the refusals above were for
    // the reason each case names).
    let r = send(cookie, Some(csrf), Some(spare[3].clone()), None).await;
    assert_eq!(r.status(), 200);
    assert_eq!(env.upstream.count(), upstream_before + 1);
}

fn decode_part(part: &str) -> Value {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// RFC 7638 thumbprint of a P-256 JWK.
fn thumbprint(jwk: &Value) -> String {
    use base64::Engine;
    let canonical = format!(
        r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
        jwk["x"].as_str().unwrap(),
        jwk["y"].as_str().unwrap()
    );
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, canonical.as_bytes()).as_ref(),
    )
}

/// The gateway's "now" when the browser made its last proof (its `iat`).
fn seen_server_now(seen: &Value) -> i64 {
    let p = seen["api_request"]["dpop"].as_str().unwrap();
    decode_part(p.split('.').nth(1).unwrap())["iat"]
        .as_i64()
        .unwrap()
}

/// R-DP-12 in a real browser: with server nonces on, the browser client's first proofs (for
/// the sign-in and for the first API call) are answered `use_dpop_nonce`; it retries once
/// with the nonce and the person notices nothing.
#[tokio::test]
async fn r_dp_12_browser_client_follows_server_nonces() {
    let env = TestEnv::start_with(Options {
        tweak: Box::new(|raw, _| raw.dpop_nonce = Some("true".into())),
        ..Default::default()
    })
    .await;
    let Some(seen) = run_browser(json!({
        "url": format!("{}/reports", env.base),
        "user": ALICE.0,
        "password": ALICE.1,
        "user_field": "input[name=login]",
        "password_field": "input[name=password]",
        "submit": "button[type=submit]",
        "api": {"path": "/api/items"},
    }))
    .await
    else {
        return;
    };
    assert_eq!(seen["final_url"], format!("{}/reports", env.base), "{seen}");
    assert_eq!(seen["session_status"], 200, "{seen}");
    assert_eq!(seen["api"]["status"], 200, "{seen}");
    let proof = decode_part(
        seen["api_request"]["dpop"]
            .as_str()
            .unwrap()
            .split('.')
            .nth(1)
            .unwrap(),
    );
    assert!(
        proof["nonce"].as_str().is_some_and(|n| n.len() == 43),
        "{proof}"
    );
}
