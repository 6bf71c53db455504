//! Per-request and per-sign-in verification costs: session JWT verify (every request), DPoP
//! proof verify and thumbprint (every API request), ID token validation (every sign-in),
//! cookie parsing and redirect validation.
//! Run: `cargo bench -p portcullis-core --bench verify`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair, RSA_PKCS1_SHA256, RsaKeyPair,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use criterion::{Criterion, criterion_group, criterion_main};
use portcullis_core::jose::{Jwks, JwsAlg};
use portcullis_core::oidc::id_token::{IdTokenExpectations, validate_id_token};
use portcullis_core::redirect::validate_return_to;
use portcullis_core::session::dpop::{Expected, NonceKeys, check_proof};
use portcullis_core::session::{CookieNames, Cookies, SessionClaims, SessionKeys};
use serde_json::json;

fn id_token_fixture(now: i64) -> (String, Jwks) {
    let kp = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
    let pk = kp.public_key();
    let jwks = json!({"keys": [{
        "kty": "RSA", "kid": "k1", "use": "sig", "alg": "RS256",
        "n": B64.encode(pk.modulus().big_endian_without_leading_zero()),
        "e": B64.encode(pk.exponent().big_endian_without_leading_zero()),
    }]});
    let header = json!({"alg": "RS256", "kid": "k1", "typ": "JWT"});
    let claims = json!({
        "iss": "https://idp.example.com", "aud": "client", "sub": "user-1", "nonce": "n-123",
        "iat": now, "exp": now + 300, "email": "a@example.com", "groups": ["a", "b", "c"],
    });
    let input = format!(
        "{}.{}",
        B64.encode(header.to_string()),
        B64.encode(claims.to_string())
    );
    let mut sig = vec![0; kp.public_modulus_len()];
    kp.sign(
        &RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        input.as_bytes(),
        &mut sig,
    )
    .unwrap();
    (
        format!("{input}.{}", B64.encode(sig)),
        Jwks::parse(jwks.to_string().as_bytes()).unwrap(),
    )
}

/// A DPoP proof (RFC 9449 §4.2) signed by a fresh P-256 key embedded as `jwk`, with a server
/// nonce when given.
fn dpop_fixture(now: i64, nonce: Option<&str>) -> String {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let kp = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
    let p = kp.public_key().as_ref();
    let header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": {
        "kty": "EC", "crv": "P-256", "x": B64.encode(&p[1..33]), "y": B64.encode(&p[33..]),
    }});
    let mut claims = json!({
        "jti": "e1j3V_bKic8-LAEB", "htm": "GET", "htu": "https://gw.example.com/api/data",
        "iat": now,
    });
    if let Some(n) = nonce {
        claims["nonce"] = json!(n);
    }
    let input = format!(
        "{}.{}",
        B64.encode(header.to_string()),
        B64.encode(claims.to_string())
    );
    let sig = kp.sign(&rng, input.as_bytes()).unwrap();
    format!("{input}.{}", B64.encode(sig.as_ref()))
}

fn benches(c: &mut Criterion) {
    let now = portcullis_core::time::now_unix();
    let keys = SessionKeys::derive("bench-secret-0123456789-abcdefghijklmnop");
    let origin = "https://gw.example.com";
    let session = SessionClaims {
        iss: origin.into(),
        sub: "0190a3b2-user".into(),
        sid: "sid-0123456789abcdefghijklmnopqrstuvwxyzABCDE".into(),
        iat: now,
        exp: now + 1800,
        auth_time: now,
        fph: portcullis_core::session::fingerprint_hash("fingerprint"),
        csrf_h: portcullis_core::session::csrf_hash(&keys, "csrf-token"),
        jkt: Some("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I".into()),
        idp_sid: Some("idp-sid".into()),
    };
    let token = session.issue(&keys);
    c.bench_function("session_jwt_verify", |b| {
        b.iter(|| SessionClaims::verify(&token, &keys, origin, now).unwrap())
    });
    c.bench_function("session_jwt_issue", |b| b.iter(|| session.issue(&keys)));
    // Tiers 1 and 2 of an unsafe request: the JWT, its fingerprint cookie and the CSRF token
    // bound to the session (what the gateway checks before anything reaches the app).
    c.bench_function("session_verify_fingerprint_csrf", |b| {
        b.iter(|| {
            let s = SessionClaims::verify(&token, &keys, origin, now).unwrap();
            assert!(s.fingerprint_matches(Some("fingerprint")));
            assert!(s.csrf_matches(&keys, "csrf-token", Some("csrf-token")));
            s
        })
    });

    let names = CookieNames::new(true);
    let header = format!("_ga=GA1.2.3; theme=dark; __Host-session={token}; csrf_token=abc");
    c.bench_function("cookie_parse", |b| {
        b.iter(|| Cookies::parse([header.as_str()].into_iter(), &names).unwrap())
    });

    // Every stateless R-DP check (size, JWS, typ/alg/jwk, ES256 signature, claims, htu
    // normalisation, iat window) plus the RFC 7638 thumbprint; the replay-cache insert and
    // the cnf.jkt comparison are the caller's.
    let base = url::Url::parse("https://gw.example.com").unwrap();
    let htu = portcullis_core::session::expected_htu(&base, "/api/data").unwrap();
    let proof = dpop_fixture(now, None);
    let expected = Expected {
        method: "GET",
        htu: &htu,
        now,
        nonce: None,
    };
    c.bench_function("dpop_proof_verify_es256_and_thumbprint", |b| {
        b.iter(|| check_proof(&[proof.as_bytes()], &expected).unwrap())
    });
    // The floor: one bare ES256 verification of the same proof (aws-lc), nothing else. The
    // issue's target compares the whole check with this.
    let (input, sig) = proof.rsplit_once('.').unwrap();
    let sig = B64.decode(sig).unwrap();
    let hdr: serde_json::Value =
        serde_json::from_slice(&B64.decode(input.split('.').next().unwrap()).unwrap()).unwrap();
    let mut point = vec![4u8];
    point.extend(B64.decode(hdr["jwk"]["x"].as_str().unwrap()).unwrap());
    point.extend(B64.decode(hdr["jwk"]["y"].as_str().unwrap()).unwrap());
    let public = aws_lc_rs::signature::UnparsedPublicKey::new(
        &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED,
        point,
    );
    c.bench_function("es256_verify_only", |b| {
        b.iter(|| public.verify(input.as_bytes(), &sig).unwrap())
    });
    // The same with server nonces on (R-DP check 12: two HMACs more).
    let nonces = NonceKeys::new(&keys);
    let proof = dpop_fixture(now, Some(&nonces.current(now)));
    let expected = Expected {
        nonce: Some(&nonces),
        ..expected
    };
    c.bench_function("dpop_proof_verify_es256_thumbprint_nonce", |b| {
        b.iter(|| check_proof(&[proof.as_bytes()], &expected).unwrap())
    });

    let (id_token, jwks) = id_token_fixture(now);
    let exp = IdTokenExpectations {
        issuer: "https://idp.example.com",
        client_id: "client",
        nonce: "n-123",
        allowed_algs: &[JwsAlg::RS256],
        extra_audiences: &[],
        client_audience: None,
        access_token: None,
        now,
    };
    c.bench_function("id_token_validate_rs256", |b| {
        b.iter(|| validate_id_token(&id_token, &jwks, &exp).unwrap())
    });

    let base = url::Url::parse("https://gw.example.com/").unwrap();
    c.bench_function("return_to_validate", |b| {
        b.iter(|| validate_return_to("/reports/2026/q3?tab=summary", &base).unwrap())
    });
}

criterion_group!(verify, benches);
criterion_main!(verify);
