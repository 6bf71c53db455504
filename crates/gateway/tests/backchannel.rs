//! Back-channel logout (R-BCL, SECURITY.md §1.12; OpenID Back-Channel Logout 1.0) through the
//! real `oidc-provider`: the OP ends the session (RP-initiated logout at the OP) and sends a
//! logout token; Portcullis ends the matching sessions and deactivates the user until their
//! next sign-in (R-US). Every malformed token — signed by the OP's real key, so only the rule
//! under test fails — is answered 400 JSON with `Cache-Control: no-store` and changes nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use serde_json::{Value, json};
use tokio::net::TcpListener;

const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// A gateway whose OP client has our back-channel logout URI registered.
async fn env() -> TestEnv {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let mut c = client(
        &format!("{base}/api/callback"),
        "client_secret_post",
        "RS256",
    );
    c["backchannel_logout_uri"] = json!(format!("{base}/api/backchannel-logout"));
    c["backchannel_logout_session_required"] = json!(true);
    TestEnv::start_with(Options {
        listener: Some(listener),
        op_extra: json!({"clients": [c]}),
        ..Default::default()
    })
    .await
}

fn now() -> i64 {
    portcullis_core::time::now_unix()
}

/// The claims of a valid logout token for `sub`/`sid` from this OP to this client.
fn claims(env: &TestEnv, sub: Option<&str>, sid: Option<&str>) -> Value {
    let mut c = json!({
        "iss": env.op.issuer, "aud": CLIENT_ID, "iat": now(), "exp": now() + 120,
        "jti": format!("jti-{}", uuid()), "events": {EVENT: {}},
    });
    if let Some(s) = sub {
        c["sub"] = json!(s);
    }
    if let Some(s) = sid {
        c["sid"] = json!(s);
    }
    c
}

fn uuid() -> String {
    let mut b = [0u8; 12];
    aws_lc_rs::rand::fill(&mut b).unwrap();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

async fn post_token(env: &TestEnv, token: &str) -> reqwest::Response {
    post_form(env, &[("logout_token", token)]).await
}

/// POST these form fields to the back-channel logout endpoint.
async fn post_form(env: &TestEnv, fields: &[(&str, &str)]) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/api/backchannel-logout", env.base))
        .form(fields)
        .send()
        .await
        .unwrap()
}

/// The IdP session id the gateway stored for the browser's session.
fn idp_sid(b: &Browser, env: &TestEnv) -> String {
    use base64::Engine;
    let jwt = b.cookie(&env.base, "__Host-session").unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(jwt.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    claims["idp_sid"]
        .as_str()
        .expect("the OP sends sid")
        .to_string()
}

async fn user_state(env: &TestEnv) -> portcullis_store::User {
    env.store()
        .users
        .user_by_identity(&env.op.issuer, "alice-sub-0001")
        .await
        .unwrap()
        .unwrap()
}

/// The OP ends alice's session (RP-initiated logout at the OP, confirmed) and sends the logout
/// token itself: her Portcullis session ends, she is deactivated by the IdP, and her next
/// sign-in re-activates her.
#[tokio::test]
async fn r_bcl_op_logout_ends_the_session_and_deactivates_until_next_sign_in() {
    let env = env().await;
    let b = Browser::new();
    b.sign_in(&env, "/", ALICE.0, ALICE.1).await;
    assert_eq!(b.session_status(&env.base).await, 200);
    let sid = idp_sid(&b, &env);
    assert!(!sid.is_empty());

    let (r, _) = b
        .follow(
            &format!("{}/session/end?client_id={CLIENT_ID}", env.op.issuer),
            Some(&env.base),
        )
        .await;
    assert!(r.status < 500, "{} {}", r.status, r.body);
    let calls: Vec<Value> = env.op.log().await;
    assert!(
        calls.iter().any(|c| c["path"] == "/session/end/confirm"),
        "the OP confirmed the logout: {calls:?}"
    );
    b.session_status_within(&env.base, 401, std::time::Duration::from_secs(2))
        .await;
    let u = user_state(&env).await;
    assert!(!u.active, "deactivated by the IdP");
    assert!(u.idp_deactivated && !u.admin_disabled);
    // Audited: the sign-in and the back-channel logout, who, from where, outcome.
    let signed_in = env.audit("auth.sign_in", 1).await;
    assert_eq!(signed_in[0].outcome, "ok");
    assert_eq!(signed_in[0].subject.as_deref(), Some(u.id.as_str()));
    assert_eq!(signed_in[0].ip.as_deref(), Some("127.0.0.1"));
    let bcl = env.audit("auth.backchannel_logout", 1).await;
    assert_eq!(bcl[0].outcome, "ok", "{bcl:?}");
    assert_eq!(bcl[0].subject.as_deref(), Some(u.id.as_str()));
    assert!(
        bcl[0]
            .detail
            .as_deref()
            .unwrap()
            .contains("1 session(s) ended"),
        "{bcl:?}"
    );

    // The next successful sign-in re-activates her.
    let b2 = Browser::new();
    b2.sign_in(&env, "/", ALICE.0, ALICE.1).await;
    assert_eq!(b2.session_status(&env.base).await, 200);
    assert!(user_state(&env).await.active);
}

/// R-BCL steps 1–10 and request handling: each bad request is 400 JSON, `no-store`, and
/// changes nothing (the session lives, the user stays active).
#[tokio::test]
async fn r_bcl_malformed_tokens_change_nothing() {
    let env = env().await;
    let b = Browser::new();
    b.sign_in(&env, "/", ALICE.0, ALICE.1).await;
    let sid = idp_sid(&b, &env);
    let sub = Some("alice-sub-0001");
    let good = || claims(&env, sub, Some(&sid));
    let mut cases: Vec<(&str, String)> = Vec::new();
    let signed = |h: Value, p: Value| env.op.sign("RS256", h, p, false);
    cases.push(("1 not a JWS", "not-a-token".into()));
    cases.push(("1 JWE-shaped", "a.b.c.d.e".into()));
    cases.push((
        "2 signed by a key the OP does not publish",
        env.op.sign("RS256", json!({}), good(), true).await,
    ));
    cases.push(("3 alg none", {
        use base64::Engine;
        let e = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        format!("{}.{}.", e(&json!({"alg": "none"})), e(&good()))
    }));
    cases.push((
        "3 ES256 when RS256 is expected",
        env.op.sign("ES256", json!({}), good(), false).await,
    ));
    for (case, patch) in [
        ("4 wrong iss", json!({"iss": "https://evil.example"})),
        ("4 wrong aud", json!({"aud": "someone-else"})),
        ("4 iat too old", json!({"iat": now() - 301})),
        (
            "4 iat in the future (beyond 60 s)",
            json!({"iat": now() + 120}),
        ),
        ("4 exp missing", json!({"exp": null})),
        ("4 exp a string", json!({"exp": (now() + 60).to_string()})),
        (
            "4 expired (beyond the 60 s leeway)",
            json!({"exp": now() - 120}),
        ),
        ("5 neither sub nor sid", json!({"sub": null, "sid": null})),
        ("5 empty sid", json!({"sid": "", "sub": null})),
        ("6 events missing", json!({"events": null})),
        ("6 events an array", json!({"events": [EVENT]})),
        (
            "6 event member not an object",
            json!({"events": {EVENT: "yes"}}),
        ),
        (
            "6 other event only",
            json!({"events": {"http://example.com/other": {}}}),
        ),
        ("7 nonce present", json!({"nonce": "n"})),
        ("8 jti missing", json!({"jti": null})),
        ("8 jti a number", json!({"jti": 42})),
    ] {
        let mut c = good();
        for (k, v) in patch.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        cases.push((case, signed(json!({}), c).await));
    }
    for typ in ["at+jwt", "dpop+jwt", "session+jwt"] {
        cases.push(("9 other typ", signed(json!({"typ": typ}), good()).await));
    }
    for (case, token) in &cases {
        let r = post_token(&env, token).await;
        assert_eq!(r.status(), 400, "[{case}]");
        assert_eq!(r.headers()["cache-control"], "no-store", "[{case}]");
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json")
        );
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"], "invalid_request", "[{case}]");
        assert_eq!(
            b.session_status(&env.base).await,
            200,
            "[{case}] nothing ended"
        );
    }
    assert!(user_state(&env).await.active, "nobody deactivated");
    let refused = env.audit("auth.backchannel_logout", cases.len()).await;
    assert!(refused.len() >= cases.len(), "every refusal is audited");
    assert!(
        refused
            .iter()
            .all(|e| e.outcome == "refused" && e.subject.is_none())
    );

    // Request handling: GET, another content type, no token, the token twice.
    let url = format!("{}/api/backchannel-logout", env.base);
    let http = reqwest::Client::new();
    assert_eq!(http.get(&url).send().await.unwrap().status(), 405);
    let token = signed(json!({}), good()).await;
    let r = http
        .post(&url)
        .header("content-type", "application/json")
        .body(json!({"logout_token": token}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let t = token.as_str();
    assert_eq!(post_form(&env, &[("other", "x")]).await.status(), 400);
    let twice = [("logout_token", t), ("logout_token", t)];
    assert_eq!(post_form(&env, &twice).await.status(), 400);
    assert_eq!(b.session_status(&env.base).await, 200);

    // Typ spellings that are allowed, unknown parameters ignored: a valid token ends it.
    let r = post_form(&env, &[("logout_token", t), ("ignored_parameter", "x")]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_eq!(b.session_status(&env.base).await, 401);
    // R-BCL step 8: the same token again is a replay.
    let r = post_token(&env, &token).await;
    assert_eq!(r.status(), 400);
}

/// R-BCL actions: a token with `sub` only ends every session of the user; a token for an
/// unknown sid is a 200 no-op; a session that started after the token's `iat` survives.
#[tokio::test]
async fn r_bcl_sub_ends_all_sessions_unknown_is_a_no_op() {
    let env = env().await;
    let (b1, b2) = (Browser::new(), Browser::new());
    b1.sign_in(&env, "/", ALICE.0, ALICE.1).await;
    b2.sign_in(&env, "/", ALICE.0, ALICE.1).await;
    let unknown = env
        .op
        .sign(
            "RS256",
            json!({"typ": "logout+jwt"}),
            claims(&env, None, Some("no-such-sid")),
            false,
        )
        .await;
    let r = post_token(&env, &unknown).await;
    assert_eq!(r.status(), 200, "no enumeration");
    assert_eq!(b1.session_status(&env.base).await, 200);

    // A token issued before the newest sign-in does not end that one.
    let mut old = claims(&env, Some("alice-sub-0001"), None);
    old["iat"] = json!(now() - 100);
    let b3 = Browser::new();
    b3.sign_in(&env, "/", ALICE.0, ALICE.1).await;
    let token = env
        .op
        .sign(
            "RS256",
            json!({"typ": "application/logout+jwt"}),
            claims(&env, Some("alice-sub-0001"), None),
            false,
        )
        .await;
    assert_eq!(post_token(&env, &token).await.status(), 200);
    for b in [&b1, &b2, &b3] {
        assert_eq!(b.session_status(&env.base).await, 401);
    }
    let late = env.op.sign("RS256", json!({}), old, false).await;
    let b4 = Browser::new();
    b4.sign_in(&env, "/", ALICE.0, ALICE.1).await;
    assert_eq!(post_token(&env, &late).await.status(), 200);
    assert_eq!(
        b4.session_status(&env.base).await,
        200,
        "a sign-in after the token's iat survives"
    );
    assert!(user_state(&env).await.active, "and keeps her active");
}

/// R-US-1: an admin-disabled user cannot sign in (403) and a sign-in never lifts it; an
/// admin re-enables.
#[tokio::test]
async fn r_us_1_admin_disabled_wins_over_sign_in() {
    let env = env().await;
    let b = Browser::new();
    b.sign_in(&env, "/", ALICE.0, ALICE.1).await;
    let id = user_state(&env).await.id;
    assert!(
        env.store()
            .users
            .set_user_active(&id, false, now())
            .await
            .unwrap()
    );
    b.session_status_within(&env.base, 401, std::time::Duration::from_secs(2))
        .await;
    let b2 = Browser::new();
    let cb = b2.start_login(&env, "/", ALICE.0, ALICE.1).await;
    let r = b2.get(&cb).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(!r.sets_session());
    let u = user_state(&env).await;
    assert!(u.admin_disabled && !u.active);
    assert!(
        env.store()
            .users
            .set_user_active(&id, true, now())
            .await
            .unwrap()
    );
    let b3 = Browser::new();
    b3.sign_in(&env, "/", ALICE.0, ALICE.1).await;
    assert_eq!(b3.session_status(&env.base).await, 200);
}
