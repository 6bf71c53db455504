//! Settings of the reverse proxy and the listener: limits and timeouts (R-RS-1), allowed
//! methods (R-HD-5) and upgrades, extra stripped headers (R-HD-1) and the names of the identity
//! headers. Validated once here; the gateway turns the names into `HeaderName`s at start-up.

use std::time::Duration;

use super::raw::RawSettings;
use super::validate::Problem;
use crate::headers;

/// Methods always allowed towards the upstream, matched case-sensitively (R-HD-5). CONNECT
/// and TRACE are never allowed.
pub const STANDARD_METHODS: [&str; 7] =
    ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// Header names an operator may not use as identity headers or strip: the gateway sets them
/// itself, or proxying breaks without them.
const RESERVED: &[&str] = &[
    "host",
    "cookie",
    "set-cookie",
    "authorization",
    "proxy-authorization",
    "content-length",
    "content-type",
    "content-encoding",
    "transfer-encoding",
    "connection",
    "upgrade",
    "te",
    "trailer",
    "keep-alive",
    "proxy-connection",
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-forwarded-port",
    "x-real-ip",
    "dpop",
    "sec-websocket-key",
    "sec-websocket-version",
];

/// Names of the identity headers set on proxied requests (lower case). Each is also always
/// stripped from clients, in every `_`/case spelling.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentityHeaderNames {
    pub user: String,
    pub email: String,
    pub groups: String,
    pub preferred_username: String,
}

impl Default for IdentityHeaderNames {
    fn default() -> Self {
        IdentityHeaderNames {
            user: headers::USER.into(),
            email: headers::EMAIL.into(),
            groups: headers::GROUPS.into(),
            preferred_username: headers::PREFERRED_USERNAME.into(),
        }
    }
}

impl IdentityHeaderNames {
    pub fn all(&self) -> [&str; 4] {
        [
            &self.user,
            &self.email,
            &self.groups,
            &self.preferred_username,
        ]
    }
}

/// What the reverse proxy lets through.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxySettings {
    pub identity_headers: IdentityHeaderNames,
    /// Extra inbound header names (and prefixes), lower case with `_` as `-` (R-HD-1).
    pub strip_headers: Vec<String>,
    /// Methods allowed besides [`STANDARD_METHODS`], exactly as written (case matters).
    pub extra_methods: Vec<String>,
    /// `Upgrade` protocol names that may be tunnelled, lower case (`websocket`).
    pub allowed_upgrades: Vec<String>,
    /// Largest request body forwarded (413 beyond).
    pub max_body_bytes: u64,
    /// Longest pause between two chunks of a request body.
    pub body_timeout: Duration,
}

impl Default for ProxySettings {
    fn default() -> Self {
        ProxySettings {
            identity_headers: IdentityHeaderNames::default(),
            strip_headers: Vec::new(),
            extra_methods: Vec::new(),
            allowed_upgrades: vec!["websocket".into()],
            max_body_bytes: DEFAULT_MAX_BODY,
            body_timeout: Duration::from_secs(30),
        }
    }
}

/// Client connection limits (R-RS-1, slowloris).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// From accept (including HTTP/2 preface detection) to a complete request head.
    pub header_read_timeout: Duration,
    /// How long a connection may sit idle between requests.
    pub keep_alive_timeout: Duration,
    pub max_connections: usize,
    /// Beyond this many open connections from one address, new ones are closed at once.
    pub max_connections_per_ip: usize,
    /// Sign-ins one client address may start per minute (429 beyond).
    pub login_starts_per_minute: u32,
    /// Back-channel logout requests one address may send per minute (429 beyond).
    pub backchannel_logouts_per_minute: u32,
    /// Threads that serve connections, each with its own single-threaded runtime; 0: one
    /// per CPU core (as the process's CPU affinity and cgroup quota allow).
    pub worker_threads: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            header_read_timeout: Duration::from_secs(10),
            keep_alive_timeout: Duration::from_secs(60),
            max_connections: 10_000,
            max_connections_per_ip: 256,
            login_starts_per_minute: 60,
            backchannel_logouts_per_minute: 60,
            worker_threads: 0,
        }
    }
}

const DEFAULT_MAX_BODY: u64 = 1024 * 1024;
/// Bodies up to 64 GiB may be allowed; beyond that is a typo.
const MAX_MAX_BODY: u64 = 64 << 30;

/// RFC 9110 §5.6.2 `token`: what a method, header name or upgrade protocol name may contain.
pub fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'!' | b'#'
                        | b'$'
                        | b'%'
                        | b'&'
                        | b'\''
                        | b'*'
                        | b'+'
                        | b'-'
                        | b'.'
                        | b'^'
                        | b'_'
                        | b'`'
                        | b'|'
                        | b'~'
                )
        })
}

/// A whole number within `[min, max]`, or a problem naming the setting.
pub(super) fn number(
    name: &str,
    v: &Option<String>,
    default: u64,
    min: u64,
    max: u64,
    problems: &mut Vec<Problem>,
) -> u64 {
    let Some(v) = v else { return default };
    match v.trim().parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => n,
        _ => {
            problems.push(Problem::new(format!(
                "{name} must be a whole number from {min} to {max}, got `{v}`"
            )));
            default
        }
    }
}

pub(super) fn header_name(
    name: &str,
    v: &Option<String>,
    default: &str,
    problems: &mut Vec<Problem>,
) -> String {
    let Some(v) = v else {
        return default.to_string();
    };
    let lower = v.trim().to_ascii_lowercase();
    if !is_token(&lower) {
        problems.push(Problem::new(format!(
            "{name} must be a header name (letters, digits and -), got `{v}`"
        )));
        return default.to_string();
    }
    if RESERVED.contains(&headers::normalize(&lower).as_str()) {
        problems.push(Problem::new(format!(
            "{name} may not be `{v}`: Portcullis sets or needs that header itself"
        )));
        return default.to_string();
    }
    lower
}

/// Validate the proxy and connection settings, pushing one problem per bad value.
pub(super) fn check(
    raw: &RawSettings,
    problems: &mut Vec<Problem>,
    warnings: &mut Vec<String>,
) -> (ProxySettings, ConnectionLimits) {
    let d = ProxySettings::default();
    let dl = ConnectionLimits::default();
    let secs = |n: u64| Duration::from_secs(n);
    let limits = ConnectionLimits {
        header_read_timeout: secs(number(
            "PORTCULLIS_HEADER_READ_TIMEOUT",
            &raw.header_read_timeout,
            dl.header_read_timeout.as_secs(),
            1,
            300,
            problems,
        )),
        keep_alive_timeout: secs(number(
            "PORTCULLIS_KEEPALIVE_TIMEOUT",
            &raw.keep_alive_timeout,
            dl.keep_alive_timeout.as_secs(),
            1,
            3600,
            problems,
        )),
        max_connections: number(
            "PORTCULLIS_MAX_CONNECTIONS",
            &raw.max_connections,
            dl.max_connections as u64,
            1,
            1_000_000,
            problems,
        ) as usize,
        max_connections_per_ip: number(
            "PORTCULLIS_MAX_CONNECTIONS_PER_IP",
            &raw.max_connections_per_ip,
            dl.max_connections_per_ip as u64,
            1,
            1_000_000,
            problems,
        ) as usize,
        login_starts_per_minute: number(
            "PORTCULLIS_LOGIN_STARTS_PER_MINUTE",
            &raw.login_starts_per_minute,
            u64::from(dl.login_starts_per_minute),
            1,
            100_000,
            problems,
        ) as u32,
        backchannel_logouts_per_minute: number(
            "PORTCULLIS_BACKCHANNEL_LOGOUTS_PER_MINUTE",
            &raw.backchannel_logouts_per_minute,
            u64::from(dl.backchannel_logouts_per_minute),
            1,
            100_000,
            problems,
        ) as u32,
        worker_threads: number(
            "PORTCULLIS_WORKER_THREADS",
            &raw.worker_threads,
            dl.worker_threads as u64,
            1,
            256,
            problems,
        ) as usize,
    };
    if limits.max_connections_per_ip > limits.max_connections {
        warnings.push(format!(
            "PORTCULLIS_MAX_CONNECTIONS_PER_IP ({}) is above PORTCULLIS_MAX_CONNECTIONS ({}): one client can take every connection",
            limits.max_connections_per_ip, limits.max_connections
        ));
    }

    let max_body_bytes = number(
        "PORTCULLIS_MAX_BODY_BYTES",
        &raw.max_body_bytes,
        d.max_body_bytes,
        0,
        MAX_MAX_BODY,
        problems,
    );
    let body_timeout = secs(number(
        "PORTCULLIS_BODY_TIMEOUT",
        &raw.body_timeout,
        d.body_timeout.as_secs(),
        1,
        3600,
        problems,
    ));

    let mut extra_methods: Vec<String> = Vec::new();
    for m in raw.extra_methods.iter().flatten() {
        if !is_token(m) {
            problems.push(Problem::new(format!(
                "PORTCULLIS_EXTRA_METHODS: `{m}` is not a method name"
            )));
        } else if m.eq_ignore_ascii_case("CONNECT") || m.eq_ignore_ascii_case("TRACE") {
            problems.push(Problem::new(format!(
                "PORTCULLIS_EXTRA_METHODS may not allow {m}: CONNECT and TRACE are never proxied"
            )));
        } else if !STANDARD_METHODS.contains(&m.as_str()) && !extra_methods.contains(m) {
            if m.bytes().any(|b| b.is_ascii_lowercase()) {
                warnings.push(format!(
                    "PORTCULLIS_EXTRA_METHODS: methods are case-sensitive; `{m}` matches only that exact spelling"
                ));
            }
            extra_methods.push(m.clone());
        }
    }

    let allowed_upgrades = match &raw.allowed_upgrades {
        None => d.allowed_upgrades.clone(),
        Some(list) if list.len() == 1 && list[0].eq_ignore_ascii_case("none") => Vec::new(),
        Some(list) => {
            let mut out: Vec<String> = Vec::new();
            for u in list {
                let lower = u.to_ascii_lowercase();
                // protocol-name ["/" protocol-version] (RFC 9110 §7.8)
                if !lower.split('/').all(is_token) || lower.matches('/').count() > 1 {
                    problems.push(Problem::new(format!(
                        "PORTCULLIS_ALLOWED_UPGRADES: `{u}` is not a protocol name"
                    )));
                } else if !out.contains(&lower) {
                    out.push(lower);
                }
            }
            out
        }
    };

    let mut strip_headers: Vec<String> = Vec::new();
    for h in raw.strip_headers.iter().flatten() {
        let n = headers::normalize(h);
        if !is_token(&n) {
            problems.push(Problem::new(format!(
                "PORTCULLIS_STRIP_HEADERS: `{h}` is not a header name"
            )));
        } else if let Some(r) = RESERVED.iter().find(|r| r.starts_with(n.as_str())) {
            // Entries also strip every header they prefix: `content` would take Content-Length.
            problems.push(Problem::new(format!(
                "PORTCULLIS_STRIP_HEADERS: `{h}` would strip `{r}`, which proxying needs"
            )));
        } else if !strip_headers.contains(&n) {
            strip_headers.push(n);
        }
    }

    let dh = &d.identity_headers;
    let identity_headers = IdentityHeaderNames {
        user: header_name(
            "PORTCULLIS_HEADER_USER",
            &raw.header_user,
            &dh.user,
            problems,
        ),
        email: header_name(
            "PORTCULLIS_HEADER_EMAIL",
            &raw.header_email,
            &dh.email,
            problems,
        ),
        groups: header_name(
            "PORTCULLIS_HEADER_GROUPS",
            &raw.header_groups,
            &dh.groups,
            problems,
        ),
        preferred_username: header_name(
            "PORTCULLIS_HEADER_PREFERRED_USERNAME",
            &raw.header_preferred_username,
            &dh.preferred_username,
            problems,
        ),
    };
    let names = identity_headers.all();
    for (i, a) in names.iter().enumerate() {
        if names[..i]
            .iter()
            .any(|b| headers::normalize(a) == headers::normalize(b))
        {
            problems.push(Problem::new(format!(
                "identity header `{a}` is configured for two claims; each needs its own header"
            )));
        }
    }

    (
        ProxySettings {
            identity_headers,
            strip_headers,
            extra_methods,
            allowed_upgrades,
            max_body_bytes,
            body_timeout,
        },
        limits,
    )
}
