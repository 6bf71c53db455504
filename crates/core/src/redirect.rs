//! Post-login redirect validation (R-RD, RFC 9700 §4.11.1).
//!
//! Open redirects in auth gateways come from URL-parsing differentials (CVE-2020-5233,
//! CVE-2020-11053, CVE-2021-32786): so a target must pass BOTH a raw-text rule and the WHATWG
//! parser's verdict, and only the parser's resolved path is ever emitted.

/// Longest accepted `return_to` / `rd`.
pub const MAX_RETURN_TO: usize = 2048;

/// Validate a requested post-login target. Returns the absolute same-origin URL to redirect to,
/// or `None` (the caller then uses `/`; never an error, never a reflection — R-RD-1).
pub fn validate_return_to(raw: &str, public_base: &url::Url) -> Option<url::Url> {
    if raw.is_empty() || raw.len() > MAX_RETURN_TO || raw.contains(' ') {
        return None;
    }
    let decoded = percent_decode_once(raw)?;
    for v in [raw, decoded.as_str()] {
        if !starts_with_single_slash(v)
            || v.contains('\\')
            || v.chars().any(|c| c.is_ascii_control())
        {
            return None;
        }
    }
    let resolved = public_base.join(raw).ok()?;
    if resolved.origin() != public_base.origin()
        || !resolved.username().is_empty()
        || resolved.password().is_some()
        || resolved.path().starts_with("//")
    {
        return None;
    }
    // Rebuild from the public base so nothing but path and query survives (R-RD-2).
    let mut out = public_base.clone();
    out.set_path(resolved.path());
    out.set_query(resolved.query());
    out.set_fragment(None);
    Some(out)
}

/// `^/(?![/\\])`: one leading slash not followed by another slash or a backslash.
fn starts_with_single_slash(v: &str) -> bool {
    let b = v.as_bytes();
    b.first() == Some(&b'/') && !matches!(b.get(1), Some(b'/') | Some(b'\\'))
}

/// Percent-decode once; `None` when the result is not UTF-8 (treated as invalid input).
fn percent_decode_once(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn base() -> url::Url {
        url::Url::parse("https://gw.example.com/").unwrap()
    }

    fn ok(input: &str) -> String {
        validate_return_to(input, &base())
            .map(|u| u.to_string())
            .unwrap_or_else(|| "REJECTED".into())
    }

    /// R-RD-1: the CVE payload table (oauth2-proxy, mod_auth_openidc, SECURITY.md §4.3).
    #[test]
    fn r_rd_1_open_redirect_payloads_rejected() {
        for p in [
            "//evil.com",
            "/\\evil.com",
            "/\t/evil.com",
            "\\\\evil.com",
            "http:evil.com",
            " //evil.com",
            "https://evil.com/",
            "https:evil.com",
            "/.//evil.com",
            "/%2F/evil.com",
            "/%2f%2fevil.com",
            "/%5Cevil.com",
            "/%09/evil.com",
            "/%0d%0aSet-Cookie:x=y",
            "/a\r\nLocation: https://evil.com",
            "/%00",
            "//%09/evil.com",
            "/ /evil.com",
            "javascript:alert(1)",
            "evil.com",
            "",
            "/\u{7f}",
            "https://gw.example.com@evil.com/",
            "//gw.example.com@evil.com",
        ] {
            assert_eq!(ok(p), "REJECTED", "payload {p:?} must be rejected");
        }
        assert_eq!(ok(&format!("/{}", "a".repeat(MAX_RETURN_TO))), "REJECTED");
    }

    #[test]
    fn r_rd_2_same_origin_paths_accepted_and_absolute() {
        assert_eq!(ok("/"), "https://gw.example.com/");
        assert_eq!(
            ok("/dashboard?tab=1"),
            "https://gw.example.com/dashboard?tab=1"
        );
        assert_eq!(ok("/files/a%2Fb"), "https://gw.example.com/files/a%2Fb");
        assert_eq!(ok("/r/My%20Report"), "https://gw.example.com/r/My%20Report");
        assert_eq!(ok("/a/../b"), "https://gw.example.com/b");
        assert_eq!(ok("/x#frag"), "https://gw.example.com/x");
        // dot segments resolve away the encoded slashes: harmless, stays on our origin
        assert_eq!(ok("/./%2F%2Fevil.com/.."), "https://gw.example.com/");
    }

    proptest::proptest! {
        #[test]
        fn never_panics_and_never_leaves_origin(s in ".{0,64}") {
            if let Some(u) = validate_return_to(&s, &base()) {
                proptest::prop_assert_eq!(u.origin(), base().origin());
                proptest::prop_assert!(!u.path().starts_with("//"));
            }
        }
    }
}
