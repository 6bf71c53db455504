//! Browser session tiers: the fingerprint cookie (R-FP), automatic refresh and lifetimes
//! (R-SJ-4), and the session JWT never accepted outside its cookie (R-SJ-6). Time moves on
//! the gateway's clock, never by sleeping.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use common::*;
use portcullis_core::time::ManualClock;

async fn env_with_clock(tweak: Tweak) -> (TestEnv, Arc<ManualClock>) {
    let clock = ManualClock::at_now();
    let env = TestEnv::start_with(Options {
        clock: Some(clock.clone()),
        tweak,
        ..Default::default()
    })
    .await;
    (env, clock)
}

fn json_get<'a>(b: &'a Browser, url: &'a str) -> impl std::future::Future<Output = Resp> + 'a {
    b.get_with(url, &[("accept", "application/json")])
}

/// The `Set-Cookie` for `name` with a value (not a deletion), if any.
fn set_value(r: &Resp, name: &str) -> Option<String> {
    r.set_cookies()
        .into_iter()
        .find(|c| c.starts_with(&format!("{name}=")) && !c.contains("Max-Age=0"))
}

/// R-FP-1, R-CK: the fingerprint cookie's attributes; a session JWT without its fingerprint
/// cookie, or with another one, is worthless (401, upstream not reached).
#[tokio::test]
async fn r_fp_1_session_without_its_fingerprint_is_refused() {
    let env = TestEnv::start().await;
    let b = Browser::new();
    let r = b.sign_in(&env, "/", ALICE.0, ALICE.1).await;
    let fp = set_value(&r, "__Host-fp").expect("the fingerprint cookie is set at sign-in");
    assert!(
        fp.ends_with("; Path=/; Max-Age=43200; HttpOnly; SameSite=Lax; Secure"),
        "{fp}"
    );
    let jwt = b.cookie(&env.base, "__Host-session").unwrap();
    let url = format!("{}/api/data", env.base);
    assert_eq!(
        json_get(&b, &url).await.status,
        200,
        "both cookies: signed in"
    );
    let before = env.upstream.count();

    let thief = Browser::new();
    thief.set_cookie(&env.base, "__Host-session", &jwt);
    let r = json_get(&thief, &url).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body, r#"{"error":"unauthorized"}"#);
    assert!(!r.sets_session());
    thief.set_cookie(&env.base, "__Host-session", &jwt);
    thief.set_cookie(
        &env.base,
        "__Host-fp",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    );
    let r = json_get(&thief, &url).await;
    assert_eq!(r.status, 401, "another fingerprint");
    // A browser without it is sent to sign in.
    thief.set_cookie(&env.base, "__Host-session", &jwt);
    thief.clear_cookie(&env.base, "__Host-fp");
    let r = thief.get(&format!("{}/page", env.base)).await;
    assert_eq!(r.status, 302);
    assert!(r.location().unwrap().contains("/api/login"));
    assert_eq!(env.upstream.count(), before, "NP");
    // The rightful browser is unaffected.
    assert_eq!(json_get(&b, &url).await.status, 200);
}

/// R-SJ-6: the session JWT in `Authorization: Bearer` is never accepted, even with the
/// fingerprint cookie.
#[tokio::test]
async fn r_sj_6_session_jwt_as_bearer_is_refused() {
    let env = TestEnv::start().await;
    let b = Browser::new();
    b.sign_in(&env, "/", ALICE.0, ALICE.1).await;
    let jwt = b.cookie(&env.base, "__Host-session").unwrap();
    let fp = b.cookie(&env.base, "__Host-fp").unwrap();
    let before = env.upstream.count();
    let r = Browser::new()
        .get_with(
            &format!("{}/api/data", env.base),
            &[
                ("authorization", &format!("Bearer {jwt}")),
                ("cookie", &format!("__Host-fp={fp}")),
                ("accept", "application/json"),
            ],
        )
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body, r#"{"error":"unauthorized"}"#);
    assert_eq!(env.upstream.count(), before, "NP");
}

/// R-SJ-4: a JWT with less than 10 minutes left is re-issued on a request that passes every
/// check (same session, same fingerprint, new expiry, `no-store`); a quiet period longer than
/// the TTL ends the session — an expired JWT is never refreshed.
#[tokio::test]
async fn r_sj_4_refresh_while_active_and_never_after_expiry() {
    let (env, clock) = env_with_clock(Box::new(|_, _| {})).await;
    let b = Browser::new();
    b.sign_in(&env, "/", ALICE.0, ALICE.1).await;
    let url = format!("{}/api/session", env.base);
    let first: serde_json::Value = serde_json::from_str(&json_get(&b, &url).await.body).unwrap();
    let jwt1 = b.cookie(&env.base, "__Host-session").unwrap();

    // 15 minutes in: nothing to do yet.
    clock.advance(15 * 60);
    let r = json_get(&b, &url).await;
    assert_eq!(r.status, 200);
    assert!(set_value(&r, "__Host-session").is_none(), "not due yet");

    // 25 minutes in: re-issued.
    clock.advance(10 * 60);
    let r = json_get(&b, &url).await;
    assert_eq!(r.status, 200);
    let c = set_value(&r, "__Host-session").expect("refreshed");
    assert!(c.contains("Max-Age=1800") && c.contains("HttpOnly"), "{c}");
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
    assert!(
        set_value(&r, "__Host-fp").is_none(),
        "the fingerprint stays"
    );
    let jwt2 = b.cookie(&env.base, "__Host-session").unwrap();
    assert_ne!(jwt1, jwt2);
    let second: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(
        second["session"]["auth_time"], first["session"]["auth_time"],
        "same sign-in"
    );
    // The refreshed JWT carries the new expiry.
    let r: serde_json::Value = serde_json::from_str(&json_get(&b, &url).await.body).unwrap();
    assert_eq!(
        r["session"]["expires_at"].as_i64().unwrap(),
        first["session"]["auth_time"].as_i64().unwrap() + 25 * 60 + 1800
    );
    // The earlier JWT of the same session stays valid until its own expiry.
    let old = b.with_same_key();
    old.set_cookie(&env.base, "__Host-session", &jwt1);
    old.set_cookie(
        &env.base,
        "__Host-fp",
        &b.cookie(&env.base, "__Host-fp").unwrap(),
    );
    assert_eq!(json_get(&old, &url).await.status, 200);

    // Idle for longer than the TTL: expired, refused, not refreshed, cookies cleared.
    clock.advance(31 * 60);
    let r = json_get(&b, &url).await;
    assert_eq!(r.status, 401);
    assert!(set_value(&r, "__Host-session").is_none(), "never refreshed");
    assert!(
        r.set_cookies()
            .iter()
            .any(|c| c.starts_with("__Host-session=;") && c.contains("Max-Age=0"))
    );
}

/// R-SJ-4: refreshes stop at the absolute lifetime (configurable), then 401.
#[tokio::test]
async fn r_sj_4_absolute_lifetime_ends_an_active_session() {
    let (env, clock) = env_with_clock(Box::new(|raw, _| {
        raw.session_max_lifetime = Some("3600".into());
    }))
    .await;
    let b = Browser::new();
    b.sign_in(&env, "/", ALICE.0, ALICE.1).await;
    let url = format!("{}/api/data", env.base);
    let max_age = |r: &Resp| -> Option<i64> {
        let c = set_value(r, "__Host-session")?;
        c.split("Max-Age=").nth(1)?.split(';').next()?.parse().ok()
    };
    let mut max_ages = Vec::new();
    // At 25 min, 50 min and 59:50 after sign-in.
    for step in [25 * 60, 25 * 60, 9 * 60 + 50] {
        clock.advance(step);
        let r = json_get(&b, &url).await;
        assert_eq!(r.status, 200, "{step}");
        max_ages.extend(max_age(&r));
    }
    // Re-issued at 25 min (a full TTL) and at 50 min (only up to the hour); at 59:50 there is
    // nothing left to extend.
    assert_eq!(max_ages, vec![1800, 600]);
    clock.advance(10);
    let r = json_get(&b, &url).await;
    assert_eq!(r.status, 401, "past the absolute lifetime");
    assert!(set_value(&r, "__Host-session").is_none());
}

/// The three session cookies of a signed-in browser, as one `Cookie` header value, with the
/// csrf cookie's value replaced when `csrf` is given.
fn cookie_header(b: &Browser, env: &TestEnv, csrf: Option<&str>) -> String {
    let c = |n: &str| b.cookie(&env.base, n).unwrap();
    format!(
        "__Host-session={}; __Host-fp={}; csrf_token={}",
        c("__Host-session"),
        c("__Host-fp"),
        csrf.map(str::to_string).unwrap_or_else(|| c("csrf_token"))
    )
}

/// R-CSRF-1/2/3, R-CK: the readable csrf cookie; an unsafe request to the app needs
/// `X-CSRF-Token` equal to it and bound to the session, from our own origin — otherwise 403
/// `{"error":"csrf"}` and the app never sees it. Safe methods need nothing.
#[tokio::test]
async fn r_csrf_unsafe_requests_need_the_sessions_token() {
    let env = TestEnv::start().await;
    let b = Browser::new();
    let r = b.sign_in(&env, "/", ALICE.0, ALICE.1).await;
    let c = set_value(&r, "csrf_token").expect("the csrf cookie is set at sign-in");
    assert!(
        c.ends_with("; Path=/; Max-Age=43200; SameSite=Lax; Secure") && !c.contains("HttpOnly"),
        "{c}"
    );
    let token = b.cookie(&env.base, "csrf_token").unwrap();
    let url = format!("{}/api/items", env.base);
    let http = reqwest::Client::new();
    let send = |headers: Vec<(&'static str, String)>, method: reqwest::Method| {
        // A valid proof from the session's key: these requests fail for CSRF alone.
        let mut r = http
            .request(method.clone(), &url)
            .header("accept", "application/json")
            .header("dpop", b.proof(method.as_str(), &url));
        for (k, v) in headers {
            r = r.header(k, v);
        }
        r.send()
    };
    let before = env.upstream.count();
    let planted = "PLANTEDplantedPLANTEDplantedPLANTEDplanted1".to_string();
    for (what, headers) in [
        ("no header", vec![("cookie", cookie_header(&b, &env, None))]),
        (
            "header differs from the cookie",
            vec![
                ("cookie", cookie_header(&b, &env, None)),
                ("x-csrf-token", planted.clone()),
            ],
        ),
        (
            "a pair planted by a sibling subdomain",
            vec![
                ("cookie", cookie_header(&b, &env, Some(&planted))),
                ("x-csrf-token", planted.clone()),
            ],
        ),
        (
            "another origin",
            vec![
                ("cookie", cookie_header(&b, &env, None)),
                ("x-csrf-token", token.clone()),
                ("origin", "https://evil.example".into()),
            ],
        ),
        (
            "a cross-site request",
            vec![
                ("cookie", cookie_header(&b, &env, None)),
                ("x-csrf-token", token.clone()),
                ("sec-fetch-site", "cross-site".into()),
            ],
        ),
    ] {
        for m in [reqwest::Method::POST, reqwest::Method::DELETE] {
            let r = send(headers.clone(), m.clone()).await.unwrap();
            assert_eq!(r.status(), 403, "{what} ({m})");
            assert!(r.headers().get("set-cookie").is_none(), "{what}");
            assert_eq!(r.text().await.unwrap(), r#"{"error":"csrf"}"#, "{what}");
        }
    }
    assert_eq!(env.upstream.count(), before, "NP");
    // GET needs no token; the right token passes.
    let r = send(
        vec![("cookie", cookie_header(&b, &env, None))],
        reqwest::Method::GET,
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let r = send(
        vec![
            ("cookie", cookie_header(&b, &env, None)),
            ("x-csrf-token", token.clone()),
            ("origin", env.base.clone()),
        ],
        reqwest::Method::POST,
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let got = env.upstream.requests().pop().unwrap();
    assert_eq!(got.method, "POST");
    assert!(got.header("x-forwarded-user").len() == 1);
    let cookie = got.one("cookie").unwrap_or_default();
    assert!(
        !cookie.contains("csrf_token"),
        "gateway cookies never reach the app"
    );
}

/// R-CSRF on logout: without the token (header or the sign-out page's form field) the
/// session is not ended; the page's form carries it.
#[tokio::test]
async fn r_csrf_logout_needs_the_token_and_the_sign_out_page_has_it() {
    let env = TestEnv::start().await;
    let b = Browser::new();
    b.sign_in(&env, "/", ALICE.0, ALICE.1).await;
    let token = b.cookie(&env.base, "csrf_token").unwrap();
    let logout = format!("{}/api/logout", env.base);
    let http = b.raw().clone();
    let r = http
        .post(&logout)
        .header("cookie", cookie_header(&b, &env, None))
        .header("dpop", b.proof("POST", &logout))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.headers().get("set-cookie").is_none());
    assert_eq!(b.session_status(&env.base).await, 200, "still signed in");
    // The sign-out page holds the token in its form.
    let page = b.get(&logout).await;
    assert!(
        page.body
            .contains(&format!(r#"name="csrf_token" value="{token}""#)),
        "{}",
        page.body
    );
    // A wrong form token is refused; the right one signs out.
    let r = http
        .post(&logout)
        .header("cookie", cookie_header(&b, &env, None))
        .header("dpop", b.proof("POST", &logout))
        .form(&[("csrf_token", "wrong")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = http
        .post(&logout)
        .header("cookie", cookie_header(&b, &env, None))
        .header("dpop", b.proof("POST", &logout))
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .unwrap();
    // Signed out here, and sent on to end the IdP session (RP-initiated logout).
    assert_eq!(r.status(), 303);
    let cleared: Vec<String> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    for name in ["__Host-session=;", "__Host-fp=;", "csrf_token=;"] {
        assert!(
            cleared.iter().any(|c| c.starts_with(name)),
            "{name} {cleared:?}"
        );
    }
    assert_eq!(b.session_status(&env.base).await, 401);
}

/// R-CK-4: every response that sets or clears an auth cookie says `Cache-Control: no-store` —
/// login start, callback, refresh, clearing a stale session, logout.
#[tokio::test]
async fn r_ck_4_every_cookie_response_is_no_store() {
    let (env, clock) = env_with_clock(Box::new(|_, _| {})).await;
    let b = Browser::new();
    let cb = b.start_login(&env, "/", ALICE.0, ALICE.1).await;
    let r = b.get(&cb).await;
    assert!(r.sets_session());
    assert_eq!(
        r.header("cache-control").as_deref(),
        Some("no-store"),
        "callback"
    );
    // The login start (the tx cookie), as the sign-in page's script sends it.
    let login = format!("{}/api/login", env.base);
    let r = b
        .send(
            b.raw().post(&login).header("accept", "application/json"),
            &login,
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(
        r.set_cookies()
            .iter()
            .any(|c| c.starts_with("__Host-oidc_tx="))
    );
    assert_eq!(
        r.header("cache-control").as_deref(),
        Some("no-store"),
        "login"
    );
    // Refresh.
    clock.advance(25 * 60);
    let url = format!("{}/api/items", env.base);
    let r = json_get(&b, &url).await;
    assert!(set_value(&r, "__Host-session").is_some(), "refreshed");
    assert_eq!(
        r.header("cache-control").as_deref(),
        Some("no-store"),
        "refresh"
    );
    // Logout.
    let r = post_logout(&b, &env).await;
    assert!(r.set_cookies().iter().any(|c| c.contains("Max-Age=0")));
    assert_eq!(
        r.header("cache-control").as_deref(),
        Some("no-store"),
        "logout"
    );
    // A stale (revoked) session presented again is cleared, no-store.
    let stale = Browser::new();
    stale.set_cookie(&env.base, "__Host-session", "eyJhbGciOiJIUzI1NiJ9.e30.x");
    let r = stale.get(&format!("{}/reports", env.base)).await;
    assert!(
        r.set_cookies()
            .iter()
            .any(|c| c.starts_with("__Host-session=") && c.contains("Max-Age=0"))
    );
    assert_eq!(
        r.header("cache-control").as_deref(),
        Some("no-store"),
        "stale"
    );
}

/// R-CK-3: with a plain-http public URL (only with the insecure flag) the cookies drop
/// `Secure` and the `__Host-` prefix, and start-up warns.
#[tokio::test]
async fn r_ck_3_insecure_http_drops_prefix_and_secure_and_warns() {
    let env = TestEnv::start_with(Options {
        tweak: Box::new(|raw, _| {
            raw.public_url = Some("http://gw.internal".into());
            raw.redirect_url = Some("http://gw.internal/api/callback".into());
            raw.allow_insecure_http = Some("true".into());
        }),
        ..Default::default()
    })
    .await;
    let config = &env.gw.state.config;
    assert!(
        config
            .warnings
            .iter()
            .any(|w| w.contains("without Secure and without the __Host- prefix")),
        "{:?}",
        config.warnings
    );
    let login = format!("{}/api/login", env.base);
    let key = DpopKey::new();
    let proof = key.proof(
        "POST",
        "http://gw.internal/api/login",
        portcullis_core::time::now_unix(),
        None,
    );
    let r = reqwest::Client::new()
        .post(&login)
        .header("dpop", proof)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let set: Vec<String> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    assert_eq!(set.len(), 1, "{set:?}");
    assert!(set[0].starts_with("portcullis_oidc_tx="), "{set:?}");
    assert!(!set[0].contains("Secure"), "{set:?}");
    assert!(
        set[0].contains("HttpOnly") && set[0].contains("SameSite=Lax"),
        "{set:?}"
    );
}
