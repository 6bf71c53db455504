//! The container image (`Dockerfile`, `.dockerignore`, `deploy/docker/healthcheck.sh`), tested
//! without a container engine: the Dockerfile's final stage runs as a numeric non-root user,
//! copies the binary from where its build stage's cargo command puts it, and has a HEALTHCHECK;
//! the build context keeps what the build reads and loads as a Cargo workspace; the binary runs
//! as the image's user; and the health check script, run as that user against a real
//! `portcullis serve`, passes, and fails when nothing answers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// One Dockerfile instruction: keyword (upper case) and its arguments, continuations joined.
#[derive(Debug)]
struct Instr {
    keyword: String,
    args: String,
}

/// Stages in order: (name, instructions), the FROM included.
fn stages() -> Vec<(String, Vec<Instr>)> {
    let text = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    let mut logical = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let t = line.trim();
        if current.is_empty() && (t.is_empty() || t.starts_with('#')) {
            continue;
        }
        if let Some(head) = t.strip_suffix('\\') {
            current.push_str(head);
            current.push(' ');
        } else {
            current.push_str(t);
            logical.push(std::mem::take(&mut current));
        }
    }
    let mut stages: Vec<(String, Vec<Instr>)> = Vec::new();
    for l in logical {
        let (keyword, args) = l.split_once(' ').unwrap();
        let instr = Instr {
            keyword: keyword.to_ascii_uppercase(),
            args: args.split_whitespace().collect::<Vec<_>>().join(" "),
        };
        if instr.keyword == "FROM" {
            let name = instr
                .args
                .split_once(" AS ")
                .map(|(_, n)| n.to_string())
                .unwrap_or_default();
            stages.push((name, Vec::new()));
        }
        stages.last_mut().expect("FROM first").1.push(instr);
    }
    stages
}

fn one<'a>(stage: &'a [Instr], keyword: &str) -> &'a str {
    let found: Vec<_> = stage.iter().filter(|i| i.keyword == keyword).collect();
    assert_eq!(found.len(), 1, "{keyword}: {found:?}");
    &found[0].args
}

#[test]
fn dockerfile_builds_the_binary_and_runs_it_as_a_numeric_non_root_user() {
    let stages = stages();
    assert_eq!(stages.len(), 2, "a build stage and a runtime stage");
    let (build_name, build) = &stages[0];
    let (_, run) = &stages[1];

    // The builder is the workspace's Rust version, on the same Debian as the runtime image.
    let manifest = std::fs::read_to_string(repo().join("Cargo.toml")).unwrap();
    let rust = manifest
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = \""))
        .unwrap()
        .trim_end_matches('"');
    assert_eq!(
        one(build, "FROM"),
        format!("rust:{rust}-bookworm AS {build_name}")
    );
    assert!(one(run, "FROM").starts_with("debian:bookworm-slim"));

    // The binary is copied from where the build stage's cargo command writes it.
    let workdir = one(build, "WORKDIR");
    let cargo = one(build, "RUN");
    assert!(
        cargo.starts_with("cargo build --release --locked -p portcullis"),
        "{cargo}"
    );
    let cli = std::fs::read_to_string(repo().join("crates/cli/Cargo.toml")).unwrap();
    assert!(cli.contains("[[bin]]\nname = \"portcullis\""));
    let copy = run
        .iter()
        .find(|i| i.keyword == "COPY" && i.args.starts_with("--from="))
        .unwrap();
    assert_eq!(
        copy.args,
        format!(
            "--from={build_name} {workdir}/target/release/portcullis /usr/local/bin/portcullis"
        )
    );
    assert_eq!(one(run, "ENTRYPOINT"), r#"["/usr/local/bin/portcullis"]"#);
    assert_eq!(one(run, "CMD"), r#"["serve"]"#);

    // A numeric user (Kubernetes' runAsNonRoot can only verify a number), not root, and the
    // one the Helm chart runs as.
    let user = one(run, "USER");
    let (uid, gid) = user.split_once(':').unwrap();
    let uid: u32 = uid.parse().expect("numeric uid");
    let gid: u32 = gid.parse().expect("numeric gid");
    assert!(uid != 0 && gid != 0);
    let chart =
        std::fs::read_to_string(repo().join("deploy/helm/portcullis/templates/deployment.yaml"))
            .unwrap();
    assert!(chart.contains(&format!("runAsUser: {uid}\n")));
    assert!(chart.contains(&format!("runAsGroup: {gid}\n")));
    // USER comes after every RUN: nothing the runtime stage runs at start is root's.
    let user_at = run.iter().position(|i| i.keyword == "USER").unwrap();
    assert!(run[user_at..].iter().all(|i| i.keyword != "RUN"));

    // State only in the volume, which the user owns; the port the binary listens on.
    let volume = one(run, "VOLUME");
    assert_eq!(volume, "/var/lib/portcullis");
    let setup = one(run, "RUN");
    // The IdP's TLS certificate is verified against the system's roots (reqwest's platform
    // verifier); the slim image has none until ca-certificates is installed.
    assert!(setup.contains("apt-get install -y --no-install-recommends ca-certificates"));
    assert!(setup.contains(&format!("install -d -o {uid} -g {gid} -m 0700 {volume}")));
    let env = one(run, "ENV");
    assert!(env.contains(&format!("PORTCULLIS_DATABASE_URL=sqlite://{volume}/")));
    assert!(env.contains("PORTCULLIS_LISTEN=0.0.0.0:8080"));
    assert_eq!(one(run, "EXPOSE"), "8080");

    // The health check is the script the image copies in.
    let health = one(run, "HEALTHCHECK");
    assert!(health.ends_with(r#"CMD ["/usr/local/bin/portcullis-healthcheck"]"#));
    assert!(run.iter().any(|i| i.keyword == "COPY"
        && i.args == "deploy/docker/healthcheck.sh /usr/local/bin/portcullis-healthcheck"));
    let mode = std::fs::metadata(repo().join("deploy/docker/healthcheck.sh"))
        .unwrap()
        .permissions()
        .mode();
    assert!(mode & 0o111 != 0, "healthcheck.sh must be executable");
}

/// `.dockerignore` as Docker reads it, for the patterns it uses: the last matching line wins;
/// a pattern matching a directory covers everything below it; `*` is one path segment (or part
/// of one), `**` any number of them.
fn ignored(patterns: &[(bool, Vec<String>)], path: &str) -> bool {
    fn seg(p: &str, s: &str) -> bool {
        match p.split_once('*') {
            None => p == s,
            Some((pre, post)) => {
                s.len() >= pre.len() + post.len() && s.starts_with(pre) && s.ends_with(post)
            }
        }
    }
    fn m(p: &[String], s: &[&str]) -> bool {
        match p.first() {
            // A pattern that matched a parent directory matches everything below it.
            None => true,
            Some(first) if first == "**" => (0..=s.len()).any(|i| m(&p[1..], &s[i..])),
            Some(first) => !s.is_empty() && seg(first, s[0]) && m(&p[1..], &s[1..]),
        }
    }
    let segments: Vec<&str> = path.split('/').collect();
    let mut out = false;
    for (include, p) in patterns {
        if m(p, &segments) {
            out = !include;
        }
    }
    out
}

fn dockerignore() -> Vec<(bool, Vec<String>)> {
    std::fs::read_to_string(repo().join(".dockerignore"))
        .unwrap()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (include, p) = match l.strip_prefix('!') {
                Some(p) => (true, p),
                None => (false, l),
            };
            let segs = p
                .trim_end_matches('/')
                .split('/')
                .map(String::from)
                .collect();
            (include, segs)
        })
        .collect()
}

#[test]
fn build_context_has_the_workspace_and_nothing_else() {
    let patterns = dockerignore();
    for kept in [
        "Cargo.toml",
        "Cargo.lock",
        "crates/cli/Cargo.toml",
        "crates/gateway/assets/client.js",
        "crates/core/src/lib.rs",
        "deploy/docker/healthcheck.sh",
    ] {
        assert!(
            !ignored(&patterns, kept),
            "{kept} must be in the build context"
        );
    }
    for left_out in [
        "target/release/portcullis",
        ".git/config",
        "tests/harness/node_modules/x.js",
        "crates/cli/portcullis.db",
        "README.md",
        "deploy/helm/portcullis/values.yaml",
    ] {
        assert!(ignored(&patterns, left_out), "{left_out} must stay out");
    }

    // Copy the context as Docker would send it and load it as the build will: the workspace
    // and its lock file must resolve there, offline, exactly (--locked).
    let ctx =
        std::env::temp_dir().join(format!("portcullis-docker-context-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&ctx);
    let mut files = 0;
    copy_context(&repo(), &repo(), &ctx, &patterns, &mut files);
    assert!(files > 20, "{files} files");
    let out = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--locked",
            "--offline",
            "--format-version",
            "1",
            "--no-deps",
        ])
        .current_dir(&ctx)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&ctx);
    assert!(
        out.status.success(),
        "the build context does not load as the workspace: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn copy_context(
    root: &Path,
    dir: &Path,
    to: &Path,
    patterns: &[(bool, Vec<String>)],
    files: &mut usize,
) {
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let path = e.path();
        let rel = path
            .strip_prefix(root)
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        if e.file_type().unwrap().is_dir() {
            // Docker walks into an excluded directory when a later `!` line may re-include
            // something below it; only `.git` and `target` are skipped outright, for speed.
            if rel == ".git" || rel == "target" || rel.ends_with("node_modules") {
                assert!(ignored(patterns, &rel), "{rel} must stay out");
                continue;
            }
            copy_context(root, &path, to, patterns, files);
        } else if !ignored(patterns, &rel) {
            let dest = to.join(&rel);
            std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
            std::fs::copy(&path, &dest).unwrap();
            *files += 1;
        }
    }
}

/// The binary and the health check, where the image's user can read them (the target
/// directory may not be).
fn image_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("portcullis-image-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(d.join("data")).unwrap();
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::copy(BIN, d.join("portcullis")).unwrap();
    std::fs::copy(
        repo().join("deploy/docker/healthcheck.sh"),
        d.join("healthcheck"),
    )
    .unwrap();
    d
}

/// The image's USER, as setpriv arguments.
fn as_image_user() -> Command {
    let stages = stages();
    let user = one(&stages[1].1, "USER").to_string();
    let (uid, gid) = user.split_once(':').unwrap();
    let mut c = Command::new("setpriv");
    c.arg(format!("--reuid={uid}"))
        .arg(format!("--regid={gid}"))
        .arg("--clear-groups")
        .env_clear()
        .env("PATH", "/usr/bin:/bin");
    c
}

#[test]
fn binary_runs_as_the_image_user() {
    assert!(
        current_uid() == 0,
        "this test switches to the image's user with setpriv and must run as root (as CI does)"
    );
    let d = image_dir("version");
    let out = as_image_user()
        .arg(d.join("portcullis"))
        .arg("--version")
        .output()
        .expect("setpriv (util-linux)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("portcullis {}\n", env!("CARGO_PKG_VERSION"))
    );
    // It really ran as that user: the same switch reports the uid.
    let id = as_image_user().args(["id", "-u"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&id.stdout).trim(), "65532");
    let _ = std::fs::remove_dir_all(&d);
}

fn current_uid() -> u32 {
    let out = Command::new("id").arg("-u").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

struct Server(Child);
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn healthcheck_passes_against_serve_as_the_image_user_and_fails_without_it() {
    assert!(
        current_uid() == 0,
        "this test must run as root (as CI does): it uses setpriv"
    );
    let d = image_dir("health");
    // The database directory is the volume: owned by the image's user, nothing else writable.
    let chown = Command::new("chown")
        .args(["65532:65532"])
        .arg(d.join("data"))
        .status()
        .unwrap();
    assert!(chown.success());
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");

    let health = |listen: &str| {
        as_image_user()
            .arg(d.join("healthcheck"))
            .env("PORTCULLIS_LISTEN", listen)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success()
    };
    assert!(!health(&listen), "nothing listens yet: the check must fail");

    let server = Server(
        as_image_user()
            .arg(d.join("portcullis"))
            .arg("serve")
            .env("PORTCULLIS_LISTEN", &listen)
            .env(
                "PORTCULLIS_DATABASE_URL",
                format!("sqlite://{}/portcullis.db", d.join("data").display()),
            )
            // An IdP that is not there: /healthz answers regardless, /readyz would not.
            .env(
                "OIDC_DISCOVERY_URL",
                "https://127.0.0.1:9/.well-known/openid-configuration",
            )
            .env("OIDC_REDIRECT_URL", "https://auth.example.com/api/callback")
            .env("OIDC_CLIENT_ID", "client")
            .env("OIDC_CLIENT_SECRET", "client-secret")
            .env(
                "JWT_SIGNING_SECRET",
                "image-test-signing-secret-0123456789-abcdef",
            )
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let start = Instant::now();
    while !health(&listen) {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the health check did not pass against portcullis serve"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        d.join("data/portcullis.db").exists(),
        "the database is in the volume"
    );
    // Another port: refused, so failing.
    assert!(!health(&format!("127.0.0.1:{}", free_port())));
    drop(server);
    let _ = std::fs::remove_dir_all(&d);
}
