//! Test harness: a real OpenID Provider (`oidc-provider` from npm, tests/harness/op.mjs), a
//! recording upstream app, a gateway started in-process on a real loopback listener, and a
//! cookie-keeping HTTP client that signs in through the OP's login form.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use axum::extract::Request;
use portcullis_core::config::{RawSettings, validate};
use portcullis_core::time::{Clock, ManualClock};
use portcullis_gateway::RunningGateway;
use portcullis_store::Table;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};

pub const CLIENT_ID: &str = "portcullis";
pub const CLIENT_SECRET: &str = "a-long-test-secret-of-at-least-32-chars!!";
pub const JWT_SECRET: &str = "test-signing-secret-0123456789-abcdefghij";

fn harness_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/harness")
}

// ------------------------------------------------------------------------------------------
// The OpenID Provider
// ------------------------------------------------------------------------------------------

/// A running `oidc-provider` instance (killed on drop).
pub struct Op {
    child: Child,
    pub issuer: String,
    pub port: u16,
    http: reqwest::Client,
}

impl Op {
    /// Start the OP with these clients (see tests/harness/README.md for the schema).
    pub async fn start(config: Value) -> Op {
        let dir = harness_dir();
        assert!(
            dir.join("node_modules/oidc-provider").exists(),
            "the OP harness is not installed: run `npm ci --prefix tests/harness` (scripts/test does)"
        );
        let mut child = Command::new("node")
            .arg(dir.join("op.mjs"))
            .env("OP_CONFIG", config.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(if std::env::var("OP_LOG").is_ok() {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .kill_on_drop(true)
            .spawn()
            .expect("node must be installed to run the OP harness");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(std::time::Duration::from_secs(30), lines.next_line())
            .await
            .expect("OP did not start within 30 s")
            .unwrap()
            .expect("OP exited before printing its address");
        // Keep draining stdout: a closed pipe would kill the OP with EPIPE on its next write.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let v: Value = serde_json::from_str(&line).unwrap();
        let http = reqwest::Client::builder()
            .danger_accept_invalid_certs(true)
            .build()
            .unwrap();
        Op {
            child,
            issuer: v["issuer"].as_str().unwrap().to_string(),
            port: v["port"].as_u64().unwrap() as u16,
            http,
        }
    }

    pub fn discovery_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.issuer)
    }

    /// Set misbehaviour modes (`POST /__control/mode`).
    pub async fn mode(&self, modes: Value) {
        let r = self
            .http
            .post(format!("{}/__control/mode", self.issuer))
            .json(&modes)
            .send()
            .await
            .unwrap();
        assert!(
            r.status().is_success(),
            "mode rejected: {}",
            r.text().await.unwrap()
        );
    }

    /// A compact JWS over `header`/`payload` signed by the OP's real key for `alg` (its `kid`
    /// unless the header says otherwise), or by a key it does not publish (`other_key`).
    pub async fn sign(&self, alg: &str, header: Value, payload: Value, other_key: bool) -> String {
        let r = self
            .http
            .post(format!("{}/__control/sign", self.issuer))
            .json(&json!({"alg": alg, "header": header, "payload": payload,
                "key": if other_key { "other" } else { "real" }}))
            .send()
            .await
            .unwrap();
        let v: Value = r.json().await.unwrap();
        v["jws"]
            .as_str()
            .unwrap_or_else(|| panic!("sign failed: {v}"))
            .to_string()
    }

    /// Paths the OP received, in order.
    pub async fn log(&self) -> Vec<Value> {
        let r = self
            .http
            .get(format!("{}/__control/log", self.issuer))
            .send()
            .await
            .unwrap();
        r.json::<Vec<Value>>().await.unwrap()
    }

    /// The refresh-token grants the OP received, oldest first.
    pub async fn refresh_grants(&self) -> Vec<Value> {
        self.log()
            .await
            .into_iter()
            .filter(|e| e["path"] == "/token" && e["form"]["grant_type"] == "refresh_token")
            .collect()
    }

    pub async fn calls(&self, path: &str) -> usize {
        self.log()
            .await
            .iter()
            .filter(|e| e["path"] == path)
            .count()
    }

    /// Stop the OP process: the IdP is down from now on (connections are refused).
    pub async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }

    /// `POST /__control/<route>` with a JSON body; the JSON answer (asserts 200).
    pub async fn control(&self, route: &str, body: Value) -> Value {
        let r = self
            .http
            .post(format!("{}/__control/{route}", self.issuer))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let v: Value = r.json().await.unwrap();
        assert!(status.is_success(), "control {route} refused: {v}");
        v
    }

    pub async fn clear_log(&self) {
        self.http
            .post(format!("{}/__control/log/clear", self.issuer))
            .send()
            .await
            .unwrap();
    }
}

/// One OP client registration.
pub fn client(redirect_uri: &str, auth: &str, alg: &str) -> Value {
    // Registered as a deployment registers Portcullis: where the IdP may send the browser
    // after ending its session (RP-initiated logout).
    let origin = url::Url::parse(redirect_uri)
        .unwrap()
        .origin()
        .ascii_serialization();
    json!({
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "redirect_uris": [redirect_uri],
        "post_logout_redirect_uris": [format!("{origin}/.portcullis/signed-out")],
        "token_endpoint_auth_method": auth,
        "id_token_signed_response_alg": alg,
    })
}

// ------------------------------------------------------------------------------------------
// The upstream application
// ------------------------------------------------------------------------------------------

/// What the upstream received.
#[derive(Clone, Debug)]
pub struct Received {
    pub method: String,
    pub uri: String,
    pub headers: Vec<(String, String)>,
    pub body_len: usize,
}

impl Received {
    pub fn header(&self, name: &str) -> Vec<String> {
        self.headers
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }
    pub fn one(&self, name: &str) -> Option<String> {
        let v = self.header(name);
        assert!(v.len() <= 1, "{name} sent {} times: {v:?}", v.len());
        v.into_iter().next()
    }
}

/// A recording upstream: answers every request with 200 and `upstream saw <path>`;
/// `/big` answers 5 MiB, `/hop` answers with hop-by-hop headers.
pub struct Upstream {
    pub addr: SocketAddr,
    pub received: Arc<Mutex<Vec<Received>>>,
}

impl Upstream {
    pub async fn start() -> Upstream {
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let rec = received.clone();
        let app = axum::Router::new().fallback(move |req: Request| {
            let rec = rec.clone();
            async move {
                let (parts, body) = req.into_parts();
                let bytes = axum::body::to_bytes(body, usize::MAX)
                    .await
                    .unwrap_or_default();
                let path = parts.uri.path().to_string();
                rec.lock().unwrap().push(Received {
                    method: parts.method.to_string(),
                    uri: parts.uri.to_string(),
                    headers: parts
                        .headers
                        .iter()
                        .map(|(k, v)| {
                            (
                                k.as_str().to_string(),
                                String::from_utf8_lossy(v.as_bytes()).into_owned(),
                            )
                        })
                        .collect(),
                    body_len: bytes.len(),
                });
                match path.as_str() {
                    "/big" => axum::response::Response::new(axum::body::Body::from(vec![
                        b'x';
                        5 * 1024
                            * 1024
                    ])),
                    "/hop" => axum::response::Response::builder()
                        .header("connection", "x-internal")
                        .header("x-internal", "secret")
                        .header("keep-alive", "timeout=5")
                        .header("x-app", "kept")
                        .body(axum::body::Body::from("hop"))
                        .unwrap(),
                    _ => axum::response::Response::new(axum::body::Body::from(format!(
                        "upstream saw {path}"
                    ))),
                }
            }
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Upstream { addr, received }
    }

    pub fn requests(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.received.lock().unwrap().len()
    }
}

// ------------------------------------------------------------------------------------------
// The gateway
// ------------------------------------------------------------------------------------------

/// OP + upstream + gateway, wired together.
pub struct TestEnv {
    pub op: Op,
    pub upstream: Upstream,
    pub gw: RunningGateway,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    _dir: TempDir,
}

/// Adjusts the gateway's raw settings before validation (the OP is already running).
pub type Tweak = Box<dyn FnOnce(&mut RawSettings, &Op) + Send>;

/// Seed 000's manual configuration: only the three endpoints of `op`, no discovery URL
/// (the issuer and JWKS are found or configured separately).
pub fn manual_endpoints(raw: &mut RawSettings, op: &Op) {
    raw.discovery_url = None;
    raw.authorization_endpoint = Some(format!("{}/auth", op.issuer));
    raw.token_endpoint = Some(format!("{}/token", op.issuer));
    raw.userinfo_endpoint = Some(format!("{}/me", op.issuer));
}

/// Options for [`TestEnv::start_with`].
pub struct Options {
    pub auth_method: &'static str,
    pub alg: &'static str,
    /// Path of the redirect URI (seed 001 uses `/loginCallback`).
    pub callback_path: &'static str,
    /// Adjust the raw settings before validation.
    pub tweak: Tweak,
    pub op_extra: Value,
    /// The gateway's clock; tests that move time keep a handle (default: a manual clock at
    /// the current time, so nothing moves unless a test says so... except real time does not
    /// matter to the OP, which keeps its own clock).
    pub clock: Option<Arc<ManualClock>>,
    /// A PostgreSQL URL instead of the fresh SQLite file.
    pub database_url: Option<String>,
    /// Serve on this listener instead of a fresh one.
    pub listener: Option<TcpListener>,
    /// The public base URL (and redirect URI origin), when it is not this gateway's own
    /// address (replicas behind one name).
    pub public_base: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            auth_method: "client_secret_post",
            alg: "RS256",
            callback_path: "/api/callback",
            tweak: Box::new(|_, _| {}),
            op_extra: json!({}),
            clock: None,
            database_url: None,
            listener: None,
            public_base: None,
        }
    }
}

pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        let mut b = [0u8; 8];
        getrandom_fill(&mut b);
        let p = std::env::temp_dir().join(format!("portcullis-test-{}", hex(&b)));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn getrandom_fill(b: &mut [u8]) {
    let t = portcullis_core::oidc::pkce::random_token().unwrap();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    for (i, x) in b.iter_mut().enumerate() {
        *x = t.as_bytes()[i] ^ (nanos >> (i * 8)) as u8;
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The gateway settings every test starts from: our OP client, the upstream, a fresh SQLite
/// file, plain-http IdP allowed (the test OP is http unless a test gives it TLS).
pub fn settings(
    redirect: &str,
    discovery: &str,
    auth_method: &str,
    alg: &str,
    upstream: &Upstream,
    dir: &TempDir,
) -> RawSettings {
    RawSettings {
        discovery_url: Some(discovery.to_string()),
        redirect_url: Some(redirect.to_string()),
        client_id: Some(CLIENT_ID.into()),
        client_secret: Some(CLIENT_SECRET.into()),
        token_endpoint_auth_method: Some(auth_method.into()),
        jws_algorithms: Some(vec![alg.into()]),
        allow_insecure_http: Some("true".into()),
        jwt_signing_secret: Some(JWT_SECRET.into()),
        upstream: Some(format!("http://{}", upstream.addr)),
        database_url: Some(format!("sqlite://{}", dir.0.join("p.db").display())),
        // Every test client is 127.0.0.1; tests of the limit set it back.
        login_starts_per_minute: Some("10000".into()),
        scopes: Some(vec![
            "openid".into(),
            "email".into(),
            "profile".into(),
            "groups".into(),
        ]),
        ..Default::default()
    }
}

impl TestEnv {
    pub async fn start() -> TestEnv {
        Self::start_with(Options::default()).await
    }

    pub async fn start_with(mut o: Options) -> TestEnv {
        let listener = match o.listener.take() {
            Some(l) => l,
            None => TcpListener::bind("127.0.0.1:0").await.unwrap(),
        };
        let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let public = o.public_base.clone().unwrap_or_else(|| base.clone());
        let redirect = format!("{public}{}", o.callback_path);
        let mut op_cfg = json!({"clients": [client(&redirect, o.auth_method, o.alg)]});
        if let (Some(dst), Some(src)) = (op_cfg.as_object_mut(), o.op_extra.as_object()) {
            for (k, v) in src {
                dst.insert(k.clone(), v.clone());
            }
        }
        let op = Op::start(op_cfg).await;
        let upstream = Upstream::start().await;
        let dir = TempDir::new();
        let mut raw = settings(
            &redirect,
            &op.discovery_url(),
            o.auth_method,
            o.alg,
            &upstream,
            &dir,
        );
        if let Some(db) = &o.database_url {
            raw.database_url = Some(db.clone());
        }
        (o.tweak)(&mut raw, &op);
        let config = validate(&raw).unwrap_or_else(|p| panic!("test config invalid: {p:?}"));
        let clock: Arc<dyn Clock> = match &o.clock {
            Some(c) => c.clone(),
            None => Arc::new(portcullis_core::time::SystemClock),
        };
        let gw = portcullis_gateway::start_with_clock(config, listener, clock)
            .await
            .unwrap();
        let env = TestEnv {
            op,
            upstream,
            gw,
            base,
            _dir: dir,
        };
        env.wait_ready().await;
        env
    }

    /// Wait until `/readyz` answers 200 (the IdP loaded).
    pub async fn wait_ready(&self) {
        wait_ready_at(&self.base).await;
    }

    pub fn store(&self) -> &portcullis_store::Store {
        &self.gw.state.store
    }

    pub async fn users(&self) -> i64 {
        self.store().count(Table::Users).await.unwrap()
    }

    pub async fn sessions(&self) -> i64 {
        self.store().count(Table::Sessions).await.unwrap()
    }

    pub async fn login_txs(&self) -> i64 {
        self.store().count(Table::LoginTx).await.unwrap()
    }

    /// Audit events whose action starts with `prefix`, newest first; waits up to 2 s for at
    /// least `at_least` of them (they are written in the background).
    pub async fn audit(&self, prefix: &str, at_least: usize) -> Vec<portcullis_store::AuditEvent> {
        let q = portcullis_store::AuditQuery {
            action_prefix: Some(prefix.to_string()),
            limit: 500,
            ..Default::default()
        };
        let t0 = std::time::Instant::now();
        loop {
            let got: Vec<_> = self
                .store()
                .audit
                .audit_events(&q)
                .await
                .unwrap()
                .into_iter()
                .map(|(_, e)| e)
                .collect();
            if got.len() >= at_least || t0.elapsed() > std::time::Duration::from_secs(2) {
                return got;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// NS + NP: nobody signed in, nothing stored, upstream untouched.
    pub async fn assert_nothing_stored(&self) {
        assert_eq!(self.users().await, 0, "no user row may be created");
        assert_eq!(self.sessions().await, 0, "no session may be created");
        assert_eq!(self.upstream.count(), 0, "the upstream must not be reached");
    }
}

// ------------------------------------------------------------------------------------------
// A cookie-keeping client
// ------------------------------------------------------------------------------------------

/// One response, with the `Set-Cookie` headers kept for assertions.
pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
    pub url: String,
}

impl Resp {
    pub fn location(&self) -> Option<String> {
        self.headers
            .get("location")
            .map(|v| v.to_str().unwrap().to_string())
    }
    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect()
    }
    /// Whether a session cookie with a value (not a deletion) was set.
    pub fn sets_session(&self) -> bool {
        self.set_cookies()
            .iter()
            .any(|c| c.starts_with("__Host-session=") && !c.contains("Max-Age=0"))
    }
    pub fn header(&self, n: &str) -> Option<String> {
        self.headers.get(n).map(|v| v.to_str().unwrap().to_string())
    }
}

/// Cookies per `host:port`, in arrival order.
type Jar = HashMap<String, Vec<(String, String)>>;

// ------------------------------------------------------------------------------------------
// DPoP (tier 3), as the browser client does it
// ------------------------------------------------------------------------------------------

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A browser's P-256 key, signing DPoP proofs (RFC 9449 §4.2) the way `client.js` does.
pub struct DpopKey {
    pair: aws_lc_rs::signature::EcdsaKeyPair,
    /// The public JWK (`kty`, `crv`, `x`, `y`).
    pub jwk: Value,
}

impl Default for DpopKey {
    fn default() -> Self {
        Self::new()
    }
}

impl DpopKey {
    pub fn new() -> DpopKey {
        use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        let public = pair.public_key().as_ref().to_vec(); // 0x04 ‖ x ‖ y
        let jwk = json!({"kty": "EC", "crv": "P-256", "x": b64(&public[1..33]), "y": b64(&public[33..65])});
        DpopKey { pair, jwk }
    }

    /// RFC 7638 thumbprint (the session's `cnf.jkt`).
    pub fn thumbprint(&self) -> String {
        let j = &self.jwk;
        let canonical = format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            j["x"].as_str().unwrap(),
            j["y"].as_str().unwrap()
        );
        b64(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, canonical.as_bytes()).as_ref())
    }

    /// Sign any header and claims (tests of malformed proofs change them).
    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let sig = self.pair.sign(&rng, input.as_bytes()).unwrap();
        format!("{input}.{}", b64(sig.as_ref()))
    }

    /// The standard header: `typ`, `alg` ES256, this key's public JWK.
    pub fn header(&self) -> Value {
        json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk})
    }

    /// A fresh proof for `method` `url` (query dropped) at `iat`.
    pub fn proof(&self, method: &str, url: &str, iat: i64, nonce: Option<&str>) -> String {
        let mut claims =
            json!({"jti": b64(&rand_bytes()), "htm": method, "htu": htu(url), "iat": iat});
        if let Some(n) = nonce {
            claims["nonce"] = json!(n);
        }
        self.sign(&self.header(), &claims)
    }
}

fn rand_bytes() -> [u8; 24] {
    let mut b = [0u8; 24];
    aws_lc_rs::rand::fill(&mut b).unwrap();
    b
}

/// `scheme://host[:port]/path` of `url`: a proof's `htu`.
pub fn htu(url: &str) -> String {
    let mut u = url::Url::parse(url).unwrap();
    u.set_query(None);
    u.set_fragment(None);
    u.to_string()
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A browser-like client: keeps cookies per host:port, follows nothing by itself.
#[derive(Clone)]
pub struct Browser {
    http: reqwest::Client,
    jar: Arc<Mutex<Jar>>,
    /// The browser's DPoP key (as `client.js` keeps in IndexedDB); `None` for a client that
    /// has none.
    pub dpop: Option<Arc<DpopKey>>,
    /// Server clock minus ours, learnt from `Date` as `client.js` does (tests inject clocks).
    offset: Arc<Mutex<i64>>,
    nonce: Arc<Mutex<Option<String>>>,
    /// The public origin proofs name in `htu`, when this browser talks to a replica by its own
    /// address (behind a load balancer both would be the public name).
    htu_origin: Arc<Mutex<Option<String>>>,
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

impl Browser {
    pub fn new() -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .danger_accept_invalid_certs(true)
                .build()
                .unwrap(),
            jar: Arc::default(),
            dpop: Some(Arc::new(DpopKey::new())),
            offset: Arc::default(),
            nonce: Arc::default(),
            htu_origin: Arc::default(),
        }
    }

    /// Another browser profile holding the same key (a second tab of the same browser).
    pub fn with_same_key(&self) -> Browser {
        Browser {
            dpop: self.dpop.clone(),
            ..Browser::new()
        }
    }

    /// Proofs name `origin` in `htu` (replicas behind one public name).
    pub fn set_htu_origin(&self, origin: &str) {
        *self.htu_origin.lock().unwrap() = Some(origin.to_string());
    }

    /// A client without a DPoP key (curl, a script, an attacker with stolen cookies).
    pub fn without_dpop() -> Browser {
        Browser {
            dpop: None,
            ..Browser::new()
        }
    }

    /// Now, by the server's clock as last seen in a `Date` header.
    pub fn server_now(&self) -> i64 {
        unix_now() + *self.offset.lock().unwrap()
    }

    /// A fresh proof from this browser's key for `method` `url`, as `client.js` makes it.
    pub fn proof(&self, method: &str, url: &str) -> String {
        let nonce = self.nonce.lock().unwrap().clone();
        let public = self.htu_origin.lock().unwrap().clone();
        let url = match public {
            Some(origin) => {
                let u = url::Url::parse(url).unwrap();
                format!("{origin}{}", u.path())
            }
            None => url.to_string(),
        };
        let url = url.as_str();
        self.dpop
            .as_ref()
            .expect("this browser has a DPoP key")
            .proof(method, url, self.server_now(), nonce.as_deref())
    }

    fn learn(&self, headers: &reqwest::header::HeaderMap) {
        if let Some(d) = headers.get("date").and_then(|d| d.to_str().ok())
            && let Ok(t) = httpdate::parse_http_date(d)
        {
            let server = t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
            *self.offset.lock().unwrap() = server - unix_now();
        }
        if let Some(n) = headers.get("dpop-nonce").and_then(|d| d.to_str().ok()) {
            *self.nonce.lock().unwrap() = Some(n.to_string());
        }
    }

    fn key(url: &url::Url) -> String {
        format!(
            "{}:{}",
            url.host_str().unwrap_or(""),
            url.port_or_known_default().unwrap_or(0)
        )
    }

    pub fn cookie(&self, base: &str, name: &str) -> Option<String> {
        let u = url::Url::parse(base).unwrap();
        self.jar
            .lock()
            .unwrap()
            .get(&Self::key(&u))?
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }

    pub fn set_cookie(&self, base: &str, name: &str, value: &str) {
        let u = url::Url::parse(base).unwrap();
        let mut jar = self.jar.lock().unwrap();
        let e = jar.entry(Self::key(&u)).or_default();
        e.retain(|(k, _)| k != name);
        e.push((name.into(), value.into()));
    }

    /// A hand-made `Cookie` header for this browser's session at `base`: the JWT, its
    /// fingerprint and its CSRF cookie (a session needs all three).
    pub fn session_cookies(&self, base: &str) -> String {
        let c = |n: &str| {
            self.cookie(base, n)
                .unwrap_or_else(|| panic!("signed in: the browser holds {n}"))
        };
        format!(
            "__Host-session={}; __Host-fp={}; csrf_token={}",
            c("__Host-session"),
            c("__Host-fp"),
            c("csrf_token")
        )
    }

    /// The CSRF token an unsafe request echoes in `X-CSRF-Token` (R-CSRF-1).
    pub fn csrf_token(&self, base: &str) -> String {
        self.cookie(base, "csrf_token")
            .expect("signed in: the browser holds the csrf cookie")
    }

    /// Copy a cookie from one address to another (two replicas behind one name).
    pub fn share_cookie(&self, from: &str, to: &str, name: &str) {
        let v = self
            .cookie(from, name)
            .unwrap_or_else(|| panic!("no {name} at {from}"));
        self.set_cookie(to, name, &v);
    }

    /// Copy the session (its cookie, the fingerprint and CSRF cookies) from one address to
    /// another: what a browser sends to either of two replicas behind one name.
    pub fn share_session(&self, from: &str, to: &str) {
        for name in ["__Host-session", "__Host-fp", "csrf_token"] {
            self.share_cookie(from, to, name);
        }
    }

    /// `GET url` as the browser client does it (proof, asking for JSON): the status and the
    /// body (`Null` when it is not JSON).
    pub async fn get_json(&self, url: &str) -> (u16, Value) {
        let r = self.get_with(url, &[("accept", "application/json")]).await;
        (
            r.status,
            serde_json::from_str(&r.body).unwrap_or(Value::Null),
        )
    }

    /// The status `GET base/api/session` answers for this browser's session.
    pub async fn session_status(&self, base: &str) -> u16 {
        self.get_with(
            &format!("{base}/api/session"),
            &[("accept", "application/json")],
        )
        .await
        .status
    }

    /// Poll until `base` answers `want` for this browser's session, for at most `limit`;
    /// returns how long it took.
    pub async fn session_status_within(
        &self,
        base: &str,
        want: u16,
        limit: std::time::Duration,
    ) -> std::time::Duration {
        let t0 = std::time::Instant::now();
        loop {
            if self.session_status(base).await == want {
                return t0.elapsed();
            }
            assert!(
                t0.elapsed() < limit,
                "{base} did not answer {want} within {limit:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    pub fn clear_cookie(&self, base: &str, name: &str) {
        let u = url::Url::parse(base).unwrap();
        if let Some(e) = self.jar.lock().unwrap().get_mut(&Self::key(&u)) {
            e.retain(|(k, _)| k != name);
        }
    }

    fn cookie_header(&self, url: &url::Url) -> Option<String> {
        let jar = self.jar.lock().unwrap();
        let c = jar.get(&Self::key(url))?;
        (!c.is_empty()).then(|| {
            c.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }

    fn store(&self, url: &url::Url, resp: &reqwest::Response) {
        let mut jar = self.jar.lock().unwrap();
        let e = jar.entry(Self::key(url)).or_default();
        for sc in resp.headers().get_all("set-cookie") {
            let s = sc.to_str().unwrap();
            let first = s.split(';').next().unwrap();
            let Some((k, v)) = first.split_once('=') else {
                continue;
            };
            let (k, v) = (k.trim().to_string(), v.trim().to_string());
            e.retain(|(n, _)| n != &k);
            let deleted = s.to_ascii_lowercase().contains("max-age=0") || v.is_empty();
            if !deleted {
                e.push((k, v));
            }
        }
    }

    pub async fn send(&self, req: reqwest::RequestBuilder, url: &str) -> Resp {
        let r = self.send_once(req, url).await;
        // The sign-in page: run what its script does (tests/harness/browser.mjs runs the real
        // one in Chromium): POST /api/login with a proof, then "navigate" to the IdP, shown
        // here as the 302 a DPoP-less sign-in answers.
        if r.status == 200
            && r.body.contains("src=\"/.portcullis/sign-in.js\"")
            && self.dpop.is_some()
        {
            let mut login = url::Url::parse(url).unwrap();
            login.set_path("/api/login");
            let started = self
                .send_once(
                    self.http
                        .post(login.as_str())
                        .header("accept", "application/json"),
                    login.as_str(),
                )
                .await;
            if started.status != 200 {
                return started;
            }
            let v: Value = serde_json::from_str(&started.body).unwrap();
            let mut headers = started.headers.clone();
            headers.insert(
                "location",
                v["authorization_url"].as_str().unwrap().parse().unwrap(),
            );
            return Resp {
                status: 302,
                headers,
                url: started.url,
                body: String::new(),
            };
        }
        r
    }

    async fn send_once(&self, req: reqwest::RequestBuilder, url: &str) -> Resp {
        let u = url::Url::parse(url).unwrap();
        let mut req = req;
        if let Some(c) = self.cookie_header(&u) {
            req = req.header("cookie", c);
        }
        // As the browser client does for the app: echo the readable CSRF cookie (R-CSRF-1).
        // Tests of CSRF refusals build their requests without it.
        if let Some(t) = self.cookie(u.as_str(), "csrf_token") {
            req = req.header("x-csrf-token", t);
        }
        let request = req.build().unwrap();
        // As client.js does for API paths: a fresh proof, and one retry when the server asks
        // for a nonce or our clock was off.
        let proofs = self.dpop.is_some() && u.path().starts_with("/api/");
        let mut resp = self.execute(&request, proofs).await;
        if proofs && resp.status() == 401 {
            let www = resp
                .headers()
                .get("www-authenticate")
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default();
            if www.starts_with("DPoP") {
                self.learn(resp.headers());
                resp = self.execute(&request, true).await;
            }
        }
        self.store(&u, &resp);
        if proofs {
            self.learn(resp.headers());
        }
        Resp {
            status: resp.status().as_u16(),
            headers: resp.headers().clone(),
            url: url.to_string(),
            body: resp.text().await.unwrap_or_default(),
        }
    }

    async fn execute(&self, request: &reqwest::Request, proof: bool) -> reqwest::Response {
        let mut request = request
            .try_clone()
            .expect("a request body that can be resent");
        if proof {
            let p = self.proof(request.method().as_str(), request.url().as_str());
            request.headers_mut().insert("dpop", p.parse().unwrap());
        }
        self.http.execute(request).await.unwrap()
    }

    pub async fn get(&self, url: &str) -> Resp {
        self.send(self.http.get(url), url).await
    }

    pub async fn get_with(&self, url: &str, headers: &[(&str, &str)]) -> Resp {
        let mut r = self.http.get(url);
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        self.send(r, url).await
    }

    pub async fn post_form(&self, url: &str, form: &[(&str, &str)]) -> Resp {
        self.send(self.http.post(url).form(form), url).await
    }

    pub fn raw(&self) -> &reqwest::Client {
        &self.http
    }

    /// Follow redirects from `url` until a response is not a redirect, or until the next hop
    /// would go to `stop_at_prefix` (returned as the last `Resp`'s location).
    pub async fn follow(&self, url: &str, stop_at_prefix: Option<&str>) -> (Resp, Vec<String>) {
        let mut hops = vec![url.to_string()];
        let mut r = self.get(url).await;
        for _ in 0..20 {
            let Some(loc) = r.location() else { break };
            if !(300..400).contains(&r.status) {
                break;
            }
            let next = url::Url::parse(&r.url)
                .unwrap()
                .join(&loc)
                .unwrap()
                .to_string();
            if stop_at_prefix.is_some_and(|p| next.starts_with(p)) {
                break;
            }
            hops.push(next.clone());
            r = self.get(&next).await;
        }
        (r, hops)
    }

    /// Drive the OP from an authorization URL to the redirect back to the gateway; returns
    /// the callback URL (not yet requested), so tests can tamper with it.
    pub async fn authorize_at_op(
        &self,
        authorize_url: &str,
        gw_base: &str,
        user: &str,
        password: &str,
    ) -> String {
        let (form_page, _) = self.follow(authorize_url, Some(gw_base)).await;
        if let Some(loc) = form_page.location() {
            // Already signed in at the OP: it redirected straight back.
            return url::Url::parse(&form_page.url)
                .unwrap()
                .join(&loc)
                .unwrap()
                .to_string();
        }
        assert_eq!(
            form_page.status, 200,
            "expected the OP login form, got {} {}",
            form_page.status, form_page.body
        );
        let action = form_page
            .body
            .split("action=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .expect("login form action");
        let post_url = url::Url::parse(&form_page.url)
            .unwrap()
            .join(action)
            .unwrap()
            .to_string();
        let mut r = self
            .post_form(&post_url, &[("login", user), ("password", password)])
            .await;
        for _ in 0..20 {
            let loc = r
                .location()
                .unwrap_or_else(|| panic!("OP did not redirect: {} {}", r.status, r.body));
            let next = url::Url::parse(&r.url)
                .unwrap()
                .join(&loc)
                .unwrap()
                .to_string();
            if next.starts_with(gw_base) {
                return next;
            }
            r = self.get(&next).await;
        }
        panic!("too many redirects at the OP");
    }

    /// `GET gw/path` (no session) → sign-in redirect → OP → callback URL (not requested).
    pub async fn start_login(
        &self,
        env: &TestEnv,
        path: &str,
        user: &str,
        password: &str,
    ) -> String {
        let r = self.get(&format!("{}{path}", env.base)).await;
        assert_eq!(
            r.status, 302,
            "protected page must redirect to sign in: {}",
            r.body
        );
        let login = url::Url::parse(&env.base)
            .unwrap()
            .join(&r.location().unwrap())
            .unwrap()
            .to_string();
        let r = self.get(&login).await;
        assert_eq!(
            r.status, 302,
            "/api/login must redirect to the IdP: {}",
            r.body
        );
        let authorize = r.location().unwrap();
        assert!(authorize.starts_with(&env.op.issuer), "{authorize}");
        self.authorize_at_op(&authorize, &env.base, user, password)
            .await
    }

    /// Full sign-in; returns the callback response (302 back to `path`).
    pub async fn sign_in(&self, env: &TestEnv, path: &str, user: &str, password: &str) -> Resp {
        let cb = self.start_login(env, path, user, password).await;
        let r = self.get(&cb).await;
        assert_eq!(
            r.status, 302,
            "callback must succeed: {} {}",
            r.status, r.body
        );
        assert!(r.sets_session());
        r
    }
}

/// Alice's password at the test OP.
pub const ALICE: (&str, &str) = ("alice", "alice-pass");
pub const BOB: (&str, &str) = ("bob", "bob-pass");
pub const MALLORY: (&str, &str) = ("mallory", "mallory-pass");

// ------------------------------------------------------------------------------------------
// A real browser
// ------------------------------------------------------------------------------------------

/// Run tests/harness/browser.mjs (headless Debian Chromium through playwright-core) with
/// `cfg`; returns what the browser saw. `None` only when PORTCULLIS_SKIP_BROWSER_TESTS=1 is set
/// on a machine without Chromium; otherwise a missing Chromium fails the test.
pub async fn run_browser(cfg: Value) -> Option<Value> {
    run_browser_script("browser.mjs", cfg, 90).await
}

/// Run the browser script `script` of tests/harness with `cfg`, allowing it `timeout_secs`;
/// as [`run_browser`] otherwise (each page's test has its own script).
pub async fn run_browser_script(script: &str, cfg: Value, timeout_secs: u64) -> Option<Value> {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !std::path::Path::new(&chromium).exists() {
        if std::env::var("PORTCULLIS_SKIP_BROWSER_TESTS").is_ok_and(|v| v == "1") {
            eprintln!("skipping a browser test: no Chromium at {chromium}");
            return None;
        }
        panic!(
            "Chromium not found at {chromium}: install Debian's `chromium` (scripts/test does as root) or set CHROMIUM"
        );
    }
    let out = Command::new("node")
        .arg(harness_dir().join(script))
        .arg(cfg.to_string())
        .env("CHROMIUM", &chromium)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(std::time::Duration::from_secs(timeout_secs), out)
        .await
        .unwrap_or_else(|_| panic!("the browser run took over {timeout_secs} s"))
        .expect("node must be installed");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or_else(|| {
        panic!(
            "{script} printed nothing; stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let v: Value = serde_json::from_str(line).unwrap();
    assert!(
        v.get("error").is_none(),
        "the browser run failed: {}",
        v["error"]
    );
    Some(v)
}

// ------------------------------------------------------------------------------------------
// Hardening helpers (appended)
// ------------------------------------------------------------------------------------------

/// `POST /api/logout` as the signed-in browser `b` (same-origin, as the sign-out page does).
pub async fn post_logout(b: &Browser, env: &TestEnv) -> Resp {
    let url = format!("{}/api/logout", env.base);
    b.send(
        b.raw()
            .post(&url)
            .header("origin", env.base.as_str())
            .header("accept", "application/json"),
        &url,
    )
    .await
}

// ------------------------------------------------------------------------------------------
// API tokens (appended)
// ------------------------------------------------------------------------------------------

/// `POST /api/tokens` as the signed-in browser `b` (CSRF header and DPoP proof as the account
/// page sends them); `days` `None` asks for a token that does not expire.
pub async fn create_token(b: &Browser, env: &TestEnv, name: &str, days: Option<i64>) -> Resp {
    let url = format!("{}/api/tokens", env.base);
    b.send(
        b.raw()
            .post(&url)
            .header("accept", "application/json")
            .json(&json!({"name": name, "expires_in_days": days})),
        &url,
    )
    .await
}

/// Create a token (201 expected) and return its plaintext and id.
pub async fn new_token(b: &Browser, env: &TestEnv, name: &str) -> (String, String) {
    let r = create_token(b, env, name, Some(30)).await;
    assert_eq!(r.status, 201, "token creation: {}", r.body);
    let v: Value = serde_json::from_str(&r.body).unwrap();
    (
        v["token"].as_str().unwrap().to_string(),
        v["id"].as_str().unwrap().to_string(),
    )
}

/// A plain HTTP client (no cookies, no proofs) whose connections come from `local` (any
/// 127.0.0.0/8 address reaches the loopback listener): a program using a token.
pub fn program(local: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .local_address(local.parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap()
}

/// Send `req` and keep the whole answer.
pub async fn answer(req: reqwest::RequestBuilder) -> Resp {
    let r = req.send().await.unwrap();
    let url = r.url().to_string();
    Resp {
        status: r.status().as_u16(),
        headers: r.headers().clone(),
        url,
        body: r.text().await.unwrap_or_default(),
    }
}

// ------------------------------------------------------------------------------------------
// Replicas and backends (appended)
// ------------------------------------------------------------------------------------------

/// Wait until `base/readyz` answers 200 (the IdP loaded).
pub async fn wait_ready_at(base: &str) {
    let c = reqwest::Client::new();
    for _ in 0..600 {
        if let Ok(r) = c.get(format!("{base}/readyz")).send().await
            && r.status() == 200
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("gateway did not become ready");
}

/// Replica B: a second gateway at its own address on replica A's database, OP client and
/// upstream. A browser signed in at A carries its session over with
/// [`Browser::share_session`].
pub struct Replica {
    pub gw: RunningGateway,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    _dir: TempDir,
}

impl Replica {
    /// Start B on `db` (A's PostgreSQL database) with A's client settings, adjusted by `tweak`
    /// (B needs whatever A's own tweak configured), on `clock` (the system clock when `None`).
    /// B is ready when this returns.
    pub async fn start(
        a: &TestEnv,
        db: String,
        clock: Option<Arc<ManualClock>>,
        tweak: impl FnOnce(&mut RawSettings),
    ) -> Replica {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let dir = TempDir::new();
        let mut raw = settings(
            &format!("{}/api/callback", a.base),
            &a.op.discovery_url(),
            "client_secret_post",
            "RS256",
            &a.upstream,
            &dir,
        );
        raw.database_url = Some(db);
        tweak(&mut raw);
        let clock: Arc<dyn Clock> = match clock {
            Some(c) => c,
            None => Arc::new(portcullis_core::time::SystemClock),
        };
        let gw = portcullis_gateway::start_with_clock(validate(&raw).unwrap(), listener, clock)
            .await
            .unwrap();
        wait_ready_at(&base).await;
        Replica {
            gw,
            base,
            _dir: dir,
        }
    }
}

/// `both_backends!(name, |db| { … })`: the case runs as `name::sqlite` (`db` is `None`: the
/// environment's fresh SQLite file) and as `name::postgres` (`db` names a fresh database on
/// the test server), so every behaviour is shown on both stores.
#[allow(unused_macros)] // Most test files using `common` do not need it.
macro_rules! both_backends {
    ($name:ident, |$db:ident| $body:block) => {
        mod $name {
            use super::*;

            async fn case($db: Option<String>) $body

            #[tokio::test]
            async fn sqlite() {
                case(None).await;
            }

            #[tokio::test]
            async fn postgres() {
                case(Some(portcullis_store::testing::fresh_postgres_database().await)).await;
            }
        }
    };
}
#[allow(unused_imports)] // As above.
pub(crate) use both_backends;

// ------------------------------------------------------------------------------------------
// Faults (appended)
// ------------------------------------------------------------------------------------------

impl Op {
    /// The IdP comes back: stop this OP (if it still runs) and start another on the same port,
    /// so the same issuer, with `config` (its clients; with the same `keys_file` it has the
    /// same signing keys, without one new keys: a rotation).
    pub async fn restart(&mut self, mut config: Value) {
        self.kill().await;
        config["port"] = json!(self.port);
        let issuer = self.issuer.clone();
        *self = Op::start(config).await;
        assert_eq!(self.issuer, issuer, "the OP came back under another issuer");
    }

    /// How many bytes of its faulty answers (`paths` mode) the OP got rid of, per request to
    /// `path`, in order: a client that stops reading early leaves the rest unsent.
    pub async fn sent_bytes(&self, path: &str) -> Vec<u64> {
        self.log()
            .await
            .iter()
            .filter(|e| e["path"] == path)
            .filter_map(|e| e["answered"]["sent"].as_u64())
            .collect()
    }
}

/// The OP configuration `TestEnv` starts with (our client, default options), for restarting
/// the OP of `env`; `keys_file` keeps its signing keys across the restart.
pub fn op_config(env: &TestEnv, keys_file: Option<&std::path::Path>) -> Value {
    let mut c = json!({"clients": [client(
        &format!("{}/api/callback", env.base),
        "client_secret_post",
        "RS256",
    )]});
    if let Some(k) = keys_file {
        c["keys_file"] = json!(k);
    }
    c
}
