//! Form bodies and query strings. The back-channel logout body has its own strict parser
//! (`logout_token_from_form`); the callback's query, the sign-out form and the CLI token
//! endpoint use `url::form_urlencoded::parse`. Both see the same bytes, and whatever the strict
//! parser accepts, the lenient one must read the same way (one `logout_token`, same value).
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_core::oidc::logout_token::{LogoutTokenError, logout_token_from_form};

fuzz_target!(|data: &[u8]| {
    let strict = logout_token_from_form(data);
    let lenient: Vec<String> = url::form_urlencoded::parse(data)
        .filter(|(k, _)| k == "logout_token")
        .map(|(_, v)| v.into_owned())
        .collect();
    match strict {
        Ok(token) => assert_eq!(lenient, [token], "form parsers disagree"),
        Err(LogoutTokenError::FormRepeated) => assert!(lenient.len() >= 2),
        Err(LogoutTokenError::FormMissing) => assert!(lenient.is_empty()),
        Err(_) => {}
    }
});
