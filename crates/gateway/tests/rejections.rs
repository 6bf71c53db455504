//! Rejection paths: every refusal rule of SECURITY.md §1.2–1.5 (R-AZ, R-CB, R-IDT, R-UI),
//! §1.8 R-CK-1, §1.13 (R-RD) and §1.14 (R-HD) exercised end to end against the real test OP,
//! with the outcome checked as §0.3/§0.4 define it: status, `Cache-Control: no-store`, no
//! session cookie (NS), nothing stored, upstream not reached (NP), and no token call (NT) or
//! no userinfo call (NU) where the rule says so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

// The shared harness trips two style lints (not ours to edit here).
mod common;

use common::*;
use serde_json::{Value, json};

// ------------------------------------------------------------------------------------------
// Helpers
// ------------------------------------------------------------------------------------------

fn now() -> i64 {
    portcullis_core::time::now_unix()
}

/// NS for one response: no `__Host-session`, `__Host-fp` or csrf cookie with a value
/// (deletion cookies with `Max-Age=0` are allowed).
fn assert_no_auth_cookies(r: &Resp) {
    assert!(
        !r.sets_session(),
        "a session cookie was set: {:?}",
        r.set_cookies()
    );
    for c in r.set_cookies() {
        let deletion = c.contains("Max-Age=0");
        for name in ["__Host-session=", "__Host-fp=", "csrf_token="] {
            assert!(!c.starts_with(name) || deletion, "auth cookie set: {c}");
        }
    }
}

/// A refused callback (§0.3): the status, `Cache-Control: no-store`, a generic message, NS
/// and NP, and no user or session row.
async fn assert_refused(env: &TestEnv, r: &Resp, status: u16, case: &str) {
    assert_eq!(r.status, status, "[{case}] body: {}", r.body);
    assert_no_auth_cookies(r);
    assert_eq!(
        r.header("cache-control").as_deref(),
        Some("no-store"),
        "[{case}] the callback answer must not be cached"
    );
    assert!(
        r.location().is_none(),
        "[{case}] a refusal is not a redirect"
    );
    let body = r.body.to_ascii_lowercase();
    assert!(
        !body.contains("id token") && !body.contains("nonce") && !body.contains("rejected"),
        "[{case}] the message must be generic: {}",
        r.body
    );
    env.assert_nothing_stored().await;
}

/// The query parameters of a URL, decoded.
fn params(url: &str) -> Vec<(String, String)> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

fn param(url: &str, name: &str) -> String {
    params(url)
        .into_iter()
        .find(|(k, _)| k == name)
        .unwrap_or_else(|| panic!("{name} missing from {url}"))
        .1
}

/// `url` with its query rebuilt from `f(pairs)` (form-encoded).
fn with_query(url: &str, f: impl FnOnce(&mut Vec<(String, String)>)) -> String {
    let mut pairs = params(url);
    f(&mut pairs);
    let mut u = url::Url::parse(url).unwrap();
    u.set_query(None);
    if !pairs.is_empty() {
        u.query_pairs_mut().extend_pairs(&pairs);
    }
    u.to_string()
}

fn set_param(pairs: &mut Vec<(String, String)>, name: &str, value: &str) {
    pairs.retain(|(k, _)| k != name);
    pairs.push((name.into(), value.into()));
}

/// A fresh browser signs in at the OP as Alice and requests the callback.
async fn attempt(env: &TestEnv) -> (Browser, String, Resp) {
    let b = Browser::new();
    let cb = b.start_login(env, "/", ALICE.0, ALICE.1).await;
    let r = b.get(&cb).await;
    (b, cb, r)
}

/// R-IDT: with the OP forging the ID token as `mode` says, the sign-in is refused with 401,
/// NS, NP, NU, exactly one token call, and the transaction is consumed (TC).
async fn assert_id_token_rejected(env: &TestEnv, mode: Value) {
    env.op.mode(json!({ "id_token": mode })).await;
    let case = mode.to_string();
    let (tokens, me) = (env.op.calls("/token").await, env.op.calls("/me").await);
    let (b, cb, r) = attempt(env).await;
    assert_refused(env, &r, 401, &case).await;
    assert_eq!(
        env.op.calls("/token").await,
        tokens + 1,
        "[{case}] exactly one token call (a code is never retried)"
    );
    assert_eq!(
        env.op.calls("/me").await,
        me,
        "[{case}] NU: userinfo must not be called after an invalid ID token"
    );
    // TC: the transaction is gone even though the sign-in failed.
    let again = b.get(&cb).await;
    assert_refused(env, &again, 400, &format!("{case} replay")).await;
    assert_eq!(env.op.calls("/token").await, tokens + 1, "[{case}] NT");
}

/// An ID token with these claim overrides (null deletes), re-signed with the real key.
async fn assert_claims_rejected(env: &TestEnv, claims: Value) {
    assert_id_token_rejected(env, json!({ "claims": claims, "sign": "valid" })).await;
}

/// A callback refused before the code exchange: 400, NS, NP, and NT.
async fn assert_refused_before_token(env: &TestEnv, r: &Resp, case: &str) {
    assert_refused(env, r, 400, case).await;
    assert_eq!(
        env.op.calls("/token").await,
        0,
        "[{case}] NT: the token endpoint must not be called"
    );
}

// ------------------------------------------------------------------------------------------
// R-IDT (§1.4): ID token validation. Every failure → 401 + NS + NU. Cases of one rule share
// one environment (each case is a full, fresh sign-in at the OP).
// ------------------------------------------------------------------------------------------

/// Positive control for the forging harness and R-IDT-2/9/10: an ID token re-signed by the
/// OP with `typ: JWT`, `aud: [client_id]` and `azp: client_id` is accepted, so every refusal
/// below is caused by the one thing each case changes.
#[tokio::test]
async fn r_idt_control_resigned_token_with_allowed_values_accepted() {
    let env = TestEnv::start().await;
    env.op
        .mode(json!({"id_token": {
            "claims": {"aud": [CLIENT_ID], "azp": CLIENT_ID},
            "header": {"typ": "JWT"},
            "sign": "valid",
        }}))
        .await;
    let r = Browser::new().sign_in(&env, "/", ALICE.0, ALICE.1).await;
    assert_eq!(r.location(), Some(format!("{}/", env.base)));
    assert_eq!(env.users().await, 1);
}

/// R-IDT-7: a valid signature over a payload changed afterwards (`tamper`), and the right
/// alg and kid signed with a key nobody published (`wrong-key`).
#[tokio::test]
async fn r_idt_7_tampered_signature_and_wrong_key_rejected() {
    let env = TestEnv::start().await;
    assert_id_token_rejected(&env, json!({"sign": "tamper"})).await;
    assert_id_token_rejected(&env, json!({"sign": "wrong-key"})).await;
}

/// R-IDT-5: `alg: none` with an empty signature, in any case spelling (`none`, `None`,
/// `NONE`, `nOnE`).
#[tokio::test]
async fn r_idt_5_alg_none_rejected() {
    let env = TestEnv::start().await;
    assert_id_token_rejected(&env, json!({"sign": "none"})).await;
    for alg in ["None", "NONE", "nOnE"] {
        assert_id_token_rejected(&env, json!({"sign": "none", "header": {"alg": alg}})).await;
    }
}

/// R-IDT-6 (RFC 8725 §3.1, CVE-2015-9235): HS256 keyed with the OP's RSA public key (PEM);
/// and an ES256 token signed with a key that IS in the JWKS while only RS256 is configured
/// (the header never chooses the algorithm).
#[tokio::test]
async fn r_idt_6_hs256_with_public_key_and_es256_in_jwks_rejected() {
    let env = TestEnv::start().await;
    assert_id_token_rejected(&env, json!({"sign": "hs256-public-key"})).await;
    assert_id_token_rejected(&env, json!({"sign": "es256-in-jwks"})).await;
}

/// R-IDT-3, R-RS-4: a kid that is never published is refused after exactly one JWKS refetch;
/// a second token with it within the 5 s cooldown triggers no further fetch.
#[tokio::test]
async fn r_idt_3_unknown_kid_rejected_after_one_jwks_refetch() {
    let clock = portcullis_core::time::ManualClock::at_now();
    let env = TestEnv::start_with(Options {
        clock: Some(clock.clone()),
        ..Default::default()
    })
    .await;
    // The refetch cooldown counts from the initial load: move the gateway's clock past it.
    clock.advance(portcullis_gateway::idp::provider::REFETCH_COOLDOWN_SECS);
    let jwks = env.op.calls("/jwks").await;
    assert_id_token_rejected(&env, json!({"sign": "unknown-kid"})).await;
    assert_eq!(
        env.op.calls("/jwks").await,
        jwks + 1,
        "an unknown kid triggers exactly one JWKS refetch"
    );
    assert_id_token_rejected(&env, json!({"sign": "unknown-kid"})).await;
    assert_eq!(
        env.op.calls("/jwks").await,
        jwks + 1,
        "no second refetch within the cooldown"
    );
}

/// R-IDT-9: `aud` another client; an array with our client_id plus an untrusted audience;
/// `aud` missing; of the wrong JSON type; an array without our client_id; an empty array.
#[tokio::test]
async fn r_idt_9_wrong_extra_or_missing_aud_rejected() {
    let env = TestEnv::start().await;
    for aud in [
        json!("another-client"),
        json!([CLIENT_ID, "untrusted-api"]),
        Value::Null, // deletes the claim
        json!(42),
        json!(["someone-else"]),
        json!([]),
    ] {
        assert_claims_rejected(&env, json!({ "aud": aud })).await;
    }
}

/// R-IDT-8: `iss` another issuer; the issuer with a trailing slash (no normalisation);
/// `iss` missing.
#[tokio::test]
async fn r_idt_8_wrong_trailing_slash_or_missing_iss_rejected() {
    let env = TestEnv::start().await;
    let slash = format!("{}/", env.op.issuer);
    for iss in [json!("https://evil.example"), json!(slash), Value::Null] {
        assert_claims_rejected(&env, json!({ "iss": iss })).await;
    }
}

/// R-IDT-14: a nonce that is not the transaction's; nonce missing.
#[tokio::test]
async fn r_idt_14_wrong_or_missing_nonce_rejected() {
    let env = TestEnv::start().await;
    for nonce in [
        json!("bm90LXRoZS1ub25jZS13ZS1zZW50LTAxMjM0NTY3ODk"),
        Value::Null,
    ] {
        assert_claims_rejected(&env, json!({ "nonce": nonce })).await;
    }
}

/// R-IDT-11 (CVE-2026-25537): expired an hour ago (beyond the 60 s leeway); `exp` as a
/// string (never treated as absent); missing; a boolean; NumericDate out of [0, 2^53].
#[tokio::test]
async fn r_idt_11_expired_string_or_missing_exp_rejected() {
    let env = TestEnv::start().await;
    for exp in [
        json!(now() - 3600),
        json!((now() + 600).to_string()),
        Value::Null,
        json!(true),
        json!(-1),
        json!(10_000_000_000_000_000_i64),
    ] {
        assert_claims_rejected(&env, json!({ "exp": exp })).await;
    }
}

/// R-IDT-12: `iat` an hour in the future; missing; older than 600 s (the token itself not
/// expired); as a string.
#[tokio::test]
async fn r_idt_12_future_missing_or_stale_iat_rejected() {
    let env = TestEnv::start().await;
    for iat in [
        json!(now() + 3600),
        Value::Null,
        json!(now() - 3600),
        json!(now().to_string()),
    ] {
        assert_claims_rejected(&env, json!({ "iat": iat })).await;
    }
}

/// R-IDT-13: `nbf` an hour in the future.
#[tokio::test]
async fn r_idt_13_nbf_in_future_rejected() {
    let env = TestEnv::start().await;
    assert_claims_rejected(&env, json!({"nbf": now() + 3600})).await;
}

/// R-IDT-15: `sub` missing, empty, too long, with a space, NUL, CR/LF or non-ASCII, or not a
/// string.
#[tokio::test]
async fn r_idt_15_missing_or_invalid_sub_rejected() {
    let env = TestEnv::start().await;
    for sub in [
        Value::Null,
        json!(""),
        json!("a".repeat(256)),
        json!("alice sub"),
        json!("alice\u{0}"),
        json!("alice\r\nX-Forwarded-User: admin"),
        json!("ali\u{202e}ce"),
        json!(1234),
    ] {
        assert_claims_rejected(&env, json!({ "sub": sub })).await;
    }
}

/// R-IDT-10: `azp` present and not our client_id; R-IDT-16: `at_hash` that does not match
/// the access token.
#[tokio::test]
async fn r_idt_10_azp_wrong_and_r_idt_16_at_hash_wrong_rejected() {
    let env = TestEnv::start().await;
    assert_claims_rejected(&env, json!({"azp": "another-client"})).await;
    assert_claims_rejected(&env, json!({"at_hash": "AAAAAAAAAAAAAAAAAAAAAA"})).await;
}

/// R-IDT-2: `typ: logout+jwt` and the other non-ID-token types (RFC 8725 §3.11); `crit`
/// naming an extension we do not implement and `b64: false` (RFC 7515 §4.1.11).
#[tokio::test]
async fn r_idt_2_typ_logout_jwt_and_crit_header_rejected() {
    let env = TestEnv::start().await;
    for typ in ["logout+jwt", "dpop+jwt", "at+jwt", "session+jwt"] {
        assert_id_token_rejected(&env, json!({"header": {"typ": typ}, "sign": "valid"})).await;
    }
    assert_id_token_rejected(
        &env,
        json!({"header": {"crit": ["urn:example:unknown"], "urn:example:unknown": true}, "sign": "valid"}),
    )
    .await;
    assert_id_token_rejected(
        &env,
        json!({"header": {"crit": ["b64"], "b64": false}, "sign": "valid"}),
    )
    .await;
}

/// R-IDT-1: malformed ID tokens returned by the token endpoint (2 segments, 5-segment JWE,
/// padding, whitespace, not JSON, empty) → 401, NU.
#[tokio::test]
async fn r_idt_1_malformed_id_token_rejected() {
    let env = TestEnv::start().await;
    let h = "eyJhbGciOiJSUzI1NiJ9"; // {"alg":"RS256"}
    let p = "eyJzdWIiOiJhbGljZS1zdWItMDAwMSJ9"; // {"sub":"alice-sub-0001"}
    for id_token in [
        format!("{h}.{p}"),
        format!("{h}.{p}.c2ln.extra.parts"),
        format!("{h}=.{p}.c2ln"),
        format!("{h}.{p} .c2ln"),
        "bm90IGpzb24.bm90IGpzb24.c2ln".to_string(),
        String::new(),
    ] {
        env.op
            .mode(json!({"token": {"status": 200, "body": {
                "access_token": "opaque-access-token",
                "token_type": "Bearer",
                "expires_in": 300,
                "id_token": id_token,
            }}}))
            .await;
        let (_, _, r) = attempt(&env).await;
        assert_refused(&env, &r, 401, &id_token).await;
        assert_eq!(env.op.calls("/me").await, 0, "NU");
    }
}

// ------------------------------------------------------------------------------------------
// R-UI (§1.5): UserInfo.
// ------------------------------------------------------------------------------------------

/// R-UI-3 (`rp-userinfo-bad-sub-claim`): UserInfo `sub` differs from the ID token's, or is
/// missing → 401, NS, nothing stored.
#[tokio::test]
async fn r_ui_3_userinfo_sub_mismatch_rejected() {
    let env = TestEnv::start().await;
    for (i, claims) in [
        json!({"sub": "bob-sub-0002", "email": "bob@example.com"}),
        json!({"sub": "alice-sub-0001 "}),
        json!({"sub": null}),
    ]
    .into_iter()
    .enumerate()
    {
        env.op.mode(json!({"userinfo": {"claims": claims}})).await;
        let (_, _, r) = attempt(&env).await;
        assert_refused(&env, &r, 401, &claims.to_string()).await;
        assert_eq!(env.op.calls("/me").await, i + 1);
    }
}

/// R-UI-4: an email over 320 characters → 401.
#[tokio::test]
async fn r_ui_4_oversized_email_rejected() {
    let env = TestEnv::start().await;
    let email = format!("{}@example.com", "a".repeat(320));
    env.op
        .mode(json!({"userinfo": {"claims": {"email": email}}}))
        .await;
    let (_, _, r) = attempt(&env).await;
    assert_refused(&env, &r, 401, "oversized email").await;
}

// ------------------------------------------------------------------------------------------
// R-CB (§1.3): the authorization response and the code exchange.
// ------------------------------------------------------------------------------------------

/// R-CB-1: only GET is accepted at the redirect URI (405 with `Allow`); `state` longer than
/// 512 characters or `code` longer than 4096; `code`, `iss` or `error` repeated; the OP's
/// redirect carrying `state` twice → 400. All NT, NS.
#[tokio::test]
async fn r_cb_1_non_get_duplicate_or_oversized_params_refused() {
    let env = TestEnv::start().await;
    let b = Browser::new();
    let cb = b.start_login(&env, "/", ALICE.0, ALICE.1).await;

    let r = b.send(b.raw().post(&cb), &cb).await;
    assert_eq!(r.status, 405);
    assert!(r.header("allow").is_some_and(|a| a.contains("GET")));
    assert_no_auth_cookies(&r);
    env.assert_nothing_stored().await;
    assert_eq!(env.op.calls("/token").await, 0, "NT");

    let long_state = with_query(&cb, |p| set_param(p, "state", &"s".repeat(513)));
    let r = b.get(&long_state).await;
    assert_refused_before_token(&env, &r, "state > 512").await;
    let long_code = with_query(&cb, |p| set_param(p, "code", &"c".repeat(4097)));
    let r = b.get(&long_code).await;
    assert_refused_before_token(&env, &r, "code > 4096").await;

    let issuer = env.op.issuer.clone();
    for (name, value) in [
        ("code", "attacker-code"),
        ("iss", issuer.as_str()),
        ("error", "access_denied"),
    ] {
        let dup = with_query(&cb, |p| {
            // Twice the parameter in total, whether or not the OP already sent it.
            let present = p.iter().any(|(k, _)| k == name);
            for _ in 0..(if present { 1 } else { 2 }) {
                p.push((name.into(), value.into()));
            }
        });
        let r = b.get(&dup).await;
        assert_refused_before_token(&env, &r, &format!("duplicate {name}")).await;
    }

    env.op
        .mode(json!({"authorization_response": {"duplicate_state": true}}))
        .await;
    let (_, cb, r) = attempt(&env).await;
    assert_eq!(
        params(&cb).iter().filter(|(k, _)| k == "state").count(),
        2,
        "the OP must have duplicated state: {cb}"
    );
    assert_refused_before_token(&env, &r, "duplicate state from the OP").await;
}

/// R-CB-1/2: `state` missing; a `state` the gateway never issued; an expired transaction
/// (past its 600 s TTL, correctly bound to this browser) → 400, NT.
#[tokio::test]
async fn r_cb_2_missing_unknown_or_expired_state_400() {
    let env = TestEnv::start().await;
    let b = Browser::new();
    let cb = b.start_login(&env, "/", ALICE.0, ALICE.1).await;
    let tx_cookie = b.cookie(&env.base, "__Host-oidc_tx").expect("tx cookie");

    let r = b
        .get(&with_query(&cb, |p| p.retain(|(k, _)| k != "state")))
        .await;
    assert_refused_before_token(&env, &r, "missing state").await;

    let forged = with_query(&cb, |p| {
        set_param(p, "state", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
    });
    let r = b.get(&forged).await;
    assert_refused_before_token(&env, &r, "unknown state").await;

    // Each refused callback cleared the tx cookie (R-CK-2); put it back so the expired
    // transaction below is refused for its expiry, not for a missing cookie.
    b.set_cookie(&env.base, "__Host-oidc_tx", &tx_cookie);
    let now = now();
    let expired = portcullis_store::LoginTx {
        state: "expired-state-0123456789-abcdefghijklmnopqrs".into(),
        nonce: "expired-nonce".into(),
        code_verifier: "expired-verifier-0123456789-abcdefghijklmnopqrs".into(),
        return_to: format!("{}/", env.base),
        binding_hash: portcullis_gateway::routes::login::binding_hash(&env.gw.state, &tx_cookie),
        issuer: env.op.issuer.clone(),
        created_at: now - 700,
        expires_at: now - 100,
        dpop_jkt: None,
    };
    env.store()
        .login_tx
        .insert_login_tx(&expired, portcullis_gateway::routes::login::TX_LIMITS)
        .await
        .unwrap();
    let r = b
        .get(&with_query(&cb, |p| set_param(p, "state", &expired.state)))
        .await;
    assert_refused_before_token(&env, &r, "expired state").await;
}

/// R-AZ-3/4: every sign-in start mints a fresh tx cookie (a value the client chose, or one
/// planted by a sibling subdomain, is never adopted), so a newer start replaces the browser's
/// binding: the older pending sign-in's callback is refused (400, NT) while the newest
/// completes. The per-binding cap of 5 is a store rule (conformance suite).
#[tokio::test]
async fn r_az_3_newer_login_replaces_the_browser_binding() {
    let env = TestEnv::start().await;
    let b = Browser::new();
    let oldest = b.start_login(&env, "/", ALICE.0, ALICE.1).await;
    let tx_cookie = b.cookie(&env.base, "__Host-oidc_tx").unwrap();
    let mut authorize = String::new();
    for _ in 0..5 {
        let r = b.get(&format!("{}/api/login", env.base)).await;
        assert_eq!(r.status, 302, "{}", r.body);
        authorize = r.location().unwrap();
    }
    assert_ne!(
        b.cookie(&env.base, "__Host-oidc_tx").as_deref(),
        Some(tx_cookie.as_str()),
        "a fresh tx cookie for every start"
    );
    assert_eq!(env.login_txs().await, 6);
    let r = b.get(&oldest).await;
    assert_refused_before_token(&env, &r, "evicted transaction").await;
    let newest = b
        .authorize_at_op(&authorize, &env.base, ALICE.0, ALICE.1)
        .await;
    let r = b.get(&newest).await;
    assert_eq!(r.status, 302, "{}", r.body);
    assert!(r.sets_session());
}

/// R-CB-2, TC: a completed callback replayed in the same browser → 400, NT (the token
/// endpoint saw only the first exchange), no new session.
#[tokio::test]
async fn r_cb_2_state_replay_400() {
    let env = TestEnv::start().await;
    let b = Browser::new();
    let cb = b.start_login(&env, "/", ALICE.0, ALICE.1).await;
    let ok = b.get(&cb).await;
    assert_eq!(ok.status, 302, "{}", ok.body);
    assert!(ok.sets_session());
    let r = b.get(&cb).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_no_auth_cookies(&r);
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
    assert_eq!(env.op.calls("/token").await, 1, "NT for the replay");
    assert_eq!(env.users().await, 1);
    assert_eq!(env.sessions().await, 1, "the replay created no session");
    assert_eq!(env.upstream.count(), 0);
}

/// R-CB-3 (login CSRF), R-CK-1: browser A's callback opened in browser B without a tx
/// cookie, with its own valid tx cookie of another login, with a forged tx cookie, or with
/// the tx cookie sent twice (cookie tossing) → 400, NT. The transaction is consumed by the
/// refused attempt, so A's own attempt then fails too (TC).
#[tokio::test]
async fn r_cb_3_state_from_another_browser_400() {
    let env = TestEnv::start().await;
    let forged = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    for case in [
        "no tx cookie",
        "tx cookie of another login",
        "forged tx cookie",
        "duplicate tx cookie",
    ] {
        let a = Browser::new();
        let cb = a.start_login(&env, "/", ALICE.0, ALICE.1).await;
        let b = Browser::new();
        let r = match case {
            "no tx cookie" => b.get(&cb).await,
            "tx cookie of another login" => {
                let started = b.get(&format!("{}/api/login", env.base)).await;
                assert_eq!(started.status, 302);
                assert!(b.cookie(&env.base, "__Host-oidc_tx").is_some());
                b.get(&cb).await
            }
            "forged tx cookie" => {
                b.set_cookie(&env.base, "__Host-oidc_tx", forged);
                b.get(&cb).await
            }
            _ => {
                let tx = a.cookie(&env.base, "__Host-oidc_tx").unwrap();
                let both = format!("__Host-oidc_tx={tx}; __Host-oidc_tx={forged}");
                b.get_with(&cb, &[("cookie", &both)]).await
            }
        };
        assert_refused_before_token(&env, &r, case).await;
        let r = a.get(&cb).await;
        assert_refused_before_token(&env, &r, &format!("A after {case}")).await;
    }
}

/// R-CB-5 (RFC 9207): `iss` in the authorization response is another issuer, differs only by
/// a trailing slash (simple string comparison), or is missing although the OP advertises
/// `authorization_response_iss_parameter_supported` → 400, NT.
#[tokio::test]
async fn r_cb_5_iss_mismatch_or_missing_400() {
    let env = TestEnv::start().await;
    let slash = format!("{}/", env.op.issuer);
    for iss in [json!("https://evil.example"), json!(slash), Value::Null] {
        env.op
            .mode(json!({"authorization_response": {"iss": iss}}))
            .await;
        let (_, cb, r) = attempt(&env).await;
        match iss.as_str() {
            Some(want) => assert_eq!(param(&cb, "iss"), want),
            None => assert!(params(&cb).iter().all(|(k, _)| k != "iss"), "{cb}"),
        }
        assert_refused_before_token(&env, &r, &format!("iss {iss}")).await;
    }
}

/// R-CB-4: `error=` for a valid state → 401, a generic page with `error_description`
/// HTML-escaped, NT, NS; the transaction is consumed. With an unknown state, or none → 400.
#[tokio::test]
async fn r_cb_4_idp_error_401_description_escaped() {
    let env = TestEnv::start().await;
    let b = Browser::new();
    let cb = b.start_login(&env, "/", ALICE.0, ALICE.1).await;
    let err = with_query(&cb, |p| {
        p.retain(|(k, _)| k != "code");
        p.push(("error".into(), "access_denied".into()));
        p.push((
            "error_description".into(),
            "<script>alert(1)</script>\"'&<img src=x onerror=alert(2)>".into(),
        ));
    });
    let r = b.get(&err).await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert_no_auth_cookies(&r);
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("text/html"))
    );
    assert!(!r.body.contains("<script>alert"), "{}", r.body);
    assert!(!r.body.contains("<img"), "{}", r.body);
    assert!(
        r.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{}",
        r.body
    );
    env.assert_nothing_stored().await;
    assert_eq!(env.op.calls("/token").await, 0, "NT");
    // TC: the same state cannot be used afterwards, not even with the real code.
    let r = b.get(&cb).await;
    assert_refused_before_token(&env, &r, "code after error").await;

    let unknown = with_query(&err, |p| {
        set_param(p, "state", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
    });
    let r = b.get(&unknown).await;
    assert_refused_before_token(&env, &r, "error with unknown state").await;
    assert!(!r.body.contains("<script>"));
    let r = b
        .get(&format!(
            "{}/api/callback?error=access_denied&error_description=x",
            env.base
        ))
        .await;
    assert_refused_before_token(&env, &r, "error without state").await;
}

/// R-CB-7: the token endpoint answers an OAuth error (`invalid_grant`); or a JSON 200 without
/// `id_token`, with a non-string one, with a token_type other than Bearer, or without
/// `access_token` → 401, exactly one token call (no retry), NU, NS.
#[tokio::test]
async fn r_cb_7_token_endpoint_oauth_error_or_incomplete_response_401() {
    let env = TestEnv::start().await;
    let cases = [
        json!({"status": 400, "body": {"error": "invalid_grant", "error_description": "<script>x</script>"}}),
        json!({"status": 401, "body": {"error": "invalid_client"}}),
        json!({"status": 200, "body": {"access_token": "opaque", "token_type": "Bearer", "expires_in": 300}}),
        json!({"status": 200, "body": {"access_token": "opaque", "token_type": "Bearer", "id_token": 12}}),
        json!({"status": 200, "body": {"access_token": "opaque", "token_type": "mac", "id_token": "a.b.c"}}),
        json!({"status": 200, "body": {"token_type": "Bearer", "id_token": "a.b.c"}}),
    ];
    for (i, token) in cases.into_iter().enumerate() {
        env.op.mode(json!({ "token": token })).await;
        let (_, _, r) = attempt(&env).await;
        assert_refused(&env, &r, 401, &token.to_string()).await;
        assert!(!r.body.contains("<script>"));
        assert_eq!(env.op.calls("/token").await, i + 1, "one attempt, no retry");
        assert_eq!(env.op.calls("/me").await, 0, "NU");
    }
}

/// R-CB-7: garbage from the token endpoint (HTML with 200, HTML with 500, truncated JSON,
/// a JSON array) → 502, NU, NS.
#[tokio::test]
async fn r_cb_7_token_endpoint_garbage_502() {
    let env = TestEnv::start().await;
    for (status, raw, ct) in [
        (200, "<html><body>Welcome</body></html>", "text/html"),
        (500, "<html><body>Internal error</body></html>", "text/html"),
        (200, "{\"access_token\": ", "application/json"),
        (200, "[1,2,3]", "application/json"),
    ] {
        env.op
            .mode(json!({"token": {"raw": raw, "status": status, "content_type": ct}}))
            .await;
        let (_, _, r) = attempt(&env).await;
        assert_refused(&env, &r, 502, raw).await;
        assert_eq!(env.op.calls("/me").await, 0, "NU");
    }
}

/// R-CB-6/7 (code replay / injection): after one completed sign-in, the old code is sent
/// again with a NEW valid state of the same browser → the OP answers `invalid_grant` → 401;
/// nothing is stored beyond the first sign-in's rows and no session cookie is set.
#[tokio::test]
async fn r_cb_6_code_replay_with_new_state_401() {
    let env = TestEnv::start().await;
    let b = Browser::new();
    let first = b.start_login(&env, "/", ALICE.0, ALICE.1).await;
    let ok = b.get(&first).await;
    assert_eq!(ok.status, 302, "{}", ok.body);
    let old_code = param(&first, "code");
    let user_before = env
        .store()
        .users
        .user_by_identity(&env.op.issuer, "alice-sub-0001")
        .await
        .unwrap()
        .unwrap();

    // A new login in the same browser: the OP session sends it straight back.
    let login = b.get(&format!("{}/api/login", env.base)).await;
    assert_eq!(login.status, 302);
    let second = b
        .authorize_at_op(&login.location().unwrap(), &env.base, ALICE.0, ALICE.1)
        .await;
    assert_ne!(param(&second, "state"), param(&first, "state"));
    let injected = with_query(&second, |p| set_param(p, "code", &old_code));
    let me_before = env.op.calls("/me").await;
    let r = b.get(&injected).await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert_no_auth_cookies(&r);
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
    assert_eq!(env.op.calls("/token").await, 2);
    assert_eq!(env.op.calls("/me").await, me_before, "NU");
    assert_eq!(env.users().await, 1);
    assert_eq!(env.sessions().await, 1, "no second session");
    assert_eq!(env.upstream.count(), 0);
    let user_after = env
        .store()
        .users
        .user_by_identity(&env.op.issuer, "alice-sub-0001")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user_before, user_after, "the user row is not updated");
}

// ------------------------------------------------------------------------------------------
// R-RD (§1.13, §4.3): post-login redirect.
// ------------------------------------------------------------------------------------------

/// Start at `GET /api/login?{query}`, sign in (the OP session may send the browser straight
/// back), and return the callback answer.
async fn sign_in_from_login(env: &TestEnv, b: &Browser, query: &str) -> Resp {
    let r = b.get(&format!("{}/api/login?{query}", env.base)).await;
    assert_eq!(r.status, 302, "[{query}] {}", r.body);
    let authorize = r.location().unwrap();
    assert!(authorize.starts_with(&env.op.issuer), "{authorize}");
    // R-AZ-7: the target never goes to the IdP.
    assert!(
        params(&authorize)
            .iter()
            .all(|(k, _)| k != "rd" && k != "return_to"),
        "{authorize}"
    );
    assert!(!authorize.contains("evil"), "{authorize}");
    let cb = b
        .authorize_at_op(&authorize, &env.base, ALICE.0, ALICE.1)
        .await;
    let r = b.get(&cb).await;
    assert_eq!(r.status, 302, "[{query}] {}", r.body);
    assert!(r.sets_session());
    r
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// R-RD-1/2, R-AZ-7: every open-redirect payload (SECURITY.md §1.13 and §4.3, CVE-2020-5233,
/// CVE-2020-11053, CVE-2021-32786 shapes) silently falls back to exactly `{base}/`.
#[tokio::test]
async fn r_rd_1_open_redirect_payloads_fall_back_to_root() {
    let env = TestEnv::start().await;
    let b = Browser::new();
    let host = env.base.trim_start_matches("http://").to_string();
    let mut payloads: Vec<String> = [
        "//evil.com",
        "//evil.com/",
        "///evil.com",
        "/\\evil.com",
        "/%09/evil.com",
        "/\t/evil.com",
        "\\\\evil.com",
        "\\/evil.com",
        "http:evil.com",
        "https:evil.com",
        "https://evil.com",
        "https://evil.com/",
        "HTTPS://evil.com",
        "/.//evil.com",
        "/./\\evil.com",
        "/%2F/evil.com",
        "/%2f%2fevil.com",
        "/%5Cevil.com",
        "/%5cevil.com",
        "//%09/evil.com",
        "/%09/%09/evil.com",
        " //evil.com",
        "/ /evil.com",
        "/%0d%0aSet-Cookie:%20x=y",
        "/%0aLocation:%20https://evil.com",
        "/a\r\nLocation: https://evil.com",
        "/a\nSet-Cookie: x=y",
        "/%00",
        "/a\u{0}b",
        "/\u{7f}",
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "https://gw@evil.com",
        "//gw@evil.com",
        "evil.com",
        "",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    payloads.push(format!("http://{host}@evil.com/"));
    payloads.push(format!("//{host}@evil.com"));
    payloads.push(format!("http://{host}/x"));
    payloads.push(format!("/{}", "a".repeat(2048)));
    for p in &payloads {
        let r = sign_in_from_login(&env, &b, &format!("rd={}", enc(p))).await;
        assert_eq!(
            r.location().as_deref(),
            Some(format!("{}/", env.base).as_str()),
            "payload {p:?} must fall back to the root"
        );
        let r = sign_in_from_login(&env, &b, &format!("return_to={}", enc(p))).await;
        assert_eq!(
            r.location().as_deref(),
            Some(format!("{}/", env.base).as_str()),
            "payload {p:?} (return_to) must fall back to the root"
        );
    }
    // `rd` given twice: neither is used.
    let r = sign_in_from_login(&env, &b, "rd=%2Fok&rd=%2F%2Fevil.com").await;
    assert_eq!(r.location(), Some(format!("{}/", env.base)));
    assert_eq!(env.upstream.count(), 0);
}

/// R-RD-1/2: `/@evil.com/` is a same-origin path (not userinfo), so it is kept as a path;
/// legit same-origin targets come back absolute, path and query intact, never decoded.
#[tokio::test]
async fn r_rd_2_same_origin_targets_kept_absolute() {
    let env = TestEnv::start().await;
    let b = Browser::new();
    for (input, want) in [
        ("/deep/path?x=1", "/deep/path?x=1"),
        ("/files/a%2Fb", "/files/a%2Fb"),
        ("/r/My%20Report?q=a%26b", "/r/My%20Report?q=a%26b"),
        ("/", "/"),
        ("/@evil.com/", "/@evil.com/"),
    ] {
        let r = sign_in_from_login(&env, &b, &format!("rd={}", enc(input))).await;
        assert_eq!(
            r.location(),
            Some(format!("{}{want}", env.base)),
            "target {input:?}"
        );
    }
}

/// R-RD-3: `return_to`/`rd` on the callback itself is ignored; the stored target wins.
#[tokio::test]
async fn r_rd_3_return_to_on_callback_ignored() {
    let env = TestEnv::start().await;
    let b = Browser::new();
    let cb = b.start_login(&env, "/stored", ALICE.0, ALICE.1).await;
    let cb = with_query(&cb, |p| {
        p.push(("return_to".into(), "https://evil.com/".into()));
        p.push(("rd".into(), "//evil.com".into()));
    });
    let r = b.get(&cb).await;
    assert_eq!(r.status, 302, "{}", r.body);
    assert_eq!(r.location(), Some(format!("{}/stored", env.base)));
}

/// R-RD-1, R-RD-2: an unauthenticated GET of `{base}//evil.com` (and friends) is sent to sign
/// in on the gateway's own origin, and after sign-in never leaves it.
#[tokio::test]
async fn r_rd_1_protected_double_slash_path_stays_on_origin() {
    let env = TestEnv::start().await;
    let base = url::Url::parse(&env.base).unwrap();
    for path in [
        "//evil.com",
        "//evil.com/x?y=1",
        "///evil.com",
        "/%2F%2Fevil.com",
    ] {
        let b = Browser::new();
        let r = b.get(&format!("{}{path}", env.base)).await;
        assert_eq!(r.status, 302, "[{path}] {}", r.body);
        let loc = r.location().unwrap();
        let next = base.join(&loc).unwrap();
        assert_eq!(next.origin(), base.origin(), "[{path}] {loc}");
        assert_eq!(next.path(), "/api/login", "[{path}] {loc}");
        let query = next.query().unwrap_or("").to_string();
        let r = sign_in_from_login(&env, &b, &query).await;
        let landed = base.join(&r.location().unwrap()).unwrap();
        assert_eq!(landed.origin(), base.origin(), "[{path}] {landed}");
        assert!(!landed.path().starts_with("//"), "[{path}] {landed}");
        assert_eq!(
            r.location(),
            Some(format!("{}/", env.base)),
            "[{path}] a double-slash path is not a valid target"
        );
    }
    assert_eq!(env.upstream.count(), 0);
}

// ------------------------------------------------------------------------------------------
// R-HD (§1.14): inbound identity headers.
// ------------------------------------------------------------------------------------------

/// Spoofed identity headers of every spelling.
const SPOOFED: &[(&str, &str)] = &[
    ("X-Forwarded-User", "admin"),
    ("X_Forwarded_User", "admin"),
    ("x-forwarded-email", "admin@evil.example"),
    ("X_Forwarded_Email", "admin@evil.example"),
    ("X-Forwarded-Groups", "admins,root"),
    ("X-Forwarded-Preferred-Username", "root"),
    ("X-Forwarded-Name", "Administrator"),
    ("X-Forwarded-User-Id", "admin"),
    ("X-Auth-Request-User", "admin"),
    ("X-Auth-Request-Email", "admin@evil.example"),
    ("X-Auth-Request-Groups", "admins"),
    ("X-Remote-User", "admin"),
    ("Remote-User", "admin"),
    ("Remote_User", "admin"),
];

fn normalized(name: &str) -> String {
    name.trim().to_ascii_lowercase().replace('_', "-")
}

/// What the upstream got: Bob's real identity, one header each, no spoofed spelling left.
fn assert_real_identity(got: &Received) {
    assert_eq!(got.one("x-forwarded-user").as_deref(), Some("bob-sub-0002"));
    assert_eq!(
        got.one("x-forwarded-email").as_deref(),
        Some("bob@example.com")
    );
    assert_eq!(got.one("x-forwarded-groups").as_deref(), Some("devs"));
    assert_eq!(
        got.one("x-forwarded-preferred-username").as_deref(),
        Some("bob")
    );
    let allowed = [
        "x-forwarded-user",
        "x-forwarded-email",
        "x-forwarded-groups",
        "x-forwarded-preferred-username",
    ];
    for (k, v) in &got.headers {
        let n = normalized(k);
        let identity = n.starts_with("x-forwarded-user")
            || n.starts_with("x-forwarded-email")
            || n.starts_with("x-forwarded-name")
            || n.starts_with("x-forwarded-groups")
            || n.starts_with("x-forwarded-preferred-username")
            || n.starts_with("x-auth-request-")
            || n == "x-remote-user"
            || n == "remote-user";
        assert!(
            !identity || (allowed.contains(&k.as_str())),
            "spoofed header reached the upstream: {k}: {v}"
        );
        assert!(
            !v.contains("admin"),
            "spoofed value reached the upstream: {k}: {v}"
        );
    }
    for name in allowed {
        assert_eq!(
            got.headers
                .iter()
                .filter(|(k, _)| normalized(k) == name)
                .count(),
            1,
            "exactly one {name}"
        );
    }
}

/// R-HD-1/2/4: a signed-in request carrying spoofed identity headers (CVE-2025-64484
/// underscore spellings included) reaches the upstream with only the real values, exactly one
/// of each, and without the gateway cookies.
#[tokio::test]
async fn r_hd_1_spoofed_identity_headers_replaced_when_signed_in() {
    let env = TestEnv::start().await;
    let b = Browser::new();
    b.sign_in(&env, "/", BOB.0, BOB.1).await;
    let r = b.get_with(&format!("{}/hd", env.base), SPOOFED).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let got = env.upstream.requests().pop().unwrap();
    assert_eq!(got.uri, "/hd");
    assert_real_identity(&got);
    assert!(
        got.one("cookie").is_none_or(|c| !c.contains("__Host-")),
        "R-HD-4: gateway cookies stripped"
    );
}

/// R-HD-2 (Fabio CVE-2025-48865 pattern): `Connection:` naming identity headers cannot make
/// the proxy drop the real ones (and cannot smuggle spoofed ones).
#[tokio::test]
async fn r_hd_2_connection_token_cannot_drop_identity_headers() {
    let env = TestEnv::start().await;
    let b = Browser::new();
    b.sign_in(&env, "/", BOB.0, BOB.1).await;
    let mut headers: Vec<(&str, &str)> = SPOOFED.to_vec();
    headers.push((
        "Connection",
        "x-forwarded-user, x-forwarded-email, X-Forwarded-Groups, x-forwarded-preferred-username",
    ));
    let r = b.get_with(&format!("{}/conn", env.base), &headers).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let got = env.upstream.requests().pop().unwrap();
    assert_real_identity(&got);
    assert!(
        got.one("connection")
            .is_none_or(|c| !c.contains("forwarded"))
    );
}

/// R-HD-1/7, §0.3: an unauthenticated request with spoofed identity headers is never
/// forwarded: browser GET → 302 to sign in, API (`Accept: application/json`) or POST → 401
/// `{"error":"unauthorized"}`.
#[tokio::test]
async fn r_hd_1_unauthenticated_spoofed_headers_not_forwarded() {
    let env = TestEnv::start().await;
    let b = Browser::new();
    let url = format!("{}/admin", env.base);
    let r = b.get_with(&url, SPOOFED).await;
    assert_eq!(r.status, 302, "{}", r.body);
    assert_sign_in_redirect(&env, &r, "spoofed headers");
    assert_no_auth_cookies(&r);

    let mut api: Vec<(&str, &str)> = SPOOFED.to_vec();
    api.push(("Accept", "application/json"));
    let r = b.get_with(&url, &api).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body, r#"{"error":"unauthorized"}"#);

    let mut post = b.raw().post(&url).body("x=1");
    for (k, v) in SPOOFED {
        post = post.header(*k, *v);
    }
    let r = b.send(post, &url).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body, r#"{"error":"unauthorized"}"#);

    env.assert_nothing_stored().await;
}

// ------------------------------------------------------------------------------------------
// R-CK-1 (§1.8): the session cookie.
// ------------------------------------------------------------------------------------------

/// A 302 to the gateway's own `/api/login?rd=…` (absolute or relative).
fn assert_sign_in_redirect(env: &TestEnv, r: &Resp, case: &str) {
    assert_eq!(r.status, 302, "[{case}] {}", r.body);
    let base = url::Url::parse(&env.base).unwrap();
    let loc = r.location().unwrap();
    let to = base.join(&loc).unwrap();
    assert_eq!(to.origin(), base.origin(), "[{case}] {loc}");
    assert_eq!(to.path(), "/api/login", "[{case}] {loc}");
    assert!(
        to.query().is_some_and(|q| q.starts_with("rd=")),
        "[{case}] {loc}"
    );
}

/// A browser GET without a valid session is sent to sign in; an API call gets the generic
/// 401. Neither reaches the upstream.
async fn assert_not_signed_in(env: &TestEnv, cookie: &str, case: &str) {
    let before = env.upstream.count();
    let b = Browser::new();
    let url = format!("{}/private", env.base);
    let r = b.get_with(&url, &[("cookie", cookie)]).await;
    assert_eq!(r.status, 302, "[{case}] {}", r.body);
    assert_sign_in_redirect(env, &r, case);
    let r = b
        .get_with(&url, &[("cookie", cookie), ("accept", "application/json")])
        .await;
    assert_eq!(r.status, 401, "[{case}]");
    assert_eq!(r.body, r#"{"error":"unauthorized"}"#, "[{case}]");
    assert_eq!(env.upstream.count(), before, "[{case}] NP");
}

/// R-CK-1 (cookie tossing): `__Host-session` sent twice, in one `Cookie` header or in two →
/// 401 and the upstream is not reached, even though both values are valid.
#[tokio::test]
async fn r_ck_1_duplicate_session_cookie_401() {
    let env = TestEnv::start().await;
    let b = Browser::new();
    b.sign_in(&env, "/", ALICE.0, ALICE.1).await;
    let s = b.cookie(&env.base, "__Host-session").unwrap();
    // The fingerprint cookie goes with every session cookie below, so each refusal is for the
    // reason the test names, not for a missing fingerprint.
    let fp = format!("; __Host-fp={}", b.cookie(&env.base, "__Host-fp").unwrap());
    // Sanity: the cookie alone works.
    let ok = Browser::new()
        .get_with(
            &format!("{}/ok", env.base),
            &[("cookie", &format!("__Host-session={s}{fp}"))],
        )
        .await;
    assert_eq!(ok.status, 200);
    let before = env.upstream.count();
    let one_header = format!("__Host-session={s}; __Host-session={s}{fp}");
    let two_headers = format!("__Host-session={s}{fp}");
    let url = format!("{}/private", env.base);
    for (accept, json_body) in [("application/json", true), ("text/html", false)] {
        let r = Browser::new()
            .get_with(&url, &[("cookie", &one_header), ("accept", accept)])
            .await;
        assert_eq!(r.status, 401, "{}", r.body);
        if json_body {
            assert_eq!(r.body, r#"{"error":"unauthorized"}"#);
        }
        let r = Browser::new()
            .get_with(
                &url,
                &[
                    ("cookie", &two_headers),
                    ("cookie", &two_headers),
                    ("accept", accept),
                ],
            )
            .await;
        assert_eq!(r.status, 401, "{}", r.body);
    }
    assert_eq!(env.upstream.count(), before, "NP");
}

/// R-CK-1, R-SJ-1: a tampered session cookie, and one signed with another gateway's secret
/// for the same user and session → browser redirected to sign in, API 401.
#[tokio::test]
async fn r_ck_1_tampered_or_foreign_session_cookie_refused() {
    let env = TestEnv::start().await;
    let b = Browser::new();
    b.sign_in(&env, "/", ALICE.0, ALICE.1).await;
    let s = b.cookie(&env.base, "__Host-session").unwrap();
    // The fingerprint cookie goes with every session cookie below, so each refusal is for the
    // reason the test names, not for a missing fingerprint.
    let fp = format!("; __Host-fp={}", b.cookie(&env.base, "__Host-fp").unwrap());
    let parts: Vec<&str> = s.split('.').collect();
    assert_eq!(parts.len(), 3);

    // Signature changed in its middle.
    let mut sig: Vec<char> = parts[2].chars().collect();
    let i = sig.len() / 2;
    sig[i] = if sig[i] == 'A' { 'B' } else { 'A' };
    let tampered_sig = format!(
        "{}.{}.{}",
        parts[0],
        parts[1],
        sig.iter().collect::<String>()
    );
    assert_not_signed_in(
        &env,
        &format!("__Host-session={tampered_sig}{fp}"),
        "tampered signature",
    )
    .await;

    // Payload changed (another sub), signature kept.
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut payload: Value = serde_json::from_slice(&b64.decode(parts[1]).unwrap()).unwrap();
    let sid = payload["sid"].as_str().unwrap().to_string();
    let sub = payload["sub"].as_str().unwrap().to_string();
    payload["exp"] = json!(now() + 100_000);
    let tampered_payload = format!(
        "{}.{}.{}",
        parts[0],
        b64.encode(payload.to_string()),
        parts[2]
    );
    assert_not_signed_in(
        &env,
        &format!("__Host-session={tampered_payload}{fp}"),
        "tampered payload",
    )
    .await;

    // Same claims, signed with another secret.
    let foreign_keys = portcullis_core::session::SessionKeys::derive(
        "another-gateway-secret-0123456789-abcdefghij",
    );
    let t = now();
    let foreign = portcullis_core::session::SessionClaims {
        iss: env.gw.state.public_origin.clone(),
        sub,
        sid,
        iat: t,
        exp: t + 1800,
        auth_time: t,
        // The real fingerprint: only the signing secret differs.
        fph: portcullis_core::session::fingerprint_hash(&b.cookie(&env.base, "__Host-fp").unwrap()),
        csrf_h: "any".into(),
        jkt: Some(b.dpop.as_ref().unwrap().thumbprint()),
        idp_sid: None,
    }
    .issue(&foreign_keys);
    assert_not_signed_in(
        &env,
        &format!("__Host-session={foreign}{fp}"),
        "foreign secret",
    )
    .await;

    // alg none with the real claims.
    let none = format!(
        "{}.{}.",
        b64.encode(r#"{"alg":"none","typ":"session+jwt"}"#),
        parts[1]
    );
    assert_not_signed_in(&env, &format!("__Host-session={none}{fp}"), "alg none").await;

    // The original still works: the refusals revoked nothing by accident.
    let ok = Browser::new()
        .get_with(
            &format!("{}/ok", env.base),
            &[("cookie", &format!("__Host-session={s}{fp}"))],
        )
        .await;
    assert_eq!(ok.status, 200);
}

/// R-CK-1: unprefixed or mis-cased look-alikes (`session`, `Host-session`, `__host-session`,
/// `__Secure-session`) carrying a valid session token are ignored.
#[tokio::test]
async fn r_ck_1_unprefixed_lookalike_cookie_ignored() {
    let env = TestEnv::start().await;
    let b = Browser::new();
    b.sign_in(&env, "/", ALICE.0, ALICE.1).await;
    let s = b.cookie(&env.base, "__Host-session").unwrap();
    // The fingerprint cookie goes with every session cookie below, so each refusal is for the
    // reason the test names, not for a missing fingerprint.
    let fp = format!("; __Host-fp={}", b.cookie(&env.base, "__Host-fp").unwrap());
    for name in [
        "session",
        "Host-session",
        "__host-session",
        "__HOST-session",
        "__Secure-session",
        "__Host-Session",
        "__Host-session2",
        "x__Host-session",
    ] {
        assert_not_signed_in(&env, &format!("{name}={s}{fp}"), name).await;
    }
    assert_eq!(env.upstream.count(), 0);
}

/// R-CB-7, R-RS-2: a token endpoint slower than the 10 s budget, or one answering more than
/// 1 MiB, is an IdP failure (502): nothing stored, no userinfo call.
#[tokio::test]
async fn r_cb_7_token_endpoint_timeout_and_oversize_502() {
    let env = TestEnv::start().await;
    let big = format!("{{\"access_token\":\"{}\"}}", "a".repeat(1024 * 1024 + 10));
    for (case, mode) in [
        (
            "over 1 MiB",
            json!({"token": {"raw": big, "content_type": "application/json"}}),
        ),
        ("slower than 10 s", json!({"token": {"delay_ms": 11_000}})),
    ] {
        let b = Browser::new();
        let cb = b.start_login(&env, "/", ALICE.0, ALICE.1).await;
        env.op.mode(mode).await;
        let started = std::time::Instant::now();
        let r = b.get(&cb).await;
        assert_refused(&env, &r, 502, case).await;
        if case.starts_with("slower") {
            assert!(
                started.elapsed() < std::time::Duration::from_secs(11),
                "the 10 s cap must apply"
            );
        }
        assert_eq!(env.op.calls("/me").await, 0, "[{case}] NU");
    }
}

/// R-IDT-2 (RFC 8725 §3.10, CVE-2018-0114): keys named or embedded in the token header are
/// never used or fetched — a token signed by an attacker key in `jwk`, or published at `jku`
/// / `x5u`, is refused and the attacker URLs are never requested.
#[tokio::test]
async fn r_idt_2_header_keys_never_used_or_fetched() {
    let env = TestEnv::start().await;
    assert_id_token_rejected(&env, json!({"sign": "embedded-jwk"})).await;
    assert_id_token_rejected(&env, json!({"sign": "jku"})).await;
    let log = env.op.log().await;
    assert!(
        !log.iter().any(|e| e["path"]
            .as_str()
            .is_some_and(|p| p.starts_with("/attacker/"))),
        "jku/x5u must never be fetched: {log:?}"
    );
}
