//! The back-channel logout token (`validate_logout_token`), against a fixed JWKS (an Ed25519
//! and a P-256 key), with `typ` required or not: plain bytes, and structured tokens signed with
//! those keys, so every claim rule is reached too.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use portcullis_core::jose::JwsAlg;
use portcullis_core::oidc::logout_token::{LogoutExpectations, validate_logout_token};
use portcullis_fuzz::{CLIENT_ID, ED_KID, ISSUER, Jws, NOW, SUB, jwks, mode, sign_asymmetric};
use serde_json::json;

const ALGS: &[JwsAlg] = &[JwsAlg::EdDSA, JwsAlg::ES256, JwsAlg::RS256];
const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

#[derive(Arbitrary, Debug)]
struct Input {
    token: Jws,
    require_typ: bool,
}

fn check(token: &str, require_typ: bool) {
    let exp = LogoutExpectations {
        issuer: ISSUER,
        client_id: CLIENT_ID,
        allowed_algs: ALGS,
        require_typ,
        now: NOW,
    };
    if let Ok(c) = validate_logout_token(token, jwks(), &exp) {
        assert_eq!(c.iss, ISSUER);
        assert!(c.sub.is_some() || c.sid.is_some());
        assert!(!c.jti.is_empty() && c.replay_ttl(NOW) >= 0);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((structured, rest)) = mode(data) else {
        return;
    };
    if !structured {
        if let Ok(token) = std::str::from_utf8(rest) {
            check(token, false);
            check(token, true);
        }
        return;
    }
    let Ok(input) = Input::arbitrary_take_rest(Unstructured::new(rest)) else {
        return;
    };
    let header = [
        ("alg", json!("EdDSA")),
        ("kid", json!(ED_KID)),
        ("typ", json!("logout+jwt")),
    ];
    let claims = [
        ("iss", json!(ISSUER)),
        ("aud", json!(CLIENT_ID)),
        ("iat", json!(NOW - 5)),
        ("exp", json!(NOW + 120)),
        ("sub", json!(SUB)),
        ("sid", json!("idp-session-1")),
        ("events", json!({ EVENT: {} })),
        ("jti", json!("logout-jti-1")),
    ];
    let token = input.token.compact(&header, &claims, sign_asymmetric);
    check(&token, input.require_typ);
});
