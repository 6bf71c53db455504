//! The "reshape" hardening items, each through a real gateway on loopback: connection caps and
//! the accept-to-head deadline (R-RS-1), methods (R-HD-5), body cap and body timeout (R-RS-1),
//! upgrades and tunnel lifetime, HTTP/2 clients, configurable identity headers (R-HD-1/2),
//! edge spaces (R-HD-3), `email_verified: false`, and the page shown without an upstream.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use common::*;
use futures_util::{SinkExt, StreamExt};
use portcullis_core::time::ManualClock;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

fn addr(env: &TestEnv) -> SocketAddr {
    env.base.trim_start_matches("http://").parse().unwrap()
}

/// A TCP connection to the gateway from loopback address `127.0.0.<last>` (all of 127/8 is
/// loopback on Linux), so tests can play many clients.
async fn connect_from(env: &TestEnv, last: u8) -> TcpStream {
    let s = TcpSocket::new_v4().unwrap();
    s.bind(SocketAddr::new(
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)),
        0,
    ))
    .unwrap();
    s.connect(addr(env)).await.unwrap()
}

/// Whether the server closes `s` within `within` (EOF or reset).
async fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

/// Read a whole HTTP/1.1 exchange on a raw socket until the server closes it (bounded).
async fn read_all(s: &mut TcpStream, within: Duration) -> String {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(within, s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

async fn healthz_from_127_0_0_1(env: &TestEnv, within: Duration) -> u16 {
    let c = reqwest::Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::LOCALHOST))
        .timeout(within)
        .build()
        .unwrap();
    c.get(format!("{}/healthz", env.base))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

/// R-RS-1: hundreds of idle sockets (nothing sent, half an HTTP/2 preface, half a request
/// head) neither starve `/healthz` nor stay open: over the per-address cap they are closed at
/// once, the rest when the header read timeout (covering protocol detection) runs out; with the
/// global cap full, a new client waits only until that timeout frees slots.
#[tokio::test]
async fn r_rs_1_idle_sockets_are_capped_and_timed_out() {
    let env = TestEnv::start_with(Options {
        tweak: Box::new(|raw, _| {
            raw.header_read_timeout = Some("2".into());
            raw.max_connections = Some("48".into());
            raw.max_connections_per_ip = Some("8".into());
        }),
        ..Default::default()
    })
    .await;

    // 320 sockets from five addresses, one address after the other: 8 per address are held,
    // the other 288 are closed at once.
    let mut socks = Vec::new();
    for last in 2..=6u8 {
        for i in 0..64 {
            let mut s = connect_from(&env, last).await;
            match i % 3 {
                0 => {}
                1 => s.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap(),
                _ => s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await.unwrap(),
            }
            socks.push(s);
        }
    }
    let started = Instant::now();
    assert_eq!(
        healthz_from_127_0_0_1(&env, Duration::from_secs(10)).await,
        200,
        "/healthz must get through while 320 idle sockets are open"
    );
    let mut closed_at_once = 0;
    for s in &mut socks {
        if closed_within(s, Duration::from_millis(1)).await {
            closed_at_once += 1;
        }
    }
    // Everything over the per-address cap is gone before the 2 s timeout.
    if started.elapsed() < Duration::from_millis(1500) {
        assert_eq!(closed_at_once, 320 - 5 * 8, "per-address cap");
    }
    // The held ones are closed by the header read timeout, whatever they sent.
    for s in &mut socks {
        assert!(
            closed_within(s, Duration::from_secs(6)).await,
            "an idle socket stayed open past the header read timeout"
        );
    }

    // Fill the global cap (48) from six addresses, 8 each; a new client is served once the
    // timeout frees the slots.
    let mut full = Vec::new();
    for last in 10..=15u8 {
        for _ in 0..8 {
            full.push(connect_from(&env, last).await);
        }
    }
    let t = Instant::now();
    assert_eq!(
        healthz_from_127_0_0_1(&env, Duration::from_secs(10)).await,
        200
    );
    assert!(t.elapsed() < Duration::from_secs(8), "{:?}", t.elapsed());
    assert_eq!(env.upstream.count(), 0);
}

/// R-RS-1: a socket that sends nothing, or half an HTTP/2 preface, is closed after the header
/// read timeout (1 s here) — not before, and not minutes later.
#[tokio::test]
async fn r_rs_1_header_timeout_covers_protocol_detection() {
    let env = TestEnv::start_with(Options {
        tweak: Box::new(|raw, _| raw.header_read_timeout = Some("1".into())),
        ..Default::default()
    })
    .await;
    for first in [
        &b""[..],
        b"PRI * HTTP/2.0\r\n",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    ] {
        let mut s = TcpStream::connect(addr(&env)).await.unwrap();
        s.write_all(first).await.unwrap();
        let t = Instant::now();
        assert!(
            closed_within(&mut s, Duration::from_secs(6)).await,
            "{first:?}: still open"
        );
        let waited = t.elapsed();
        assert!(
            waited >= Duration::from_millis(700),
            "{first:?}: closed too early ({waited:?})"
        );
    }
    // An idle keep-alive connection after a complete request stays usable for a while (the
    // keep-alive limit, not the header timeout, applies between requests)...
    let mut s = TcpStream::connect(addr(&env)).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 4096];
    let n = s.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    assert!(!closed_within(&mut s, Duration::from_millis(1500)).await);
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let rest = read_all(&mut s, Duration::from_secs(5)).await;
    assert!(rest.starts_with("HTTP/1.1 200"), "{rest}");
}

/// R-RS-1: the keep-alive limit closes an idle connection between requests.
#[tokio::test]
async fn r_rs_1_idle_keep_alive_is_closed() {
    let env = TestEnv::start_with(Options {
        tweak: Box::new(|raw, _| raw.keep_alive_timeout = Some("1".into())),
        ..Default::default()
    })
    .await;
    let mut s = TcpStream::connect(addr(&env)).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 4096];
    let n = s.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    assert!(closed_within(&mut s, Duration::from_secs(5)).await);
}

/// R-HD-5: lower-case and unknown methods, TRACE, and anything not configured get 405 with
/// `Allow`, signed in or not, and the upstream is never reached; a configured extension
/// method (WebDAV) passes.
#[tokio::test]
async fn r_hd_5_methods_refused_before_the_upstream() {
    let env = TestEnv::start_with(Options {
        tweak: Box::new(|raw, _| raw.extra_methods = Some(vec!["PROPFIND".into()])),
        ..Default::default()
    })
    .await;
    let b = Browser::new();
    b.sign_in(&env, "/", ALICE.0, ALICE.1).await;
    let cookie = b.session_cookies(&env.base);
    let http = reqwest::Client::new();
    for signed_in in [true, false] {
        for m in ["get", "FOO", "TRACE", "Post", "propfind", "MKCOL"] {
            let mut r = http.request(
                reqwest::Method::from_bytes(m.as_bytes()).unwrap(),
                format!("{}/app/x", env.base),
            );
            if signed_in {
                r = r.header("cookie", &cookie);
            }
            let r = r.send().await.unwrap();
            assert_eq!(r.status(), 405, "{m} signed_in={signed_in}");
            let allow = r
                .headers()
                .get("allow")
                .unwrap()
                .to_str()
                .unwrap()
                .to_string();
            assert_eq!(
                allow,
                "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, PROPFIND"
            );
        }
    }
    assert_eq!(env.upstream.count(), 0, "NP");
    let r = http
        .request(
            reqwest::Method::from_bytes(b"PROPFIND").unwrap(),
            format!("{}/dav/", env.base),
        )
        .header("cookie", &cookie)
        .header("x-csrf-token", b.csrf_token(&env.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let got = env.upstream.requests().pop().unwrap();
    assert_eq!(got.method, "PROPFIND");
    assert_eq!(
        got.one("x-forwarded-user").as_deref(),
        Some("alice-sub-0001")
    );
}

type Chunks = tokio::sync::mpsc::Receiver<Result<bytes::Bytes, std::io::Error>>;

fn chunk_stream(
    rx: Chunks,
) -> impl futures_util::Stream<Item = Result<bytes::Bytes, std::io::Error>> + Send + 'static {
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) })
}

/// R-RS-1: a declared body over the cap is refused with 413 before the upstream; a chunked
/// body that grows over the cap is cut off (413) before it all reaches the upstream; a body
/// that stalls is abandoned after the body timeout (408) instead of holding the connection.
#[tokio::test]
async fn r_rs_1_body_cap_and_body_timeout() {
    let env = TestEnv::start_with(Options {
        tweak: Box::new(|raw, _| {
            raw.max_body_bytes = Some("1024".into());
            raw.body_timeout = Some("1".into());
        }),
        ..Default::default()
    })
    .await;
    let b = Browser::new();
    b.sign_in(&env, "/", ALICE.0, ALICE.1).await;
    let cookie = b.session_cookies(&env.base);
    let http = reqwest::Client::new();
    let url = format!("{}/upload", env.base);

    let ok = http
        .post(&url)
        .header("cookie", &cookie)
        .header("x-csrf-token", b.csrf_token(&env.base))
        .body(vec![1u8; 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(env.upstream.requests().pop().unwrap().body_len, 1024);
    let before = env.upstream.count();

    let r = http
        .post(&url)
        .header("cookie", &cookie)
        .header("x-csrf-token", b.csrf_token(&env.base))
        .header("accept", "application/json")
        .body(vec![1u8; 1025])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "request_too_large");
    assert_eq!(
        env.upstream.count(),
        before,
        "NP: refused on Content-Length"
    );

    // Chunked: 4 × 512 bytes, no Content-Length.
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    for _ in 0..4 {
        tx.send(Ok(vec![2u8; 512].into())).await.unwrap();
    }
    drop(tx);
    let r = http
        .post(&url)
        .header("cookie", &cookie)
        .header("x-csrf-token", b.csrf_token(&env.base))
        .body(reqwest::Body::wrap_stream(chunk_stream(rx)))
        .send()
        .await;
    if let Ok(r) = r {
        assert_eq!(r.status(), 413);
    }
    assert!(
        env.upstream.requests().iter().all(|r| r.body_len <= 1024),
        "the upstream never receives more than the cap"
    );

    // Drip: one byte of a declared 100, then nothing.
    let mut s = TcpStream::connect(addr(&env)).await.unwrap();
    let head = format!(
        "POST /drip HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\nX-CSRF-Token: {}\r\nContent-Length: 100\r\n\r\nx",
        b.csrf_token(&env.base)
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let t = Instant::now();
    let resp = read_all(&mut s, Duration::from_secs(10)).await;
    assert!(
        t.elapsed() < Duration::from_secs(8),
        "held {:?}",
        t.elapsed()
    );
    assert!(resp.starts_with("HTTP/1.1 408"), "{resp}");
}

/// A WebSocket echo upstream.
async fn ws_upstream() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
                    return;
                };
                while let Some(Ok(msg)) = ws.next().await {
                    if msg.is_close() {
                        break;
                    }
                    if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    url
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn open_ws(env: &TestEnv, cookie: &str) -> Ws {
    let ws = env.base.replacen("http://", "ws://", 1);
    let mut req = format!("{ws}/socket").into_client_request().unwrap();
    req.headers_mut().insert("cookie", cookie.parse().unwrap());
    let (mut ws, resp) = tokio_tungstenite::connect_async(req).await.unwrap();
    assert_eq!(resp.status(), 101);
    ws.send(Message::text("ping")).await.unwrap();
    let m = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(m, Message::text("ping"));
    ws
}

/// Whether the tunnel ends (close, error or EOF) within `within`.
async fn ws_ends_within(ws: &mut Ws, within: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => return false,
            Ok(None) | Ok(Some(Err(_))) => return true,
            Ok(Some(Ok(m))) if m.is_close() => return true,
            Ok(Some(Ok(_))) => continue,
        }
    }
}

/// Signing out closes the user's open WebSocket tunnels within a couple of seconds; another
/// session's tunnel stays up.
#[tokio::test]
async fn websocket_closes_when_its_session_is_revoked() {
    let up = ws_upstream().await;
    let env = TestEnv::start_with(Options {
        tweak: Box::new(move |raw, _| raw.upstream = Some(up)),
        ..Default::default()
    })
    .await;
    let alice = Browser::new();
    alice.sign_in(&env, "/", ALICE.0, ALICE.1).await;
    let bob = Browser::new();
    bob.sign_in(&env, "/", BOB.0, BOB.1).await;
    let mut ws_alice = open_ws(&env, &alice.session_cookies(&env.base)).await;
    let mut ws_bob = open_ws(&env, &bob.session_cookies(&env.base)).await;

    let out = post_logout(&alice, &env).await;
    assert_eq!(out.status, 200, "{}", out.body);
    assert!(
        ws_ends_within(&mut ws_alice, Duration::from_secs(4)).await,
        "the signed-out user's tunnel must close"
    );
    ws_bob.send(Message::text("still here")).await.unwrap();
    let m = tokio::time::timeout(Duration::from_secs(5), ws_bob.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(m, Message::text("still here"));
}

/// A tunnel closes when the session token that opened it expires.
#[tokio::test]
async fn websocket_closes_when_its_session_expires() {
    let up = ws_upstream().await;
    let clock = ManualClock::at_now();
    let env = TestEnv::start_with(Options {
        tweak: Box::new(move |raw, _| raw.upstream = Some(up)),
        clock: Some(clock.clone()),
        ..Default::default()
    })
    .await;
    let b = Browser::new();
    b.sign_in(&env, "/", ALICE.0, ALICE.1).await;
    let mut ws = open_ws(&env, &b.session_cookies(&env.base)).await;
    assert!(!ws_ends_within(&mut ws, Duration::from_millis(1500)).await);
    clock.advance(24 * 3600);
    assert!(
        ws_ends_within(&mut ws, Duration::from_secs(4)).await,
        "an expired session's tunnel must close"
    );
}

/// Only allowed upgrades are tunnelled: `h2c` (or any other protocol) is refused without
/// reaching the upstream.
#[tokio::test]
async fn upgrade_other_than_websocket_is_refused() {
    let env = TestEnv::start().await;
    let b = Browser::new();
    b.sign_in(&env, "/", ALICE.0, ALICE.1).await;
    let cookie = b.session_cookies(&env.base);
    for upgrade in ["h2c", "websocket, h2c", "TLS/1.3"] {
        let mut s = TcpStream::connect(addr(&env)).await.unwrap();
        let req = format!(
            "GET /x HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: {upgrade}\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n"
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let mut buf = [0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        let resp = String::from_utf8_lossy(&buf[..n]);
        assert!(resp.starts_with("HTTP/1.1 400"), "{upgrade}: {resp}");
    }
    assert_eq!(env.upstream.count(), 0, "NP");
}

/// An HTTP/2 client (prior knowledge, h2c) is proxied: the upstream request is HTTP/1.1 with
/// the upstream's authority, identity headers set.
#[tokio::test]
async fn http2_prior_knowledge_client_is_proxied() {
    let env = TestEnv::start().await;
    let b = Browser::new();
    b.sign_in(&env, "/", ALICE.0, ALICE.1).await;
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let r = h2
        .get(format!("{}/page?q=1", env.base))
        .header("cookie", b.session_cookies(&env.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "upstream saw /page");
    let got = env.upstream.requests().pop().unwrap();
    assert_eq!(got.uri, "/page?q=1");
    assert_eq!(
        got.one("x-forwarded-user").as_deref(),
        Some("alice-sub-0001")
    );
    assert_eq!(
        got.one("host").as_deref(),
        Some(env.upstream.addr.to_string().as_str())
    );
    let h = h2
        .get(format!("{}/healthz", env.base))
        .send()
        .await
        .unwrap();
    assert_eq!(h.status(), 200);
}

/// R-HD-1/2: configured identity header names (Grafana's `X-WEBAUTH-USER`) are set once and
/// stripped from clients in every spelling, as are `PORTCULLIS_STRIP_HEADERS` entries.
#[tokio::test]
async fn r_hd_configured_identity_and_strip_headers() {
    let env = TestEnv::start_with(Options {
        tweak: Box::new(|raw, _| {
            raw.header_user = Some("X-WEBAUTH-USER".into());
            raw.header_email = Some("X-WEBAUTH-EMAIL".into());
            raw.strip_headers = Some(vec!["X-Internal-".into()]);
        }),
        ..Default::default()
    })
    .await;
    let b = Browser::new();
    b.sign_in(&env, "/", ALICE.0, ALICE.1).await;
    let r = reqwest::Client::new()
        .get(format!("{}/grafana", env.base))
        .header("cookie", b.session_cookies(&env.base))
        .header("x-webauth-user", "admin")
        .header("x_webauth_email", "admin@corp")
        .header("x-internal-role", "root")
        .header("x_internal_tenant", "all")
        .header("x-forwarded-user", "admin")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let got = env.upstream.requests().pop().unwrap();
    assert_eq!(got.one("x-webauth-user").as_deref(), Some("alice-sub-0001"));
    assert_eq!(
        got.one("x-webauth-email").as_deref(),
        Some("alice@example.com")
    );
    for h in [
        "x_webauth_email",
        "x-internal-role",
        "x_internal_tenant",
        "x-forwarded-user",
        "x-forwarded-email",
    ] {
        assert!(got.header(h).is_empty(), "{h}: {:?}", got.headers);
    }
    assert_eq!(
        got.one("x-forwarded-groups").as_deref(),
        Some("admins,devs")
    );
}

/// R-HD-3: edge spaces in claims survive as `%20`, so `" alice@example.test "` cannot reach
/// the app as `alice@example.test`, nor the group `"admins "` as `admins`.
#[tokio::test]
async fn r_hd_3_edge_spaces_in_claims_are_encoded() {
    let env = TestEnv::start().await;
    let claims = json!({"email": " alice@example.test ", "groups": ["admins ", " devs", "a,b"]});
    env.op
        .mode(json!({
            "id_token": {"claims": claims, "sign": "valid"},
            "userinfo": {"claims": claims},
        }))
        .await;
    let b = Browser::new();
    b.sign_in(&env, "/", ALICE.0, ALICE.1).await;
    let r = b.get(&format!("{}/", env.base)).await;
    assert_eq!(r.status, 200);
    let got = env.upstream.requests().pop().unwrap();
    assert_eq!(
        got.one("x-forwarded-email").as_deref(),
        Some("%20alice@example.test%20")
    );
    assert_eq!(
        got.one("x-forwarded-groups").as_deref(),
        Some("admins%20,%20devs,a%2Cb")
    );
}

/// `email_verified: false` (mallory at the test OP) refuses the sign-in by default; with
/// `OIDC_ALLOW_UNVERIFIED_EMAIL=true` the sign-in works but the email is never forwarded.
#[tokio::test]
async fn unverified_email_refused_by_default_and_never_forwarded() {
    let env = TestEnv::start().await;
    let b = Browser::new();
    let cb = b.start_login(&env, "/", MALLORY.0, MALLORY.1).await;
    let r = b.get(&cb).await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(!r.sets_session());
    assert_eq!(env.users().await, 0);

    let env = TestEnv::start_with(Options {
        tweak: Box::new(|raw, _| raw.allow_unverified_email = Some("true".into())),
        ..Default::default()
    })
    .await;
    let b = Browser::new();
    b.sign_in(&env, "/", MALLORY.0, MALLORY.1).await;
    let r = b.get(&format!("{}/", env.base)).await;
    assert_eq!(r.status, 200);
    let got = env.upstream.requests().pop().unwrap();
    assert_eq!(
        got.one("x-forwarded-user").as_deref(),
        Some("mallory-sub-0003")
    );
    assert!(
        got.header("x-forwarded-email").is_empty(),
        "{:?}",
        got.headers
    );
}

/// Without an upstream, a signed-in user gets an explanatory 503, not a bare 404.
#[tokio::test]
async fn no_upstream_gives_an_explanatory_page() {
    let env = TestEnv::start_with(Options {
        tweak: Box::new(|raw, _| raw.upstream = None),
        ..Default::default()
    })
    .await;
    let b = Browser::new();
    b.sign_in(&env, "/", ALICE.0, ALICE.1).await;
    let page = b.get(&format!("{}/", env.base)).await;
    assert_eq!(page.status, 503);
    assert!(page.body.contains("PORTCULLIS_UPSTREAM"), "{}", page.body);
    let api = b
        .get_with(
            &format!("{}/api/x", env.base),
            &[("accept", "application/json")],
        )
        .await;
    assert_eq!(api.status, 503);
    let v: Value = serde_json::from_str(&api.body).unwrap();
    assert_eq!(v["error"], "no_upstream");
}

/// Anonymous browsers still get the sign-in redirect for allowed methods: the prechecks only
/// refuse what is never proxied.
#[tokio::test]
async fn prechecks_do_not_change_anonymous_answers() {
    let env = TestEnv::start().await;
    let r = Browser::new().get(&format!("{}/page", env.base)).await;
    assert_eq!(r.status, 302);
}
