//! The `portcullis` binary: help text, configuration errors (one line per problem, exit 2,
//! R-CFG), `serve --check` on the seed fixtures (environment over file), and a `demo` smoke
//! test that signs in through the built-in development IdP.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value;

// The gateway's harness, for its DPoP key (the demo binds sessions like any deployment).
#[path = "../../gateway/tests/common/mod.rs"]
mod common;

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");
const GOOD_SECRET: &str = "cli-test-signing-secret-0123456789-abcdefghij";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/seeds")
        .join(name)
}

/// `portcullis` with an empty environment (plus PATH/HOME) and the given variables.
fn cmd(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut c = Command::new(BIN);
    c.env_clear();
    for k in ["PATH", "HOME"] {
        if let Ok(v) = std::env::var(k) {
            c.env(k, v);
        }
    }
    c.env("RUST_LOG", "warn");
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Run to completion; a command that does not exit within 30 s (e.g. a `serve` that started
/// instead of refusing) is killed and fails the test rather than hanging it.
fn run(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut child = cmd(args, env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = Vec::new();
            let _ = pipe.read_to_end(&mut s);
            String::from_utf8_lossy(&s).into_owned()
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`portcullis {}` did not exit within 30 s", args.join(" "));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let r = Run {
        code: status.code(),
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    };
    assert!(
        !r.stderr.contains("panicked"),
        "the binary panicked: {}",
        r.stderr
    );
    r
}

fn strs<'a>(v: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    v.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// The `  - ` problem lines of a refused configuration.
fn problems(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter_map(|l| l.strip_prefix("  - "))
        .collect()
}

struct Tmp(PathBuf);

impl Tmp {
    fn new(tag: &str) -> Tmp {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let p = std::env::temp_dir().join(format!(
            "portcullis-cli-{tag}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&p).unwrap();
        Tmp(p)
    }
    fn file(&self, name: &str, text: &str) -> String {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    }
}

impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn help_lists_commands_and_serve_mentions_the_config_file() {
    let r = run(&["--help"], &[]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    for (name, words) in [
        ("serve", "Run the gateway"),
        ("demo", "Everything on one machine"),
        ("dev-idp", "DEVELOPMENT identity provider"),
    ] {
        let line = r
            .stdout
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("--help does not list {name}:\n{}", r.stdout));
        assert!(line.contains(words), "{line}");
    }
    let r = run(&["serve", "--help"], &[]);
    assert_eq!(r.code, Some(0));
    assert!(r.stdout.contains("--config <CONFIG>"), "{}", r.stdout);
    assert!(r.stdout.contains("YAML configuration file"), "{}", r.stdout);
    assert!(r.stdout.contains("PORTCULLIS_CONFIG"), "{}", r.stdout);
    assert!(r.stdout.contains("--check"), "{}", r.stdout);
    let r = run(&["--version"], &[]);
    assert_eq!(r.code, Some(0));
    assert!(r.stdout.starts_with("portcullis "), "{}", r.stdout);
}

/// R-CFG-1/3, R-IDT-6: an invalid environment stops `serve` with exit code 2 and one line per
/// problem — all problems at once, no panic, nothing started.
#[test]
fn r_cfg_invalid_environment_exits_2_with_one_line_per_problem() {
    let r = run(
        &["serve"],
        &[
            ("JWT_SIGNING_SECRET", "too-short"),
            (
                "OIDC_DISCOVERY_URL",
                "http://idp.example.com/.well-known/openid-configuration",
            ),
            ("OIDC_JWS_ALGORITHM", "HS256"),
            ("OIDC_REDIRECT_URL", "https://app.example.com/api/callback"),
            ("PORTCULLIS_LISTEN", "127.0.0.1:0"),
        ],
    );
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(
        r.stderr.contains("the configuration has 5 problem(s)"),
        "{}",
        r.stderr
    );
    let p = problems(&r.stderr);
    assert_eq!(p.len(), 5, "{}", r.stderr);
    for (i, needle) in [
        "JWT_SIGNING_SECRET is 9 characters; it must be at least 32",
        "OIDC_CLIENT_ID (clientId) is required",
        "OIDC_CLIENT_SECRET (secret) is required",
        "OIDC_DISCOVERY_URL uses plain http",
        "jwsAlgorithm `HS256` is not supported",
    ]
    .iter()
    .enumerate()
    {
        assert!(
            p.iter().any(|l| l.contains(needle)),
            "problem {i} ({needle}) missing:\n{}",
            r.stderr
        );
    }
    assert!(r.stderr.contains("refusing to start"), "{}", r.stderr);
    assert!(!r.stderr.contains("too-short"), "secrets are not echoed");
    assert!(r.stdout.is_empty(), "{}", r.stdout);

    // Nothing at all: every required setting is named.
    let r = run(&["serve", "--check"], &[]);
    assert_eq!(r.code, Some(2));
    let p = problems(&r.stderr);
    for needle in [
        "JWT_SIGNING_SECRET is required",
        "OIDC_CLIENT_ID",
        "OIDC_CLIENT_SECRET",
        "no IdP endpoints",
        "OIDC_REDIRECT_URL",
    ] {
        assert!(p.iter().any(|l| l.contains(needle)), "{needle}: {p:?}");
    }
}

/// The seed fixtures load unchanged through `--config` and `PORTCULLIS_CONFIG`.
#[test]
fn check_accepts_the_seed_fixtures() {
    for name in [
        "seed000-values-discovery.yaml",
        "seed000-values-manual.yaml",
    ] {
        let path = fixture(name).display().to_string();
        let r = run(&["serve", "--check", "--config", &path], &[]);
        assert_eq!(r.code, Some(0), "{name}: {}", r.stderr);
        assert_eq!(r.stdout.trim(), "configuration OK", "{name}");
        let r = run(&["serve", "--check"], &[("PORTCULLIS_CONFIG", &path)]);
        assert_eq!(
            r.code,
            Some(0),
            "{name} via PORTCULLIS_CONFIG: {}",
            r.stderr
        );
        assert_eq!(r.stdout.trim(), "configuration OK");
    }

    // seed 001's file has no IdP URL, signing secret or redirect URL: the environment adds
    // them.
    let seed001 = fixture("seed001-authentication.yaml").display().to_string();
    let r = run(&["serve", "--check", "--config", &seed001], &[]);
    assert_eq!(r.code, Some(2), "incomplete on its own");
    let env = [
        (
            "OIDC_DISCOVERY_URL",
            "https://idp.example.com/.well-known/openid-configuration",
        ),
        ("JWT_SIGNING_SECRET", GOOD_SECRET),
        (
            "OIDC_REDIRECT_URL",
            "https://stackstate.example.com/loginCallback",
        ),
    ];
    let r = run(&["serve", "--check", "--config", &seed001], &env);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(r.stdout.trim(), "configuration OK");
}

/// The environment wins over the file, setting by setting.
#[test]
fn environment_overrides_the_file() {
    let seed001 = fixture("seed001-authentication.yaml").display().to_string();
    // The file says RS256; the environment's HS256 wins (and is refused).
    let r = run(
        &["serve", "--check", "--config", &seed001],
        &[
            (
                "OIDC_DISCOVERY_URL",
                "https://idp.example.com/.well-known/openid-configuration",
            ),
            ("JWT_SIGNING_SECRET", GOOD_SECRET),
            (
                "OIDC_REDIRECT_URL",
                "https://stackstate.example.com/loginCallback",
            ),
            ("OIDC_JWS_ALGORITHM", "HS256"),
        ],
    );
    assert_eq!(r.code, Some(2));
    assert_eq!(problems(&r.stderr).len(), 1, "{}", r.stderr);
    assert!(r.stderr.contains("`HS256`"), "{}", r.stderr);

    // A bad value in the file is repaired by the environment.
    let tmp = Tmp::new("env-over-file");
    let file = tmp.file(
        "values.yaml",
        "global:\n  dnsRecord: \"app.example.com\"\nsecrets:\n  oidc:\n    oidc_discovery_url: \"http://idp.example.com/.well-known/openid-configuration\"\n    oidc_client_id: \"id\"\n    oidc_client_secret: \"secret\"\n  auth:\n    jwt_signing_secret: \"short\"\n",
    );
    let r = run(&["serve", "--check", "--config", &file], &[]);
    assert_eq!(r.code, Some(2));
    assert_eq!(problems(&r.stderr).len(), 2, "{}", r.stderr);
    let r = run(
        &["serve", "--check", "--config", &file],
        &[
            ("JWT_SIGNING_SECRET", GOOD_SECRET),
            (
                "OIDC_DISCOVERY_URL",
                "https://idp.example.com/.well-known/openid-configuration",
            ),
        ],
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    // An empty variable counts as unset: the file's (bad) value stays.
    let r = run(
        &["serve", "--check", "--config", &file],
        &[
            ("JWT_SIGNING_SECRET", ""),
            (
                "OIDC_DISCOVERY_URL",
                "https://idp.example.com/.well-known/openid-configuration",
            ),
        ],
    );
    assert_eq!(r.code, Some(2));
    assert!(r.stderr.contains("JWT_SIGNING_SECRET is 5 characters"));
}

/// YAML mistakes are reported with their line, exit 2; a missing file is a clear error.
#[test]
fn bad_yaml_is_reported_with_its_line() {
    let tmp = Tmp::new("yaml");
    let cases = [
        (
            "unknown-key.yaml",
            "clientId: \"x\"\nsecret: \"y\"\ndiscoveryUrl: \"https://idp.example.com\"\n",
            "line 3",
            "discoveryUrl",
        ),
        (
            "syntax.yaml",
            "clientId: \"x\"\nsecret: \"y\"\nscope: [openid, email\njwsAlgorithm: RS256\n",
            "line 4",
            "",
        ),
        (
            "indent.yaml",
            "global:\n  dnsRecord: \"a.example.com\"\n authType: \"OIDC\"\n",
            "line 3",
            "",
        ),
        (
            "nested-unknown.yaml",
            "secrets:\n  oidc:\n    oidc_client_id: \"x\"\n    oidc_client_secrte: \"y\"\n",
            "line 4",
            "oidc_client_secrte",
        ),
    ];
    for (name, text, line, word) in cases {
        let path = tmp.file(name, text);
        let r = run(&["serve", "--check", "--config", &path], &[]);
        assert_eq!(r.code, Some(2), "{name}: {}", r.stderr);
        let p = problems(&r.stderr);
        assert_eq!(p.len(), 1, "{name}: {}", r.stderr);
        assert!(p[0].contains(&path), "{name}: names the file: {}", p[0]);
        assert!(p[0].contains(line), "{name}: {}", p[0]);
        assert!(p[0].contains(word), "{name}: {}", p[0]);
        assert!(r.stdout.is_empty());
    }

    let missing = tmp.0.join("does-not-exist.yaml").display().to_string();
    let r = run(&["serve", "--check", "--config", &missing], &[]);
    assert_eq!(r.code, Some(2));
    assert!(r.stderr.contains("cannot read"), "{}", r.stderr);
    assert!(r.stderr.contains(&missing), "{}", r.stderr);
    let r = run(&["serve", "--check"], &[("PORTCULLIS_CONFIG", &missing)]);
    assert_eq!(r.code, Some(2));
    assert!(r.stderr.contains("cannot read"), "{}", r.stderr);
}

/// Typos in OIDC_*/PORTCULLIS_* names are warned about; the CLI's own
/// PORTCULLIS_LOG_FORMAT (documented in the README) is not a typo.
#[test]
fn unknown_variables_are_warned_but_log_format_is_known() {
    let path = fixture("seed000-values-discovery.yaml")
        .display()
        .to_string();
    let r = run(
        &["serve", "--check", "--config", &path],
        &[("PORTCULLIS_LISTN", "0.0.0.0:1"), ("RUST_LOG", "info")],
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(
        r.stderr.contains("unknown setting PORTCULLIS_LISTN"),
        "{}",
        r.stderr
    );
    let r = run(
        &["serve", "--check", "--config", &path],
        &[("PORTCULLIS_LOG_FORMAT", "json"), ("RUST_LOG", "info")],
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(!r.stderr.contains("unknown setting"), "{}", r.stderr);
}

/// R-CFG-5: a custom CA file holding a private key is refused by `serve` (exit 2, before
/// listening) and by `serve --check`; a file with only the certificate passes the check.
#[test]
fn r_cfg_5_ca_file_with_private_key_is_refused() {
    let tmp = Tmp::new("ca");
    let cert = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ2E=\n-----END CERTIFICATE-----\n";
    let key = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgE=\n-----END PRIVATE KEY-----\n";
    let bad = tmp.file("bad-ca.pem", &format!("{cert}{key}"));
    let good = tmp.file("ca.pem", cert);
    let config = fixture("seed000-values-discovery.yaml")
        .display()
        .to_string();
    let db = format!("sqlite://{}", tmp.0.join("p.db").display());
    let ca_env = |ca: &str| -> Vec<(&'static str, String)> {
        vec![
            ("PORTCULLIS_CONFIG", config.clone()),
            ("PORTCULLIS_DATABASE_URL", db.clone()),
            ("PORTCULLIS_LISTEN", "127.0.0.1:0".into()),
            ("OIDC_SIGNER_PEM_URL", format!("file://{ca}")),
        ]
    };
    for args in [&["serve"][..], &["serve", "--check"][..]] {
        let r = run(args, &strs(&ca_env(&bad)));
        assert_eq!(r.code, Some(2), "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains("private key"), "{args:?}: {}", r.stderr);
        assert!(!r.stdout.contains("configuration OK"));
    }
    let r = run(&["serve", "--check"], &strs(&ca_env(&good)));
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    // Inline PEM with a key is a validation problem like any other.
    let r = run(
        &["serve", "--check"],
        &[
            ("PORTCULLIS_CONFIG", config.as_str()),
            ("OIDC_SIGNER_PEM_URL", &format!("{cert}{key}")),
        ],
    );
    assert_eq!(r.code, Some(2));
    assert_eq!(problems(&r.stderr).len(), 1, "{}", r.stderr);
    assert!(r.stderr.contains("private key"), "{}", r.stderr);
}

// ------------------------------------------------------------------------------------------
// `portcullis demo`
// ------------------------------------------------------------------------------------------

/// A background `portcullis` process (demo or serve), killed on drop, also when an assertion
/// fails. Its stderr goes to a file, as under a process supervisor (no terminal).
struct Background {
    child: Child,
    log_path: PathBuf,
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Background {
    fn spawn(mut command: Command, log_path: PathBuf) -> Background {
        let log = std::fs::File::create(&log_path).unwrap();
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        Background { child, log_path }
    }

    /// Everything written to stderr so far.
    fn log_bytes(&self) -> Vec<u8> {
        std::fs::read(&self.log_path).unwrap_or_default()
    }

    fn log(&self) -> String {
        String::from_utf8_lossy(&self.log_bytes()).into_owned()
    }

    /// Bounded polling of stderr until `done` holds (or fail after 30 s).
    fn wait_for_log(&self, what: &str, done: impl Fn(&str) -> bool) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let log = self.log();
            if done(&log) {
                return log;
            }
            if std::time::Instant::now() > deadline {
                panic!("waited 30 s for {what}; stderr:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

type Demo = Background;

struct DemoUrls {
    open: String,
    idp: String,
    /// Every line the demo printed up to and including the `Dev IdP:` line.
    banner: Vec<String>,
    /// The rest of the stdout lines, as they come.
    rest: std::sync::mpsc::Receiver<String>,
}

/// Start the demo (stderr to a file in `tmp`) and return it with its printed URLs.
fn start_demo(tmp: &Tmp, db: &str) -> (Demo, DemoUrls) {
    let mut command = cmd(&["demo", "--port", "0", "--database", db], &[]);
    command.env("RUST_LOG", "info");
    let mut demo = Background::spawn(command, tmp.0.join("demo-stderr.log"));
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let out = demo.child.stdout.take().unwrap();
    std::thread::spawn(move || {
        // Keep draining after the URLs are found: a closed pipe would break the demo's output.
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    let (mut open, mut idp, mut banner) = (None, None, Vec::new());
    while open.is_none() || idp.is_none() {
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("the demo printed no URLs:\n{}", demo.log()));
        let field = |prefix: &str| {
            line.trim()
                .strip_prefix(prefix)
                .map(|rest| rest.split_whitespace().next().unwrap_or("").to_string())
        };
        if let Some(u) = field("Open:") {
            open = Some(u);
        }
        if let Some(u) = field("Dev IdP:") {
            idp = Some(u);
        }
        banner.push(line);
    }
    let urls = DemoUrls {
        open: open.unwrap(),
        idp: idp.unwrap(),
        banner,
        rest: rx,
    };
    (demo, urls)
}

/// A tiny cookie-keeping client (cookies per host:port, no redirects followed).
struct Client {
    http: reqwest::Client,
    jar: Mutex<HashMap<String, Vec<(String, String)>>>,
    /// The browser key whose proofs go with `/api/` requests, as the browser client sends them.
    dpop: common::DpopKey,
}

struct Reply {
    status: u16,
    location: Option<String>,
    body: String,
    url: url::Url,
}

impl Reply {
    fn next(&self) -> String {
        self.url
            .join(self.location.as_deref().expect("a redirect"))
            .unwrap()
            .to_string()
    }
}

impl Client {
    fn new(gateway_port: u16) -> Client {
        Client {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .resolve(
                    "localhost",
                    std::net::SocketAddr::from(([127, 0, 0, 1], gateway_port)),
                )
                .build()
                .unwrap(),
            jar: Mutex::default(),
            dpop: common::DpopKey::new(),
        }
    }

    fn now() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    }

    fn key(u: &url::Url) -> String {
        format!(
            "{}:{}",
            u.host_str().unwrap(),
            u.port_or_known_default().unwrap()
        )
    }

    async fn send(&self, url: &str, form: Option<&[(&str, &str)]>) -> Reply {
        let r = self.send_once(url, form, None).await;
        // Portcullis's sign-in page: do what its script does (POST /api/login with a proof,
        // then go to the IdP), shown as the redirect it amounts to.
        if r.status == 200 && r.body.contains("src=\"/.portcullis/sign-in.js\"") {
            let started = self.send_once(url, None, Some("POST")).await;
            if started.status != 200 {
                return started;
            }
            let v: Value = serde_json::from_str(&started.body).unwrap();
            return Reply {
                status: 302,
                location: Some(v["authorization_url"].as_str().unwrap().to_string()),
                body: String::new(),
                url: started.url,
            };
        }
        r
    }

    async fn send_once(
        &self,
        url: &str,
        form: Option<&[(&str, &str)]>,
        method: Option<&str>,
    ) -> Reply {
        let u = url::Url::parse(url).unwrap();
        let mut req = match (form, method) {
            (Some(f), _) => self.http.post(url).form(f),
            (None, Some("POST")) => self.http.post(url).header("accept", "application/json"),
            (None, _) => self.http.get(url),
        };
        if u.path().starts_with("/api/") {
            let m = if form.is_some() || method.is_some() {
                "POST"
            } else {
                "GET"
            };
            req = req.header("dpop", self.dpop.proof(m, url, Self::now(), None));
        }
        let cookies = self
            .jar
            .lock()
            .unwrap()
            .get(&Self::key(&u))
            .map(|c| {
                c.iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .filter(|c| !c.is_empty());
        if let Some(c) = cookies {
            req = req.header("cookie", c);
        }
        let resp = req.send().await.unwrap();
        {
            let mut jar = self.jar.lock().unwrap();
            let e = jar.entry(Self::key(&u)).or_default();
            for sc in resp.headers().get_all("set-cookie") {
                let s = sc.to_str().unwrap();
                let Some((k, v)) = s.split(';').next().unwrap().split_once('=') else {
                    continue;
                };
                let (k, v) = (k.trim().to_string(), v.trim().to_string());
                e.retain(|(n, _)| *n != k);
                if !v.is_empty() && !s.to_ascii_lowercase().contains("max-age=0") {
                    e.push((k, v));
                }
            }
        }
        Reply {
            status: resp.status().as_u16(),
            location: resp
                .headers()
                .get("location")
                .map(|v| v.to_str().unwrap().to_string()),
            url: u,
            body: resp.text().await.unwrap(),
        }
    }

    async fn get(&self, url: &str) -> Reply {
        self.send(url, None).await
    }
}

/// The value of `attr="…"` after the first occurrence of `anchor` in `html`.
fn attr_after(html: &str, anchor: &str, attr: &str) -> String {
    let rest = &html[html
        .find(anchor)
        .unwrap_or_else(|| panic!("{anchor} not in page:\n{html}"))..];
    let start = rest.find(&format!("{attr}=\"")).unwrap() + attr.len() + 2;
    rest[start..][..rest[start..].find('"').unwrap()].to_string()
}

/// `portcullis demo --port 0`: open the printed URL, get sent to the development IdP, sign in
/// as alice, land on the sample app with identity headers; `/api/session` knows alice.
#[tokio::test]
async fn demo_smoke_test_signs_in_through_the_dev_idp() {
    let tmp = Tmp::new("demo");
    let db = tmp.0.join("demo.db").display().to_string();
    let (demo, urls) = start_demo(&tmp, &db);
    let (open, idp) = (urls.open, urls.idp);
    let open_url = url::Url::parse(&open).unwrap();
    assert_eq!(open_url.host_str(), Some("localhost"), "{open}");
    let port = open_url.port().unwrap();
    assert_ne!(port, 0, "the real port is printed");
    assert!(idp.starts_with("http://127.0.0.1:"), "{idp}");
    let c = Client::new(port);
    let ctx = || format!("\n--- demo log ---\n{}", demo.log());

    // The sign-in redirect, then /api/login to the dev IdP.
    let r = c.get(&open).await;
    assert_eq!(r.status, 302, "{}{}", r.body, ctx());
    let login = r.next();
    assert!(login.contains("/api/login?rd="), "{login}");
    let r = c.get(&login).await;
    assert_eq!(r.status, 302, "{}{}", r.body, ctx());
    let authorize = r.next();
    assert!(authorize.starts_with(&format!("{idp}/")), "{authorize}");

    // The dev IdP's login form.
    let form = c.get(&authorize).await;
    assert_eq!(form.status, 200, "{}{}", form.body, ctx());
    let action = attr_after(&form.body, "<form method=\"post\"", "action");
    let request_id = attr_after(&form.body, "name=\"request_id\"", "value");
    let post_to = form.url.join(&action).unwrap().to_string();
    let r = c
        .send(
            &post_to,
            Some(&[
                ("request_id", request_id.as_str()),
                ("username", "alice"),
                ("password", "alice"),
            ]),
        )
        .await;
    assert_eq!(r.status, 302, "{}{}", r.body, ctx());
    let callback = r.next();
    assert!(
        callback.starts_with(&format!("http://localhost:{port}/api/callback?")),
        "{callback}"
    );

    // The callback signs alice in and sends her back to the page she opened.
    let r = c.get(&callback).await;
    assert_eq!(r.status, 302, "{}{}", r.body, ctx());
    assert_eq!(r.next(), open);
    let page = c.get(&open).await;
    assert_eq!(page.status, 200, "{}{}", page.body, ctx());
    assert!(page.body.contains("Sample app behind Portcullis"));
    assert!(
        page.body.contains("Signed in as <strong>alice</strong>"),
        "{}",
        page.body
    );
    assert!(page.body.contains("X-Forwarded-User"), "{}", page.body);
    assert!(page.body.contains("x-forwarded-user"), "{}", page.body);
    assert!(page.body.contains("alice@example.com"));

    let headers = c.get(&format!("{open}headers.json")).await;
    assert_eq!(headers.status, 200);
    let h: Value = serde_json::from_str(&headers.body).unwrap();
    assert_eq!(h["x-forwarded-email"][0], "alice@example.com");
    assert_eq!(h["x-forwarded-groups"][0], "admins,devs");
    assert!(
        h.get("cookie")
            .is_none_or(|v| !v.to_string().contains("__Host-")),
        "gateway cookies stay at the gateway: {h}"
    );

    let s = c.get(&format!("{open}api/session")).await;
    assert_eq!(s.status, 200, "{}", s.body);
    let v: Value = serde_json::from_str(&s.body).unwrap();
    assert_eq!(v["user"]["email"], "alice@example.com");
    assert_eq!(v["user"]["username"], "alice");
    assert_eq!(v["user"]["issuer"], idp);
    assert!(Path::new(&db).exists(), "the demo database is created");
    drop(demo);
}

/// Issue 2 item 9: a person opens the printed URL in a real browser (headless Debian
/// Chromium), signs in at the development IdP's form and sees themselves on the sample app.
#[tokio::test]
async fn demo_in_a_real_browser() {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !Path::new(&chromium).exists() {
        assert!(
            std::env::var("PORTCULLIS_SKIP_BROWSER_TESTS").is_ok_and(|v| v == "1"),
            "Chromium not found at {chromium}: install Debian's `chromium` (scripts/test does as root)"
        );
        return;
    }
    let tmp = Tmp::new("demo-browser");
    let db = tmp.0.join("demo.db").display().to_string();
    let (demo, urls) = start_demo(&tmp, &db);
    let open = urls.open;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/harness/browser.mjs");
    let cfg = serde_json::json!({
        "url": format!("{open}reports?q=1"),
        "user": "alice",
        "password": "alice",
        "user_field": "#username",
        "password_field": "#password",
        "submit": "form:has(#username) button[type=submit]",
        "logout": format!("{open}api/logout"),
        "demo": {"screenshot": screenshot("demo-sample-app.png")},
    });
    let out = tokio::process::Command::new("node")
        .arg(script)
        .arg(cfg.to_string())
        .env("CHROMIUM", &chromium)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(90), out)
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let seen: Value = serde_json::from_str(stdout.lines().last().unwrap_or("{}")).unwrap();
    assert!(
        seen.get("error").is_none(),
        "{seen}\n--- demo log ---\n{}",
        demo.log()
    );
    assert_eq!(seen["final_url"], format!("{open}reports?q=1"));
    let body = seen["body"].as_str().unwrap();
    assert!(
        body.contains("Signed in as") && body.contains("alice"),
        "{body}"
    );
    assert!(
        body.contains("x-forwarded-user"),
        "the page lists the headers it received"
    );
    assert_eq!(seen["session_status"], 200);
    assert_eq!(seen["session"]["user"]["email"], "alice@example.com");
    assert_eq!(seen["session_status_after_logout"], 401);
    // The sample app's page shows the three tiers at work through the browser client.
    let demo_seen = &seen["demo"];
    let call = &demo_seen["call"];
    assert!(
        call["outcome"].as_str().unwrap().starts_with("HTTP 200"),
        "{demo_seen}"
    );
    let received: Value = serde_json::from_str(call["received"].as_str().unwrap()).unwrap();
    assert_eq!(received["email"], "alice@example.com", "{received}");
    assert_eq!(
        received["received"]["dpop"],
        Value::Null,
        "the proof stays at Portcullis"
    );
    assert!(
        received["received"]["cookie"]
            .as_str()
            .is_none_or(|c| !c.contains("__Host-")),
        "{received}"
    );
    assert!(
        call["proof"].as_str().unwrap().contains("dpop+jwt"),
        "{demo_seen}"
    );
    let no_proof = demo_seen["no-proof"]["outcome"].as_str().unwrap();
    assert!(
        no_proof.starts_with("HTTP 401") && no_proof.contains("invalid_dpop_proof"),
        "{no_proof}"
    );
    let no_csrf = demo_seen["no-csrf"]["outcome"].as_str().unwrap();
    assert!(no_csrf.starts_with("HTTP 403"), "{no_csrf}");
}

/// Where the browser tests leave screenshots to look at (target/screenshots).
fn screenshot(name: &str) -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name).display().to_string()
}

// ------------------------------------------------------------------------------------------
// `portcullis serve` in the background, and the "reshape" issue's start-up and log items
// ------------------------------------------------------------------------------------------

/// Start `portcullis serve` (stderr to a file in `tmp`, `RUST_LOG=info` unless `env` says
/// otherwise) and return it with the port it listens on (from its "Portcullis listening" line).
fn start_serve(tmp: &Tmp, tag: &str, env: &[(&str, &str)]) -> (Background, u16) {
    let mut command = cmd(&["serve"], &[("RUST_LOG", "info")]);
    for (k, v) in env {
        command.env(k, v);
    }
    let serve = Background::spawn(command, tmp.0.join(format!("{tag}-stderr.log")));
    let log = serve.wait_for_log("`serve` to listen", |l| {
        l.contains("Portcullis listening") || l.contains("portcullis: ")
    });
    let line = log
        .lines()
        .find(|l| l.contains("Portcullis listening"))
        .unwrap_or_else(|| panic!("`serve` did not start:\n{log}"));
    let port = line
        .split("127.0.0.1:")
        .nth(1)
        .and_then(|rest| {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .unwrap_or_else(|| panic!("no port in {line:?}"));
    (serve, port)
}

/// A port nothing listens on (bound, then released).
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// The messages of a text log's WARN lines (`… WARN target: message`), leaving out the IdP
/// loader's (it runs in the background, so whether it has logged yet is a matter of timing).
fn config_warnings(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter_map(|l| l.split_once(" WARN ").map(|(_, rest)| rest))
        .filter(|rest| !rest.starts_with("portcullis_gateway::idp::loader"))
        .map(|rest| rest.split_once(": ").map_or(rest, |(_, m)| m).to_string())
        .collect()
}

const NO_UPSTREAM: &str = "no upstream configured (PORTCULLIS_UPSTREAM): signed-in users will see a \"no application configured\" page";

/// Reshape item 1: a second `serve` on a taken port says why once, not
/// "Address already in use (os error 98): Address already in use (os error 98)".
#[test]
fn a_taken_port_prints_its_cause_once() {
    let tmp = Tmp::new("port");
    let config = fixture("seed000-values-discovery.yaml")
        .display()
        .to_string();
    let db = format!("sqlite://{}", tmp.0.join("first.db").display());
    let (_first, port) = start_serve(
        &tmp,
        "first",
        &[
            ("PORTCULLIS_CONFIG", &config),
            ("PORTCULLIS_DATABASE_URL", &db),
            ("PORTCULLIS_LISTEN", "127.0.0.1:0"),
        ],
    );
    let listen = format!("127.0.0.1:{port}");
    let db2 = format!("sqlite://{}", tmp.0.join("second.db").display());
    let r = run(
        &["serve"],
        &[
            ("PORTCULLIS_CONFIG", &config),
            ("PORTCULLIS_DATABASE_URL", &db2),
            ("PORTCULLIS_LISTEN", &listen),
        ],
    );
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(
        r.stderr
            .contains(&format!("portcullis: cannot listen on {listen}: ")),
        "{}",
        r.stderr
    );
    assert_eq!(
        r.stderr.matches("Address already in use").count(),
        1,
        "{}",
        r.stderr
    );
}

/// Reshape item 1: a database directory that cannot be created is reported as such, not as a
/// corrupt row.
#[test]
fn a_database_directory_that_cannot_be_created_says_so() {
    let config = fixture("seed000-values-discovery.yaml")
        .display()
        .to_string();
    // /proc refuses new directories, also to root.
    let dir = "/proc/portcullis-cli-test-no-such-dir";
    let db = format!("sqlite://{dir}/p.db");
    let r = run(
        &["serve"],
        &[
            ("PORTCULLIS_CONFIG", &config),
            ("PORTCULLIS_DATABASE_URL", &db),
            ("PORTCULLIS_LISTEN", "127.0.0.1:0"),
        ],
    );
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    let last = r.stderr.lines().last().unwrap_or_default();
    assert!(last.contains("cannot create"), "{}", r.stderr);
    assert!(last.contains(dir), "{}", r.stderr);
    assert!(
        !r.stderr.to_ascii_lowercase().contains("corrupt"),
        "{}",
        r.stderr
    );
}

/// Reshape items 2 and 3: `serve --check` reports the warnings `serve` logs at start-up (the
/// low-entropy secret among them, exit 0 in both), and a missing PORTCULLIS_UPSTREAM is one of
/// them.
#[test]
fn check_reports_the_warnings_that_serve_logs() {
    let tmp = Tmp::new("check-warnings");
    let config = fixture("seed000-values-discovery.yaml")
        .display()
        .to_string();
    let db = format!("sqlite://{}", tmp.0.join("p.db").display());
    let low_entropy = "ab".repeat(20);
    let env = [
        ("PORTCULLIS_CONFIG", config.as_str()),
        ("PORTCULLIS_DATABASE_URL", db.as_str()),
        ("PORTCULLIS_LISTEN", "127.0.0.1:0"),
        ("JWT_SIGNING_SECRET", low_entropy.as_str()),
        ("RUST_LOG", "info"),
    ];
    let check = run(&["serve", "--check"], &env);
    assert_eq!(check.code, Some(0), "{}", check.stderr);
    assert_eq!(check.stdout.trim(), "configuration OK");
    let checked = config_warnings(&check.stderr);
    assert!(
        checked.iter().any(|w| w.contains("low-entropy")),
        "{}",
        check.stderr
    );
    assert!(checked.iter().any(|w| w == NO_UPSTREAM), "{}", check.stderr);
    assert!(
        !check.stderr.contains(&low_entropy),
        "secrets are not echoed"
    );

    let (serve, _port) = start_serve(&tmp, "serve", &env);
    let served = config_warnings(&serve.log());
    assert_eq!(
        checked,
        served,
        "--check:\n{}\nserve:\n{}",
        check.stderr,
        serve.log()
    );
    drop(serve);

    // With an upstream there is nothing to warn about.
    let with_upstream = [
        ("PORTCULLIS_CONFIG", config.as_str()),
        ("PORTCULLIS_UPSTREAM", "http://127.0.0.1:3000"),
    ];
    let r = run(&["serve", "--check"], &with_upstream);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(!r.stderr.contains("no upstream"), "{}", r.stderr);
}

/// `portcullis serve` against an IdP that refuses connections, with the loader's DEBUG lines
/// on; returns once the loader has retried twice after its first failure (backoff 0.5 s, 1 s).
fn serve_with_idp_down(tmp: &Tmp) -> (Background, u16) {
    let config = fixture("seed000-values-discovery.yaml")
        .display()
        .to_string();
    let db = format!("sqlite://{}", tmp.0.join("p.db").display());
    let discovery = format!(
        "https://127.0.0.1:{}/.well-known/openid-configuration",
        closed_port()
    );
    let (serve, port) = start_serve(
        tmp,
        "serve",
        &[
            ("PORTCULLIS_CONFIG", &config),
            ("PORTCULLIS_DATABASE_URL", &db),
            ("PORTCULLIS_LISTEN", "127.0.0.1:0"),
            ("PORTCULLIS_UPSTREAM", "http://127.0.0.1:9"),
            ("OIDC_DISCOVERY_URL", &discovery),
            ("RUST_LOG", "info,portcullis_gateway::idp::loader=debug"),
        ],
    );
    serve.wait_for_log("two retries", |l| {
        l.matches("the IdP still cannot be loaded").count() >= 2
    });
    (serve, port)
}

/// `/readyz` three times; each answers 503 with the not-ready reason, which is returned.
async fn probe_readyz(port: u16) -> Vec<String> {
    let http = reqwest::Client::new();
    let mut reasons = Vec::new();
    for _ in 0..3 {
        let r = http
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 503);
        let v: Value = r.json().await.unwrap();
        reasons.push(v["reason"].as_str().unwrap().to_string());
    }
    reasons
}

/// Reshape item 4: an IdP that cannot be reached is one WARN (the change to "not ready"), not
/// one per retry; `/readyz` says the IdP cannot be reached (no longer "starting up") and for
/// how long.
#[tokio::test]
async fn an_unreachable_idp_is_logged_once_and_readyz_says_why() {
    let tmp = Tmp::new("idp-down");
    let (serve, port) = serve_with_idp_down(&tmp);
    for reason in probe_readyz(port).await {
        assert!(
            reason.starts_with("the identity provider cannot be reached (since "),
            "{reason}"
        );
        assert!(reason.contains("Connection refused"), "{reason}");
        assert!(!reason.contains("starting up"), "{reason}");
    }
    let log = serve.log();
    let loader_warnings = log
        .lines()
        .filter(|l| l.contains(" WARN portcullis_gateway::idp::loader"))
        .count();
    assert_eq!(loader_warnings, 1, "{log}");
}

/// Reshape item 4: failing readiness probes (and the retries behind them) log no ERROR each.
/// The gateway logs failures once, where they are rendered, never every 503 at ERROR.
#[tokio::test]
async fn failing_readiness_probes_are_not_logged_as_errors() {
    let tmp = Tmp::new("probes");
    let (serve, port) = serve_with_idp_down(&tmp);
    probe_readyz(port).await;
    let log = serve.log();
    assert!(
        !log.lines().any(|l| l.contains("ERROR")),
        "failing probes and retries are not errors:\n{log}"
    );
}

/// Reshape item 6: the banner's "Dev IdP" link opens the dev IdP's front page (not a 404), and
/// the "Sample app" line says plainly that it bypasses Portcullis.
#[tokio::test]
async fn demo_banner_links_open_pages_and_say_where_they_go() {
    let tmp = Tmp::new("demo-banner");
    let db = tmp.0.join("demo.db").display().to_string();
    let (demo, urls) = start_demo(&tmp, &db);
    let mut sample = None;
    while sample.is_none() {
        let line = urls
            .rest
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("no Sample app line: {:?}\n{}", urls.banner, demo.log()));
        if line.trim_start().starts_with("Sample app:") {
            sample = Some(line);
        }
    }
    let sample = sample.unwrap();
    assert!(
        sample.contains("direct, bypasses Portcullis") && sample.contains("for comparison"),
        "{sample}"
    );
    assert!(!sample.contains("through Portcullis"), "{sample}");

    let r = reqwest::get(&urls.idp).await.unwrap();
    assert_eq!(r.status(), 200, "{}", demo.log());
    let html = r.text().await.unwrap();
    assert!(
        html.contains("<h1>Development identity provider</h1>"),
        "{html}"
    );
    for user in ["alice", "bob", "carol"] {
        assert!(
            html.contains(&format!("<code>{user}</code>")),
            "{user}: {html}"
        );
    }
    assert!(html.contains(&format!("{}/.well-known/openid-configuration", urls.idp)));
}

/// Reshape item 5: logged values cannot forge log lines, and a log written to a file has no
/// ANSI colour codes. The IdP error code at the callback is attacker-controlled and logged.
#[tokio::test]
async fn logs_escape_control_characters_and_have_no_colour_codes() {
    let tmp = Tmp::new("demo-log");
    let db = tmp.0.join("demo.db").display().to_string();
    let (demo, urls) = start_demo(&tmp, &db);
    let port = url::Url::parse(&urls.open).unwrap().port().unwrap();
    let c = Client::new(port);
    let r = c.get(&format!("{}api/login?rd=%2F", urls.open)).await;
    assert_eq!(r.status, 302, "{}\n{}", r.body, demo.log());
    let authorize = url::Url::parse(&r.next()).unwrap();
    let state = authorize
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    let forged = "2026-01-01T00:00:00.000000Z  INFO portcullis: FORGED admin signed in";
    let mut callback = url::Url::parse(&format!("{}api/callback", urls.open)).unwrap();
    callback
        .query_pairs_mut()
        .append_pair("state", &state)
        .append_pair("error", &format!("access_denied\r\n{forged}\u{1b}[2K"));
    let r = c.get(callback.as_str()).await;
    assert!(r.status >= 400, "{} {}", r.status, r.body);
    let log = demo.wait_for_log("the IdP error to be logged", |l| {
        l.contains("access_denied")
    });
    assert!(
        !log.lines().any(|l| l.starts_with(forged)),
        "a forged line:\n{log}"
    );
    assert!(
        log.contains(&format!("access_denied\\r\\n{forged}\\u{{1b}}[2K")),
        "the value is logged, escaped:\n{log}"
    );
    assert!(
        !demo.log_bytes().contains(&0x1b),
        "no ESC byte (colour codes or logged input):\n{log}"
    );
}
