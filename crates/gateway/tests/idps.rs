//! Several identity providers on one gateway: the environment's IdP and a second one from the
//! file's `identityProviders` list, each a real `oidc-provider` with its own issuer. Sign-in
//! goes through the chooser, `?idp=` or the email domain; each IdP has its own callback (the
//! mix-up defence), claim keys and role lists; users are keyed by (issuer, sub), so the same
//! `sub` at two IdPs is two people; back-channel logouts and offline re-checks go to the
//! issuer's IdP.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::*;
use portcullis_core::config::RawIdp;
use portcullis_core::time::ManualClock;
use portcullis_gateway::offline::{PassReport, recheck_due_sessions};
use serde_json::{Value, json};
use tokio::net::TcpListener;

const PARTNER_CLIENT: &str = "gw-at-partner";
const PARTNER_SECRET: &str = "partner-secret-0123456789";
const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// Two IdPs: ours (`default`, the environment's, groups from `groups`, `guest` for `devs`) and
/// the partner's (groups from `realm_access.roles`, `admin` for `platform-admin`).
struct Two {
    env: TestEnv,
    partner: Op,
    clock: Arc<ManualClock>,
}

#[derive(Default)]
struct Setup {
    /// The partner's discovery URL; `None`: its real OP.
    partner_discovery: Option<String>,
    partner_offline: bool,
    dpop: bool,
}

async fn two(s: Setup) -> Two {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let mut c = client(
        &format!("{base}/api/callback/partner"),
        "client_secret_post",
        "RS256",
    );
    c["client_id"] = json!(PARTNER_CLIENT);
    c["client_secret"] = json!(PARTNER_SECRET);
    let mut cfg = json!({"clients": [c], "issuer_path": "/partner"});
    if s.partner_offline {
        cfg["refresh_tokens"] = json!("microsoft");
    }
    let partner = Op::start(cfg).await;
    let discovery = s
        .partner_discovery
        .clone()
        .unwrap_or_else(|| partner.discovery_url());
    let offline = s.partner_offline;
    let dpop = s.dpop;
    let clock = ManualClock::at_now();
    let env = TestEnv::start_with(Options {
        listener: Some(listener),
        clock: Some(clock.clone()),
        tweak: Box::new(move |raw, _| {
            raw.idp_name = Some("Example Staff".into());
            raw.idp_email_domains = Some(vec!["example.com".into()]);
            raw.roles.insert("guest".into(), vec!["devs".into()]);
            if dpop {
                raw.dpop = Some("true".into());
            }
            let mut roles = BTreeMap::new();
            roles.insert("admin".to_string(), vec!["platform-admin".to_string()]);
            let mut p = RawIdp {
                id: Some("partner".into()),
                name: Some("Partner Corp".into()),
                email_domains: Some(vec!["partner.example".into()]),
                roles: Some(roles),
                ..Default::default()
            };
            p.settings.discovery_url = Some(discovery);
            p.settings.client_id = Some(PARTNER_CLIENT.into());
            p.settings.client_secret = Some(PARTNER_SECRET.into());
            p.settings.claim_keys.groups = Some("realm_access.roles".into());
            let mut scopes = vec!["openid".to_string(), "email".into(), "profile".into()];
            if offline {
                scopes.push("offline_access".into());
                raw.offline_recheck = Some("60".into());
            }
            p.settings.scopes = Some(scopes);
            raw.identity_providers = vec![p];
        }),
        ..Default::default()
    })
    .await;
    let t = Two {
        env,
        partner,
        clock,
    };
    // /readyz is 200 once one IdP is loaded; the tests want both (unless one is down).
    if s.partner_discovery.is_none() {
        for _ in 0..200 {
            let (_, v) = Browser::new()
                .get_json(&format!("{}/readyz", t.env.base))
                .await;
            let idps = v["identity_providers"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if idps.len() == 2 && idps.iter().all(|i| i["status"] == "ready") {
                return t;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("the IdPs did not both load");
    }
    t
}

/// Sign in at the IdP `/api/login?<query>` leads to; the callback response.
async fn sign_in_via(b: &Browser, t: &Two, query: &str, op: &Op) -> Resp {
    let r = b.get(&format!("{}/api/login?{query}", t.env.base)).await;
    assert_eq!(r.status, 302, "{}", r.body);
    let authorize = r.location().unwrap();
    assert!(authorize.starts_with(&op.issuer), "{authorize}");
    let cb = b
        .authorize_at_op(&authorize, &t.env.base, ALICE.0, ALICE.1)
        .await;
    b.get(&cb).await
}

/// Our browser signed in at our IdP (`default`), theirs at the partner's.
async fn sign_in_both(t: &Two) -> (Browser, Browser) {
    let ours = Browser::new();
    let theirs = Browser::new();
    let r = sign_in_via(&ours, t, "idp=default", &t.env.op).await;
    assert_eq!(r.status, 302, "{}", r.body);
    let r = sign_in_via(&theirs, t, "idp=partner", &t.partner).await;
    assert_eq!(r.status, 302, "{}", r.body);
    (ours, theirs)
}

async fn session(b: &Browser, t: &Two) -> Value {
    let (status, v) = b.get_json(&format!("{}/api/session", t.env.base)).await;
    assert_eq!(status, 200, "{v}");
    v
}

#[tokio::test]
async fn the_chooser_lists_every_idp_and_each_signs_in_its_own_people() {
    let t = two(Setup::default()).await;
    let b = Browser::new();

    // No choice yet: the chooser, nothing stored, no cookie.
    let r = b
        .get(&format!("{}/api/login?rd=%2Freports", t.env.base))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body.contains("Example Staff") && r.body.contains("Partner Corp"),
        "{}",
        r.body
    );
    assert!(
        r.body
            .contains("href=\"/api/login?idp=partner&amp;rd=%2Freports\""),
        "{}",
        r.body
    );
    assert!(
        r.body
            .contains("href=\"/api/login?idp=default&amp;rd=%2Freports\""),
        "{}",
        r.body
    );
    assert!(r.body.contains("name=\"login_hint\""), "{}", r.body);
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
    assert!(r.set_cookies().is_empty());
    assert_eq!(t.env.login_txs().await, 0);
    // A protected page sends the browser to that chooser.
    let r = b.get(&format!("{}/reports", t.env.base)).await;
    assert_eq!(r.status, 302);
    assert!(
        r.location().unwrap().contains("/api/login?rd="),
        "{:?}",
        r.location()
    );

    // An unknown IdP: refused, nothing stored.
    let r = b.get(&format!("{}/api/login?idp=nope", t.env.base)).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.set_cookies().is_empty());
    assert_eq!(t.env.login_txs().await, 0);

    // The partner: its own redirect URI, its claim keys and role lists.
    let r = b
        .get(&format!("{}/api/login?idp=partner", t.env.base))
        .await;
    let authorize = url::Url::parse(&r.location().unwrap()).unwrap();
    let q: BTreeMap<String, String> = authorize.query_pairs().into_owned().collect();
    assert_eq!(q["client_id"], PARTNER_CLIENT);
    assert_eq!(
        q["redirect_uri"],
        format!("{}/api/callback/partner", t.env.base)
    );
    let cb = b
        .authorize_at_op(authorize.as_str(), &t.env.base, ALICE.0, ALICE.1)
        .await;
    assert!(
        cb.starts_with(&format!("{}/api/callback/partner?", t.env.base)),
        "{cb}"
    );
    let r = b.get(&cb).await;
    assert_eq!(r.status, 302, "{}", r.body);
    assert!(r.sets_session());
    let s = session(&b, &t).await;
    assert_eq!(s["user"]["issuer"], t.partner.issuer);
    assert_eq!(s["roles"], json!(["admin"]), "{s}");
    // The partner's client secret went to the partner only.
    let exchange = t
        .partner
        .log()
        .await
        .into_iter()
        .find(|e| e["path"] == "/token")
        .unwrap();
    assert_eq!(exchange["form"]["client_id"], PARTNER_CLIENT);
    assert_eq!(t.env.op.calls("/token").await, 0);

    // Alice of our own IdP has the same `sub`, but is another person: (issuer, sub).
    let b2 = Browser::new();
    let r = sign_in_via(&b2, &t, "idp=default", &t.env.op).await;
    assert_eq!(r.status, 302, "{}", r.body);
    let s2 = session(&b2, &t).await;
    assert_eq!(s2["user"]["issuer"], t.env.op.issuer);
    assert_eq!(s2["roles"], json!(["guest"]), "{s2}");
    assert_ne!(s["user"]["id"], s2["user"]["id"]);
    assert_eq!(t.env.users().await, 2);

    // Both reach the app, each as themselves.
    let r = b.get(&format!("{}/app", t.env.base)).await;
    assert_eq!(r.status, 200);
    let r = b2.get(&format!("{}/app", t.env.base)).await;
    assert_eq!(r.status, 200);

    // /readyz lists both.
    let (status, v) = Browser::new()
        .get_json(&format!("{}/readyz", t.env.base))
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["identity_providers"][0]["id"], "default");
    assert_eq!(v["identity_providers"][1]["issuer"], t.partner.issuer);
}

#[tokio::test]
async fn an_email_domain_picks_the_idp_and_the_hint_goes_on() {
    let t = two(Setup::default()).await;
    let b = Browser::new();
    let r = b
        .get(&format!(
            "{}/api/login?login_hint=carol%40Partner.Example",
            t.env.base
        ))
        .await;
    assert_eq!(r.status, 302, "{}", r.body);
    let to = url::Url::parse(&r.location().unwrap()).unwrap();
    assert!(to.as_str().starts_with(&t.partner.issuer), "{to}");
    let q: BTreeMap<String, String> = to.query_pairs().into_owned().collect();
    assert_eq!(q["login_hint"], "carol@Partner.Example");

    let r = b
        .get(&format!(
            "{}/api/login?login_hint=dave%40example.com",
            t.env.base
        ))
        .await;
    assert_eq!(r.status, 302, "{}", r.body);
    assert!(r.location().unwrap().starts_with(&t.env.op.issuer));

    // A domain no IdP takes: the chooser says so (escaped), nothing stored.
    let before = t.env.login_txs().await;
    let r = b
        .get(&format!(
            "{}/api/login?login_hint=eve%40%3Cb%3Enowhere.example",
            t.env.base
        ))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("&lt;b&gt;nowhere.example"), "{}", r.body);
    assert!(!r.body.contains("<b>nowhere"), "{}", r.body);
    assert_eq!(t.env.login_txs().await, before);
}

/// RFC 9700 §4.4.2: an authorization response of the partner's sign-in delivered to our own
/// IdP's redirect URI is refused before its code is sent anywhere.
#[tokio::test]
async fn a_response_on_another_idps_callback_is_refused() {
    let t = two(Setup::default()).await;
    let b = Browser::new();
    let r = b
        .get(&format!("{}/api/login?idp=partner", t.env.base))
        .await;
    let cb = b
        .authorize_at_op(&r.location().unwrap(), &t.env.base, ALICE.0, ALICE.1)
        .await;
    let moved = cb.replacen("/api/callback/partner?", "/api/callback?", 1);
    assert_ne!(moved, cb);
    let r = b.get(&moved).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(!r.sets_session());
    assert_eq!(t.env.users().await, 0);
    assert_eq!(t.env.sessions().await, 0);
    // The transaction is spent, and neither IdP saw the code.
    assert_eq!(t.env.login_txs().await, 0);
    assert_eq!(t.env.op.calls("/token").await, 0);
    assert_eq!(t.partner.calls("/token").await, 0);
    let r = b.get(&cb).await;
    assert_eq!(r.status, 400, "replayed on its own callback: {}", r.body);
    assert!(!r.sets_session());
}

fn logout_claims(iss: &str, aud: &str, sub: &str) -> Value {
    let now = portcullis_core::time::now_unix();
    json!({
        "iss": iss, "aud": aud, "iat": now, "exp": now + 120, "sub": sub,
        "jti": format!("jti-{}", random()), "events": {EVENT: {}},
    })
}

fn random() -> String {
    let mut b = [0u8; 12];
    aws_lc_rs::rand::fill(&mut b).unwrap();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

async fn post_logout(t: &Two, token: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/api/backchannel-logout", t.env.base))
        .form(&[("logout_token", token)])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn back_channel_logout_ends_only_the_issuers_sessions() {
    let t = two(Setup::default()).await;
    let (ours, theirs) = sign_in_both(&t).await;
    let sub = "alice-sub-0001";

    // An issuer that is not one of ours: refused, nothing ends.
    let stranger = t
        .partner
        .sign(
            "RS256",
            json!({"typ": "logout+jwt"}),
            logout_claims("https://stranger.example", PARTNER_CLIENT, sub),
            false,
        )
        .await;
    let r = post_logout(&t, &stranger).await;
    assert_eq!(r.status(), 400);
    // Our issuer, signed with the partner's key: refused by our IdP's keys.
    let forged = t
        .partner
        .sign(
            "RS256",
            json!({"typ": "logout+jwt"}),
            logout_claims(&t.env.op.issuer, CLIENT_ID, sub),
            false,
        )
        .await;
    let r = post_logout(&t, &forged).await;
    assert_eq!(r.status(), 400);
    // The partner's token for another client (ours at the partner is PARTNER_CLIENT).
    let other_aud = t
        .partner
        .sign(
            "RS256",
            json!({"typ": "logout+jwt"}),
            logout_claims(&t.partner.issuer, CLIENT_ID, sub),
            false,
        )
        .await;
    assert_eq!(post_logout(&t, &other_aud).await.status(), 400);
    assert_eq!(ours.session_status(&t.env.base).await, 200);
    assert_eq!(theirs.session_status(&t.env.base).await, 200);

    // The partner ends alice's sessions there: only the partner's alice is signed out.
    let token = t
        .partner
        .sign(
            "RS256",
            json!({"typ": "logout+jwt"}),
            logout_claims(&t.partner.issuer, PARTNER_CLIENT, sub),
            false,
        )
        .await;
    let r = post_logout(&t, &token).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert_eq!(theirs.session_status(&t.env.base).await, 401);
    assert_eq!(ours.session_status(&t.env.base).await, 200);
}

#[tokio::test]
async fn an_unreachable_idp_leaves_the_others_working() {
    let t = two(Setup {
        partner_discovery: Some(
            "http://127.0.0.1:9/partner/.well-known/openid-configuration".into(),
        ),
        ..Default::default()
    })
    .await;
    let (status, v) = Browser::new()
        .get_json(&format!("{}/readyz", t.env.base))
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["identity_providers"][1]["status"], "not_ready", "{v}");
    let b = Browser::new();
    let r = b.get(&format!("{}/api/login", t.env.base)).await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("cannot be reached right now"), "{}", r.body);
    let r = b
        .get(&format!("{}/api/login?idp=partner", t.env.base))
        .await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(r.set_cookies().is_empty());
    assert_eq!(t.env.login_txs().await, 0);
    assert_eq!(
        sign_in_via(&b, &t, "idp=default", &t.env.op).await.status,
        302
    );
}

/// Offline access only at the partner: its sessions are re-checked there, with its client.
#[tokio::test]
async fn offline_rechecks_go_to_the_sessions_idp() {
    let t = two(Setup {
        partner_offline: true,
        ..Default::default()
    })
    .await;
    t.env.gw.stop_offline_rechecks();
    let (ours, theirs) = sign_in_both(&t).await;
    t.clock.advance(61);
    let r = recheck_due_sessions(&t.env.gw.state).await;
    assert_eq!(
        r,
        PassReport {
            refreshed: 1,
            ..Default::default()
        }
    );
    let grants = t.partner.refresh_grants().await;
    assert_eq!(grants.len(), 1);
    assert_eq!(grants[0]["form"]["client_id"], PARTNER_CLIENT);
    assert_eq!(
        t.env.op.calls("/token").await,
        1,
        "only our sign-in's code exchange"
    );

    // The partner takes platform-admin away: the next re-check ends that session (no role
    // left in the partner's lists, and noRole is not set... the gateway's lists give none).
    t.partner
        .control(
            "user",
            json!({"login": "alice", "claims": {"realm_access": {"roles": ["viewer"]}}}),
        )
        .await;
    t.clock.advance(61);
    let r = recheck_due_sessions(&t.env.gw.state).await;
    assert_eq!(r.ended, 1, "{r:?}");
    assert_eq!(theirs.session_status(&t.env.base).await, 401);
    assert_eq!(ours.session_status(&t.env.base).await, 200);
}

/// In a real browser with DPoP on: the chooser, then the sign-in page's script, then the
/// partner's login form, back signed in.
#[tokio::test]
async fn a_browser_chooses_an_idp_and_signs_in() {
    let t = two(Setup {
        dpop: true,
        ..Default::default()
    })
    .await;
    let Some(seen) = run_browser(json!({
        "url": format!("{}/reports", t.env.base),
        "choose": {"email": "alice@partner.example", "screenshot": screenshot("idp-chooser.png")},
        "user": ALICE.0,
        "password": ALICE.1,
        "user_field": "input[name=login]",
        "password_field": "input[name=password]",
        "submit": "button[type=submit]",
    }))
    .await
    else {
        return;
    };
    assert_eq!(seen["chooser_title"], "Sign in", "{seen}");
    assert_eq!(
        seen["chooser_names"],
        json!(["Example Staff", "Partner Corp"]),
        "{seen}"
    );
    // The partner's login form (its interactions live at the root of its origin).
    let partner_origin = format!("http://127.0.0.1:{}/", t.partner.port);
    assert!(
        seen["login_page"]
            .as_str()
            .unwrap()
            .starts_with(&partner_origin),
        "{seen}"
    );
    assert_eq!(seen["login_had_proof"], true, "{seen}");
    assert_eq!(seen["final_url"], format!("{}/reports", t.env.base));
    assert_eq!(seen["session_status"], 200, "{seen}");
    assert_eq!(
        seen["session"]["user"]["issuer"], t.partner.issuer,
        "{seen}"
    );
}

fn screenshot(name: &str) -> String {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name).display().to_string()
}

/// A `login_hint` that is too long or carries a control character is neither used to pick
/// an IdP nor passed on to one; a script's `POST /api/login` must say which IdP when there
/// are several (400, nothing stored, no cookie).
#[tokio::test]
async fn unusable_hints_and_unchosen_script_sign_ins_are_refused() {
    let t = two(Setup::default()).await;
    let b = Browser::new();
    let long = format!("{}%40partner.example", "a".repeat(250));
    for hint in [
        long.as_str(),
        "carol%0A%40partner.example",
        "carol%40partner.example%00",
    ] {
        let r = b
            .get(&format!("{}/api/login?login_hint={hint}", t.env.base))
            .await;
        // Not routed by its domain: the chooser, naming no domain.
        assert_eq!(r.status, 200, "{hint}: {}", r.body);
        assert!(r.body.contains("Partner Corp"), "{}", r.body);
        assert!(!r.body.contains("partner.example"), "{hint}: {}", r.body);
        // Chosen by id: the IdP gets no login_hint.
        let r = b
            .get(&format!(
                "{}/api/login?idp=partner&login_hint={hint}",
                t.env.base
            ))
            .await;
        assert_eq!(r.status, 302, "{}", r.body);
        let to = url::Url::parse(&r.location().unwrap()).unwrap();
        assert!(to.as_str().starts_with(&t.partner.issuer), "{to}");
        assert!(
            !to.query_pairs().any(|(k, _)| k == "login_hint"),
            "{hint}: {to}"
        );
    }

    let before = t.env.login_txs().await;
    let r = reqwest::Client::new()
        .post(format!("{}/api/login", t.env.base))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("set-cookie").is_none());
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "invalid_request", "{v}");
    assert_eq!(t.env.login_txs().await, before);
    assert_eq!(t.env.op.calls("/token").await, 0);
}

/// Two IdPs whose issuer is only known once loaded (the environment's names three manual
/// endpoints; the other's discovery document is the same OP's): the second to load is
/// refused, so sessions and back-channel logouts can never be matched to the wrong one.
#[tokio::test]
async fn an_idp_whose_loaded_issuer_is_anothers_is_refused() {
    let env = TestEnv::start_with(Options {
        tweak: Box::new(|raw, op| {
            manual_endpoints(raw, op);
            let mut p = RawIdp {
                id: Some("twin".into()),
                name: Some("Twin".into()),
                ..Default::default()
            };
            p.settings.discovery_url = Some(op.discovery_url());
            p.settings.client_id = Some("twin-client".into());
            p.settings.client_secret = Some("twin-secret-0123456789".into());
            raw.identity_providers = vec![p];
        }),
        ..Default::default()
    })
    .await;
    let mut last = Value::Null;
    for _ in 0..200 {
        let (_, v) = Browser::new()
            .get_json(&format!("{}/readyz", env.base))
            .await;
        let idps = v["identity_providers"].as_array().unwrap().clone();
        let refused: Vec<&Value> = idps
            .iter()
            .filter(|i| i["reason"].as_str().unwrap_or("").contains("is also IdP"))
            .collect();
        let ready = idps.iter().filter(|i| i["status"] == "ready").count();
        if refused.len() == 1 && ready == 1 {
            let reason = refused[0]["reason"].as_str().unwrap();
            assert!(reason.contains(&env.op.issuer), "{reason}");
            assert!(reason.contains("each IdP needs its own issuer"), "{reason}");
            // The refused one takes no sign-ins; the other does.
            let id = refused[0]["id"].as_str().unwrap();
            let b = Browser::new();
            let r = b.get(&format!("{}/api/login?idp={id}", env.base)).await;
            assert_eq!(r.status, 503, "{}", r.body);
            assert!(r.set_cookies().is_empty());
            assert_eq!(env.login_txs().await, 0);
            return;
        }
        last = v;
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("expected one IdP refused for its issuer and one ready: {last}");
}
