//! Three `portcullis serve` processes on one real PostgreSQL behind real nginx as a
//! round-robin load balancer, as operators run several replicas: a sign-in started on one
//! replica completes on another; the IdP's back-channel logout, arriving at one replica, is
//! refused by all three within a second; a replica killed with SIGKILL loses no session.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../gateway/tests/common/mod.rs"]
mod common;
mod support;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};
use support::{free_port, serve, wait_for};
use tokio::process::{Child, Command};

/// nginx (Debian's) in front of the replicas, round robin, on `port`. Each answer names the
/// replica that gave it in `X-Replica`.
async fn nginx(port: u16, replicas: &[u16], dir: &Path) -> Child {
    let nginx = ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or_else(|| panic!("nginx is required (Debian: apt-get install nginx; scripts/test installs it as root)"));
    let tmp = dir.join("nginx-tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let servers: String = replicas
        .iter()
        .map(|p| format!("server 127.0.0.1:{p} max_fails=1 fail_timeout=30s;"))
        .collect();
    let d = dir.display();
    let t = tmp.display();
    let conf = format!(
        "worker_processes 1; pid {d}/nginx.pid; error_log {d}/nginx-error.log; daemon off;
events {{ worker_connections 256; }}
http {{
  access_log off;
  client_body_temp_path {t}/body; proxy_temp_path {t}/proxy; fastcgi_temp_path {t}/fastcgi;
  uwsgi_temp_path {t}/uwsgi; scgi_temp_path {t}/scgi;
  upstream portcullis {{ {servers} keepalive 8; }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://portcullis;
      proxy_http_version 1.1;
      proxy_set_header Connection \"\";
      proxy_set_header Host $http_host;
      proxy_next_upstream error timeout;
      add_header X-Replica $upstream_addr always;
    }}
  }}
}}
"
    );
    let file = dir.join("nginx.conf");
    std::fs::write(&file, conf).unwrap();
    let child = Command::new(nginx)
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(&file)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    wait_for(&format!("http://127.0.0.1:{port}/healthz"), 200, &|| {
        std::fs::read_to_string(dir.join("nginx-error.log")).unwrap_or_default()
    })
    .await;
    child
}

/// The replica that gave the answer (after a retry nginx lists every one it tried).
fn replica_of(r: &Resp) -> String {
    let tried = r.header("x-replica").unwrap_or_default();
    tried.rsplit(", ").next().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn three_replicas_behind_nginx_share_sign_ins_logouts_and_survive_sigkill() {
    let db = portcullis_store::testing::fresh_postgres_database().await;
    let ports = [free_port(), free_port(), free_port()];
    let lb_port = free_port();
    let public = format!("http://127.0.0.1:{lb_port}");
    let redirect = format!("{public}/api/callback");
    let mut c = client(&redirect, "client_secret_post", "RS256");
    c["backchannel_logout_uri"] = json!(format!("{public}/api/backchannel-logout"));
    c["backchannel_logout_session_required"] = json!(true);
    let op = Op::start(json!({"clients": [c]})).await;
    let upstream = Upstream::start().await;
    let dir = TempDir::new();
    let env = vec![
        ("OIDC_DISCOVERY_URL", op.discovery_url()),
        ("OIDC_CLIENT_ID", CLIENT_ID.to_string()),
        ("OIDC_CLIENT_SECRET", CLIENT_SECRET.to_string()),
        ("OIDC_REDIRECT_URL", redirect.clone()),
        ("OIDC_SCOPES", "openid,email,profile,groups".to_string()),
        ("OIDC_ALLOW_INSECURE_HTTP", "true".to_string()),
        ("JWT_SIGNING_SECRET", JWT_SECRET.to_string()),
        ("PORTCULLIS_UPSTREAM", format!("http://{}", upstream.addr)),
        ("PORTCULLIS_DATABASE_URL", db.clone()),
    ];
    let mut replicas = Vec::new();
    for p in ports {
        replicas.push(serve(p, &env, &dir.0).await);
    }
    let _lb = nginx(lb_port, &ports, &dir.0).await;
    let bases: Vec<String> = ports
        .iter()
        .map(|p| format!("http://127.0.0.1:{p}"))
        .collect();

    // Sign in through the load balancer: the transaction is stored by one replica and the
    // callback lands on another.
    let b = Browser::new();
    b.set_htu_origin(&public);
    let start = b.get(&format!("{public}/api/login?rd=/")).await;
    assert_eq!(start.status, 302, "{}", start.body);
    let started_on = replica_of(&start);
    let cb = b
        .authorize_at_op(&start.location().unwrap(), &public, ALICE.0, ALICE.1)
        .await;
    let done = b.get(&cb).await;
    assert_eq!(done.status, 302, "callback: {}", done.body);
    assert!(done.sets_session());
    let finished_on = replica_of(&done);
    assert!(!started_on.is_empty() && !finished_on.is_empty());
    assert_ne!(
        started_on, finished_on,
        "round robin: begun on one replica, finished on another"
    );

    // Browsing: every replica serves the session (through the balancer and directly).
    let mut seen = std::collections::HashSet::new();
    for _ in 0..6 {
        let r = b.get(&format!("{public}/reports")).await;
        assert_eq!(r.status, 200, "{}", r.body);
        seen.insert(replica_of(&r));
    }
    assert_eq!(seen.len(), 3, "all three replicas answered: {seen:?}");
    for base in &bases {
        for name in [
            "__Host-session",
            "__Host-fp",
            "csrf_token",
            "portcullis_session",
            "portcullis_fp",
        ] {
            if b.cookie(&public, name).is_some() {
                b.share_cookie(&public, base, name);
            }
        }
        assert_eq!(b.session_status(base).await, 200, "{base}");
    }

    // SIGKILL one replica: nginx moves on, the session keeps working everywhere, and the
    // replica restarted on its port knows it too (sessions live in PostgreSQL, not in a
    // process).
    replicas[1].start_kill().unwrap();
    replicas[1].wait().await.unwrap();
    for _ in 0..4 {
        let r = b.get(&format!("{public}/reports")).await;
        assert_eq!(r.status, 200, "after SIGKILL: {}", r.body);
        assert_ne!(replica_of(&r), format!("127.0.0.1:{}", ports[1]));
    }
    replicas[1] = serve(ports[1], &env, &dir.0).await;
    assert_eq!(
        b.session_status(&bases[1]).await,
        200,
        "the restarted replica"
    );

    // The IdP ends Alice's session and sends its back-channel logout to the public URL: one
    // replica receives it; all three refuse the session within a second.
    let (r, _) = b
        .follow(
            &format!("{}/session/end?client_id={CLIENT_ID}", op.issuer),
            Some(&public),
        )
        .await;
    assert!(r.status < 500, "{} {}", r.status, r.body);
    let calls: Vec<Value> = op.log().await;
    assert!(
        calls.iter().any(|c| c["path"] == "/session/end/confirm"),
        "the OP confirmed the logout: {calls:?}"
    );
    let t0 = Instant::now();
    loop {
        let mut statuses = Vec::new();
        for base in &bases {
            statuses.push(b.session_status(base).await);
        }
        if statuses.iter().all(|s| *s == 401) {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(1),
            "not refused by every replica within a second: {statuses:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let before = upstream.count();
    let r = b
        .get_with(
            &format!("{public}/reports"),
            &[("accept", "application/json")],
        )
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(upstream.count(), before, "the app is not reached");
}
