//! Conformance of the command-line sign-in grants (RFC 8252 loopback codes, RFC 8628 device
//! codes) on both backends: every case runs once on SQLite and once on PostgreSQL, with two
//! handles on one database standing for two replicas.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use portcullis_core::cli_login::{DeviceStatus, PollVerdict};
use portcullis_store::{CliGrant, GrantKind, Store, StoreError, Table};
use support::{conformance, mapped};

async fn user(s: &Store, sub: &str) -> String {
    s.users
        .upsert_user(&mapped(sub), &format!("u-{sub}"), 1)
        .await
        .unwrap()
        .id
}

fn code(id: &str, user: &str, now: i64) -> CliGrant {
    CliGrant {
        id: id.into(),
        kind: GrantKind::Code,
        user_code: None,
        user_id: Some(user.into()),
        status: DeviceStatus::Approved,
        machine: "build-box".into(),
        token_days: Some(90),
        code_challenge: Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into()),
        redirect_uri: Some("http://127.0.0.1:5000/cb".into()),
        client_ip: None,
        interval: 0,
        last_poll: None,
        created_at: now,
        expires_at: now + 60,
    }
}

fn device(id: &str, user_code: &str, now: i64) -> CliGrant {
    CliGrant {
        id: id.into(),
        kind: GrantKind::Device,
        user_code: Some(user_code.into()),
        user_id: None,
        status: DeviceStatus::Pending,
        machine: "headless".into(),
        token_days: None,
        code_challenge: None,
        redirect_uri: None,
        client_ip: Some("192.0.2.7".into()),
        interval: 5,
        last_poll: None,
        created_at: now,
        expires_at: now + 600,
    }
}

conformance!(loopback_codes_are_redeemed_once_on_any_replica, |s, b| {
    let u = user(&s, "a").await;
    let c = code("c1", &u, 100);
    assert!(s.cli_grants.insert_cli_grant(&c, 10, 100).await.unwrap());
    // A device grant is not a code.
    s.cli_grants
        .insert_cli_grant(&device("d1", "BCDFGHJK", 100), 10, 100)
        .await
        .unwrap();
    assert_eq!(b.cli_grants.take_cli_code("d1").await.unwrap(), None);
    // Redeemed on the other replica, every field back; then gone everywhere.
    assert_eq!(b.cli_grants.take_cli_code("c1").await.unwrap(), Some(c));
    assert_eq!(s.cli_grants.take_cli_code("c1").await.unwrap(), None);
    assert_eq!(b.cli_grants.take_cli_code("c1").await.unwrap(), None);
    assert_eq!(s.count(Table::CliGrants).await.unwrap(), 1);
});

conformance!(concurrent_redemptions_yield_one_winner, |s, b| {
    let u = user(&s, "a").await;
    s.cli_grants
        .insert_cli_grant(&code("race", &u, 100), 10, 100)
        .await
        .unwrap();
    let (x, y) = tokio::join!(
        s.cli_grants.take_cli_code("race"),
        b.cli_grants.take_cli_code("race")
    );
    let won = [x.unwrap(), y.unwrap()]
        .into_iter()
        .filter(Option::is_some)
        .count();
    assert_eq!(won, 1);
});

conformance!(grants_are_bounded_and_expired_ones_purged, |s, _b| {
    for i in 0..3 {
        let g = device(&format!("d{i}"), &format!("BCDFGHJ{}", ['K', 'L', 'M'][i]), 100);
        assert!(s.cli_grants.insert_cli_grant(&g, 3, 100).await.unwrap());
    }
    // Full: refused, nothing stored.
    let r = s
        .cli_grants
        .insert_cli_grant(&device("d9", "BCDFGHJN", 100), 3, 100)
        .await;
    assert!(matches!(r, Err(StoreError::Full(_))), "{r:?}");
    assert_eq!(s.count(Table::CliGrants).await.unwrap(), 3);
    // Once they have expired, a new grant purges them.
    assert!(
        s.cli_grants
            .insert_cli_grant(&device("d9", "BCDFGHJN", 701), 3, 701)
            .await
            .unwrap()
    );
    assert_eq!(s.count(Table::CliGrants).await.unwrap(), 1);
    // A live user code is unique: the second is not stored.
    assert!(
        !s.cli_grants
            .insert_cli_grant(&device("d10", "BCDFGHJN", 702), 3, 702)
            .await
            .unwrap()
    );
    assert_eq!(s.count(Table::CliGrants).await.unwrap(), 1);
});

conformance!(device_grant_approved_then_redeemed_once, |s, b| {
    let u = user(&s, "a").await;
    let d = device("dev", "BCDFGHJK", 1000);
    s.cli_grants.insert_cli_grant(&d, 10, 1000).await.unwrap();
    // Pending: the poll is recorded, a too-early poll slows the client down.
    let (v, _) = b.cli_grants.poll_device_grant("dev", 1000).await.unwrap().unwrap();
    assert_eq!(v, PollVerdict::Pending { interval: 5 });
    let (v, _) = s.cli_grants.poll_device_grant("dev", 1002).await.unwrap().unwrap();
    assert_eq!(v, PollVerdict::SlowDown { interval: 10 });
    let (v, _) = b.cli_grants.poll_device_grant("dev", 1008).await.unwrap().unwrap();
    assert_eq!(v, PollVerdict::SlowDown { interval: 15 }, "10 s now");
    let (v, _) = b.cli_grants.poll_device_grant("dev", 1023).await.unwrap().unwrap();
    assert_eq!(v, PollVerdict::Pending { interval: 15 });
    assert_eq!(s.cli_grants.poll_device_grant("nope", 1023).await.unwrap(), None);

    // The person looks it up by user code and approves on the other replica.
    let seen = b.cli_grants.pending_device_grant("BCDFGHJK", 1030).await.unwrap().unwrap();
    assert_eq!(seen.machine, "headless");
    assert_eq!(s.cli_grants.pending_device_grant("BCDFGHJL", 1030).await.unwrap(), None);
    assert!(b.cli_grants.decide_device_grant("BCDFGHJK", &u, true, 1030).await.unwrap());
    // Decided once: no second decision, no longer pending.
    assert!(!s.cli_grants.decide_device_grant("BCDFGHJK", &u, false, 1031).await.unwrap());
    assert_eq!(s.cli_grants.pending_device_grant("BCDFGHJK", 1031).await.unwrap(), None);
    // The next poll gets it, with the approver; then the grant is gone.
    let (v, g) = s.cli_grants.poll_device_grant("dev", 1040).await.unwrap().unwrap();
    assert_eq!(v, PollVerdict::Approved);
    assert_eq!(g.user_id.as_deref(), Some(u.as_str()));
    assert_eq!(b.cli_grants.poll_device_grant("dev", 1060).await.unwrap(), None);
    assert_eq!(s.count(Table::CliGrants).await.unwrap(), 0);
});

conformance!(device_grant_denied_or_expired_ends, |s, _b| {
    let u = user(&s, "a").await;
    s.cli_grants
        .insert_cli_grant(&device("no", "BCDFGHJK", 1000), 10, 1000)
        .await
        .unwrap();
    assert!(s.cli_grants.decide_device_grant("BCDFGHJK", &u, false, 1001).await.unwrap());
    let (v, _) = s.cli_grants.poll_device_grant("no", 1010).await.unwrap().unwrap();
    assert_eq!(v, PollVerdict::Denied);
    assert_eq!(s.cli_grants.poll_device_grant("no", 1020).await.unwrap(), None);

    s.cli_grants
        .insert_cli_grant(&device("old", "BCDFGHJL", 1000), 10, 1000)
        .await
        .unwrap();
    // Past its lifetime it can be neither found, nor decided, nor redeemed.
    assert_eq!(s.cli_grants.pending_device_grant("BCDFGHJL", 1601).await.unwrap(), None);
    assert!(!s.cli_grants.decide_device_grant("BCDFGHJL", &u, true, 1601).await.unwrap());
    let (v, _) = s.cli_grants.poll_device_grant("old", 1601).await.unwrap().unwrap();
    assert_eq!(v, PollVerdict::Expired);
    assert_eq!(s.count(Table::CliGrants).await.unwrap(), 0);
});
