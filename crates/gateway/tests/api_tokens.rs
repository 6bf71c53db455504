//! API tokens (R-AT) through real HTTP with the real OP: created, listed and revoked by a
//! signed-in browser session; used as `Authorization: Bearer` by programs on proxied requests
//! and `/api/session`; every refusal named by its rule, with status, body, nothing stored or
//! changed, and the upstream not reached. Time moves on the gateway's clock, never by
//! sleeping (polling only waits for the change feed and background writes).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use portcullis_core::time::ManualClock;
use portcullis_store::Table;
use serde_json::Value;

async fn env_with_clock() -> (TestEnv, Arc<ManualClock>) {
    let clock = ManualClock::at_now();
    let env = TestEnv::start_with(Options {
        clock: Some(clock.clone()),
        ..Default::default()
    })
    .await;
    (env, clock)
}

/// Alice signed in with a browser, holding one fresh token.
async fn alice_with_token(env: &TestEnv) -> (Browser, String, String) {
    let b = Browser::new();
    b.sign_in(env, "/", ALICE.0, ALICE.1).await;
    let (token, id) = new_token(&b, env, "laptop").await;
    (b, token, id)
}

fn bearer(t: &str) -> String {
    format!("Bearer {t}")
}

/// `GET base+path` by a program presenting `token` from 127.0.0.1.
async fn get_with_token(env: &TestEnv, path: &str, token: &str) -> Resp {
    answer(
        program("127.0.0.1")
            .get(format!("{}{path}", env.base))
            .header("authorization", bearer(token)),
    )
    .await
}

fn json(r: &Resp) -> Value {
    serde_json::from_str(&r.body).unwrap_or_else(|_| panic!("not JSON: {}", r.body))
}

/// The identity headers an upstream request carried, sorted.
fn identity(req: &Received) -> Vec<(String, String)> {
    let mut v: Vec<_> = req
        .headers
        .iter()
        .filter(|(k, _)| {
            k.starts_with("x-forwarded-")
                && !matches!(
                    k.as_str(),
                    "x-forwarded-for" | "x-forwarded-proto" | "x-forwarded-host"
                )
        })
        .cloned()
        .collect();
    v.sort();
    v
}

fn assert_unauthorized(r: &Resp, rule: &str) {
    assert_eq!(r.status, 401, "{rule}: {}", r.body);
    assert_eq!(r.body, r#"{"error":"unauthorized"}"#, "{rule}");
    assert_eq!(
        r.header("cache-control").as_deref(),
        Some("no-store"),
        "{rule}"
    );
    assert!(
        r.set_cookies().is_empty(),
        "{rule}: no cookie for a token request"
    );
}

/// R-AT-1: a token is created by the signed-in person, shown once in the format
/// `pcs_<12>_<43>`, stored as an HMAC only, and listed by name without its secret.
#[tokio::test]
async fn r_at_1_created_once_stored_hashed_and_listed() {
    let env = TestEnv::start().await;
    let b = Browser::new();
    b.sign_in(&env, "/", ALICE.0, ALICE.1).await;
    let r = create_token(&b, &env, "  ci runner ", Some(30)).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
    let v = json(&r);
    let token = v["token"].as_str().unwrap();
    let id = v["id"].as_str().unwrap();
    assert_eq!(token.len(), 60);
    assert!(token.starts_with(&format!("pcs_{id}_")), "{token}");
    assert_eq!(v["name"], "ci runner");
    assert!(v["expires_at"].as_i64().unwrap() > v["created_at"].as_i64().unwrap());
    assert!(v["last_used_at"].is_null());

    // Stored: the id and an HMAC of the secret, never the plaintext or the secret.
    let stored = env.store().tokens.api_token(id).await.unwrap().unwrap();
    let secret = &token[17..];
    assert_eq!(stored.secret_hash.len(), 32);
    assert_ne!(stored.secret_hash, secret.as_bytes());
    assert!(!String::from_utf8_lossy(&stored.secret_hash).contains(secret));

    // Listed without the secret; the plaintext is never shown again.
    let url = format!("{}/api/tokens", env.base);
    let list = b.get_with(&url, &[("accept", "application/json")]).await;
    assert_eq!(list.status, 200, "{}", list.body);
    let items = json(&list)["tokens"].as_array().unwrap().clone();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], id);
    assert_eq!(items[0]["name"], "ci runner");
    assert!(items[0].get("token").is_none() && items[0].get("secret_hash").is_none());
    assert!(!list.body.contains(secret));

    // The creation is audited, by id only.
    let audit = env.audit("api_token.create", 1).await;
    assert_eq!(audit.len(), 1);
    assert_eq!(
        audit[0].detail.as_deref(),
        Some(format!("id={id}").as_str())
    );
    assert!(!format!("{audit:?}").contains(secret));
}

/// R-AT-1: name and expiry are bounded; so is the number of live tokens a person holds.
#[tokio::test]
async fn r_at_1_requests_outside_the_bounds_are_refused_and_store_nothing() {
    let env = TestEnv::start().await;
    let b = Browser::new();
    b.sign_in(&env, "/", ALICE.0, ALICE.1).await;
    for (name, days) in [
        ("", Some(30)),
        ("x", Some(0)),
        ("x", Some(366)),
        (&*"n".repeat(65), None),
    ] {
        let r = create_token(&b, &env, name, days).await;
        assert_eq!(r.status, 400, "{name:?} {days:?}: {}", r.body);
        assert_eq!(json(&r)["error"], "invalid_request");
    }
    let url = format!("{}/api/tokens", env.base);
    let r = b
        .send(
            b.raw()
                .post(&url)
                .header("accept", "application/json")
                .body("not json"),
            &url,
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(env.store().count(Table::ApiTokens).await.unwrap(), 0);
    // The bound on live tokens.
    for i in 0..portcullis_core::apitoken::MAX_TOKENS_PER_USER {
        new_token(&b, &env, &format!("t{i}")).await;
    }
    let r = create_token(&b, &env, "one too many", None).await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(json(&r)["error"], "too_many_tokens");
    assert_eq!(
        env.store().count(Table::ApiTokens).await.unwrap(),
        portcullis_core::apitoken::MAX_TOKENS_PER_USER
    );
}

/// R-AT-2, R-HD-4: a token is accepted as `Authorization: Bearer` on a proxied request; the
/// upstream sees the same identity headers as for Alice's browser session, and never the
/// token; no cookie is set or refreshed.
#[tokio::test]
async fn r_at_2_bearer_token_reaches_the_app_as_alice_without_the_token() {
    let env = TestEnv::start().await;
    let (b, token, _) = alice_with_token(&env).await;
    let by_session = b.get(&format!("{}/reports", env.base)).await;
    assert_eq!(by_session.status, 200);
    let r = get_with_token(&env, "/reports?x=1", &token).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body, "upstream saw /reports");
    assert!(
        r.set_cookies().is_empty(),
        "a token is not a browser credential"
    );
    let reqs = env.upstream.requests();
    let (s, t) = (&reqs[reqs.len() - 2], &reqs[reqs.len() - 1]);
    assert!(!identity(t).is_empty());
    assert_eq!(
        identity(s),
        identity(t),
        "the same identity as the browser session"
    );
    assert_eq!(t.one("x-forwarded-user").as_deref(), Some("alice-sub-0001"));
    assert!(
        t.header("authorization").is_empty(),
        "R-HD-4: the token is stripped"
    );
    assert!(!format!("{:?}", t.headers).contains(&token));
    // An Authorization header that is not a Portcullis token is the app's own.
    let r = answer(
        program("127.0.0.1")
            .get(format!("{}/reports", env.base))
            .header("authorization", "Bearer app-own-token")
            .header("cookie", b.session_cookies(&env.base)),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        env.upstream
            .requests()
            .last()
            .unwrap()
            .one("authorization")
            .as_deref(),
        Some("Bearer app-own-token")
    );
}

/// R-AT-2, R-CSRF-5: a token request is not a browser request: an unsafe method needs no CSRF
/// token or DPoP proof, and cookies sent with it are ignored entirely (a bad token is not
/// rescued by a valid session cookie).
#[tokio::test]
async fn r_csrf_5_token_requests_need_no_csrf_and_ignore_cookies() {
    let env = TestEnv::start().await;
    let (b, token, _) = alice_with_token(&env).await;
    let r = answer(
        program("127.0.0.1")
            .post(format!("{}/api/items", env.base))
            .header("authorization", bearer(&token))
            .header("origin", "https://evil.example")
            .body("{}"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let before = env.upstream.count();
    let wrong = format!(
        "{}{}",
        &token[..59],
        if token.ends_with('A') { 'B' } else { 'A' }
    );
    let r = answer(
        program("127.0.0.1")
            .get(format!("{}/reports", env.base))
            .header("authorization", bearer(&wrong))
            .header("cookie", b.session_cookies(&env.base)),
    )
    .await;
    assert_unauthorized(&r, "R-CSRF-5");
    assert_eq!(env.upstream.count(), before, "NP");
}

/// R-AT-2: `GET /api/session` answers for a token (the CLI's check), naming the token.
#[tokio::test]
async fn r_at_2_api_session_accepts_a_token() {
    let env = TestEnv::start().await;
    let (_, token, id) = alice_with_token(&env).await;
    let r = get_with_token(&env, "/api/session", &token).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.set_cookies().is_empty());
    let v = json(&r);
    assert_eq!(v["user"]["user_id"], "alice-sub-0001");
    assert_eq!(v["api_token"]["id"], id.as_str());
    assert_eq!(v["api_token"]["name"], "laptop");
}

/// R-AT-2: only `Authorization: Bearer`: a token in the query string or another scheme is
/// not a credential (401 for a program, upstream not reached).
#[tokio::test]
async fn r_at_2_tokens_elsewhere_than_the_bearer_header_are_refused() {
    let env = TestEnv::start().await;
    let (_, token, _) = alice_with_token(&env).await;
    let before = env.upstream.count();
    let c = program("127.0.0.1");
    for req in [
        c.get(format!("{}/reports?access_token={token}", env.base)),
        c.get(format!("{}/reports", env.base))
            .header("authorization", format!("Token {token}")),
        c.get(format!("{}/reports", env.base))
            .header("authorization", format!("Basic {token}")),
    ] {
        let r = answer(req.header("accept", "application/json")).await;
        assert_eq!(r.status, 401, "R-AT-2: {}", r.body);
        assert_eq!(r.body, r#"{"error":"unauthorized"}"#);
    }
    assert_eq!(env.upstream.count(), before, "NP");
}

/// R-AT-2: an unknown id and a wrong secret get the same answer: status, body and headers
/// (the `Date` aside). Both compute the HMAC (the unit test `r_at_2_unknown_id_and_wrong_
/// secret_do_the_same_work` in core; timings are measured by `cargo bench --bench api_tokens`).
#[tokio::test]
async fn r_at_2_unknown_id_and_wrong_secret_are_indistinguishable() {
    let env = TestEnv::start().await;
    let (_, token, id) = alice_with_token(&env).await;
    let secret = &token[17..];
    let flip = |c: char| if c == 'A' { 'B' } else { 'A' };
    let wrong_secret = format!(
        "pcs_{id}_{}{}",
        &secret[..42],
        flip(secret.chars().last().unwrap())
    );
    let unknown_id = format!(
        "pcs_{}{}_{secret}",
        &id[..11],
        flip(id.chars().last().unwrap())
    );
    let before = env.upstream.count();
    let a = get_with_token(&env, "/reports", &wrong_secret).await;
    let b = get_with_token(&env, "/reports", &unknown_id).await;
    assert_unauthorized(&a, "R-AT-2 wrong secret");
    assert_unauthorized(&b, "R-AT-2 unknown id");
    assert_eq!(a.body, b.body);
    let mut ha = a.headers.clone();
    let mut hb = b.headers.clone();
    // Besides the date, each response has its own request id (observability), which says
    // nothing about the token.
    for h in [&mut ha, &mut hb] {
        h.remove("date");
        assert_eq!(h.remove("x-request-id").map(|v| v.len()), Some(32));
    }
    assert_eq!(ha, hb, "identical headers");
    assert_eq!(env.upstream.count(), before, "NP");
    // Both failures are audited, by id only.
    let failures = env.audit("api_token.failure", 2).await;
    assert_eq!(failures.len(), 2);
    assert!(!format!("{failures:?}").contains(secret));
}

/// R-AT-3: a revoked token is refused at once; revoking is the owner's alone (404 for
/// another person's id, nothing changed).
#[tokio::test]
async fn r_at_3_revoked_tokens_are_refused() {
    let env = TestEnv::start().await;
    let (b, token, id) = alice_with_token(&env).await;
    assert_eq!(get_with_token(&env, "/reports", &token).await.status, 200);
    // Bob cannot revoke Alice's token.
    let bob = Browser::new();
    bob.sign_in(&env, "/", BOB.0, BOB.1).await;
    let url = format!("{}/api/tokens/{id}", env.base);
    let r = bob
        .send(
            bob.raw().delete(&url).header("accept", "application/json"),
            &url,
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.body);
    assert_eq!(get_with_token(&env, "/reports", &token).await.status, 200);
    // Alice can.
    let r = b
        .send(
            b.raw().delete(&url).header("accept", "application/json"),
            &url,
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    let before = env.upstream.count();
    assert_unauthorized(
        &get_with_token(&env, "/reports", &token).await,
        "R-AT-3 revoked",
    );
    assert_eq!(env.upstream.count(), before, "NP");
    let r = b
        .send(
            b.raw().delete(&url).header("accept", "application/json"),
            &url,
        )
        .await;
    assert_eq!(r.status, 404, "revoked once");
    let list = b
        .get_with(
            &format!("{}/api/tokens", env.base),
            &[("accept", "application/json")],
        )
        .await;
    assert_eq!(json(&list)["tokens"].as_array().unwrap().len(), 0);
    assert_eq!(env.audit("api_token.revoke", 1).await.len(), 1);
}

/// R-AT-3: an expired token is refused.
#[tokio::test]
async fn r_at_3_expired_tokens_are_refused() {
    let (env, clock) = env_with_clock().await;
    let (_, token, _) = alice_with_token(&env).await;
    clock.advance(30 * 86_400);
    assert_eq!(
        get_with_token(&env, "/reports", &token).await.status,
        200,
        "last second"
    );
    clock.advance(1);
    let before = env.upstream.count();
    assert_unauthorized(
        &get_with_token(&env, "/reports", &token).await,
        "R-AT-3 expired",
    );
    assert_eq!(env.upstream.count(), before, "NP");
}

/// R-AT-3, R-US-2: a token of a user who is admin-disabled or IdP-deactivated is refused
/// (within a second: the change feed evicts the cached user), and works again when the user
/// is re-enabled.
#[tokio::test]
async fn r_us_2_tokens_of_inactive_users_are_refused() {
    let env = TestEnv::start().await;
    let (_, token, id) = alice_with_token(&env).await;
    assert_eq!(get_with_token(&env, "/reports", &token).await.status, 200);
    let user = env
        .store()
        .tokens
        .api_token(&id)
        .await
        .unwrap()
        .unwrap()
        .user_id;
    let wait_for = |want: u16| {
        let env = &env;
        let token = &token;
        async move {
            let t0 = std::time::Instant::now();
            loop {
                let r = get_with_token(env, "/api/session", token).await;
                if r.status == want {
                    return r;
                }
                assert!(
                    t0.elapsed() < Duration::from_secs(1),
                    "not {want} within 1 s"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    let now = env.gw.state.now();
    env.store()
        .users
        .set_admin_disabled(&user, true, now)
        .await
        .unwrap();
    assert_unauthorized(&wait_for(401).await, "R-US-2 admin-disabled");
    env.store()
        .users
        .set_user_active(&user, true, now)
        .await
        .unwrap();
    wait_for(200).await;
    // IdP-deactivated (back-channel logout).
    let u = env.store().users.user(&user).await.unwrap().unwrap();
    env.store()
        .sessions
        .backchannel_logout(
            &u.profile.issuer,
            Some(&u.profile.subject),
            None,
            now + 60,
            now,
        )
        .await
        .unwrap();
    let before = env.upstream.count();
    assert_unauthorized(&wait_for(401).await, "R-US-2 IdP-deactivated");
    assert_eq!(get_with_token(&env, "/reports", &token).await.status, 401);
    assert_eq!(env.upstream.count(), before, "NP");
}

/// R-AT-4: more than 10 failed attempts a minute from one address → 429 with `Retry-After`,
/// before any lookup. The rightful token is not locked out: it works from another address
/// meanwhile (failures per token id only raise an alert), and from the same address in the
/// next minute.
#[tokio::test]
async fn r_at_4_failures_are_rate_limited_per_address_without_locking_the_token() {
    let (env, clock) = env_with_clock().await;
    // Start of a minute, so the window does not roll over mid-test.
    clock.advance(60 - env.gw.state.now().rem_euclid(60));
    let (_, token, id) = alice_with_token(&env).await;
    let attacker = program("127.0.0.1");
    let guess = |n: usize| format!("pcs_{id}_{:0>43}", n);
    for n in 0..10 {
        let r = answer(
            attacker
                .get(format!("{}/reports", env.base))
                .header("authorization", bearer(&guess(n))),
        )
        .await;
        assert_unauthorized(&r, "R-AT-4 under the limit");
    }
    let before_tokens = env.store().count(Table::ApiTokens).await.unwrap();
    let r = answer(
        attacker
            .get(format!("{}/reports", env.base))
            .header("authorization", bearer(&guess(99))),
    )
    .await;
    assert_eq!(r.status, 429, "R-AT-4: {}", r.body);
    assert!(r.header("retry-after").unwrap().parse::<u64>().unwrap() <= 60);
    assert_eq!(json(&r)["error"], "rate_limited");
    // The rightful holder, elsewhere, is not locked out.
    let r = answer(
        program("127.0.0.2")
            .get(format!("{}/reports", env.base))
            .header("authorization", bearer(&token)),
    )
    .await;
    assert_eq!(
        r.status, 200,
        "R-AT-4: a valid token works from another address"
    );
    // The failures on Alice's id raised an alert (and are audited), nothing else changed.
    assert_eq!(env.audit("api_token.alert", 1).await.len(), 1);
    assert_eq!(
        env.store().count(Table::ApiTokens).await.unwrap(),
        before_tokens
    );
    // Next minute, the address has a fresh budget.
    clock.advance(60);
    assert_eq!(get_with_token(&env, "/reports", &token).await.status, 200);
}

/// R-AT-5: a token cannot list, create or revoke tokens (403), whatever it sends; nothing is
/// stored or revoked, and only an interactive session may do these.
#[tokio::test]
async fn r_at_5_tokens_cannot_manage_tokens() {
    let env = TestEnv::start().await;
    let (_, token, id) = alice_with_token(&env).await;
    let c = program("127.0.0.1");
    let url = format!("{}/api/tokens", env.base);
    let reqs = [
        c.get(&url),
        c.post(&url)
            .header("content-type", "application/json")
            .body(r#"{"name":"successor"}"#),
        c.delete(format!("{url}/{id}")),
    ];
    for req in reqs {
        let r = answer(req.header("authorization", bearer(&token))).await;
        assert_eq!(r.status, 403, "R-AT-5: {}", r.body);
        assert_eq!(json(&r)["error"], "forbidden");
        assert!(r.set_cookies().is_empty());
    }
    // Nor sign out (there is no browser session to end, and no cookie to clear).
    let r = answer(
        c.post(format!("{}/api/logout", env.base))
            .header("authorization", bearer(&token))
            .header("accept", "application/json"),
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.set_cookies().is_empty());
    assert_eq!(
        env.store().count(Table::ApiTokens).await.unwrap(),
        1,
        "nothing created"
    );
    assert!(
        env.store()
            .tokens
            .api_token(&id)
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_none(),
        "nothing revoked"
    );
    assert_eq!(get_with_token(&env, "/reports", &token).await.status, 200);
}

/// R-CSRF-1, R-DP: the token API is Portcullis's own: creating needs the session's CSRF
/// token and a DPoP proof; without a session it is 401.
#[tokio::test]
async fn r_csrf_1_creating_a_token_needs_csrf_and_a_proof() {
    let env = TestEnv::start().await;
    let b = Browser::new();
    b.sign_in(&env, "/", ALICE.0, ALICE.1).await;
    let url = format!("{}/api/tokens", env.base);
    let body = r#"{"name":"x"}"#;
    // No X-CSRF-Token (the proof is fine).
    let r = answer(
        b.raw()
            .post(&url)
            .header("cookie", b.session_cookies(&env.base))
            .header("dpop", b.proof("POST", &url))
            .header("content-type", "application/json")
            .body(body),
    )
    .await;
    assert_eq!(r.status, 403, "R-CSRF-1: {}", r.body);
    assert_eq!(r.body, r#"{"error":"csrf"}"#);
    // No proof.
    let r = answer(
        b.raw()
            .post(&url)
            .header("cookie", b.session_cookies(&env.base))
            .header("x-csrf-token", b.csrf_token(&env.base))
            .header("content-type", "application/json")
            .body(body),
    )
    .await;
    assert_eq!(r.status, 401, "R-DP: {}", r.body);
    // No session at all.
    let r = answer(program("127.0.0.1").post(&url).body(body)).await;
    assert_eq!(r.status, 401);
    assert_eq!(env.store().count(Table::ApiTokens).await.unwrap(), 0);
}

/// R-AT-1: the last-used time is recorded without a write per request: at most once a
/// minute per token.
#[tokio::test]
async fn r_at_1_last_used_is_written_at_most_once_a_minute() {
    let (env, clock) = env_with_clock().await;
    let (_, token, id) = alice_with_token(&env).await;
    let last_used = || async {
        env.store()
            .tokens
            .api_token(&id)
            .await
            .unwrap()
            .unwrap()
            .last_used
    };
    let wait_for = |want: i64| async move {
        let t0 = std::time::Instant::now();
        while last_used().await != Some(want) {
            assert!(
                t0.elapsed() < Duration::from_secs(2),
                "last_used not {want}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let t1 = env.gw.state.now();
    assert_eq!(get_with_token(&env, "/reports", &token).await.status, 200);
    wait_for(t1).await;
    clock.advance(30);
    assert_eq!(get_with_token(&env, "/reports", &token).await.status, 200);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(last_used().await, Some(t1), "not again within the minute");
    clock.advance(31);
    assert_eq!(get_with_token(&env, "/reports", &token).await.status, 200);
    wait_for(t1 + 61).await;
}

/// The account page: a signed-in person gets the page (own scripts only); without a session
/// it sends them to sign in and back; a token cannot open it.
#[tokio::test]
async fn account_page_needs_a_browser_session() {
    let env = TestEnv::start().await;
    let page = format!("{}/.portcullis/account", env.base);
    let r = answer(program("127.0.0.1").get(&page)).await;
    assert_eq!(r.status, 302);
    assert!(
        r.location()
            .unwrap()
            .ends_with("/api/login?rd=%2F.portcullis%2Faccount")
    );
    let (b, token, _) = alice_with_token(&env).await;
    let r = b.get(&page).await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("<h1>API tokens</h1>"));
    assert!(r.body.contains("src=\"/.portcullis/account.js\""));
    assert!(
        r.header("content-security-policy")
            .unwrap()
            .contains("script-src 'self'")
    );
    let r = answer(
        program("127.0.0.1")
            .get(&page)
            .header("authorization", bearer(&token)),
    )
    .await;
    assert_eq!(r.status, 403);
    let js = answer(program("127.0.0.1").get(format!("{}/.portcullis/account.js", env.base))).await;
    assert_eq!(js.status, 200);
    assert!(js.body.contains("portcullisFetch"));
}

/// R-AT-3: revoked on one replica, refused by another within a second (the change feed on
/// PostgreSQL), though that replica had the token cached.
#[tokio::test]
async fn r_at_3_revocation_reaches_another_replica_within_a_second() {
    let db = portcullis_store::testing::fresh_postgres_database().await;
    let a = TestEnv::start_with(Options {
        database_url: Some(db.clone()),
        ..Default::default()
    })
    .await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let b_base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let dir = TempDir::new();
    let mut raw = settings(
        &format!("{}/api/callback", a.base),
        &a.op.discovery_url(),
        "client_secret_post",
        "RS256",
        &a.upstream,
        &dir,
    );
    raw.database_url = Some(db);
    let _gw_b =
        portcullis_gateway::start(portcullis_core::config::validate(&raw).unwrap(), listener)
            .await
            .unwrap();
    let http = reqwest::Client::new();
    for _ in 0..600 {
        if let Ok(r) = http.get(format!("{b_base}/readyz")).send().await
            && r.status() == 200
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (browser, token, id) = alice_with_token(&a).await;
    let on_b = || async {
        answer(
            program("127.0.0.1")
                .get(format!("{b_base}/api/session"))
                .header("authorization", bearer(&token)),
        )
        .await
    };
    assert_eq!(
        on_b().await.status,
        200,
        "B knows the token (and caches it)"
    );
    let url = format!("{}/api/tokens/{id}", a.base);
    let r = browser
        .send(
            browser
                .raw()
                .delete(&url)
                .header("accept", "application/json"),
            &url,
        )
        .await;
    assert_eq!(r.status, 204);
    let t0 = std::time::Instant::now();
    loop {
        let r = on_b().await;
        if r.status == 401 {
            assert_unauthorized(&r, "R-AT-3 on the other replica");
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(1),
            "B still accepts it after 1 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
