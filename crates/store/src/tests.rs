#![allow(clippy::unwrap_used, clippy::expect_used)]

use portcullis_core::claims::MappedUser;

use super::*;

fn mapped(sub: &str) -> MappedUser {
    MappedUser {
        issuer: "https://idp".into(),
        subject: sub.into(),
        user_id: sub.into(),
        email: Some("a@b.c".into()),
        name: Some("A".into()),
        given_name: None,
        family_name: None,
        picture: None,
        provider: Some("https://idp".into()),
        username: Some("a".into()),
        groups: vec!["g1".into(), "g2".into()],
    }
}

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
    }
}

#[tokio::test]
async fn users_upsert_keeps_identity_and_first_login() {
    let s = Store::open_sqlite(":memory:").await.unwrap();
    let u1 = s.upsert_user(&mapped("sub1"), "id-1", 100).await.unwrap();
    assert_eq!(u1.profile.groups, vec!["g1", "g2"]);
    let mut m = mapped("sub1");
    m.email = Some("new@b.c".into());
    let u2 = s.upsert_user(&m, "id-2", 200).await.unwrap();
    assert_eq!(u2.id, "id-1", "same (iss, sub) keeps its id");
    assert_eq!((u2.first_login, u2.last_login), (100, 200));
    assert_eq!(u2.profile.email.as_deref(), Some("new@b.c"));
    assert_eq!(s.count_users().await.unwrap(), 1);
    let mut other_iss = mapped("sub1");
    other_iss.issuer = "https://other".into();
    s.upsert_user(&other_iss, "id-3", 300).await.unwrap();
    assert_eq!(
        s.count_users().await.unwrap(),
        2,
        "identity is (iss, sub), never merged"
    );
}

#[tokio::test]
async fn r_cb_2_login_tx_consumed_once_and_expiry_enforced() {
    let s = Store::open_sqlite(":memory:").await.unwrap();
    s.insert_login_tx(&tx("st1", "b", 1000), 5).await.unwrap();
    assert!(s.take_login_tx("st1", 1001).await.unwrap().is_some());
    assert!(
        s.take_login_tx("st1", 1001).await.unwrap().is_none(),
        "replay"
    );
    s.insert_login_tx(&tx("st2", "b", 1000), 5).await.unwrap();
    assert!(
        s.take_login_tx("st2", 1000 + 601).await.unwrap().is_none(),
        "expired"
    );
    assert_eq!(s.count_login_tx().await.unwrap(), 0);
}

#[tokio::test]
async fn r_az_3_at_most_five_live_tx_per_browser() {
    let s = Store::open_sqlite(":memory:").await.unwrap();
    for i in 0..7 {
        s.insert_login_tx(&tx(&format!("st{i}"), "b", 1000 + i), 5)
            .await
            .unwrap();
    }
    s.insert_login_tx(&tx("other", "c", 1000), 5).await.unwrap();
    assert_eq!(s.count_login_tx().await.unwrap(), 6);
    assert!(
        s.take_login_tx("st0", 1010).await.unwrap().is_none(),
        "oldest dropped"
    );
    assert!(s.take_login_tx("st6", 1010).await.unwrap().is_some());
}

#[tokio::test]
async fn sessions_revocation() {
    let s = Store::open_sqlite(":memory:").await.unwrap();
    let u = s.upsert_user(&mapped("x"), "u1", 1).await.unwrap();
    let sess = Session {
        id: "s1".into(),
        user_id: u.id.clone(),
        created_at: 1,
        last_seen: 1,
        expires_at: 1000,
        revoked_at: None,
        idp_sid: Some("idp".into()),
    };
    s.create_session(&sess).await.unwrap();
    assert!(s.revoke_session("s1", 5).await.unwrap());
    assert!(!s.revoke_session("s1", 6).await.unwrap());
    assert_eq!(
        s.revoked_session_ids(10).await.unwrap(),
        vec![("s1".to_string(), 1000)]
    );
    assert!(s.revoked_session_ids(2000).await.unwrap().is_empty());
}

#[tokio::test]
async fn file_database_is_created_and_reopened() {
    let dir = std::env::temp_dir().join(format!("portcullis-store-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("p.db");
    let p = path.to_str().unwrap();
    {
        let s = Store::open_sqlite(p).await.unwrap();
        s.upsert_user(&mapped("x"), "u1", 1).await.unwrap();
    }
    let s = Store::open_sqlite(p).await.unwrap();
    assert_eq!(s.count_users().await.unwrap(), 1);
    std::fs::remove_dir_all(&dir).unwrap();
}
