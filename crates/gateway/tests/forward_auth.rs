//! Forward-auth with the real proxies: Debian's nginx (`auth_request`) and Caddy
//! (`forward_auth`) in front of the recording upstream, Portcullis beside them with no upstream
//! of its own, people signed in through the real OP via the proxy (the proxy routes `/api/*`
//! and `/.portcullis/*` to Portcullis on the same host, so cookies work). The proxy configs are
//! the README's recipes, byte for byte (checked by `readme_recipes_are_the_tested_ones`).
//!
//! Both proxies must be installed: a missing one fails the test with the install command.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use portcullis_core::config::RawPolicy;
use portcullis_core::time::ManualClock;
use serde_json::Value;
use tokio::process::{Child, Command};

/// The nginx recipe (README, "Forward-auth"): `{LISTEN}`, `{PORTCULLIS}` and `{APP}` are the
/// only differences between the README and what runs here.
const NGINX_RECIPE: &str = r#"# Portcullis answers /api/forward-auth; the app is "app".
upstream portcullis { server {PORTCULLIS}; }
upstream app { server {APP}; }

# A Portcullis API token is Portcullis's credential: never the app's (R-HD-4).
map $http_authorization $app_authorization {
    "~*^bearer\s+pcs_" "";
    default            $http_authorization;
}

server {
    listen {LISTEN};

    # Portcullis's own routes on the same host: sign-in, callback, its API, its scripts.
    location /api/ { proxy_pass http://portcullis; }
    location /.portcullis/ { proxy_pass http://portcullis; }

    # The pre-check: the original method and URI in X-Original-*, the client's headers as
    # they came, no body.
    location = /_portcullis_auth {
        internal;
        proxy_pass http://portcullis/api/forward-auth;
        proxy_pass_request_body off;
        proxy_set_header Content-Length "";
        proxy_set_header X-Original-Method $request_method;
        proxy_set_header X-Original-URI $request_uri;
        proxy_set_header X-Forwarded-For $remote_addr;
        # Only nginx names the original request: a client's copies of the other pair go.
        proxy_set_header X-Forwarded-Method "";
        proxy_set_header X-Forwarded-Uri "";
    }

    # nginx only understands 2xx/401/403 from auth_request: for a browser, Portcullis's 401
    # carries the sign-in URL in Location; anyone else gets the API's 401.
    location @portcullis_sign_in {
        if ($portcullis_sign_in) { return 302 $portcullis_sign_in; }
        default_type application/json;
        return 401 '{"error":"unauthorized"}';
    }

    location / {
        auth_request /_portcullis_auth;
        auth_request_set $portcullis_sign_in $upstream_http_location;
        error_page 401 = @portcullis_sign_in;

        # Identity headers from Portcullis's answer; every name is set (empty = not sent), so
        # a client's copy never reaches the app. nginx drops names with "_" (X_Forwarded_User).
        auth_request_set $pc_user $upstream_http_x_forwarded_user;
        auth_request_set $pc_email $upstream_http_x_forwarded_email;
        auth_request_set $pc_groups $upstream_http_x_forwarded_groups;
        auth_request_set $pc_username $upstream_http_x_forwarded_preferred_username;
        auth_request_set $pc_roles $upstream_http_x_forwarded_roles;
        proxy_set_header X-Forwarded-User $pc_user;
        proxy_set_header X-Forwarded-Email $pc_email;
        proxy_set_header X-Forwarded-Groups $pc_groups;
        proxy_set_header X-Forwarded-Preferred-Username $pc_username;
        proxy_set_header X-Forwarded-Roles $pc_roles;
        proxy_set_header X-Forwarded-Name "";
        proxy_set_header Remote-User "";
        proxy_set_header X-Remote-User "";
        proxy_set_header X-Auth-Request-User "";
        proxy_set_header X-Auth-Request-Email "";
        proxy_set_header X-Auth-Request-Groups "";
        proxy_set_header X-Auth-Request-Preferred-Username "";

        # Portcullis's credentials stay here: its cookies, API tokens, DPoP proofs.
        auth_request_set $pc_cookie $upstream_http_x_portcullis_upstream_cookie;
        proxy_set_header Cookie $pc_cookie;
        proxy_set_header Authorization $app_authorization;
        proxy_set_header DPoP "";

        # A refreshed session cookie goes back to the browser.
        auth_request_set $pc_set_cookie $upstream_http_set_cookie;
        add_header Set-Cookie $pc_set_cookie always;

        proxy_pass http://app;
    }
}
"#;

/// The Caddy recipe (README, "Forward-auth"): `{SITE}`, `{PORTCULLIS}` and `{APP}` differ.
const CADDY_RECIPE: &str = r#"{SITE} {
	# Portcullis's own routes on the same host: sign-in, callback, its API, its scripts.
	handle /api/* {
		reverse_proxy {PORTCULLIS}
	}
	handle /.portcullis/* {
		reverse_proxy {PORTCULLIS}
	}
	handle {
		route {
			# Identity-looking headers never come from the client (R-HD-1).
			request_header -Remote-User
			request_header -X-Remote-User
			request_header -X-Auth-Request-*
			request_header -X_*
			request_header -X-Forwarded-Name
			# Only Caddy names the original request: a client's X-Original-* go.
			request_header -X-Original-*
			# Caddy sends X-Forwarded-Method and X-Forwarded-Uri; a 302 to sign in, a 401 or
			# a 403 is passed to the client as it is.
			forward_auth {PORTCULLIS} {
				uri /api/forward-auth
				copy_headers X-Forwarded-User X-Forwarded-Email X-Forwarded-Groups X-Forwarded-Preferred-Username X-Forwarded-Roles X-Portcullis-Upstream-Cookie>Cookie
			}
			# Portcullis's credentials stay here: API tokens and DPoP proofs (its cookies
			# were replaced by X-Portcullis-Upstream-Cookie above).
			@portcullis_token header_regexp Authorization (?i)^bearer\s+pcs_
			request_header @portcullis_token -Authorization
			request_header -DPoP
			reverse_proxy {APP}
		}
	}
}
"#;

/// What the README shows in place of the test's addresses.
const README_NGINX: [(&str, &str); 3] = [
    ("{LISTEN}", "80"),
    ("{PORTCULLIS}", "127.0.0.1:8080"),
    ("{APP}", "127.0.0.1:3000"),
];
const README_CADDY: [(&str, &str); 3] = [
    ("{SITE}", "app.example.com"),
    ("{PORTCULLIS}", "127.0.0.1:8080"),
    ("{APP}", "127.0.0.1:3000"),
];

fn fill(recipe: &str, with: &[(&str, &str)]) -> String {
    with.iter()
        .fold(recipe.to_string(), |s, (k, v)| s.replace(k, v))
}

/// A free loopback port (bound and released; the proxy binds it a moment later).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `name` on PATH or in /usr/sbin (nginx lives there), or a failure saying how to install it.
fn binary(name: &str) -> PathBuf {
    let path = std::env::var("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "{name} is not installed: the forward-auth tests run the real one (`apt-get install -y {name}`; scripts/test installs it as root)"
            )
        })
}

/// A proxy running as a child process (killed on drop), with its files in a temp dir.
struct Proxy {
    child: Child,
    base: String,
    /// Config, logs and state; removed when the proxy is dropped.
    _dir: TempDir,
    log: PathBuf,
}

impl Proxy {
    /// Wait until it accepts connections; fail with its log if it exits first.
    async fn wait_listening(&mut self) {
        let addr = self.base.trim_start_matches("http://").to_string();
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(&addr).await.is_ok() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "the proxy exited ({status}): {}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "the proxy did not listen on {addr}: {}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }
}

/// nginx with the recipe, in front of `portcullis` and `app`, on `port`.
async fn start_nginx(port: u16, portcullis: &str, app: &str) -> Proxy {
    let nginx = binary("nginx");
    let dir = TempDir::new();
    let d = dir.0.display();
    let server = fill(
        NGINX_RECIPE,
        &[
            ("{LISTEN}", &format!("127.0.0.1:{port}")),
            ("{PORTCULLIS}", portcullis),
            ("{APP}", app),
        ],
    );
    // One process (no orphaned workers when the test ends), everything in the temp dir.
    let conf = format!(
        "master_process off;\ndaemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log info;\nevents {{ worker_connections 256; }}\nhttp {{\n  access_log {d}/access.log;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n{server}\n}}\n"
    );
    let file = dir.0.join("nginx.conf");
    std::fs::write(&file, conf).unwrap();
    let log = dir.0.join("error.log");
    let child = Command::new(nginx)
        .arg("-p")
        .arg(&dir.0)
        .arg("-c")
        .arg(&file)
        .arg("-e")
        .arg(&log)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("nginx starts");
    let mut p = Proxy {
        child,
        base: format!("http://127.0.0.1:{port}"),
        _dir: dir,
        log,
    };
    p.wait_listening().await;
    p
}

/// Caddy with the recipe, admin API and automatic HTTPS off, state in the temp dir.
async fn start_caddy(port: u16, portcullis: &str, app: &str) -> Proxy {
    let caddy = binary("caddy");
    let dir = TempDir::new();
    let site = fill(
        CADDY_RECIPE,
        &[
            ("{SITE}", &format!("http://127.0.0.1:{port}")),
            ("{PORTCULLIS}", portcullis),
            ("{APP}", app),
        ],
    );
    let file = dir.0.join("Caddyfile");
    std::fs::write(
        &file,
        format!("{{\n\tadmin off\n\tauto_https off\n}}\n\n{site}"),
    )
    .unwrap();
    let log = dir.0.join("caddy.log");
    let out = std::fs::File::create(&log).unwrap();
    let child = Command::new(caddy)
        .args(["run", "--adapter", "caddyfile", "--config"])
        .arg(&file)
        .env("HOME", &dir.0)
        .env("XDG_DATA_HOME", dir.0.join("data"))
        .env("XDG_CONFIG_HOME", dir.0.join("config"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(out)
        .kill_on_drop(true)
        .spawn()
        .expect("caddy starts");
    let mut p = Proxy {
        child,
        base: format!("http://127.0.0.1:{port}"),
        _dir: dir,
        log,
    };
    p.wait_listening().await;
    p
}

/// Portcullis in forward-auth mode (no upstream of its own) behind the public origin
/// `public`, trusting the proxies' address (127.0.0.1); alice (admins, devs) is admin, bob
/// (devs) is powerUser only; `/admin` is for admins.
async fn portcullis(
    public: &str,
    dpop_paths: Option<&'static str>,
    clock: Option<Arc<ManualClock>>,
) -> TestEnv {
    TestEnv::start_with(Options {
        public_base: Some(public.to_string()),
        clock,
        tweak: Box::new(move |raw, _| {
            raw.upstream = None;
            raw.forward_auth_trusted_proxies = Some(vec!["127.0.0.1/32".into()]);
            raw.roles.insert("admin".into(), vec!["admins".into()]);
            raw.roles.insert("powerUser".into(), vec!["devs".into()]);
            raw.policies = Some(vec![RawPolicy {
                path: "/admin".into(),
                methods: None,
                roles: vec!["admin".into()],
            }]);
            if let Some(p) = dpop_paths {
                raw.dpop_paths = Some(vec![p.into()]);
            }
        }),
        ..Default::default()
    })
    .await
}

/// Which proxy a scenario runs behind.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Kind {
    Nginx,
    Caddy,
}

async fn behind(
    kind: Kind,
    dpop_paths: Option<&'static str>,
    clock: Option<Arc<ManualClock>>,
) -> (TestEnv, Proxy) {
    let port = free_port();
    let public = format!("http://127.0.0.1:{port}");
    let mut env = portcullis(&public, dpop_paths, clock).await;
    let gw = env.gw.addr.to_string();
    let app = env.upstream.addr.to_string();
    let proxy = match kind {
        Kind::Nginx => start_nginx(port, &gw, &app).await,
        Kind::Caddy => start_caddy(port, &gw, &app).await,
    };
    // From here on every request, sign-in included, goes through the proxy.
    env.base = public;
    (env, proxy)
}

/// The whole story behind one proxy.
async fn scenario(kind: Kind) {
    let (mut env, _proxy) = behind(kind, None, None).await;
    let base = env.base.clone();

    // Anonymous browser navigation → sign-in, and back to the original URI.
    let anon = Browser::new();
    let r = anon.get(&format!("{base}/reports/q?x=1")).await;
    assert_eq!(r.status, 302, "{kind:?}: {}", r.body);
    assert_eq!(
        r.location().unwrap(),
        format!("{base}/api/login?rd=%2Freports%2Fq%3Fx%3D1"),
        "{kind:?}"
    );
    // An API client → 401 JSON, the API's body.
    let r = answer(
        reqwest::Client::new()
            .get(format!("{base}/reports/q"))
            .header("accept", "application/json"),
    )
    .await;
    assert_eq!(r.status, 401, "{kind:?}");
    let v: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v, serde_json::json!({"error": "unauthorized"}), "{kind:?}");
    // A POST is never a navigation.
    let r = answer(reqwest::Client::new().post(format!("{base}/reports/q"))).await;
    assert_eq!(r.status, 401, "{kind:?}");
    assert_eq!(env.upstream.count(), 0, "{kind:?}: nothing reached the app");

    // Signing in goes through the proxy to Portcullis and back to the original URI.
    let alice = Browser::new();
    let r = alice
        .sign_in(&env, "/reports/q?x=1", ALICE.0, ALICE.1)
        .await;
    assert_eq!(r.location().unwrap(), format!("{base}/reports/q?x=1"));

    // Signed in: the app sees the identity headers (the proxy path's set and encoding) and
    // none of the client's spoofed ones, nor Portcullis's cookies or proofs.
    alice.set_cookie(&base, "app_pref", "dark");
    let r = alice
        .get_with(
            &format!("{base}/reports/q?x=1"),
            &[
                ("x-forwarded-user", "mallory"),
                ("X-Forwarded-Roles", "admin"),
                ("x-forwarded-email", "mallory@example.com"),
                ("X_Forwarded_User", "mallory"),
                ("remote-user", "mallory"),
                ("x-auth-request-user", "mallory"),
                ("dpop", "not-a-proof"),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{kind:?}: {}", r.body);
    assert_eq!(r.body, "upstream saw /reports/q");
    let got = env.upstream.requests().pop().unwrap();
    assert_eq!(got.uri, "/reports/q?x=1");
    let alice_id = got.one("x-forwarded-user").unwrap();
    assert_ne!(alice_id, "mallory");
    assert!(!alice_id.is_empty());
    assert_eq!(
        got.one("x-forwarded-email").as_deref(),
        Some("alice@example.com")
    );
    assert_eq!(
        got.one("x-forwarded-roles").as_deref(),
        Some("admin,powerUser")
    );
    assert_eq!(
        got.one("x-forwarded-preferred-username").as_deref(),
        Some("alice")
    );
    assert!(got.one("x-forwarded-groups").unwrap().contains("admins"));
    for spoof in [
        "x_forwarded_user",
        "remote-user",
        "x-auth-request-user",
        "dpop",
    ] {
        assert!(
            got.header(spoof).iter().all(|v| v.is_empty()),
            "{kind:?}: {spoof} reached the app: {:?}",
            got.headers
        );
    }
    let cookie = got.header("cookie").join("; ");
    assert!(cookie.contains("app_pref=dark"), "{kind:?}: {cookie}");
    assert!(
        !cookie.contains("__Host-")
            && !cookie.contains("session")
            && !cookie.contains("csrf_token"),
        "{kind:?}: Portcullis's cookies reached the app: {cookie}"
    );

    // A policy refusal: bob is no admin → 403, the app is not reached.
    let bob = Browser::new();
    bob.sign_in(&env, "/", BOB.0, BOB.1).await;
    let before = env.upstream.count();
    for path in [
        "/admin",
        "/admin/",
        "/x/../admin/users",
        "/%61dmin",
        "//admin",
    ] {
        // A client naming another request itself changes nothing.
        let r = bob
            .get_with(
                &format!("{base}{path}"),
                &[
                    ("x-original-method", "GET"),
                    ("x-original-uri", "/reports"),
                    ("x-forwarded-method", "GET"),
                    ("x-forwarded-uri", "/reports"),
                ],
            )
            .await;
        assert_eq!(r.status, 403, "{kind:?} {path}: {}", r.body);
        if kind == Kind::Caddy {
            // Caddy passes Portcullis's page through: it names the role needed.
            assert!(r.body.contains("admin"), "{}", r.body);
        }
    }
    assert_eq!(
        env.upstream.count(),
        before,
        "{kind:?}: refused requests reached the app"
    );
    // Alice may.
    assert_eq!(alice.get(&format!("{base}/admin/users")).await.status, 200);

    // R-CSRF through the proxy: an unsafe cookie request without the token never reaches the
    // app; with it (as the browser client sends it), it does.
    let url = format!("{base}/reports/q");
    let before = env.upstream.count();
    let r = answer(
        reqwest::Client::new()
            .post(&url)
            .header("cookie", alice.session_cookies(&base))
            .header("origin", &base),
    )
    .await;
    assert_eq!(r.status, 403, "{kind:?}: {}", r.body);
    assert_eq!(env.upstream.count(), before, "{kind:?}");
    let r = alice
        .send(
            alice.raw().post(&url).header("origin", &base).body("x=1"),
            &url,
        )
        .await;
    assert_eq!(r.status, 200, "{kind:?}: {}", r.body);
    let got = env.upstream.requests().pop().unwrap();
    assert_eq!((got.method.as_str(), got.body_len), ("POST", 3), "{kind:?}");

    // An API token works through the proxy, and never reaches the app.
    let (token, _) = new_token(&alice, &env, "script").await;
    let r = answer(
        reqwest::Client::new()
            .get(format!("{base}/data"))
            .header("authorization", format!("Bearer {token}")),
    )
    .await;
    assert_eq!(r.status, 200, "{kind:?}: {}", r.body);
    let got = env.upstream.requests().pop().unwrap();
    assert_eq!(got.one("x-forwarded-user"), Some(alice_id.clone()));
    assert!(
        got.header("authorization").iter().all(|v| v.is_empty()),
        "{kind:?}: the token reached the app"
    );
    // The app's own Authorization passes.
    let r = answer(
        reqwest::Client::new()
            .get(format!("{base}/data"))
            .header("cookie", alice.session_cookies(&base))
            .header("authorization", "Basic YXBwOmFwcA=="),
    )
    .await;
    assert_eq!(r.status, 200, "{kind:?}: {}", r.body);
    let got = env.upstream.requests().pop().unwrap();
    assert_eq!(
        got.one("authorization").as_deref(),
        Some("Basic YXBwOmFwcA=="),
        "{kind:?}"
    );
    let r = answer(
        reqwest::Client::new()
            .get(format!("{base}/data"))
            .header("authorization", "Bearer pcs_wrongwrongwr_x"),
    )
    .await;
    assert_eq!(r.status, 401, "{kind:?}: a bad token");

    // Portcullis stopped: the proxy refuses (5xx), the app is not reached.
    let before = env.upstream.count();
    env.gw.shutdown();
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..3 {
        let r = alice.get(&format!("{base}/reports/q")).await;
        assert!(
            r.status >= 500,
            "{kind:?}: {} with Portcullis down",
            r.status
        );
    }
    assert_eq!(
        env.upstream.count(),
        before,
        "{kind:?}: the app was reached without Portcullis"
    );
}

#[tokio::test]
async fn nginx_auth_request() {
    scenario(Kind::Nginx).await;
}

#[tokio::test]
async fn caddy_forward_auth() {
    scenario(Kind::Caddy).await;
}

/// A DPoP-bound session through forward-auth: where the proxy path wants a proof
/// (`PORTCULLIS_DPOP_PATHS`), forward-auth wants one for the ORIGINAL method and URI (the
/// proxy passes the client's `DPoP` header along); page navigations need none.
#[tokio::test]
async fn dpop_proofs_name_the_original_request() {
    for kind in [Kind::Nginx, Kind::Caddy] {
        let (env, _proxy) = behind(kind, Some("/app-api/"), None).await;
        let base = env.base.clone();
        let b = Browser::new();
        b.sign_in(&env, "/", ALICE.0, ALICE.1).await;
        assert_eq!(b.get(&format!("{base}/page")).await.status, 200, "{kind:?}");
        let url = format!("{base}/app-api/items");
        let get = |proof: Option<String>| {
            let mut r = b.raw().get(&url).header("accept", "application/json");
            if let Some(p) = proof {
                r = r.header("dpop", p);
            }
            b.send(r, &url)
        };
        let before = env.upstream.count();
        assert_eq!(get(None).await.status, 401, "{kind:?}: no proof");
        let other = b.proof("GET", &format!("{base}/app-api/other"));
        assert_eq!(
            get(Some(other)).await.status,
            401,
            "{kind:?}: a proof for another URI"
        );
        let post = b.proof("POST", &url);
        assert_eq!(
            get(Some(post)).await.status,
            401,
            "{kind:?}: a proof for another method"
        );
        assert_eq!(env.upstream.count(), before, "{kind:?}");
        let proof = b.proof("GET", &url);
        let r = get(Some(proof.clone())).await;
        assert_eq!(r.status, 200, "{kind:?}: {}", r.body);
        let got = env.upstream.requests().pop().unwrap();
        assert!(
            got.header("dpop").iter().all(|v| v.is_empty()),
            "{kind:?}: the proof reached the app"
        );
        // A proof is good once (RFC 9449 §11.1).
        assert_eq!(
            get(Some(proof)).await.status,
            401,
            "{kind:?}: a replayed proof"
        );
    }
}

/// R-SJ-4 through nginx: a session JWT that is due is re-issued in the forward-auth answer and
/// the recipe hands the cookie to the browser, so an active person stays signed in while only
/// browsing the app. (Caddy cannot; see the README.)
#[tokio::test]
async fn nginx_hands_a_refreshed_session_to_the_browser() {
    let clock = ManualClock::at_now();
    let (env, _proxy) = behind(Kind::Nginx, None, Some(clock.clone())).await;
    let page = format!("{}/page", env.base);
    let b = Browser::new();
    b.sign_in(&env, "/", ALICE.0, ALICE.1).await;
    let first = b.cookie(&env.base, "__Host-session").unwrap();
    let r = b.get(&page).await;
    assert_eq!(r.status, 200);
    assert!(!r.sets_session(), "not due yet");
    // 10 minutes or less left: re-issued.
    clock.advance(1300);
    let r = b.get(&page).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.sets_session(), "{:?}", r.set_cookies());
    let second = b.cookie(&env.base, "__Host-session").unwrap();
    assert_ne!(first, second);
    // Past the first JWT's expiry, the new one carries on.
    clock.advance(1000);
    assert_eq!(b.get(&page).await.status, 200);
    // Without it, the person would have been sent to sign in.
    b.set_cookie(&env.base, "__Host-session", &first);
    assert_eq!(b.get(&page).await.status, 302);
}

/// The original request is believed only from a trusted proxy: a client that reaches
/// Portcullis directly is refused (403) whatever it claims, and nobody is trusted by default.
#[tokio::test]
async fn forward_auth_headers_are_believed_only_from_trusted_proxies() {
    let port = free_port();
    let public = format!("http://127.0.0.1:{port}");
    let mut env = portcullis(&public, None, None).await;
    let direct = format!("http://{}/api/forward-auth", env.gw.addr);
    let nginx = start_nginx(
        port,
        &env.gw.addr.to_string(),
        &env.upstream.addr.to_string(),
    )
    .await;
    env.base = nginx.base.clone();
    let alice = Browser::new();
    alice.sign_in(&env, "/", ALICE.0, ALICE.1).await;
    let cookies = alice.session_cookies(&env.base);

    // From 127.0.0.2 (not trusted), with alice's cookies and either header pair: 403.
    let stranger = program("127.0.0.2");
    for (m, u) in [
        ("x-original-method", "x-original-uri"),
        ("x-forwarded-method", "x-forwarded-uri"),
    ] {
        let r = answer(
            stranger
                .get(&direct)
                .header("cookie", &cookies)
                .header(m, "GET")
                .header(u, "/admin"),
        )
        .await;
        assert_eq!(r.status, 403, "{u}: {}", r.body);
        assert!(r.headers.get("x-forwarded-user").is_none());
        assert!(
            r.body.contains("PORTCULLIS_FORWARD_AUTH_TRUSTED_PROXIES"),
            "{}",
            r.body
        );
    }
    // The trusted address with alice's cookies: the original request decides.
    let trusted = program("127.0.0.1");
    let ask = |uri: &'static str| {
        trusted
            .get(&direct)
            .header("cookie", &cookies)
            .header("x-forwarded-method", "GET")
            .header("x-forwarded-uri", uri)
    };
    let r = answer(ask("/reports")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(!r.headers["x-forwarded-user"].is_empty());
    assert_eq!(r.headers["cache-control"], "no-store");
    // Every identity name is present (empty when there is no value), and the cookies for the
    // app are the client's without Portcullis's.
    for n in [
        "x-forwarded-user",
        "x-forwarded-email",
        "x-forwarded-groups",
        "x-forwarded-preferred-username",
        "x-forwarded-roles",
        "x-portcullis-upstream-cookie",
    ] {
        assert_eq!(r.headers.get_all(n).iter().count(), 1, "{n}");
    }
    assert_eq!(r.headers["x-portcullis-upstream-cookie"], "");
    // Missing, duplicated or conflicting pairs from a trusted proxy: refused, never 2xx.
    let r = answer(trusted.get(&direct).header("cookie", &cookies)).await;
    assert_eq!(r.status, 400, "{}", r.body);
    let r = answer(ask("/reports").header("x-forwarded-uri", "/admin")).await;
    assert_eq!(r.status, 400, "{}", r.body);
    let r = answer(
        ask("/reports")
            .header("x-original-method", "GET")
            .header("x-original-uri", "/elsewhere"),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    let r = answer(ask("http://evil.example/reports")).await;
    assert_eq!(r.status, 400, "{}", r.body);
    // Methods the proxy path never forwards.
    let r = answer(
        trusted
            .get(&direct)
            .header("cookie", &cookies)
            .header("x-forwarded-method", "TRACE")
            .header("x-forwarded-uri", "/reports"),
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(env.upstream.count(), 0);

    // Default configuration: nobody is trusted, not even loopback.
    let plain = TestEnv::start().await;
    let r = answer(
        program("127.0.0.1")
            .get(format!("{}/api/forward-auth", plain.base))
            .header("x-original-method", "GET")
            .header("x-original-uri", "/"),
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.body);
}

/// The README's recipes are these tests' configurations, with only the addresses changed.
#[test]
fn readme_recipes_are_the_tested_ones() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"))
            .unwrap();
    for (name, recipe, with) in [
        ("nginx", NGINX_RECIPE, &README_NGINX),
        ("Caddy", CADDY_RECIPE, &README_CADDY),
    ] {
        let shown = fill(recipe, with);
        assert!(
            readme.contains(&shown),
            "the README's {name} recipe is not the tested one; it should read:\n{shown}"
        );
    }
}
