//! The `DPoP` header of API requests (`check_proof`, with `expected_htu` for the request path
//! and server nonces on or off): plain bytes, and structured proofs signed with a real P-256
//! key whose public JWK the header carries, so the claim, `htm`, `htu`, `iat` and nonce checks
//! are reached too. `normalize_htu` must be idempotent.
#![no_main]

use std::sync::OnceLock;

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use portcullis_core::session::{
    Expected, NonceKeys, SessionKeys, check_proof, expected_htu, normalize_htu,
};
use portcullis_fuzz::{Jws, NOW, PUBLIC_URL, SECRET, ec_jwk, mode, sign_asymmetric};
use serde_json::json;

fn nonces() -> &'static NonceKeys {
    static K: OnceLock<NonceKeys> = OnceLock::new();
    K.get_or_init(|| NonceKeys::new(&SessionKeys::derive(SECRET)))
}

fn base() -> &'static url::Url {
    static B: OnceLock<url::Url> = OnceLock::new();
    B.get_or_init(|| match url::Url::parse(PUBLIC_URL) {
        Ok(u) => u,
        Err(_) => std::process::abort(),
    })
}

#[derive(Arbitrary, Debug)]
struct Input {
    proof: Jws,
    /// The request path (default `/api/x`).
    path: Option<String>,
    /// The request method (default `POST`).
    method: Option<String>,
    nonce_on: bool,
    /// More `DPoP` header values (a second one is refused).
    more: Vec<Vec<u8>>,
}

fn htu_idempotent(s: &str) {
    if let Some(n) = normalize_htu(s) {
        assert_eq!(
            normalize_htu(&n).as_deref(),
            Some(n.as_str()),
            "htu not idempotent"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((structured, rest)) = mode(data) else {
        return;
    };
    if !structured {
        let Ok(text) = std::str::from_utf8(rest) else {
            return;
        };
        htu_idempotent(text);
        if let Some(h) = expected_htu(base(), text) {
            htu_idempotent(&h);
        }
        let Some(htu) = expected_htu(base(), "/api/x") else {
            return;
        };
        for nonce in [None, Some(nonces())] {
            let expected = Expected {
                method: "POST",
                htu: &htu,
                now: NOW,
                nonce,
            };
            let _ = check_proof(&[rest], &expected);
        }
        return;
    }
    let Ok(input) = Input::arbitrary_take_rest(Unstructured::new(rest)) else {
        return;
    };
    let path = input.path.as_deref().unwrap_or("/api/x");
    let Some(htu) = expected_htu(base(), path) else {
        return;
    };
    htu_idempotent(&htu);
    let header = [
        ("typ", json!("dpop+jwt")),
        ("alg", json!("ES256")),
        ("jwk", ec_jwk(None)),
    ];
    let claims = [
        ("jti", json!("jti-0123456789abcdef")),
        ("htm", json!("POST")),
        ("htu", json!(format!("{PUBLIC_URL}/api/x"))),
        ("iat", json!(NOW)),
        ("nonce", json!(nonces().current(NOW))),
    ];
    let proof = input.proof.compact(&header, &claims, sign_asymmetric);
    let mut values: Vec<&[u8]> = vec![proof.as_bytes()];
    values.extend(input.more.iter().take(2).map(Vec::as_slice));
    let expected = Expected {
        method: input.method.as_deref().unwrap_or("POST"),
        htu: &htu,
        now: NOW,
        nonce: input.nonce_on.then(nonces),
    };
    if let Ok(checked) = check_proof(&values, &expected) {
        assert_eq!(values.len(), 1);
        assert!(checked.matches_jkt(&checked.jkt));
        assert_eq!(checked.replay_key().len(), 43);
    }
});
