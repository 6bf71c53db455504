//! The Helm chart in `deploy/helm/portcullis`, rendered with Helm's template engine (Go's
//! text/template and sprig, through `deploy/helm/render`): the vendor guide's `values.yaml`
//! examples (seed 000) and seed 001's `authentication.yaml` as a second values file render into
//! exactly seed 000's environment table, secrets only by reference; the schema refuses typos;
//! several replicas need PostgreSQL; every object passes the Kubernetes schemas
//! (`kubernetes-validate`); and the rendered environment loads with `portcullis serve --check`.
//!
//! Needs Go with Debian's sprig (`apt-get install golang-go golang-github-masterminds-sprig-dev`)
//! and `pip install kubernetes-validate`; without them these tests fail, saying so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use base64::Engine;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");
/// Kubernetes releases the objects are checked against: the chart's `kubeVersion` floor and a
/// current one.
const KUBE_VERSIONS: &[&str] = &["1.25.0", "1.33.0"];
const INSTALL_GO: &str = "install Go and sprig: apt-get install golang-go golang-github-masterminds-sprig-dev (Debian; .ci/run does this)";
const INSTALL_KV: &str =
    "install kubernetes-validate: pip install kubernetes-validate==1.37.0 (.ci/run does this)";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}
fn chart() -> PathBuf {
    repo().join("deploy/helm/portcullis")
}
fn seed(name: &str) -> PathBuf {
    repo().join("fixtures/seeds").join(name)
}
fn tmp() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("helm_chart")
}

/// The renderer, built once per test binary, offline, in GOPATH mode against Debian's Go
/// packages (no module download).
fn renderer() -> &'static Path {
    static R: OnceLock<PathBuf> = OnceLock::new();
    R.get_or_init(|| {
        let out = tmp().join("render");
        std::fs::create_dir_all(tmp()).unwrap();
        let built = Command::new("go")
            .args(["build", "-o"])
            .arg(&out)
            .arg("./deploy/helm/render")
            .current_dir(repo())
            .env("GO111MODULE", "off")
            .env("GOPATH", "/usr/share/gocode")
            .env("GOCACHE", tmp().join("gocache"))
            .env("GOFLAGS", "")
            .output()
            .unwrap_or_else(|e| panic!("cannot run `go` ({e}): {INSTALL_GO}"));
        assert!(
            built.status.success(),
            "building deploy/helm/render failed ({INSTALL_GO}):\n{}",
            String::from_utf8_lossy(&built.stderr)
        );
        out
    })
}

/// Write `text` as a values file of its own.
fn values_file(name: &str, text: &str) -> PathBuf {
    std::fs::create_dir_all(tmp()).unwrap();
    let p = tmp().join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// `helm template` with these values files, in order: the YAML, or Helm's error message.
fn render_yaml(values: &[&Path]) -> Result<String, String> {
    render_as(values, "yaml")
}
fn render_as(values: &[&Path], output: &str) -> Result<String, String> {
    let mut c = Command::new(renderer());
    c.arg("--chart").arg(chart()).args([
        "--name",
        "auth",
        "--namespace",
        "gateway",
        "--output",
        output,
    ]);
    for v in values {
        c.arg("--values").arg(v);
    }
    let out = c.output().unwrap();
    if out.status.success() {
        Ok(String::from_utf8(out.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// The rendered objects, by kind.
/// What helm says when values break the chart's schema.
const SCHEMA: &str = "values don't meet the specifications of the schema";

/// `base` plus a values file `name` holding `text` must not render, and the error must say
/// every one of `want`.
fn assert_refused(base: &[&Path], name: &str, text: &str, want: &[&str]) {
    let bad = values_file(name, text);
    let mut files = base.to_vec();
    files.push(&bad);
    let err = render_yaml(&files).unwrap_err();
    for w in want {
        assert!(err.contains(w), "{name}: wanted {w:?} in {err}");
    }
}

fn render(values: &[&Path]) -> BTreeMap<String, Value> {
    let json = render_as(values, "json").unwrap_or_else(|e| panic!("render failed: {e}"));
    let objects: Vec<Value> = serde_json::from_str(&json).unwrap();
    let mut by_kind = BTreeMap::new();
    for o in objects {
        let mut kind = o["kind"].as_str().unwrap().to_string();
        // The further identity providers' configuration file is a second Secret.
        if kind == "Secret" && o["metadata"]["name"].as_str().unwrap().ends_with("-idps") {
            kind = "Secret/idps".into();
        }
        assert!(by_kind.insert(kind.clone(), o).is_none(), "two {kind}s");
    }
    by_kind
}

fn container(objects: &BTreeMap<String, Value>) -> &Value {
    let containers = objects["Deployment"]["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap();
    assert_eq!(containers.len(), 1);
    &containers[0]
}

/// What an entry of the container's environment is.
#[derive(Clone, Debug, PartialEq)]
enum Env {
    Value(String),
    /// Read from this key of the release's Secret.
    Secret(String),
}
use Env::Value as V;

fn v(s: &str) -> Env {
    V(s.to_string())
}
fn secret_ref(key: &str) -> Env {
    Env::Secret(key.to_string())
}

/// The container's environment, in order. Panics on anything but a plain value or a
/// `secretKeyRef` to the release's Secret.
fn env_of(objects: &BTreeMap<String, Value>) -> Vec<(String, Env)> {
    container(objects)["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let name = e["name"].as_str().unwrap().to_string();
            let entry = if let Some(value) = e.get("value") {
                V(value.as_str().expect("env values are strings").to_string())
            } else {
                let r = &e["valueFrom"]["secretKeyRef"];
                assert_eq!(r["name"], "auth-portcullis", "{name}: {e}");
                secret_ref(r["key"].as_str().unwrap())
            };
            (name, entry)
        })
        .collect()
}

fn expect(list: Vec<(&str, Env)>) -> Vec<(String, Env)> {
    list.into_iter().map(|(n, e)| (n.to_string(), e)).collect()
}

/// Seed 000's "Environment Variable Reference", row by row, for its discovery example: empty
/// fields (the three endpoints) are not injected; the redirect URL is generated from
/// `global.dnsRecord`; scopes, claim keys and the insecure flag carry the guide's defaults.
fn seed000_discovery_env() -> Vec<(&'static str, Env)> {
    vec![
        ("API_AUTH", v("OIDC")),
        (
            "OIDC_DISCOVERY_URL",
            v("https://your-org.okta.com/.well-known/openid-configuration"),
        ),
        (
            "OIDC_REDIRECT_URL",
            v("https://qualytics.example.com/api/callback"),
        ),
        ("OIDC_SCOPES", v("openid,email,profile")),
        ("OIDC_CLIENT_ID", secret_ref("OIDC_CLIENT_ID")),
        ("OIDC_CLIENT_SECRET", secret_ref("OIDC_CLIENT_SECRET")),
        ("OIDC_USER_ID_KEY", v("sub")),
        ("OIDC_USER_EMAIL_KEY", v("email")),
        ("OIDC_USER_NAME_KEY", v("name")),
        ("OIDC_USER_FNAME_KEY", v("given_name")),
        ("OIDC_USER_LNAME_KEY", v("family_name")),
        ("OIDC_USER_PICTURE_KEY", v("picture")),
        ("OIDC_USER_PROVIDER_KEY", v("iss")),
        ("OIDC_ALLOW_INSECURE_HTTP", v("false")),
        ("JWT_SIGNING_SECRET", secret_ref("JWT_SIGNING_SECRET")),
    ]
}

/// Portcullis's own, for one replica: the listen port and SQLite on the data volume.
fn own_sqlite() -> Vec<(&'static str, Env)> {
    vec![
        ("PORTCULLIS_LISTEN", v("0.0.0.0:8080")),
        (
            "PORTCULLIS_DATABASE_URL",
            v("sqlite:///var/lib/portcullis/portcullis.db"),
        ),
    ]
}

fn secret_data(objects: &BTreeMap<String, Value>) -> BTreeMap<String, String> {
    objects["Secret"]["data"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(v.as_str().unwrap())
                .unwrap();
            (k.clone(), String::from_utf8(bytes).unwrap())
        })
        .collect()
}

/// No secret value appears anywhere but in the Secret, and every secret variable is a
/// reference.
fn assert_secrets_by_reference(objects: &BTreeMap<String, Value>) {
    let secrets = secret_data(objects);
    for (kind, o) in objects {
        if kind == "Secret" {
            continue;
        }
        let text = o.to_string();
        for (key, value) in &secrets {
            assert!(
                !text.contains(value.as_str()),
                "{kind} contains the value of {key}"
            );
        }
    }
    for (name, entry) in env_of(objects) {
        if [
            "OIDC_CLIENT_SECRET",
            "JWT_SIGNING_SECRET",
            "JWT_SIGNING_SECRET_PREVIOUS",
        ]
        .contains(&name.as_str())
            || (name == "PORTCULLIS_DATABASE_URL"
                && !matches!(&entry, V(s) if s.starts_with("sqlite:")))
        {
            assert!(matches!(entry, Env::Secret(_)), "{name} is inlined");
        }
        if let V(s) = &entry {
            assert!(!s.is_empty(), "{name} is injected empty");
        }
    }
}

/// Run `portcullis serve --check` with exactly the rendered environment, secret references
/// resolved from the rendered Secret (and the identity providers' file from its Secret, where
/// the pod mounts it): the chart's output is a configuration that loads.
fn assert_loads(objects: &BTreeMap<String, Value>) {
    let secrets = secret_data(objects);
    let idps_file = objects.get("Secret/idps").map(|o| {
        let text = base64::engine::general_purpose::STANDARD
            .decode(o["data"]["portcullis.yaml"].as_str().unwrap())
            .unwrap();
        values_file("idps-portcullis.yaml", &String::from_utf8(text).unwrap())
    });
    let mut c = Command::new(BIN);
    c.env_clear()
        .args(["serve", "--check"])
        .env("RUST_LOG", "warn");
    for (name, entry) in env_of(objects) {
        let value = match entry {
            V(s) => s,
            Env::Secret(k) => secrets
                .get(&k)
                .unwrap_or_else(|| panic!("{name}: key {k} is not in the Secret"))
                .clone(),
        };
        let value = match (&idps_file, name.as_str()) {
            (Some(f), "PORTCULLIS_CONFIG") => {
                assert_eq!(value, "/etc/portcullis/identity-providers/portcullis.yaml");
                f.display().to_string()
            }
            _ => value,
        };
        c.env(name, value);
    }
    let out = c.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "serve --check refused the chart's environment:\n{stderr}"
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "configuration OK\n");
    assert!(
        !stderr.contains("unknown setting"),
        "the chart sets a variable Portcullis does not know:\n{stderr}"
    );
}

/// Fails the test, saying how to install it, when kubernetes-validate is missing: a missing tool
/// must never pass for a valid chart.
fn require_kubernetes_validate() {
    static CHECKED: OnceLock<()> = OnceLock::new();
    CHECKED.get_or_init(|| {
        let out = Command::new("python3")
            .args(["-m", "kubernetes_validate", "--version"])
            .output()
            .unwrap_or_else(|e| panic!("cannot run python3 ({e}): {INSTALL_KV}"));
        assert!(
            out.status.success(),
            "kubernetes-validate is not installed for python3: {INSTALL_KV}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
}

fn kubernetes_validate(yaml: &str, name: &str) -> Result<(), String> {
    require_kubernetes_validate();
    let file = values_file(&format!("{name}.rendered.yaml"), yaml);
    for k in KUBE_VERSIONS {
        let out = Command::new("python3")
            .args(["-m", "kubernetes_validate", "--strict", "--quiet", "-k", k])
            .arg(&file)
            .output()
            .unwrap_or_else(|e| panic!("cannot run kubernetes-validate ({e}): {INSTALL_KV}"));
        if !out.status.success() {
            return Err(format!(
                "Kubernetes {k}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    Ok(())
}

/// Render, check the objects against the Kubernetes schemas, and return them.
fn render_valid(name: &str, values: &[&Path]) -> BTreeMap<String, Value> {
    let yaml = render_yaml(values).unwrap_or_else(|e| panic!("render failed: {e}"));
    kubernetes_validate(&yaml, name).unwrap_or_else(|e| panic!("{name}: {e}"));
    render(values)
}

#[test]
fn seed000_discovery_example_renders_the_environment_table() {
    let objects = render_valid("discovery", &[&seed("seed000-values-discovery.yaml")]);
    let mut want = seed000_discovery_env();
    want.extend(own_sqlite());
    assert_eq!(env_of(&objects), expect(want));
    assert_secrets_by_reference(&objects);
    let s = secret_data(&objects);
    assert_eq!(s["OIDC_CLIENT_ID"], "your-client-id");
    assert_eq!(s["OIDC_CLIENT_SECRET"], "your-client-secret");
    assert_eq!(
        s["JWT_SIGNING_SECRET"],
        "your-secure-random-string-min-32-chars"
    );
    assert_eq!(s.len(), 3, "{s:?}");
    // One replica: no PodDisruptionBudget (it would block every node drain); no Ingress
    // unless asked for.
    assert_eq!(
        objects.keys().collect::<Vec<_>>(),
        ["Deployment", "Secret", "Service"]
    );
    assert_loads(&objects);
}

#[test]
fn seed000_manual_example_renders_the_environment_table() {
    let objects = render_valid("manual", &[&seed("seed000-values-manual.yaml")]);
    let mut want = vec![
        ("API_AUTH", v("OIDC")),
        (
            "OIDC_REDIRECT_URL",
            v("https://qualytics.example.com/api/callback"),
        ),
        ("OIDC_SCOPES", v("openid,email,profile")),
        (
            "OIDC_AUTHORIZATION_ENDPOINT",
            v("https://login.example.com/oauth2/authorize"),
        ),
        (
            "OIDC_TOKEN_ENDPOINT",
            v("https://login.example.com/oauth2/token"),
        ),
        (
            "OIDC_USERINFO_ENDPOINT",
            v("https://login.example.com/oauth2/userinfo"),
        ),
    ];
    // The rest of the table as in the discovery example (no discovery URL: it is empty).
    want.extend(seed000_discovery_env().into_iter().filter(|(n, _)| {
        ![
            "API_AUTH",
            "OIDC_DISCOVERY_URL",
            "OIDC_REDIRECT_URL",
            "OIDC_SCOPES",
        ]
        .contains(n)
    }));
    want.extend(own_sqlite());
    assert_eq!(env_of(&objects), expect(want));
    assert_secrets_by_reference(&objects);
    assert_loads(&objects);
}

#[test]
fn seed001_authentication_yaml_as_second_values_file() {
    let objects = render_valid(
        "with-seed001",
        &[
            &seed("seed000-values-discovery.yaml"),
            &seed("seed001-authentication.yaml"),
        ],
    );
    // Seed 000's table; seed 001's scope replaces the scopes (its file comes last, and its
    // empty discoveryUri does not remove the discovery URL). Its other settings follow.
    let mut want: Vec<_> = seed000_discovery_env()
        .into_iter()
        .map(|(n, e)| match n {
            "OIDC_SCOPES" => (n, v("openid,email")),
            _ => (n, e),
        })
        .collect();
    want.extend([
        ("OIDC_JWS_ALGORITHM", v("RS256")),
        ("OIDC_USER_USERNAME_KEY", v("email")),
        ("OIDC_USER_GROUPS_KEY", v("groups")),
        ("OIDC_CUSTOM_PARAMETERS", v("access_type=offline")),
        (
            "PORTCULLIS_ROLES",
            v(r#"{"admin":["oidc-admin-role-for-stackstate"],"guest":["oidc-guest-role-for-stackstate"],"platformAdmin":["oidc-platform-admin-role-for-stackstate"],"powerUser":["oidc-power-user-role-for-stackstate"]}"#),
        ),
    ]);
    want.extend(own_sqlite());
    assert_eq!(env_of(&objects), expect(want));
    assert_secrets_by_reference(&objects);
    // The client of seed 001's file, given last, is the one in the Secret.
    let s = secret_data(&objects);
    assert_eq!(s["OIDC_CLIENT_ID"], "<client-id-from-oidc-provider>");
    assert_eq!(s["OIDC_CLIENT_SECRET"], "<secret-from-oidc-provider>");
    assert_loads(&objects);

    // Seed 001's Microsoft variant on the manual example: offline_access reaches the scopes.
    let objects = render_valid(
        "microsoft",
        &[
            &seed("seed000-values-manual.yaml"),
            &seed("seed001-microsoft.yaml"),
        ],
    );
    let env = env_of(&objects);
    assert!(env.contains(&("OIDC_SCOPES".into(), v("openid,email,offline_access"))));
    assert!(env.contains(&("OIDC_USER_USERNAME_KEY".into(), v("preferred_username"))));
    assert_secrets_by_reference(&objects);
    assert_loads(&objects);
}

#[test]
fn pod_is_non_root_read_only_and_probed() {
    let objects = render(&[&seed("seed000-values-discovery.yaml")]);
    let pod = &objects["Deployment"]["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["securityContext"]["runAsUser"], 65532);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    assert_eq!(pod["automountServiceAccountToken"], false);
    assert_eq!(pod["enableServiceLinks"], false);
    // SQLite: never two pods on the database during a rollout.
    assert_eq!(
        objects["Deployment"]["spec"]["strategy"]["type"],
        "Recreate"
    );
    let c = container(&objects);
    let sc = &c["securityContext"];
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["capabilities"]["drop"], serde_json::json!(["ALL"]));
    assert!(c["resources"]["requests"]["cpu"].is_string());
    assert!(c["resources"]["requests"]["memory"].is_string());
    // The gateway's routes: /healthz answers at once, /readyz once the IdP is loaded.
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(c["livenessProbe"]["httpGet"]["port"], "http");
    assert_eq!(c["ports"][0]["name"], "http");
    assert_eq!(c["ports"][0]["containerPort"], 8080);
    // Everything writable is an emptyDir (SQLite's directory and /tmp).
    let volumes = pod["volumes"].as_array().unwrap();
    assert!(
        volumes.iter().all(|v| v.get("emptyDir").is_some()),
        "{volumes:?}"
    );
    let mounts: Vec<_> = c["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["mountPath"].as_str().unwrap())
        .collect();
    assert_eq!(mounts, ["/var/lib/portcullis", "/tmp"]);
    let gateway_routes = std::fs::read_to_string(repo().join("crates/gateway/src/app.rs")).unwrap();
    assert!(gateway_routes.contains(r#".route(own("/healthz")"#));
    assert!(gateway_routes.contains(r#".route(own("/readyz")"#));
}

#[test]
fn several_replicas_need_postgresql() {
    let two = values_file("two.yaml", "portcullis:\n  replicas: 2\n");
    let err = render_yaml(&[&seed("seed000-values-discovery.yaml"), &two]).unwrap_err();
    assert!(
        err.contains("portcullis.replicas is 2 but the database is SQLite")
            && err.contains("portcullis.database.url"),
        "{err}"
    );

    let pg = values_file(
        "postgres.yaml",
        r#"portcullis:
  replicas: 3
  upstream: http://app.apps.svc:3000
  database:
    url: "postgres://portcullis:db-password-1234@db.internal:5432/portcullis?sslmode=require"
  ingress:
    enabled: true
    className: nginx
    tlsSecretName: auth-tls
  previousJwtSigningSecret: "the-previous-signing-secret-0123456789"
  adminRoles: [admin]
  noRole: guest
  policies:
    - {path: /admin/, methods: [GET, POST], roles: [admin, platformAdmin]}
  offlineRecheck: 600
  extraVolumes: [{name: db-ca, secret: {secretName: db-ca}}]
  extraVolumeMounts: [{name: db-ca, mountPath: /etc/portcullis/db-ca, readOnly: true}]
"#,
    );
    let objects = render_valid(
        "postgres",
        &[
            &seed("seed000-values-discovery.yaml"),
            &seed("seed001-authentication.yaml"),
            &pg,
        ],
    );
    assert_eq!(
        objects.keys().collect::<Vec<_>>(),
        [
            "Deployment",
            "Ingress",
            "PodDisruptionBudget",
            "Secret",
            "Service"
        ]
    );
    assert_eq!(objects["Deployment"]["spec"]["replicas"], 3);
    // PostgreSQL: the default rolling update keeps replicas serving.
    assert!(objects["Deployment"]["spec"].get("strategy").is_none());
    assert_eq!(objects["PodDisruptionBudget"]["spec"]["maxUnavailable"], 1);
    assert_eq!(
        objects["Ingress"]["spec"]["rules"][0]["host"],
        "qualytics.example.com"
    );
    let pod = &objects["Deployment"]["spec"]["template"]["spec"];
    assert_eq!(pod["volumes"][2]["secret"]["secretName"], "db-ca");
    assert_eq!(
        pod["containers"][0]["volumeMounts"][2]["mountPath"],
        "/etc/portcullis/db-ca"
    );
    let env = env_of(&objects);
    let get = |n: &str| &env.iter().find(|(k, _)| k == n).unwrap().1;
    assert_eq!(
        get("PORTCULLIS_DATABASE_URL"),
        &secret_ref("PORTCULLIS_DATABASE_URL")
    );
    assert_eq!(
        get("JWT_SIGNING_SECRET_PREVIOUS"),
        &secret_ref("JWT_SIGNING_SECRET_PREVIOUS")
    );
    assert_eq!(get("PORTCULLIS_UPSTREAM"), &v("http://app.apps.svc:3000"));
    assert_eq!(get("PORTCULLIS_OFFLINE_RECHECK"), &v("600"));
    assert_eq!(
        get("PORTCULLIS_POLICIES"),
        &v(r#"[{"methods":["GET","POST"],"path":"/admin/","roles":["admin","platformAdmin"]}]"#)
    );
    assert_secrets_by_reference(&objects);
    assert_eq!(
        secret_data(&objects)["PORTCULLIS_DATABASE_URL"],
        "postgres://portcullis:db-password-1234@db.internal:5432/portcullis?sslmode=require"
    );
    assert_loads(&objects);
}

#[test]
fn existing_secret_replaces_the_rendered_one() {
    let own = values_file(
        "existing.yaml",
        r#"global: {dnsRecord: auth.example.com}
secrets:
  oidc: {oidc_discovery_url: "https://idp.example.com/.well-known/openid-configuration"}
portcullis:
  existingSecret: portcullis-oidc
  replicas: 2
  database: {existingSecret: portcullis-db, existingSecretKey: url}
"#,
    );
    let yaml = render_yaml(&[&own]).unwrap();
    kubernetes_validate(&yaml, "existing").unwrap();
    let objects = render(&[&own]);
    assert!(!objects.contains_key("Secret"));
    let env = &container(&objects)["env"];
    let refs: Vec<_> = env
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e.get("valueFrom"))
        .map(|r| {
            let r = &r["secretKeyRef"];
            format!(
                "{}/{}",
                r["name"].as_str().unwrap(),
                r["key"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        refs,
        [
            "portcullis-oidc/OIDC_CLIENT_ID",
            "portcullis-oidc/OIDC_CLIENT_SECRET",
            "portcullis-oidc/JWT_SIGNING_SECRET",
            "portcullis-db/url",
            "portcullis-oidc/JWT_SIGNING_SECRET_PREVIOUS",
        ]
    );
}

/// The metrics port and forward-auth's trusted proxies, when set: a container port and the
/// two settings; otherwise neither (the seed examples above render without them).
#[test]
fn metrics_port_and_forward_auth_proxies() {
    let own = values_file(
        "metrics.yaml",
        r#"global: {dnsRecord: auth.example.com}
secrets:
  oidc: {oidc_discovery_url: "https://idp.example.com/.well-known/openid-configuration", oidc_client_id: c, oidc_client_secret: s}
  auth: {jwt_signing_secret: "0123456789abcdef0123456789abcdef-x"}
portcullis:
  metricsPort: 9464
  forwardAuthTrustedProxies: [10.0.0.0/8, "fd00::/8"]
"#,
    );
    let objects = render_valid("metrics", &[&own]);
    let c = container(&objects);
    let ports: Vec<_> = c["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap(),
                p["containerPort"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(ports, [("http", 8080), ("metrics", 9464)]);
    let env = env_of(&objects);
    let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, e)| e.clone());
    assert_eq!(get("PORTCULLIS_METRICS_LISTEN"), Some(v("0.0.0.0:9464")));
    assert_eq!(
        get("PORTCULLIS_FORWARD_AUTH_TRUSTED_PROXIES"),
        Some(v("10.0.0.0/8,fd00::/8"))
    );
    assert_loads(&objects);
    let bad = values_file("metrics-bad.yaml", "portcullis:\n  metricsPort: 70000\n");
    assert!(
        render_yaml(&[&bad]).is_err(),
        "a port out of range is refused"
    );
}

/// The signed identity assertion's settings, when set, become its four variables; the seed
/// examples above render none of them (off). Out-of-range values are refused by the schema.
#[test]
fn assertion_settings() {
    let own = values_file(
        "assertion.yaml",
        r#"global: {dnsRecord: auth.example.com}
secrets:
  oidc: {oidc_discovery_url: "https://idp.example.com/.well-known/openid-configuration", oidc_client_id: c, oidc_client_secret: s}
  auth: {jwt_signing_secret: "0123456789abcdef0123456789abcdef-x"}
portcullis:
  upstream: http://app:8080
  assertion:
    header: X-Portcullis-Assertion
    audience: https://app.example.com
    lifetime: 30
    rotation: 43200
"#,
    );
    let objects = render_valid("assertion", &[&own]);
    let env = env_of(&objects);
    let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, e)| e.clone());
    assert_eq!(
        get("PORTCULLIS_ASSERTION_HEADER"),
        Some(v("X-Portcullis-Assertion"))
    );
    assert_eq!(
        get("PORTCULLIS_ASSERTION_AUDIENCE"),
        Some(v("https://app.example.com"))
    );
    assert_eq!(get("PORTCULLIS_ASSERTION_LIFETIME"), Some(v("30")));
    assert_eq!(get("PORTCULLIS_ASSERTION_ROTATION"), Some(v("43200")));
    assert_loads(&objects);
    for (name, text, want) in [
        (
            "assertion-lifetime.yaml",
            "portcullis:\n  assertion:\n    lifetime: 5\n",
            "minimum",
        ),
        (
            "assertion-rotation.yaml",
            "portcullis:\n  assertion:\n    rotation: 60\n",
            "minimum",
        ),
        (
            "assertion-header.yaml",
            "portcullis:\n  assertion:\n    header: \"X Bad\"\n",
            "does not match",
        ),
        (
            "assertion-typo.yaml",
            "portcullis:\n  assertion:\n    hedaer: X-A\n",
            "'hedaer' was unexpected",
        ),
    ] {
        assert_refused(&[&own], name, text, &[SCHEMA, want]);
    }
}

#[test]
fn schema_rejects_typos_and_wrong_types() {
    for (name, text, want) in [
        (
            "typo-own.yaml",
            "portcullis:\n  replica: 2\n",
            "'replica' was unexpected",
        ),
        (
            "typo-oidc.yaml",
            "secrets:\n  oidc:\n    oidc_clientid: x\n",
            "'oidc_clientid' was unexpected",
        ),
        (
            "typo-top.yaml",
            "clientID: x\n",
            "'clientID' was unexpected",
        ),
        (
            "auth-type.yaml",
            "global:\n  authType: SAML\n",
            "'SAML' is not one of ['OIDC']",
        ),
        (
            "replicas-type.yaml",
            "portcullis:\n  replicas: \"2\"\n",
            "'2' is not of type 'integer'",
        ),
        (
            "sqlite-url.yaml",
            "portcullis:\n  database:\n    url: \"sqlite:///x.db\"\n",
            "does not match",
        ),
    ] {
        assert_refused(
            &[&seed("seed000-values-discovery.yaml")],
            name,
            text,
            &[SCHEMA, want],
        );
    }
}

#[test]
fn chart_refuses_incomplete_values() {
    for (text, want) in [
        (
            "secrets: {auth: {jwt_signing_secret: short}}\n",
            "jwt_signing_secret must be at least 32 characters",
        ),
        (
            "global: {dnsRecord: \"\"}\n",
            "global.dnsRecord is required",
        ),
        (
            "secrets: {oidc: {oidc_discovery_url: \"\"}}\n",
            "set secrets.oidc.oidc_discovery_url",
        ),
        (
            "customParameters: {prompt: \"login,consent\"}\n",
            "may not contain",
        ),
    ] {
        let f = values_file("incomplete.yaml", text);
        let err = render_yaml(&[&seed("seed000-values-discovery.yaml"), &f]).unwrap_err();
        assert!(err.contains(want), "{text}: {err}");
    }
}

/// The Kubernetes schema check is not a formality: it refuses an object with a field the API
/// does not have.
#[test]
fn kubernetes_validate_refuses_a_bad_object() {
    let yaml = render_yaml(&[&seed("seed000-values-discovery.yaml")]).unwrap();
    let bad = yaml.replacen("          imagePullPolicy:", "          imagePulPolicy:", 1);
    assert_ne!(bad, yaml);
    let err = kubernetes_validate(&bad, "bad").unwrap_err();
    assert!(err.contains("imagePulPolicy"), "{err}");
}

/// Several identity providers: the list goes into a Secret of its own, mounted where
/// PORTCULLIS_CONFIG points, and loads; private_key_jwt, PAR and an https upstream's CA and
/// client certificate come from Secrets mounted read-only.
#[test]
fn identity_providers_client_key_and_upstream_tls() {
    let own = values_file(
        "idps.yaml",
        r#"global: {dnsRecord: auth.example.com}
secrets:
  oidc: {oidc_discovery_url: "https://idp.example.com/.well-known/openid-configuration", oidc_client_id: c, oidc_client_secret: s}
  auth: {jwt_signing_secret: "0123456789abcdef0123456789abcdef-x"}
portcullis:
  upstream: http://app:8080
  idpName: Example Staff
  idpEmailDomains: [example.com]
  identityProviders:
    - id: partner
      name: Partner Corp
      emailDomains: [partner.example]
      discoveryUri: https://login.partner.example/.well-known/openid-configuration
      clientId: gateway
      secret: partner-client-secret-value
      claims: {groups: realm_access.roles}
      roles: {admin: [platform-admin]}
"#,
    );
    let objects = render_valid("idps", &[&own]);
    let env = env_of(&objects);
    let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, e)| e.clone());
    assert_eq!(get("OIDC_DISPLAY_NAME"), Some(v("Example Staff")));
    assert_eq!(get("OIDC_EMAIL_DOMAINS"), Some(v("example.com")));
    assert_eq!(
        get("PORTCULLIS_CONFIG"),
        Some(v("/etc/portcullis/identity-providers/portcullis.yaml"))
    );
    // The partner's secret is in its Secret only, never in the Deployment.
    let deployment = objects["Deployment"].to_string();
    assert!(!deployment.contains("partner-client-secret-value"));
    let pod = &objects["Deployment"]["spec"]["template"]["spec"];
    assert!(
        pod["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["name"] == "identity-providers"
                && v["secret"]["secretName"] == "auth-portcullis-idps"),
        "{pod}"
    );
    assert!(
        objects["Deployment"]["spec"]["template"]["metadata"]["annotations"]
            ["checksum/identity-providers"]
            .is_string()
    );
    assert_loads(&objects);

    // A Secret of the operator's instead: mounted, nothing rendered.
    let theirs = values_file(
        "idps-existing.yaml",
        "portcullis:\n  identityProvidersSecret: my-idps\n",
    );
    let objects = render_valid("idps-existing", &[&own, &theirs]);
    assert!(!objects.contains_key("Secret/idps"));
    assert!(
        objects["Deployment"]
            .to_string()
            .contains("\"secretName\":\"my-idps\"")
    );

    // private_key_jwt with PAR, and an https upstream with a CA and a client certificate.
    let tls = values_file(
        "client-key.yaml",
        r#"secrets:
  oidc: {oidc_client_secret: ""}
portcullis:
  upstream: https://app:8443
  tokenEndpointAuthMethod: private_key_jwt
  pushedAuthorizationRequests: required
  clientKey: {secretName: gw-client-key, keyId: key-1, alg: ES256}
  upstreamTls: {caSecretName: app-ca, clientCertSecretName: gw-client-cert}
"#,
    );
    let objects = render_valid("client-key", &[&own, &tls]);
    let env = env_of(&objects);
    let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, e)| e.clone());
    assert_eq!(
        get("OIDC_TOKEN_ENDPOINT_AUTH_METHOD"),
        Some(v("private_key_jwt"))
    );
    assert_eq!(
        get("OIDC_PUSHED_AUTHORIZATION_REQUESTS"),
        Some(v("required"))
    );
    assert_eq!(
        get("OIDC_CLIENT_KEY_FILE"),
        Some(v("/etc/portcullis/client-key/client-key.pem"))
    );
    assert_eq!(get("OIDC_CLIENT_KEY_ID"), Some(v("key-1")));
    assert_eq!(get("OIDC_CLIENT_ASSERTION_ALG"), Some(v("ES256")));
    assert_eq!(
        get("PORTCULLIS_UPSTREAM_CA_FILE"),
        Some(v("/etc/portcullis/upstream-ca/ca.crt"))
    );
    assert_eq!(
        get("PORTCULLIS_UPSTREAM_CLIENT_CERT_FILE"),
        Some(v("/etc/portcullis/upstream-client/tls.crt"))
    );
    assert_eq!(
        get("PORTCULLIS_UPSTREAM_CLIENT_KEY_FILE"),
        Some(v("/etc/portcullis/upstream-client/tls.key"))
    );
    let mounts = container(&objects)["volumeMounts"].to_string();
    for m in [
        "/etc/portcullis/client-key",
        "/etc/portcullis/upstream-ca",
        "/etc/portcullis/upstream-client",
    ] {
        assert!(mounts.contains(m), "{m} not mounted: {mounts}");
    }

    // private_key_jwt needs the key's Secret; a typo in an entry is refused by the schema.
    for (name, text, want) in [
        (
            "client-key-missing.yaml",
            "secrets:\n  oidc: {oidc_client_secret: \"\"}\nportcullis:\n  tokenEndpointAuthMethod: private_key_jwt\n",
            "portcullis.clientKey.secretName",
        ),
        (
            "idp-typo.yaml",
            "portcullis:\n  identityProviders:\n    - id: x\n      clientId: y\n      clientSecrte: z\n",
            "'clientSecrte' was unexpected",
        ),
        (
            "idp-bad-id.yaml",
            "portcullis:\n  identityProviders:\n    - id: Not_Valid\n      clientId: y\n",
            "does not match",
        ),
    ] {
        assert_refused(&[&own], name, text, &[want]);
    }
}
