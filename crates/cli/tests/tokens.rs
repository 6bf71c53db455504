//! The command-line client end to end: a gateway and the real OP, a token created through
//! the JSON API by a signed-in browser session, then the built `portcullis` binary: `login`
//! with the token on standard input, `whoami`, `token …`, `logout`, and each failure with its
//! exit code and one-line message (wrong URL, revoked token, server down, TLS problems).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../gateway/tests/common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;

use common::*;
use portcullis_store::Table;
use tokio::io::AsyncWriteExt;

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Run `portcullis args…` with a clean environment (config in `cfg`), `stdin` piped in.
async fn cli(cfg: &Path, args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Out {
    let mut c = tokio::process::Command::new(BIN);
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", cfg.join("home"))
        .env("PORTCULLIS_CONFIG_DIR", cfg.join("portcullis"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in env {
        c.env(k, v);
    }
    let mut child = c.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).await.unwrap();
    drop(input);
    let out = tokio::time::timeout(std::time::Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("the CLI did not exit within 60 s")
        .unwrap();
    let o = Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    // `PORTCULLIS_CLI_TRANSCRIPT=1 cargo test … -- --nocapture` prints what a person would see.
    if std::env::var_os("PORTCULLIS_CLI_TRANSCRIPT").is_some() {
        eprintln!(
            "$ portcullis {}\n{}{}[exit {}]\n",
            args.join(" "),
            o.stdout,
            o.stderr,
            o.code
        );
    }
    assert!(!o.stderr.contains("panicked"), "{}", o.stderr);
    assert!(!o.stderr.contains("Backtrace"), "{}", o.stderr);
    o
}

/// A failure: exactly one line on stderr, `portcullis: …` containing `needle`, and `code`.
fn failed(o: &Out, code: i32, needle: &str) {
    assert_eq!(o.code, code, "stdout: {} stderr: {}", o.stdout, o.stderr);
    assert_eq!(o.stderr.lines().count(), 1, "one line: {}", o.stderr);
    assert!(o.stderr.starts_with("portcullis: "), "{}", o.stderr);
    assert!(o.stderr.contains(needle), "want {needle:?} in {}", o.stderr);
}

fn config_file(cfg: &Path) -> PathBuf {
    cfg.join("portcullis").join("config.json")
}

#[cfg(unix)]
fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

// Token paste: `login --url` with the token on stdin, `whoami`, `token …` (refused: a token
// may not manage tokens), precedence of `--url` / `PORTCULLIS_URL` / the saved address, a
// revoked token, `logout`; on SQLite and on PostgreSQL.
both_backends!(token_paste_login_whoami_token_logout, |db| {
    let env = TestEnv::start_with(Options {
        database_url: db,
        ..Default::default()
    })
    .await;
    let b = Browser::new();
    b.sign_in(&env, "/", ALICE.0, ALICE.1).await;
    let (token, id) = new_token(&b, &env, "laptop").await;
    let tmp = TempDir::new();
    let cfg = tmp.0.as_path();
    let base = format!("{}/", env.base);

    // Not logged in yet.
    failed(&cli(cfg, &["whoami"], "", &[]).await, 3, "not logged in");
    // Not a token at all.
    let o = cli(cfg, &["login", "--url", &env.base], "hello\n", &[]).await;
    failed(&o, 4, "not a Portcullis API token");
    assert!(!config_file(cfg).exists());

    // Login, the token piped in (as a script does).
    let o = cli(
        cfg,
        &["login", "--url", &env.base],
        &format!("{token}\n"),
        &[],
    )
    .await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(
        o.stdout.contains(&format!("Logged in to {base} as ")),
        "{}",
        o.stdout
    );
    assert!(o.stdout.contains("alice-sub-0001"), "{}", o.stdout);
    assert!(
        !o.stdout.contains(&token) && !o.stderr.contains(&token),
        "never printed"
    );
    let file = config_file(cfg);
    #[cfg(unix)]
    {
        assert_eq!(mode(&file), 0o600, "the token file is the user's only");
        assert_eq!(mode(file.parent().unwrap()), 0o700);
    }
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(saved["url"], base.as_str());
    assert_eq!(saved["token"], token.as_str());

    // whoami: the saved address and token.
    let o = cli(cfg, &["whoami"], "", &[]).await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stdout.contains("alice-sub-0001"), "{}", o.stdout);
    assert!(
        o.stdout.contains(&format!("token:  laptop ({id})")),
        "{}",
        o.stdout
    );

    // A token may not list or create tokens: the CLI says where to do it instead.
    let o = cli(cfg, &["token", "list"], "", &[]).await;
    failed(&o, 5, "an API token cannot list, create or revoke tokens");
    assert!(
        o.stderr
            .contains(&format!("{}/.portcullis/account", env.base)),
        "{}",
        o.stderr
    );
    let o = cli(cfg, &["token", "create", "ci", "--expires", "30"], "", &[]).await;
    failed(&o, 5, "in your browser");
    assert_eq!(
        env.store().count(Table::ApiTokens).await.unwrap(),
        1,
        "nothing created"
    );

    // Precedence: --url over PORTCULLIS_URL over the saved address; the saved token only
    // ever goes to the address it was saved for.
    let other = "http://127.0.0.1:9";
    let o = cli(
        cfg,
        &["whoami", "--url", other],
        "",
        &[("PORTCULLIS_URL", &env.base)],
    )
    .await;
    failed(&o, 3, "not logged in to http://127.0.0.1:9/");
    let o = cli(cfg, &["whoami"], "", &[("PORTCULLIS_URL", other)]).await;
    failed(&o, 3, "not logged in to http://127.0.0.1:9/");
    let o = cli(
        cfg,
        &["whoami", "--url", &env.base],
        "",
        &[("PORTCULLIS_URL", other)],
    )
    .await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    // PORTCULLIS_TOKEN (for CI) wins over the saved token.
    let o = cli(
        cfg,
        &["whoami"],
        "",
        &[(
            "PORTCULLIS_TOKEN",
            &format!("pcs_{}_{}", "x".repeat(12), "y".repeat(43)),
        )],
    )
    .await;
    failed(&o, 4, "refused the token");

    // Revoked (in the browser): refused, saying what to do.
    let url = format!("{}/api/tokens/{id}", env.base);
    let r = b
        .send(
            b.raw().delete(&url).header("accept", "application/json"),
            &url,
        )
        .await;
    assert_eq!(r.status, 204);
    let o = cli(cfg, &["whoami"], "", &[]).await;
    failed(
        &o,
        4,
        "refused the token: it is invalid, revoked or expired",
    );
    assert!(o.stderr.contains("/.portcullis/account"), "{}", o.stderr);

    // Logout forgets it, and says the token itself lives on until revoked.
    let o = cli(cfg, &["logout"], "", &[]).await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(
        o.stdout.contains("removed from this computer"),
        "{}",
        o.stdout
    );
    assert!(o.stdout.contains("until you revoke it"), "{}", o.stdout);
    assert!(!file.exists());
    failed(&cli(cfg, &["whoami"], "", &[]).await, 3, "not logged in");
    let o = cli(cfg, &["logout"], "", &[]).await;
    assert_eq!(o.code, 0);
    assert!(o.stdout.contains("Not logged in"), "{}", o.stdout);
});

/// Wrong URL (another web server), server down, plain http to a remote host: each a clear
/// line and its own exit code; nothing saved.
#[tokio::test(flavor = "multi_thread")]
async fn login_errors_wrong_url_server_down_insecure_address() {
    let env = TestEnv::start().await;
    let b = Browser::new();
    b.sign_in(&env, "/", ALICE.0, ALICE.1).await;
    let (token, _) = new_token(&b, &env, "laptop").await;
    let tmp = TempDir::new();
    let cfg = tmp.0.as_path();
    let stdin = format!("{token}\n");

    // The app behind the gateway, addressed directly: a web server, not Portcullis.
    let app = format!("http://{}", env.upstream.addr);
    let o = cli(cfg, &["login", "--url", &app], &stdin, &[]).await;
    failed(&o, 8, "does not look like a Portcullis server");
    // The OP: JSON, but not Portcullis's.
    let o = cli(cfg, &["login", "--url", &env.op.issuer], &stdin, &[]).await;
    failed(&o, 8, "does not look like a Portcullis server");

    // A server that is down.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let down = format!("http://127.0.0.1:{port}");
    let o = cli(cfg, &["login", "--url", &down], &stdin, &[]).await;
    failed(&o, 6, &format!("cannot reach http://127.0.0.1:{port}/"));

    // Plain http to another machine: refused before anything is sent.
    let o = cli(
        cfg,
        &["login", "--url", "http://gateway.example.com"],
        &stdin,
        &[],
    )
    .await;
    failed(&o, 2, "use https://");
    assert!(!config_file(cfg).exists(), "nothing saved");
}

/// TLS problems are named: a self-signed certificate (not trusted), and https to a plain
/// http port. With the certificate given in PORTCULLIS_CA_CERT, TLS succeeds (and the
/// server, the test OP, is then reported as not Portcullis).
#[tokio::test(flavor = "multi_thread")]
async fn login_errors_tls_problems_are_named() {
    let tmp = TempDir::new();
    let cert =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap();
    let cert_path = tmp.0.join("cert.pem");
    let key_path = tmp.0.join("key.pem");
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let op = Op::start(serde_json::json!({
        "tls": {"cert": cert_path, "key": key_path},
        "clients": [client("https://127.0.0.1:1/api/callback", "client_secret_post", "RS256")],
    }))
    .await;
    assert!(op.issuer.starts_with("https://"), "{}", op.issuer);
    let cfg = tmp.0.as_path();
    let token = format!("pcs_{}_{}\n", "a".repeat(12), "b".repeat(43));

    let o = cli(cfg, &["login", "--url", &op.issuer], &token, &[]).await;
    failed(&o, 7, "TLS problem with https://127.0.0.1:");
    assert!(o.stderr.contains("certificate"), "{}", o.stderr);
    assert!(o.stderr.contains("PORTCULLIS_CA_CERT"), "{}", o.stderr);

    // https:// to a port that speaks plain http.
    let plain = TestEnv::start().await;
    let https_to_http = plain.base.replacen("http://", "https://", 1);
    let o = cli(cfg, &["login", "--url", &https_to_http], &token, &[]).await;
    failed(&o, 7, "TLS problem");

    // Trusting the certificate: TLS works, and the OP is not Portcullis.
    let o = cli(
        cfg,
        &["login", "--url", &op.issuer],
        &token,
        &[("PORTCULLIS_CA_CERT", cert_path.to_str().unwrap())],
    )
    .await;
    failed(&o, 8, "does not look like a Portcullis server");
    assert!(!config_file(cfg).exists());
}
