//! Post-login redirect targets (`validate_return_to`, the `return_to` / `rd` of a sign-in
//! start) against public base URLs with and without a path prefix. Whatever is accepted must
//! stay on the gateway's origin: no other host, no userinfo, no `//` path, no fragment.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use portcullis_core::redirect::validate_return_to;

fn bases() -> &'static [url::Url] {
    static B: OnceLock<Vec<url::Url>> = OnceLock::new();
    B.get_or_init(|| {
        [
            "https://gw.example.com",
            "http://localhost:8080/base/",
            "https://[::1]:8443/p",
        ]
        .iter()
        .filter_map(|s| url::Url::parse(s).ok())
        .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    for base in bases() {
        let Some(out) = validate_return_to(raw, base) else {
            continue;
        };
        assert_eq!(
            out.origin(),
            base.origin(),
            "open redirect: {raw:?} -> {out}"
        );
        assert!(out.username().is_empty() && out.password().is_none());
        assert!(!out.path().starts_with("//") && out.fragment().is_none());
        // What the gateway emits reparses to itself (no parser differential downstream).
        assert_eq!(url::Url::parse(out.as_str()).ok().as_ref(), Some(&out));
    }
});
