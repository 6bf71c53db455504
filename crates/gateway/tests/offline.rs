//! Offline access (seed 001) through real HTTP against the real OP: the IdP refresh token is
//! kept encrypted server-side, never reaches the browser, and is used to re-check the person at
//! the IdP every interval — claims and roles follow the IdP, a refusal ends the session, an
//! unreachable IdP does not. Passes are run directly on the injected clock (the background
//! task is stopped), so nothing waits for an interval. Every case runs on SQLite and on
//! PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use base64::Engine;
use common::*;
use portcullis_core::time::ManualClock;
use portcullis_gateway::offline::{PassReport, recheck_due_sessions};
use serde_json::{Value, json};

const INTERVAL: i64 = 60;

/// Seed 001's Microsoft identity platform shape: `offline_access` in the scope,
/// `preferred_username` as the username; the test OP behaves like Entra ID.
fn microsoft(raw: &mut portcullis_core::config::RawSettings) {
    raw.scopes = Some(vec![
        "openid".into(),
        "email".into(),
        "offline_access".into(),
    ]);
    raw.claim_keys.username = Some("preferred_username".into());
    raw.claim_keys.groups = Some("groups".into());
    raw.roles.insert("admin".into(), vec!["admins".into()]);
    raw.roles.insert("powerUser".into(), vec!["devs".into()]);
    raw.offline_recheck = Some(INTERVAL.to_string());
}

/// Google's shape: `access_type: offline`, no offline_access scope.
fn google(raw: &mut portcullis_core::config::RawSettings) {
    raw.scopes = Some(vec!["openid".into(), "email".into(), "profile".into()]);
    raw.access_type = Some("offline".into());
    raw.offline_recheck = Some(INTERVAL.to_string());
}

async fn start(
    db: Option<String>,
    op_refresh: &str,
    tweak: fn(&mut portcullis_core::config::RawSettings),
) -> (TestEnv, Arc<ManualClock>) {
    let clock = ManualClock::at_now();
    let mut op_extra = json!({});
    if !op_refresh.is_empty() {
        op_extra = json!({"refresh_tokens": op_refresh});
    }
    let env = TestEnv::start_with(Options {
        clock: Some(clock.clone()),
        database_url: db,
        op_extra,
        tweak: Box::new(move |raw, _| tweak(raw)),
        ..Default::default()
    })
    .await;
    // Passes are run by the test, at the times it chooses.
    env.gw.stop_offline_rechecks();
    (env, clock)
}

async fn pass(env: &TestEnv) -> PassReport {
    recheck_due_sessions(&env.gw.state).await
}

/// The session id inside the browser's session JWT.
fn session_id(b: &Browser, env: &TestEnv) -> String {
    let jwt = b
        .cookie(&env.base, "__Host-session")
        .expect("session cookie");
    let payload = jwt.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    claims["sid"].as_str().unwrap().to_string()
}

async fn session_json(b: &Browser, env: &TestEnv) -> (u16, Value) {
    b.get_json(&format!("{}/api/session", env.base)).await
}

/// Everything the browser and the app were ever shown: responses, cookies, upstream headers.
fn assert_never_shown(token: &str, seen: &[String], env: &TestEnv) {
    assert!(token.len() >= 16, "a real refresh token: {token}");
    for s in seen {
        assert!(
            !s.contains(token),
            "the refresh token reached the browser: {s}"
        );
    }
    for req in env.upstream.requests() {
        for (k, v) in &req.headers {
            assert!(
                !v.contains(token),
                "the refresh token reached the app in {k}"
            );
        }
    }
}

fn shown(r: &Resp) -> String {
    format!("{:?}\n{}", r.headers, r.body)
}

both_backends!(
    microsoft_shape_rechecks_follow_the_idp_and_a_revocation_ends_it,
    |db| {
        let (env, clock) = start(db, "microsoft", microsoft).await;
        let b = Browser::new();
        let cb = b.sign_in(&env, "/", ALICE.0, ALICE.1).await;
        let t0 = env.gw.state.now();
        let auth = env
            .op
            .log()
            .await
            .into_iter()
            .find(|e| e["path"] == "/auth")
            .unwrap();
        assert_eq!(auth["query"]["scope"], "openid email offline_access");
        assert!(
            auth["query"].get("prompt").is_none(),
            "no prompt in the Microsoft shape"
        );

        // The session row holds the refresh token encrypted, due one interval from now.
        let sid = session_id(&b, &env);
        let row = env.store().sessions.session(&sid).await.unwrap().unwrap();
        let sealed1 = row.refresh_token.clone().expect("a refresh token is kept");
        assert!(sealed1.starts_with("v1."), "{sealed1}");
        assert_eq!(row.recheck_at, Some(t0 + INTERVAL));

        let (status, s) = session_json(&b, &env).await;
        assert_eq!(status, 200);
        assert_eq!(s["roles"], json!(["admin", "powerUser"]));
        assert_eq!(s["user"]["username"], "alice", "{s}");
        let mut seen = vec![
            shown(&cb),
            s.to_string(),
            format!("{:?}", b.session_cookies(&env.base)),
        ];
        b.get(&format!("{}/", env.base)).await;

        // Not due yet: nothing happens.
        assert_eq!(pass(&env).await, PassReport::default());
        assert!(env.op.refresh_grants().await.is_empty());

        // The IdP moves alice out of `admins`; one interval later the re-check brings it over.
        env.op
            .control(
                "user",
                json!({"login": "alice", "claims": {"groups": ["devs"]}}),
            )
            .await;
        clock.advance(INTERVAL + 1);
        let r = pass(&env).await;
        assert_eq!(
            r,
            PassReport {
                refreshed: 1,
                ..Default::default()
            }
        );
        let grants = env.op.refresh_grants().await;
        assert_eq!(grants.len(), 1);
        // The same client authentication as the code exchange (client_secret_post).
        assert_eq!(grants[0]["form"]["client_id"], CLIENT_ID);
        assert_eq!(grants[0]["form"]["client_secret"], CLIENT_SECRET);
        let rt1 = grants[0]["form"]["refresh_token"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(!sealed1.contains(&rt1));

        let (status, s) = session_json(&b, &env).await;
        assert_eq!(status, 200);
        assert_eq!(
            s["roles"],
            json!(["powerUser"]),
            "roles follow the IdP: {s}"
        );
        seen.push(s.to_string());
        let r = b.get(&format!("{}/", env.base)).await;
        assert_eq!(r.status, 200);
        seen.push(shown(&r));
        let got = env.upstream.requests().pop().unwrap();
        assert_eq!(got.one("x-forwarded-roles").as_deref(), Some("powerUser"));
        assert_eq!(got.one("x-forwarded-groups").as_deref(), Some("devs"));
        let ok = env.audit("auth.refresh", 1).await;
        assert_eq!(
            (ok[0].outcome.as_str(), ok[0].actor.as_deref()),
            ("ok", None)
        );

        // The IdP rotated the refresh token: the new one is stored (a new ciphertext) and used
        // next time. Using the old one again would make the OP revoke the whole grant.
        let row = env.store().sessions.session(&sid).await.unwrap().unwrap();
        let sealed2 = row.refresh_token.clone().unwrap();
        assert_ne!(sealed2, sealed1);
        assert_eq!(row.recheck_at, Some(env.gw.state.now() + INTERVAL));
        clock.advance(INTERVAL + 1);
        assert_eq!(pass(&env).await.refreshed, 1);
        let grants = env.op.refresh_grants().await;
        let rt2 = grants[1]["form"]["refresh_token"]
            .as_str()
            .unwrap()
            .to_string();
        assert_ne!(rt2, rt1, "the rotated token was used");
        assert_never_shown(&rt1, &seen, &env);
        assert_never_shown(&rt2, &seen, &env);

        // The IdP withdraws alice's access: the next re-check ends the session everywhere.
        let revoked = env.op.control("revoke", json!({"login": "alice"})).await;
        assert!(revoked["revoked"].as_u64().unwrap() >= 1);
        clock.advance(INTERVAL + 1);
        assert_eq!(
            pass(&env).await,
            PassReport {
                ended: 1,
                ..Default::default()
            }
        );
        let (status, _) = session_json(&b, &env).await;
        assert_eq!(status, 401);
        let before = env.upstream.count();
        let r = b.get(&format!("{}/", env.base)).await;
        assert_eq!(r.status, 302, "back to sign-in");
        assert!(
            r.location().unwrap().contains("/api/login"),
            "{:?}",
            r.location()
        );
        assert_eq!(env.upstream.count(), before, "the app is not reached");
        let row = env.store().sessions.session(&sid).await.unwrap().unwrap();
        assert!(row.revoked_at.is_some());
        assert_eq!(
            row.refresh_token, None,
            "an ended session keeps no refresh token"
        );
        let refused: Vec<_> = env
            .audit("auth.refresh", 2)
            .await
            .into_iter()
            .filter(|e| e.outcome == "refused")
            .collect();
        assert_eq!(refused.len(), 1);
        let detail = refused[0].detail.clone().unwrap();
        assert!(detail.contains("invalid_grant"), "{detail}");
        assert!(!detail.contains(&rt2));
        // Nothing left to re-check.
        clock.advance(INTERVAL + 1);
        assert_eq!(pass(&env).await, PassReport::default());
    }
);

both_backends!(an_unreachable_idp_does_not_end_the_session, |db| {
    let (mut env, clock) = start(db, "microsoft", microsoft).await;
    let b = Browser::new();
    b.sign_in(&env, "/", ALICE.0, ALICE.1).await;
    let sid = session_id(&b, &env);

    env.op
        .mode(json!({"token": {"status": 503, "raw": "<html>maintenance</html>"}}))
        .await;
    clock.advance(INTERVAL + 1);
    assert_eq!(
        pass(&env).await,
        PassReport {
            deferred: 1,
            ..Default::default()
        }
    );
    assert_eq!(session_json(&b, &env).await.0, 200, "the session continues");
    // Retried after a minute, then two (never later than the interval).
    let row = env.store().sessions.session(&sid).await.unwrap().unwrap();
    assert_eq!(row.recheck_at, Some(env.gw.state.now() + 60));
    assert!(row.refresh_token.is_some());
    assert_eq!(pass(&env).await, PassReport::default(), "not due again yet");
    clock.advance(61);
    assert_eq!(pass(&env).await.deferred, 1);
    let row = env.store().sessions.session(&sid).await.unwrap().unwrap();
    assert_eq!(
        row.recheck_at,
        Some(env.gw.state.now() + 60),
        "capped by the interval"
    );
    // A 500 with an OAuth error is no verdict either.
    env.op
        .mode(json!({"token": {"status": 500, "body": {"error": "server_error"}}}))
        .await;
    clock.advance(61);
    assert_eq!(pass(&env).await.deferred, 1);
    assert_eq!(session_json(&b, &env).await.0, 200);

    // Back again: the next re-check succeeds.
    env.op.mode(json!({"token": null})).await;
    clock.advance(61);
    assert_eq!(pass(&env).await.refreshed, 1);
    assert_eq!(session_json(&b, &env).await.0, 200);

    // The IdP is gone altogether (connection refused): still no verdict.
    env.op.kill().await;
    clock.advance(INTERVAL + 1);
    assert_eq!(
        pass(&env).await,
        PassReport {
            deferred: 1,
            ..Default::default()
        }
    );
    assert_eq!(session_json(&b, &env).await.0, 200);
    let row = env.store().sessions.session(&sid).await.unwrap().unwrap();
    assert!(row.revoked_at.is_none() && row.refresh_token.is_some());
    assert!(
        env.audit("auth.refresh", 0)
            .await
            .iter()
            .all(|e| e.outcome != "refused"),
        "no refusal was recorded"
    );
});

both_backends!(
    a_refreshed_id_token_for_another_person_ends_the_session,
    |db| {
        let (env, clock) = start(db, "microsoft", microsoft).await;
        let b = Browser::new();
        b.sign_in(&env, "/", ALICE.0, ALICE.1).await;
        let users_before = env.users().await;

        // The refresh answer carries a validly signed ID token for bob.
        env.op
            .mode(json!({"id_token": {"claims": {"sub": "bob-sub-0002"}}}))
            .await;
        clock.advance(INTERVAL + 1);
        assert_eq!(
            pass(&env).await,
            PassReport {
                ended: 1,
                ..Default::default()
            }
        );
        assert_eq!(env.op.refresh_grants().await.len(), 1);
        assert_eq!(session_json(&b, &env).await.0, 401);
        assert_eq!(env.users().await, users_before, "nobody else was written");
        let e = env.audit("auth.refresh", 1).await;
        assert_eq!(e[0].outcome, "refused");
        assert!(
            e[0].detail.as_deref().unwrap().contains("sub"),
            "{:?}",
            e[0].detail
        );
    }
);

both_backends!(
    a_refresh_without_id_token_takes_the_claims_from_userinfo,
    |db| {
        let (env, clock) = start(db, "microsoft", microsoft).await;
        let b = Browser::new();
        b.sign_in(&env, "/", ALICE.0, ALICE.1).await;
        env.op.mode(json!({"refresh": {"id_token": false}})).await;
        env.op
            .control(
                "user",
                json!({"login": "alice", "claims": {"groups": ["devs"]}}),
            )
            .await;
        env.op.clear_log().await;
        clock.advance(INTERVAL + 1);
        assert_eq!(pass(&env).await.refreshed, 1);
        assert_eq!(env.op.calls("/me").await, 1, "claims read from userinfo");
        let (status, s) = session_json(&b, &env).await;
        assert_eq!(status, 200);
        assert_eq!(s["roles"], json!(["powerUser"]), "{s}");
        assert_eq!(s["user"]["subject"], "alice-sub-0001");
    }
);

both_backends!(google_shape_access_type_offline_with_consent, |db| {
    let (env, clock) = start(db, "google", google).await;
    let b = Browser::new();
    let cb = b.sign_in(&env, "/", ALICE.0, ALICE.1).await;
    let auth = env
        .op
        .log()
        .await
        .into_iter()
        .find(|e| e["path"] == "/auth")
        .unwrap();
    assert_eq!(auth["query"]["access_type"], "offline");
    assert_eq!(
        auth["query"]["prompt"], "consent",
        "Google needs consent for a refresh token"
    );
    let sid = session_id(&b, &env);
    let row = env.store().sessions.session(&sid).await.unwrap().unwrap();
    let sealed = row.refresh_token.expect("Google's refresh token is kept");

    clock.advance(INTERVAL + 1);
    assert_eq!(pass(&env).await.refreshed, 1);
    let grants = env.op.refresh_grants().await;
    let rt = grants[0]["form"]["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    // Google does not rotate: the same token is used again, under a new ciphertext.
    let row = env.store().sessions.session(&sid).await.unwrap().unwrap();
    assert_ne!(row.refresh_token.as_deref(), Some(sealed.as_str()));
    clock.advance(INTERVAL + 1);
    assert_eq!(pass(&env).await.refreshed, 1);
    let grants = env.op.refresh_grants().await;
    assert_eq!(grants[1]["form"]["refresh_token"], rt.as_str());
    assert_never_shown(&rt, &[shown(&cb)], &env);
    assert_eq!(session_json(&b, &env).await.0, 200);
});

both_backends!(without_offline_access_no_refresh_token_is_stored, |db| {
    // An OP that hands out refresh tokens to anyone; Portcullis without offline access
    // does not keep them.
    let clock = ManualClock::at_now();
    let env = TestEnv::start_with(Options {
        clock: Some(clock.clone()),
        database_url: db,
        op_extra: json!({"always_issue_refresh_token": true}),
        ..Default::default()
    })
    .await;
    assert!(!env.gw.state.config.offline.enabled);
    let b = Browser::new();
    b.sign_in(&env, "/", ALICE.0, ALICE.1).await;
    let row = env
        .store()
        .sessions
        .session(&session_id(&b, &env))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((row.refresh_token, row.recheck_at), (None, None));
    clock.advance(3600);
    assert_eq!(pass(&env).await, PassReport::default());
    assert!(env.op.refresh_grants().await.is_empty());

    // Google's shape against an OP that (like Google) ignores the offline_access scope: the
    // Microsoft-shaped configuration gets no refresh token, and signs in all the same.
    let (env, _clock) = start(None, "google", |raw| {
        raw.scopes = Some(vec![
            "openid".into(),
            "email".into(),
            "offline_access".into(),
        ]);
    })
    .await;
    assert!(env.gw.state.config.offline.enabled);
    let b = Browser::new();
    b.sign_in(&env, "/", ALICE.0, ALICE.1).await;
    let row = env
        .store()
        .sessions
        .session(&session_id(&b, &env))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.refresh_token, None);
});

/// Two replicas on one PostgreSQL: the re-check runs on one, and the other sees the new roles
/// and then the ended session within a second (the change feed), without a re-check of its
/// own.
#[tokio::test]
async fn replicas_learn_new_roles_and_ended_sessions_from_one_recheck() {
    use std::time::Duration;
    let db = portcullis_store::testing::fresh_postgres_database().await;
    let (a, clock) = start(Some(db.clone()), "microsoft", microsoft).await;
    let b = Replica::start(&a, db, Some(clock.clone()), microsoft).await;
    // Passes are run by the test, on A only: B must learn from the change feed.
    b.gw.stop_offline_rechecks();
    let b_base = b.base.as_str();

    let br = Browser::new();
    br.set_htu_origin(&a.base);
    br.sign_in(&a, "/", ALICE.0, ALICE.1).await;
    br.share_session(&a.base, b_base);
    let roles_on_b = || async {
        let (status, v) = br.get_json(&format!("{b_base}/api/session")).await;
        (status, v["roles"].clone())
    };
    assert_eq!(roles_on_b().await, (200, json!(["admin", "powerUser"])));

    a.op.control(
        "user",
        json!({"login": "alice", "claims": {"groups": ["devs"]}}),
    )
    .await;
    clock.advance(INTERVAL + 1);
    assert_eq!(pass(&a).await.refreshed, 1);
    let t0 = std::time::Instant::now();
    loop {
        if roles_on_b().await == (200, json!(["powerUser"])) {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(3),
            "replica B kept the old roles"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    a.op.control("revoke", json!({"login": "alice"})).await;
    clock.advance(INTERVAL + 1);
    assert_eq!(pass(&a).await.ended, 1);
    br.session_status_within(b_base, 401, Duration::from_secs(3))
        .await;
    // Replica B has nothing left to re-check either.
    assert_eq!(
        recheck_due_sessions(&b.gw.state).await,
        PassReport::default()
    );
}
