//! Roles and path policies through the gateway, signed in through the real OP: seed 001's
//! group → role mapping reaches the app in `X-Forwarded-Roles` and `/api/session`; a person
//! whose groups grant no role is refused at sign-in with the groups that would grant one;
//! path policies deny by default where they match, on the normalised path only (R-HD-5), and
//! the refused request never reaches the app.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use portcullis_core::config::RawPolicy;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Seed 001's four roles mapped from the test OP's groups (alice: admins, devs; bob: devs),
/// `/admin` for admins only, `/reports/` readable by power users and writable by admins, and
/// `no_role` as given.
async fn env(no_role: &'static str) -> TestEnv {
    env_with(no_role, "devs").await
}

/// The same with powerUser granted by `power_group` (bob has no role when it is not `devs`).
async fn env_with(no_role: &'static str, power_group: &'static str) -> TestEnv {
    TestEnv::start_with(Options {
        tweak: Box::new(move |raw, _| {
            raw.roles.insert("admin".into(), vec!["admins".into()]);
            raw.roles
                .insert("powerUser".into(), vec![power_group.into()]);
            raw.roles.insert("guest".into(), vec![]);
            raw.roles
                .insert("platformAdmin".into(), vec!["platform-admins".into()]);
            raw.no_role = Some(no_role.into());
            raw.policies = Some(vec![
                RawPolicy {
                    path: "/admin".into(),
                    methods: None,
                    roles: vec!["admin".into(), "platformAdmin".into()],
                },
                RawPolicy {
                    path: "/reports/".into(),
                    methods: Some(vec!["POST".into()]),
                    roles: vec!["admin".into()],
                },
                RawPolicy {
                    path: "/reports/".into(),
                    methods: Some(vec!["GET".into(), "HEAD".into()]),
                    roles: vec!["admin".into(), "powerUser".into()],
                },
            ]);
        }),
        ..Default::default()
    })
    .await
}

/// Send `GET target` byte for byte (reqwest would normalise the path first), with the
/// browser's session cookies; the status code.
async fn raw_get(env: &TestEnv, b: &Browser, target: &str) -> u16 {
    let addr = env.base.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "GET {target} HTTP/1.1\r\nHost: {addr}\r\nCookie: {}\r\nAccept: application/json\r\nConnection: close\r\n\r\n",
        b.session_cookies(&env.base)
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out);
    text.split(' ').nth(1).unwrap().parse().unwrap()
}

/// Seed 001: alice (groups admins, devs) is admin and powerUser; the app sees exactly that,
/// and a client-sent `X-Forwarded-Roles` never reaches it.
#[tokio::test]
async fn roles_from_groups_reach_the_app_and_the_session_api() {
    let env = env("deny").await;
    let b = Browser::new();
    b.sign_in(&env, "/", ALICE.0, ALICE.1).await;
    let r = b
        .get_with(
            &format!("{}/dashboard", env.base),
            &[
                ("x-forwarded-roles", "platformAdmin"),
                ("X_Forwarded_Roles", "x"),
            ],
        )
        .await;
    assert_eq!(r.status, 200);
    let got = env.upstream.requests().pop().unwrap();
    assert_eq!(got.header("x-forwarded-roles"), ["admin,powerUser"]);
    let s = b
        .get_with(
            &format!("{}/api/session", env.base),
            &[("accept", "application/json")],
        )
        .await;
    let v: Value = serde_json::from_str(&s.body).unwrap();
    assert_eq!(v["roles"], serde_json::json!(["admin", "powerUser"]));
}

/// No mapped role and `noRole: deny`: bob (group devs, which grants nothing here) is refused
/// at the callback with a page naming the groups that grant a role; nothing is stored, no
/// session cookie set.
#[tokio::test]
async fn no_role_is_refused_at_sign_in_with_the_granting_groups() {
    let env = env_with("deny", "power-users").await;
    let b = Browser::new();
    let cb = b.start_login(&env, "/", BOB.0, BOB.1).await;
    let r = b.get(&cb).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(!r.sets_session());
    assert!(
        r.body.contains("none of your groups gives access"),
        "{}",
        r.body
    );
    assert!(
        r.body
            .contains("<strong>admin</strong>: <code>admins</code>"),
        "{}",
        r.body
    );
    assert!(r.body.contains("<code>platform-admins</code>"));
    assert!(
        !r.body.contains("<strong>guest</strong>"),
        "a role with no groups is not offered"
    );
    env.assert_nothing_stored().await;
    // The refusal is audited (the browser's own transaction was consumed).
    let failed = env.audit("auth.failure", 1).await;
    assert_eq!(failed[0].outcome, "refused");
    assert!(
        failed[0].detail.as_deref().unwrap().contains("no role"),
        "{failed:?}"
    );
}

/// `noRole: guest`: the same person gets the default role instead.
#[tokio::test]
async fn no_role_can_default_to_a_role() {
    let env = env_with("guest", "power-users").await;
    let b = Browser::new();
    b.sign_in(&env, "/", BOB.0, BOB.1).await;
    assert_eq!(b.get(&format!("{}/x", env.base)).await.status, 200);
    let got = env.upstream.requests().pop().unwrap();
    assert_eq!(got.header("x-forwarded-roles"), ["guest"]);
}

/// Path policies: bob (powerUser only) is refused `/admin` — as written and in every
/// path-confusion spelling — with 403 naming the roles needed; alice (admin) passes; a
/// method-scoped policy refuses POST but not GET; nothing refused reaches the app.
#[tokio::test]
async fn r_hd_5_policies_deny_on_the_normalised_path() {
    let env = env("deny").await;
    let bob = Browser::new();
    bob.sign_in(&env, "/", BOB.0, BOB.1).await;
    let alice = Browser::new();
    alice.sign_in(&env, "/", ALICE.0, ALICE.1).await;
    let r = bob
        .get_with(
            &format!("{}/admin/users", env.base),
            &[("accept", "application/json")],
        )
        .await;
    assert_eq!(r.status, 403);
    let v: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["error"], "forbidden");
    assert!(
        v["error_description"]
            .as_str()
            .unwrap()
            .contains("admin, platformAdmin"),
        "{v}"
    );
    let page = bob.get(&format!("{}/admin", env.base)).await;
    assert_eq!(page.status, 403);
    assert!(
        page.body
            .contains("It needs one of these roles: admin, platformAdmin.")
    );

    let before = env.upstream.count();
    for target in [
        "/admin",
        "/admin/",
        "/ADMIN",
        "/Admin/x",
        "//admin",
        "/./admin",
        "/x/../admin",
        "/admin/..;/admin",
        "/x/..;/admin/",
        "/%61dmin",
        "/%2e%2e/admin",
        "/x/%2e%2e/admin",
        "/admin%2Fsecret",
        "/%252e%252e/admin",
        "/admin?x=1",
    ] {
        assert_eq!(raw_get(&env, &bob, target).await, 403, "{target}");
    }
    assert_eq!(
        env.upstream.count(),
        before,
        "no refused request reached the app"
    );
    // Not under the policy.
    assert_eq!(raw_get(&env, &bob, "/administrator").await, 200);
    // An admin passes, in the plain spelling and a confusing one.
    assert_eq!(raw_get(&env, &alice, "/admin/users").await, 200);
    assert_eq!(raw_get(&env, &alice, "/x/../admin").await, 200);
    // Method-scoped: GET /reports/ for power users and admins, POST for admins only.
    let url = format!("{}/reports/q1", env.base);
    assert_eq!(bob.get(&url).await.status, 200);
    let r = bob
        .send(
            bob.raw().post(&url).header("accept", "application/json"),
            &url,
        )
        .await;
    assert_eq!(r.status, 403);
    let r = alice
        .send(
            alice.raw().post(&url).header("accept", "application/json"),
            &url,
        )
        .await;
    assert_eq!(r.status, 200);
}
