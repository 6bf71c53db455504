//! Two `portcullis serve` processes on one real PostgreSQL, signed in through the real OP
//! (`oidc-provider`): a sign-in started on one completes on the other; a logout on one, and a
//! user deactivated in the database, are refused by the other within a second.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../gateway/tests/common/mod.rs"]
mod common;
mod support;

use std::time::Duration;

use common::*;
use portcullis_store::Store;
use serde_json::json;
use support::{free_port, serve};
use tokio::process::Child;

/// One `portcullis serve` process, killed on drop.
struct Replica {
    base: String,
    _child: Child,
}

async fn replica(port: u16, env: &[(&str, String)], dir: &TempDir) -> Replica {
    Replica {
        base: format!("http://127.0.0.1:{port}"),
        _child: serve(port, env, &dir.0).await,
    }
}

#[tokio::test]
async fn two_serve_processes_share_sign_ins_logouts_and_deactivations() {
    let db = portcullis_store::testing::fresh_postgres_database().await;
    let (pa, pb) = (free_port(), free_port());
    let a_base = format!("http://127.0.0.1:{pa}");
    // One public name in front of both (a load balancer): A's address.
    let redirect = format!("{a_base}/api/callback");
    let op =
        Op::start(json!({"clients": [client(&redirect, "client_secret_post", "RS256")]})).await;
    let upstream = Upstream::start().await;
    let dir = TempDir::new();
    let env = vec![
        ("OIDC_DISCOVERY_URL", op.discovery_url()),
        ("OIDC_CLIENT_ID", CLIENT_ID.to_string()),
        ("OIDC_CLIENT_SECRET", CLIENT_SECRET.to_string()),
        ("OIDC_REDIRECT_URL", redirect.clone()),
        ("OIDC_SCOPES", "openid,email,profile,groups".to_string()),
        ("OIDC_ALLOW_INSECURE_HTTP", "true".to_string()),
        ("JWT_SIGNING_SECRET", JWT_SECRET.to_string()),
        ("PORTCULLIS_UPSTREAM", format!("http://{}", upstream.addr)),
        ("PORTCULLIS_DATABASE_URL", db.clone()),
    ];
    let a = replica(pa, &env, &dir).await;
    let b_rep = replica(pb, &env, &dir).await;
    let b = Browser::new();
    // Both replicas serve one public URL (A's address).
    b.set_htu_origin(&a.base);

    // Started on A: the transaction is stored by process A ...
    let r = b.get(&format!("{}/api/login?rd=/", a.base)).await;
    assert_eq!(r.status, 302, "{}", r.body);
    let cb = b
        .authorize_at_op(&r.location().unwrap(), &a.base, ALICE.0, ALICE.1)
        .await;
    // ... and completed on B.
    b.share_cookie(&a.base, &b_rep.base, "__Host-oidc_tx");
    let r = b.get(&cb.replacen(&a.base, &b_rep.base, 1)).await;
    assert_eq!(r.status, 302, "callback on B: {}", r.body);
    assert!(r.sets_session());
    b.share_cookie(&b_rep.base, &a.base, "__Host-session");
    b.share_cookie(&b_rep.base, &a.base, "__Host-fp");
    b.share_cookie(&b_rep.base, &a.base, "csrf_token");
    assert_eq!(b.session_status(&a.base).await, 200);
    assert_eq!(b.session_status(&b_rep.base).await, 200);

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
        .session_status_within(&b_rep.base, 401, Duration::from_secs(1))
        .await;
    eprintln!("logout on process A refused by process B after {took:?}");

    // A fresh session used on both; the user is deactivated in the database (as an admin or
    // a back-channel logout will); both processes refuse within a second.
    let r = b.get(&format!("{}/api/login?rd=/", a.base)).await;
    let cb = b
        .authorize_at_op(&r.location().unwrap(), &a.base, ALICE.0, ALICE.1)
        .await;
    assert_eq!(b.get(&cb).await.status, 302);
    b.share_cookie(&a.base, &b_rep.base, "__Host-session");
    b.share_cookie(&a.base, &b_rep.base, "__Host-fp");
    b.share_cookie(&a.base, &b_rep.base, "csrf_token");
    assert_eq!(b.session_status(&b_rep.base).await, 200);
    let store = Store::open_postgres(&db).await.unwrap();
    let user = store
        .users
        .user_by_identity(&op.issuer, "alice-sub-0001")
        .await
        .unwrap()
        .unwrap();
    assert!(
        store
            .users
            .set_user_active(&user.id, false, portcullis_core::time::now_unix())
            .await
            .unwrap()
    );
    let took = b
        .session_status_within(&b_rep.base, 401, Duration::from_secs(1))
        .await;
    eprintln!("deactivation refused by process B after {took:?}");
    let took = b
        .session_status_within(&a.base, 401, Duration::from_secs(1))
        .await;
    eprintln!("deactivation refused by process A after {took:?}");
}
