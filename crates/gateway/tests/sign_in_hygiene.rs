//! What an anonymous client can make the sign-in endpoints do, and the cookies they leave:
//! bounded sign-in starts, no adopted tx cookie, GET-only callback, stale cookies cleared.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;

/// R-AZ-4: a tx cookie the client chose (or a sibling subdomain planted) never comes back.
#[tokio::test]
async fn r_az_4_planted_tx_cookie_is_never_adopted() {
    let env = TestEnv::start().await;
    let b = Browser::new();
    let planted = "PLANTEDplantedPLANTEDplantedPLANTEDplanted1";
    assert_eq!(planted.len(), 43);
    b.set_cookie(&env.base, "__Host-oidc_tx", planted);
    let r = b.get(&format!("{}/api/login", env.base)).await;
    assert_eq!(r.status, 302);
    let set = r.set_cookies();
    assert!(
        set.iter().any(|c| c.starts_with("__Host-oidc_tx=")),
        "{set:?}"
    );
    assert!(!set.iter().any(|c| c.contains(planted)), "{set:?}");
    // The sign-in still completes with the fresh cookie.
    let cb = b
        .authorize_at_op(&r.location().unwrap(), &env.base, ALICE.0, ALICE.1)
        .await;
    let r = b.get(&cb).await;
    assert_eq!(r.status, 302, "{}", r.body);
    assert!(r.sets_session());
}

/// A client that never returns the cookie cannot fill the store: sign-in starts are rate
/// limited per client address (429 with Retry-After), and nothing is stored when refused.
#[tokio::test]
async fn sign_in_starts_are_rate_limited_per_address() {
    let env = TestEnv::start_with(Options {
        tweak: Box::new(|raw, _| raw.login_starts_per_minute = None),
        ..Default::default()
    })
    .await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let rd = "a".repeat(2000);
    let url = format!("{}/api/login?rd=/{rd}", env.base);
    let limit = env.gw.state.config.limits.login_starts_per_minute as i64;
    assert_eq!(limit, 60, "the default");
    // The sign-in page itself (GET) stores nothing and is not counted; each POST with a proof
    // starts a sign-in.
    assert_eq!(http.get(&url).send().await.unwrap().status(), 200);
    let key = DpopKey::new();
    let now = portcullis_core::time::now_unix();
    let mut limited = None;
    for i in 0..limit + 5 {
        let r = http
            .post(&url)
            .header("dpop", key.proof("POST", &url, now, None))
            .send()
            .await
            .unwrap();
        if r.status() == 429 {
            limited = Some((i, r));
            break;
        }
        assert_eq!(r.status(), 200);
    }
    let (at, r) = limited.expect("no 429 after the per-minute limit");
    assert!(at >= limit - 1 && at <= limit, "limited after {at}");
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert!(r.headers().get("set-cookie").is_none());
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert!(
        env.login_txs().await <= limit,
        "nothing stored beyond the limit"
    );
}

/// R-CB-1: the callback is GET only; HEAD does not consume the transaction or sign in.
#[tokio::test]
async fn r_cb_1_head_callback_is_refused_and_consumes_nothing() {
    let env = TestEnv::start().await;
    let b = Browser::new();
    let cb = b.start_login(&env, "/", ALICE.0, ALICE.1).await;
    let r = b.send(b.raw().head(&cb), &cb).await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow").as_deref(), Some("GET"));
    assert!(!r.sets_session());
    assert_eq!(env.sessions().await, 0);
    assert_eq!(env.login_txs().await, 1, "the transaction is still pending");
    let r = b.get(&cb).await;
    assert_eq!(r.status, 302, "{}", r.body);
    assert!(r.sets_session());
}

/// R-CK-2: a worthless session cookie is cleared; the tx cookie is cleared after a callback,
/// failed or not.
#[tokio::test]
async fn r_ck_2_invalid_session_and_used_tx_cookies_are_cleared() {
    let env = TestEnv::start().await;
    let b = Browser::new();
    b.set_cookie(&env.base, "__Host-session", "not.a.jwt");
    let r = b
        .get_with(
            &format!("{}/api/session", env.base),
            &[("accept", "application/json")],
        )
        .await;
    assert_eq!(r.status, 401);
    assert!(
        r.set_cookies()
            .iter()
            .any(|c| c.starts_with("__Host-session=;") && c.contains("Max-Age=0")),
        "{:?}",
        r.set_cookies()
    );
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
    // The proxy's sign-in redirect clears it too.
    b.set_cookie(&env.base, "__Host-session", "not.a.jwt");
    let r = b.get(&format!("{}/app", env.base)).await;
    assert_eq!(r.status, 302);
    assert!(
        r.set_cookies()
            .iter()
            .any(|c| c.starts_with("__Host-session=;"))
    );

    // A callback for an unknown state leaves the tx cookie (it may belong to a newer sign-in
    // in progress) ...
    let cb = b.start_login(&env, "/", ALICE.0, ALICE.1).await;
    let r = b.get(&cb.replace("state=", "state=x")).await;
    assert_eq!(r.status, 400);
    assert!(
        !r.set_cookies()
            .iter()
            .any(|c| c.starts_with("__Host-oidc_tx"))
    );
    // ... a failed sign-in of this browser's own transaction (a code the IdP refuses) clears it.
    let cb = b.start_login(&env, "/", ALICE.0, ALICE.1).await;
    let r = b.get(&cb.replace("code=", "code=x")).await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(
        r.set_cookies()
            .iter()
            .any(|c| c.starts_with("__Host-oidc_tx=;") && c.contains("Max-Age=0")),
        "{:?}",
        r.set_cookies()
    );
    assert!(!r.sets_session());
}
