//! Faults that need a real `portcullis serve` process, signed in through the real OP
//! (`oidc-provider`): the process killed with SIGKILL in the middle of sign-ins (SQLite and
//! PostgreSQL), and its SQLite disk full (a file-size limit on the process).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../gateway/tests/common/mod.rs"]
mod common;
mod support;

use common::*;
use serde_json::json;
use sqlx::Connection;
use support::{free_port, lift_file_limit, serve_limited, terminate, wait_for};
use tokio::process::Child;

/// What a refusal says when the database cannot be written.
const STORE_UNAVAILABLE: &str = "Portcullis cannot use its database right now";

/// The OP, the upstream and the settings of one `portcullis serve` on a fixed port (the
/// redirect URI names it, so a restarted process takes the same one).
struct Setup {
    _op: Op,
    _upstream: Upstream,
    _dir: TempDir,
    base: String,
    port: u16,
    env: Vec<(&'static str, String)>,
    /// The SQLite file, when the database is SQLite.
    sqlite: Option<std::path::PathBuf>,
    db: String,
}

async fn setup(postgres: Option<String>) -> Setup {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let redirect = format!("{base}/api/callback");
    let op =
        Op::start(json!({"clients": [client(&redirect, "client_secret_post", "RS256")]})).await;
    let upstream = Upstream::start().await;
    let dir = TempDir::new();
    let sqlite = postgres.is_none().then(|| dir.0.join("p.db"));
    let db = postgres.unwrap_or_else(|| format!("sqlite://{}", dir.0.join("p.db").display()));
    let env = vec![
        ("OIDC_DISCOVERY_URL", op.discovery_url()),
        ("OIDC_CLIENT_ID", CLIENT_ID.to_string()),
        ("OIDC_CLIENT_SECRET", CLIENT_SECRET.to_string()),
        ("OIDC_REDIRECT_URL", redirect),
        ("OIDC_SCOPES", "openid,email,profile,groups".to_string()),
        ("OIDC_ALLOW_INSECURE_HTTP", "true".to_string()),
        ("JWT_SIGNING_SECRET", JWT_SECRET.to_string()),
        ("PORTCULLIS_UPSTREAM", format!("http://{}", upstream.addr)),
        ("PORTCULLIS_DATABASE_URL", db.clone()),
        // Every client here is 127.0.0.1.
        ("PORTCULLIS_LOGIN_STARTS_PER_MINUTE", "10000".to_string()),
    ];
    Setup {
        _op: op,
        _upstream: upstream,
        _dir: dir,
        base,
        port,
        env,
        sqlite,
        db,
    }
}

impl Setup {
    /// Start `portcullis serve` (with a file-size limit when `fsize` is set); returns once it
    /// is ready, with its log.
    async fn serve(&self, fsize: Option<u64>) -> (Child, std::sync::Arc<std::sync::Mutex<String>>) {
        let (child, log) = serve_limited(self.port, &self.env, fsize);
        let l = log.clone();
        wait_for(&format!("{}/readyz", self.base), 200, &move || {
            l.lock().unwrap().clone()
        })
        .await;
        (child, log)
    }

    /// `/api/login` → the OP's form → the callback URL (not requested yet).
    async fn callback_url(&self, b: &Browser, user: (&str, &str)) -> String {
        let r = b.get(&format!("{}/api/login?rd=/", self.base)).await;
        assert_eq!(r.status, 302, "{}", r.body);
        b.authorize_at_op(&r.location().unwrap(), &self.base, user.0, user.1)
            .await
    }

    /// A complete sign-in; the callback's answer.
    async fn sign_in(&self, b: &Browser, user: (&str, &str)) -> Resp {
        let cb = self.callback_url(b, user).await;
        b.get(&cb).await
    }

    /// Whether the browser's session is served through to the upstream.
    async fn page_ok(&self, b: &Browser, path: &str) -> bool {
        let r = b.get(&format!("{}{path}", self.base)).await;
        r.status == 200 && r.body == format!("upstream saw {path}")
    }

    /// Counts and checks straight from the database (the process stopped or running).
    async fn check_store(&self) -> StoreFacts {
        match &self.sqlite {
            Some(path) => {
                let mut c =
                    sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
                        .await
                        .unwrap();
                let integrity: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check")
                    .fetch_all(&mut c)
                    .await
                    .unwrap();
                assert_eq!(integrity, ["ok"], "SQLite integrity check");
                let fk: Vec<String> =
                    sqlx::query_scalar("SELECT \"table\" FROM pragma_foreign_key_check")
                        .fetch_all(&mut c)
                        .await
                        .unwrap();
                assert!(fk.is_empty(), "foreign keys broken in {fk:?}");
                let q = |sql: &'static str| sqlx::query_scalar::<_, i64>(sql);
                StoreFacts {
                    users: q("SELECT count(*) FROM users")
                        .fetch_one(&mut c)
                        .await
                        .unwrap(),
                    sessions: q("SELECT count(*) FROM sessions")
                        .fetch_one(&mut c)
                        .await
                        .unwrap(),
                    orphans: q(ORPHANS).fetch_one(&mut c).await.unwrap(),
                    half_written: q(HALF_WRITTEN).fetch_one(&mut c).await.unwrap(),
                }
            }
            None => {
                let mut c = sqlx::PgConnection::connect(&self.db).await.unwrap();
                let q = |sql: &'static str| sqlx::query_scalar::<_, i64>(sql);
                StoreFacts {
                    users: q("SELECT count(*) FROM users")
                        .fetch_one(&mut c)
                        .await
                        .unwrap(),
                    sessions: q("SELECT count(*) FROM sessions")
                        .fetch_one(&mut c)
                        .await
                        .unwrap(),
                    orphans: q(ORPHANS).fetch_one(&mut c).await.unwrap(),
                    half_written: q(HALF_WRITTEN).fetch_one(&mut c).await.unwrap(),
                }
            }
        }
    }
}

/// Sessions whose user does not exist.
const ORPHANS: &str =
    "SELECT count(*) FROM sessions s LEFT JOIN users u ON u.id = s.user_id WHERE u.id IS NULL";
/// Rows a sign-in writes that are not whole: a session without its expiry after its
/// creation, a user without identity.
const HALF_WRITTEN: &str = "SELECT (SELECT count(*) FROM sessions WHERE expires_at <= created_at OR user_id = '') + (SELECT count(*) FROM users WHERE issuer = '' OR subject = '')";

#[derive(Debug)]
struct StoreFacts {
    users: i64,
    sessions: i64,
    orphans: i64,
    half_written: i64,
}

/// The cookies a callback answer sets, put in `b`'s jar for `base`.
fn keep_cookies(b: &Browser, base: &str, headers: &reqwest::header::HeaderMap) {
    for c in headers.get_all("set-cookie") {
        let first = c.to_str().unwrap().split(';').next().unwrap();
        if let Some((k, v)) = first.split_once('=')
            && !v.is_empty()
        {
            b.set_cookie(base, k.trim(), v.trim());
        }
    }
}

/// SIGKILL in the middle of sign-ins: 24 callbacks (token exchange, ID token, user and
/// session written) and 12 sign-in starts in flight when the process dies. Restarted on the
/// same database it starts, the store is consistent (SQLite's integrity check; every session
/// has its user; no half-written row), every sign-in whose answer arrived still holds, and
/// signing in works.
async fn killed_mid_sign_ins(postgres: Option<String>) {
    let s = setup(postgres).await;
    let (mut child, _log) = s.serve(None).await;
    let alice = Browser::new();
    let r = s.sign_in(&alice, ALICE).await;
    assert_eq!(r.status, 302, "{}", r.body);

    // 24 people back from the OP, their callbacks not sent yet.
    let mut prepared = tokio::task::JoinSet::new();
    for i in 0..24 {
        let b = Browser::new();
        let user = if i % 2 == 0 { ALICE } else { BOB };
        let base = s.base.clone();
        let r = b.get(&format!("{base}/api/login?rd=/")).await;
        assert_eq!(r.status, 302, "{}", r.body);
        let authorize = r.location().unwrap();
        prepared.spawn(async move {
            let cb = b.authorize_at_op(&authorize, &base, user.0, user.1).await;
            (b, cb)
        });
    }
    let prepared = prepared.join_all().await;

    // All callbacks and 12 new sign-in starts at once; SIGKILL as the sixth callback answers
    // (the OP answers token requests one after the other, so the rest are in flight).
    let (answered_tx, mut answered_rx) = tokio::sync::mpsc::channel::<()>(64);
    let mut flights = tokio::task::JoinSet::new();
    for (b, cb) in prepared {
        let answered = answered_tx.clone();
        let base = s.base.clone();
        flights.spawn(async move {
            let tx = b.cookie(&base, "__Host-oidc_tx").unwrap();
            let r = b
                .raw()
                .get(&cb)
                .header("cookie", format!("__Host-oidc_tx={tx}"))
                .send()
                .await;
            let _ = answered.send(()).await;
            match r {
                Ok(r) if r.status() == 302 => {
                    keep_cookies(&b, &base, r.headers());
                    Some(b)
                }
                Ok(r) => panic!("callback answered {}", r.status()),
                Err(_) => None,
            }
        });
    }
    for _ in 0..12 {
        // As the sign-in page's script starts one: a DPoP proof, asking for JSON.
        let b = Browser::new();
        let url = format!("{}/api/login?rd=/", s.base);
        flights.spawn(async move {
            let _ = b
                .raw()
                .post(&url)
                .header("accept", "application/json")
                .header("dpop", b.proof("POST", &url))
                .send()
                .await;
            None
        });
    }
    for _ in 0..6 {
        answered_rx.recv().await.unwrap();
    }
    child.kill().await.unwrap();
    let signed_in: Vec<Browser> = flights.join_all().await.into_iter().flatten().collect();
    assert!(
        signed_in.len() < 24,
        "every callback finished before the kill: nothing was in flight"
    );

    let facts = s.check_store().await;
    assert_eq!(facts.orphans, 0, "{facts:?}");
    assert_eq!(facts.half_written, 0, "{facts:?}");
    // Alice, and Bob if one of his callbacks got far enough.
    assert!((1..=2).contains(&facts.users), "{facts:?}");
    // Alice's first session, the callbacks that answered, perhaps some that committed
    // without their answer getting out; never more than were sent.
    let at_least = 1 + signed_in.len() as i64;
    assert!(
        (at_least..=25).contains(&facts.sessions),
        "{} sessions for {at_least}..=25 sign-ins: {facts:?}",
        facts.sessions
    );

    eprintln!(
        "killed with {} of 24 callbacks answered: {facts:?}",
        signed_in.len()
    );

    // Restarted on the same database.
    let (_child, log) = s.serve(None).await;
    assert!(s.page_ok(&alice, "/alice").await);
    for (i, b) in signed_in.iter().enumerate() {
        assert!(
            s.page_ok(b, &format!("/kept/{i}")).await,
            "a completed sign-in was lost"
        );
    }
    let b = Browser::new();
    let r = s.sign_in(&b, BOB).await;
    assert_eq!(r.status, 302, "{}", r.body);
    assert!(s.page_ok(&b, "/after").await);
    assert!(!log.lock().unwrap().contains("panicked"));
}

#[tokio::test]
async fn sigkill_mid_sign_ins_sqlite() {
    killed_mid_sign_ins(None).await;
}

#[tokio::test]
async fn sigkill_mid_sign_ins_postgres() {
    killed_mid_sign_ins(Some(
        portcullis_store::testing::fresh_postgres_database().await,
    ))
    .await;
}

/// SQLite's disk full: `portcullis serve` runs with its files limited in size. Sign-ins fail
/// with 503, `Retry-After` and a page that says the database cannot be used, the process does
/// not panic, and a signed-in person is still served; with the limit lifted, signing in works
/// again without a restart; restarted, the database passes its integrity check and every
/// sign-in that succeeded is still there.
#[tokio::test]
async fn sqlite_disk_full() {
    let s = setup(None).await;
    let (mut child, _log) = s.serve(None).await;
    let alice = Browser::new();
    assert_eq!(s.sign_in(&alice, ALICE).await.status, 302);
    terminate(&mut child).await;
    // Everything in the main file, the write-ahead log empty: the limit below is then what is
    // left for new writes.
    let path = s.sqlite.clone().unwrap();
    {
        let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&mut c)
            .await
            .unwrap();
    }

    // Room for a few pages of write-ahead log (and SQLite's 32 KiB shared-memory index).
    let (mut child, log) = s.serve(Some(64 * 1024)).await;
    assert!(s.page_ok(&alice, "/before").await);
    let mut signed_in = Vec::new();
    let mut refused = None;
    for _ in 0..40 {
        let b = Browser::new();
        let r = b.get(&format!("{}/api/login?rd=/", s.base)).await;
        if r.status != 302 {
            refused = Some(r);
            break;
        }
        let cb = b
            .authorize_at_op(&r.location().unwrap(), &s.base, BOB.0, BOB.1)
            .await;
        let r = b.get(&cb).await;
        if r.status != 302 {
            refused = Some(r);
            break;
        }
        signed_in.push(b);
    }
    let r = refused.expect("40 sign-ins fitted in the limit: the disk never filled");
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.header("retry-after").as_deref(), Some("5"));
    assert!(r.body.contains(STORE_UNAVAILABLE), "{}", r.body);
    assert!(!r.sets_session());
    // Still full: starting a sign-in is refused the same way (a page for a browser without the
    // sign-in script: the JSON answer of `POST /api/login` for one with it). A start writes
    // less than a callback, so the first few may still fit in the room the refused write's
    // rollback left: start until one is refused.
    let mut r = None;
    for _ in 0..200 {
        let b = Browser::new();
        let got = b.get(&format!("{}/api/login?rd=/", s.base)).await;
        if got.status != 302 {
            r = Some(got);
            break;
        }
    }
    let r = r.expect("200 more sign-in starts fitted: the disk was not full");
    assert_eq!(r.status, 503, "{}\n{}", r.body, log.lock().unwrap());
    assert_eq!(r.header("retry-after").as_deref(), Some("5"));
    assert!(r.body.contains(STORE_UNAVAILABLE), "{}", r.body);
    // Reading still works: signed-in people are served.
    assert!(s.page_ok(&alice, "/during").await);
    for (i, b) in signed_in.iter().enumerate() {
        assert!(s.page_ok(b, &format!("/during/{i}")).await);
    }
    let health = reqwest::get(format!("{}/healthz", s.base)).await.unwrap();
    assert_eq!(health.status(), 200);
    // Space again: writes recover without a restart, on every pooled connection (a failed
    // write must not leave one that refuses every later transaction).
    lift_file_limit(&child);
    for i in 0..6 {
        let b = Browser::new();
        let r = s.sign_in(&b, BOB).await;
        assert_eq!(
            r.status,
            302,
            "sign-in {i} after space was freed: {}\n{}",
            r.body,
            log.lock().unwrap()
        );
        assert!(s.page_ok(&b, "/freed").await);
        signed_in.push(b);
    }
    assert!(
        !log.lock().unwrap().contains("panicked"),
        "{}",
        log.lock().unwrap()
    );
    child.kill().await.unwrap();

    // Without the limit: intact, nothing committed lost, and sign-in works.
    let facts = s.check_store().await;
    assert_eq!(facts.orphans, 0, "{facts:?}");
    assert_eq!(facts.half_written, 0, "{facts:?}");
    let committed = 1 + signed_in.len() as i64;
    assert!(
        facts.sessions >= committed,
        "{facts:?} for {committed} sign-ins"
    );
    let (_child, _log) = s.serve(None).await;
    assert!(s.page_ok(&alice, "/after").await);
    for (i, b) in signed_in.iter().enumerate() {
        assert!(
            s.page_ok(b, &format!("/after/{i}")).await,
            "a sign-in was lost"
        );
    }
    let b = Browser::new();
    assert_eq!(s.sign_in(&b, BOB).await.status, 302);
    eprintln!(
        "{} sign-ins fitted before the disk was full",
        signed_in.len()
    );
}
