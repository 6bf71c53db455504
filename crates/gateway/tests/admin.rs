//! The admin API and page through real HTTP, signed in through the real OP: who may use it
//! (platformAdmin always, `admin` when configured), CSRF and DPoP on every call, search and
//! paging, deactivate / re-enable / end sessions taking effect at once (and on another
//! replica within a second), every action in the audit log with its filters, and the OpenAPI
//! document listing exactly the routes the router serves. On SQLite and on PostgreSQL
//! (`PORTCULLIS_TEST_POSTGRES_URL`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;
use portcullis_core::config::RawSettings;
use serde_json::Value;

/// Seed 001's roles from the OP's groups: alice (admins, devs) is platformAdmin and
/// powerUser, bob (devs) powerUser only; `admin_roles` as given.
fn roles(raw: &mut RawSettings, admin_roles: Option<Vec<String>>) {
    raw.roles
        .insert("platformAdmin".into(), vec!["admins".into()]);
    raw.roles.insert("admin".into(), vec!["devs".into()]);
    raw.roles.insert("powerUser".into(), vec!["devs".into()]);
    raw.admin_roles = admin_roles;
}

async fn env_with(db: Option<String>, admin_roles: Option<Vec<String>>) -> TestEnv {
    TestEnv::start_with(Options {
        database_url: db,
        tweak: Box::new(move |raw, _| roles(raw, admin_roles)),
        ..Default::default()
    })
    .await
}

async fn env() -> TestEnv {
    env_with(None, None).await
}

/// `GET path` as `b`'s browser client does it (proof, JSON).
async fn get(b: &Browser, env: &TestEnv, path: &str) -> (u16, Value) {
    b.get_json(&format!("{}{path}", env.base)).await
}

/// `POST path` as the admin page does it (proof, CSRF header, same origin).
async fn post(b: &Browser, env: &TestEnv, path: &str) -> (u16, Value) {
    let url = format!("{}{path}", env.base);
    let r = b
        .send(
            b.raw()
                .post(&url)
                .header("origin", env.base.as_str())
                .header("accept", "application/json"),
            &url,
        )
        .await;
    (
        r.status,
        serde_json::from_str(&r.body).unwrap_or(Value::Null),
    )
}

async fn user_id(env: &TestEnv, sub: &str) -> String {
    env.store()
        .users
        .user_by_identity(&env.op.issuer, sub)
        .await
        .unwrap()
        .unwrap()
        .id
}

const ALICE_SUB: &str = "alice-sub-0001";
const BOB_SUB: &str = "bob-sub-0002";

/// Alice (platformAdmin) and Bob (not an administrator), both signed in.
async fn alice_and_bob(env: &TestEnv) -> (Browser, Browser, String, String) {
    let alice = Browser::new();
    alice.sign_in(env, "/", ALICE.0, ALICE.1).await;
    let bob = Browser::new();
    bob.sign_in(env, "/", BOB.0, BOB.1).await;
    let (a, b) = (user_id(env, ALICE_SUB).await, user_id(env, BOB_SUB).await);
    (alice, bob, a, b)
}

/// The admin.* events in the log (waits for at least `n`).
async fn admin_events(env: &TestEnv, n: usize) -> Vec<portcullis_store::AuditEvent> {
    env.audit("admin.", n).await
}

#[tokio::test]
async fn without_an_admin_role_everything_is_refused_and_nothing_changes() {
    let env = env().await;
    let (alice, bob, alice_id, bob_id) = alice_and_bob(&env).await;
    // Not signed in: 401 from the API, the sign-in redirect from the page.
    let anon = Browser::new();
    let (s, v) = get(&anon, &env, "/api/admin/users").await;
    assert_eq!((s, v), (401, serde_json::json!({"error": "unauthorized"})));
    let page = anon.get(&format!("{}/.portcullis/admin", env.base)).await;
    assert_eq!(page.status, 302);
    assert!(
        page.location()
            .unwrap()
            .ends_with("/api/login?rd=%2F.portcullis%2Fadmin"),
        "{:?}",
        page.location()
    );
    // Bob (powerUser only): 403 with a clear body, on every route and on the page.
    for path in [
        "/api/admin/users".to_string(),
        format!("/api/admin/users/{alice_id}"),
        "/api/admin/audit".to_string(),
    ] {
        let (s, v) = get(&bob, &env, &path).await;
        assert_eq!(s, 403, "{path}: {v}");
        assert_eq!(v["error"], "forbidden");
        assert_eq!(
            v["error_description"],
            "This needs an administrator role: platformAdmin."
        );
    }
    for action in ["deactivate", "enable", "revoke-sessions"] {
        let (s, v) = post(&bob, &env, &format!("/api/admin/users/{alice_id}/{action}")).await;
        assert_eq!(s, 403, "{action}: {v}");
    }
    let page = bob.get(&format!("{}/.portcullis/admin", env.base)).await;
    assert_eq!(page.status, 403);
    assert!(
        page.body.contains("This needs an administrator role"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("admin.js"));
    // Nothing changed: alice is active and still signed in.
    assert!(
        env.store()
            .users
            .user(&alice_id)
            .await
            .unwrap()
            .unwrap()
            .active
    );
    assert_eq!(alice.session_status(&env.base).await, 200);
    // Nothing audited for the refusals: the first admin.* event is alice's own action.
    let (s, _) = post(
        &alice,
        &env,
        &format!("/api/admin/users/{bob_id}/revoke-sessions"),
    )
    .await;
    assert_eq!(s, 200);
    let events = admin_events(&env, 1).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].actor.as_deref(), Some(alice_id.as_str()));
    // An unknown admin path is Portcullis's 404, never the app's.
    let before = env.upstream.count();
    for path in [
        "/api/admin/nothing-here",
        "/api/admin/users/x/y/z",
        "/api/admin",
    ] {
        let (s, v) = get(&alice, &env, path).await;
        assert_eq!((s, v["error"].as_str()), (404, Some("not_found")), "{path}");
    }
    assert_eq!(env.upstream.count(), before);
}

#[tokio::test]
async fn the_admin_role_may_administer_only_when_configured() {
    // Default: only platformAdmin; bob holds `admin` and is refused.
    let env1 = env().await;
    let (_, bob, _, _) = alice_and_bob(&env1).await;
    assert_eq!(get(&bob, &env1, "/api/admin/users").await.0, 403);
    // adminRoles: [admin]: bob may, but cannot act on a platformAdmin.
    let env2 = env_with(None, Some(vec!["admin".into()])).await;
    let (alice, bob, alice_id, bob_id) = alice_and_bob(&env2).await;
    let (s, v) = get(&bob, &env2, "/api/admin/users").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["users"].as_array().unwrap().len(), 2);
    let (s, v) = post(
        &bob,
        &env2,
        &format!("/api/admin/users/{alice_id}/deactivate"),
    )
    .await;
    assert_eq!(s, 403, "{v}");
    assert_eq!(
        v["error_description"],
        "Only a platformAdmin can change a platformAdmin."
    );
    assert_eq!(
        post(
            &bob,
            &env2,
            &format!("/api/admin/users/{alice_id}/revoke-sessions")
        )
        .await
        .0,
        403
    );
    assert_eq!(alice.session_status(&env2.base).await, 200);
    let refused = admin_events(&env2, 2).await;
    assert!(
        refused
            .iter()
            .all(|e| e.outcome == "refused" && e.actor.as_deref() == Some(&*bob_id))
    );
}

#[tokio::test]
async fn csrf_and_dpop_proof_are_required() {
    let env = env().await;
    let (alice, bob, _, bob_id) = alice_and_bob(&env).await;
    let url = format!("{}/api/admin/users/{bob_id}/deactivate", env.base);
    // No CSRF header (a valid proof): 403 {"error":"csrf"}.
    let r = alice
        .raw()
        .post(&url)
        .header("cookie", alice.session_cookies(&env.base))
        .header("dpop", alice.proof("POST", &url))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        serde_json::json!({"error": "csrf"})
    );
    // Cross-site, with the token: refused too.
    let r = alice
        .raw()
        .post(&url)
        .header("cookie", alice.session_cookies(&env.base))
        .header("x-csrf-token", alice.csrf_token(&env.base))
        .header("dpop", alice.proof("POST", &url))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // No proof (stolen cookies): 401 with the DPoP challenge, for reads and changes.
    for (method, target) in [
        ("POST", url.clone()),
        ("GET", format!("{}/api/admin/users", env.base)),
    ] {
        let r = alice
            .raw()
            .request(method.parse().unwrap(), &target)
            .header("cookie", alice.session_cookies(&env.base))
            .header("x-csrf-token", alice.csrf_token(&env.base))
            .header("accept", "application/json")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{method} {target}");
        assert!(
            r.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("DPoP")
        );
    }
    // A proof from another key: 401.
    let thief = Browser::new();
    let r = alice
        .raw()
        .get(format!("{}/api/admin/users", env.base))
        .header("cookie", alice.session_cookies(&env.base))
        .header(
            "dpop",
            thief.proof("GET", &format!("{}/api/admin/users", env.base)),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // Bob was never deactivated.
    assert_eq!(bob.session_status(&env.base).await, 200);
    assert!(
        env.store()
            .users
            .user(&bob_id)
            .await
            .unwrap()
            .unwrap()
            .active
    );
}

#[tokio::test]
async fn search_and_paging() {
    let env = env().await;
    let alice = Browser::new();
    alice.sign_in(&env, "/", ALICE.0, ALICE.1).await;
    for i in 0..23 {
        let m = portcullis_core::claims::MappedUser {
            issuer: env.op.issuer.clone(),
            subject: format!("sub-{i:02}"),
            user_id: format!("sub-{i:02}"),
            email: Some(format!("Person{i:02}@Corp.example")),
            name: Some(format!("Person {i:02}")),
            given_name: None,
            family_name: None,
            picture: None,
            provider: None,
            username: Some(format!("p{i:02}")),
            groups: vec![],
        };
        env.store()
            .users
            .upsert_user(&m, &uuid_like(i), 100)
            .await
            .unwrap();
    }
    // Paging through 23 matches, 10 at a time: every one once.
    let mut seen = Vec::new();
    let mut after = String::new();
    for page in 0.. {
        let (s, v) = get(
            &alice,
            &env,
            &format!("/api/admin/users?q=corp.EXAMPLE&limit=10&after={after}"),
        )
        .await;
        assert_eq!(s, 200, "{v}");
        let users = v["users"].as_array().unwrap();
        seen.extend(
            users
                .iter()
                .map(|u| u["email"].as_str().unwrap().to_string()),
        );
        match v["next"].as_str() {
            Some(n) => after = n.to_string(),
            None => break,
        }
        assert!(page < 5);
    }
    seen.sort();
    let want: Vec<String> = (0..23)
        .map(|i| format!("Person{i:02}@Corp.example"))
        .collect();
    assert_eq!(seen, want);
    // By name, username, subject; wildcards are literal; a user shows roles and state.
    let (_, v) = get(&alice, &env, "/api/admin/users?q=liddell").await;
    let u = &v["users"][0];
    assert_eq!(v["users"].as_array().unwrap().len(), 1);
    assert_eq!(u["email"], "alice@example.com");
    assert_eq!(
        u["roles"],
        serde_json::json!(["admin", "platformAdmin", "powerUser"])
    );
    assert_eq!(
        (u["active"].as_bool(), u["admin_disabled"].as_bool()),
        (Some(true), Some(false))
    );
    assert!(u.get("id_token").is_none());
    assert_eq!(
        get(&alice, &env, "/api/admin/users?q=p07").await.1["users"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        get(&alice, &env, "/api/admin/users?q=sub-1").await.1["users"]
            .as_array()
            .unwrap()
            .len(),
        10
    );
    assert_eq!(
        get(&alice, &env, "/api/admin/users?q=%25").await.1["users"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        get(&alice, &env, "/api/admin/users?q=p_7").await.1["users"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    // Bad input: 400 with a sentence; an oversized page is clamped.
    let (s, v) = get(&alice, &env, "/api/admin/users?limit=ten").await;
    assert_eq!((s, v["error"].as_str()), (400, Some("invalid_request")));
    let (s, v) = get(&alice, &env, "/api/admin/users?limit=100000").await;
    assert_eq!(s, 200);
    assert_eq!(v["users"].as_array().unwrap().len(), 24);
    // One user: state and sessions, never the ID token or the full session id.
    let alice_id = user_id(&env, ALICE_SUB).await;
    let (s, v) = get(&alice, &env, &format!("/api/admin/users/{alice_id}")).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["sessions"].as_array().unwrap().len(), 1);
    assert_eq!(v["sessions"][0]["live"], true);
    assert_eq!(v["sessions"][0]["id_prefix"].as_str().unwrap().len(), 8);
    assert!(!v.to_string().contains("id_token"));
    assert_eq!(get(&alice, &env, "/api/admin/users/nobody").await.0, 404);
}

/// A UUIDv7-shaped id that sorts by `i` (the store pages by id).
fn uuid_like(i: usize) -> String {
    format!("00000000-0000-7000-8000-{i:012}")
}

both_backends!(deactivate_reenable_revoke_and_audit, |db| {
    let env = env_with(db, None).await;
    let (alice, bob, alice_id, bob_id) = alice_and_bob(&env).await;
    let t0 = env.gw.state.now();

    // Deactivate bob: his next request is refused, and so is his sign-in.
    let (s, v) = post(
        &alice,
        &env,
        &format!("/api/admin/users/{bob_id}/deactivate"),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (v["changed"].as_bool(), v["sessions_revoked"].as_u64()),
        (Some(true), Some(1))
    );
    assert_eq!(v["user"]["admin_disabled"], true);
    assert_eq!(bob.session_status(&env.base).await, 401);
    let bob2 = Browser::new();
    let cb = bob2.start_login(&env, "/", BOB.0, BOB.1).await;
    let r = bob2.get(&cb).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(!r.sets_session());
    let (_, v) = get(&alice, &env, &format!("/api/admin/users/{bob_id}")).await;
    assert_eq!(v["user"]["active"], false);
    assert_eq!(v["sessions"][0]["live"], false);

    // Yourself: refused (409), nothing changed.
    let (s, v) = post(
        &alice,
        &env,
        &format!("/api/admin/users/{alice_id}/deactivate"),
    )
    .await;
    assert_eq!(s, 409, "{v}");
    assert_eq!(
        v["error_description"],
        "You cannot deactivate yourself. Ask another administrator."
    );
    assert_eq!(alice.session_status(&env.base).await, 200);

    // Re-enable: bob signs in again.
    let (s, v) = post(&alice, &env, &format!("/api/admin/users/{bob_id}/enable")).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["user"]["active"], true);
    let bob3 = Browser::new();
    bob3.sign_in(&env, "/", BOB.0, BOB.1).await;
    assert_eq!(bob3.session_status(&env.base).await, 200);
    assert_eq!(
        bob.session_status(&env.base).await,
        401,
        "old sessions stay ended"
    );

    // End his sessions: refused at once; he stays enabled.
    let (s, v) = post(
        &alice,
        &env,
        &format!("/api/admin/users/{bob_id}/revoke-sessions"),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["sessions_revoked"], 1);
    assert_eq!(bob3.session_status(&env.base).await, 401);
    assert_eq!(v["user"]["active"], true);

    // The audit log: every action, by alice, about bob, from where.
    let ev = admin_events(&env, 4).await;
    let got: Vec<(&str, &str)> = ev
        .iter()
        .map(|e| (e.action.as_str(), e.outcome.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("admin.sessions_revoked", "ok"),
            ("admin.user_enabled", "ok"),
            ("admin.user_disabled", "refused"),
            ("admin.user_disabled", "ok"),
        ]
    );
    assert!(ev.iter().all(|e| e.actor.as_deref() == Some(&*alice_id)));
    assert!(ev.iter().all(|e| e.ip.as_deref() == Some("127.0.0.1")));
    assert_eq!(ev[0].subject.as_deref(), Some(&*bob_id));
    // Through the API, with each filter.
    let actions = |v: &Value| -> Vec<String> {
        v["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                format!(
                    "{} {}",
                    e["action"].as_str().unwrap(),
                    e["outcome"].as_str().unwrap()
                )
            })
            .collect()
    };
    let (s, v) = get(&alice, &env, "/api/admin/audit?action=admin.").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(actions(&v).len(), 4);
    assert_eq!(
        v["names"][&alice_id], "Alice Liddell",
        "people are named for readers"
    );
    assert_eq!(v["names"][&bob_id], "Bob Builder");
    let (_, v) = get(
        &alice,
        &env,
        "/api/admin/audit?outcome=refused&action=admin.",
    )
    .await;
    assert_eq!(actions(&v), ["admin.user_disabled refused"]);
    let (_, v) = get(
        &alice,
        &env,
        &format!("/api/admin/audit?actor={alice_id}&action=admin.user_enabled"),
    )
    .await;
    assert_eq!(actions(&v), ["admin.user_enabled ok"]);
    let (_, v) = get(&alice, &env, &format!("/api/admin/audit?subject={bob_id}")).await;
    let bob_events = actions(&v);
    assert!(
        bob_events.contains(&"auth.sign_in ok".to_string()),
        "{bob_events:?}"
    );
    // His sign-in refused while disabled is among his own events.
    assert!(
        bob_events.contains(&"auth.failure refused".to_string()),
        "{bob_events:?}"
    );
    let (_, v) = get(
        &alice,
        &env,
        "/api/admin/audit?action=auth.failure&outcome=refused",
    )
    .await;
    assert!(
        v["events"].as_array().unwrap().iter().any(|e| e["detail"]
            .as_str()
            .unwrap_or("")
            .contains("disabled by an administrator")),
        "{v}"
    );
    let (_, v) = get(
        &alice,
        &env,
        &format!("/api/admin/audit?since={}&until={}", t0 + 3600, t0 + 7200),
    )
    .await;
    assert!(actions(&v).is_empty());
    let (_, v) = get(
        &alice,
        &env,
        &format!("/api/admin/audit?since={}&limit=2", t0 - 5),
    )
    .await;
    assert_eq!(actions(&v).len(), 2);
    let next = v["next"].as_i64().unwrap();
    let (_, v2) = get(
        &alice,
        &env,
        &format!("/api/admin/audit?since={}&limit=2&before={next}", t0 - 5),
    )
    .await;
    assert_eq!(actions(&v2).len(), 2);
    assert!(v2["events"][0]["id"].as_i64().unwrap() < next);
    assert_eq!(
        get(&alice, &env, "/api/admin/audit?since=yesterday")
            .await
            .0,
        400
    );
});

/// Two replicas on one PostgreSQL: a deactivation through A's admin API is refused by B
/// within a second; so is ending the sessions after a re-enable.
#[tokio::test]
async fn deactivation_on_one_replica_is_refused_on_the_other_within_a_second() {
    let db = portcullis_store::testing::fresh_postgres_database().await;
    let a = env_with(Some(db.clone()), None).await;
    let b = Replica::start(&a, db, None, |raw| roles(raw, None)).await;
    let b_base = b.base.as_str();
    let (alice, bob, _, bob_id) = alice_and_bob(&a).await;
    bob.set_htu_origin(&a.base);
    bob.share_session(&a.base, b_base);
    assert_eq!(bob.session_status(b_base).await, 200, "B knows bob now");
    let (s, _) = post(&alice, &a, &format!("/api/admin/users/{bob_id}/deactivate")).await;
    assert_eq!(s, 200);
    let took = bob
        .session_status_within(b_base, 401, Duration::from_secs(1))
        .await;
    eprintln!("deactivation on A refused by B after {took:?}");

    // Re-enabled, signed in again, sessions ended on A: refused on B within a second.
    assert_eq!(
        post(&alice, &a, &format!("/api/admin/users/{bob_id}/enable"))
            .await
            .0,
        200
    );
    bob.sign_in(&a, "/", BOB.0, BOB.1).await;
    bob.share_session(&a.base, b_base);
    assert_eq!(bob.session_status(b_base).await, 200);
    assert_eq!(
        post(
            &alice,
            &a,
            &format!("/api/admin/users/{bob_id}/revoke-sessions")
        )
        .await
        .0,
        200
    );
    bob.session_status_within(b_base, 401, Duration::from_secs(1))
        .await;
}

/// Every route of the JSON API is in the OpenAPI document and every documented operation is
/// routed: each one is requested (signed in, so an unrouted path would be passed to the app)
/// and must be answered by Portcullis; every other method on a documented path is a 405.
#[tokio::test]
async fn the_openapi_document_covers_every_api_route() {
    let env = env().await;
    let (alice, _bob, _, bob_id) = alice_and_bob(&env).await;
    let anon = reqwest::Client::new();
    let r = anon
        .get(format!("{}/api/openapi.json", env.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    let doc: Value = r.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let mut documented: Vec<(String, String)> = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if ["get", "post", "put", "patch", "delete", "head", "options"]
                .contains(&method.as_str())
            {
                documented.push((method.to_uppercase(), path.clone()));
            }
        }
    }
    documented.sort();
    // The session, token, command-line sign-in and admin APIs, exactly.
    let want = [
        ("GET", "/api/admin/audit"),
        ("GET", "/api/admin/users"),
        ("GET", "/api/admin/users/{id}"),
        ("POST", "/api/admin/users/{id}/deactivate"),
        ("POST", "/api/admin/users/{id}/enable"),
        ("POST", "/api/admin/users/{id}/revoke-sessions"),
        ("POST", "/api/backchannel-logout"),
        ("POST", "/api/cli/authorize"),
        ("POST", "/api/cli/device"),
        ("POST", "/api/cli/device/decide"),
        ("POST", "/api/cli/device/lookup"),
        ("POST", "/api/cli/token"),
        ("GET", "/api/forward-auth"),
        ("GET", "/api/login"),
        ("POST", "/api/login"),
        ("GET", "/api/logout"),
        ("POST", "/api/logout"),
        ("GET", "/api/openapi.json"),
        ("GET", "/api/session"),
        ("GET", "/api/tokens"),
        ("POST", "/api/tokens"),
        ("DELETE", "/api/tokens/{id}"),
    ];
    let mut want: Vec<(String, String)> = want
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    want.sort();
    assert_eq!(documented, want);
    // Each documented operation is answered by Portcullis (signed out last).
    let mut ops = documented.clone();
    ops.sort_by_key(|(m, p)| (p == "/api/logout" && m == "POST", p.clone()));
    let before = env.upstream.count();
    for (method, path) in &ops {
        let concrete = path.replace("{id}", &bob_id);
        let url = format!("{}{concrete}", env.base);
        let req = alice
            .raw()
            .request(method.parse().unwrap(), &url)
            .header("origin", env.base.as_str())
            .header("accept", "application/json");
        let r = alice.send(req, &url).await;
        // Alice has no token with Bob's id: the token API's own JSON 404 (not a routing one).
        let own_not_found = path == "/api/tokens/{id}" && r.body.contains("\"not_found\"");
        assert!(
            own_not_found || (r.status != 404 && r.status != 405),
            "{method} {path}: {} {}",
            r.status,
            r.body
        );
        assert_eq!(
            env.upstream.count(),
            before,
            "{method} {path} reached the app"
        );
        // Other methods on the same path: not routed to anything.
        for other in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
            if documented.iter().any(|(m, p)| m == other && p == path) || path == "/api/logout" {
                continue;
            }
            let r = alice
                .raw()
                .request(other.parse().unwrap(), &url)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 405, "{other} {path}");
        }
    }
    assert_eq!(env.upstream.count(), before);
}

/// An administrator in a real browser: opens the admin page (signing in on the way), searches,
/// opens a user, deactivates and re-enables them, filters the audit log. Every API call the
/// page makes carries a DPoP proof, and every change the CSRF header. Screenshots are left in
/// target/screenshots.
#[tokio::test]
async fn the_admin_page_in_chromium() {
    let env = env().await;
    let bob = Browser::new();
    bob.sign_in(&env, "/", BOB.0, BOB.1).await;
    let bob_id = user_id(&env, BOB_SUB).await;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let Some(seen) = run_browser_script(
        "admin.mjs",
        serde_json::json!({
        "url": format!("{}/.portcullis/admin", env.base),
        "user": ALICE.0,
        "password": ALICE.1,
        "user_field": "input[name=login]",
        "password_field": "input[name=password]",
        "submit": "button[type=submit]",
        "search": "bob",
        "open": "Open Bob Builder",
        "screenshots": dir.display().to_string(),
        }),
        120,
    )
    .await
    else {
        return;
    };
    assert_eq!(
        seen["final_url"],
        format!("{}/.portcullis/admin", env.base),
        "{seen}"
    );
    assert_eq!(seen["title"], "Portcullis administration");
    assert_eq!(
        seen["headings"],
        serde_json::json!(["Administration", "Users", "Audit log"])
    );
    assert_eq!(seen["users_initial"], 2);
    assert_eq!(
        seen["console_errors"],
        serde_json::json!([]),
        "no script or CSP errors"
    );
    let rows = seen["search_rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{seen}");
    assert!(rows[0].as_str().unwrap().contains("bob@example.com"));
    assert_eq!(seen["user_heading"], "User: Bob Builder");
    assert_eq!(seen["focus_on_heading"], "user-h");
    assert!(
        seen["dialog"]
            .as_str()
            .unwrap()
            .starts_with("Deactivate Bob Builder?")
    );
    let d = &seen["after_deactivate"];
    assert!(
        d["status"].as_str().unwrap().contains("1 session(s) ended"),
        "{d}"
    );
    assert!(d["state"].as_str().unwrap().contains("Deactivated"));
    assert_eq!(
        (
            d["deactivate_disabled"].as_bool(),
            d["enable_disabled"].as_bool()
        ),
        (Some(true), Some(false))
    );
    assert!(
        seen["after_enable"]["state"]
            .as_str()
            .unwrap()
            .contains("Active")
    );
    let audit: Vec<&str> = seen["audit_rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        audit,
        ["admin.user_enabled", "admin.user_disabled"],
        "{seen}"
    );
    let user_audit = seen["user_audit_actions"].as_array().unwrap();
    assert!(user_audit.iter().any(|a| a == "auth.sign_in"), "{seen}");
    assert!(user_audit.iter().any(|a| a == "admin.user_disabled"));
    // Every call through the browser client: proofs on all, the CSRF header on changes.
    let calls = seen["api_calls"].as_array().unwrap();
    assert!(calls.len() >= 8, "{seen}");
    for c in calls {
        assert_eq!(c["dpop"], true, "{c}");
        if c["method"] == "POST" {
            assert_eq!(c["csrf"], true, "{c}");
        }
    }
    // What the page did, the store and the log agree: bob is active again, his old session
    // ended.
    assert!(
        env.store()
            .users
            .user(&bob_id)
            .await
            .unwrap()
            .unwrap()
            .active
    );
    assert_eq!(bob.session_status(&env.base).await, 401);
}
