//! The `Cookie` header parse of every request (`Cookies::parse`) and the strip before proxying
//! (`Cookies::strip`), with both cookie name sets. Input: header values separated by `\n`;
//! values that are not UTF-8 are dropped, as the gateway drops them (`HeaderValue::to_str`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_core::session::{CookieNames, Cookies};

fuzz_target!(|data: &[u8]| {
    let headers: Vec<&str> = data
        .split(|b| *b == b'\n')
        .filter_map(|v| std::str::from_utf8(v).ok())
        .collect();
    for secure in [true, false] {
        let names = CookieNames::new(secure);
        let parsed = Cookies::parse(headers.iter().copied(), &names);
        for h in &headers {
            // What the upstream sees never carries a gateway cookie.
            if let Some(kept) = Cookies::strip(h, &names) {
                let again = Cookies::parse(std::iter::once(kept.as_str()), &names);
                assert_eq!(again, Ok(Cookies::default()), "strip left a gateway cookie");
            }
        }
        // No duplicate over all headers means none within any one of them.
        if parsed.is_ok() {
            for h in &headers {
                assert!(Cookies::parse(std::iter::once(*h), &names).is_ok());
            }
        }
    }
});
