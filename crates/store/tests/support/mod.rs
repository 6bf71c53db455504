//! What the store's integration tests share (`mod support;` in each): the runner that puts
//! every case on both backends, the user fixture, and following the change feed as another
//! replica. One copy, so the suites cannot drift apart in how they open a store.
// Each test binary uses only part of this module.
#![allow(clippy::unwrap_used, dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use portcullis_core::claims::MappedUser;
use portcullis_core::time::ManualClock;
use portcullis_store::feed::{self, Cursor};
use portcullis_store::{Change, Store};

/// Two handles on one database (two replicas). SQLite: the same handle twice.
pub async fn open(backend: &str) -> (Store, Store) {
    match backend {
        "sqlite" => {
            let s = Store::open_sqlite(":memory:").await.unwrap();
            (s.clone(), s)
        }
        _ => {
            let url = portcullis_store::testing::fresh_postgres_database().await;
            let a = Store::open_postgres(&url).await.unwrap();
            let b = Store::open_postgres(&url).await.unwrap();
            (a, b)
        }
    }
}

/// `conformance!(name, |s, other| { … })`: the case runs once on SQLite (in memory) and once
/// on PostgreSQL, as `name::sqlite` and `name::postgres`; `s` and `other` are two replicas.
macro_rules! conformance {
    ($name:ident, |$s:ident, $other:ident| $body:block) => {
        mod $name {
            use super::*;

            async fn case($s: ::portcullis_store::Store, $other: ::portcullis_store::Store) $body

            #[tokio::test]
            async fn sqlite() {
                let (a, b) = $crate::support::open("sqlite").await;
                case(a, b).await;
            }

            #[tokio::test]
            async fn postgres() {
                let (a, b) = $crate::support::open("postgres").await;
                case(a, b).await;
            }
        }
    };
}
pub(crate) use conformance;

/// A person at `https://idp` with subject `sub` and a full profile.
pub fn mapped(sub: &str) -> MappedUser {
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

/// A replica following the change log from the moment it starts, recording what it applies.
pub struct Follower {
    seen: Arc<Mutex<Vec<Change>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Follower {
    /// Follow `replica`'s log from its latest change on.
    pub async fn start(replica: &Store) -> Follower {
        let seen: Arc<Mutex<Vec<Change>>> = Arc::default();
        let sink = seen.clone();
        let start = replica.changes.latest_seq().await.unwrap();
        let task = feed::follow(
            replica.changes.clone(),
            ManualClock::new(1_000),
            Cursor::after(start),
            move |c| sink.lock().unwrap().push(c.clone()),
        );
        Follower { seen, task }
    }

    /// Wait until exactly `want` has been applied; fail after a second, the bound within
    /// which another replica must learn of a change.
    pub async fn delivers_within_a_second(self, want: &[Change]) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
        while *self.seen.lock().unwrap() != want {
            assert!(
                tokio::time::Instant::now() < deadline,
                "not delivered within 1 s: {:?}",
                self.seen.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.task.abort();
    }
}
