//! Forward-auth: a reverse proxy the operator already runs (nginx `auth_request`, Caddy
//! `forward_auth`, Traefik `forwardAuth`, Envoy `ext_authz`) asks Portcullis about each request
//! before it proxies it. This module decides which request is being asked about and whom to
//! believe; the gateway authenticates and authorizes that request as its own proxy would.
//!
//! The original method and URI arrive in headers, which any client can also send. They are read
//! only when the TCP peer is a configured trusted proxy (default: none, so the endpoint refuses
//! everyone until the operator names their proxy). From anyone else the request is refused, never
//! answered about the endpoint's own URI: a client that reached Portcullis directly has no
//! business asking, and a "yes" about `/api/forward-auth` would mean nothing.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// nginx's header pair (`proxy_set_header X-Original-URI $request_uri`).
pub const NGINX_METHOD: &str = "x-original-method";
pub const NGINX_URI: &str = "x-original-uri";
/// The pair Caddy's `forward_auth` and Traefik's `forwardAuth` set (and Envoy by recipe).
pub const FORWARDED_METHOD: &str = "x-forwarded-method";
pub const FORWARDED_URI: &str = "x-forwarded-uri";

/// Longest original URI accepted: the gateway's own request-target limit (R-RS-1, 414).
pub const MAX_URI: usize = 8 * 1024;

/// One trusted network, `10.0.0.0/8` or a single address (`/32`, `/128` implied).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    prefix: u8,
}

/// Why a trusted-proxy entry is not a network.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    #[error("`{0}` is not an IP address or CIDR range (e.g. 10.0.0.0/8, 192.0.2.7, ::1/128)")]
    Syntax(String),
    #[error("`{0}`: the prefix length is longer than the address")]
    Prefix(String),
    #[error("`{0}` has bits set after the prefix; write the network address, e.g. `{1}`")]
    HostBits(String, String),
}

impl Cidr {
    /// Whether `ip` is inside. An IPv4-mapped IPv6 peer (`::ffff:10.0.0.1`, what a dual-stack
    /// listener reports) counts as its IPv4 address.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.net, ip.to_canonical()) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                mask(u32::from(n).into(), self.prefix, 32)
                    == mask(u32::from(a).into(), self.prefix, 32)
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                mask(u128::from(n), self.prefix, 128) == mask(u128::from(a), self.prefix, 128)
            }
            _ => false,
        }
    }

    /// Whether this range is every address of its family (`0.0.0.0/0`, `::/0`).
    pub fn is_everything(&self) -> bool {
        self.prefix == 0
    }
}

/// `v` with only its first `prefix` bits of `width` kept.
fn mask(v: u128, prefix: u8, width: u8) -> u128 {
    if prefix == 0 {
        return 0;
    }
    let shift = u32::from(width - prefix);
    (v >> shift) << shift
}

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(s: &str) -> Result<Cidr, CidrError> {
        let t = s.trim();
        let syntax = || CidrError::Syntax(s.to_string());
        let (addr, prefix) = match t.split_once('/') {
            Some((a, p)) => {
                // Digits only: `u8::from_str` would take `+8`.
                if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) || p.len() > 3 {
                    return Err(syntax());
                }
                (a, Some(p.parse::<u8>().map_err(|_| syntax())?))
            }
            None => (t, None),
        };
        let net: IpAddr = addr.parse().map_err(|_| syntax())?;
        let width = if net.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(width);
        if prefix > width {
            return Err(CidrError::Prefix(s.to_string()));
        }
        let bits = match net {
            IpAddr::V4(a) => u128::from(u32::from(a)),
            IpAddr::V6(a) => u128::from(a),
        };
        let masked = mask(bits, prefix, width);
        if masked != bits {
            let net_addr = match net {
                IpAddr::V4(_) => IpAddr::from(std::net::Ipv4Addr::from(masked as u32)),
                IpAddr::V6(_) => IpAddr::from(std::net::Ipv6Addr::from(masked)),
            };
            return Err(CidrError::HostBits(
                s.to_string(),
                format!("{net_addr}/{prefix}"),
            ));
        }
        Ok(Cidr { net, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.net, self.prefix)
    }
}

/// The proxies whose forward-auth headers are believed (`PORTCULLIS_FORWARD_AUTH_TRUSTED_PROXIES`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Cidr>);

impl TrustedProxies {
    pub fn new(list: Vec<Cidr>) -> TrustedProxies {
        TrustedProxies(list)
    }

    /// No proxy is trusted: forward-auth is off.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|c| c.contains(ip))
    }

    pub fn iter(&self) -> impl Iterator<Item = &Cidr> {
        self.0.iter()
    }
}

/// Which proxy family asked; it decides how a sign-in is answered ([`SignIn`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// `X-Original-Method`/`X-Original-URI`: nginx, whose `auth_request` understands only
    /// 2xx, 401 and 403 (anything else becomes a 500).
    Nginx,
    /// `X-Forwarded-Method`/`X-Forwarded-Uri`: Caddy, Traefik (and Envoy by recipe), which
    /// pass a refusal, redirects included, through to the client.
    Forwarded,
}

/// The request a proxy asks about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OriginalRequest {
    /// Exactly as sent (methods are case-sensitive, R-HD-5).
    pub method: String,
    /// The origin-form request target, query included (`/path?q`), as the client sent it.
    pub uri: String,
    pub dialect: Dialect,
}

/// Why a forward-auth request is refused before any credential is looked at.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ForwardAuthError {
    /// The peer is not a configured trusted proxy (or none is configured).
    #[error("forward-auth request from {0}, which is not a trusted proxy")]
    UntrustedPeer(IpAddr),
    /// A trusted proxy sent neither header pair, or only half of one.
    #[error(
        "the proxy sent no original method and URI (X-Original-Method/X-Original-URI or X-Forwarded-Method/X-Forwarded-Uri)"
    )]
    Missing,
    /// A header appears twice: which one would the proxy have meant?
    #[error("the proxy sent {0} more than once")]
    Duplicate(&'static str),
    /// Both pairs are present and name different requests.
    #[error("the proxy sent both header pairs and they disagree")]
    Conflict,
    #[error("the original method is not an HTTP method")]
    BadMethod,
    /// Not origin-form (`/…`), too long, or with bytes a request line cannot hold.
    #[error("the original URI is not a request path")]
    BadUri,
}

/// One header pair's raw values: (method, URI).
type Pair<'a> = (&'a [u8], &'a [u8]);

/// The original request of a forward-auth call from `peer`, whose headers `get` returns by
/// (lower-case) name, every value. Headers are read only after the peer is found trusted.
pub fn original_request<'a>(
    peer: IpAddr,
    trusted: &TrustedProxies,
    get: impl Fn(&str) -> Vec<&'a [u8]>,
) -> Result<OriginalRequest, ForwardAuthError> {
    if !trusted.contains(peer) {
        return Err(ForwardAuthError::UntrustedPeer(peer));
    }
    let one = |name: &'static str| -> Result<Option<&'a [u8]>, ForwardAuthError> {
        let v = get(name);
        match v.len() {
            0 => Ok(None),
            1 => Ok(Some(v[0])),
            _ => Err(ForwardAuthError::Duplicate(name)),
        }
    };
    let pair = |m: &'static str, u: &'static str| -> Result<Option<Pair<'a>>, ForwardAuthError> {
        match (one(m)?, one(u)?) {
            (Some(m), Some(u)) => Ok(Some((m, u))),
            (None, None) => Ok(None),
            _ => Err(ForwardAuthError::Missing),
        }
    };
    let nginx = pair(NGINX_METHOD, NGINX_URI)?;
    let forwarded = pair(FORWARDED_METHOD, FORWARDED_URI)?;
    let (method, uri, dialect) = match (nginx, forwarded) {
        (Some((m, u)), None) => (m, u, Dialect::Nginx),
        (None, Some((m, u))) => (m, u, Dialect::Forwarded),
        // nginx in front of Caddy, say: fine while both name the same request; nginx's pair
        // decides how a sign-in is answered, since nginx is the one that must understand it.
        (Some((m, u)), Some(other)) if (m, u) == other => (m, u, Dialect::Nginx),
        (Some(_), Some(_)) => return Err(ForwardAuthError::Conflict),
        (None, None) => return Err(ForwardAuthError::Missing),
    };
    Ok(OriginalRequest {
        method: method_of(method)?,
        uri: uri_of(uri)?,
        dialect,
    })
}

fn method_of(raw: &[u8]) -> Result<String, ForwardAuthError> {
    let s = std::str::from_utf8(raw).map_err(|_| ForwardAuthError::BadMethod)?;
    if crate::config::is_token(s) {
        Ok(s.to_string())
    } else {
        Err(ForwardAuthError::BadMethod)
    }
}

/// Origin-form only: a proxy names the path it is about to forward. An absolute URI (whose
/// authority would be the client's to choose), `*`, or anything with a space or control byte
/// (which a request line cannot carry, so no real request had it) is refused.
fn uri_of(raw: &[u8]) -> Result<String, ForwardAuthError> {
    if raw.is_empty()
        || raw.len() > MAX_URI
        || raw[0] != b'/'
        || raw.iter().any(|b| !(0x21..0x7f).contains(b))
    {
        return Err(ForwardAuthError::BadUri);
    }
    // Printable ASCII, checked above.
    String::from_utf8(raw.to_vec()).map_err(|_| ForwardAuthError::BadUri)
}

/// The client's address as the trusted proxy saw it (for per-address limits such as R-AT-4,
/// which would otherwise count every client behind the proxy as one): the last
/// `X-Forwarded-For` entry, the one the proxy itself appended. Call only for a trusted peer;
/// `peer` when the header is missing or its last entry is not an address.
pub fn client_ip(peer: IpAddr, forwarded_for: &[&[u8]]) -> IpAddr {
    forwarded_for
        .last()
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.rsplit(',').next())
        .and_then(|v| v.trim().parse::<IpAddr>().ok())
        .unwrap_or(peer)
}

/// How a request without a valid credential is answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignIn {
    /// 302 to the sign-in URL (the proxy passes it to the browser).
    Redirect,
    /// 401 carrying the sign-in URL in `Location`, for nginx's `error_page 401` to redirect to
    /// (nginx turns a 302 from `auth_request` into a 500).
    UnauthorizedWithLocation,
    /// 401 JSON: an API client, a script, a non-navigation request.
    Unauthorized,
}

/// A browser navigation (the proxy path's rule: GET or HEAD, not asking for JSON) is sent to
/// sign in; anything else gets a 401.
pub fn sign_in(dialect: Dialect, navigation: bool) -> SignIn {
    match (navigation, dialect) {
        (false, _) => SignIn::Unauthorized,
        (true, Dialect::Forwarded) => SignIn::Redirect,
        (true, Dialect::Nginx) => SignIn::UnauthorizedWithLocation,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn trusted(list: &[&str]) -> TrustedProxies {
        TrustedProxies::new(list.iter().map(|s| s.parse().unwrap()).collect())
    }

    fn ask(
        peer: &str,
        t: &TrustedProxies,
        h: &[(&str, &str)],
    ) -> Result<OriginalRequest, ForwardAuthError> {
        let h: Vec<(String, Vec<u8>)> = h
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect();
        let get = |name: &str| -> Vec<&[u8]> {
            h.iter()
                .filter(|(k, _)| k == name)
                .map(|(_, v)| v.as_slice())
                .collect()
        };
        original_request(peer.parse().unwrap(), t, get)
    }

    #[test]
    fn cidrs_parse_and_match() {
        let c: Cidr = "10.0.0.0/8".parse().unwrap();
        assert!(c.contains("10.1.2.3".parse().unwrap()));
        assert!(!c.contains("11.0.0.1".parse().unwrap()));
        assert!(
            c.contains("::ffff:10.0.0.1".parse().unwrap()),
            "v4-mapped peer"
        );
        let one: Cidr = "192.0.2.7".parse().unwrap();
        assert_eq!(one.to_string(), "192.0.2.7/32");
        assert!(one.contains("192.0.2.7".parse().unwrap()));
        assert!(!one.contains("192.0.2.8".parse().unwrap()));
        let v6: Cidr = "fd00::/8".parse().unwrap();
        assert!(v6.contains("fd12::1".parse().unwrap()));
        assert!(!v6.contains("10.0.0.1".parse().unwrap()));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.is_everything() && all.contains("203.0.113.1".parse().unwrap()));
        assert!(!all.contains("::1".parse().unwrap()), "families never mix");
        for bad in [
            "",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "10.0.0.0/33",
            "::/129",
            "host",
            "10.0.0/8",
            "10.0.0.0/8/8",
        ] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
        assert_eq!(
            "10.0.0.1/8".parse::<Cidr>(),
            Err(CidrError::HostBits(
                "10.0.0.1/8".into(),
                "10.0.0.0/8".into()
            ))
        );
    }

    #[test]
    fn nobody_is_trusted_by_default() {
        let h = [(NGINX_METHOD, "GET"), (NGINX_URI, "/x")];
        assert_eq!(
            ask("127.0.0.1", &TrustedProxies::default(), &h),
            Err(ForwardAuthError::UntrustedPeer(
                "127.0.0.1".parse().unwrap()
            ))
        );
        let t = trusted(&["10.0.0.0/8"]);
        assert!(matches!(
            ask("192.0.2.1", &t, &h),
            Err(ForwardAuthError::UntrustedPeer(_))
        ));
    }

    #[test]
    fn either_pair_from_a_trusted_proxy() {
        let t = trusted(&["127.0.0.1"]);
        let o = ask(
            "127.0.0.1",
            &t,
            &[(NGINX_METHOD, "POST"), (NGINX_URI, "/a/b?c=d")],
        )
        .unwrap();
        assert_eq!(
            (o.method.as_str(), o.uri.as_str(), o.dialect),
            ("POST", "/a/b?c=d", Dialect::Nginx)
        );
        let o = ask(
            "127.0.0.1",
            &t,
            &[(FORWARDED_METHOD, "GET"), (FORWARDED_URI, "/%2e%2e/admin")],
        )
        .unwrap();
        assert_eq!(
            (o.uri.as_str(), o.dialect),
            ("/%2e%2e/admin", Dialect::Forwarded)
        );
        // Both pairs naming the same request: nginx's dialect.
        let same = [
            (NGINX_METHOD, "GET"),
            (NGINX_URI, "/x"),
            (FORWARDED_METHOD, "GET"),
            (FORWARDED_URI, "/x"),
        ];
        assert_eq!(ask("127.0.0.1", &t, &same).unwrap().dialect, Dialect::Nginx);
    }

    #[test]
    fn ambiguous_or_malformed_requests_are_refused() {
        let t = trusted(&["127.0.0.1"]);
        let e = |h: &[(&str, &str)]| ask("127.0.0.1", &t, h).unwrap_err();
        assert_eq!(e(&[]), ForwardAuthError::Missing);
        assert_eq!(e(&[(NGINX_URI, "/x")]), ForwardAuthError::Missing);
        assert_eq!(e(&[(FORWARDED_METHOD, "GET")]), ForwardAuthError::Missing);
        assert_eq!(
            e(&[
                (NGINX_METHOD, "GET"),
                (NGINX_URI, "/x"),
                (NGINX_URI, "/admin")
            ]),
            ForwardAuthError::Duplicate(NGINX_URI)
        );
        assert_eq!(
            e(&[
                (NGINX_METHOD, "GET"),
                (NGINX_URI, "/public"),
                (FORWARDED_METHOD, "GET"),
                (FORWARDED_URI, "/admin")
            ]),
            ForwardAuthError::Conflict
        );
        assert_eq!(
            e(&[(NGINX_METHOD, "G ET"), (NGINX_URI, "/x")]),
            ForwardAuthError::BadMethod
        );
        for uri in [
            "",
            "admin",
            "http://evil/admin",
            "*",
            "/a b",
            "/a\tb",
            "/caf\u{e9}",
        ] {
            assert_eq!(
                e(&[(NGINX_METHOD, "GET"), (NGINX_URI, uri)]),
                ForwardAuthError::BadUri,
                "{uri:?}"
            );
        }
        let long = format!("/{}", "a".repeat(MAX_URI));
        assert_eq!(
            e(&[(NGINX_METHOD, "GET"), (NGINX_URI, &long)]),
            ForwardAuthError::BadUri
        );
    }

    #[test]
    fn client_ip_is_the_entry_the_proxy_appended() {
        let peer: IpAddr = "10.0.0.5".parse().unwrap();
        let ip = |v: &[&str]| {
            let v: Vec<&[u8]> = v.iter().map(|s| s.as_bytes()).collect();
            client_ip(peer, &v).to_string()
        };
        assert_eq!(ip(&["1.1.1.1, 203.0.113.9"]), "203.0.113.9");
        assert_eq!(ip(&["1.1.1.1", "203.0.113.9"]), "203.0.113.9");
        assert_eq!(ip(&[]), "10.0.0.5");
        assert_eq!(ip(&["203.0.113.9, garbage"]), "10.0.0.5");
    }

    #[test]
    fn sign_in_answers_by_dialect() {
        assert_eq!(sign_in(Dialect::Forwarded, true), SignIn::Redirect);
        assert_eq!(
            sign_in(Dialect::Nginx, true),
            SignIn::UnauthorizedWithLocation
        );
        assert_eq!(sign_in(Dialect::Nginx, false), SignIn::Unauthorized);
        assert_eq!(sign_in(Dialect::Forwarded, false), SignIn::Unauthorized);
    }
}
