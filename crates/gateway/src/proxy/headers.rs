//! Header rules of the reverse proxy, one function each: hop-by-hop removal (RFC 9110 §7.6.1),
//! identity-header stripping (R-HD-1), gateway credentials (R-HD-4), identity headers from a
//! user (R-HD-2/3) and X-Forwarded-* built from configuration, never from what the client sent
//! (R-HD-6, R-CFG-6). Names are resolved once at start-up into [`HeaderRules`].

use std::net::IpAddr;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use portcullis_core::claims::MappedUser;
use portcullis_core::config::{Config, IdentityHeaderNames};
use portcullis_core::headers::{self as ident, encode_groups, encode_value, is_stripped};
use portcullis_core::session::{CookieNames, Cookies};

/// Always hop-by-hop, whatever `Connection` says.
const HOP_BY_HOP: [&str; 9] = [
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

/// Client-sent forwarding headers: no proxy is trusted by default, so they are replaced.
const FORWARDING: [&str; 6] = [
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-forwarded-port",
    "x-real-ip",
];

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// The identity header names, as `HeaderName`s.
#[derive(Clone, Debug)]
pub struct IdentityNames {
    pub user: HeaderName,
    pub email: HeaderName,
    pub groups: HeaderName,
    pub preferred_username: HeaderName,
    pub roles: HeaderName,
}

impl Default for IdentityNames {
    fn default() -> Self {
        IdentityNames {
            user: HeaderName::from_static(ident::USER),
            email: HeaderName::from_static(ident::EMAIL),
            groups: HeaderName::from_static(ident::GROUPS),
            preferred_username: HeaderName::from_static(ident::PREFERRED_USERNAME),
            roles: HeaderName::from_static(ident::ROLES),
        }
    }
}

impl IdentityNames {
    /// Configured names are validated tokens; a name that still fails keeps the default.
    pub fn from_config(c: &IdentityHeaderNames) -> IdentityNames {
        let d = IdentityNames::default();
        let n = |v: &str, d: HeaderName| HeaderName::from_bytes(v.as_bytes()).unwrap_or(d);
        IdentityNames {
            user: n(&c.user, d.user),
            email: n(&c.email, d.email),
            groups: n(&c.groups, d.groups),
            preferred_username: n(&c.preferred_username, d.preferred_username),
            roles: d.roles,
        }
    }
}

/// Everything the proxy's header rules need, computed once from the configuration.
#[derive(Clone, Debug)]
pub struct HeaderRules {
    pub identity: IdentityNames,
    /// Normalized names/prefixes stripped from clients besides the built-in identity list:
    /// `PORTCULLIS_STRIP_HEADERS` plus the configured identity header names (R-HD-1).
    pub strip: Vec<String>,
    pub forwarded_proto: HeaderValue,
    pub forwarded_host: Option<HeaderValue>,
    pub max_body_bytes: u64,
    pub body_timeout: Duration,
}

impl HeaderRules {
    pub fn from_config(c: &Config) -> HeaderRules {
        let p = &c.proxy;
        let mut strip = p.strip_headers.clone();
        for n in p.identity_headers.all() {
            let n = ident::normalize(n);
            if !strip.contains(&n) {
                strip.push(n);
            }
        }
        let u = &c.public_url;
        let host = u.host_str().map(|h| match u.port() {
            Some(port) => format!("{h}:{port}"),
            None => h.to_string(),
        });
        HeaderRules {
            identity: IdentityNames::from_config(&p.identity_headers),
            strip,
            forwarded_proto: HeaderValue::from_str(u.scheme())
                .unwrap_or(HeaderValue::from_static("https")),
            forwarded_host: host.and_then(|h| HeaderValue::try_from(h).ok()),
            max_body_bytes: p.max_body_bytes,
            body_timeout: p.body_timeout,
        }
    }
}

fn connection_tokens(h: &HeaderMap) -> impl Iterator<Item = &str> {
    h.get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Whether the request asks for a protocol upgrade (`Connection: upgrade` plus `Upgrade`).
pub fn is_upgrade(h: &HeaderMap) -> bool {
    h.contains_key(header::UPGRADE)
        && connection_tokens(h).any(|t| t.eq_ignore_ascii_case("upgrade"))
}

/// Whether every protocol offered in `Upgrade` is allowed (`allowed` is lower case). Anything
/// else, e.g. `h2c`, is refused before it reaches the upstream.
pub fn upgrade_allowed(h: &HeaderMap, allowed: &[String]) -> bool {
    let mut any = false;
    for v in h.get_all(header::UPGRADE) {
        let Ok(v) = v.to_str() else { return false };
        for p in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            any = true;
            if !allowed.iter().any(|a| a.eq_ignore_ascii_case(p)) {
                return false;
            }
        }
    }
    any
}

/// Remove hop-by-hop headers, including those named in `Connection`; keep `Upgrade` (and
/// re-add `Connection: upgrade`) for an upgrade. One pass over the header names.
pub fn strip_hop_by_hop(h: &mut HeaderMap, keep_upgrade: bool) {
    let upgrade = if keep_upgrade {
        h.get(header::UPGRADE).cloned()
    } else {
        None
    };
    let named = connection_named(h);
    remove_where(h, |n| HOP_BY_HOP.contains(&n.as_str()) || named.contains(n));
    if let Some(u) = upgrade {
        h.insert(header::UPGRADE, u);
        h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    }
}

/// The other headers `Connection` names (hop-by-hop too). `HeaderName::from_bytes`
/// lowercases; nothing is allocated for the usual `keep-alive` or `close`.
fn connection_named(h: &HeaderMap) -> Vec<HeaderName> {
    if !h.contains_key(header::CONNECTION) {
        return Vec::new();
    }
    connection_tokens(h)
        .filter(|t| {
            !t.eq_ignore_ascii_case("close")
                && !HOP_BY_HOP.iter().any(|n| t.eq_ignore_ascii_case(n))
        })
        .filter_map(|t| HeaderName::from_bytes(t.as_bytes()).ok())
        .collect()
}

/// Remove every header whose name `doomed` picks, looking at each name once (a request or
/// response has a handful; looking each rule's names up instead costs a hash each).
fn remove_where(h: &mut HeaderMap, doomed: impl Fn(&HeaderName) -> bool) {
    // Collected only when something matches (an empty Vec does not allocate).
    let names: Vec<HeaderName> = h.keys().filter(|n| doomed(n)).cloned().collect();
    for n in names {
        h.remove(n);
    }
}

/// R-HD-4: the gateway's cookies removed from `Cookie`; the app's own cookies are kept.
fn strip_gateway_cookies(h: &mut HeaderMap, cookies: &CookieNames) {
    let ours = |v: &HeaderValue| {
        let b = v.as_bytes();
        cookies
            .all()
            .iter()
            .any(|n| b.windows(n.len()).any(|w| w == n.as_bytes()))
    };
    // Rebuilt only when a gateway cookie is present: most requests keep their Cookie as is.
    if !h.get_all(header::COOKIE).iter().any(ours) {
        return;
    }
    let kept: Vec<HeaderValue> = h
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|c| Cookies::strip(c, cookies))
        .filter_map(|rest| HeaderValue::try_from(rest).ok())
        .collect();
    h.remove(header::COOKIE);
    for v in kept {
        h.append(header::COOKIE, v);
    }
}

/// `X-Forwarded-For` for `ip`. The last address's value is kept per thread: a keep-alive
/// connection sends many requests from one address, and this saves formatting it each time.
fn forwarded_for(ip: IpAddr) -> Option<HeaderValue> {
    thread_local! {
        static LAST: std::cell::RefCell<Option<(IpAddr, HeaderValue)>> =
            const { std::cell::RefCell::new(None) };
    }
    LAST.with_borrow_mut(|last| {
        if let Some((at, v)) = last.as_ref()
            && *at == ip
        {
            return Some(v.clone());
        }
        let v = HeaderValue::try_from(ip.to_string()).ok()?;
        *last = Some((ip, v.clone()));
        Some(v)
    })
}

/// The identity headers of a user, encoded (R-HD-3), at most one of each. Used for proxied
/// requests and, as response headers, by forward-auth.
#[derive(Debug, Default)]
pub struct IdentityHeaders([Option<(HeaderName, HeaderValue)>; 5]);

impl IdentityHeaders {
    pub fn iter(&self) -> impl Iterator<Item = (&HeaderName, &HeaderValue)> {
        self.0.iter().flatten().map(|(n, v)| (n, v))
    }
}

impl IntoIterator for IdentityHeaders {
    type Item = (HeaderName, HeaderValue);
    type IntoIter = std::iter::Flatten<std::array::IntoIter<Option<(HeaderName, HeaderValue)>, 5>>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter().flatten()
    }
}

/// R-HD-2/3: the (name, value) pairs for `user`. Values are encoded to printable ASCII, so
/// building a `HeaderValue` cannot fail in practice; if it ever did, the header is left out
/// rather than panicking.
pub fn identity_headers(
    user: &MappedUser,
    roles: &[String],
    names: &IdentityNames,
) -> IdentityHeaders {
    let pair = |n: &HeaderName, v: String| HeaderValue::try_from(v).ok().map(|v| (n.clone(), v));
    IdentityHeaders([
        pair(&names.user, encode_value(&user.user_id)),
        user.email
            .as_deref()
            .and_then(|e| pair(&names.email, encode_value(e))),
        user.username
            .as_deref()
            .and_then(|u| pair(&names.preferred_username, encode_value(u))),
        pair(&names.groups, encode_groups(&user.groups)),
        // Only when roles are in use: an app must not read "no header" as "no roles" when
        // Portcullis maps none at all.
        (!roles.is_empty())
            .then(|| pair(&names.roles, encode_groups(roles)))
            .flatten(),
    ])
}

/// Prepare request headers for the upstream: the rules above, in one pass over the request's
/// header names (each rule on its own would look every listed name up, ~20 hash lookups per
/// request; a request has a handful of headers). Identity headers are set last, after
/// hop-by-hop processing, so `Connection:` cannot name them away (R-HD-2).
pub fn prepare_request(
    h: &mut HeaderMap,
    identity: Option<&IdentityHeaders>,
    cookies: &CookieNames,
    peer_ip: Option<IpAddr>,
    rules: &HeaderRules,
    strip_authorization: bool,
) {
    let upgrade = is_upgrade(h)
        .then(|| h.get(header::UPGRADE).cloned())
        .flatten();
    let named = connection_named(h);
    remove_where(h, |n| {
        let s = n.as_str();
        HOP_BY_HOP.contains(&s)
            || FORWARDING.contains(&s)
            || *n == header::HOST
            || s == "dpop"
            || (strip_authorization && *n == header::AUTHORIZATION)
            || named.contains(n)
            || is_stripped(s, &rules.strip)
    });
    // An allowed upgrade keeps `Upgrade` and says so in `Connection` (unless the operator
    // strips those names too).
    if let Some(u) = upgrade {
        if !is_stripped("upgrade", &rules.strip) {
            h.insert(header::UPGRADE, u);
        }
        if !is_stripped("connection", &rules.strip) {
            h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        }
    }
    // R-HD-6: forwarding headers from the TCP peer and the configured public URL only.
    strip_gateway_cookies(h, cookies);
    if let Some(v) = peer_ip.and_then(forwarded_for) {
        h.insert(X_FORWARDED_FOR, v);
    }
    h.insert(X_FORWARDED_PROTO, rules.forwarded_proto.clone());
    if let Some(host) = &rules.forwarded_host {
        h.insert(X_FORWARDED_HOST, host.clone());
    }
    if let Some(identity) = identity {
        for (n, v) in identity.iter() {
            h.insert(n.clone(), v.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn user() -> MappedUser {
        MappedUser {
            issuer: "i".into(),
            subject: "s".into(),
            user_id: "alice\r\nX-Evil: 1".into(),
            email: Some(" a@b.c ".into()),
            name: None,
            given_name: None,
            family_name: None,
            picture: None,
            provider: None,
            username: Some("alice".into()),
            groups: vec!["g1".into(), "g,2".into(), "admins ".into()],
        }
    }

    fn rules() -> HeaderRules {
        let mut raw = portcullis_core::config::RawSettings {
            discovery_url: Some("https://idp.example/.well-known/openid-configuration".into()),
            client_id: Some("c".into()),
            client_secret: Some("s".into()),
            jwt_signing_secret: Some("0123456789abcdefghijklmnopqrstuvwxyz".into()),
            public_url: Some("https://gw.example.com".into()),
            ..Default::default()
        };
        raw.strip_headers = Some(vec!["X-Internal-".into()]);
        raw.header_user = Some("X-WEBAUTH-USER".into());
        HeaderRules::from_config(&portcullis_core::config::validate(&raw).unwrap())
    }

    fn map(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn hop_by_hop_and_connection_named_headers_are_removed() {
        let mut h = map(&[
            ("connection", "close, X-Secret, x-forwarded-groups"),
            ("x-secret", "1"),
            ("keep-alive", "timeout=5"),
            ("te", "trailers"),
            ("proxy-authorization", "Basic x"),
            ("accept", "*/*"),
        ]);
        strip_hop_by_hop(&mut h, false);
        assert_eq!(h.len(), 1, "{h:?}");
        assert!(h.contains_key("accept"));

        let mut h = map(&[("connection", "Upgrade"), ("upgrade", "websocket")]);
        strip_hop_by_hop(&mut h, true);
        assert_eq!(h.get("upgrade").unwrap(), "websocket");
        assert_eq!(h.get("connection").unwrap(), "upgrade");
    }

    #[test]
    fn upgrades_are_checked_against_the_allow_list() {
        let ws = vec!["websocket".to_string()];
        let h = map(&[
            ("connection", "keep-alive, Upgrade"),
            ("upgrade", "WebSocket"),
        ]);
        assert!(is_upgrade(&h) && upgrade_allowed(&h, &ws));
        for u in ["h2c", "websocket, h2c", "TLS/1.2"] {
            let h = map(&[("connection", "upgrade"), ("upgrade", u)]);
            assert!(!upgrade_allowed(&h, &ws), "{u}");
        }
        assert!(!is_upgrade(&map(&[("upgrade", "websocket")])));
    }

    /// R-HD-1: built-in spellings, configured identity names and `PORTCULLIS_STRIP_HEADERS`.
    #[test]
    fn r_hd_1_identity_and_configured_headers_are_stripped() {
        let r = rules();
        let mut h = map(&[
            ("x-forwarded-user", "admin"),
            ("x_forwarded_email", "admin@x"),
            ("x-auth-request-groups", "admins"),
            ("x_webauth_user", "admin"),
            ("x-internal-role", "root"),
            ("x-forwarded-for", "kept-here"),
            ("accept", "*/*"),
        ]);
        prepare_request(&mut h, None, &CookieNames::new(true), None, &r, false);
        let mut left: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        left.sort_unstable();
        assert_eq!(
            left,
            vec!["accept", "x-forwarded-host", "x-forwarded-proto"]
        );
    }

    /// R-HD-4: gateway cookies and DPoP go; Authorization only when it was ours.
    #[test]
    fn r_hd_4_gateway_credentials_are_stripped() {
        let names = CookieNames::new(true);
        let mut h = map(&[
            ("cookie", "__Host-session=abc; app=1"),
            ("cookie", "__Host-oidc_tx=t"),
            ("cookie", "theme=dark"),
            ("dpop", "proof"),
            ("authorization", "Bearer app-token"),
        ]);
        let mut again = h.clone();
        prepare_request(&mut h, None, &names, None, &rules(), false);
        let c: Vec<&str> = h
            .get_all("cookie")
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(c, vec!["app=1", "theme=dark"]);
        assert!(h.get("dpop").is_none());
        assert_eq!(h.get("authorization").unwrap(), "Bearer app-token");
        prepare_request(&mut again, None, &names, None, &rules(), true);
        assert!(again.get("authorization").is_none());
        assert!(again.get("dpop").is_none());
    }

    /// R-HD-6: forwarding headers come from the peer and the configuration only.
    #[test]
    fn r_hd_6_forwarding_headers_are_rebuilt() {
        let mut h = map(&[
            ("x-forwarded-for", "6.6.6.6"),
            ("forwarded", "for=6.6.6.6"),
            ("x-real-ip", "6.6.6.6"),
            ("x-forwarded-port", "443"),
            ("host", "evil.example"),
        ]);
        let names = CookieNames::new(true);
        prepare_request(
            &mut h,
            None,
            &names,
            "10.0.0.1".parse().ok(),
            &rules(),
            false,
        );
        assert_eq!(h.get("x-forwarded-for").unwrap(), "10.0.0.1");
        assert_eq!(h.get("x-forwarded-host").unwrap(), "gw.example.com");
        assert_eq!(h.get("x-forwarded-proto").unwrap(), "https");
        for n in ["forwarded", "x-real-ip", "x-forwarded-port", "host"] {
            assert!(h.get(n).is_none(), "{n}");
        }
    }

    /// R-HD-2/3: configured names, encoded values, one of each.
    #[test]
    fn r_hd_3_identity_headers_of_a_user() {
        let r = rules();
        let roles = ["admin".to_string(), "power user".to_string()];
        let got: Vec<(String, String)> = identity_headers(&user(), &roles, &r.identity)
            .into_iter()
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_string()))
            .collect();
        let want = [
            ("x-webauth-user", "alice%0D%0AX-Evil: 1"),
            ("x-forwarded-email", "%20a@b.c%20"),
            ("x-forwarded-preferred-username", "alice"),
            ("x-forwarded-groups", "g1,g%2C2,admins%20"),
            ("x-forwarded-roles", "admin,power user"),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        assert_eq!(got, want);
    }

    /// All rules together, including a `Connection` header naming an identity header.
    #[test]
    fn r_hd_request_preparation() {
        let mut h = map(&[
            ("x-webauth-user", "admin"),
            ("connection", "close, x-webauth-user, x-secret"),
            ("x-secret", "1"),
            ("cookie", "__Host-session=abc; app=1"),
            ("dpop", "proof"),
        ]);
        prepare_request(
            &mut h,
            Some(&identity_headers(&user(), &[], &rules().identity)),
            &CookieNames::new(true),
            "10.0.0.1".parse().ok(),
            &rules(),
            false,
        );
        assert_eq!(h.get_all("x-webauth-user").iter().count(), 1);
        assert_eq!(h.get("x-webauth-user").unwrap(), "alice%0D%0AX-Evil: 1");
        assert!(h.get("x-secret").is_none());
        assert!(h.get("connection").is_none());
        assert!(h.get("dpop").is_none());
        assert_eq!(h.get("cookie").unwrap(), "app=1");

        // An allowed upgrade keeps its headers; hop-by-hop ones still go.
        let mut h = map(&[
            ("connection", "keep-alive, Upgrade"),
            ("upgrade", "websocket"),
            ("keep-alive", "timeout=5"),
        ]);
        prepare_request(&mut h, None, &CookieNames::new(true), None, &rules(), false);
        assert_eq!(h.get("upgrade").unwrap(), "websocket");
        assert_eq!(h.get("connection").unwrap(), "upgrade");
        assert!(h.get("keep-alive").is_none());
    }

    #[test]
    fn anonymous_requests_carry_no_identity() {
        let mut h = map(&[("x-forwarded-user", "admin")]);
        prepare_request(&mut h, None, &CookieNames::new(true), None, &rules(), false);
        assert!(h.get("x-forwarded-user").is_none());
        assert!(h.get("x-webauth-user").is_none());
    }
}
