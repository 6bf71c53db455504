//! Identity headers towards the upstream (R-HD): which inbound headers are stripped, and how
//! values are encoded so no claim can inject a header line or smuggle bytes.

/// The identity headers Portcullis sets on proxied requests.
pub const USER: &str = "x-forwarded-user";
pub const EMAIL: &str = "x-forwarded-email";
pub const PREFERRED_USERNAME: &str = "x-forwarded-preferred-username";
pub const GROUPS: &str = "x-forwarded-groups";

/// Exact names and prefixes that no client may send (R-HD-1).
const STRIP_EXACT: &[&str] = &[
    "x-forwarded-user",
    "x-forwarded-email",
    "x-forwarded-name",
    "x-forwarded-groups",
    "x-forwarded-preferred-username",
    "x-remote-user",
    "remote-user",
];
const STRIP_PREFIX: &[&str] = &[
    "x-forwarded-user",
    "x-forwarded-email",
    "x-forwarded-name",
    "x-forwarded-groups",
    "x-forwarded-preferred-username",
    "x-auth-request-",
];

/// Maximum bytes of one identity header value (R-HD-3).
pub const MAX_VALUE: usize = 1024;
/// Maximum bytes of all identity header values together (R-HD-3). Holds by construction:
/// four headers of at most [`MAX_VALUE`] bytes each (checked at compile time below).
pub const MAX_TOTAL: usize = 8 * 1024;
const _: () = assert!(4 * MAX_VALUE <= MAX_TOTAL);

/// Whether an inbound header must be removed: its name lowercased, `_` turned into `-` and
/// trimmed equals or starts with an identity header (catches `X_Forwarded_User`,
/// CVE-2025-64484).
pub fn is_identity_header(name: &str) -> bool {
    let n: String = name
        .trim()
        .chars()
        .map(|c| {
            if c == '_' {
                '-'
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect();
    STRIP_EXACT.contains(&n.as_str()) || STRIP_PREFIX.iter().any(|p| n.starts_with(p))
}

/// Encode a value for a header: bytes 0x20–0x7E pass except `%`; everything else (CR, LF, NUL,
/// CTLs, DEL, all non-ASCII such as U+202E) is percent-encoded as UTF-8. The result is cut to
/// [`MAX_VALUE`] bytes on an escape boundary. Always valid as an HTTP header value.
pub fn encode_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        let piece = if (0x20..=0x7e).contains(&b) && b != b'%' {
            (b as char).to_string()
        } else {
            format!("%{b:02X}")
        };
        if out.len() + piece.len() > MAX_VALUE {
            break;
        }
        out.push_str(&piece);
    }
    out
}

/// Groups joined with `,` after encoding each (a `,` inside a group name is encoded as `%2C`
/// so the list stays unambiguous).
pub fn encode_groups(groups: &[String]) -> String {
    let parts: Vec<String> = groups
        .iter()
        .map(|g| encode_value(g).replace(',', "%2C"))
        .collect();
    let mut out = String::new();
    for p in parts {
        let extra = if out.is_empty() { p.len() } else { p.len() + 1 };
        if out.len() + extra > MAX_VALUE {
            break;
        }
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(&p);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// R-HD-1: every spelling of an identity header is stripped.
    #[test]
    fn r_hd_1_identity_header_variants_detected() {
        for n in [
            "X-Forwarded-User",
            "x_forwarded_user",
            "X_Forwarded_Email",
            "x-forwarded-groups",
            "X-Forwarded-Preferred-Username",
            "x-forwarded-user-id",
            "X-Auth-Request-Email",
            "x_auth_request_user",
            "Remote-User",
            "REMOTE_USER",
            "X-Remote-User",
            " x-forwarded-user",
            "X-Forwarded-Name",
        ] {
            assert!(is_identity_header(n), "{n}");
        }
        for n in [
            "x-forwarded-for",
            "x-forwarded-proto",
            "accept",
            "x-user",
            "cookie",
        ] {
            assert!(!is_identity_header(n), "{n}");
        }
    }

    /// R-HD-3: hostile claim values cannot inject headers or smuggle bytes.
    #[test]
    fn r_hd_3_values_are_encoded() {
        assert_eq!(encode_value("alice"), "alice");
        assert_eq!(encode_value("a\r\nX-Evil: 1"), "a%0D%0AX-Evil: 1");
        assert_eq!(encode_value("100%"), "100%25");
        assert_eq!(encode_value("\u{202E}x"), "%E2%80%AEx");
        assert_eq!(encode_value("nul\0"), "nul%00");
        assert!(encode_value(&"é".repeat(2000)).len() <= MAX_VALUE);
        assert!(http_valid(&encode_value("\u{7f}\t\u{200b}")));
        assert_eq!(encode_groups(&["a,b".into(), "c".into()]), "a%2Cb,c");
    }

    proptest::proptest! {
        /// R-HD-3: whatever a claim contains, the encoded value is a valid header value within
        /// the size limit, and encoding never panics.
        #[test]
        fn encoded_values_are_always_valid_headers(v in "\\PC{0,300}|.{0,300}") {
            let e = encode_value(&v);
            proptest::prop_assert!(http_valid(&e));
            proptest::prop_assert!(e.len() <= MAX_VALUE);
            let g = encode_groups(&[v.clone(), v]);
            proptest::prop_assert!(http_valid(&g) && g.len() <= MAX_VALUE);
        }
    }

    fn http_valid(v: &str) -> bool {
        v.bytes().all(|b| (0x20..=0x7e).contains(&b))
    }
}
