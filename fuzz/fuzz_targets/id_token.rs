//! The ID token of every sign-in (`validate_id_token`) and the UserInfo answer
//! (`verify_userinfo_jwt`, `parse_userinfo_json`), against a fixed JWKS (an Ed25519 and a
//! P-256 key): plain bytes, and structured tokens signed with those keys, so every claim rule
//! is reached too.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use portcullis_core::jose::JwsAlg;
use portcullis_core::oidc::id_token::{
    CLOCK_LEEWAY_SECS, IdTokenExpectations, at_hash, validate_id_token,
};
use portcullis_core::oidc::userinfo::{parse_userinfo_json, verify_userinfo_jwt};
use portcullis_fuzz::{CLIENT_ID, ED_KID, ISSUER, Jws, NOW, SUB, jwks, mode, sign_asymmetric};
use serde_json::json;

const ALGS: &[JwsAlg] = &[JwsAlg::EdDSA, JwsAlg::ES256, JwsAlg::RS256];
const ACCESS_TOKEN: &str = "access-token-1";

#[derive(Arbitrary, Debug)]
struct Input {
    token: Jws,
    /// Whether the token response carried an access token (for `at_hash`).
    no_access_token: bool,
    extra_audience: bool,
}

/// An audience alias of the client, as ADFS names it.
const CLIENT_ALIAS: &str = "microsoft:identityserver:portcullis";

fn check(token: &str, access_token: Option<&str>, extra_audiences: &[String]) {
    let exp = IdTokenExpectations {
        issuer: ISSUER,
        client_id: CLIENT_ID,
        nonce: "nonce-1",
        allowed_algs: ALGS,
        // With the extra audiences, also ADFS's alias of the client (OIDC_EXPECTED_AUDIENCE).
        client_audience: (!extra_audiences.is_empty()).then_some(CLIENT_ALIAS),
        extra_audiences,
        access_token,
        now: NOW,
    };
    if let Ok(c) = validate_id_token(token, jwks(), &exp) {
        assert_eq!(c.iss, ISSUER);
        assert!(c.exp >= NOW - CLOCK_LEEWAY_SECS && !c.sub.is_empty());
    }
    if let Ok(c) = verify_userinfo_jwt(token, jwks(), ISSUER, CLIENT_ID, ALGS, SUB) {
        assert_eq!(c.get("sub").and_then(|s| s.as_str()), Some(SUB));
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((structured, rest)) = mode(data) else {
        return;
    };
    if !structured {
        let _ = parse_userinfo_json(rest, SUB);
        if let Ok(token) = std::str::from_utf8(rest) {
            check(token, Some(ACCESS_TOKEN), &[]);
        }
        return;
    }
    let Ok(input) = Input::arbitrary_take_rest(Unstructured::new(rest)) else {
        return;
    };
    let header = [
        ("alg", json!("EdDSA")),
        ("kid", json!(ED_KID)),
        ("typ", json!("JWT")),
    ];
    let claims = [
        ("iss", json!(ISSUER)),
        ("aud", json!(CLIENT_ID)),
        ("azp", json!(CLIENT_ID)),
        ("exp", json!(NOW + 300)),
        ("iat", json!(NOW - 5)),
        ("nbf", json!(NOW - 5)),
        ("nonce", json!("nonce-1")),
        ("sub", json!(SUB)),
        ("at_hash", json!(at_hash(JwsAlg::EdDSA, ACCESS_TOKEN))),
        ("auth_time", json!(NOW - 60)),
        ("sid", json!("idp-session-1")),
        ("email", json!("user@example.com")),
        ("groups", json!(["a", "b"])),
    ];
    let token = input.token.compact(&header, &claims, sign_asymmetric);
    let extra = if input.extra_audience {
        vec!["other-client".to_owned()]
    } else {
        Vec::new()
    };
    check(
        &token,
        (!input.no_access_token).then_some(ACCESS_TOKEN),
        &extra,
    );
    let _ = parse_userinfo_json(input.token.claims.text(&claims).as_bytes(), SUB);
});
