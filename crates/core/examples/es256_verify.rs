//! `cargo run --release -p portcullis-core --example es256_verify -- N`: one P-256 key, one
//! DPoP-sized message, then N bare ES256 verifications (aws-lc), nothing else.
//!
//! For bench/instructions.sh: run under callgrind with N = 0 and N = 200, the difference over
//! 200 is the instruction cost of one verification — the yardstick the DPoP-checked request is
//! compared with.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair,
    UnparsedPublicKey,
};

fn main() {
    let n: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .expect("usage: es256_verify N");
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let kp = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
    // About the size of a proof's signing input (header with the jwk, and the claims).
    let message = vec![b'e'; 420];
    let sig = kp.sign(&rng, &message).unwrap();
    let public = UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, kp.public_key().as_ref());
    for _ in 0..n {
        public
            .verify(std::hint::black_box(&message), sig.as_ref())
            .unwrap();
    }
}
