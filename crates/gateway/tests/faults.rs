//! Faults, each through an in-process gateway against the real OP (`oidc-provider`) and real
//! databases: the IdP going down mid-run and coming back, the IdP slow or answering garbage
//! or huge bodies, its signing keys rotated (and floods of unknown key ids), PostgreSQL
//! restarted under load, slow-loris clients and request heads over the HTTP parser's limits.
//! The IdP down at start-up is in `startup.rs`;
//! SIGKILL and a full disk need a real process and are in `crates/cli/tests/faults.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::*;
use portcullis_core::config::validate;
use portcullis_core::time::ManualClock;
use portcullis_gateway::idp::provider::REFETCH_COOLDOWN_SECS;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

/// What the gateway's error page says when the IdP cannot be reached or answers garbage.
const IDP_UNAVAILABLE: &str =
    "The identity provider could not be reached or gave an invalid answer.";
/// ... and when the IdP's answer was refused (e.g. an ID token signed by an unknown key).
const SIGN_IN_FAILED: &str = "Sign-in failed: the identity provider";
/// 50 MiB: far over every cap of the gateway's IdP client (256 KiB to 1 MiB).
const HUGE: u64 = 50 * 1024 * 1024;
/// A client that stops reading at the cap leaves most of a huge answer unsent: at most the
/// cap plus what the kernel's socket buffers held.
const BOUNDED: u64 = 12 * 1024 * 1024;

/// A callback refused with `status`: the error page says `says`, no session cookie is set,
/// and the answer is not cached.
fn assert_refused_page(r: &Resp, status: u16, says: &str, case: &str) {
    assert_eq!(r.status, status, "[{case}] {}", r.body);
    assert!(r.body.contains(says), "[{case}] page: {}", r.body);
    assert!(!r.sets_session(), "[{case}] a session cookie was set");
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
}

async fn readyz_status(base: &str) -> u16 {
    reqwest::get(format!("{base}/readyz"))
        .await
        .unwrap()
        .status()
        .as_u16()
}

// ------------------------------------------------------------------------------------------
// The IdP down mid-run
// ------------------------------------------------------------------------------------------

both_backends!(idp_down_mid_run_then_back, |db| {
    let keys = TempDir::new();
    let keys_file = keys.0.join("op-keys.json");
    let mut env = TestEnv::start_with(Options {
        op_extra: json!({"keys_file": keys_file}),
        database_url: db,
        ..Default::default()
    })
    .await;
    let alice = Browser::new();
    alice.sign_in(&env, "/", ALICE.0, ALICE.1).await;
    // Bob has signed in at the IdP and is on his way back when it goes down.
    let bob = Browser::new();
    let cb = bob.start_login(&env, "/", BOB.0, BOB.1).await;
    env.op.kill().await;

    // Alice's session does not need the IdP: proxied, the upstream reached.
    let seen = env.upstream.count();
    let r = alice.get(&format!("{}/during/outage", env.base)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body, "upstream saw /during/outage");
    assert_eq!(env.upstream.count(), seen + 1);
    assert_eq!(alice.session_status(&env.base).await, 200);
    // Still ready: the loaded configuration and keys are what existing sessions need, and a
    // not-ready replica would be taken out of its load balancer with them.
    assert_eq!(readyz_status(&env.base).await, 200);

    // Bob's callback cannot exchange his code: a clear page at once, nothing stored.
    let t = Instant::now();
    let r = bob.get(&cb).await;
    assert_refused_page(&r, 502, IDP_UNAVAILABLE, "IdP down");
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    assert_eq!(env.users().await, 1, "no user row for Bob");
    assert_eq!(env.sessions().await, 1, "no session for Bob");
    assert_eq!(
        env.upstream.count(),
        seen + 1,
        "Bob never reached the upstream"
    );

    // The IdP comes back on its address with its keys: sign-in works, no restart of the
    // gateway, and no JWKS refetch (the keys it holds are still the IdP's).
    env.op.restart(op_config(&env, Some(&keys_file))).await;
    let bob = Browser::new();
    bob.sign_in(&env, "/after", BOB.0, BOB.1).await;
    let r = bob.get(&format!("{}/after", env.base)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(env.users().await, 2);
    assert_eq!(env.sessions().await, 2);
    assert_eq!(env.op.calls("/jwks").await, 0);
    assert_eq!(alice.session_status(&env.base).await, 200);
});

// ------------------------------------------------------------------------------------------
// JWKS rotation and floods of unknown key ids
// ------------------------------------------------------------------------------------------

/// A logout token for this OP and client, signed by a key the OP does not publish under the
/// key id `kid`.
async fn unknown_kid_logout_token(env: &TestEnv, kid: &str) -> String {
    let now = portcullis_core::time::now_unix();
    let claims = json!({
        "iss": env.op.issuer, "aud": CLIENT_ID, "iat": now, "exp": now + 120,
        "jti": format!("flood-{kid}"), "sub": "alice-sub-0001",
        "events": {"http://schemas.openid.net/event/backchannel-logout": {}},
    });
    env.op
        .sign("RS256", json!({"kid": kid}), claims, true)
        .await
}

/// Post `tokens` to the back-channel logout endpoint all at once from `127.0.0.<last>` (60 a
/// minute are allowed per address); their statuses.
async fn flood(env: &TestEnv, last: u8, tokens: Vec<String>) -> Vec<u16> {
    let mut set = tokio::task::JoinSet::new();
    let http = program(&format!("127.0.0.{last}"));
    for t in tokens {
        let url = format!("{}/api/backchannel-logout", env.base);
        let http = http.clone();
        set.spawn(async move {
            http.post(url)
                .form(&[("logout_token", t)])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        });
    }
    set.join_all().await
}

#[tokio::test]
async fn rotated_keys_are_fetched_and_unknown_kid_floods_fetch_once_per_cooldown() {
    let clock = ManualClock::at_now();
    let mut env = TestEnv::start_with(Options {
        clock: Some(clock.clone()),
        ..Default::default()
    })
    .await;
    let alice = Browser::new();
    alice.sign_in(&env, "/", ALICE.0, ALICE.1).await;
    // The refetch cooldown counts from the initial load (the gateway's clock, not a sleep).
    clock.advance(REFETCH_COOLDOWN_SECS);

    // 50 logout tokens naming key ids the IdP never published, all at once (anyone can post
    // them): each is refused, and together they cost the IdP one JWKS fetch.
    let mut tokens = Vec::new();
    for i in 0..50 {
        tokens.push(unknown_kid_logout_token(&env, &format!("flood-{i}")).await);
    }
    env.op.clear_log().await;
    let statuses = flood(&env, 2, tokens).await;
    assert!(statuses.iter().all(|s| *s == 400), "{statuses:?}");
    assert_eq!(env.op.calls("/jwks").await, 1, "one fetch for the flood");
    assert_eq!(alice.session_status(&env.base).await, 200);

    // The IdP rotates: it comes back with new keys, the old ones gone from its JWKS.
    env.op.restart(op_config(&env, None)).await;
    // Within the cooldown the flood started, the new key id is not fetched: this sign-in is
    // refused (the price of the rate limit, bounded by the cooldown) ...
    let b = Browser::new();
    let cb = b.start_login(&env, "/", BOB.0, BOB.1).await;
    let r = b.get(&cb).await;
    assert_refused_page(&r, 401, SIGN_IN_FAILED, "rotated within the cooldown");
    assert_eq!(env.op.calls("/jwks").await, 0);
    assert_eq!(env.sessions().await, 1);
    // ... and once it has passed, one fetch brings the new keys and sign-in works.
    clock.advance(REFETCH_COOLDOWN_SECS);
    let b = Browser::new();
    b.sign_in(&env, "/", BOB.0, BOB.1).await;
    assert_eq!(env.op.calls("/jwks").await, 1, "one fetch for the rotation");
    assert_eq!(env.sessions().await, 2);
    // The gateway's own sessions do not depend on the IdP's keys.
    assert_eq!(alice.session_status(&env.base).await, 200);
    // A second flood within the new cooldown fetches nothing.
    let mut tokens = Vec::new();
    for i in 0..20 {
        tokens.push(unknown_kid_logout_token(&env, &format!("again-{i}")).await);
    }
    let statuses = flood(&env, 3, tokens).await;
    assert!(statuses.iter().all(|s| *s == 400), "{statuses:?}");
    assert_eq!(env.op.calls("/jwks").await, 1);
}

// ------------------------------------------------------------------------------------------
// The IdP slow, answering garbage or huge bodies
// ------------------------------------------------------------------------------------------

/// The JWKS refetch after a key rotation meets a broken JWKS endpoint: the sign-in is refused
/// with a clear page within the IdP timeout, nothing is stored, a huge answer is not read
/// past the cap, and the keys the gateway had stay in use.
#[tokio::test]
async fn jwks_slow_garbage_or_huge_on_refetch() {
    let clock = ManualClock::at_now();
    let env = TestEnv::start_with(Options {
        clock: Some(clock.clone()),
        ..Default::default()
    })
    .await;
    let alice = Browser::new();
    alice.sign_in(&env, "/", ALICE.0, ALICE.1).await;
    // ID tokens are signed with a new key, published only in the JWKS the gateway must fetch.
    env.op.mode(json!({"id_token": {"sign": "rotated"}})).await;
    for (case, fault) in [
        (
            "HTML",
            json!({"raw": "<html>maintenance</html>", "content_type": "text/html"}),
        ),
        (
            "JSON that is not a key set",
            json!({"raw": "{\"keys\": 42}"}),
        ),
        ("HTTP 500", json!({"status": 500, "raw": "oops"})),
        ("50 MiB with a length", json!({"huge_bytes": HUGE})),
        (
            "50 MiB chunked",
            json!({"huge_bytes": HUGE, "chunked": true}),
        ),
        ("slower than the 10 s timeout", json!({"delay_ms": 12_000})),
    ] {
        clock.advance(REFETCH_COOLDOWN_SECS);
        env.op.mode(json!({"paths": {"/jwks": fault}})).await;
        let b = Browser::new();
        let cb = b.start_login(&env, "/", BOB.0, BOB.1).await;
        env.op.clear_log().await;
        let t = Instant::now();
        let r = b.get(&cb).await;
        let took = t.elapsed();
        assert_refused_page(&r, 401, SIGN_IN_FAILED, case);
        assert!(took < Duration::from_secs(11), "[{case}] took {took:?}");
        assert_eq!(env.op.calls("/jwks").await, 1, "[{case}] one fetch");
        if case.starts_with("50 MiB") {
            let sent = env.op.sent_bytes("/jwks").await;
            assert!(
                sent[0] < BOUNDED,
                "[{case}] the gateway read {sent:?} bytes"
            );
        }
        assert_eq!(env.users().await, 1, "[{case}]");
        assert_eq!(env.sessions().await, 1, "[{case}]");
        assert_eq!(alice.session_status(&env.base).await, 200, "[{case}]");
    }
    // The JWKS endpoint healthy again: the next refetch finds the new key.
    clock.advance(REFETCH_COOLDOWN_SECS);
    env.op.mode(json!({"paths": null})).await;
    Browser::new().sign_in(&env, "/", BOB.0, BOB.1).await;
    assert_eq!(env.sessions().await, 2);
}

/// The token endpoint or userinfo answering 50 MiB without a declared length (read as it
/// streams, cut off at the cap), or trickling a small answer a byte at a time (cut off by the
/// 10 s timeout, which covers the body): 502 with a clear page, nothing stored.
#[tokio::test]
async fn token_and_userinfo_huge_or_trickled_answers_are_cut_off() {
    let env = TestEnv::start().await;
    let trickled =
        r#"{"access_token":"at","token_type":"Bearer","id_token":"a.b.c","expires_in":60}"#;
    for (case, path, fault, within) in [
        (
            "token: 50 MiB chunked",
            "/token",
            json!({"huge_bytes": HUGE, "chunked": true}),
            Duration::from_secs(5),
        ),
        (
            "userinfo: 50 MiB chunked",
            "/me",
            json!({"huge_bytes": HUGE, "chunked": true}),
            Duration::from_secs(5),
        ),
        (
            "token: one byte every 200 ms",
            "/token",
            json!({"raw": trickled, "trickle_ms": 200}),
            Duration::from_secs(11),
        ),
    ] {
        let b = Browser::new();
        let cb = b.start_login(&env, "/", ALICE.0, ALICE.1).await;
        env.op.mode(json!({"paths": {path: fault}})).await;
        let t = Instant::now();
        let r = b.get(&cb).await;
        let took = t.elapsed();
        assert_refused_page(&r, 502, IDP_UNAVAILABLE, case);
        assert!(took < within, "[{case}] took {took:?}");
        let sent = env.op.sent_bytes(path).await;
        let last = *sent.last().unwrap();
        if case.contains("50 MiB") {
            assert!(last < BOUNDED, "[{case}] the gateway read {sent:?} bytes");
        } else {
            assert!(
                took >= Duration::from_secs(9) && last < trickled.len() as u64,
                "[{case}] cut off by the timeout: {took:?}, {last} bytes"
            );
        }
        env.assert_nothing_stored().await;
        env.op.mode(json!({"paths": null})).await;
    }
    assert_eq!(readyz_status(&env.base).await, 200);
}

/// Discovery or JWKS answering garbage or 50 MiB at start-up: the gateway stays alive and not
/// ready, says why, answers sign-ins 503 with `Retry-After`, reads no more than the cap; when
/// the IdP answers properly it becomes ready by itself.
#[tokio::test]
async fn discovery_or_jwks_garbage_or_huge_at_start() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let op = Op::start(json!({"clients": [client(
        &format!("http://127.0.0.1:{port}/api/callback"),
        "client_secret_post",
        "RS256",
    )]}))
    .await;
    let discovery = "/.well-known/openid-configuration";
    for (case, path, fault, reason) in [
        (
            "discovery HTML",
            discovery,
            json!({"raw": "<html>hello</html>", "content_type": "text/html"}),
            "discovery",
        ),
        (
            "discovery 50 MiB chunked",
            discovery,
            json!({"huge_bytes": HUGE, "chunked": true}),
            "more than 262144 bytes",
        ),
        ("JWKS not JSON", "/jwks", json!({"raw": "]["}), "/jwks"),
        (
            "JWKS 50 MiB",
            "/jwks",
            json!({"huge_bytes": HUGE}),
            "more than 262144 bytes",
        ),
    ] {
        op.mode(json!({"paths": {path: fault}})).await;
        op.clear_log().await;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let upstream = Upstream::start().await;
        let dir = TempDir::new();
        let raw = settings(
            &format!("{base}/api/callback"),
            &op.discovery_url(),
            "client_secret_post",
            "RS256",
            &upstream,
            &dir,
        );
        let gw = portcullis_gateway::start(validate(&raw).unwrap(), listener)
            .await
            .unwrap();
        let why = not_ready_reason(&base, reason).await;
        assert!(why.contains("cannot be reached"), "[{case}] reason: {why}");
        let r = Browser::without_dpop()
            .get(&format!("{base}/api/login"))
            .await;
        assert_eq!(r.status, 503, "[{case}] {}", r.body);
        assert_eq!(r.header("retry-after").as_deref(), Some("5"));
        assert!(r.location().is_none());
        let health = reqwest::get(format!("{base}/healthz")).await.unwrap();
        assert_eq!(health.status(), 200, "[{case}] the process is alive");
        if case.contains("50 MiB") {
            let sent = op.sent_bytes(path).await;
            assert!(
                sent.iter().all(|s| *s < BOUNDED),
                "[{case}] the gateway read {sent:?} bytes"
            );
        }
        // The IdP answers properly: ready without a restart (the loader retries).
        op.mode(json!({"paths": null})).await;
        let t = Instant::now();
        while readyz_status(&base).await != 200 {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "[{case}] never ready"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        drop(gw);
    }
}

/// Poll `/readyz` until its not-ready reason contains `part`; the reason.
async fn not_ready_reason(base: &str, part: &str) -> String {
    let t = Instant::now();
    loop {
        let r = reqwest::get(format!("{base}/readyz")).await.unwrap();
        assert_eq!(r.status(), 503, "must not become ready");
        assert!(r.headers().contains_key("retry-after"));
        let v: Value = r.json().await.unwrap();
        let reason = v["reason"].as_str().unwrap_or_default().to_string();
        if reason.contains(part) {
            return reason;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the reason never named {part:?}: {v}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ------------------------------------------------------------------------------------------
// PostgreSQL restarted under load
// ------------------------------------------------------------------------------------------

/// A PostgreSQL cluster of this test's own (`scripts/postgres-test-cluster`), stopped and
/// removed on drop.
struct Cluster {
    dir: std::path::PathBuf,
    url: String,
}

fn cluster_script(cmd: &str, dir: &std::path::Path) -> String {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../scripts/postgres-test-cluster");
    let out = std::process::Command::new(script)
        .arg(cmd)
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "postgres-test-cluster {cmd}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

impl Cluster {
    fn start() -> Cluster {
        let dir = std::env::temp_dir().join(format!(
            "portcullis-faults-pg-{}-{}",
            std::process::id(),
            portcullis_core::time::now_unix()
        ));
        let url = cluster_script("start", &dir);
        Cluster { dir, url }
    }
    fn down(&self) {
        cluster_script("down", &self.dir);
    }
    fn up(&self) {
        cluster_script("up", &self.dir);
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = std::panic::catch_unwind(|| cluster_script("stop", &self.dir));
    }
}

/// Requests on the session path, looping until `stop`: every status that was not 200.
struct Load {
    stop: Arc<AtomicBool>,
    served: Arc<AtomicUsize>,
    tasks: Vec<tokio::task::JoinHandle<Vec<(u16, String)>>>,
}

impl Load {
    fn start(base: &str, cookie: &str, clients: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(AtomicUsize::new(0));
        let tasks = (0..clients)
            .map(|i| {
                let (stop, served) = (stop.clone(), served.clone());
                let (base, cookie) = (base.to_string(), cookie.to_string());
                tokio::spawn(async move {
                    let http = reqwest::Client::new();
                    let mut bad = Vec::new();
                    let mut n = 0;
                    while !stop.load(Ordering::SeqCst) {
                        n += 1;
                        let r = http
                            .get(format!("{base}/load/{i}/{n}"))
                            .header("cookie", &cookie)
                            .send()
                            .await
                            .unwrap();
                        let status = r.status().as_u16();
                        let body = r.text().await.unwrap_or_default();
                        if status == 200 && body == format!("upstream saw /load/{i}/{n}") {
                            served.fetch_add(1, Ordering::SeqCst);
                        } else {
                            bad.push((status, body));
                        }
                    }
                    bad
                })
            })
            .collect();
        Load {
            stop,
            served,
            tasks,
        }
    }

    /// Wait until `more` further requests were served (10 s at most).
    async fn served_more(&self, more: usize) {
        let target = self.served.load(Ordering::SeqCst) + more;
        let t = Instant::now();
        while self.served.load(Ordering::SeqCst) < target {
            assert!(t.elapsed() < Duration::from_secs(10), "the load stalled");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn finish(self) -> (usize, Vec<(u16, String)>) {
        self.stop.store(true, Ordering::SeqCst);
        let mut bad = Vec::new();
        for t in self.tasks {
            bad.extend(t.await.unwrap());
        }
        (self.served.load(Ordering::SeqCst), bad)
    }
}

/// While clients loop on the session path, the gateway's PostgreSQL is stopped at once (as a
/// crash would) and started again on the same port: the session path never answers anything
/// but 200, a write during the outage gets a clear 503 with `Retry-After`, and sign-in and
/// logout work again afterwards without restarting the gateway.
#[tokio::test]
async fn postgres_restarted_under_load() {
    let pg = Cluster::start();
    let env = TestEnv::start_with(Options {
        database_url: Some(pg.url.clone()),
        ..Default::default()
    })
    .await;
    let alice = Browser::new();
    alice.sign_in(&env, "/", ALICE.0, ALICE.1).await;
    // A token not used yet: its first use reads it from the store.
    let (token, _) = new_token(&alice, &env, "first used during the outage").await;
    let load = Load::start(&env.base, &alice.session_cookies(&env.base), 3);
    load.served_more(50).await;

    pg.down();
    let down_at = Instant::now();
    load.served_more(50).await;
    // A write while the database is down: starting a sign-in remembers the DPoP proof's id
    // (shared by replicas) and stores a transaction.
    let r = Browser::new().get(&format!("{}/api/login", env.base)).await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.header("retry-after").as_deref(), Some("5"));
    assert!(
        r.body
            .contains("Portcullis cannot use its database right now"),
        "{}",
        r.body
    );
    assert!(r.location().is_none() && !r.sets_session());
    // Authentication that needs the store says so too (503, not 401 or 500): the caller
    // retries instead of signing in again or giving up.
    let r = program("127.0.0.1")
        .get(format!("{}/api/session", env.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "5");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "store_unavailable", "{body}");
    load.served_more(20).await;
    let outage = down_at.elapsed();
    pg.up();

    // Writes work again at the first attempt: a sign-in, and a logout.
    let bob = Browser::new();
    bob.sign_in(&env, "/", BOB.0, BOB.1).await;
    assert_eq!(env.sessions().await, 2);
    let out = post_logout(&bob, &env).await;
    assert_eq!(out.status, 200, "{}", out.body);
    assert_eq!(bob.session_status(&env.base).await, 401);
    // The token works once the store is back.
    let r = program("127.0.0.1")
        .get(format!("{}/api/session", env.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    load.served_more(50).await;
    let (served, bad) = load.finish().await;
    assert!(bad.is_empty(), "the session path failed: {bad:?}");
    eprintln!(
        "{served} requests served on the session path, {outage:?} of them without PostgreSQL"
    );
}

// ------------------------------------------------------------------------------------------
// Slow-loris clients
// ------------------------------------------------------------------------------------------

/// A connection from `127.0.0.<last>`.
async fn connect_from(base: &str, last: u8) -> TcpStream {
    let addr: std::net::SocketAddr = base.trim_start_matches("http://").parse().unwrap();
    let s = TcpSocket::new_v4().unwrap();
    s.bind(format!("127.0.0.{last}:0").parse().unwrap())
        .unwrap();
    s.connect(addr).await.unwrap()
}

/// From `127.0.0.<last>`, send a request head one byte every `every`, never finishing it,
/// until the server closes the connection; how long that took from the connection (`None`:
/// still open after `limit`).
async fn slow_loris(base: String, last: u8, every: Duration, limit: Duration) -> Option<Duration> {
    let t = Instant::now();
    let mut s = connect_from(&base, last).await;
    let head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ";
    if s.write_all(head).await.is_err() {
        return Some(t.elapsed());
    }
    let mut buf = [0u8; 1024];
    while t.elapsed() < limit {
        tokio::select! {
            r = s.read(&mut buf) => match r {
                Ok(0) | Err(_) => return Some(t.elapsed()),
                Ok(_) => {}
            },
            _ = tokio::time::sleep(every) => {
                if s.write_all(b"a").await.is_err() {
                    return Some(t.elapsed());
                }
            }
        }
    }
    None
}

/// Forty clients each sending a request head a byte at a time (never idle, never done) are cut
/// off by the header read deadline, which counts from the connection and not from the last
/// byte; meanwhile a signed-in person's requests are served at once.
#[tokio::test]
async fn slow_loris_heads_are_cut_at_the_deadline_while_others_are_served() {
    let env = TestEnv::start_with(Options {
        tweak: Box::new(|raw, _| raw.header_read_timeout = Some("1".into())),
        ..Default::default()
    })
    .await;
    let alice = Browser::new();
    alice.sign_in(&env, "/", ALICE.0, ALICE.1).await;
    let mut loris = tokio::task::JoinSet::new();
    for last in 2..42u8 {
        loris.spawn(slow_loris(
            env.base.clone(),
            last,
            Duration::from_millis(100),
            Duration::from_secs(8),
        ));
    }
    for i in 0..10 {
        let t = Instant::now();
        let r = alice.get(&format!("{}/busy/{i}", env.base)).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    }
    for took in loris.join_all().await {
        let took = took.expect("a slow-loris connection stayed open for 8 s");
        assert!(
            took >= Duration::from_millis(700) && took < Duration::from_secs(4),
            "closed after {took:?}"
        );
    }
    assert_eq!(
        env.upstream.count(),
        10,
        "no slow-loris request reached the upstream"
    );
}

/// A body trickled a byte at a time, each within the body timeout, is a slow client, not an
/// attack the idle timeout can see: it is proxied whole, while another client is served.
#[tokio::test]
async fn a_body_trickled_within_the_body_timeout_is_proxied_whole() {
    let env = TestEnv::start_with(Options {
        tweak: Box::new(|raw, _| raw.body_timeout = Some("1".into())),
        ..Default::default()
    })
    .await;
    let alice = Browser::new();
    alice.sign_in(&env, "/", ALICE.0, ALICE.1).await;
    let mut s = connect_from(&env.base, 7).await;
    let head = format!(
        "POST /upload HTTP/1.1\r\nHost: x\r\nOrigin: {base}\r\nX-CSRF-Token: {csrf}\r\nCookie: {cookie}\r\nContent-Length: 12\r\nConnection: close\r\n\r\n",
        base = env.base,
        csrf = alice.csrf_token(&env.base),
        cookie = alice.session_cookies(&env.base),
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let t = Instant::now();
    for b in b"trickled-ok!" {
        tokio::time::sleep(Duration::from_millis(300)).await;
        s.write_all(&[*b]).await.unwrap();
        // Another client is served meanwhile.
        let r = alice.get(&format!("{}/other", env.base)).await;
        assert_eq!(r.status, 200);
    }
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_string(&mut answer))
        .await
        .unwrap()
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(t.elapsed() >= Duration::from_millis(3600));
    let upload = env
        .upstream
        .requests()
        .into_iter()
        .find(|r| r.uri == "/upload")
        .unwrap();
    assert_eq!((upload.method.as_str(), upload.body_len), ("POST", 12));
}

/// Send `head` (written in the background, as fast as the server reads) and return what the
/// server answers before closing (5 s at most).
async fn answer_to_head(base: &str, head: Vec<u8>) -> String {
    let s = connect_from(base, 9).await;
    let (mut r, mut w) = s.into_split();
    let writer = tokio::spawn(async move {
        for chunk in head.chunks(64 * 1024) {
            if w.write_all(chunk).await.is_err() {
                return;
            }
        }
    });
    let mut got = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), r.read_to_end(&mut got)).await;
    writer.abort();
    String::from_utf8_lossy(&got).into_owned()
}

/// Request heads far over every limit reach the HTTP parser's own bounds before the
/// gateway's checks: 2 MiB of header lines, one header line that never ends, 200 headers. Each
/// is answered 431 and the connection closed without the rest being read, nothing reaches the
/// upstream, and a signed-in person is served meanwhile.
#[tokio::test]
async fn request_heads_over_the_parser_limits_are_431() {
    let env = TestEnv::start().await;
    let alice = Browser::new();
    alice.sign_in(&env, "/", ALICE.0, ALICE.1).await;
    let many_lines: Vec<u8> = (0..20_000)
        .map(|i| format!("X-Pad-{i}: {}\r\n", "p".repeat(100)))
        .fold(b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec(), |mut v, l| {
            v.extend_from_slice(l.as_bytes());
            v
        });
    let mut endless = b"GET / HTTP/1.1\r\nHost: x\r\nX-Long: ".to_vec();
    endless.extend(std::iter::repeat_n(b'a', 2 * 1024 * 1024));
    let mut two_hundred = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
    for i in 0..200 {
        two_hundred.extend_from_slice(format!("X-H-{i}: v\r\n").as_bytes());
    }
    two_hundred.extend_from_slice(b"\r\n");
    for (case, head) in [
        ("2 MiB of header lines", many_lines),
        ("an endless header line", endless),
        ("200 headers", two_hundred),
    ] {
        let answer = answer_to_head(&env.base, head).await;
        assert!(
            answer.starts_with("HTTP/1.1 431"),
            "[{case}] answered: {:?}",
            answer.chars().take(200).collect::<String>()
        );
        let r = alice.get(&format!("{}/served", env.base)).await;
        assert_eq!(r.status, 200, "[{case}]");
    }
    assert_eq!(
        env.upstream
            .requests()
            .iter()
            .filter(|r| r.uri != "/served")
            .count(),
        0
    );
}
