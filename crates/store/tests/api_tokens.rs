//! Conformance of the API token store (R-AT) on both backends: every case runs once on SQLite
//! (in memory) and once on PostgreSQL (a fresh database per case on the server named by
//! `PORTCULLIS_TEST_POSTGRES_URL`). Kept beside `conformance.rs`, sharing its runner and
//! fixtures (`support`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use portcullis_store::{ApiToken, Change, Created, ENDED_RETENTION, KEEP_ENDED, Store, Table};
use support::{Follower, conformance, mapped};

fn token(id: &str, user: &str, created: i64, expires: Option<i64>) -> ApiToken {
    ApiToken {
        id: id.into(),
        user_id: user.into(),
        name: format!("name of {id}"),
        secret_hash: vec![7; 32],
        created_at: created,
        expires_at: expires,
        revoked_at: None,
        last_used: None,
    }
}

/// A user `u-{sub}`.
async fn user(s: &Store, sub: &str) -> String {
    s.users
        .upsert_user(&mapped(sub), &format!("u-{sub}"), 1)
        .await
        .unwrap()
        .id
}

conformance!(r_at_1_tokens_round_trip_with_their_hash_only, |s, b| {
    let u = user(&s, "a").await;
    let t = token("aaaaaaaaaaaa", &u, 100, Some(1000));
    assert_eq!(
        s.tokens.create_api_token(&t, 5, 100).await.unwrap(),
        Created::Created
    );
    // Read back on the other replica: every field, the hash as bytes.
    assert_eq!(b.tokens.api_token(&t.id).await.unwrap(), Some(t.clone()));
    assert_eq!(s.tokens.api_token("unknownxxxxx").await.unwrap(), None);
    let forever = token("bbbbbbbbbbbb", &u, 200, None);
    s.tokens.create_api_token(&forever, 5, 200).await.unwrap();
    let listed = b.tokens.api_tokens_of(&u).await.unwrap();
    assert_eq!(listed, vec![forever.clone(), t.clone()], "newest first");
    assert!(s.tokens.api_tokens_of("u-nobody").await.unwrap().is_empty());
    // A duplicate id is an error, not a second row.
    assert!(s.tokens.create_api_token(&t, 5, 300).await.is_err());
    assert_eq!(s.count(Table::ApiTokens).await.unwrap(), 2);
});

conformance!(r_at_1_live_tokens_per_user_are_bounded, |s, _b| {
    let u = user(&s, "a").await;
    let other = user(&s, "b").await;
    for (i, id) in ["t00000000001", "t00000000002"].iter().enumerate() {
        let r = s
            .tokens
            .create_api_token(&token(id, &u, 10 + i as i64, None), 2, 10)
            .await
            .unwrap();
        assert_eq!(r, Created::Created);
    }
    let third = token("t00000000003", &u, 20, None);
    assert_eq!(
        s.tokens.create_api_token(&third, 2, 20).await.unwrap(),
        Created::LimitReached
    );
    assert_eq!(
        s.count(Table::ApiTokens).await.unwrap(),
        2,
        "nothing stored"
    );
    // Another person has their own budget.
    assert_eq!(
        s.tokens
            .create_api_token(&token("t00000000004", &other, 20, None), 2, 20)
            .await
            .unwrap(),
        Created::Created
    );
    // Revoked and expired tokens do not count.
    assert!(
        s.tokens
            .revoke_api_token(&u, "t00000000001", 30)
            .await
            .unwrap()
    );
    assert_eq!(
        s.tokens.create_api_token(&third, 2, 30).await.unwrap(),
        Created::Created
    );
    let short = token("t00000000005", &other, 40, Some(50));
    s.tokens.create_api_token(&short, 2, 40).await.unwrap();
    let later = token("t00000000006", &other, 60, None);
    assert_eq!(
        s.tokens.create_api_token(&later, 2, 60).await.unwrap(),
        Created::Created,
        "t5 expired at 50"
    );
});

conformance!(r_at_3_revocation_is_owner_only_and_logged, |s, _b| {
    let u = user(&s, "a").await;
    let mallory = user(&s, "m").await;
    let t = token("aaaaaaaaaaaa", &u, 100, None);
    s.tokens.create_api_token(&t, 5, 100).await.unwrap();
    let before = s.changes.latest_seq().await.unwrap();
    assert!(
        !s.tokens
            .revoke_api_token(&mallory, &t.id, 110)
            .await
            .unwrap(),
        "not Mallory's to revoke"
    );
    assert!(
        s.changes
            .changes_since(before, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(s.tokens.revoke_api_token(&u, &t.id, 120).await.unwrap());
    assert!(
        !s.tokens.revoke_api_token(&u, &t.id, 130).await.unwrap(),
        "once"
    );
    let got = s.tokens.api_token(&t.id).await.unwrap().unwrap();
    assert_eq!(got.revoked_at, Some(120));
    assert!(!got.is_live(120));
    assert!(s.tokens.api_tokens_of(&u).await.unwrap().is_empty());
    let log = s.changes.changes_since(before, 10).await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(
        log[0].change,
        Change::ApiTokenRevoked {
            id: "aaaaaaaaaaaa".into()
        }
    );
    assert_eq!(log[0].at, 120);
});

conformance!(r_at_1_last_used_only_moves_forward, |s, b| {
    let u = user(&s, "a").await;
    let t = token("aaaaaaaaaaaa", &u, 100, None);
    s.tokens.create_api_token(&t, 5, 100).await.unwrap();
    s.tokens.touch_api_token(&t.id, 200).await.unwrap();
    b.tokens.touch_api_token(&t.id, 150).await.unwrap();
    assert_eq!(
        s.tokens.api_token(&t.id).await.unwrap().unwrap().last_used,
        Some(200)
    );
    s.tokens.touch_api_token("unknownxxxxx", 300).await.unwrap();
});

conformance!(r_at_1_tokens_go_with_their_user, |s, _b| {
    let u = user(&s, "a").await;
    s.tokens
        .create_api_token(&token("aaaaaaaaaaaa", &u, 1, None), 5, 1)
        .await
        .unwrap();
    assert!(
        s.tokens
            .create_api_token(&token("bbbbbbbbbbbb", "u-nobody", 1, None), 5, 1)
            .await
            .is_err(),
        "a token belongs to an existing user"
    );
});

conformance!(
    r_at_3_revocation_reaches_another_replica_within_a_second,
    |a, b| {
        let u = user(&a, "a").await;
        a.tokens
            .create_api_token(&token("aaaaaaaaaaaa", &u, 1, None), 5, 1)
            .await
            .unwrap();
        let follower = Follower::start(&b).await;
        a.tokens
            .revoke_api_token(&u, "aaaaaaaaaaaa", 2)
            .await
            .unwrap();
        follower
            .delivers_within_a_second(&[Change::ApiTokenRevoked {
                id: "aaaaaaaaaaaa".into(),
            }])
            .await;
    }
);

conformance!(
    ended_tokens_are_forgotten_beyond_a_bound_and_a_retention,
    |s, _b| {
        let u = user(&s, "a").await;
        let n = KEEP_ENDED + 5;
        for i in 0..n {
            let t = token(&format!("e{i:011}"), &u, 1000 + i, None);
            assert_eq!(
                s.tokens.create_api_token(&t, 5, 1000 + i).await.unwrap(),
                Created::Created
            );
            assert!(
                s.tokens
                    .revoke_api_token(&u, &t.id, 1000 + i)
                    .await
                    .unwrap()
            );
        }
        // Another person's ended tokens are theirs to keep.
        let other = user(&s, "b").await;
        let o = token("otherxxxxxxx", &other, 1000, None);
        s.tokens.create_api_token(&o, 5, 1000).await.unwrap();
        s.tokens
            .revoke_api_token(&other, &o.id, 1000)
            .await
            .unwrap();
        // The next creation keeps the newest KEEP_ENDED ended ones (and the new live one).
        let live = token("livexxxxxxxx", &u, 5000, None);
        s.tokens.create_api_token(&live, 5, 5000).await.unwrap();
        assert_eq!(
            s.count(Table::ApiTokens).await.unwrap(),
            KEEP_ENDED + 1 + 1,
            "{KEEP_ENDED} ended + the live one + the other person's"
        );
        assert!(
            s.tokens.api_token("e00000000000").await.unwrap().is_none(),
            "oldest gone"
        );
        assert!(
            s.tokens
                .api_token(&format!("e{:011}", n - 1))
                .await
                .unwrap()
                .is_some(),
            "newest kept"
        );
        // After the retention every ended token goes; live ones stay, expired ones go too.
        let later = 5000 + ENDED_RETENTION + 1;
        let expiring = token("expxxxxxxxxx", &u, later, Some(later + 10));
        s.tokens
            .create_api_token(&expiring, 5, later)
            .await
            .unwrap();
        assert_eq!(
            s.tokens.api_tokens_of(&u).await.unwrap().len(),
            2,
            "the live and the expiring one"
        );
        assert_eq!(s.count(Table::ApiTokens).await.unwrap(), 2 + 1);
        let after_expiry = later + 11 + ENDED_RETENTION;
        let last = token("lastxxxxxxxx", &u, after_expiry, None);
        s.tokens
            .create_api_token(&last, 5, after_expiry)
            .await
            .unwrap();
        assert!(
            s.tokens.api_token("expxxxxxxxxx").await.unwrap().is_none(),
            "expired long ago"
        );
        assert!(s.tokens.api_token("livexxxxxxxx").await.unwrap().is_some());
    }
);
