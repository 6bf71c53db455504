//! Header rules of the reverse proxy: hop-by-hop removal (RFC 9110 §7.6.1), identity-header
//! stripping and setting (R-HD-1..4), and X-Forwarded-* built from configuration, never from
//! what the client sent (R-HD-6, R-CFG-6).

use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use portcullis_core::headers::{self as ident, encode_groups, encode_value, is_identity_header};
use portcullis_core::session::{CookieNames, Cookies};
use portcullis_store::User;

/// Always hop-by-hop, whatever `Connection` says.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Whether the request asks for a protocol upgrade (WebSocket).
pub fn is_upgrade(h: &HeaderMap) -> bool {
    h.contains_key(header::UPGRADE)
        && h.get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| {
                v.split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
            })
}

/// Remove hop-by-hop headers, including those named in `Connection`; keep `Upgrade` (and
/// re-add `Connection: upgrade`) for an upgrade.
pub fn strip_hop_by_hop(h: &mut HeaderMap, keep_upgrade: bool) {
    let named: Vec<HeaderName> = h
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| {
            v.split(',')
                .map(|t| t.trim().to_ascii_lowercase())
                .collect::<Vec<_>>()
        })
        .filter_map(|t| HeaderName::from_bytes(t.as_bytes()).ok())
        .collect();
    let upgrade = h.get(header::UPGRADE).cloned();
    for n in named {
        h.remove(n);
    }
    for n in HOP_BY_HOP {
        h.remove(*n);
    }
    if keep_upgrade && let Some(u) = upgrade {
        h.insert(header::UPGRADE, u);
        h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    }
}

/// Prepare request headers for the upstream.
pub fn prepare_request(
    h: &mut HeaderMap,
    user: Option<&User>,
    cookies: &CookieNames,
    peer_ip: Option<std::net::IpAddr>,
    public_url: &url::Url,
) {
    let upgrade = is_upgrade(h);
    strip_hop_by_hop(h, upgrade);
    // R-HD-1: every spelling of an identity header, before anything else.
    let spoofed: Vec<HeaderName> = h
        .keys()
        .filter(|n| is_identity_header(n.as_str()))
        .cloned()
        .collect();
    for n in spoofed {
        h.remove(n);
    }
    // R-HD-4: gateway cookies never reach the app.
    let cookie_headers: Vec<String> = h
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::to_string)
        .collect();
    h.remove(header::COOKIE);
    for c in cookie_headers {
        if let Some(rest) = Cookies::strip(&c, cookies)
            && let Ok(v) = HeaderValue::from_str(&rest)
        {
            h.append(header::COOKIE, v);
        }
    }
    // R-HD-6: no proxy is trusted by default, so client-sent forwarding headers are replaced.
    for n in [
        "forwarded",
        "x-forwarded-for",
        "x-forwarded-host",
        "x-forwarded-proto",
        "x-forwarded-port",
        "x-real-ip",
    ] {
        h.remove(n);
    }
    if let Some(ip) = peer_ip {
        insert(h, "x-forwarded-for", &ip.to_string());
    }
    insert(h, "x-forwarded-proto", public_url.scheme());
    if let Some(host) = public_url.host_str() {
        let host = match public_url.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_string(),
        };
        insert(h, "x-forwarded-host", &host);
    }
    h.remove(header::HOST);
    // R-HD-2/3: set after hop-by-hop processing, exactly once each, encoded.
    if let Some(u) = user {
        insert(h, ident::USER, &encode_value(&u.profile.user_id));
        if let Some(e) = &u.profile.email {
            insert(h, ident::EMAIL, &encode_value(e));
        }
        if let Some(n) = &u.profile.username {
            insert(h, ident::PREFERRED_USERNAME, &encode_value(n));
        }
        insert(h, ident::GROUPS, &encode_groups(&u.profile.groups));
    }
}

/// Values passed in here are encoded to printable ASCII, so this cannot fail in practice;
/// if it ever did, the header is left out rather than panicking (R-HD-3).
fn insert(h: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        h.insert(HeaderName::from_static(name), v);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn user() -> User {
        User {
            id: "u".into(),
            profile: portcullis_core::claims::MappedUser {
                issuer: "i".into(),
                subject: "s".into(),
                user_id: "alice\r\nX-Evil: 1".into(),
                email: Some("a@b.c".into()),
                name: None,
                given_name: None,
                family_name: None,
                picture: None,
                provider: None,
                username: Some("alice".into()),
                groups: vec!["g1".into(), "g,2".into()],
            },
            first_login: 0,
            last_login: 0,
            active: true,
        }
    }

    /// R-HD-1/2/4/6.
    #[test]
    fn r_hd_request_preparation() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-user", HeaderValue::from_static("admin"));
        h.insert("x_forwarded_email", HeaderValue::from_static("admin@x"));
        h.insert("x-auth-request-groups", HeaderValue::from_static("admins"));
        h.insert(
            "connection",
            HeaderValue::from_static("close, x-forwarded-groups, x-secret"),
        );
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("x-forwarded-for", HeaderValue::from_static("6.6.6.6"));
        h.insert(
            "cookie",
            HeaderValue::from_static("__Host-session=abc; app=1"),
        );
        h.insert("host", HeaderValue::from_static("evil.example"));
        let public = url::Url::parse("https://gw.example.com").unwrap();
        prepare_request(
            &mut h,
            Some(&user()),
            &CookieNames::new(true),
            "10.0.0.1".parse().ok(),
            &public,
        );
        assert_eq!(h.get("x-forwarded-user").unwrap(), "alice%0D%0AX-Evil: 1");
        assert_eq!(h.get_all("x-forwarded-user").iter().count(), 1);
        assert_eq!(h.get("x-forwarded-groups").unwrap(), "g1,g%2C2");
        assert_eq!(h.get("x-forwarded-email").unwrap(), "a@b.c");
        assert!(h.get("x_forwarded_email").is_none());
        assert!(h.get("x-auth-request-groups").is_none());
        assert!(h.get("x-secret").is_none());
        assert!(h.get("connection").is_none());
        assert_eq!(h.get("x-forwarded-for").unwrap(), "10.0.0.1");
        assert_eq!(h.get("x-forwarded-host").unwrap(), "gw.example.com");
        assert_eq!(h.get("cookie").unwrap(), "app=1");
        assert!(h.get("host").is_none());
    }

    #[test]
    fn anonymous_requests_carry_no_identity() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-user", HeaderValue::from_static("admin"));
        let public = url::Url::parse("https://gw.example.com").unwrap();
        prepare_request(&mut h, None, &CookieNames::new(true), None, &public);
        assert!(h.get("x-forwarded-user").is_none());
    }
}
