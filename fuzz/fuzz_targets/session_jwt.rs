//! The session cookie's JWT (`SessionClaims::verify`): plain bytes, and structured tokens
//! signed with the gateway's own session key, so the claim checks are reached too. A token that
//! verifies must survive re-issue and verify to the same claims.
#![no_main]

use std::sync::OnceLock;

use arbitrary::{Arbitrary, Unstructured};
use aws_lc_rs::hmac;
use libfuzzer_sys::fuzz_target;
use portcullis_core::session::{SessionClaims, SessionKeys};
use portcullis_fuzz::{Jws, NOW, PUBLIC_URL, SECRET, mode};
use serde_json::{Value, json};

fn keys() -> &'static SessionKeys {
    static K: OnceLock<SessionKeys> = OnceLock::new();
    K.get_or_init(|| SessionKeys::derive(SECRET).with_previous("fuzz-previous-secret-0123456789ab"))
}

fn check(token: &str) {
    let Ok(claims) = SessionClaims::verify(token, keys(), PUBLIC_URL, NOW) else {
        return;
    };
    let again = SessionClaims::verify(&claims.issue(keys()), keys(), PUBLIC_URL, NOW);
    assert_eq!(again.as_ref(), Ok(&claims), "re-issued session differs");
}

fuzz_target!(|data: &[u8]| {
    let Some((structured, rest)) = mode(data) else {
        return;
    };
    if !structured {
        if let Ok(token) = std::str::from_utf8(rest) {
            check(token);
        }
        return;
    }
    let Ok(jws) = Jws::arbitrary_take_rest(Unstructured::new(rest)) else {
        return;
    };
    let header = [("alg", json!("HS256")), ("typ", json!("session+jwt"))];
    let claims = [
        ("iss", json!(PUBLIC_URL)),
        ("aud", json!(PUBLIC_URL)),
        ("sub", json!("u-1")),
        ("sid", json!("s-1")),
        ("iat", json!(NOW - 60)),
        ("exp", json!(NOW + 1200)),
        ("auth_time", json!(NOW - 3600)),
        ("fph", json!("fingerprint-hash")),
        ("csrf_h", json!("csrf-hash")),
        (
            "cnf",
            json!({"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}),
        ),
        ("idp_sid", json!("idp-session")),
    ];
    let token = jws.compact(
        &header,
        &claims,
        |_: &serde_json::Map<String, Value>, input| {
            hmac::sign(keys().session_jwt(), input).as_ref().to_vec()
        },
    );
    check(&token);
});
