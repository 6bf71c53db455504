//! The reverse proxy: streaming bodies, hop-by-hop and forwarding headers, gateway-cookie
//! stripping, WebSocket upgrades, the sign-in redirect versus 401 JSON for anonymous requests,
//! an unreachable upstream, and the inbound limits (R-HD-1/4/6, R-RS-1, §0.3, NP, NC).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

/// A 5 MiB response streams through; a 2 MiB request body reaches the upstream intact; the
/// query string and an encoded path are forwarded byte for byte.
#[tokio::test]
async fn signed_in_bodies_stream_and_uri_is_preserved() {
    // A 2 MiB upload: above the default 1 MiB body cap, so the cap is raised.
    let env = TestEnv::start_with(Options {
        tweak: Box::new(|raw, _| raw.max_body_bytes = Some((4 << 20).to_string())),
        ..Default::default()
    })
    .await;
    let b = Browser::new();
    b.sign_in(&env, "/", ALICE.0, ALICE.1).await;

    let big = b.get(&format!("{}/big", env.base)).await;
    assert_eq!(big.status, 200);
    assert_eq!(big.body.len(), 5 * 1024 * 1024);
    assert!(big.body.bytes().all(|c| c == b'x'));

    let url = format!("{}/upload?kind=blob", env.base);
    let payload = vec![7u8; 2 * 1024 * 1024];
    let r = b
        .send(
            b.raw()
                .post(&url)
                .header("content-type", "application/octet-stream")
                .body(payload),
            &url,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body, "upstream saw /upload");
    let got = env.upstream.requests().pop().unwrap();
    assert_eq!(got.method, "POST");
    assert_eq!(got.uri, "/upload?kind=blob");
    assert_eq!(got.body_len, 2 * 1024 * 1024);

    let pq = "/files/a%2Fb%20c?q=a%20b&x=1&x=2&empty=&u=%C3%A9&plus=a+b";
    let r = b.get(&format!("{}{pq}", env.base)).await;
    assert_eq!(r.status, 200);
    let got = env.upstream.requests().pop().unwrap();
    assert_eq!(got.method, "GET");
    assert_eq!(got.uri, pq, "path and query are forwarded unchanged");
}

type Chunks = tokio::sync::mpsc::Receiver<Result<bytes::Bytes, std::io::Error>>;

fn chunk_stream(
    rx: Chunks,
) -> impl futures_util::Stream<Item = Result<bytes::Bytes, std::io::Error>> + Send + 'static {
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) })
}

/// Neither direction is buffered: the client sees the first response chunk while the
/// upstream is still producing the rest, and the upstream sees the first request chunk while
/// the client is still sending.
#[tokio::test]
async fn bodies_stream_in_both_directions() {
    // An upstream whose `/down` body is fed by the test, and whose `/up` reports the first
    // request chunk as soon as it arrives.
    let (down_tx, down_rx) = tokio::sync::mpsc::channel(4);
    let down_rx = Arc::new(Mutex::new(Some(down_rx)));
    let (first_tx, mut first_rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(4);
    let app = axum::Router::new()
        .route(
            "/down",
            axum::routing::get(move || {
                let rx = down_rx.lock().unwrap().take().unwrap();
                async move { axum::body::Body::from_stream(chunk_stream(rx)) }
            }),
        )
        .route(
            "/up",
            axum::routing::post(move |body: axum::body::Body| {
                let first_tx = first_tx.clone();
                async move {
                    use http_body_util::BodyExt;
                    let mut body = body;
                    let mut total = 0usize;
                    while let Some(Ok(frame)) = body.frame().await {
                        if let Ok(data) = frame.into_data() {
                            if total == 0 {
                                let _ = first_tx.send(data.clone()).await;
                            }
                            total += data.len();
                        }
                    }
                    format!("received {total}")
                }
            }),
        );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let env = TestEnv::start_with(Options {
        tweak: Box::new(move |raw, _| raw.upstream = Some(up_url)),
        ..Default::default()
    })
    .await;
    let b = Browser::new();
    b.sign_in(&env, "/", ALICE.0, ALICE.1).await;
    let cookie = b.session_cookies(&env.base);
    let wait = Duration::from_secs(5);

    // Response direction.
    down_tx.send(Ok("first;".into())).await.unwrap();
    let mut resp = b
        .raw()
        .get(format!("{}/down", env.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let c = tokio::time::timeout(wait, resp.chunk())
        .await
        .expect("the first chunk arrives before the upstream finishes")
        .unwrap()
        .unwrap();
    assert_eq!(&c[..], b"first;");
    down_tx.send(Ok("second".into())).await.unwrap();
    drop(down_tx);
    let mut rest = Vec::new();
    while let Some(c) = tokio::time::timeout(wait, resp.chunk())
        .await
        .unwrap()
        .unwrap()
    {
        rest.extend_from_slice(&c);
    }
    assert_eq!(rest, b"second");

    // Request direction.
    let (up_tx, up_rx) = tokio::sync::mpsc::channel(4);
    let req = b
        .raw()
        .post(format!("{}/up", env.base))
        .header("cookie", &cookie)
        .header("x-csrf-token", b.csrf_token(&env.base))
        .body(reqwest::Body::wrap_stream(chunk_stream(up_rx)))
        .send();
    let pending = tokio::spawn(req);
    up_tx.send(Ok(vec![1u8; 1000].into())).await.unwrap();
    let first = tokio::time::timeout(wait, first_rx.recv())
        .await
        .expect("the upstream sees the first chunk while the client still sends")
        .unwrap();
    assert!(!first.is_empty());
    up_tx.send(Ok(vec![2u8; 500].into())).await.unwrap();
    drop(up_tx);
    let resp = tokio::time::timeout(wait, pending)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "received 1500");
}

/// RFC 9110 §7.6.1: hop-by-hop headers of the upstream's response (the fixed list and those
/// named in `Connection`) do not reach the client; end-to-end headers do.
#[tokio::test]
async fn response_hop_by_hop_headers_are_removed() {
    let env = TestEnv::start().await;
    let b = Browser::new();
    b.sign_in(&env, "/", ALICE.0, ALICE.1).await;
    let r = b.get(&format!("{}/hop", env.base)).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, "hop");
    assert_eq!(r.header("x-app").as_deref(), Some("kept"));
    assert!(r.header("x-internal").is_none(), "named in Connection");
    assert!(r.header("keep-alive").is_none());
    assert!(
        r.header("connection")
            .is_none_or(|c| !c.to_ascii_lowercase().contains("x-internal")),
        "{:?}",
        r.header("connection")
    );
}

/// Request side: hop-by-hop headers are not forwarded (R-HD, RFC 9110 §7.6.1); forwarding
/// headers are built by the gateway, never taken from the client (R-HD-6, R-CFG-6);
/// gateway cookies are stripped while the app's own cookies pass (R-HD-4); spoofed identity
/// headers are dropped and the real ones set once (R-HD-1/2).
#[tokio::test]
async fn r_hd_request_headers_forwarding_and_cookies() {
    let env = TestEnv::start().await;
    let b = Browser::new();
    b.sign_in(&env, "/", ALICE.0, ALICE.1).await;
    let session = b.session_cookies(&env.base);
    let r = b
        .raw()
        .get(format!("{}/app/page", env.base))
        .header("cookie", format!("theme=dark; {session}; lang=en"))
        .header("connection", "x-hop-secret")
        .header("x-hop-secret", "must-not-pass")
        .header("te", "trailers")
        .header("keep-alive", "timeout=5")
        .header("proxy-authorization", "Basic Zm9vOmJhcg==")
        .header("x-forwarded-for", "6.6.6.6")
        .header("x-forwarded-host", "evil.example")
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-port", "443")
        .header("forwarded", "for=6.6.6.6;host=evil.example;proto=https")
        .header("x-real-ip", "6.6.6.6")
        .header("x-forwarded-user", "admin")
        .header("x-forwarded-groups", "admins")
        .header("x-end-to-end", "passes")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let got = env.upstream.requests().pop().unwrap();
    assert_eq!(got.uri, "/app/page");
    for h in [
        "x-hop-secret",
        "te",
        "keep-alive",
        "proxy-authorization",
        "forwarded",
        "x-real-ip",
        "x-forwarded-port",
    ] {
        assert!(
            got.header(h).is_empty(),
            "{h} was forwarded: {:?}",
            got.headers
        );
    }
    assert!(
        got.one("connection")
            .is_none_or(|c| !c.to_ascii_lowercase().contains("x-hop-secret")),
        "{:?}",
        got.header("connection")
    );
    assert_eq!(got.one("x-end-to-end").as_deref(), Some("passes"));
    // X-Forwarded-For is the TCP peer; proto and host come from the configured public URL.
    assert_eq!(got.one("x-forwarded-for").as_deref(), Some("127.0.0.1"));
    assert_eq!(got.one("x-forwarded-proto").as_deref(), Some("http"));
    let public_host = env.base.trim_start_matches("http://");
    assert_eq!(got.one("x-forwarded-host").as_deref(), Some(public_host));
    // Identity: the gateway's values, once each.
    assert_eq!(
        got.one("x-forwarded-user").as_deref(),
        Some("alice-sub-0001")
    );
    assert_eq!(
        got.one("x-forwarded-groups").as_deref(),
        Some("admins,devs")
    );
    // Cookies: only the app's.
    let cookies = got.header("cookie").join("; ");
    assert!(!cookies.contains("__Host-"), "{cookies}");
    assert!(cookies.contains("theme=dark"), "{cookies}");
    assert!(cookies.contains("lang=en"), "{cookies}");
}

/// A raw WebSocket echo server that records the handshake headers it saw and counts TCP
/// connections.
type Handshakes = Arc<Mutex<Vec<Vec<(String, String)>>>>;

struct WsUpstream {
    url: String,
    seen: Handshakes,
    connections: Arc<AtomicUsize>,
}

// `ErrorResponse` is tungstenite's type for the handshake callback.
#[allow(clippy::result_large_err)]
async fn ws_upstream() -> WsUpstream {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen: Handshakes = Arc::default();
    let connections: Arc<AtomicUsize> = Arc::default();
    let (seen2, conns2) = (seen.clone(), connections.clone());
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            conns2.fetch_add(1, Ordering::SeqCst);
            let seen = seen2.clone();
            tokio::spawn(async move {
                let cb = move |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
                    let mut h: Vec<(String, String)> = req
                        .headers()
                        .iter()
                        .map(|(k, v)| {
                            (
                                k.as_str().to_string(),
                                String::from_utf8_lossy(v.as_bytes()).into_owned(),
                            )
                        })
                        .collect();
                    h.push((":path".into(), req.uri().to_string()));
                    seen.lock().unwrap().push(h);
                    Ok(resp)
                };
                let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, cb).await else {
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
    WsUpstream {
        url,
        seen,
        connections,
    }
}

fn ws_request(
    env: &TestEnv,
    path: &str,
    headers: &[(&str, String)],
) -> tokio_tungstenite::tungstenite::handshake::client::Request {
    let ws = env.base.replacen("http://", "ws://", 1);
    let mut req = format!("{ws}{path}").into_client_request().unwrap();
    for (k, v) in headers {
        req.headers_mut().insert(
            axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    req
}

/// WebSocket upgrade is tunnelled for a signed-in user (text and binary frames echo, the
/// upstream gets the identity headers and no gateway cookie); without a session the upgrade
/// is refused and the upstream sees no connection (NP).
#[tokio::test]
async fn websocket_upgrade_tunnels_for_signed_in_user_only() {
    let up = ws_upstream().await;
    let up_url = up.url.clone();
    let env = TestEnv::start_with(Options {
        tweak: Box::new(move |raw, _| raw.upstream = Some(up_url)),
        ..Default::default()
    })
    .await;

    // Anonymous browser-like upgrade: redirected to sign in, no tunnel.
    let err = tokio_tungstenite::connect_async(ws_request(&env, "/socket", &[]))
        .await
        .expect_err("an anonymous upgrade must fail");
    match err {
        WsError::Http(resp) => {
            assert_eq!(resp.status(), 302);
            assert_eq!(
                resp.headers().get("location").unwrap().to_str().unwrap(),
                format!("{}/api/login?rd=%2Fsocket", env.base)
            );
        }
        other => panic!("expected an HTTP refusal, got {other:?}"),
    }
    // Anonymous API-style upgrade: 401.
    let err = tokio_tungstenite::connect_async(ws_request(
        &env,
        "/socket",
        &[("accept", "application/json".into())],
    ))
    .await
    .expect_err("an anonymous upgrade must fail");
    match err {
        WsError::Http(resp) => assert_eq!(resp.status(), 401),
        other => panic!("expected an HTTP refusal, got {other:?}"),
    }
    // A forged session cookie is no better.
    let err = tokio_tungstenite::connect_async(ws_request(
        &env,
        "/socket",
        &[("cookie", "__Host-session=forged.jwt.value".into())],
    ))
    .await
    .expect_err("a forged session must fail");
    assert!(
        matches!(err, WsError::Http(ref r) if r.status() == 302),
        "{err:?}"
    );
    assert_eq!(up.connections.load(Ordering::SeqCst), 0, "NP");

    let b = Browser::new();
    b.sign_in(&env, "/", ALICE.0, ALICE.1).await;
    let session = b.session_cookies(&env.base);
    let (mut ws, resp) = tokio_tungstenite::connect_async(ws_request(
        &env,
        "/socket?room=1",
        &[("cookie", format!("{session}; app=1"))],
    ))
    .await
    .expect("the signed-in upgrade succeeds");
    assert_eq!(resp.status(), 101);

    ws.send(Message::text("hello through the gate"))
        .await
        .unwrap();
    let m = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(m, Message::text("hello through the gate"));

    let bin: Vec<u8> = (0..=255u8).cycle().take(200_000).collect();
    ws.send(Message::binary(bin.clone())).await.unwrap();
    let m = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(m, Message::binary(bin));
    ws.close(None).await.unwrap();

    let seen = up.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    let h = |n: &str| -> Vec<String> {
        seen[0]
            .iter()
            .filter(|(k, _)| k == n)
            .map(|(_, v)| v.clone())
            .collect()
    };
    assert_eq!(h(":path"), vec!["/socket?room=1"]);
    assert_eq!(h("x-forwarded-user"), vec!["alice-sub-0001"]);
    assert_eq!(h("x-forwarded-email"), vec!["alice@example.com"]);
    assert_eq!(h("upgrade"), vec!["websocket"]);
    assert_eq!(h("cookie"), vec!["app=1"], "gateway cookie stripped");
    assert_eq!(h("sec-websocket-key").len(), 1);
}

/// §0.3 / NP: anonymous browsers are sent to sign in and brought back to the page they asked
/// for; API clients (Accept: application/json, or any non-GET) get 401 JSON. The upstream is
/// never reached.
#[tokio::test]
async fn anonymous_browser_redirects_api_gets_401() {
    let env = TestEnv::start().await;
    let b = Browser::new();

    let r = b
        .get_with(
            &format!("{}/reports/q?year=2026&a=b", env.base),
            &[("accept", "text/html,application/xhtml+xml,*/*;q=0.8")],
        )
        .await;
    assert_eq!(r.status, 302);
    let loc = r.location().unwrap();
    assert_eq!(
        loc,
        format!(
            "{}/api/login?rd=%2Freports%2Fq%3Fyear%3D2026%26a%3Db",
            env.base
        )
    );
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
    let login = b.get(&loc).await;
    assert_eq!(login.status, 302);
    let authorize = login.location().unwrap();
    assert!(
        authorize.starts_with(&format!("{}/auth?", env.op.issuer)),
        "{authorize}"
    );
    // After signing in the browser lands on the page it asked for.
    let cb = b
        .authorize_at_op(&authorize, &env.base, ALICE.0, ALICE.1)
        .await;
    let back = b.get(&cb).await;
    assert_eq!(back.status, 302);
    assert_eq!(
        back.location().unwrap(),
        format!("{}/reports/q?year=2026&a=b", env.base)
    );
    let before = env.upstream.count();
    assert_eq!(before, 0, "NP before sign-in");

    let anon = Browser::new();
    let r = anon
        .get_with(
            &format!("{}/api/data", env.base),
            &[("accept", "application/json")],
        )
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body, r#"{"error":"unauthorized"}"#);
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
    for method in ["POST", "PUT", "DELETE", "PATCH"] {
        let url = format!("{}/api/items/1", env.base);
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let r = anon
            .send(
                anon.raw()
                    .request(m, &url)
                    .header("accept", "text/html")
                    .body("{}"),
                &url,
            )
            .await;
        assert_eq!(r.status, 401, "{method}");
        assert_eq!(r.body, r#"{"error":"unauthorized"}"#, "{method}");
        assert!(!r.sets_session());
    }
    // HEAD from a browser is a navigation too.
    let url = format!("{}/page", env.base);
    let r = anon.send(anon.raw().head(&url), &url).await;
    assert_eq!(r.status, 302);
    assert_eq!(env.upstream.count(), 0, "NP");
}

/// An unreachable upstream gives 502 (HTML for browsers, JSON for API clients) and the
/// gateway keeps serving (NC).
#[tokio::test]
async fn upstream_down_gives_502() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let env = TestEnv::start_with(Options {
        tweak: Box::new(move |raw, _| raw.upstream = Some(format!("http://127.0.0.1:{closed}"))),
        ..Default::default()
    })
    .await;
    let b = Browser::new();
    b.sign_in(&env, "/", ALICE.0, ALICE.1).await;
    let r = b.get(&format!("{}/dashboard", env.base)).await;
    assert_eq!(r.status, 502);
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
    let r = b
        .get_with(
            &format!("{}/api/x", env.base),
            &[("accept", "application/json")],
        )
        .await;
    assert_eq!(r.status, 502);
    let v: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["error"], "upstream_unavailable");
    let h = b.get(&format!("{}/healthz", env.base)).await;
    assert_eq!(h.status, 200);
    let s = b.get(&format!("{}/api/session", env.base)).await;
    assert_eq!(s.status, 200, "the session still works");
}

/// R-RS-1: URI > 8 KiB → 414; Cookie > 8 KiB → 431; header block > 16 KiB → 431. Checked
/// before authentication, so the upstream is never reached (NP).
#[tokio::test]
async fn r_rs_1_inbound_limits() {
    let env = TestEnv::start().await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    let long = format!("{}/x?pad={}", env.base, "a".repeat(9 * 1024));
    let r = http.get(&long).send().await.unwrap();
    assert_eq!(r.status(), 414);
    let r = http
        .get(&long)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 414);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "request_too_large");
    // Just under the limit is fine (a browser is redirected to sign in).
    let ok = format!("{}/x?pad={}", env.base, "a".repeat(7 * 1024));
    assert_eq!(http.get(&ok).send().await.unwrap().status(), 302);

    let r = http
        .get(format!("{}/x", env.base))
        .header("cookie", format!("big={}", "c".repeat(9 * 1024)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 431);
    // Several Cookie headers count together.
    let r = http
        .get(format!("{}/x", env.base))
        .header("cookie", format!("a={}", "c".repeat(5 * 1024)))
        .header("cookie", format!("b={}", "c".repeat(5 * 1024)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 431);

    let mut req = http
        .get(format!("{}/x", env.base))
        .header("accept", "application/json");
    for i in 0..20 {
        req = req.header(format!("x-pad-{i}"), "p".repeat(1000));
    }
    let r = req.send().await.unwrap();
    assert_eq!(r.status(), 431);
    assert_eq!(
        r.headers().get("cache-control").unwrap().to_str().unwrap(),
        "no-store"
    );
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "request_too_large");

    assert_eq!(env.upstream.count(), 0, "NP");
    assert_eq!(
        http.get(format!("{}/healthz", env.base))
            .send()
            .await
            .unwrap()
            .status(),
        200,
        "NC"
    );
}

/// Portcullis's own endpoints: `/api/session` answers 401 JSON without a session whatever the
/// Accept header; a wrong method gets 405 with `Allow` (§0.3) and never reaches the upstream.
#[tokio::test]
async fn own_endpoints_session_401_and_405() {
    let env = TestEnv::start().await;
    let b = Browser::new();
    for accept in ["text/html", "application/json"] {
        let r = b
            .get_with(&format!("{}/api/session", env.base), &[("accept", accept)])
            .await;
        assert_eq!(r.status, 401, "{accept}");
        assert_eq!(r.body, r#"{"error":"unauthorized"}"#);
        assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
    }
    for (method, path) in [
        ("PUT", "/api/login"),
        ("DELETE", "/api/session"),
        ("POST", "/healthz"),
    ] {
        let url = format!("{}{path}", env.base);
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let r = b.send(b.raw().request(m, &url), &url).await;
        assert_eq!(r.status, 405, "{method} {path}: {}", r.body);
        let allow = r
            .header("allow")
            .unwrap_or_else(|| panic!("{method} {path}: no Allow header"));
        assert!(allow.contains("GET"), "{allow}");
    }
    assert_eq!(env.upstream.count(), 0, "NP");
}

/// R-RS-1 (slowloris): a client that never finishes its request headers is disconnected
/// after the header read timeout instead of holding the connection forever.
#[tokio::test]
async fn r_rs_1_slow_headers_are_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let env = TestEnv::start().await;
    let addr = env.base.trim_start_matches("http://").to_string();
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    s.write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\nX-Drip: 1\r\n")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let mut buf = Vec::new();
    let read =
        tokio::time::timeout(std::time::Duration::from_secs(20), s.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "the connection must be closed by the server");
    let waited = started.elapsed();
    assert!(
        waited >= std::time::Duration::from_secs(5),
        "closed too early: {waited:?}"
    );
    assert_eq!(env.upstream.count(), 0);
    // The gateway keeps serving others.
    let r = reqwest::get(format!("{}/healthz", env.base)).await.unwrap();
    assert_eq!(r.status(), 200);
}

/// Portcullis's own pages carry hardening headers; proxied answers keep the app's headers.
#[tokio::test]
async fn own_pages_have_security_headers_proxied_ones_do_not() {
    let env = TestEnv::start().await;
    let b = Browser::new();
    let own = b.get(&format!("{}/api/session", env.base)).await;
    assert_eq!(
        own.header("x-content-type-options").as_deref(),
        Some("nosniff")
    );
    assert_eq!(own.header("x-frame-options").as_deref(), Some("DENY"));
    assert!(
        own.header("content-security-policy")
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    b.sign_in(&env, "/", ALICE.0, ALICE.1).await;
    let app = b.get(&format!("{}/page", env.base)).await;
    assert_eq!(app.status, 200);
    assert!(
        app.header("x-frame-options").is_none(),
        "the app decides its own headers"
    );
    assert!(app.header("content-security-policy").is_none());
}
