//! The built `portcullis` binary signing in with `login --browser` (RFC 8252 loopback + PKCE)
//! and `login --device` (RFC 8628) against a running gateway and the real OP, on both stores:
//! the browser half done by headless Chromium (screenshots in target/screenshots/), or, for
//! the refusal paths, by the test's own HTTP client.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../gateway/tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::*;
use portcullis_store::Table;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, ChildStderr};

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

fn screenshot(name: &str) -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name).display().to_string()
}

/// `portcullis args…` running, its stderr readable line by line. `BROWSER=true`: opening a
/// browser is a no-op (the test drives one itself).
fn spawn(cfg: &Path, args: &[&str]) -> (Child, BufReader<ChildStderr>) {
    let mut child = tokio::process::Command::new(BIN)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", cfg.join("home"))
        .env("PORTCULLIS_CONFIG_DIR", cfg.join("portcullis"))
        .env("BROWSER", "true")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let err = BufReader::new(child.stderr.take().unwrap());
    (child, err)
}

/// Read stderr until a line satisfies `pick`; returns what it picked and everything read.
async fn read_until(
    err: &mut BufReader<ChildStderr>,
    pick: impl Fn(&str) -> Option<String>,
) -> (String, String) {
    let mut seen = String::new();
    let found = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let mut line = String::new();
            if err.read_line(&mut line).await.unwrap() == 0 {
                panic!("the CLI ended before printing what was expected: {seen}");
            }
            seen.push_str(&line);
            if let Some(v) = pick(line.trim()) {
                return v;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("nothing expected within 30 s: {seen}"));
    (found, seen)
}

struct Exited {
    code: i32,
    stdout: String,
    stderr: String,
}

async fn wait(mut child: Child, mut err: BufReader<ChildStderr>, secs: u64) -> Exited {
    let status = tokio::time::timeout(Duration::from_secs(secs), child.wait())
        .await
        .unwrap_or_else(|_| panic!("the CLI did not finish within {secs} s"))
        .unwrap();
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .await
        .unwrap();
    let mut stderr = String::new();
    err.read_to_string(&mut stderr).await.unwrap();
    assert!(!stderr.contains("panicked"), "{stderr}");
    Exited {
        code: status.code().unwrap_or(-1),
        stdout,
        stderr,
    }
}

/// `portcullis whoami` with what the login saved.
async fn whoami(cfg: &Path) -> String {
    let out = tokio::process::Command::new(BIN)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", cfg.join("home"))
        .env("PORTCULLIS_CONFIG_DIR", cfg.join("portcullis"))
        .arg("whoami")
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn this_machine() -> String {
    gethostname::gethostname()
        .to_string_lossy()
        .trim()
        .chars()
        .take(40)
        .collect()
}

fn sign_in_fields() -> Value {
    json!({
        "user": ALICE.0,
        "password": ALICE.1,
        "user_field": "input[name=login]",
        "password_field": "input[name=password]",
        "submit": "button[type=submit]",
    })
}

both_backends!(login_browser_in_chromium, |db| {
    let env = TestEnv::start_with(Options {
        database_url: db,
        ..Default::default()
    })
    .await;
    let tmp = TempDir::new();
    let cfg = tmp.0.as_path();
    let (child, mut err) = spawn(
        cfg,
        &["login", "--browser", "--url", &env.base, "--expires", "30"],
    );
    let (url, said) = read_until(&mut err, |l| {
        l.starts_with("http://").then(|| l.to_string())
    })
    .await;
    assert!(said.contains("Opening your browser to sign in."), "{said}");
    assert!(
        url.starts_with(&format!(
            "{}/.portcullis/cli-login?redirect_uri=http%3A%2F%2F127.0.0.1%3A",
            env.base
        )),
        "{url}"
    );
    let mut cfg_browser = sign_in_fields();
    cfg_browser["url"] = json!(url);
    cfg_browser["mode"] = json!("consent");
    cfg_browser["screenshot_consent"] = json!(screenshot("cli-login-consent.png"));
    cfg_browser["screenshot_done"] = json!(screenshot("cli-login-done.png"));
    let Some(seen) = run_browser_script("cli-login.mjs", cfg_browser, 90).await else {
        return;
    };
    assert_eq!(seen["title"], "Sign in the command-line tool", "{seen}");
    assert_eq!(seen["machine"], this_machine().as_str());
    let text = seen["text"].as_str().unwrap();
    assert!(
        text.contains("Signed in as alice@example.com") || text.contains("Signed in as"),
        "{text}"
    );
    assert!(text.contains("expires in 30 days"), "{text}");
    assert!(
        seen["final_url"]
            .as_str()
            .unwrap()
            .contains("/callback?code="),
        "{seen}"
    );
    assert!(
        seen["final_text"]
            .as_str()
            .unwrap()
            .contains("The command-line tool is signed in.")
    );

    let done = wait(child, err, 30).await;
    assert_eq!(done.code, 0, "{} {}", done.stdout, done.stderr);
    assert!(
        done.stdout
            .contains(&format!("Logged in to {}/ as ", env.base)),
        "{}",
        done.stdout
    );
    assert!(done.stdout.contains("alice-sub-0001"), "{}", done.stdout);
    assert!(
        done.stdout.contains(&format!(
            "New API token \"portcullis CLI on {}\" saved in",
            this_machine()
        )),
        "{}",
        done.stdout
    );
    assert!(
        !done.stdout.contains("pcs_") && !done.stderr.contains("pcs_"),
        "never printed"
    );
    assert!(whoami(cfg).await.contains("alice-sub-0001"));
    assert_eq!(env.store().count(Table::ApiTokens).await.unwrap(), 1);
    assert_eq!(
        env.store().count(Table::CliGrants).await.unwrap(),
        0,
        "the code was spent"
    );
});

both_backends!(login_device_approved_by_a_second_browser, |db| {
    let env = TestEnv::start_with(Options {
        database_url: db,
        ..Default::default()
    })
    .await;
    let tmp = TempDir::new();
    let cfg = tmp.0.as_path();
    let (child, mut err) = spawn(cfg, &["login", "--device", "--url", &env.base]);
    let (complete, said) = read_until(&mut err, |l| {
        l.strip_prefix("(or ")
            .and_then(|r| r.strip_suffix(')'))
            .map(str::to_string)
    })
    .await;
    assert!(
        said.contains(&format!(
            "To sign in, open {}/.portcullis/account",
            env.base
        )),
        "{said}"
    );
    let (code, _) = read_until(&mut err, |l| {
        (l.len() == 9 && l.as_bytes()[4] == b'-').then(|| l.to_string())
    })
    .await;
    assert_eq!(
        complete,
        format!("{}/.portcullis/account?user_code={code}", env.base)
    );
    let mut cfg_browser = sign_in_fields();
    cfg_browser["url"] = json!(complete);
    cfg_browser["mode"] = json!("device");
    cfg_browser["screenshot_consent"] = json!(screenshot("cli-device-approve.png"));
    cfg_browser["screenshot_done"] = json!(screenshot("cli-device-done.png"));
    let Some(seen) = run_browser_script("cli-login.mjs", cfg_browser, 90).await else {
        return;
    };
    assert_eq!(seen["prefilled"], code.as_str(), "{seen}");
    assert_eq!(seen["code_label"], 1);
    assert_eq!(seen["machine"], this_machine().as_str());
    assert_eq!(seen["from"], "127.0.0.1");
    assert_eq!(
        seen["token_name"],
        format!("portcullis CLI on {}", this_machine())
    );
    assert!(
        seen["request_text"]
            .as_str()
            .unwrap()
            .contains("expires in 90 days")
    );
    assert!(seen["status"].as_str().unwrap().starts_with("Approved."));
    let done = wait(child, err, 30).await;
    assert_eq!(done.code, 0, "{} {}", done.stdout, done.stderr);
    assert!(
        done.stderr.contains("Waiting for your approval"),
        "{}",
        done.stderr
    );
    assert!(done.stdout.contains("alice-sub-0001"), "{}", done.stdout);
    assert!(whoami(cfg).await.contains("alice-sub-0001"));
    assert_eq!(env.store().count(Table::ApiTokens).await.unwrap(), 1);
});

/// Refusals as the CLI reports them: a denial in the browser (after a stray answer with the
/// wrong `state`, which the CLI ignores), and a device sign-in denied on the account page.
#[tokio::test(flavor = "multi_thread")]
async fn login_denied_in_the_browser_or_on_the_account_page() {
    let env = TestEnv::start().await;
    let b = Browser::new();
    b.sign_in(&env, "/", ALICE.0, ALICE.1).await;
    let tmp = TempDir::new();
    let cfg = tmp.0.as_path();

    let (child, mut err) = spawn(cfg, &["login", "--browser", "--url", &env.base]);
    let (url, _) = read_until(&mut err, |l| {
        l.starts_with("http://").then(|| l.to_string())
    })
    .await;
    let q: std::collections::HashMap<String, String> = url::Url::parse(&url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    let loopback = q["redirect_uri"].clone();
    // Another answer arriving at the port (wrong state): refused, the CLI keeps waiting.
    let stray = answer(program("127.0.0.1").get(format!("{loopback}?code=x&state=forged"))).await;
    assert_eq!(stray.status, 400);
    assert!(stray.body.contains("does not belong to the sign-in"));
    // Deny on the consent page.
    let page = b.get(&url).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let decide = format!("{}/api/cli/authorize", env.base);
    let r = b
        .send(
            b.raw()
                .post(&decide)
                .header("accept", "application/json")
                .json(&json!({
                    "redirect_uri": loopback,
                    "state": q["state"],
                    "code_challenge": q["code_challenge"],
                    "code_challenge_method": "S256",
                    "machine": q["machine"],
                    "expires_in_days": 90,
                    "approve": false,
                })),
            &decide,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let redirect: Value = serde_json::from_str(&r.body).unwrap();
    let back = answer(program("127.0.0.1").get(redirect["redirect"].as_str().unwrap())).await;
    assert!(back.body.contains("You denied the sign-in."));
    let done = wait(child, err, 30).await;
    assert_eq!(done.code, 4, "{}", done.stderr);
    assert!(
        done.stderr
            .ends_with("portcullis: the sign-in was denied in the browser\n"),
        "{}",
        done.stderr
    );
    assert!(
        !cfg.join("portcullis").join("config.json").exists(),
        "nothing saved"
    );

    // Device flow, denied.
    let (child, mut err) = spawn(cfg, &["login", "--device", "--url", &env.base]);
    let (code, _) = read_until(&mut err, |l| {
        (l.len() == 9 && l.as_bytes()[4] == b'-').then(|| l.to_string())
    })
    .await;
    let decide = format!("{}/api/cli/device/decide", env.base);
    let r = b
        .send(
            b.raw()
                .post(&decide)
                .header("accept", "application/json")
                .json(&json!({"user_code": code, "approve": false})),
            &decide,
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    let done = wait(child, err, 30).await;
    assert_eq!(done.code, 4, "{}", done.stderr);
    assert!(
        done.stderr
            .ends_with("portcullis: the sign-in was denied on the account page\n"),
        "{}",
        done.stderr
    );
    assert_eq!(env.store().count(Table::ApiTokens).await.unwrap(), 0);
}
