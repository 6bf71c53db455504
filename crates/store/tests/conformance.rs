//! One conformance suite, every behaviour on both backends: each `conformance!` case runs once
//! on SQLite (in memory) and once on PostgreSQL (a fresh database per case on the server named
//! by `PORTCULLIS_TEST_POSTGRES_URL`; `scripts/test` starts a throw-away cluster and sets it).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use portcullis_core::claims::MappedUser;
use portcullis_store::{
    AuditEvent, AuditQuery, Change, LoginTx, LogoutOutcome, RecheckDone, RecheckSaved, Session,
    Store, StoreError, Table, TxLimits, User,
};
use support::{Follower, conformance, mapped};

fn tx(state: &str, binding: &str, at: i64) -> LoginTx {
    LoginTx {
        state: state.into(),
        nonce: "n".into(),
        code_verifier: "v".into(),
        return_to: "https://gw/".into(),
        binding_hash: binding.into(),
        issuer: "https://idp".into(),
        created_at: at,
        expires_at: at + 600,
        dpop_jkt: None,
    }
}

fn session(id: &str, created: i64) -> Session {
    Session {
        id: id.into(),
        user_id: String::new(),
        created_at: created,
        last_seen: created,
        expires_at: created + 1000,
        revoked_at: None,
        idp_sid: Some("idp-sid".into()),
        id_token: Some("header.claims.signature".into()),
        refresh_token: None,
        recheck_at: None,
    }
}

const LIMITS: TxLimits = TxLimits {
    per_browser: 5,
    total: 10_000,
};

/// A bound on stored DPoP proofs no test reaches unless it means to.
const PROOFS: i64 = 10_000;

conformance!(users_upsert_keeps_identity_and_first_login, |s, _b| {
    let u1 = s
        .users
        .upsert_user(&mapped("sub1"), "id-1", 100)
        .await
        .unwrap();
    assert_eq!(u1.profile.groups, vec!["g1", "g2"]);
    assert!(u1.active);
    let mut m = mapped("sub1");
    m.email = Some("new@b.c".into());
    let u2 = s.users.upsert_user(&m, "id-2", 200).await.unwrap();
    assert_eq!(u2.id, "id-1", "same (iss, sub) keeps its id");
    assert_eq!((u2.first_login, u2.last_login), (100, 200));
    assert_eq!(u2.profile.email.as_deref(), Some("new@b.c"));
    assert_eq!(s.count(Table::Users).await.unwrap(), 1);
    let mut other_iss = mapped("sub1");
    other_iss.issuer = "https://other".into();
    s.users.upsert_user(&other_iss, "id-3", 300).await.unwrap();
    assert_eq!(
        s.count(Table::Users).await.unwrap(),
        2,
        "identity is (iss, sub), never merged"
    );
    assert_eq!(
        s.users
            .user("id-1")
            .await
            .unwrap()
            .unwrap()
            .profile
            .email
            .as_deref(),
        Some("new@b.c")
    );
    assert_eq!(
        s.users
            .user_by_identity("https://other", "sub1")
            .await
            .unwrap()
            .unwrap()
            .id,
        "id-3"
    );
    assert!(s.users.user("nope").await.unwrap().is_none());
});

conformance!(hostile_profile_text_round_trips, |s, _b| {
    let mut m = mapped("sub'; DROP TABLE users; --");
    m.email = Some(" alice@example.test ".into());
    m.groups = vec!["admins ".into(), "a,b".into(), "ünïcødé\u{202e}".into()];
    let u = s.users.upsert_user(&m, "id-x", 1).await.unwrap();
    let back = s.users.user(&u.id).await.unwrap().unwrap();
    assert_eq!(back.profile, m);
});

conformance!(
    r_cb_2_login_tx_consumed_once_and_expiry_enforced,
    |s, _b| {
        s.login_tx
            .insert_login_tx(&tx("st1", "b", 1000), LIMITS)
            .await
            .unwrap();
        let got = s.login_tx.take_login_tx("st1", 1001).await.unwrap();
        assert_eq!(got, Some(tx("st1", "b", 1000)));
        assert!(
            s.login_tx
                .take_login_tx("st1", 1001)
                .await
                .unwrap()
                .is_none(),
            "replay"
        );
        s.login_tx
            .insert_login_tx(&tx("st2", "b", 1000), LIMITS)
            .await
            .unwrap();
        assert!(
            s.login_tx
                .take_login_tx("st2", 1000 + 601)
                .await
                .unwrap()
                .is_none(),
            "expired"
        );
        assert_eq!(s.count(Table::LoginTx).await.unwrap(), 0);
    }
);

conformance!(r_az_3_at_most_five_live_tx_per_browser, |s, _b| {
    for i in 0..7 {
        s.login_tx
            .insert_login_tx(&tx(&format!("st{i}"), "b", 1000 + i), LIMITS)
            .await
            .unwrap();
    }
    s.login_tx
        .insert_login_tx(&tx("other", "c", 1000), LIMITS)
        .await
        .unwrap();
    assert_eq!(s.count(Table::LoginTx).await.unwrap(), 6);
    assert!(
        s.login_tx
            .take_login_tx("st0", 1010)
            .await
            .unwrap()
            .is_none(),
        "oldest dropped"
    );
    assert!(
        s.login_tx
            .take_login_tx("st6", 1010)
            .await
            .unwrap()
            .is_some()
    );
});

conformance!(
    login_tx_total_is_bounded_and_expired_rows_free_room,
    |s, _b| {
        let limits = TxLimits {
            per_browser: 5,
            total: 3,
        };
        for i in 0..3 {
            s.login_tx
                .insert_login_tx(&tx(&format!("st{i}"), &format!("b{i}"), 1000), limits)
                .await
                .unwrap();
        }
        let full = s
            .login_tx
            .insert_login_tx(&tx("st3", "b3", 1000), limits)
            .await;
        assert!(matches!(full, Err(StoreError::Full(_))), "{full:?}");
        assert_eq!(
            s.count(Table::LoginTx).await.unwrap(),
            3,
            "nothing stored when full"
        );
        // Once the first ones expire there is room again.
        s.login_tx
            .insert_login_tx(&tx("st4", "b4", 1700), limits)
            .await
            .unwrap();
        assert_eq!(s.count(Table::LoginTx).await.unwrap(), 1);
    }
);

conformance!(sign_in_creates_user_and_session_together, |s, _b| {
    let (u, sess) = s
        .sessions
        .sign_in(&mapped("x"), "u1", &session("s1", 1), 1)
        .await
        .unwrap();
    assert_eq!(sess.user_id, u.id);
    assert_eq!(s.sessions.session("s1").await.unwrap(), Some(sess));
    // A second sign-in with a clashing session id fails as a whole: the profile update is
    // rolled back with it.
    let mut m = mapped("x");
    m.email = Some("changed@b.c".into());
    assert!(
        s.sessions
            .sign_in(&m, "u2", &session("s1", 2), 2)
            .await
            .is_err()
    );
    let u = s.users.user("u1").await.unwrap().unwrap();
    assert_eq!(u.profile.email.as_deref(), Some("a@b.c"));
    assert_eq!(u.last_login, 1);
    assert_eq!(s.count(Table::Sessions).await.unwrap(), 1);
    // A new person with a clashing session id: no user row left behind.
    assert!(
        s.sessions
            .sign_in(&mapped("y"), "u3", &session("s1", 3), 3)
            .await
            .is_err()
    );
    assert_eq!(s.count(Table::Users).await.unwrap(), 1);
});

conformance!(sessions_revocation_is_logged_once, |s, _b| {
    s.sessions
        .sign_in(&mapped("x"), "u1", &session("s1", 1), 1)
        .await
        .unwrap();
    let before = s.changes.latest_seq().await.unwrap();
    assert!(s.sessions.revoke_session("s1", 5).await.unwrap());
    assert!(!s.sessions.revoke_session("s1", 6).await.unwrap());
    assert!(!s.sessions.revoke_session("unknown", 6).await.unwrap());
    assert_eq!(
        s.sessions.session("s1").await.unwrap().unwrap().revoked_at,
        Some(5)
    );
    assert_eq!(
        s.sessions.revoked_sessions(10).await.unwrap(),
        vec![("s1".to_string(), 1001)]
    );
    assert!(s.sessions.revoked_sessions(2000).await.unwrap().is_empty());
    let log = s.changes.changes_since(before, 100).await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(
        log[0].change,
        Change::SessionRevoked {
            id: "s1".into(),
            expires_at: 1001
        }
    );
    assert_eq!(log[0].at, 5);
});

conformance!(user_state_changes_are_logged, |s, _b| {
    let u = s.users.upsert_user(&mapped("x"), "u1", 1).await.unwrap();
    let before = s.changes.latest_seq().await.unwrap();
    assert!(s.users.set_user_active(&u.id, false, 2).await.unwrap());
    assert!(
        !s.users.set_user_active(&u.id, false, 3).await.unwrap(),
        "no change, no event"
    );
    let off = s.users.user(&u.id).await.unwrap().unwrap();
    assert!(!off.active && off.admin_disabled && !off.idp_deactivated);
    // The admin re-enables and the other replicas are told.
    assert!(s.users.set_user_active(&u.id, true, 4).await.unwrap());
    let again = s.users.user(&u.id).await.unwrap().unwrap();
    assert!(again.active);
    let log = s.changes.changes_since(before, 100).await.unwrap();
    let kinds: Vec<_> = log.iter().map(|e| e.change.clone()).collect();
    assert_eq!(
        kinds,
        vec![
            Change::User { id: "u1".into() },
            Change::User { id: "u1".into() }
        ]
    );
    assert!(!s.users.set_user_active("unknown", false, 5).await.unwrap());
});

conformance!(changes_are_pruned_by_age, |s, _b| {
    s.sessions
        .sign_in(&mapped("x"), "u1", &session("s1", 1), 1)
        .await
        .unwrap();
    s.sessions
        .sign_in(&mapped("x"), "u1", &session("s2", 1), 1)
        .await
        .unwrap();
    s.sessions.revoke_session("s1", 100).await.unwrap();
    s.sessions.revoke_session("s2", 200).await.unwrap();
    let all = s.count(Table::Changes).await.unwrap();
    assert_eq!(
        s.changes.prune_changes(150).await.unwrap(),
        2,
        "the user change and s1"
    );
    assert_eq!(s.count(Table::Changes).await.unwrap(), all - 2);
    let left = s.changes.changes_since(0, 10).await.unwrap();
    assert_eq!(left.len(), 1);
    assert!(matches!(&left[0].change, Change::SessionRevoked { id, .. } if id == "s2"));
});

conformance!(
    feed_delivers_changes_to_another_replica_within_a_second,
    |a, b| {
        // Replica B follows the log from now on; replica A writes.
        let follower = Follower::start(&b).await;
        a.sessions
            .sign_in(&mapped("x"), "u1", &session("s1", 1), 1)
            .await
            .unwrap();
        a.sessions.revoke_session("s1", 2).await.unwrap();
        a.users.set_user_active("u1", false, 3).await.unwrap();
        follower
            .delivers_within_a_second(&[
                Change::SessionRevoked {
                    id: "s1".into(),
                    expires_at: 1001,
                },
                Change::User { id: "u1".into() },
            ])
            .await;
    }
);

conformance!(login_tx_round_trips_the_dpop_key_thumbprint, |s, _b| {
    let bound = LoginTx {
        dpop_jkt: Some("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs".into()),
        ..tx("with-dpop", "b", 1000)
    };
    let unbound = tx("without-dpop", "b", 1000);
    for t in [&bound, &unbound] {
        s.login_tx.insert_login_tx(t, LIMITS).await.unwrap();
    }
    assert_eq!(
        s.login_tx.take_login_tx("with-dpop", 1001).await.unwrap(),
        Some(bound)
    );
    assert_eq!(
        s.login_tx
            .take_login_tx("without-dpop", 1001)
            .await
            .unwrap(),
        Some(unbound)
    );
});

conformance!(dpop_proof_is_accepted_once_until_it_expires, |a, b| {
    let p = &a.proofs;
    assert!(p.remember_proof("k1", 1300, 1000, PROOFS).await.unwrap());
    assert!(
        !p.remember_proof("k1", 1300, 1001, PROOFS).await.unwrap(),
        "replay"
    );
    assert!(
        !b.proofs
            .remember_proof("k1", 1300, 1002, PROOFS)
            .await
            .unwrap(),
        "replay on another replica"
    );
    assert!(
        !p.remember_proof("k1", 1300, 1300, PROOFS).await.unwrap(),
        "still live at expires_at"
    );
    assert!(p.remember_proof("k2", 1300, 1000, PROOFS).await.unwrap());
    // Once expired, the same key counts as new and is remembered afresh.
    assert!(p.remember_proof("k1", 1601, 1301, PROOFS).await.unwrap());
    assert!(
        !p.remember_proof("k1", 1601, 1302, PROOFS).await.unwrap(),
        "the replaced entry is live again"
    );
    assert_eq!(
        a.count(Table::DpopProofs).await.unwrap(),
        2,
        "a replaced entry is still one row"
    );
});

conformance!(dpop_proof_racing_callers_exactly_one_wins, |a, b| {
    // Two replicas at once.
    let (x, y) = tokio::join!(
        a.proofs.remember_proof("pair", 1300, 1000, PROOFS),
        b.proofs.remember_proof("pair", 1300, 1000, PROOFS),
    );
    assert_eq!([x.unwrap(), y.unwrap()].iter().filter(|w| **w).count(), 1);
    // Many callers over both replicas, on a new key and on one whose entry has expired
    // (replacing it must be just as exclusive). The clock stays within the purge interval, so
    // the expired row is still there to be replaced rather than purged first.
    a.proofs
        .remember_proof("stale", 1005, 1000, PROOFS)
        .await
        .unwrap();
    for key in ["fresh", "stale"] {
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                let s = if i % 2 == 0 { a.clone() } else { b.clone() };
                tokio::spawn(async move { s.proofs.remember_proof(key, 1300, 1010, PROOFS).await })
            })
            .collect();
        let mut wins = 0;
        for t in tasks {
            if t.await.unwrap().unwrap() {
                wins += 1;
            }
        }
        assert_eq!(wins, 1, "{key}: exactly one caller may accept the proof");
    }
});

conformance!(dpop_proofs_are_bounded, |s, _b| {
    let limit = 3;
    let p = &s.proofs;
    for k in ["k1", "k2", "k3"] {
        assert!(p.remember_proof(k, 1001, 1000, limit).await.unwrap());
    }
    let full = p.remember_proof("k4", 1001, 1000, limit).await;
    assert!(
        matches!(full, Err(StoreError::Full("DPoP proofs"))),
        "{full:?}"
    );
    assert_eq!(
        s.count(Table::DpopProofs).await.unwrap(),
        3,
        "nothing stored when full"
    );
    // A second later the rows have expired: an apparently full table is re-counted (at most
    // once a second), so there is room again without waiting for the regular purge.
    assert!(p.remember_proof("k4", 1100, 1002, limit).await.unwrap());
    assert_eq!(s.count(Table::DpopProofs).await.unwrap(), 1);
});

conformance!(dpop_expired_proofs_are_purged, |s, _b| {
    let p = &s.proofs;
    for i in 0..5 {
        p.remember_proof(&format!("short{i}"), 1010, 1000, PROOFS)
            .await
            .unwrap();
    }
    p.remember_proof("long", 5000, 1000, PROOFS).await.unwrap();
    assert_eq!(s.count(Table::DpopProofs).await.unwrap(), 6);
    // Time has passed: the next call purges the expired rows.
    p.remember_proof("new", 5000, 1100, PROOFS).await.unwrap();
    assert_eq!(s.count(Table::DpopProofs).await.unwrap(), 2);
});

conformance!(dpop_proofs_are_purged_after_256_inserts_at_load, |s, _b| {
    // Under load the clock hardly moves between calls; a purge still runs after every 256
    // inserts.
    let p = &s.proofs;
    for i in 0..10 {
        p.remember_proof(&format!("short{i}"), 1005, 1000, PROOFS)
            .await
            .unwrap();
    }
    for i in 10..257 {
        p.remember_proof(&format!("k{i}"), 2000, 1010, PROOFS)
            .await
            .unwrap();
    }
    assert_eq!(
        s.count(Table::DpopProofs).await.unwrap(),
        257 - 10,
        "the 10 expired proofs are gone"
    );
});

#[tokio::test]
async fn sqlite_file_database_is_created_and_reopened() {
    let dir = std::env::temp_dir().join(format!("portcullis-store-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("p.db");
    let p = path.to_str().unwrap();
    {
        let s = Store::open_sqlite(p).await.unwrap();
        s.users.upsert_user(&mapped("x"), "u1", 1).await.unwrap();
    }
    let s = Store::open_sqlite(p).await.unwrap();
    assert_eq!(s.count(Table::Users).await.unwrap(), 1);
    assert_eq!(s.kind(), "sqlite");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// TLS to the database: `sslmode=verify-full` with the server's CA connects; with a CA that
/// did not sign the server's certificate the connection is refused.
#[tokio::test]
async fn postgres_over_tls_verifies_the_server_certificate() {
    let ca = std::env::var("PORTCULLIS_TEST_POSTGRES_CA").expect(
        "PORTCULLIS_TEST_POSTGRES_CA (the CA of the test server's TLS certificate) is not set: run \
         scripts/test, which starts a throw-away PostgreSQL with TLS",
    );
    let url = portcullis_store::testing::fresh_postgres_database().await;
    let s = Store::open_postgres(&format!("{url}?sslmode=verify-full&sslrootcert={ca}"))
        .await
        .unwrap();
    s.ping().await.unwrap();
    s.users.upsert_user(&mapped("tls"), "u1", 1).await.unwrap();
    // Any other CA: this file's certificates are public roots, none signed the test server.
    let wrong = "/etc/ssl/certs/ca-certificates.crt";
    if std::path::Path::new(wrong).exists() {
        let err = Store::open_postgres(&format!("{url}?sslmode=verify-full&sslrootcert={wrong}"))
            .await
            .expect_err("an unverifiable server certificate must be refused");
        assert!(matches!(err, StoreError::Db(_)), "{err:?}");
    }
}

#[tokio::test]
async fn postgres_refuses_a_non_postgres_url_and_reports_a_dead_server() {
    assert!(matches!(
        Store::open_postgres("mysql://x/y").await,
        Err(StoreError::Url(_))
    ));
    // Nothing listens on port 1.
    let err = Store::open_postgres("postgres://u:p@127.0.0.1:1/db")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Db(_)), "{err:?}");
}

// ---- R-US-1: two user states --------------------------------------------------------------

/// Sign `sub` in with session `sid` (IdP sid `idp_sid`) at `at`.
async fn sign_in_at(s: &Store, sub: &str, sid: &str, idp_sid: Option<&str>, at: i64) -> User {
    let sess = Session {
        idp_sid: idp_sid.map(str::to_string),
        ..session(sid, at)
    };
    s.sessions
        .sign_in(&mapped(sub), &format!("u-{sub}"), &sess, at)
        .await
        .unwrap()
        .0
}

fn states(u: &User) -> (bool, bool, bool) {
    (u.active, u.admin_disabled, u.idp_deactivated)
}

conformance!(
    r_us_1_admin_disabled_user_sign_in_refused_nothing_written,
    |s, _b| {
        let u = sign_in_at(&s, "x", "s1", None, 10).await;
        assert_eq!(states(&u), (true, false, false));
        assert!(s.users.set_admin_disabled(&u.id, true, 20).await.unwrap());
        assert!(
            !s.users.set_admin_disabled(&u.id, true, 21).await.unwrap(),
            "no change"
        );
        let before = u_snapshot(&s, &u.id).await;
        let (changes, sessions) = (
            s.count(Table::Changes).await.unwrap(),
            s.count(Table::Sessions).await.unwrap(),
        );
        let mut m = mapped("x");
        m.email = Some("changed@b.c".into());
        let r = s
            .sessions
            .sign_in(&m, "ignored", &session("s2", 30), 30)
            .await;
        assert!(matches!(r, Err(StoreError::AdminDisabled)), "{r:?}");
        let r = s.users.upsert_user(&m, "ignored", 30).await;
        assert!(matches!(r, Err(StoreError::AdminDisabled)), "{r:?}");
        assert_eq!(
            s.count(Table::Sessions).await.unwrap(),
            sessions,
            "no session"
        );
        assert_eq!(
            s.count(Table::Changes).await.unwrap(),
            changes,
            "no change row"
        );
        assert!(s.sessions.session("s2").await.unwrap().is_none());
        assert_eq!(
            u_snapshot(&s, &u.id).await,
            before,
            "the user row is unchanged (profile, last_login, states)"
        );
        // Admin-disabled takes precedence over IdP-deactivated, and a back-channel logout does not
        // lift it either.
        s.sessions
            .backchannel_logout("https://idp", Some("x"), None, 40, 40)
            .await
            .unwrap();
        let u2 = s.users.user(&u.id).await.unwrap().unwrap();
        assert_eq!(states(&u2), (false, true, true));
        let r = s
            .sessions
            .sign_in(&m, "ignored", &session("s3", 50), 50)
            .await;
        assert!(matches!(r, Err(StoreError::AdminDisabled)), "{r:?}");
        // Clearing admin-disabled alone leaves the IdP state: still not active until a sign-in.
        assert!(s.users.set_admin_disabled(&u.id, false, 60).await.unwrap());
        let u3 = s.users.user(&u.id).await.unwrap().unwrap();
        assert_eq!(states(&u3), (false, false, true));
        let u4 = sign_in_at(&s, "x", "s4", None, 70).await;
        assert_eq!(states(&u4), (true, false, false));
    }
);

async fn u_snapshot(s: &Store, id: &str) -> User {
    s.users.user(id).await.unwrap().unwrap()
}

conformance!(
    r_us_1_idp_deactivated_user_is_reactivated_by_sign_in,
    |s, _b| {
        let u = sign_in_at(&s, "x", "s1", Some("sid-1"), 10).await;
        let out = s
            .sessions
            .backchannel_logout("https://idp", Some("x"), None, 20, 20)
            .await
            .unwrap();
        assert_eq!(out.deactivated_user.as_deref(), Some(u.id.as_str()));
        assert_eq!(states(&u_snapshot(&s, &u.id).await), (false, false, true));
        let seq = s.changes.latest_seq().await.unwrap();
        let again = sign_in_at(&s, "x", "s2", Some("sid-2"), 30).await;
        assert_eq!(states(&again), (true, false, false));
        assert_eq!(states(&u_snapshot(&s, &u.id).await), (true, false, false));
        assert_eq!(again.last_login, 30);
        let log = s.changes.changes_since(seq, 10).await.unwrap();
        assert_eq!(
            log.iter().map(|e| e.change.clone()).collect::<Vec<_>>(),
            vec![Change::User { id: u.id.clone() }],
            "the re-activation is announced"
        );
        assert!(s.sessions.session("s2").await.unwrap().is_some());
    }
);

conformance!(r_us_1_admin_re_enable_clears_both_states, |s, _b| {
    let u = sign_in_at(&s, "x", "s1", None, 10).await;
    s.sessions
        .backchannel_logout("https://idp", Some("x"), None, 20, 20)
        .await
        .unwrap();
    s.users.set_user_active(&u.id, false, 30).await.unwrap();
    assert_eq!(states(&u_snapshot(&s, &u.id).await), (false, true, true));
    let changes = s.count(Table::Changes).await.unwrap();
    assert!(s.users.set_user_active(&u.id, true, 40).await.unwrap());
    assert_eq!(states(&u_snapshot(&s, &u.id).await), (true, false, false));
    assert_eq!(s.count(Table::Changes).await.unwrap(), changes + 1);
    assert!(
        !s.users.set_user_active(&u.id, true, 41).await.unwrap(),
        "already active: no change, no row"
    );
    assert_eq!(s.count(Table::Changes).await.unwrap(), changes + 1);
    // Re-enabling clears IdP-deactivated alone too.
    s.sessions
        .backchannel_logout("https://idp", Some("x"), None, 50, 50)
        .await
        .unwrap();
    assert!(s.users.set_user_active(&u.id, true, 60).await.unwrap());
    assert_eq!(states(&u_snapshot(&s, &u.id).await), (true, false, false));
    assert!(
        !s.users
            .set_admin_disabled("unknown", true, 70)
            .await
            .unwrap()
    );
    assert!(!s.users.set_user_active("unknown", true, 70).await.unwrap());
});

#[test]
fn user_serializes_all_three_states() {
    let u = User {
        id: "u1".into(),
        profile: mapped("x"),
        first_login: 1,
        last_login: 2,
        active: User::may_use(true, false),
        admin_disabled: true,
        idp_deactivated: false,
    };
    let v = serde_json::to_value(&u).unwrap();
    assert_eq!(v["active"], false);
    assert_eq!(v["admin_disabled"], true);
    assert_eq!(v["idp_deactivated"], false);
}

// ---- R-BCL actions: back-channel logout ---------------------------------------------------

conformance!(r_bcl_by_sid_revokes_only_that_session, |s, _b| {
    let u = sign_in_at(&s, "x", "s1", Some("sid-1"), 10).await;
    sign_in_at(&s, "x", "s2", Some("sid-2"), 11).await;
    sign_in_at(&s, "y", "s3", Some("sid-3"), 12).await;
    let changes = s.count(Table::Changes).await.unwrap();
    let seq = s.changes.latest_seq().await.unwrap();
    let out = s
        .sessions
        .backchannel_logout("https://idp", None, Some("sid-1"), 20, 25)
        .await
        .unwrap();
    assert_eq!(
        out,
        LogoutOutcome {
            revoked: vec![("s1".into(), 1010)],
            deactivated_user: Some(u.id.clone()),
        }
    );
    assert_eq!(
        s.sessions.session("s1").await.unwrap().unwrap().revoked_at,
        Some(25)
    );
    assert_eq!(
        s.sessions.session("s2").await.unwrap().unwrap().revoked_at,
        None
    );
    assert_eq!(
        s.sessions.session("s3").await.unwrap().unwrap().revoked_at,
        None
    );
    assert_eq!(s.count(Table::Changes).await.unwrap(), changes + 2);
    let log = s.changes.changes_since(seq, 10).await.unwrap();
    assert_eq!(
        log.iter().map(|e| e.change.clone()).collect::<Vec<_>>(),
        vec![
            Change::SessionRevoked {
                id: "s1".into(),
                expires_at: 1010
            },
            Change::User { id: u.id.clone() },
        ]
    );
    assert!(log.iter().all(|e| e.at == 25));
    assert!(
        s.sessions
            .revoked_sessions(25)
            .await
            .unwrap()
            .contains(&("s1".to_string(), 1010))
    );
    // sid and sub together: both must match.
    let out = s
        .sessions
        .backchannel_logout("https://idp", Some("y"), Some("sid-2"), 20, 26)
        .await
        .unwrap();
    assert_eq!(out, LogoutOutcome::default(), "sid-2 is not y's");
    let out = s
        .sessions
        .backchannel_logout("https://idp", Some("x"), Some("sid-2"), 20, 26)
        .await
        .unwrap();
    assert_eq!(out.revoked, vec![("s2".to_string(), 1011)]);
    assert_eq!(out.deactivated_user, None, "already IdP-deactivated");
    assert_eq!(s.count(Table::Changes).await.unwrap(), changes + 3);
    assert_eq!(
        s.sessions.session("s3").await.unwrap().unwrap().revoked_at,
        None
    );
});

conformance!(r_bcl_by_sub_revokes_all_of_the_users_sessions, |s, _b| {
    let u = sign_in_at(&s, "x", "s1", Some("sid-1"), 10).await;
    sign_in_at(&s, "x", "s2", Some("sid-2"), 11).await;
    sign_in_at(&s, "x", "s3", None, 12).await;
    sign_in_at(&s, "y", "s4", Some("sid-4"), 12).await;
    s.sessions.revoke_session("s3", 15).await.unwrap();
    let changes = s.count(Table::Changes).await.unwrap();
    let out = s
        .sessions
        .backchannel_logout("https://idp", Some("x"), None, 20, 25)
        .await
        .unwrap();
    assert_eq!(
        out,
        LogoutOutcome {
            revoked: vec![("s1".into(), 1010), ("s2".into(), 1011)],
            deactivated_user: Some(u.id.clone()),
        },
        "the already revoked s3 is not revoked again"
    );
    assert_eq!(
        s.sessions.session("s3").await.unwrap().unwrap().revoked_at,
        Some(15)
    );
    assert_eq!(
        s.sessions.session("s4").await.unwrap().unwrap().revoked_at,
        None
    );
    assert_eq!(
        s.count(Table::Changes).await.unwrap(),
        changes + 3,
        "two revocations and the user"
    );
    // Another issuer with the same sub is another user: untouched.
    let out = s
        .sessions
        .backchannel_logout("https://other", Some("y"), None, 20, 25)
        .await
        .unwrap();
    assert_eq!(out, LogoutOutcome::default());
    let out = s
        .sessions
        .backchannel_logout("https://other", None, Some("sid-4"), 20, 25)
        .await
        .unwrap();
    assert_eq!(
        out,
        LogoutOutcome::default(),
        "a sid is scoped to its issuer"
    );
    assert_eq!(
        s.sessions.session("s4").await.unwrap().unwrap().revoked_at,
        None
    );
    assert_eq!(s.count(Table::Changes).await.unwrap(), changes + 3);
});

conformance!(r_bcl_session_created_after_iat_survives, |s, _b| {
    sign_in_at(&s, "x", "old", Some("sid-1"), 10).await;
    let u = sign_in_at(&s, "x", "new", Some("sid-1"), 30).await;
    let out = s
        .sessions
        .backchannel_logout("https://idp", None, Some("sid-1"), 20, 35)
        .await
        .unwrap();
    assert_eq!(out.revoked, vec![("old".to_string(), 1010)]);
    assert_eq!(out.deactivated_user, None, "signed in after iat");
    assert_eq!(
        s.sessions.session("new").await.unwrap().unwrap().revoked_at,
        None
    );
    let by_sub = s
        .sessions
        .backchannel_logout("https://idp", Some("x"), None, 20, 36)
        .await
        .unwrap();
    assert_eq!(by_sub, LogoutOutcome::default());
    assert_eq!(
        s.sessions.session("new").await.unwrap().unwrap().revoked_at,
        None
    );
    assert!(u_snapshot(&s, &u.id).await.active);
    // created_at == iat is revoked (≤).
    let out = s
        .sessions
        .backchannel_logout("https://idp", Some("x"), None, 30, 37)
        .await
        .unwrap();
    assert_eq!(out.revoked, vec![("new".to_string(), 1030)]);
    // An expired session is not revoked (nothing to announce).
    sign_in_at(&s, "z", "gone", Some("sid-z"), 40).await;
    let out = s
        .sessions
        .backchannel_logout("https://idp", Some("z"), None, 50, 40 + 1001)
        .await
        .unwrap();
    assert!(out.revoked.is_empty());
    assert_eq!(out.deactivated_user, Some("u-z".to_string()));
});

conformance!(r_bcl_user_deactivated_only_if_last_login_le_iat, |s, _b| {
    // Two sessions; the user signed in again (last_login 30) after an older session (10).
    sign_in_at(&s, "x", "s1", Some("sid-1"), 10).await;
    let u = sign_in_at(&s, "x", "s2", Some("sid-2"), 30).await;
    let changes = s.count(Table::Changes).await.unwrap();
    // A token issued between the two logins: the older session ends, the user stays active.
    let out = s
        .sessions
        .backchannel_logout("https://idp", None, Some("sid-1"), 20, 40)
        .await
        .unwrap();
    assert_eq!(out.revoked, vec![("s1".to_string(), 1010)]);
    assert_eq!(out.deactivated_user, None);
    assert!(u_snapshot(&s, &u.id).await.active);
    assert_eq!(
        s.count(Table::Changes).await.unwrap(),
        changes + 1,
        "the revocation only"
    );
    // A token issued at the last login: deactivated (≤), once.
    let out = s
        .sessions
        .backchannel_logout("https://idp", Some("x"), None, 30, 41)
        .await
        .unwrap();
    assert_eq!(out.deactivated_user.as_deref(), Some(u.id.as_str()));
    assert_eq!(states(&u_snapshot(&s, &u.id).await), (false, false, true));
    assert_eq!(s.count(Table::Changes).await.unwrap(), changes + 3);
    // A user with no session left is still deactivated by sub.
    let lone = s
        .users
        .upsert_user(&mapped("lone"), "u-lone", 5)
        .await
        .unwrap();
    let out = s
        .sessions
        .backchannel_logout("https://idp", Some("lone"), None, 6, 42)
        .await
        .unwrap();
    assert_eq!(
        out,
        LogoutOutcome {
            revoked: vec![],
            deactivated_user: Some(lone.id.clone()),
        }
    );
    assert_eq!(s.count(Table::Changes).await.unwrap(), changes + 4);
});

conformance!(r_bcl_unknown_sub_or_sid_is_a_no_op, |s, _b| {
    sign_in_at(&s, "x", "s1", Some("sid-1"), 10).await;
    let (changes, users) = (
        s.count(Table::Changes).await.unwrap(),
        s.count(Table::Users).await.unwrap(),
    );
    for (sub, sid) in [
        (Some("nobody"), None),
        (None, Some("no-such-sid")),
        (Some("nobody"), Some("sid-1")),
        (Some("x"), Some("no-such-sid")),
        (None, None),
    ] {
        let out = s
            .sessions
            .backchannel_logout("https://idp", sub, sid, 20, 25)
            .await
            .unwrap();
        assert_eq!(out, LogoutOutcome::default(), "{sub:?} {sid:?}");
    }
    assert_eq!(
        s.count(Table::Changes).await.unwrap(),
        changes,
        "no change rows"
    );
    assert_eq!(s.count(Table::Users).await.unwrap(), users);
    assert_eq!(
        s.sessions.session("s1").await.unwrap().unwrap().revoked_at,
        None
    );
    assert!(s.users.user("u-x").await.unwrap().unwrap().active);
});

conformance!(r_bcl_changes_reach_another_replica, |a, b| {
    let follower = Follower::start(&b).await;
    sign_in_at(&a, "x", "s1", Some("sid-1"), 10).await;
    a.sessions
        .backchannel_logout("https://idp", None, Some("sid-1"), 20, 25)
        .await
        .unwrap();
    follower
        .delivers_within_a_second(&[
            Change::SessionRevoked {
                id: "s1".into(),
                expires_at: 1010,
            },
            Change::User { id: "u-x".into() },
        ])
        .await;
});

// ---- R-BCL validation 8: logout-token replay shares the "seen once" store -----------------

conformance!(replay_store_key_prefixes_do_not_collide, |a, b| {
    let p = &a.proofs;
    assert!(
        p.remember_proof("dpop:k", 1300, 1000, PROOFS)
            .await
            .unwrap()
    );
    assert!(
        p.remember_proof("bcl:k", 1300, 1000, PROOFS).await.unwrap(),
        "a logout token jti equal to a DPoP key is not a replay"
    );
    assert!(
        !b.proofs
            .remember_proof("bcl:k", 1300, 1001, PROOFS)
            .await
            .unwrap(),
        "but the same logout token again is, on any replica"
    );
    assert!(
        !p.remember_proof("dpop:k", 1300, 1001, PROOFS)
            .await
            .unwrap()
    );
    assert_eq!(a.count(Table::DpopProofs).await.unwrap(), 2);
});

// ---- The audit log ----------------------------------------------------------------------

fn event(at: i64, action: &str, outcome: &str, subject: Option<&str>) -> AuditEvent {
    AuditEvent {
        at,
        action: action.into(),
        outcome: outcome.into(),
        actor: subject.map(Into::into),
        subject: subject.map(Into::into),
        ip: Some("192.0.2.1".into()),
        detail: None,
    }
}

/// Everything matching `q` with a page as large as allowed.
async fn audit(s: &Store, q: AuditQuery) -> Vec<(i64, AuditEvent)> {
    s.audit
        .audit_events(&AuditQuery { limit: 500, ..q })
        .await
        .unwrap()
}

fn actions(rows: &[(i64, AuditEvent)]) -> Vec<&str> {
    rows.iter().map(|(_, e)| e.action.as_str()).collect()
}

/// A small log: four events about two users, one anonymous failure.
async fn seed_audit(s: &Store) {
    for e in [
        event(100, "auth.sign_in", "ok", Some("u-1")),
        event(101, "auth.failure", "failed", None),
        event(102, "admin.user_disabled", "ok", Some("u-2")),
        event(103, "auth.sign_in", "refused", Some("u-2")),
        event(104, "auth.logout", "ok", Some("u-1")),
    ] {
        s.audit.record_audit(&e).await.unwrap();
    }
}

conformance!(audit_events_are_listed_newest_first, |s, b| {
    assert!(audit(&s, AuditQuery::default()).await.is_empty());
    let mut full = event(100, "auth.sign_in", "ok", Some("u-1"));
    full.actor = Some("u-admin".into());
    full.detail = Some("ünïcødé \u{202e} '; DROP TABLE audit_events; --".into());
    s.audit.record_audit(&full).await.unwrap();
    let anonymous = AuditEvent {
        at: 101,
        action: "auth.failure".into(),
        outcome: "failed".into(),
        actor: None,
        subject: None,
        ip: None,
        detail: None,
    };
    s.audit.record_audit(&anonymous).await.unwrap();
    // Another replica sees the same log.
    let rows = audit(&b, AuditQuery::default()).await;
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].1, anonymous, "newest first");
    assert_eq!(rows[1].1, full, "every field round-trips");
    assert!(rows[0].0 > rows[1].0, "ids grow with insertion");
    assert_eq!(s.count(Table::Audit).await.unwrap(), 2);
});

conformance!(
    audit_events_filter_by_subject_action_prefix_and_outcome,
    |s, _b| {
        seed_audit(&s).await;
        let by_subject = |v: &str| AuditQuery {
            subject: Some(v.into()),
            ..AuditQuery::default()
        };
        let by_prefix = |v: &str| AuditQuery {
            action_prefix: Some(v.into()),
            ..AuditQuery::default()
        };
        assert_eq!(
            actions(&audit(&s, by_subject("u-1")).await),
            ["auth.logout", "auth.sign_in"]
        );
        assert!(audit(&s, by_subject("u-")).await.is_empty(), "exact match");
        assert_eq!(
            actions(&audit(&s, by_prefix("auth.")).await),
            [
                "auth.logout",
                "auth.sign_in",
                "auth.failure",
                "auth.sign_in"
            ]
        );
        assert_eq!(
            actions(&audit(&s, by_prefix("admin.user_disabled")).await),
            ["admin.user_disabled"],
            "a whole action is its own prefix"
        );
        assert_eq!(audit(&s, by_prefix("")).await.len(), 5, "empty prefix: all");
        let outcome = AuditQuery {
            outcome: Some("ok".into()),
            ..AuditQuery::default()
        };
        assert_eq!(
            actions(&audit(&s, outcome).await),
            ["auth.logout", "admin.user_disabled", "auth.sign_in"]
        );
        let all_three = AuditQuery {
            subject: Some("u-2".into()),
            action_prefix: Some("auth.".into()),
            outcome: Some("refused".into()),
            ..AuditQuery::default()
        };
        let rows = audit(&s, all_three).await;
        assert_eq!(rows.len(), 1);
        assert_eq!(
            rows[0].1,
            event(103, "auth.sign_in", "refused", Some("u-2"))
        );
    }
);

conformance!(audit_action_prefix_is_literal_not_a_pattern, |s, _b| {
    seed_audit(&s).await;
    s.audit
        .record_audit(&event(105, "auth._x", "ok", None))
        .await
        .unwrap();
    s.audit
        .record_audit(&event(106, "a%b\\c", "ok", None))
        .await
        .unwrap();
    let prefix = |v: &str| AuditQuery {
        action_prefix: Some(v.into()),
        ..AuditQuery::default()
    };
    // As LIKE patterns `_` and `%` would match any character(s), and SQLite's LIKE ignores
    // ASCII case.
    assert_eq!(
        actions(&audit(&s, prefix("auth._")).await),
        ["auth._x"],
        "`_` is not a wildcard: auth.sign_in does not match"
    );
    assert!(audit(&s, prefix("auth.sign%")).await.is_empty());
    assert!(audit(&s, prefix("%")).await.is_empty());
    assert!(audit(&s, prefix("AUTH.")).await.is_empty(), "case matters");
    assert_eq!(actions(&audit(&s, prefix("a%b\\")).await), ["a%b\\c"]);
    assert!(audit(&s, prefix("a%b\\_")).await.is_empty());
});

conformance!(audit_events_page_with_before_id, |s, _b| {
    for i in 0..7 {
        s.audit
            .record_audit(&event(100 + i, &format!("auth.e{i}"), "ok", Some("u-1")))
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    let mut before_id = None;
    loop {
        let page = s
            .audit
            .audit_events(&AuditQuery {
                subject: Some("u-1".into()),
                before_id,
                limit: 3,
                ..AuditQuery::default()
            })
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 3);
        before_id = page.last().map(|(id, _)| *id);
        seen.extend(page.into_iter().map(|(_, e)| e.action));
    }
    let want: Vec<String> = (0..7).rev().map(|i| format!("auth.e{i}")).collect();
    assert_eq!(seen, want, "every event once, newest first, across pages");
});

conformance!(audit_events_limit_is_clamped, |s, _b| {
    for i in 0..502 {
        s.audit
            .record_audit(&event(i, "auth.sign_in", "ok", None))
            .await
            .unwrap();
    }
    for (limit, want) in [
        (0, 1),
        (-5, 1),
        (1, 1),
        (2, 2),
        (500, 500),
        (501, 500),
        (i64::MAX, 500),
    ] {
        let rows = s
            .audit
            .audit_events(&AuditQuery {
                limit,
                ..AuditQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(rows.len(), want, "limit {limit}");
        assert_eq!(rows[0].1.at, 501, "newest first");
    }
});

conformance!(
    audit_long_fields_are_truncated_on_char_boundaries,
    |s, _b| {
        // Multi-byte characters straddle every bound: a byte cut would split one.
        let e = AuditEvent {
            at: 1,
            action: "é".repeat(100),
            outcome: "€".repeat(100),
            actor: Some("😀".repeat(200)),
            subject: Some("a".repeat(1000)),
            ip: Some("ü".repeat(65)),
            detail: Some(format!("x{}", "😀".repeat(1000))),
        };
        s.audit.record_audit(&e).await.unwrap();
        let rows = audit(&s, AuditQuery::default()).await;
        let got = &rows[0].1;
        assert_eq!(got.action, "é".repeat(64));
        assert_eq!(got.outcome, "€".repeat(64));
        assert_eq!(got.actor.as_deref(), Some("😀".repeat(128).as_str()));
        assert_eq!(got.subject.as_deref(), Some("a".repeat(128).as_str()));
        assert_eq!(got.ip.as_deref(), Some("ü".repeat(64).as_str()));
        assert_eq!(
            got.detail.as_deref(),
            Some(format!("x{}", "😀".repeat(511)).as_str())
        );
        // Fields at their bound are kept whole; NUL (which PostgreSQL text cannot hold) does not
        // lose the event.
        let exact = AuditEvent {
            at: 2,
            action: "a".repeat(64),
            outcome: "ok".into(),
            actor: None,
            subject: Some("u\0-1".into()),
            ip: Some("::1".into()),
            detail: Some("d".repeat(512)),
        };
        s.audit.record_audit(&exact).await.unwrap();
        let rows = audit(&s, AuditQuery::default()).await;
        let got = &rows[0].1;
        assert_eq!(got.action, exact.action);
        assert_eq!(got.detail, exact.detail);
        assert_eq!(got.subject.as_deref(), Some("u\u{fffd}-1"));
    }
);

conformance!(audit_prune_removes_only_older_events, |s, _b| {
    seed_audit(&s).await;
    assert_eq!(s.audit.prune_audit(100).await.unwrap(), 0, "strictly older");
    assert_eq!(s.audit.prune_audit(103).await.unwrap(), 3);
    let rows = audit(&s, AuditQuery::default()).await;
    assert_eq!(
        rows.iter().map(|(_, e)| e.at).collect::<Vec<_>>(),
        [104, 103]
    );
    assert_eq!(s.count(Table::Audit).await.unwrap(), 2);
    assert_eq!(s.audit.prune_audit(103).await.unwrap(), 0);
    // Ids keep growing after a prune, so a cursor from before it stays valid.
    let last = rows[0].0;
    s.audit
        .record_audit(&event(105, "auth.sign_in", "ok", None))
        .await
        .unwrap();
    let newest = audit(&s, AuditQuery::default()).await;
    assert!(newest[0].0 > last);
});

// ---- Offline access: sealed refresh tokens, due re-checks, leases -------------------------

/// Sign `sub` in with an offline session `sid` (sealed token `rt`) due at `due`.
async fn offline_sign_in(s: &Store, sub: &str, sid: &str, rt: &str, at: i64, due: i64) -> User {
    let sess = Session {
        refresh_token: Some(rt.into()),
        recheck_at: Some(due),
        ..session(sid, at)
    };
    s.sessions
        .sign_in(&mapped(sub), &format!("u-{sub}"), &sess, at)
        .await
        .unwrap()
        .0
}

conformance!(
    offline_session_keeps_its_sealed_token_and_due_time,
    |s, _b| {
        offline_sign_in(&s, "x", "s1", "v1.sealed-1", 100, 400).await;
        let got = s.sessions.session("s1").await.unwrap().unwrap();
        assert_eq!(got.refresh_token.as_deref(), Some("v1.sealed-1"));
        assert_eq!(got.recheck_at, Some(400));
        // A session without offline access has neither.
        sign_in_at(&s, "y", "s2", None, 100).await;
        let plain = s.sessions.session("s2").await.unwrap().unwrap();
        assert_eq!((plain.refresh_token, plain.recheck_at), (None, None));
    }
);

conformance!(offline_claim_only_due_live_unleased_sessions, |s, _b| {
    offline_sign_in(&s, "a", "due-1", "rt-a", 100, 300).await;
    offline_sign_in(&s, "b", "due-2", "rt-b", 100, 350).await;
    offline_sign_in(&s, "c", "later", "rt-c", 100, 900).await;
    offline_sign_in(&s, "d", "revoked", "rt-d", 100, 300).await;
    sign_in_at(&s, "e", "no-token", None, 100).await;
    assert!(s.sessions.revoke_session("revoked", 200).await.unwrap());
    // Revoking drops the sealed token.
    let r = s.sessions.session("revoked").await.unwrap().unwrap();
    assert_eq!(r.refresh_token, None);

    assert!(
        s.sessions
            .claim_rechecks("L1", 460, 299, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let due = s.sessions.claim_rechecks("L1", 460, 400, 10).await.unwrap();
    let ids: Vec<_> = due.iter().map(|d| d.session_id.as_str()).collect();
    assert_eq!(ids, ["due-1", "due-2"]);
    assert_eq!(due[0].refresh_token, "rt-a");
    assert_eq!(due[0].user_id, "u-a");
    assert_eq!(due[0].id_token.as_deref(), Some("header.claims.signature"));
    assert_eq!((due[0].failures, due[0].expires_at), (0, 1100));
    assert!(!format!("{due:?}").contains("rt-a"), "Debug shows no token");
    // Leased: nobody else gets them until the lease runs out.
    assert!(
        s.sessions
            .claim_rechecks("L2", 500, 401, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let again = s.sessions.claim_rechecks("L2", 600, 461, 10).await.unwrap();
    assert_eq!(
        again.len(),
        2,
        "an expired lease (a crashed replica) is taken over"
    );
    // The limit, earliest due first.
    offline_sign_in(&s, "f", "due-3", "rt-f", 100, 310).await;
    let one = s.sessions.claim_rechecks("L3", 700, 500, 1).await.unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].session_id, "due-3");
    // Past the absolute expiry nothing is re-checked, and the refresh tokens are dropped.
    assert!(
        s.sessions
            .claim_rechecks("L4", 2000, 1100, 10)
            .await
            .unwrap()
            .is_empty()
    );
    for sid in ["due-1", "due-2", "later", "due-3"] {
        let row = s.sessions.session(sid).await.unwrap().unwrap();
        assert_eq!(row.refresh_token, None, "{sid}");
        assert_eq!(row.revoked_at, None, "expired, not revoked");
    }
});

conformance!(
    offline_two_replicas_never_claim_one_session_twice,
    |a, b| {
        for i in 0..20 {
            offline_sign_in(&a, &format!("u{i}"), &format!("s{i:02}"), "rt", 100, 200).await;
        }
        // Both replicas claim at once, many times over; each session goes to exactly one.
        let mut claimed = Vec::new();
        for round in 0..5 {
            let (la, lb) = (format!("A{round}"), format!("B{round}"));
            let (x, y) = tokio::join!(
                a.sessions.claim_rechecks(&la, 10_000, 300, 3),
                b.sessions.claim_rechecks(&lb, 10_000, 300, 3),
            );
            for d in x.unwrap().into_iter().chain(y.unwrap()) {
                claimed.push(d.session_id);
            }
        }
        let n = claimed.len();
        claimed.sort();
        claimed.dedup();
        assert_eq!(claimed.len(), n, "a session was leased twice: {claimed:?}");
        assert_eq!(n, 20);
    }
);

conformance!(
    offline_complete_updates_token_time_and_changed_claims,
    |s, other| {
        let user = offline_sign_in(&s, "x", "s1", "rt-1", 100, 300).await;
        let due = s.sessions.claim_rechecks("L", 460, 300, 10).await.unwrap();
        assert_eq!(due.len(), 1);
        let seq = s.changes.latest_seq().await.unwrap();

        // Same claims: the token and time are saved, nobody's cache needs to change.
        let same = mapped("x");
        let r = s
            .sessions
            .complete_recheck(
                &RecheckDone {
                    session_id: "s1",
                    lease: "L",
                    refresh_token: "rt-2",
                    next_at: 500,
                    profile: Some(&same),
                },
                310,
            )
            .await
            .unwrap();
        assert_eq!(
            r,
            RecheckSaved {
                saved: true,
                user_changed: false
            }
        );
        let got = other.sessions.session("s1").await.unwrap().unwrap();
        assert_eq!(
            (got.refresh_token.as_deref(), got.recheck_at),
            (Some("rt-2"), Some(500))
        );
        assert_eq!(s.changes.latest_seq().await.unwrap(), seq);
        // The lease is released: a second completion with it does nothing.
        let stale = RecheckDone {
            session_id: "s1",
            lease: "L",
            refresh_token: "rt-stale",
            next_at: 5,
            profile: None,
        };
        assert_eq!(
            s.sessions.complete_recheck(&stale, 320).await.unwrap(),
            RecheckSaved::default()
        );
        assert!(!s.sessions.defer_recheck("s1", "L", 5).await.unwrap());

        // New groups: the user row changes and every replica is told.
        let due = s.sessions.claim_rechecks("M", 600, 500, 10).await.unwrap();
        assert_eq!(due.len(), 1);
        let mut m = mapped("x");
        m.groups = vec!["g3".into()];
        m.email = Some("new@b.c".into());
        let r = s
            .sessions
            .complete_recheck(
                &RecheckDone {
                    session_id: "s1",
                    lease: "M",
                    refresh_token: "rt-3",
                    next_at: 700,
                    profile: Some(&m),
                },
                510,
            )
            .await
            .unwrap();
        assert_eq!(
            r,
            RecheckSaved {
                saved: true,
                user_changed: true
            }
        );
        let u = other.users.user(&user.id).await.unwrap().unwrap();
        assert_eq!(u.profile.groups, vec!["g3"]);
        assert_eq!(u.profile.email.as_deref(), Some("new@b.c"));
        assert_eq!(u.last_login, 100, "a re-check is not a sign-in");
        let changes = other.changes.changes_since(seq, 100).await.unwrap();
        assert_eq!(
            changes.iter().map(|c| c.change.clone()).collect::<Vec<_>>(),
            vec![Change::User {
                id: user.id.clone()
            }]
        );

        // Another identity is never written into this user.
        let due = s.sessions.claim_rechecks("N", 800, 700, 10).await.unwrap();
        assert_eq!(due.len(), 1);
        let intruder = mapped("someone-else");
        let err = s
            .sessions
            .complete_recheck(
                &RecheckDone {
                    session_id: "s1",
                    lease: "N",
                    refresh_token: "rt-4",
                    next_at: 900,
                    profile: Some(&intruder),
                },
                710,
            )
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
        let got = s.sessions.session("s1").await.unwrap().unwrap();
        assert_eq!(got.refresh_token.as_deref(), Some("rt-3"), "rolled back");
    }
);

conformance!(
    offline_defer_counts_failures_and_revocation_wins,
    |s, _b| {
        offline_sign_in(&s, "x", "s1", "rt-1", 100, 300).await;
        let due = s.sessions.claim_rechecks("L", 460, 300, 10).await.unwrap();
        assert_eq!(due[0].failures, 0);
        assert!(s.sessions.defer_recheck("s1", "L", 360).await.unwrap());
        assert!(
            !s.sessions.defer_recheck("s1", "L", 360).await.unwrap(),
            "lease released"
        );
        assert!(
            s.sessions
                .claim_rechecks("L2", 500, 359, 10)
                .await
                .unwrap()
                .is_empty()
        );
        let due = s.sessions.claim_rechecks("L2", 500, 360, 10).await.unwrap();
        assert_eq!(due[0].failures, 1);
        assert!(s.sessions.defer_recheck("s1", "L2", 480).await.unwrap());
        let due = s.sessions.claim_rechecks("L3", 600, 480, 10).await.unwrap();
        assert_eq!(due[0].failures, 2);
        // Ended while leased (logout on another replica): the completion writes nothing.
        assert!(s.sessions.revoke_session("s1", 490).await.unwrap());
        let r = s
            .sessions
            .complete_recheck(
                &RecheckDone {
                    session_id: "s1",
                    lease: "L3",
                    refresh_token: "rt-2",
                    next_at: 1000,
                    profile: None,
                },
                495,
            )
            .await
            .unwrap();
        assert!(!r.saved);
        let got = s.sessions.session("s1").await.unwrap().unwrap();
        assert_eq!(got.refresh_token, None);
        // A success resets the failure count.
        offline_sign_in(&s, "y", "s2", "rt-y", 100, 300).await;
        s.sessions.claim_rechecks("P", 460, 300, 10).await.unwrap();
        s.sessions.defer_recheck("s2", "P", 320).await.unwrap();
        s.sessions.claim_rechecks("Q", 460, 320, 10).await.unwrap();
        let done = RecheckDone {
            session_id: "s2",
            lease: "Q",
            refresh_token: "rt-y2",
            next_at: 400,
            profile: None,
        };
        assert!(s.sessions.complete_recheck(&done, 330).await.unwrap().saved);
        let due = s.sessions.claim_rechecks("R", 800, 400, 10).await.unwrap();
        assert_eq!(due[0].failures, 0);
    }
);

conformance!(offline_backchannel_logout_drops_sealed_tokens, |s, _b| {
    offline_sign_in(&s, "x", "s1", "rt-1", 100, 300).await;
    let out = s
        .sessions
        .backchannel_logout("https://idp", Some("x"), None, 150, 160)
        .await
        .unwrap();
    assert_eq!(out.revoked.len(), 1);
    let got = s.sessions.session("s1").await.unwrap().unwrap();
    assert_eq!(got.refresh_token, None);
    assert!(
        s.sessions
            .claim_rechecks("L", 1000, 400, 10)
            .await
            .unwrap()
            .is_empty()
    );
});

// ---- The admin page: users, their sessions, ending them ------------------------------------

/// A user with the given profile fields, signed in at `at` under internal id `id`.
async fn person(s: &Store, id: &str, sub: &str, email: &str, name: &str, username: &str) {
    let m = MappedUser {
        email: Some(email.into()),
        name: Some(name.into()),
        username: Some(username.into()),
        ..mapped(sub)
    };
    s.users.upsert_user(&m, id, 100).await.unwrap();
}

async fn search(s: &Store, text: Option<&str>, after: Option<&str>, limit: i64) -> Vec<String> {
    s.admin
        .list_users(&portcullis_store::UserQuery {
            search: text.map(Into::into),
            after_id: after.map(Into::into),
            limit,
        })
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.id)
        .collect()
}

conformance!(
    admin_users_search_is_a_literal_case_insensitive_substring,
    |s, _b| {
        person(
            &s,
            "id-1",
            "sub-aaa",
            "Alice@Example.com",
            "Alice Liddell",
            "alice",
        )
        .await;
        person(
            &s,
            "id-2",
            "sub-bbb",
            "bob@example.com",
            "Bob 100%",
            "bob_b",
        )
        .await;
        person(&s, "id-3", "ZED-sub", "carol@other.org", "Carol", "c\\arol").await;
        assert_eq!(search(&s, None, None, 100).await, ["id-1", "id-2", "id-3"]);
        assert_eq!(
            search(&s, Some("   "), None, 100).await.len(),
            3,
            "blank: all"
        );
        // Each field, any case.
        assert_eq!(
            search(&s, Some("EXAMPLE.COM"), None, 100).await,
            ["id-1", "id-2"]
        );
        assert_eq!(search(&s, Some("liddell"), None, 100).await, ["id-1"]);
        assert_eq!(search(&s, Some("BOB_"), None, 100).await, ["id-2"]);
        assert_eq!(search(&s, Some("zed-s"), None, 100).await, ["id-3"]);
        // Wildcards and the escape character are plain text.
        assert_eq!(search(&s, Some("%"), None, 100).await, ["id-2"]);
        assert_eq!(search(&s, Some("100%"), None, 100).await, ["id-2"]);
        assert!(
            search(&s, Some("a_i"), None, 100).await.is_empty(),
            "`_` is not a wildcard"
        );
        assert!(search(&s, Some("b%b"), None, 100).await.is_empty());
        assert_eq!(search(&s, Some("c\\a"), None, 100).await, ["id-3"]);
        assert!(
            search(&s, Some("'; DROP TABLE users; --"), None, 100)
                .await
                .is_empty()
        );
        assert_eq!(s.count(Table::Users).await.unwrap(), 3);
        // Very long input is cut, not refused.
        assert!(
            search(&s, Some(&"x".repeat(100_000)), None, 100)
                .await
                .is_empty()
        );
    }
);

conformance!(admin_users_keyset_paging_is_stable, |s, _b| {
    for i in 0..7 {
        person(
            &s,
            &format!("id-{i}"),
            &format!("sub-{i}"),
            "x@example.com",
            "X",
            "x",
        )
        .await;
    }
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = search(&s, Some("example"), after.as_deref(), 3).await;
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 3);
        if after.is_none() {
            // A user added before the cursor does not shift later pages.
            person(&s, "id-0a", "sub-new", "x@example.com", "X", "x").await;
        }
        after = page.last().cloned();
        seen.extend(page);
    }
    let want: Vec<String> = (0..7).map(|i| format!("id-{i}")).collect();
    assert_eq!(seen, want, "every user once, in id order, across pages");
    // Page sizes are clamped.
    assert_eq!(search(&s, None, None, 0).await.len(), 1);
    assert_eq!(search(&s, None, None, i64::MAX).await.len(), 8);
    for i in 0..150 {
        person(
            &s,
            &format!("many-{i:03}"),
            &format!("m-{i}"),
            "m@m",
            "M",
            "m",
        )
        .await;
    }
    assert_eq!(
        search(&s, None, None, i64::MAX).await.len() as i64,
        portcullis_store::USERS_MAX_PAGE
    );
});

conformance!(admin_user_sessions_newest_first, |s, _b| {
    let u = sign_in_at(&s, "x", "s1", None, 10).await;
    sign_in_at(&s, "x", "s2", None, 20).await;
    sign_in_at(&s, "y", "other", None, 30).await;
    s.sessions.revoke_session("s1", 25).await.unwrap();
    let got = s.admin.user_sessions(&u.id).await.unwrap();
    assert_eq!(
        got,
        [
            portcullis_store::SessionSummary {
                id: "s2".into(),
                created_at: 20,
                last_seen: 20,
                expires_at: 1020,
                revoked_at: None,
            },
            portcullis_store::SessionSummary {
                id: "s1".into(),
                created_at: 10,
                last_seen: 10,
                expires_at: 1010,
                revoked_at: Some(25),
            },
        ]
    );
    assert!(s.admin.user_sessions("nobody").await.unwrap().is_empty());
});

conformance!(admin_revoke_user_sessions_appends_changes, |s, b| {
    let u = sign_in_at(&s, "x", "s1", None, 10).await;
    sign_in_at(&s, "x", "s2", None, 20).await;
    sign_in_at(&s, "x", "s3", None, 30).await;
    sign_in_at(&s, "y", "other", None, 30).await;
    s.sessions.revoke_session("s3", 40).await.unwrap();
    let seq = b.changes.latest_seq().await.unwrap();
    let revoked = s.admin.revoke_user_sessions(&u.id, 50).await.unwrap();
    assert_eq!(
        revoked,
        [("s1".to_string(), 1010), ("s2".to_string(), 1020)]
    );
    // The other replica sees one change per session.
    let changes: Vec<Change> = b
        .changes
        .changes_since(seq, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.change)
        .collect();
    assert_eq!(
        changes,
        [
            Change::SessionRevoked {
                id: "s1".into(),
                expires_at: 1010
            },
            Change::SessionRevoked {
                id: "s2".into(),
                expires_at: 1020
            },
        ]
    );
    assert_eq!(
        s.sessions.session("s1").await.unwrap().unwrap().revoked_at,
        Some(50)
    );
    assert_eq!(
        s.sessions.session("s3").await.unwrap().unwrap().revoked_at,
        Some(40),
        "kept"
    );
    assert_eq!(
        s.sessions
            .session("other")
            .await
            .unwrap()
            .unwrap()
            .revoked_at,
        None
    );
    // Nothing live left: nothing revoked, nothing appended.
    assert!(
        s.admin
            .revoke_user_sessions(&u.id, 60)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        s.admin
            .revoke_user_sessions("nobody", 60)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(b.changes.latest_seq().await.unwrap(), seq + 2);
});

conformance!(admin_deactivate_disables_and_ends_sessions, |s, b| {
    let u = sign_in_at(&s, "x", "s1", None, 10).await;
    sign_in_at(&s, "x", "s2", None, 20).await;
    let seq = b.changes.latest_seq().await.unwrap();
    let d = s.admin.deactivate_user(&u.id, 50).await.unwrap();
    assert!(d.found && d.changed);
    assert_eq!(
        d.revoked,
        [("s1".to_string(), 1010), ("s2".to_string(), 1020)]
    );
    let changes: Vec<Change> = b
        .changes
        .changes_since(seq, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.change)
        .collect();
    assert_eq!(changes.len(), 3);
    assert_eq!(changes[0], Change::User { id: u.id.clone() });
    let now = b.users.user(&u.id).await.unwrap().unwrap();
    assert_eq!(states(&now), (false, true, false));
    // A sign-in is refused and never lifts it.
    let r = s
        .sessions
        .sign_in(&mapped("x"), "u-x", &session("s9", 60), 60)
        .await;
    assert!(matches!(r, Err(StoreError::AdminDisabled)), "{r:?}");
    // Again: no change, nothing more appended.
    let again = s.admin.deactivate_user(&u.id, 70).await.unwrap();
    assert!(again.found && !again.changed && again.revoked.is_empty());
    assert_eq!(b.changes.latest_seq().await.unwrap(), seq + 3);
    // Unknown user: nothing.
    assert_eq!(
        s.admin.deactivate_user("nobody", 70).await.unwrap(),
        portcullis_store::Deactivation::default()
    );
    assert_eq!(b.changes.latest_seq().await.unwrap(), seq + 3);
    // Re-enabled by an administrator: the old sessions stay ended.
    assert!(s.users.set_user_active(&u.id, true, 80).await.unwrap());
    assert!(b.users.user(&u.id).await.unwrap().unwrap().active);
    assert!(
        s.sessions
            .session("s1")
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_some()
    );
});

conformance!(audit_filters_by_actor_and_time, |s, _b| {
    seed_audit(&s).await;
    let mut e = event(105, "admin.sessions_revoked", "ok", Some("u-1"));
    e.actor = Some("admin-1".into());
    s.audit.record_audit(&e).await.unwrap();
    let q = |actor: Option<&str>, since, until| AuditQuery {
        actor: actor.map(Into::into),
        since,
        until,
        ..AuditQuery::default()
    };
    assert_eq!(
        actions(&audit(&s, q(Some("admin-1"), None, None)).await),
        ["admin.sessions_revoked"]
    );
    assert_eq!(
        actions(&audit(&s, q(Some("u-2"), None, None)).await),
        ["auth.sign_in", "admin.user_disabled"]
    );
    assert_eq!(
        actions(&audit(&s, q(None, Some(101), Some(103))).await),
        ["admin.user_disabled", "auth.failure"],
        "since inclusive, until exclusive"
    );
    assert_eq!(
        actions(&audit(&s, q(Some("u-2"), Some(103), None)).await),
        ["auth.sign_in"]
    );
    assert!(audit(&s, q(None, Some(200), None)).await.is_empty());
});
