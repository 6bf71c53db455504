//! Sign-in through a real OpenID Provider (oidc-provider) and reach the app behind Portcullis.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use serde_json::{Value, json};

/// The whole flow: protected page → IdP login form → callback → back on the page, with
/// identity headers at the upstream and the user stored.
#[tokio::test]
async fn sign_in_reaches_upstream_with_identity_headers() {
    let env = TestEnv::start().await;
    let b = Browser::new();
    let cb = b
        .sign_in(&env, "/reports/q?year=2026", ALICE.0, ALICE.1)
        .await;
    assert_eq!(
        cb.location().unwrap(),
        format!("{}/reports/q?year=2026", env.base)
    );
    assert_eq!(cb.header("cache-control").as_deref(), Some("no-store"));
    assert_eq!(cb.header("referrer-policy").as_deref(), Some("no-referrer"));
    let sc = cb
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("__Host-session="))
        .unwrap();
    for attr in [
        "HttpOnly",
        "SameSite=Lax",
        "Path=/",
        "Max-Age=1800",
        "Secure",
    ] {
        assert!(sc.contains(attr), "{sc} lacks {attr}");
    }
    assert!(!sc.contains("Domain"), "{sc}");

    let page = b.get(&format!("{}/reports/q?year=2026", env.base)).await;
    assert_eq!(page.status, 200);
    assert_eq!(page.body, "upstream saw /reports/q");
    let got = env.upstream.requests().pop().unwrap();
    assert_eq!(got.uri, "/reports/q?year=2026");
    assert_eq!(
        got.one("x-forwarded-user").as_deref(),
        Some("alice-sub-0001")
    );
    assert_eq!(
        got.one("x-forwarded-email").as_deref(),
        Some("alice@example.com")
    );
    assert_eq!(
        got.one("x-forwarded-preferred-username").as_deref(),
        Some("alice")
    );
    assert_eq!(
        got.one("x-forwarded-groups").as_deref(),
        Some("admins,devs")
    );
    assert!(
        got.one("cookie").is_none_or(|c| !c.contains("__Host-")),
        "gateway cookies stripped"
    );

    let u = env
        .store()
        .users
        .user_by_identity(&env.op.issuer, "alice-sub-0001")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(u.profile.email.as_deref(), Some("alice@example.com"));
    assert_eq!(u.profile.given_name.as_deref(), Some("Alice"));
    assert_eq!(u.profile.family_name.as_deref(), Some("Liddell"));
    assert_eq!(
        u.profile.picture.as_deref(),
        Some("https://example.com/alice.png")
    );
    assert_eq!(u.profile.provider.as_deref(), Some(env.op.issuer.as_str()));
    assert_eq!(u.profile.groups, vec!["admins", "devs"]);
    assert!(u.active);
    assert_eq!(u.first_login, u.last_login);

    // The OP saw PKCE S256, nonce, state and our scopes; the token call used client_secret_post.
    let log = env.op.log().await;
    let auth = log.iter().find(|e| e["path"] == "/auth").unwrap();
    assert_eq!(auth["query"]["code_challenge_method"], "S256");
    assert_eq!(auth["query"]["code_challenge"].as_str().unwrap().len(), 43);
    assert_eq!(auth["query"]["nonce"].as_str().unwrap().len(), 43);
    assert_eq!(auth["query"]["scope"], "openid email profile groups");
    assert_eq!(auth["query"]["response_type"], "code");
    let token = log.iter().find(|e| e["path"] == "/token").unwrap();
    assert_eq!(token["form"]["client_id"], CLIENT_ID);
    assert_eq!(token["form"]["code_verifier"].as_str().unwrap().len(), 43);
}

#[tokio::test]
async fn session_endpoint_and_logout() {
    let env = TestEnv::start().await;
    let b = Browser::new();
    b.sign_in(&env, "/", ALICE.0, ALICE.1).await;
    let s = b.get(&format!("{}/api/session", env.base)).await;
    assert_eq!(s.status, 200);
    let v: Value = serde_json::from_str(&s.body).unwrap();
    assert_eq!(v["user"]["email"], "alice@example.com");
    assert_eq!(v["user"]["groups"], json!(["admins", "devs"]));
    assert_eq!(v["user"]["subject"], "alice-sub-0001");
    let stolen = b.cookie(&env.base, "__Host-session").unwrap();
    let stolen_fp = b.cookie(&env.base, "__Host-fp").unwrap();
    let logout = format!("{}/api/logout", env.base);

    // GET changes nothing: it shows the sign-out button (a cross-site link cannot sign out).
    let page = b.get(&logout).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("method=\"post\""), "{}", page.body);
    assert!(page.set_cookies().is_empty());
    // A cross-site POST is refused and ends nothing.
    for (h, v) in [
        ("origin", "https://evil.example"),
        ("origin", "null"),
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-site", "same-site"),
    ] {
        let r = b.send(b.raw().post(&logout).header(h, v), &logout).await;
        assert_eq!(r.status, 403, "{h}: {v}");
        assert!(r.set_cookies().is_empty());
    }
    assert_eq!(
        b.get(&format!("{}/api/session", env.base)).await.status,
        200
    );

    // A plain form post: sent on to the IdP's end-session endpoint (RP-initiated logout).
    let out = b
        .send(b.raw().post(&logout).header("origin", &env.base), &logout)
        .await;
    assert_eq!(out.status, 303);
    let to = url::Url::parse(&out.location().unwrap()).unwrap();
    assert!(to.as_str().starts_with(&env.op.issuer), "{to}");
    let q: std::collections::HashMap<String, String> = to.query_pairs().into_owned().collect();
    assert_eq!(q["client_id"], CLIENT_ID);
    assert_eq!(
        q["post_logout_redirect_uri"],
        format!("{}/.portcullis/signed-out", env.base)
    );
    assert!(q["state"].len() >= 43);
    // The sign-in's ID token, kept server-side, as the hint.
    assert_eq!(q["id_token_hint"].split('.').count(), 3, "{to}");
    for name in ["__Host-session=;", "__Host-fp=;"] {
        assert!(
            out.set_cookies()
                .iter()
                .any(|c| c.starts_with(name) && c.contains("Max-Age=0")),
            "{name} cleared at logout"
        );
    }
    assert_eq!(out.header("cache-control").as_deref(), Some("no-store"));
    let s = b
        .get_with(
            &format!("{}/api/session", env.base),
            &[("accept", "application/json")],
        )
        .await;
    assert_eq!(s.status, 401);
    assert_eq!(s.body, r#"{"error":"unauthorized"}"#);
    // Audited: who signed out, from where.
    let out = env.audit("auth.logout", 1).await;
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].outcome, "ok");
    assert!(out[0].actor.is_some() && out[0].actor == out[0].subject);
    assert_eq!(out[0].ip.as_deref(), Some("127.0.0.1"));

    // A copy of both cookies taken before logout no longer works: the session is revoked.
    let before = env.upstream.count();
    let thief = Browser::new();
    thief.set_cookie(&env.base, "__Host-session", &stolen);
    thief.set_cookie(&env.base, "__Host-fp", &stolen_fp);
    let r = thief
        .get_with(
            &format!("{}/api/data", env.base),
            &[("accept", "application/json")],
        )
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(env.upstream.count(), before);
}

#[tokio::test]
async fn client_secret_basic_is_supported() {
    let env = TestEnv::start_with(Options {
        auth_method: "client_secret_basic",
        ..Default::default()
    })
    .await;
    let b = Browser::new();
    b.sign_in(&env, "/", BOB.0, BOB.1).await;
    let log = env.op.log().await;
    let token = log.iter().find(|e| e["path"] == "/token").unwrap();
    assert!(
        token["form"].get("client_secret").is_none(),
        "secret must not be in the body"
    );
    let page = b.get(&format!("{}/x", env.base)).await;
    assert_eq!(page.status, 200);
    assert_eq!(
        env.upstream
            .requests()
            .pop()
            .unwrap()
            .one("x-forwarded-groups")
            .as_deref(),
        Some("devs")
    );
}

async fn sign_in_with_alg(alg: &'static str) {
    let env = TestEnv::start_with(Options {
        alg,
        ..Default::default()
    })
    .await;
    let b = Browser::new();
    b.sign_in(&env, "/", ALICE.0, ALICE.1).await;
    assert_eq!(env.users().await, 1);
}

#[tokio::test]
async fn r_idt_6_es256_allowed_when_configured() {
    sign_in_with_alg("ES256").await;
}

#[tokio::test]
async fn r_idt_6_ps256_allowed_when_configured() {
    sign_in_with_alg("PS256").await;
}

#[tokio::test]
async fn r_idt_6_eddsa_allowed_when_configured() {
    sign_in_with_alg("EdDSA").await;
}

/// Seed 001: `usernameField`, `groupsField` as a dotted path, `/loginCallback`,
/// `customParameters`, `access_type`.
#[tokio::test]
async fn seed_001_shape_claims_callback_and_custom_parameters() {
    let env = TestEnv::start_with(Options {
        callback_path: "/loginCallback",
        tweak: Box::new(|raw, _| {
            raw.claim_keys.username = Some("email".into());
            raw.claim_keys.groups = Some("realm_access.roles".into());
            raw.custom_parameters = Some([("ui_locales".to_string(), "de".to_string())].into());
            raw.access_type = Some("offline".into());
            raw.scopes = Some(vec!["openid".into(), "email".into(), "profile".into()]);
        }),
        ..Default::default()
    })
    .await;
    let b = Browser::new();
    let cb = b.start_login(&env, "/", ALICE.0, ALICE.1).await;
    assert!(
        cb.starts_with(&format!("{}/loginCallback?", env.base)),
        "{cb}"
    );
    let r = b.get(&cb).await;
    assert_eq!(r.status, 302);
    b.get(&format!("{}/", env.base)).await;
    let got = env.upstream.requests().pop().unwrap();
    assert_eq!(
        got.one("x-forwarded-preferred-username").as_deref(),
        Some("alice@example.com")
    );
    assert_eq!(
        got.one("x-forwarded-groups").as_deref(),
        Some("platform-admin,viewer")
    );
    let log = env.op.log().await;
    let auth = log.iter().find(|e| e["path"] == "/auth").unwrap();
    assert_eq!(auth["query"]["ui_locales"], "de");
    assert_eq!(auth["query"]["access_type"], "offline");
    assert_eq!(
        auth["query"]["redirect_uri"],
        format!("{}/loginCallback", env.base)
    );
}

/// Manual endpoints (seed 000's fallback) with the issuer and JWKS given explicitly: no
/// discovery request is made.
#[tokio::test]
async fn manual_endpoints_with_explicit_issuer_and_jwks() {
    let env = TestEnv::start_with(Options {
        tweak: Box::new(|raw, op| {
            manual_endpoints(raw, op);
            raw.issuer = Some(op.issuer.clone());
            raw.jwks_uri = Some(format!("{}/jwks", op.issuer));
        }),
        ..Default::default()
    })
    .await;
    let b = Browser::new();
    b.sign_in(&env, "/", ALICE.0, ALICE.1).await;
    assert_eq!(env.op.calls("/.well-known/openid-configuration").await, 0);
}

/// Seed 000's manual example names only three endpoints: Portcullis finds the issuer and
/// JWKS from the IdP's well-known document next to them.
#[tokio::test]
async fn manual_three_endpoints_only() {
    let env = TestEnv::start_with(Options {
        tweak: Box::new(|raw, op| {
            manual_endpoints(raw, op);
        }),
        ..Default::default()
    })
    .await;
    Browser::new().sign_in(&env, "/", ALICE.0, ALICE.1).await;
}

/// Seed 000 precedence: an individually configured endpoint wins over the discovered one.
#[tokio::test]
async fn configured_endpoint_overrides_discovery() {
    let env = TestEnv::start_with(Options {
        tweak: Box::new(|raw, op| {
            // Point userinfo at an unreachable port: if it is used, sign-in fails with 502.
            let _ = op;
            raw.userinfo_endpoint = Some("http://127.0.0.1:9/userinfo".into());
        }),
        ..Default::default()
    })
    .await;
    let b = Browser::new();
    let cb = b.start_login(&env, "/", ALICE.0, ALICE.1).await;
    let r = b.get(&cb).await;
    assert_eq!(
        r.status, 502,
        "the configured userinfo endpoint must be the one used"
    );
    assert_eq!(env.op.calls("/me").await, 0);
    env.assert_nothing_stored().await;
}

/// Core §10.1.1: the OP rotates its key; the gateway refetches the JWKS on the unknown kid.
#[tokio::test]
async fn r_idt_3_key_rotation_refetches_jwks() {
    let clock = portcullis_core::time::ManualClock::at_now();
    let env = TestEnv::start_with(Options {
        clock: Some(clock.clone()),
        ..Default::default()
    })
    .await;
    env.op.mode(json!({"id_token": {"sign": "rotated"}})).await;
    // The refetch cooldown counts from the initial load; move past it as a real rotation
    // would (the gateway's clock, not a sleep).
    clock.advance(portcullis_gateway::idp::provider::REFETCH_COOLDOWN_SECS);
    let jwks_before = env.op.calls("/jwks").await;
    Browser::new().sign_in(&env, "/", ALICE.0, ALICE.1).await;
    assert_eq!(env.op.calls("/jwks").await, jwks_before + 1);
}

/// A second sign-in updates the stored user (same identity) and keeps first_login.
#[tokio::test]
async fn second_sign_in_updates_user() {
    let env = TestEnv::start().await;
    Browser::new().sign_in(&env, "/", ALICE.0, ALICE.1).await;
    Browser::new().sign_in(&env, "/", ALICE.0, ALICE.1).await;
    assert_eq!(env.users().await, 1);
    assert_eq!(env.sessions().await, 2);
}

/// Hostile claim values are encoded in headers (R-HD-3) and never break the response.
#[tokio::test]
async fn r_hd_3_hostile_claims_encoded() {
    // Mallory's email is unverified: allowed here so her hostile claims reach the headers.
    let env = TestEnv::start_with(Options {
        tweak: Box::new(|raw, _| raw.allow_unverified_email = Some("true".into())),
        ..Default::default()
    })
    .await;
    let b = Browser::new();
    b.sign_in(&env, "/", MALLORY.0, MALLORY.1).await;
    let r = b.get(&format!("{}/", env.base)).await;
    assert_eq!(r.status, 200);
    let got = env.upstream.requests().pop().unwrap();
    let groups = got.one("x-forwarded-groups").unwrap();
    assert_eq!(groups, "devs%0D%0AX-Injected: 1,ops");
    assert!(got.header("x-injected").is_empty());
    let s = b.get(&format!("{}/api/session", env.base)).await;
    assert_eq!(s.status, 200);
}
