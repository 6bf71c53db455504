//! An https upstream: verified against the operator's CA (never without verification), with a
//! client certificate for mTLS to the app, HTTP/2 when the app offers it by ALPN and HTTP/1.1
//! for WebSocket upgrades. Every TLS failure toward the app is the ordinary 502 and the app is
//! not reached. Signs in through the real OP; the app is a real rustls + hyper server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use futures_util::{SinkExt, StreamExt};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

// ------------------------------------------------------------------------------------------
// Certificates (rcgen)
// ------------------------------------------------------------------------------------------

struct Ca {
    pem: String,
    der: CertificateDer<'static>,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

fn ca(name: &str) -> Ca {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    p.distinguished_name
        .push(rcgen::DnType::CommonName, name.to_string());
    let cert = p.self_signed(&key).unwrap();
    Ca {
        pem: cert.pem(),
        der: cert.der().clone(),
        issuer: rcgen::Issuer::new(p, key),
    }
}

struct Leaf {
    cert_pem: String,
    key_pem: String,
    der: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
}

/// A certificate issued by `ca` for `sans` (DNS names or IP addresses) with `cn` as subject.
fn leaf(ca: &Ca, sans: &[&str], cn: &str, expired: bool) -> Leaf {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut p =
        rcgen::CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .unwrap();
    p.distinguished_name
        .push(rcgen::DnType::CommonName, cn.to_string());
    if expired {
        p.not_before = rcgen::date_time_ymd(2020, 1, 1);
        p.not_after = rcgen::date_time_ymd(2021, 1, 1);
    }
    let cert = p.signed_by(&key, &ca.issuer).unwrap();
    Leaf {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        der: cert.der().clone(),
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The app's TLS: its certificate, the ALPN protocols it offers, and (mTLS) the CA its
/// clients' certificates must chain to.
fn server_config(server: &Leaf, alpn: &[&[u8]], client_ca: Option<&Ca>) -> rustls::ServerConfig {
    let b = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap();
    let b = match client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(ca.der.clone()).unwrap();
            let v = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                .build()
                .unwrap();
            b.with_client_cert_verifier(v)
        }
        None => b.with_no_client_auth(),
    };
    let mut c = b
        .with_single_cert(vec![server.der.clone()], server.key.clone_key())
        .unwrap();
    c.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    c
}

// ------------------------------------------------------------------------------------------
// The https app
// ------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct Seen {
    version: hyper::Version,
    path: String,
    headers: Vec<(String, String)>,
    /// The client certificate the TLS handshake presented, if any.
    client_cert: Option<CertificateDer<'static>>,
    /// The protocol the handshake agreed by ALPN (`None`: none offered or agreed).
    alpn: Option<Vec<u8>>,
}

impl Seen {
    fn header(&self, n: &str) -> Vec<String> {
        self.headers
            .iter()
            .filter(|(k, _)| k == n)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

struct TlsApp {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
    /// TLS handshakes that failed (the gateway refused us, or we refused it).
    refused: Arc<AtomicUsize>,
}

impl TlsApp {
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// A hyper server (HTTP/1.1 and h2, as the handshake agreed) over tokio-rustls, answering
/// `app saw PATH over VERSION` and recording what it saw. WebSocket upgrades on `/socket`
/// are accepted by tungstenite on the same TLS stream and echo frames.
// `ErrorResponse` is tungstenite's type for the handshake callback.
#[allow(clippy::result_large_err)]
async fn tls_app(config: rustls::ServerConfig) -> TlsApp {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let refused: Arc<AtomicUsize> = Arc::default();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let (seen2, refused2) = (seen.clone(), refused.clone());
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, seen, refused) = (acceptor.clone(), seen2.clone(), refused2.clone());
            tokio::spawn(async move {
                let tls = match acceptor.accept(tcp).await {
                    Ok(t) => t,
                    Err(_) => {
                        refused.fetch_add(1, Ordering::SeqCst);
                        return;
                    }
                };
                let (_, conn) = tls.get_ref();
                let client_cert = conn
                    .peer_certificates()
                    .and_then(|c| c.first())
                    .map(|c| c.clone().into_owned());
                let alpn = conn.alpn_protocol().map(|p| p.to_vec());
                // Peek at the request line of an HTTP/1.1 connection: a WebSocket handshake
                // goes to tungstenite, everything else to hyper.
                let mut tls = tokio::io::BufReader::new(tls);
                let is_ws = alpn.as_deref() != Some(b"h2") && {
                    use tokio::io::AsyncBufReadExt;
                    tls.fill_buf()
                        .await
                        .is_ok_and(|b| b.starts_with(b"GET /socket"))
                };
                if is_ws {
                    let seen = seen.clone();
                    let cb =
                        move |req: &tokio_tungstenite::tungstenite::handshake::server::Request,
                              resp| {
                            seen.lock().unwrap().push(Seen {
                                version: req.version(),
                                path: req.uri().to_string(),
                                headers: headers_of(req.headers()),
                                client_cert: client_cert.clone(),
                                alpn: alpn.clone(),
                            });
                            Ok(resp)
                        };
                    let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(tls, cb).await else {
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
                    return;
                }
                let svc = hyper::service::service_fn(move |req: hyper::Request<_>| {
                    let s = Seen {
                        version: req.version(),
                        path: req.uri().path().to_string(),
                        headers: headers_of(req.headers()),
                        client_cert: client_cert.clone(),
                        alpn: alpn.clone(),
                    };
                    let body = format!("app saw {} over {:?}", s.path, s.version);
                    seen.lock().unwrap().push(s);
                    async move {
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
                            Bytes::from(body),
                        )))
                    }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    TlsApp {
        port,
        seen,
        refused,
    }
}

fn headers_of(h: &hyper::HeaderMap) -> Vec<(String, String)> {
    h.iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

// ------------------------------------------------------------------------------------------
// The gateway in front of it
// ------------------------------------------------------------------------------------------

/// Files for the gateway's upstream TLS settings, written into a fresh temporary directory.
struct Files {
    dir: TempDir,
}

impl Files {
    fn new() -> Files {
        Files {
            dir: TempDir::new(),
        }
    }
    fn write(&self, name: &str, text: &str) -> String {
        let p = self.dir.0.join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_string()
    }
}

/// A gateway whose upstream is `upstream` (an https URL), trusting `ca` (if any) and
/// presenting `client` (if any).
async fn gateway(
    files: &Files,
    upstream: String,
    ca: Option<&Ca>,
    client: Option<&Leaf>,
) -> TestEnv {
    let ca_file = ca.map(|c| files.write("ca.pem", &c.pem));
    let id = client.map(|c| {
        (
            files.write("client.pem", &c.cert_pem),
            files.write("client.key", &c.key_pem),
        )
    });
    TestEnv::start_with(Options {
        tweak: Box::new(move |raw, _| {
            raw.upstream = Some(upstream);
            raw.upstream_ca_file = ca_file;
            if let Some((cert, key)) = id {
                raw.upstream_client_cert_file = Some(cert);
                raw.upstream_client_key_file = Some(key);
            }
            raw.metrics_listen = Some("127.0.0.1:0".into());
        }),
        ..Default::default()
    })
    .await
}

async fn unreachable_count(env: &TestEnv) -> u64 {
    let addr = env.gw.metrics.as_ref().expect("metrics listener").addr;
    let text = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("portcullis_upstream_errors_total{kind=\"unreachable\"} "))
        .map(|n| n.trim().parse::<f64>().unwrap() as u64)
        .unwrap_or(0)
}

/// A signed-in request to an upstream the gateway cannot talk TLS to: the page and the JSON
/// of 502 upstream_unavailable, counted as an unreachable upstream; the app saw no request.
async fn assert_refused(env: &TestEnv, app: &TlsApp, case: &str) {
    let b = Browser::new();
    b.sign_in(env, "/", ALICE.0, ALICE.1).await;
    let before = unreachable_count(env).await;
    let r = b.get(&format!("{}/dashboard", env.base)).await;
    assert_eq!(r.status, 502, "[{case}] {}", r.body);
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
    assert!(
        r.body
            .contains("The application behind Portcullis is not reachable right now."),
        "[{case}] {}",
        r.body
    );
    let r = b
        .get_with(
            &format!("{}/api/x", env.base),
            &[("accept", "application/json")],
        )
        .await;
    assert_eq!(r.status, 502, "[{case}]");
    let v: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["error"], "upstream_unavailable", "[{case}]");
    assert_eq!(
        v["error_description"],
        "The application behind Portcullis is not reachable right now. Please try again shortly.",
        "[{case}]"
    );
    assert_eq!(unreachable_count(env).await, before + 2, "[{case}] metrics");
    assert!(app.seen().is_empty(), "[{case}] the app is not reached");
    assert!(
        app.refused.load(Ordering::SeqCst) >= 2,
        "[{case}] handshakes were attempted and failed"
    );
    // The gateway itself is fine.
    assert_eq!(b.session_status(&env.base).await, 200, "[{case}]");
}

const H2_AND_H1: &[&[u8]] = &[b"h2", b"http/1.1"];

// ------------------------------------------------------------------------------------------
// Tests
// ------------------------------------------------------------------------------------------

/// An https app reached by IP address (its certificate's IP SAN) with the operator's CA:
/// identity headers arrive, HTTP/2 is used because the app offers it, one `:authority` and no
/// client Host, no hop-by-hop headers; a WebSocket upgrade still goes through on HTTP/1.1.
#[tokio::test]
async fn https_upstream_with_custom_ca_gets_identity_over_h2_and_websocket_on_http1() {
    let ca = ca("App CA");
    let server = leaf(&ca, &["127.0.0.1", "localhost"], "app", false);
    let app = tls_app(server_config(&server, H2_AND_H1, None)).await;
    let files = Files::new();
    let env = gateway(
        &files,
        format!("https://127.0.0.1:{}", app.port),
        Some(&ca),
        None,
    )
    .await;
    let b = Browser::new();
    b.sign_in(&env, "/", ALICE.0, ALICE.1).await;
    let r = b
        .get_with(
            &format!("{}/hello?x=1", env.base),
            &[
                ("connection", "keep-alive, x-hop"),
                ("x-hop", "1"),
                ("te", "trailers"),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body, "app saw /hello over HTTP/2.0");
    let seen = app.seen();
    assert_eq!(seen.len(), 1);
    let s = &seen[0];
    assert_eq!(s.version, hyper::Version::HTTP_2);
    assert_eq!(s.alpn.as_deref(), Some(&b"h2"[..]));
    assert_eq!(s.header("x-forwarded-user"), vec!["alice-sub-0001"]);
    assert_eq!(s.header("x-forwarded-email"), vec!["alice@example.com"]);
    assert!(s.client_cert.is_none(), "no client certificate configured");
    for n in ["host", "connection", "x-hop", "te", "keep-alive", "upgrade"] {
        assert!(s.header(n).is_empty(), "{n} must not reach the app: {s:?}");
    }

    // WebSocket: the upgrade goes over HTTP/1.1 (no h2 offered for it), frames echo.
    let ws_base = env.base.replacen("http://", "ws://", 1);
    let mut req = format!("{ws_base}/socket?room=1")
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("cookie", b.session_cookies(&env.base).parse().unwrap());
    let (mut ws, resp) = tokio_tungstenite::connect_async(req)
        .await
        .expect("the signed-in upgrade succeeds over an https upstream");
    assert_eq!(resp.status(), 101);
    ws.send(Message::text("hello over tls")).await.unwrap();
    let m = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(m, Message::text("hello over tls"));
    ws.close(None).await.unwrap();
    let seen = app.seen();
    assert_eq!(seen.len(), 2);
    let s = &seen[1];
    assert_eq!(s.path, "/socket?room=1");
    assert_eq!(s.version, hyper::Version::HTTP_11);
    assert_eq!(s.alpn, None, "only HTTP/1.1 is offered for an upgrade");
    assert_eq!(s.header("upgrade"), vec!["websocket"]);
    assert_eq!(s.header("x-forwarded-user"), vec!["alice-sub-0001"]);
}

/// The app offers only http/1.1 by ALPN: the gateway speaks HTTP/1.1 to it, with a Host
/// header naming the upstream (by DNS name, checked against the certificate).
#[tokio::test]
async fn https_upstream_offering_only_http1_gets_http1() {
    let ca = ca("App CA");
    let server = leaf(&ca, &["localhost"], "app", false);
    let app = tls_app(server_config(&server, &[b"http/1.1"], None)).await;
    let files = Files::new();
    let env = gateway(
        &files,
        format!("https://localhost:{}", app.port),
        Some(&ca),
        None,
    )
    .await;
    let b = Browser::new();
    b.sign_in(&env, "/", ALICE.0, ALICE.1).await;
    let r = b.get(&format!("{}/one", env.base)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body, "app saw /one over HTTP/1.1");
    let s = &app.seen()[0];
    assert_eq!(s.alpn.as_deref(), Some(&b"http/1.1"[..]));
    assert_eq!(s.header("host"), vec![format!("localhost:{}", app.port)]);
    assert_eq!(s.header("x-forwarded-user"), vec!["alice-sub-0001"]);
}

/// Without the operator's CA the app's certificate is from an unknown issuer (the default
/// roots do not know it): 502, the app is not reached. There is no switch to skip the check.
#[tokio::test]
async fn https_upstream_from_an_unknown_ca_is_502() {
    let ca = ca("App CA");
    let server = leaf(&ca, &["127.0.0.1"], "app", false);
    let app = tls_app(server_config(&server, H2_AND_H1, None)).await;
    let files = Files::new();
    let env = gateway(
        &files,
        format!("https://127.0.0.1:{}", app.port),
        None,
        None,
    )
    .await;
    assert_refused(&env, &app, "unknown CA").await;
}

/// A certificate for another name, or an expired one, from the trusted CA: 502.
#[tokio::test]
async fn https_upstream_with_wrong_name_or_expired_certificate_is_502() {
    let ca = ca("App CA");
    let wrong = leaf(&ca, &["other.example", "10.9.9.9"], "other", false);
    let app = tls_app(server_config(&wrong, H2_AND_H1, None)).await;
    let files = Files::new();
    let env = gateway(
        &files,
        format!("https://127.0.0.1:{}", app.port),
        Some(&ca),
        None,
    )
    .await;
    assert_refused(&env, &app, "wrong name").await;
    drop(env);

    let expired = leaf(&ca, &["127.0.0.1"], "app", true);
    let app = tls_app(server_config(&expired, H2_AND_H1, None)).await;
    let files = Files::new();
    let env = gateway(
        &files,
        format!("https://127.0.0.1:{}", app.port),
        Some(&ca),
        None,
    )
    .await;
    assert_refused(&env, &app, "expired").await;
}

/// mTLS: an app that requires a client certificate from its own CA sees the gateway's
/// certificate (subject CN=portcullis-gateway) and answers 200.
#[tokio::test]
async fn mtls_upstream_sees_the_gateway_client_certificate() {
    let server_ca = ca("App CA");
    let client_ca = ca("Gateway client CA");
    let server = leaf(&server_ca, &["127.0.0.1"], "app", false);
    let client = leaf(
        &client_ca,
        &["portcullis.internal"],
        "portcullis-gateway",
        false,
    );
    let app = tls_app(server_config(&server, H2_AND_H1, Some(&client_ca))).await;
    let files = Files::new();
    let env = gateway(
        &files,
        format!("https://127.0.0.1:{}", app.port),
        Some(&server_ca),
        Some(&client),
    )
    .await;
    let b = Browser::new();
    b.sign_in(&env, "/", ALICE.0, ALICE.1).await;
    let r = b.get(&format!("{}/secure", env.base)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let seen = app.seen();
    assert_eq!(seen.len(), 1);
    let got = seen[0].client_cert.as_ref().expect("a client certificate");
    assert_eq!(got, &client.der, "the configured certificate");
    let cn = b"portcullis-gateway";
    assert!(
        got.as_ref().windows(cn.len()).any(|w| w == cn),
        "subject CN=portcullis-gateway"
    );
    assert_eq!(seen[0].header("x-forwarded-user"), vec!["alice-sub-0001"]);
}

/// mTLS: the same app, and a gateway without a client certificate (or with one from a CA
/// the app does not trust): the app refuses the handshake, 502, nothing reached.
#[tokio::test]
async fn mtls_upstream_refuses_a_gateway_without_an_accepted_certificate() {
    let server_ca = ca("App CA");
    let client_ca = ca("Gateway client CA");
    let server = leaf(&server_ca, &["127.0.0.1"], "app", false);
    let app = tls_app(server_config(&server, H2_AND_H1, Some(&client_ca))).await;
    let files = Files::new();
    let env = gateway(
        &files,
        format!("https://127.0.0.1:{}", app.port),
        Some(&server_ca),
        None,
    )
    .await;
    assert_refused(&env, &app, "no client certificate").await;
    drop(env);

    let stranger = leaf(
        &ca("Someone else"),
        &["portcullis.internal"],
        "stranger",
        false,
    );
    let files = Files::new();
    let env = gateway(
        &files,
        format!("https://127.0.0.1:{}", app.port),
        Some(&server_ca),
        Some(&stranger),
    )
    .await;
    let before = app.refused.load(Ordering::SeqCst);
    assert_refused(&env, &app, "untrusted client certificate").await;
    assert!(app.refused.load(Ordering::SeqCst) > before);
}
