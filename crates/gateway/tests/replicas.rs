//! Several replicas on one PostgreSQL: a sign-in started on one completes on another, and a
//! session ended or a user deactivated on one is refused by the other within one second (the
//! change feed: `LISTEN/NOTIFY` plus catch-up by cursor). Each replica is a full gateway with
//! its own database pool, listener and in-memory views; they share nothing but the database
//! and the OP.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;
use portcullis_core::config::validate;
use tokio::net::TcpListener;

/// Replica A (with the OP and upstream) and replica B behind the same public name (A's).
async fn two_replicas() -> (TestEnv, portcullis_gateway::RunningGateway, String, TempDir) {
    let db = portcullis_store::testing::fresh_postgres_database().await;
    let a = TestEnv::start_with(Options {
        database_url: Some(db.clone()),
        ..Default::default()
    })
    .await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
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
    let b = portcullis_gateway::start(validate(&raw).unwrap(), listener)
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
    (a, b, b_base, dir)
}

#[tokio::test]
async fn sign_in_on_one_replica_logout_and_deactivation_reach_the_other_within_a_second() {
    let (a, _gw_b, b_base, _dir) = two_replicas().await;
    assert_eq!(a.store().kind(), "postgres");
    let b = Browser::new();
    // Both replicas serve one public URL (A's address here).
    b.set_htu_origin(&a.base);

    // Started on A (transaction stored by A), completed on B.
    let cb = b.start_login(&a, "/", ALICE.0, ALICE.1).await;
    let cb_on_b = cb.replacen(&a.base, &b_base, 1);
    b.share_cookie(&a.base, &b_base, "__Host-oidc_tx");
    let r = b.get(&cb_on_b).await;
    assert_eq!(r.status, 302, "callback on B: {}", r.body);
    assert!(r.sets_session());
    b.share_cookie(&b_base, &a.base, "__Host-session");
    b.share_cookie(&b_base, &a.base, "__Host-fp");
    b.share_cookie(&b_base, &a.base, "csrf_token");
    assert_eq!(b.session_status(&a.base).await, 200);
    assert_eq!(b.session_status(&b_base).await, 200);

    // R-DP-10: a proof accepted by A is a replay on B (the shared replay table).
    let proof = b.proof("POST", &format!("{}/api/items", a.base));
    let post = |base: &str| {
        b.raw()
            .post(format!("{base}/api/items"))
            .header("cookie", b.session_cookies(&a.base))
            .header("x-csrf-token", b.csrf_token(&a.base))
            .header("dpop", proof.clone())
            .header("accept", "application/json")
            .send()
    };
    assert_eq!(post(&a.base).await.unwrap().status(), 200);
    let before = a.upstream.count();
    let replay = post(&b_base).await.unwrap();
    assert_eq!(replay.status(), 401, "replayed on the other replica");
    assert!(
        replay.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_dpop_proof")
    );
    assert_eq!(a.upstream.count(), before);

    // Logout on A; B refuses within a second.
    let logout = format!("{}/api/logout", a.base);
    let out = b
        .send(
            b.raw()
                .post(&logout)
                .header("origin", &a.base)
                .header("accept", "application/json"),
            &logout,
        )
        .await;
    assert_eq!(out.status, 200);
    let took = b
        .session_status_within(&b_base, 401, Duration::from_secs(1))
        .await;
    eprintln!("logout on A refused by B after {took:?}");

    // A fresh session; the user is deactivated through A's store; B refuses within a second.
    b.sign_in(&a, "/", ALICE.0, ALICE.1).await;
    b.share_cookie(&a.base, &b_base, "__Host-session");
    b.share_cookie(&a.base, &b_base, "__Host-fp");
    b.share_cookie(&a.base, &b_base, "csrf_token");
    assert_eq!(
        b.session_status(&b_base).await,
        200,
        "B caches the user now"
    );
    let user = a
        .store()
        .users
        .user_by_identity(&a.op.issuer, "alice-sub-0001")
        .await
        .unwrap()
        .unwrap();
    assert!(
        a.store()
            .users
            .set_user_active(&user.id, false, portcullis_core::time::now_unix())
            .await
            .unwrap()
    );
    let took = b
        .session_status_within(&b_base, 401, Duration::from_secs(1))
        .await;
    eprintln!("deactivation refused by B after {took:?}");
    b.session_status_within(&a.base, 401, Duration::from_secs(1))
        .await;

    // An admin-disabled user is never re-activated by a sign-in (R-US-1): the admin re-enables
    // them, and signing in again works on every replica.
    assert!(
        a.store()
            .users
            .set_user_active(&user.id, true, portcullis_core::time::now_unix())
            .await
            .unwrap()
    );
    b.sign_in(&a, "/", ALICE.0, ALICE.1).await;
    b.share_cookie(&a.base, &b_base, "__Host-session");
    b.share_cookie(&a.base, &b_base, "__Host-fp");
    b.share_cookie(&a.base, &b_base, "csrf_token");
    b.session_status_within(&b_base, 200, Duration::from_secs(1))
        .await;

    // A back-channel logout received by A (a logout token signed by the OP's key, for this
    // user): B refuses the session within a second, and the user is deactivated by the IdP.
    let now = portcullis_core::time::now_unix();
    let token =
        a.op.sign(
            "RS256",
            serde_json::json!({"typ": "logout+jwt"}),
            serde_json::json!({"iss": a.op.issuer, "aud": CLIENT_ID, "iat": now, "exp": now + 60,
                "jti": format!("replica-{now}"), "sub": "alice-sub-0001",
                "events": {"http://schemas.openid.net/event/backchannel-logout": {}}}),
            false,
        )
        .await;
    let r = reqwest::Client::new()
        .post(format!("{}/api/backchannel-logout", a.base))
        .form(&[("logout_token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let took = b
        .session_status_within(&b_base, 401, Duration::from_secs(1))
        .await;
    eprintln!("back-channel logout on A refused by B after {took:?}");
    let u = a.store().users.user(&user.id).await.unwrap().unwrap();
    assert!(u.idp_deactivated && !u.active);
}
