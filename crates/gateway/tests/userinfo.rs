//! R-UI: UserInfo answers from the real OP, plain and signed (`application/jwt`), good and
//! hostile. Every refusal: exact status, no session cookie, nothing stored, upstream untouched.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use serde_json::{Value, json};

/// Start a sign-in, set the OP's userinfo mode, finish it; returns the callback response.
async fn callback_with_userinfo(env: &TestEnv, mode: Value) -> Resp {
    let b = Browser::new();
    let cb = b.start_login(env, "/", ALICE.0, ALICE.1).await;
    env.op.mode(json!({ "userinfo": mode })).await;
    b.get(&cb).await
}

async fn assert_refused(env: &TestEnv, r: &Resp, status: u16) {
    assert_eq!(r.status, status, "{}", r.body);
    assert!(!r.sets_session(), "no session cookie on refusal");
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
    env.assert_nothing_stored().await;
}

/// R-UI-2: a signed UserInfo response is verified like an ID token and its claims are used.
#[tokio::test]
async fn r_ui_2_signed_userinfo_accepted_and_used() {
    let env = TestEnv::start().await;
    let r = callback_with_userinfo(
        &env,
        json!({"jwt": {"sign": "valid"}, "claims": {"email": "signed@example.com"}}),
    )
    .await;
    assert_eq!(r.status, 302, "{}", r.body);
    let u = env
        .store()
        .users
        .user_by_identity(&env.op.issuer, "alice-sub-0001")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(u.profile.email.as_deref(), Some("signed@example.com"));
}

/// R-UI-2 with R-IDT-5/7/8/9: forged signed UserInfo is refused with 401.
#[tokio::test]
async fn r_ui_2_forged_signed_userinfo_refused() {
    for (name, jwt) in [
        ("alg none", json!({"sign": "none"})),
        ("tampered", json!({"sign": "tamper"})),
        ("wrong key", json!({"sign": "wrong-key"})),
        ("hs256 with public key", json!({"sign": "hs256-public-key"})),
        ("wrong aud", json!({"claims": {"aud": "someone-else"}})),
        (
            "wrong iss",
            json!({"claims": {"iss": "https://evil.example"}}),
        ),
        ("missing iss", json!({"claims": {"iss": null}})),
        ("logout typ", json!({"header": {"typ": "logout+jwt"}})),
    ] {
        let env = TestEnv::start().await;
        let r = callback_with_userinfo(&env, json!({ "jwt": jwt })).await;
        assert_eq!(r.status, 401, "{name}: {}", r.body);
        assert_refused(&env, &r, 401).await;
    }
}

/// R-UI-3: signed UserInfo for another subject is refused.
#[tokio::test]
async fn r_ui_3_signed_userinfo_sub_mismatch_refused() {
    let env = TestEnv::start().await;
    let r = callback_with_userinfo(
        &env,
        json!({"jwt": {"sign": "valid"}, "claims": {"sub": "bob-sub-0002"}}),
    )
    .await;
    assert_refused(&env, &r, 401).await;
}

/// R-UI-2: JSON that is not an object, or has duplicate members, is refused (401); a body
/// that is not JSON at all is IdP garbage (502).
#[tokio::test]
async fn r_ui_2_non_object_duplicate_or_garbage_userinfo_refused() {
    for (raw, status) in [
        (r#"["alice-sub-0001"]"#, 401),
        (r#""alice-sub-0001""#, 401),
        (r#"{"sub":"alice-sub-0001","sub":"bob-sub-0002"}"#, 401),
        ("<html>maintenance</html>", 502),
        ("", 502),
    ] {
        let env = TestEnv::start().await;
        let r = callback_with_userinfo(&env, json!({"raw": raw})).await;
        assert_refused(&env, &r, status).await;
    }
}

/// §0.3: an IdP error at userinfo is 502; a refusal of the access token is 401.
#[tokio::test]
async fn r_ui_1_userinfo_http_errors() {
    for (status, expected) in [(500, 502), (503, 502), (401, 401), (403, 401)] {
        let env = TestEnv::start().await;
        let r = callback_with_userinfo(&env, json!({"raw": "{}", "status": status})).await;
        assert_refused(&env, &r, expected).await;
    }
}

/// R-UI-1: the access token goes in the Authorization header, never the query string.
#[tokio::test]
async fn r_ui_1_access_token_in_header_only() {
    let env = TestEnv::start().await;
    Browser::new().sign_in(&env, "/", ALICE.0, ALICE.1).await;
    let log = env.op.log().await;
    let me = log.iter().find(|e| e["path"] == "/me").unwrap();
    assert!(me["query"].as_object().is_none_or(|q| q.is_empty()), "{me}");
}
