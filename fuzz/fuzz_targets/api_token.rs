//! API tokens as presented: the `Authorization` header value (`from_authorization`), the
//! strict token parse (`parse`, `is_id`), the verification against a stored hash, and a
//! token request's name and expiry (`check_request`).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use portcullis_core::apitoken::{self, ID_LEN, PREFIX, SECRET_LEN};
use portcullis_core::session::SessionKeys;
use portcullis_fuzz::{NOW, SECRET};

fn keys() -> &'static SessionKeys {
    static K: OnceLock<SessionKeys> = OnceLock::new();
    K.get_or_init(|| SessionKeys::derive(SECRET))
}

fuzz_target!(|data: &[u8]| {
    if let Some(token) = apitoken::from_authorization(data) {
        assert!(token.starts_with(PREFIX));
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = apitoken::is_id(text);
    for candidate in [Some(text), apitoken::from_authorization(data)]
        .into_iter()
        .flatten()
    {
        let Some(p) = apitoken::parse(candidate) else {
            continue;
        };
        assert!(p.id.len() == ID_LEN && p.secret.len() == SECRET_LEN && apitoken::is_id(p.id));
        assert_eq!(format!("{PREFIX}{}_{}", p.id, p.secret), candidate);
        let pepper = keys().api_token_pepper();
        let stored = apitoken::hash(pepper.current, p.secret);
        assert!(apitoken::verify(&pepper, p.secret, Some(&stored)));
        assert!(!apitoken::verify(&pepper, p.secret, None));
    }
    // A token request: the name, and an expiry in days taken from the input's first bytes.
    let days = data
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .map(i64::from_le_bytes);
    for d in [None, days, Some(1), Some(365)] {
        if let Ok((name, expires)) = apitoken::check_request(text, d, NOW) {
            assert!(!name.is_empty() && name.chars().count() <= apitoken::MAX_NAME_CHARS);
            assert!(expires.is_none_or(|e| e > NOW));
        }
    }
});
