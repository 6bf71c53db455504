//! Identity headers towards the upstream (R-HD): which inbound headers are stripped, and how
//! values are encoded so no claim can inject a header line or smuggle bytes.

/// The identity headers Portcullis sets on proxied requests.
pub const USER: &str = "x-forwarded-user";
pub const EMAIL: &str = "x-forwarded-email";
pub const PREFERRED_USERNAME: &str = "x-forwarded-preferred-username";
pub const GROUPS: &str = "x-forwarded-groups";
/// The user's Portcullis roles (mapped from groups), comma-separated.
pub const ROLES: &str = "x-forwarded-roles";

/// Exact names and prefixes that no client may send (R-HD-1).
const STRIP_EXACT: &[&str] = &[
    "x-forwarded-user",
    "x-forwarded-email",
    "x-forwarded-name",
    "x-forwarded-groups",
    "x-forwarded-preferred-username",
    "x-forwarded-roles",
    "x-remote-user",
    "remote-user",
];
const STRIP_PREFIX: &[&str] = &[
    "x-forwarded-user",
    "x-forwarded-email",
    "x-forwarded-name",
    "x-forwarded-groups",
    "x-forwarded-preferred-username",
    "x-forwarded-roles",
    "x-auth-request-",
];

/// Maximum bytes of one identity header value (R-HD-3).
pub const MAX_VALUE: usize = 1024;
/// Maximum bytes of all identity header values together (R-HD-3). Holds by construction:
/// five headers of at most [`MAX_VALUE`] bytes each (checked at compile time below).
pub const MAX_TOTAL: usize = 8 * 1024;
const _: () = assert!(5 * MAX_VALUE <= MAX_TOTAL);

/// A header name as compared for stripping: trimmed, lower case, `_` as `-`. Used at start-up
/// (configured names); requests use the allocation-free [`starts_with_normalized`].
pub fn normalize(name: &str) -> String {
    name.trim()
        .bytes()
        .map(|b| normal_byte(b) as char)
        .collect()
}

fn normal_byte(b: u8) -> u8 {
    if b == b'_' {
        b'-'
    } else {
        b.to_ascii_lowercase()
    }
}

/// Whether `name`, normalized like [`normalize`], starts with `prefix` (already normalized).
/// No allocation: this runs for every header of every proxied request.
pub fn starts_with_normalized(name: &str, prefix: &str) -> bool {
    let n = name.trim().as_bytes();
    let p = prefix.as_bytes();
    n.len() >= p.len() && n.iter().zip(p).all(|(a, b)| normal_byte(*a) == *b)
}

fn eq_normalized(name: &str, other: &str) -> bool {
    name.trim().len() == other.len() && starts_with_normalized(name, other)
}

/// Whether an inbound header must be removed: its name lowercased, `_` turned into `-` and
/// trimmed equals or starts with an identity header (catches `X_Forwarded_User`,
/// CVE-2025-64484).
pub fn is_identity_header(name: &str) -> bool {
    STRIP_EXACT.iter().any(|e| eq_normalized(name, e))
        || STRIP_PREFIX.iter().any(|p| starts_with_normalized(name, p))
}

/// [`is_identity_header`], or equal to / prefixed by one of `extra` (configured identity header
/// names and `PORTCULLIS_STRIP_HEADERS`, each already [`normalize`]d).
pub fn is_stripped(name: &str, extra: &[String]) -> bool {
    is_identity_header(name) || extra.iter().any(|p| starts_with_normalized(name, p))
}

/// Encode a value for a header: bytes 0x20–0x7E pass except `%`; everything else (CR, LF, NUL,
/// CTLs, DEL, all non-ASCII such as U+202E) is percent-encoded as UTF-8. Leading and trailing
/// spaces are encoded too (`%20`): HTTP trims them, so `" alice@x "` would otherwise reach the
/// app as another identity. The result is cut to [`MAX_VALUE`] bytes on an escape boundary.
/// Always valid as an HTTP header value.
pub fn encode_value(v: &str) -> String {
    encode(v, false, MAX_VALUE)
}

/// One encoder for values and group names (`comma`: also encode `,`, the list separator).
fn encode(v: &str, comma: bool, max: usize) -> String {
    let bytes = v.as_bytes();
    let first = bytes.iter().position(|b| *b != b' ').unwrap_or(bytes.len());
    let last = bytes.iter().rposition(|b| *b != b' ').map_or(0, |i| i + 1);
    let mut out = String::with_capacity(v.len().min(max));
    for (i, &b) in bytes.iter().enumerate() {
        let plain = (0x20..=0x7e).contains(&b)
            && b != b'%'
            && !(comma && b == b',')
            && !(b == b' ' && (i < first || i >= last));
        let need = if plain { 1 } else { 3 };
        if out.len() + need > max {
            break;
        }
        if plain {
            out.push(b as char);
        } else {
            push_escape(&mut out, b);
        }
    }
    // A cut may leave an interior space at the end; HTTP would trim it.
    while out.ends_with(' ') {
        out.pop();
        if out.len() + 3 <= max {
            out.push_str("%20");
            break;
        }
    }
    out
}

fn push_escape(out: &mut String, b: u8) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push('%');
    out.push(HEX[(b >> 4) as usize] as char);
    out.push(HEX[(b & 0xf) as usize] as char);
}

/// Groups joined with `,` after encoding each (a `,` inside a group name is encoded as `%2C`,
/// and edge spaces as `%20`, so the list stays unambiguous).
pub fn encode_groups(groups: &[String]) -> String {
    let mut out = String::new();
    for g in groups {
        let p = encode(g, true, MAX_VALUE);
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

    /// R-HD-3: edge spaces survive HTTP's trimming, so no claim reads as another identity.
    #[test]
    fn r_hd_3_edge_spaces_are_encoded() {
        assert_eq!(
            encode_value(" alice@example.test "),
            "%20alice@example.test%20"
        );
        assert_eq!(encode_value("a b"), "a b");
        assert_eq!(encode_value("  "), "%20%20");
        assert_eq!(encode_value(""), "");
        assert_eq!(
            encode_groups(&["admins ".into(), " devs".into(), "a b".into()]),
            "admins%20,%20devs,a b"
        );
        // A cut that ends on an interior space never leaves a bare trailing space.
        let v = format!("{} b", "a".repeat(MAX_VALUE - 1));
        let e = encode_value(&v);
        assert!(!e.ends_with(' ') && e.len() <= MAX_VALUE, "{e}");
    }

    /// R-HD-1: configured names strip in every spelling, as prefixes, without allocating.
    #[test]
    fn r_hd_1_configured_names_are_stripped() {
        let extra = vec![normalize("X-WEBAUTH-USER"), normalize(" X_Internal_")];
        assert_eq!(extra, vec!["x-webauth-user", "x-internal-"]);
        for n in [
            "x-webauth-user",
            "X_WEBAUTH_USER",
            "x-webauth-user-id",
            "x-internal-a",
        ] {
            assert!(is_stripped(n, &extra), "{n}");
        }
        for n in ["x-webauth", "x-internal", "accept"] {
            assert!(!is_stripped(n, &extra), "{n}");
        }
        assert!(is_stripped("x-remote-user", &[]));
        assert!(!is_stripped("x-remote-user-agent", &[]));
    }

    proptest::proptest! {
        /// R-HD-3: whatever a claim contains, the encoded value is a valid header value within
        /// the size limit, and encoding never panics.
        #[test]
        fn encoded_values_are_always_valid_headers(v in "\\PC{0,300}|.{0,300}") {
            let e = encode_value(&v);
            proptest::prop_assert!(http_valid(&e));
            proptest::prop_assert!(e.len() <= MAX_VALUE);
            proptest::prop_assert!(!e.starts_with(' ') && !e.ends_with(' '));
            let g = encode_groups(&[v.clone(), v]);
            proptest::prop_assert!(http_valid(&g) && g.len() <= MAX_VALUE);
            proptest::prop_assert!(!g.starts_with(' ') && !g.ends_with(' '));
        }
    }

    fn http_valid(v: &str) -> bool {
        v.bytes().all(|b| (0x20..=0x7e).contains(&b))
    }
}
