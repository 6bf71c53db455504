//! Several replicas on one PostgreSQL: a sign-in started on one completes on another, and a
//! session ended or a user deactivated on one is refused by the other within one second (the
//! change feed: `LISTEN/NOTIFY` plus catch-up by cursor). Each replica is a full gateway with
//! its own database pool, listener and in-memory views; they share nothing but the database
//! and the OP.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

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

/// Copy a cookie from one replica's address to the other's (one name in front of both).
fn share(b: &Browser, from: &str, to: &str, name: &str) {
    let v = b
        .cookie(from, name)
        .unwrap_or_else(|| panic!("no {name} at {from}"));
    b.set_cookie(to, name, &v);
}

async fn session_status(b: &Browser, base: &str) -> u16 {
    b.get_with(
        &format!("{base}/api/session"),
        &[("accept", "application/json")],
    )
    .await
    .status
}

/// Poll until `base` refuses the session; returns how long it took.
async fn refused_within(b: &Browser, base: &str, limit: Duration) -> Duration {
    let t0 = Instant::now();
    loop {
        if session_status(b, base).await == 401 {
            return t0.elapsed();
        }
        assert!(
            t0.elapsed() < limit,
            "replica {base} still accepts the session after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn sign_in_on_one_replica_logout_and_deactivation_reach_the_other_within_a_second() {
    let (a, _gw_b, b_base, _dir) = two_replicas().await;
    assert_eq!(a.store().kind(), "postgres");
    let b = Browser::new();

    // Started on A (transaction stored by A), completed on B.
    let cb = b.start_login(&a, "/", ALICE.0, ALICE.1).await;
    let cb_on_b = cb.replacen(&a.base, &b_base, 1);
    share(&b, &a.base, &b_base, "__Host-oidc_tx");
    let r = b.get(&cb_on_b).await;
    assert_eq!(r.status, 302, "callback on B: {}", r.body);
    assert!(r.sets_session());
    share(&b, &b_base, &a.base, "__Host-session");
    assert_eq!(session_status(&b, &a.base).await, 200);
    assert_eq!(session_status(&b, &b_base).await, 200);

    // Logout on A; B refuses within a second.
    let logout = format!("{}/api/logout", a.base);
    let out = b
        .send(b.raw().post(&logout).header("origin", &a.base), &logout)
        .await;
    assert_eq!(out.status, 200);
    let took = refused_within(&b, &b_base, Duration::from_secs(1)).await;
    eprintln!("logout on A refused by B after {took:?}");

    // A fresh session; the user is deactivated through A's store; B refuses within a second.
    b.sign_in(&a, "/", ALICE.0, ALICE.1).await;
    share(&b, &a.base, &b_base, "__Host-session");
    assert_eq!(
        session_status(&b, &b_base).await,
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
    let took = refused_within(&b, &b_base, Duration::from_secs(1)).await;
    eprintln!("deactivation refused by B after {took:?}");
    assert_eq!(session_status(&b, &a.base).await, 401);

    // Signing in again re-activates, on every replica.
    b.sign_in(&a, "/", ALICE.0, ALICE.1).await;
    share(&b, &a.base, &b_base, "__Host-session");
    let t0 = Instant::now();
    while session_status(&b, &b_base).await != 200 {
        assert!(
            t0.elapsed() < Duration::from_secs(1),
            "B never saw the re-activation"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
