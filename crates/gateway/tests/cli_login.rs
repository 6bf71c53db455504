//! Signing the command-line tool in through the browser (RFC 8252 loopback + PKCE) and with a
//! device code (RFC 8628), at the HTTP level against the real OP, on both stores: every
//! rejection path with its exact answer and what it must not leave behind. The built CLI
//! driving both flows in headless Chromium is in `crates/cli/tests/sign_in.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use common::*;
use portcullis_core::oidc::pkce::pkce_challenge;
use portcullis_core::time::ManualClock;
use portcullis_store::Table;
use serde_json::{Value, json};

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const REDIRECT: &str = "http://127.0.0.1:43123/callback";

async fn start(db: Option<String>) -> (TestEnv, Arc<ManualClock>) {
    let clock = ManualClock::at_now();
    let env = TestEnv::start_with(Options {
        clock: Some(clock.clone()),
        database_url: db,
        ..Default::default()
    })
    .await;
    (env, clock)
}

fn consent_query(state: &str, machine: &str) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("redirect_uri", REDIRECT)
        .append_pair("state", state)
        .append_pair("code_challenge", &pkce_challenge(VERIFIER))
        .append_pair("code_challenge_method", "S256")
        .append_pair("machine", machine)
        .append_pair("expires_in_days", "30");
    q.finish()
}

fn decision(state: &str, approve: bool) -> Value {
    json!({
        "redirect_uri": REDIRECT,
        "state": state,
        "code_challenge": pkce_challenge(VERIFIER),
        "code_challenge_method": "S256",
        "machine": "build-box",
        "expires_in_days": 30,
        "approve": approve,
    })
}

/// `POST /api/cli/authorize` as the signed-in browser `b`.
async fn authorize(b: &Browser, env: &TestEnv, body: &Value) -> Resp {
    let url = format!("{}/api/cli/authorize", env.base);
    b.send(
        b.raw()
            .post(&url)
            .header("accept", "application/json")
            .json(body),
        &url,
    )
    .await
}

/// An anonymous form POST (the CLI), from `local`.
async fn form(env: &TestEnv, local: &str, path: &str, form: &[(&str, &str)]) -> Resp {
    answer(
        program(local)
            .post(format!("{}{path}", env.base))
            .form(form),
    )
    .await
}

fn body(r: &Resp) -> Value {
    serde_json::from_str(&r.body).unwrap_or_else(|_| panic!("not JSON: {}", r.body))
}

/// The code in an approval's loopback redirect.
fn code_of(r: &Resp) -> String {
    assert_eq!(r.status, 200, "{}", r.body);
    let redirect = url::Url::parse(body(r)["redirect"].as_str().unwrap()).unwrap();
    assert_eq!(
        format!(
            "{}://{}{}",
            redirect.scheme(),
            redirect.authority(),
            redirect.path()
        ),
        REDIRECT
    );
    let q: std::collections::HashMap<_, _> = redirect.query_pairs().into_owned().collect();
    assert_eq!(q["state"], "st-1");
    q["code"].clone()
}

async fn redeem(env: &TestEnv, local: &str, code: &str, verifier: &str, redirect: &str) -> Resp {
    form(
        env,
        local,
        "/api/cli/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("code_verifier", verifier),
            ("redirect_uri", redirect),
        ],
    )
    .await
}

fn assert_invalid_grant(r: &Resp) {
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(
        body(r),
        json!({"error": "invalid_grant", "error_description": "the code is invalid, expired or already used: sign in again"})
    );
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
}

both_backends!(
    loopback_consent_page_checks_the_request_and_needs_a_sign_in,
    |db| {
        let (env, _clock) = start(db).await;
        let anon = Browser::new();
        // Malformed requests: an error page naming the problem, never a redirect anywhere.
        for (q, why) in [
            (
                consent_query("st", "box").replace("127.0.0.1", "evil.example"),
                "redirect_uri must be",
            ),
            (
                consent_query("st", "box").replace("S256", "plain"),
                "code_challenge_method must be S256",
            ),
            (consent_query("bad state", "box"), "state must be"),
            (consent_query("st", ""), "machine name"),
            (
                format!("{}&state=again", consent_query("st", "box")),
                "repeated",
            ),
        ] {
            let r = anon
                .get(&format!("{}/.portcullis/cli-login?{q}", env.base))
                .await;
            assert_eq!(r.status, 400, "{q}: {}", r.body);
            assert!(r.body.contains(why), "{why}: {}", r.body);
            assert!(r.location().is_none());
        }
        // A good request, not signed in: off to sign in, and back to this very page.
        let q = consent_query("st", "box");
        let r = anon
            .get(&format!("{}/.portcullis/cli-login?{q}", env.base))
            .await;
        assert_eq!(r.status, 302);
        let to = r.location().unwrap();
        let back: String =
            url::form_urlencoded::byte_serialize(format!("/.portcullis/cli-login?{q}").as_bytes())
                .collect();
        assert_eq!(to, format!("{}/api/login?rd={back}", env.base));
        assert!(!r.sets_session());

        // Signed in: the consent page names the person and the machine, all escaped.
        let b = Browser::new();
        b.sign_in(&env, "/", ALICE.0, ALICE.1).await;
        let q = consent_query("st", "<b>box</b>");
        let r = b
            .get(&format!("{}/.portcullis/cli-login?{q}", env.base))
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(r.body.contains("&lt;b&gt;box&lt;/b&gt;"), "{}", r.body);
        assert!(!r.body.contains("<b>box</b>"));
        assert!(r.body.contains("portcullis CLI on &lt;b&gt;box&lt;/b&gt;"));
        assert!(r.body.contains("expires in 30 days"));
        assert!(r.body.contains(REDIRECT));
        assert!(r.body.contains("src=\"/.portcullis/cli-login.js\""));
        assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
        assert!(
            r.header("content-security-policy")
                .unwrap()
                .contains("frame-ancestors 'none'"),
            "no clickjacking of the approve button"
        );
        assert_eq!(env.store().count(Table::CliGrants).await.unwrap(), 0);
    }
);

both_backends!(
    loopback_code_is_bound_to_verifier_redirect_and_one_use,
    |db| {
        let (env, clock) = start(db).await;
        let b = Browser::new();
        b.sign_in(&env, "/", ALICE.0, ALICE.1).await;

        // No CSRF header: refused, nothing stored.
        let url = format!("{}/api/cli/authorize", env.base);
        let csrf_cookie = b.cookie(&env.base, "csrf_token").unwrap();
        b.clear_cookie(&env.base, "csrf_token");
        let r = authorize(&b, &env, &decision("st-1", true)).await;
        assert_eq!(r.status, 403, "{}", r.body);
        assert_eq!(body(&r), json!({"error": "csrf"}));
        b.set_cookie(&env.base, "csrf_token", &csrf_cookie);
        assert_eq!(env.store().count(Table::CliGrants).await.unwrap(), 0);
        // A malformed decision: 400, nothing stored.
        let mut bad = decision("st-1", true);
        bad["redirect_uri"] = json!("http://localhost:43123/callback");
        let r = authorize(&b, &env, &bad).await;
        assert_eq!(r.status, 400);
        assert!(
            body(&r)["error_description"]
                .as_str()
                .unwrap()
                .contains("redirect_uri")
        );
        let r = b
            .send(
                b.raw()
                    .post(&url)
                    .header("accept", "application/json")
                    .json(&json!({"approve": true, "extra": 1})),
                &url,
            )
            .await;
        assert_eq!(r.status, 400);
        assert_eq!(env.store().count(Table::CliGrants).await.unwrap(), 0);

        // Deny: the loopback hears access_denied, nothing stored.
        let r = authorize(&b, &env, &decision("st-1", false)).await;
        assert_eq!(r.status, 200);
        assert_eq!(
            body(&r)["redirect"],
            format!("{REDIRECT}?error=access_denied&state=st-1")
        );
        assert_eq!(env.store().count(Table::CliGrants).await.unwrap(), 0);

        // Approve, then a wrong verifier: refused, and the code is spent by that attempt.
        let code = code_of(&authorize(&b, &env, &decision("st-1", true)).await);
        assert_eq!(env.store().count(Table::CliGrants).await.unwrap(), 1);
        let wrong = "x".repeat(43);
        assert_invalid_grant(&redeem(&env, "127.0.0.2", &code, &wrong, REDIRECT).await);
        assert_invalid_grant(&redeem(&env, "127.0.0.2", &code, VERIFIER, REDIRECT).await);
        assert_eq!(env.store().count(Table::CliGrants).await.unwrap(), 0);

        // Another redirect URI than the one approved: refused.
        let code = code_of(&authorize(&b, &env, &decision("st-1", true)).await);
        let other = "http://127.0.0.1:43124/callback";
        assert_invalid_grant(&redeem(&env, "127.0.0.2", &code, VERIFIER, other).await);

        // Expired (the code lives 60 s).
        let code = code_of(&authorize(&b, &env, &decision("st-1", true)).await);
        clock.advance(61);
        assert_invalid_grant(&redeem(&env, "127.0.0.2", &code, VERIFIER, REDIRECT).await);
        assert_eq!(
            env.store().count(Table::ApiTokens).await.unwrap(),
            0,
            "no token made"
        );

        // The right verifier and redirect: a token of Alice's, once.
        let code = code_of(&authorize(&b, &env, &decision("st-1", true)).await);
        let r = redeem(&env, "127.0.0.3", &code, VERIFIER, REDIRECT).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
        let v = body(&r);
        assert_eq!(v["token_type"], "Bearer");
        assert_eq!(v["name"], "portcullis CLI on build-box");
        assert!(v["expires_at"].as_i64().unwrap() > clock_now(&clock) + 29 * 86_400);
        let token = v["access_token"].as_str().unwrap();
        assert!(token.starts_with("pcs_") && token.len() == 60);
        let who = answer(
            program("127.0.0.3")
                .get(format!("{}/api/session", env.base))
                .bearer_auth(token),
        )
        .await;
        assert_eq!(who.status, 200);
        assert_eq!(body(&who)["user"]["user_id"], "alice-sub-0001");
        assert_invalid_grant(&redeem(&env, "127.0.0.3", &code, VERIFIER, REDIRECT).await);
        assert_eq!(env.store().count(Table::ApiTokens).await.unwrap(), 1);
        assert_eq!(env.audit("cli.authorize", 5).await.len(), 5);
        assert!(env.audit("api_token.create", 1).await.len() == 1);

        // An API token cannot approve a CLI sign-in (it would mint itself successors).
        let r = answer(
            program("127.0.0.3")
                .post(&url)
                .bearer_auth(token)
                .json(&decision("st-1", true)),
        )
        .await;
        assert_eq!(r.status, 403, "{}", r.body);
        assert_eq!(env.store().count(Table::CliGrants).await.unwrap(), 0);
    }
);

fn clock_now(c: &ManualClock) -> i64 {
    use portcullis_core::time::Clock;
    c.now()
}

both_backends!(failed_redemptions_are_rate_limited_per_address, |db| {
    let (env, _clock) = start(db).await;
    for _ in 0..10 {
        assert_invalid_grant(&redeem(&env, "127.0.0.4", "nope", VERIFIER, REDIRECT).await);
    }
    let r = redeem(&env, "127.0.0.4", "nope", VERIFIER, REDIRECT).await;
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(r.header("retry-after").is_some());
    // Device polls count too; another address is not affected.
    let r = form(
        &env,
        "127.0.0.4",
        "/api/cli/token",
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("device_code", "x"),
        ],
    )
    .await;
    assert_eq!(r.status, 429);
    assert_invalid_grant(&redeem(&env, "127.0.0.5", "nope", VERIFIER, REDIRECT).await);
    // Unknown grant types and repeated parameters are refused as such.
    let r = form(
        &env,
        "127.0.0.5",
        "/api/cli/token",
        &[("grant_type", "password")],
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(body(&r)["error"], "unsupported_grant_type");
    let r = form(
        &env,
        "127.0.0.5",
        "/api/cli/token",
        &[
            ("grant_type", "authorization_code"),
            ("grant_type", "authorization_code"),
        ],
    )
    .await;
    assert_eq!(body(&r)["error"], "invalid_request");
});

async fn device_start(env: &TestEnv, local: &str) -> Value {
    let r = form(
        env,
        local,
        "/api/cli/device",
        &[("machine", "headless-1"), ("expires_in_days", "7")],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
    body(&r)
}

async fn poll(env: &TestEnv, device_code: &str) -> Resp {
    form(
        env,
        "127.0.0.6",
        "/api/cli/token",
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("device_code", device_code),
        ],
    )
    .await
}

async fn device_call(b: &Browser, env: &TestEnv, what: &str, body: Value) -> Resp {
    let url = format!("{}/api/cli/device/{what}", env.base);
    b.send(
        b.raw()
            .post(&url)
            .header("accept", "application/json")
            .json(&body),
        &url,
    )
    .await
}

both_backends!(device_flow_pending_slow_down_approve_once, |db| {
    let (env, clock) = start(db).await;
    let d = device_start(&env, "127.0.0.6").await;
    let user_code = d["user_code"].as_str().unwrap().to_string();
    let device_code = d["device_code"].as_str().unwrap().to_string();
    assert_eq!(user_code.len(), 9, "XXXX-XXXX");
    assert_eq!(
        d["verification_uri"],
        format!("{}/.portcullis/account", env.base)
    );
    assert_eq!(
        d["verification_uri_complete"],
        format!("{}/.portcullis/account?user_code={user_code}", env.base)
    );
    assert_eq!(d["expires_in"], 600);
    assert_eq!(d["interval"], 5);

    // Pending; polling faster than the interval slows the client down (and keeps doing so).
    let r = poll(&env, &device_code).await;
    assert_eq!(r.status, 400);
    assert_eq!(body(&r)["error"], "authorization_pending");
    clock.advance(2);
    let r = poll(&env, &device_code).await;
    assert_eq!(body(&r)["error"], "slow_down");
    assert_eq!(body(&r)["interval"], 10);
    clock.advance(10);
    assert_eq!(
        body(&poll(&env, &device_code).await)["error"],
        "authorization_pending"
    );

    // The verification page: not signed in → sign in and back with the code.
    let anon = Browser::new();
    let r = anon
        .get(&format!(
            "{}/.portcullis/account?user_code={}",
            env.base,
            user_code.to_lowercase()
        ))
        .await;
    assert_eq!(r.status, 302);
    assert_eq!(
        r.location().unwrap(),
        format!(
            "{}/api/login?rd=%2F.portcullis%2Faccount%3Fuser_code%3D{user_code}",
            env.base
        )
    );
    let b = Browser::new();
    b.sign_in(&env, "/", ALICE.0, ALICE.1).await;
    let page = b
        .get(&format!(
            "{}/.portcullis/account?user_code={user_code}",
            env.base
        ))
        .await;
    assert!(
        page.body.contains(&format!("value=\"{user_code}\"")),
        "pre-filled"
    );
    let page = b
        .get(&format!(
            "{}/.portcullis/account?user_code=%22%3E%3Cscript%3E",
            env.base
        ))
        .await;
    assert!(
        page.body.contains("value=\"\""),
        "a malformed code is not echoed"
    );

    // Malformed bodies: 400 naming the shape, nothing decided.
    let r = device_call(&b, &env, "lookup", json!({"code": user_code})).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(body(&r)["error"], "invalid_request");
    let r = device_call(&b, &env, "decide", json!({"user_code": user_code})).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        body(&r)["error_description"]
            .as_str()
            .unwrap()
            .contains("\"approve\": true")
    );

    // Look up (any case, dashes optional): what asks, from where.
    let r = device_call(
        &b,
        &env,
        "lookup",
        json!({"user_code": user_code.replace('-', "").to_lowercase()}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v = body(&r);
    assert_eq!(v["machine"], "headless-1");
    assert_eq!(v["client_ip"], "127.0.0.6");
    assert_eq!(v["token_name"], "portcullis CLI on headless-1");
    assert_eq!(v["token_days"], 7);
    // Approve without CSRF: refused, still pending.
    let csrf = b.cookie(&env.base, "csrf_token").unwrap();
    b.clear_cookie(&env.base, "csrf_token");
    let r = device_call(
        &b,
        &env,
        "decide",
        json!({"user_code": user_code, "approve": true}),
    )
    .await;
    assert_eq!(r.status, 403);
    b.set_cookie(&env.base, "csrf_token", &csrf);
    assert_eq!(
        body(&poll(&env, &device_code).await)["error"],
        "slow_down",
        "still pending"
    );
    clock.advance(20);
    // Approve: the next poll gets Alice's token, once.
    let r = device_call(
        &b,
        &env,
        "decide",
        json!({"user_code": user_code, "approve": true}),
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.body);
    let r = device_call(
        &b,
        &env,
        "decide",
        json!({"user_code": user_code, "approve": false}),
    )
    .await;
    assert_eq!(r.status, 404, "decided once");
    let r = poll(&env, &device_code).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v = body(&r);
    assert_eq!(v["name"], "portcullis CLI on headless-1");
    let who = answer(
        program("127.0.0.6")
            .get(format!("{}/api/session", env.base))
            .bearer_auth(v["access_token"].as_str().unwrap()),
    )
    .await;
    assert_eq!(body(&who)["user"]["user_id"], "alice-sub-0001");
    assert_invalid_grant(&poll(&env, &device_code).await);
    assert_eq!(env.store().count(Table::ApiTokens).await.unwrap(), 1);
    assert_eq!(env.store().count(Table::CliGrants).await.unwrap(), 0);
    assert_eq!(env.audit("cli.device", 1).await.len(), 1);
});

both_backends!(device_flow_denied_expired_and_guessing_refused, |db| {
    let (env, clock) = start(db).await;
    let b = Browser::new();
    b.sign_in(&env, "/", BOB.0, BOB.1).await;
    // (Signed in before the clock moves: the OP keeps real time.)
    let a = Browser::new();
    a.sign_in(&env, "/", ALICE.0, ALICE.1).await;

    // Denied: the CLI hears access_denied, no token.
    let d = device_start(&env, "127.0.0.7").await;
    let r = device_call(
        &b,
        &env,
        "decide",
        json!({"user_code": d["user_code"], "approve": false}),
    )
    .await;
    assert_eq!(r.status, 204);
    let r = poll(&env, d["device_code"].as_str().unwrap()).await;
    assert_eq!(body(&r)["error"], "access_denied");

    // Expired after ten minutes: not found on the page, expired_token for the CLI.
    let d = device_start(&env, "127.0.0.7").await;
    clock.advance(601);
    let r = device_call(&b, &env, "lookup", json!({"user_code": d["user_code"]})).await;
    assert_eq!(r.status, 404);
    let r = poll(&env, d["device_code"].as_str().unwrap()).await;
    assert_eq!(body(&r)["error"], "expired_token");
    assert_eq!(env.store().count(Table::ApiTokens).await.unwrap(), 0);

    // Guessing user codes (RFC 8628 §5.1): five misses a minute, then 429 for this person,
    // even for the right code; malformed codes count as misses.
    clock.advance(60 - clock_now(&clock).rem_euclid(60)); // a fresh minute
    let d = device_start(&env, "127.0.0.7").await;
    for guess in ["BCDF-GHJK", "ZZZZ-ZZZZ", "not a code", "BCDF-GHJL"] {
        let r = device_call(&b, &env, "lookup", json!({"user_code": guess})).await;
        assert_eq!(r.status, 404, "{guess}");
        assert_eq!(body(&r)["error"], "not_found");
    }
    let r = device_call(
        &b,
        &env,
        "decide",
        json!({"user_code": "BCDF-GHJM", "approve": true}),
    )
    .await;
    assert_eq!(r.status, 404);
    let r = device_call(&b, &env, "lookup", json!({"user_code": d["user_code"]})).await;
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(r.header("retry-after").is_some());
    // Another person is not limited; a minute later Bob can go on.
    let r = device_call(&a, &env, "lookup", json!({"user_code": d["user_code"]})).await;
    assert_eq!(r.status, 200);
    clock.advance(60);
    let r = device_call(&b, &env, "lookup", json!({"user_code": d["user_code"]})).await;
    assert_eq!(r.status, 200);
    // An API token cannot approve device sign-ins.
    let (token, _) = new_token(&b, &env, "script").await;
    let r = answer(
        program("127.0.0.7")
            .post(format!("{}/api/cli/device/decide", env.base))
            .bearer_auth(&token)
            .json(&json!({"user_code": d["user_code"], "approve": true})),
    )
    .await;
    assert_eq!(r.status, 403);
});

both_backends!(
    device_starts_are_bounded_and_deactivated_people_get_nothing,
    |db| {
        let (env, _clock) = start(db).await;
        // Per address: ten a minute, then 429 and nothing more stored.
        for _ in 0..10 {
            device_start(&env, "127.0.0.8").await;
        }
        let r = form(&env, "127.0.0.8", "/api/cli/device", &[("machine", "m")]).await;
        assert_eq!(r.status, 429);
        assert_eq!(env.store().count(Table::CliGrants).await.unwrap(), 10);
        // Malformed starts.
        let r = form(&env, "127.0.0.9", "/api/cli/device", &[("machine", "")]).await;
        assert_eq!(body(&r)["error"], "invalid_request");
        let r = form(
            &env,
            "127.0.0.9",
            "/api/cli/device",
            &[("machine", "m"), ("expires_in_days", "0")],
        )
        .await;
        assert_eq!(body(&r)["error"], "invalid_request");
        assert_eq!(env.store().count(Table::CliGrants).await.unwrap(), 10);

        // Approved, then the person is deactivated before the CLI polls: no token.
        let b = Browser::new();
        b.sign_in(&env, "/", ALICE.0, ALICE.1).await;
        let d = device_start(&env, "127.0.0.9").await;
        let r = device_call(
            &b,
            &env,
            "decide",
            json!({"user_code": d["user_code"], "approve": true}),
        )
        .await;
        assert_eq!(r.status, 204);
        let alice = env
            .store()
            .users
            .user_by_identity(&env.op.issuer, "alice-sub-0001")
            .await
            .unwrap()
            .unwrap();
        env.store()
            .admin
            .deactivate_user(&alice.id, clock_now(&_clock))
            .await
            .unwrap();
        let r = poll(&env, d["device_code"].as_str().unwrap()).await;
        assert_eq!(r.status, 400);
        assert_eq!(body(&r)["error"], "access_denied");
        assert_eq!(env.store().count(Table::ApiTokens).await.unwrap(), 0);
    }
);
