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
