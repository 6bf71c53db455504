//! What a command-line sign-in sends: the consent page's parameters (`loopback_redirect`,
//! `check_challenge`, `check_state`, `check_machine`, `check_expiry`), the PKCE verifier of the
//! code exchange (`verifier_matches`) and a typed user code (`normalize_user_code`, then
//! `display_user_code` as the pages show it). Input: fields separated by `\n`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_core::cli_login as rules;
use portcullis_core::oidc::pkce::pkce_challenge;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut f = text.split('\n');
    let mut next = || f.next().unwrap_or("");
    let (redirect, challenge, method, state, machine, user_code, verifier, days) = (
        next(),
        next(),
        next(),
        next(),
        next(),
        next(),
        next(),
        next(),
    );

    if let Ok(u) = rules::loopback_redirect(redirect) {
        // Bound to exactly what was sent: a loopback IP literal, http, a port.
        assert_eq!(u.as_str(), redirect);
        assert!(u.scheme() == "http" && u.port().is_some() && u.query().is_none());
        let _ = rules::redirect_with_code(&u, "code", "state");
        let _ = rules::redirect_denied(&u, "state");
    }
    let _ = rules::check_challenge(challenge, method);
    let _ = rules::check_state(state);
    if let Ok(m) = rules::check_machine(machine) {
        assert!(!m.is_empty() && m.chars().count() <= rules::MAX_MACHINE_CHARS);
        let _ = rules::token_name(&m);
    }
    if let Some(code) = rules::normalize_user_code(user_code) {
        assert_eq!(
            rules::display_user_code(&code).len(),
            rules::USER_CODE_LEN + 1
        );
    }
    let challenge_of_verifier = pkce_challenge(verifier);
    let ok = rules::verifier_matches(verifier, &challenge_of_verifier);
    assert_eq!(
        ok,
        (43..=128).contains(&verifier.len())
            && verifier
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
    );
    let _ = rules::verifier_matches(verifier, challenge);
    let _ = rules::check_expiry(days.parse().ok());
});
