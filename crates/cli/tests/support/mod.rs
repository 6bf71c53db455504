//! What the tests that run `portcullis serve` processes share (`mod support;`): a free port,
//! waiting for an address to answer, and starting a replica.
#![allow(clippy::unwrap_used, clippy::panic, dead_code)]

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

/// A free loopback port (bound, then released for a process to take).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Wait until `url` answers `want` (30 s at most; `what` explains a failure).
pub async fn wait_for(url: &str, want: u16, what: &dyn Fn() -> String) {
    let http = reqwest::Client::new();
    let t0 = Instant::now();
    loop {
        if let Ok(r) = http.get(url).send().await
            && r.status().as_u16() == want
        {
            return;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "{url} never answered {want}:\n{}",
            what()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One `portcullis serve` on `127.0.0.1:port` with `env`, killed on drop; its stderr goes to
/// `serve-PORT.log` in `dir`. Returns once it is ready.
pub async fn serve(port: u16, env: &[(&str, String)], dir: &Path) -> Child {
    let log = dir.join(format!("serve-{port}.log"));
    let mut c = Command::new(env!("CARGO_BIN_EXE_portcullis"));
    c.arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "info")
        .env("PORTCULLIS_LISTEN", format!("127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .kill_on_drop(true);
    for (k, v) in env {
        c.env(k, v);
    }
    let child = c.spawn().unwrap();
    wait_for(&format!("http://127.0.0.1:{port}/readyz"), 200, &|| {
        std::fs::read_to_string(&log).unwrap_or_default()
    })
    .await;
    child
}

/// `portcullis serve` as [`serve`] starts it, stderr kept in memory (a pipe, so a file-size
/// limit on the process does not cut its log), and with `fsize` its files limited to that
/// many bytes (`RLIMIT_FSIZE`, with `SIGXFSZ` ignored so an over-size write fails with
/// `EFBIG` instead of killing it): a full disk, without privileges. Does not wait for
/// readiness.
pub fn serve_limited(
    port: u16,
    env: &[(&str, String)],
    fsize: Option<u64>,
) -> (Child, std::sync::Arc<std::sync::Mutex<String>>) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_portcullis"));
    c.arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "info")
        .env("PORTCULLIS_LISTEN", format!("127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in env {
        c.env(k, v);
    }
    if let Some(limit) = fsize {
        // SAFETY: between fork and exec only async-signal-safe calls (signal, setrlimit).
        unsafe {
            c.pre_exec(move || {
                if libc::signal(libc::SIGXFSZ, libc::SIG_IGN) == libc::SIG_ERR {
                    return Err(std::io::Error::last_os_error());
                }
                // Only the soft limit: [`lift_file_limit`] can raise it again (the disk
                // freed) without privileges.
                let lim = libc::rlimit {
                    rlim_cur: limit,
                    rlim_max: libc::RLIM_INFINITY,
                };
                if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let mut child = c.spawn().unwrap();
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let mut stderr = child.stderr.take().unwrap();
    let sink = log.clone();
    tokio::spawn(async move {
        use tokio::io::AsyncReadExt;
        let mut buf = [0u8; 8192];
        while let Ok(n) = stderr.read(&mut buf).await {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    (child, log)
}

/// Lift the file-size limit [`serve_limited`] set on a running `child`: the disk is no
/// longer full.
pub fn lift_file_limit(child: &Child) {
    let pid = child.id().expect("the child is running") as libc::pid_t;
    let lim = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: prlimit(2) on our own child with a valid new limit and no old-limit pointer.
    let rc = unsafe { libc::prlimit(pid, libc::RLIMIT_FSIZE, &lim, std::ptr::null_mut()) };
    assert_eq!(rc, 0, "prlimit: {}", std::io::Error::last_os_error());
}

/// Stop `child` as an orchestrator does (SIGTERM) and wait for it to exit.
pub async fn terminate(child: &mut Child) {
    if let Some(pid) = child.id() {
        // SAFETY: a plain kill(2) of our own child.
        unsafe {
            libc::kill(pid as libc::pid_t, libc::SIGTERM);
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(20), child.wait()).await;
}
