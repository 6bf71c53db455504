//! Observability of the built binary: with `PORTCULLIS_LOG_FORMAT=json` every stderr line is a
//! JSON object and a request's log lines carry its `X-Request-Id` (the `request` span);
//! `/metrics` answers on `PORTCULLIS_METRICS_LISTEN`, not on the public port; stderr that is
//! not a terminal holds no ANSI escape codes, in either format.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

struct Tmp(PathBuf);

impl Tmp {
    fn new(tag: &str) -> Tmp {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let p = std::env::temp_dir().join(format!(
            "portcullis-obs-{tag}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&p).unwrap();
        Tmp(p)
    }
}

impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `portcullis serve` with stderr to a file (as under a process supervisor: no terminal);
/// killed on drop.
struct Serve {
    child: Child,
    log: PathBuf,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Serve {
    /// Start against an IdP that is down (the gateway serves `/healthz` regardless).
    fn start(tmp: &Tmp, tag: &str, env: &[(&str, &str)]) -> Serve {
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures/seeds/seed000-values-discovery.yaml")
            .display()
            .to_string();
        let log = tmp.0.join(format!("{tag}.log"));
        let mut c = Command::new(BIN);
        c.env_clear();
        if let Ok(v) = std::env::var("PATH") {
            c.env("PATH", v);
        }
        c.arg("serve")
            .env("PORTCULLIS_CONFIG", config)
            .env(
                "PORTCULLIS_DATABASE_URL",
                format!("sqlite://{}", tmp.0.join(format!("{tag}.db")).display()),
            )
            .env("PORTCULLIS_LISTEN", "127.0.0.1:0")
            .env("PORTCULLIS_UPSTREAM", "http://127.0.0.1:9")
            .env(
                "OIDC_DISCOVERY_URL",
                format!("https://127.0.0.1:{closed}/.well-known/openid-configuration"),
            );
        for (k, v) in env {
            c.env(k, v);
        }
        let child = c
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Serve { child, log }
    }

    fn stderr(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.log).unwrap_or_default()).into_owned()
    }

    fn wait_for(&self, what: &str, done: impl Fn(&str) -> bool) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let s = self.stderr();
            if done(&s) {
                return s;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "waited 30 s for {what}; stderr:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The JSON log line whose message is `message`.
fn line_with_message(stderr: &str, message: &str) -> Option<Value> {
    stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["fields"]["message"] == message)
}

#[tokio::test]
async fn json_logs_carry_the_request_id_and_metrics_have_their_own_port() {
    let tmp = Tmp::new("json");
    let serve = Serve::start(
        &tmp,
        "json",
        &[
            ("PORTCULLIS_LOG_FORMAT", "json"),
            // The per-request line is debug: it shows the request's span.
            ("RUST_LOG", "info,portcullis_gateway::app=debug"),
            ("PORTCULLIS_METRICS_LISTEN", "127.0.0.1:0"),
        ],
    );
    let log = serve.wait_for("both listeners", |s| {
        line_with_message(s, "Portcullis listening").is_some() && s.contains("/metrics")
    });
    let public = line_with_message(&log, "Portcullis listening").unwrap()["fields"]["addr"]
        .as_str()
        .unwrap()
        .to_string();
    let metrics = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find_map(|v| {
            v["fields"]["message"]
                .as_str()?
                .strip_prefix("metrics on http://")?
                .strip_suffix("/metrics")
                .map(str::to_string)
        })
        .unwrap_or_else(|| panic!("no metrics line in\n{log}"));
    assert_ne!(public, metrics);

    let http = reqwest::Client::new();
    let r = http
        .get(format!("http://{public}/healthz"))
        .header("x-request-id", "client-sent")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let id = r.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(id.len(), 32, "{id}");
    let log = serve.wait_for("a log line of the request", |s| s.contains(&id));
    let line: Value = log
        .lines()
        .find(|l| l.contains(&id))
        .map(|l| serde_json::from_str(l).unwrap())
        .unwrap();
    let spans = line["spans"].as_array().unwrap();
    assert!(
        spans
            .iter()
            .any(|s| s["name"] == "request" && s["request_id"] == id.as_str()),
        "{line}"
    );
    assert!(
        !log.contains("client-sent"),
        "an untrusted id is not logged"
    );

    let text = http
        .get(format!("http://{metrics}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("# TYPE portcullis_sign_ins counter"),
        "{text}"
    );
    assert!(text.ends_with("# EOF\n"));

    let stderr = serve.stderr();
    for l in stderr.lines() {
        assert!(
            serde_json::from_str::<Value>(l).is_ok(),
            "not a JSON line: {l}"
        );
    }
    assert!(!stderr.contains('\u{1b}'), "ANSI codes in piped stderr");
}

#[tokio::test]
async fn text_logs_to_a_pipe_have_no_colour_codes() {
    let tmp = Tmp::new("text");
    let serve = Serve::start(
        &tmp,
        "text",
        &[("PORTCULLIS_LOG_FORMAT", "text"), ("RUST_LOG", "info")],
    );
    serve.wait_for("the listening line", |s| s.contains("Portcullis listening"));
    // Whatever the IdP loader has logged by now (it cannot reach the IdP) is included.
    std::thread::sleep(Duration::from_millis(500));
    let log = serve.stderr();
    assert!(!log.contains('\u{1b}'), "{log:?}");
    assert!(!log.contains("PORTCULLIS_LOG_FORMAT must be"), "{log}");
}
