//! The IdP's JWKS document (`Jwks::parse`), then what the verifier asks of every key that
//! survived: kid, family, thumbprint, and which algorithms it may verify.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_core::jose::{Jwk, Jwks, JwsAlg};

fn judge(k: &Jwk) {
    assert_eq!(k.thumbprint_sha256().len(), 43);
    assert!(k.kid().is_none_or(|kid| kid.chars().count() <= 256));
    for alg in JwsAlg::ALL {
        // A key verifies only its own family, and only its declared alg if it has one.
        if k.usable_for(alg) {
            assert_eq!(k.family(), alg.key_family());
            assert!(k.alg().is_none_or(|a| a == alg));
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(jwks) = Jwks::parse(data) {
        assert_eq!(jwks.len(), jwks.keys().len());
        for k in jwks.keys() {
            judge(k);
            if let Some(kid) = k.kid() {
                assert!(jwks.contains_kid(kid));
            }
        }
    }
    // One key alone, as the DPoP header's `jwk` is judged.
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data)
        && let Ok(k) = Jwk::parse(&v)
    {
        judge(&k);
    }
});
