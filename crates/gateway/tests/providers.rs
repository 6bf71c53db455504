//! Provider profiles: every IdP seed 000 names, each reproduced by the real `oidc-provider`
//! shaped like that IdP (issuer path, claims, scopes, client authentication), each a full
//! sign-in through the gateway, checking what the app and `/api/session` see. The README's
//! "Identity providers" table says what to set for each.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use portcullis_core::config::{RawSettings, parse_file};
use serde_json::{Value, json};

/// What `/api/session` says about the signed-in browser.
async fn session(b: &Browser, env: &TestEnv) -> Value {
    let s = b
        .get_with(
            &format!("{}/api/session", env.base),
            &[("accept", "application/json")],
        )
        .await;
    assert_eq!(s.status, 200, "{}", s.body);
    serde_json::from_str(&s.body).unwrap()
}

/// One proxied request; the identity headers the app received.
async fn app_sees(b: &Browser, env: &TestEnv) -> Received {
    let r = b.get(&format!("{}/app", env.base)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    env.upstream.requests().pop().unwrap()
}

/// The sign-in's `/auth` request at the OP, as the gateway sent it.
async fn auth_query(env: &TestEnv) -> Value {
    env.op
        .log()
        .await
        .into_iter()
        .find(|e| e["path"] == "/auth")
        .expect("an authorization request")["query"]
        .clone()
}

/// Apply a YAML `authentication.yaml` fragment under the test's settings, as an operator would
/// (the environment wins; the test's scope/algorithm defaults are dropped so the file's count).
fn with_file(raw: &mut RawSettings, yaml: &str) {
    raw.scopes = None;
    raw.jws_algorithms = None;
    let mut f = parse_file("authentication.yaml", yaml).unwrap();
    f.overlay(raw);
    *raw = f;
}

// ------------------------------------------------------------------------------------------
// Microsoft Entra ID (v2 endpoint)
// ------------------------------------------------------------------------------------------

const TENANT: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";
const G_ADMINS: &str = "b5e1c7a0-3d2f-4e8b-9c61-0f4a2d7e8b13";
const G_OTHER: &str = "0c2f8e4d-91a7-4b3e-8d55-6e1f0a9b2c47";

/// Seed 001's Microsoft example, word for word, plus the admin role keyed by a group GUID.
fn entra_yaml() -> String {
    format!(
        r#"jwsAlgorithm: RS256
scope: ["openid", "email", "offline_access"]
usernameField: preferred_username
groupsField: groups
admin: ["{G_ADMINS}"]
guest: []
"#
    )
}

/// An OP shaped like Entra ID v2: issuer `…/<tenant>/v2.0`, refresh tokens for
/// `offline_access` alone, `tid` in the ID token, groups as GUIDs, a userinfo without groups
/// (Entra's userinfo never lists them).
async fn entra(tweak: impl FnOnce(&mut RawSettings) + Send + 'static) -> TestEnv {
    let env = TestEnv::start_with(Options {
        op_extra: json!({"issuer_path": format!("/{TENANT}/v2.0"), "refresh_tokens": "microsoft"}),
        tweak: Box::new(move |raw, _| {
            with_file(raw, &entra_yaml());
            tweak(raw);
        }),
        ..Default::default()
    })
    .await;
    env.op
        .control(
            "user",
            json!({"login": "alice", "claims": {"groups": [G_ADMINS, G_OTHER]}}),
        )
        .await;
    env.op
        .mode(json!({"userinfo": {"claims": {"groups": null}}}))
        .await;
    env
}

/// The ID token of a groups overage: no `groups`, a distributed claim at `endpoint` instead.
async fn overage_token(env: &TestEnv, endpoint: &str) {
    env.op
        .mode(json!({"id_token": {"sign": "valid", "claims": {
            "tid": TENANT,
            "groups": null,
            "_claim_names": {"groups": "src1"},
            "_claim_sources": {"src1": {"endpoint": endpoint}},
        }}}))
        .await;
}

fn source_url(env: &TestEnv, host: &str) -> String {
    format!("http://{host}:{}/groups-source", env.op.port)
}

/// A refused sign-in: the overage page, no session cookie, nothing stored.
async fn assert_overage_refused(env: &TestEnv, b: &Browser) {
    let cb = b.start_login(env, "/", ALICE.0, ALICE.1).await;
    let r = b.get(&cb).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("too many groups"), "{}", r.body);
    assert!(!r.sets_session());
    env.assert_nothing_stored().await;
}

/// Entra ID v2 with seed 001's exact Microsoft settings: the tenant issuer, `offline_access`
/// requested (and a refresh token kept), `preferred_username` as the username, a role granted
/// by a group GUID.
#[tokio::test]
async fn entra_id_v2_guid_groups_preferred_username_offline_access() {
    let env = entra(|_| {}).await;
    env.op
        .mode(json!({"id_token": {"sign": "valid", "claims": {"tid": TENANT}}}))
        .await;
    assert!(env.op.issuer.ends_with(&format!("/{TENANT}/v2.0")));
    let b = Browser::new();
    b.sign_in(&env, "/", ALICE.0, ALICE.1).await;

    let q = auth_query(&env).await;
    let scopes: Vec<&str> = q["scope"].as_str().unwrap().split(' ').collect();
    assert_eq!(scopes, ["openid", "email", "offline_access"]);

    let s = session(&b, &env).await;
    assert_eq!(s["roles"], json!(["admin"]));
    assert_eq!(s["user"]["issuer"], json!(env.op.issuer));
    assert_eq!(s["user"]["username"], json!("alice"));
    assert_eq!(s["user"]["groups"], json!([G_ADMINS, G_OTHER]));
    let got = app_sees(&b, &env).await;
    assert_eq!(got.header("x-forwarded-roles"), ["admin"]);
    assert_eq!(
        got.one("x-forwarded-preferred-username").as_deref(),
        Some("alice")
    );
    // offline_access alone brought a refresh token (Microsoft's shape); it is kept.
    let token = env
        .op
        .log()
        .await
        .into_iter()
        .filter(|e| e["path"] == "/token")
        .count();
    assert_eq!(token, 1);
}

/// Groups overage: the distributed claim is fetched from the (allowed) source with the access
/// token, and its GUIDs grant the role.
#[tokio::test]
async fn entra_overage_groups_are_fetched_and_grant_the_role() {
    let env = entra(|_| {}).await;
    overage_token(&env, &source_url(&env, "127.0.0.1")).await;
    let b = Browser::new();
    b.sign_in(&env, "/", ALICE.0, ALICE.1).await;
    assert_eq!(env.op.calls("/groups-source").await, 1);
    // Counted with the IdP calls.
    let metrics = env.gw.state.metrics.encode(None).unwrap();
    assert!(
        metrics.contains(
            r#"portcullis_idp_request_duration_seconds_count{endpoint="groups_source"} 1"#
        ),
        "{metrics}"
    );
    let s = session(&b, &env).await;
    assert_eq!(s["roles"], json!(["admin"]));
    assert_eq!(s["user"]["groups"], json!([G_ADMINS, G_OTHER]));
    assert_eq!(
        app_sees(&b, &env).await.header("x-forwarded-roles"),
        ["admin"]
    );
}

/// The source fails (HTTP 503) and the outcome is the default `deny`: the error page, no
/// cookie, nobody signed in.
#[tokio::test]
async fn entra_overage_source_failing_with_deny_refuses() {
    let env = entra(|_| {}).await;
    overage_token(&env, &source_url(&env, "127.0.0.1")).await;
    env.op
        .mode(json!({"paths": {"/groups-source": {"status": 503, "raw": "{}"}}}))
        .await;
    let b = Browser::new();
    assert_overage_refused(&env, &b).await;
    assert_eq!(env.op.calls("/groups-source").await, 1);
}

/// The source is unreachable (connection refused, on an origin the operator allowed) and the
/// outcome is `no-groups`: signed in without groups, so only the no-role fallback applies.
#[tokio::test]
async fn entra_overage_unreachable_with_no_groups_signs_in_without_role() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let env = entra(move |raw| {
        raw.groups_overage = Some("no-groups".into());
        raw.groups_source_origins = Some(vec![format!("http://127.0.0.1:{port}")]);
        raw.no_role = Some("guest".into());
    })
    .await;
    overage_token(&env, &format!("http://127.0.0.1:{port}/groups")).await;
    let b = Browser::new();
    b.sign_in(&env, "/", ALICE.0, ALICE.1).await;
    let s = session(&b, &env).await;
    assert_eq!(s["roles"], json!(["guest"]));
    assert_eq!(s["user"]["groups"], json!([]));
}

/// SSRF: a source on an origin not allowed (another host name for the same OP) is never
/// fetched — the harness records no hit — and the overage outcome applies.
#[tokio::test]
async fn entra_overage_source_on_foreign_origin_is_not_fetched() {
    let env = entra(|_| {}).await;
    overage_token(&env, &source_url(&env, "localhost")).await;
    let b = Browser::new();
    assert_overage_refused(&env, &b).await;
    assert_eq!(env.op.calls("/groups-source").await, 0);

    // Same with no-groups: signed in, still nothing fetched.
    let env = entra(|raw| {
        raw.groups_overage = Some("no-groups".into());
        raw.no_role = Some("guest".into());
    })
    .await;
    overage_token(&env, &source_url(&env, "localhost")).await;
    let b = Browser::new();
    b.sign_in(&env, "/", ALICE.0, ALICE.1).await;
    assert_eq!(session(&b, &env).await["roles"], json!(["guest"]));
    assert_eq!(env.op.calls("/groups-source").await, 0);
}

/// `hasgroups: true` without `_claim_sources`: nothing to fetch, the outcome applies.
#[tokio::test]
async fn entra_hasgroups_without_source_applies_the_outcome() {
    let env = entra(|_| {}).await;
    env.op
        .mode(json!({"id_token": {"sign": "valid", "claims": {"groups": null, "hasgroups": true}}}))
        .await;
    let b = Browser::new();
    assert_overage_refused(&env, &b).await;
}

// ------------------------------------------------------------------------------------------
// The other IdPs of seed 000
// ------------------------------------------------------------------------------------------

/// An OP with this `issuer_path` (and other OP options), the gateway adjusted by `tweak`.
async fn profile(
    op_extra: Value,
    auth_method: &'static str,
    tweak: impl FnOnce(&mut RawSettings) + Send + 'static,
) -> TestEnv {
    TestEnv::start_with(Options {
        op_extra,
        auth_method,
        tweak: Box::new(move |raw, _| tweak(raw)),
        ..Default::default()
    })
    .await
}

/// Keycloak: realm roles (`realm_access.roles`) and this client's roles
/// (`resource_access.portcullis.roles`), both nested, read through one comma-separated
/// groups key; another client's roles are not taken.
#[tokio::test]
async fn keycloak_realm_and_client_roles() {
    let env = profile(
        json!({"issuer_path": "/realms/acme"}),
        "client_secret_post",
        |raw| {
            raw.claim_keys.groups =
                Some("realm_access.roles,resource_access.portcullis.roles".into());
            raw.roles
                .insert("admin".into(), vec!["platform-admin".into()]);
            raw.roles.insert("powerUser".into(), vec!["editor".into()]);
            raw.roles
                .insert("guest".into(), vec!["manage-account".into()]);
        },
    )
    .await;
    env.op
        .mode(
            json!({"id_token": {"sign": "valid", "claims": {"resource_access": {
                "portcullis": {"roles": ["editor"]},
                "account": {"roles": ["manage-account"]},
            }}}}),
        )
        .await;
    assert!(env.op.issuer.ends_with("/realms/acme"));
    let b = Browser::new();
    b.sign_in(&env, "/", ALICE.0, ALICE.1).await;
    let s = session(&b, &env).await;
    assert_eq!(
        s["user"]["groups"],
        json!(["platform-admin", "viewer", "editor"])
    );
    assert_eq!(s["roles"], json!(["admin", "powerUser"]));
    let got = app_sees(&b, &env).await;
    assert_eq!(got.header("x-forwarded-roles"), ["admin,powerUser"]);
}

/// Google Workspace settings: seed 001's `access_type: offline` (Portcullis adds
/// `prompt=consent`), no groups, and only the allowed hosted domain.
fn google(raw: &mut RawSettings) {
    raw.scopes = Some(vec!["openid".into(), "email".into(), "profile".into()]);
    raw.access_type = Some("offline".into());
    raw.custom_parameters = Some([("hd".to_string(), "example.com".to_string())].into());
    raw.allowed_hosted_domains = Some(vec!["example.com".into()]);
}

async fn google_env() -> TestEnv {
    profile(
        json!({"refresh_tokens": "google"}),
        "client_secret_post",
        google,
    )
    .await
}

/// Google Workspace: `hd` in the signed ID token is an allowed domain → signed in; the
/// authorization request carries `access_type=offline`, `prompt=consent` and the `hd` hint,
/// and the redirect URI is exactly the registered one (seed 001: Google matches it exactly),
/// in the authorization and the token request alike.
#[tokio::test]
async fn google_workspace_hosted_domain_and_offline_access() {
    let env = google_env().await;
    env.op
        .mode(json!({"id_token": {"sign": "valid", "claims": {"hd": "example.com"}}}))
        .await;
    let b = Browser::new();
    b.sign_in(&env, "/", ALICE.0, ALICE.1).await;
    let q = auth_query(&env).await;
    assert_eq!(q["access_type"], "offline");
    assert_eq!(q["prompt"], "consent");
    assert_eq!(q["hd"], "example.com");
    let registered = format!("{}/api/callback", env.base);
    assert_eq!(q["redirect_uri"], json!(registered));
    let token = env
        .op
        .log()
        .await
        .into_iter()
        .find(|e| e["path"] == "/token")
        .unwrap();
    assert_eq!(token["form"]["redirect_uri"], json!(registered));
    let s = session(&b, &env).await;
    assert_eq!(s["user"]["email"], "alice@example.com");
    assert_eq!(s["user"]["groups"], json!([]));
    let got = app_sees(&b, &env).await;
    assert_eq!(
        got.one("x-forwarded-email").as_deref(),
        Some("alice@example.com")
    );
}

/// Google Workspace: an ID token from another hosted domain, or without `hd` (a consumer
/// account), is refused with a clear page; no cookie, nothing stored. Userinfo saying the
/// right `hd` does not help: only the signed ID token counts.
#[tokio::test]
async fn google_workspace_other_or_missing_hosted_domain_is_refused() {
    for (id_hd, userinfo_hd) in [
        (json!("evil.example"), json!("example.com")),
        (Value::Null, json!("example.com")),
        (json!("EXAMPLE.com.evil.example"), Value::Null),
    ] {
        let env = google_env().await;
        env.op
            .mode(json!({
                "id_token": {"sign": "valid", "claims": {"hd": id_hd}},
                "userinfo": {"claims": {"hd": userinfo_hd}},
            }))
            .await;
        let b = Browser::new();
        let cb = b.start_login(&env, "/", ALICE.0, ALICE.1).await;
        let r = b.get(&cb).await;
        assert_eq!(r.status, 403, "{id_hd}: {}", r.body);
        assert!(
            r.body.contains("does not belong to an organisation"),
            "{}",
            r.body
        );
        assert!(!r.sets_session());
        env.assert_nothing_stored().await;
    }
}

const ADFS_AUD: &str = "microsoft:identityserver:portcullis";

/// ADFS shape: issuer `…/adfs`, ID token `aud` = `microsoft:identityserver:<client-id>`,
/// `upn`/`unique_name` claims, userinfo answering only `sub`.
async fn adfs(expected_audience: Option<&'static str>) -> TestEnv {
    let env = profile(
        json!({"issuer_path": "/adfs"}),
        "client_secret_post",
        move |raw| {
            raw.expected_audience = expected_audience.map(String::from);
            raw.claim_keys.username = Some("upn".into());
            raw.claim_keys.name = Some("unique_name".into());
            raw.claim_keys.email = Some("upn".into());
        },
    )
    .await;
    env.op
        .mode(json!({
            "id_token": {"sign": "valid", "claims": {
                "aud": ADFS_AUD,
                "upn": "alice@corp.example",
                "unique_name": "CORP\\alice",
                "email": null,
            }},
            "userinfo": {"raw": "{\"sub\":\"alice-sub-0001\"}"},
        }))
        .await;
    env
}

/// ADFS with `OIDC_EXPECTED_AUDIENCE`: the client's ADFS identifier is accepted as its
/// audience; `upn` is the username (and email), `unique_name` the name; userinfo adds nothing.
#[tokio::test]
async fn adfs_audience_alias_upn_and_bare_userinfo() {
    let env = adfs(Some(ADFS_AUD)).await;
    let b = Browser::new();
    b.sign_in(&env, "/", ALICE.0, ALICE.1).await;
    let s = session(&b, &env).await;
    assert_eq!(s["user"]["subject"], "alice-sub-0001");
    assert_eq!(s["user"]["username"], "alice@corp.example");
    assert_eq!(s["user"]["name"], "CORP\\alice");
    let got = app_sees(&b, &env).await;
    assert_eq!(
        got.one("x-forwarded-preferred-username").as_deref(),
        Some("alice@corp.example")
    );
}

/// ADFS without the setting: `aud` is not the client id, so the sign-in is refused (never
/// accepted by default); nothing stored, no cookie.
#[tokio::test]
async fn adfs_audience_refused_without_the_setting() {
    let env = adfs(None).await;
    let b = Browser::new();
    let cb = b.start_login(&env, "/", ALICE.0, ALICE.1).await;
    let r = b.get(&cb).await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(!r.sets_session());
    env.assert_nothing_stored().await;
}

/// Okta custom authorization server: issuer `https://<org>/oauth2/<server-id>`, the `groups`
/// scope and claim, seed 000's defaults otherwise.
#[tokio::test]
async fn okta_custom_authorization_server_groups() {
    let env = profile(
        json!({"issuer_path": "/oauth2/aus1a2b3c4d5E6f7g8h9"}),
        "client_secret_post",
        |raw| {
            raw.roles.insert("admin".into(), vec!["admins".into()]);
            raw.roles.insert("powerUser".into(), vec!["devs".into()]);
        },
    )
    .await;
    assert!(env.op.issuer.ends_with("/oauth2/aus1a2b3c4d5E6f7g8h9"));
    let b = Browser::new();
    b.sign_in(&env, "/", ALICE.0, ALICE.1).await;
    let q = auth_query(&env).await;
    assert!(
        q["scope"]
            .as_str()
            .unwrap()
            .split(' ')
            .any(|s| s == "groups")
    );
    let s = session(&b, &env).await;
    assert_eq!(s["user"]["issuer"], json!(env.op.issuer));
    assert_eq!(s["roles"], json!(["admin", "powerUser"]));
    assert_eq!(
        app_sees(&b, &env).await.header("x-forwarded-groups"),
        ["admins,devs"]
    );
}

/// ForgeRock (Identity Cloud / AM): a realm issuer path, a client that may only use
/// `client_secret_basic` (the OP refuses the secret in the body), and nested custom claims
/// mapped by dotted paths.
#[tokio::test]
async fn forgerock_basic_auth_and_nested_claims() {
    let env = profile(
        json!({"issuer_path": "/am/oauth2/realms/root/realms/alpha"}),
        "client_secret_basic",
        |raw| {
            raw.claim_keys.name = Some("fr_profile.display_name".into());
            raw.claim_keys.groups = Some("fr_profile.groups".into());
            raw.roles
                .insert("admin".into(), vec!["cn=admins,ou=groups,o=alpha".into()]);
        },
    )
    .await;
    env.op
        .mode(
            json!({"id_token": {"sign": "valid", "claims": {"fr_profile": {
                "display_name": "Alice (ForgeRock)",
                "groups": ["cn=admins,ou=groups,o=alpha", "cn=staff,ou=groups,o=alpha"],
            }}}}),
        )
        .await;
    let b = Browser::new();
    b.sign_in(&env, "/", ALICE.0, ALICE.1).await;
    let token = env
        .op
        .log()
        .await
        .into_iter()
        .find(|e| e["path"] == "/token")
        .unwrap();
    assert!(token["form"].get("client_secret").is_none(), "{token}");
    let s = session(&b, &env).await;
    assert_eq!(s["user"]["name"], "Alice (ForgeRock)");
    assert_eq!(s["roles"], json!(["admin"]));
}

/// OneLogin: issuer `https://<subdomain>.onelogin.com/oidc/2`, groups in `groups`, the
/// display name in `name`; seed 000's defaults work as they are.
#[tokio::test]
async fn onelogin_defaults() {
    let env = profile(
        json!({"issuer_path": "/oidc/2"}),
        "client_secret_post",
        |raw| {
            raw.roles.insert("powerUser".into(), vec!["devs".into()]);
            raw.no_role = Some("deny".into());
        },
    )
    .await;
    let b = Browser::new();
    b.sign_in(&env, "/", BOB.0, BOB.1).await;
    let s = session(&b, &env).await;
    assert_eq!(s["user"]["name"], "Bob Builder");
    assert_eq!(s["roles"], json!(["powerUser"]));
    let got = app_sees(&b, &env).await;
    assert_eq!(got.one("x-forwarded-user").as_deref(), Some("bob-sub-0002"));
}

/// PingFederate: issuer at the host root, group DNs in a `memberOf` attribute claim.
#[tokio::test]
async fn pingfederate_member_of_dns() {
    const DN: &str = "CN=Portcullis Admins,OU=Groups,DC=corp,DC=example";
    let env = profile(json!({}), "client_secret_post", |raw| {
        raw.claim_keys.groups = Some("memberOf".into());
        raw.roles.insert("admin".into(), vec![DN.into()]);
    })
    .await;
    env.op
        .mode(json!({"id_token": {"sign": "valid", "claims": {"memberOf": [DN]}}}))
        .await;
    let b = Browser::new();
    b.sign_in(&env, "/", ALICE.0, ALICE.1).await;
    let s = session(&b, &env).await;
    assert_eq!(s["roles"], json!(["admin"]));
    assert_eq!(s["user"]["groups"], json!([DN]));
}

/// Offline re-checks meet the overage too (the refreshed ID token has no groups either): the
/// groups are fetched again; when that fails and the outcome is `deny`, the session ends
/// instead of going on with an emptied role set.
#[tokio::test]
async fn entra_overage_at_offline_recheck_fetches_or_ends_the_session() {
    let clock = portcullis_core::time::ManualClock::at_now();
    let env = TestEnv::start_with(Options {
        clock: Some(clock.clone()),
        op_extra: json!({"issuer_path": format!("/{TENANT}/v2.0"), "refresh_tokens": "microsoft"}),
        tweak: Box::new(|raw, _| {
            with_file(raw, &entra_yaml());
            raw.offline_recheck = Some("60".into());
        }),
        ..Default::default()
    })
    .await;
    env.gw.stop_offline_rechecks();
    env.op
        .control(
            "user",
            json!({"login": "alice", "claims": {"groups": [G_ADMINS]}}),
        )
        .await;
    env.op
        .mode(json!({"userinfo": {"claims": {"groups": null}}}))
        .await;
    overage_token(&env, &source_url(&env, "127.0.0.1")).await;
    let b = Browser::new();
    b.sign_in(&env, "/", ALICE.0, ALICE.1).await;
    assert_eq!(session(&b, &env).await["roles"], json!(["admin"]));

    clock.advance(61);
    let r = portcullis_gateway::offline::recheck_due_sessions(&env.gw.state).await;
    assert_eq!((r.refreshed, r.ended), (1, 0), "{r:?}");
    assert_eq!(env.op.calls("/groups-source").await, 2);
    assert_eq!(session(&b, &env).await["roles"], json!(["admin"]));

    env.op
        .mode(json!({"paths": {"/groups-source": {"status": 503, "raw": "{}"}}}))
        .await;
    clock.advance(61);
    let r = portcullis_gateway::offline::recheck_due_sessions(&env.gw.state).await;
    assert_eq!((r.refreshed, r.ended), (0, 1), "{r:?}");
    assert_eq!(b.session_status(&env.base).await, 401);
}

/// Google Workspace with offline access: a refreshed ID token must still name an allowed
/// hosted domain; one that names another ends the session at that re-check.
#[tokio::test]
async fn google_workspace_hosted_domain_is_checked_again_at_offline_rechecks() {
    let clock = portcullis_core::time::ManualClock::at_now();
    let env = TestEnv::start_with(Options {
        clock: Some(clock.clone()),
        op_extra: json!({"refresh_tokens": "google"}),
        tweak: Box::new(|raw, _| {
            google(raw);
            raw.offline_recheck = Some("60".into());
        }),
        ..Default::default()
    })
    .await;
    env.gw.stop_offline_rechecks();
    env.op
        .mode(json!({"id_token": {"sign": "valid", "claims": {"hd": "example.com"}}}))
        .await;
    let b = Browser::new();
    b.sign_in(&env, "/", ALICE.0, ALICE.1).await;

    clock.advance(61);
    let r = portcullis_gateway::offline::recheck_due_sessions(&env.gw.state).await;
    assert_eq!((r.refreshed, r.ended), (1, 0), "{r:?}");
    assert_eq!(b.session_status(&env.base).await, 200);

    env.op
        .mode(json!({"id_token": {"sign": "valid", "claims": {"hd": "evil.example"}}}))
        .await;
    clock.advance(61);
    let r = portcullis_gateway::offline::recheck_due_sessions(&env.gw.state).await;
    assert_eq!((r.refreshed, r.ended), (0, 1), "{r:?}");
    assert_eq!(b.session_status(&env.base).await, 401);
}
