//! Observability settings: where `/metrics` is served and whether a client's `X-Request-Id`
//! is believed.
//!
//! The metrics listener is off unless configured, and never the public listener: the public
//! port faces browsers and the internet, while metrics are for the operator's Prometheus.
//! Off by default (rather than a fixed port) so two replicas or a test suite on one host never
//! collide on a port nobody asked for.

use std::net::SocketAddr;

use super::raw::RawSettings;
use super::validate::Problem;

/// The port Prometheus' port-allocation list gives exporters of this kind (documentation).
pub const SUGGESTED_METRICS_LISTEN: &str = "127.0.0.1:9464";

/// Longest client-sent request id reused when trusted; longer ones are replaced.
pub const MAX_REQUEST_ID_LEN: usize = 64;

/// Validated observability settings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ObservabilitySettings {
    /// Where `GET /metrics` is served; `None` = no metrics listener.
    pub metrics_listen: Option<SocketAddr>,
    /// Reuse a well-formed `X-Request-Id` sent by the client (for a trusted load balancer in
    /// front that sets one); otherwise every request gets a fresh id.
    pub trust_request_id: bool,
}

/// Read and check the settings; `listen` is the public listener (already parsed, if valid).
pub(super) fn check(
    raw: &RawSettings,
    listen: Option<SocketAddr>,
    problems: &mut Vec<Problem>,
) -> ObservabilitySettings {
    let metrics_listen = match raw.metrics_listen.as_deref() {
        None => None,
        Some(v) if v.eq_ignore_ascii_case("off") || v.eq_ignore_ascii_case("none") => None,
        Some(v) => match v.parse::<SocketAddr>() {
            Ok(addr) => {
                if listen.is_some_and(|l| overlaps(l, addr)) {
                    problems.push(Problem::new(format!(
                        "PORTCULLIS_METRICS_LISTEN ({addr}) is the public listener's address: metrics are never served on the public port; choose another port, e.g. {SUGGESTED_METRICS_LISTEN}"
                    )));
                    None
                } else {
                    Some(addr)
                }
            }
            Err(_) => {
                problems.push(Problem::new(format!(
                    "PORTCULLIS_METRICS_LISTEN must be host:port (e.g. {SUGGESTED_METRICS_LISTEN}) or off, got `{v}`"
                )));
                None
            }
        },
    };
    let trust_request_id = match raw
        .trust_request_id
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("false") | Some("0") | Some("no") => false,
        Some("true") | Some("1") | Some("yes") => true,
        Some(other) => {
            problems.push(Problem::new(format!(
                "PORTCULLIS_TRUST_REQUEST_ID must be true or false, got `{other}`"
            )));
            false
        }
    };
    ObservabilitySettings {
        metrics_listen,
        trust_request_id,
    }
}

/// Whether two listen addresses would share a socket: same port (other than 0, which picks a
/// free one) and the same IP, or either one all interfaces.
fn overlaps(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() != 0
        && a.port() == b.port()
        && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn run(metrics: Option<&str>, trust: Option<&str>) -> (ObservabilitySettings, Vec<Problem>) {
        let raw = RawSettings {
            metrics_listen: metrics.map(str::to_string),
            trust_request_id: trust.map(str::to_string),
            ..Default::default()
        };
        let mut problems = Vec::new();
        let s = check(&raw, "0.0.0.0:8080".parse().ok(), &mut problems);
        (s, problems)
    }

    #[test]
    fn metrics_listener_is_off_unless_configured() {
        assert_eq!(run(None, None).0, ObservabilitySettings::default());
        assert_eq!(run(Some("off"), None).0.metrics_listen, None);
        let (s, p) = run(Some("127.0.0.1:9464"), Some("true"));
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(s.metrics_listen, "127.0.0.1:9464".parse().ok());
        assert!(s.trust_request_id);
    }

    #[test]
    fn bad_values_are_problems() {
        let (_, p) = run(Some("localhost"), Some("maybe"));
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(
            p[0].0
                .contains("PORTCULLIS_METRICS_LISTEN must be host:port")
        );
        assert!(
            p[1].0
                .contains("PORTCULLIS_TRUST_REQUEST_ID must be true or false")
        );
    }

    /// The YAML keys (`portcullis.metricsListen`, `trustRequestId`) and the variables; the
    /// environment wins.
    #[test]
    fn file_and_environment_keys() {
        let mut raw = crate::config::parse_file(
            "f.yaml",
            "portcullis:\n  metricsListen: 127.0.0.1:9464\n  trustRequestId: true\n",
        )
        .unwrap();
        assert_eq!(raw.metrics_listen.as_deref(), Some("127.0.0.1:9464"));
        assert_eq!(raw.trust_request_id.as_deref(), Some("true"));
        raw.overlay(&crate::config::from_env(&|k| {
            (k == "PORTCULLIS_METRICS_LISTEN").then(|| "off".to_string())
        }));
        let mut problems = Vec::new();
        let s = check(&raw, None, &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(s.metrics_listen, None);
        assert!(s.trust_request_id);
    }

    /// Never the public listener, in any spelling that binds the same socket.
    #[test]
    fn metrics_never_share_the_public_listener() {
        for v in ["0.0.0.0:8080", "127.0.0.1:8080", "10.1.2.3:8080"] {
            let (s, p) = run(Some(v), None);
            assert_eq!(s.metrics_listen, None, "{v}");
            assert!(p[0].0.contains("never served on the public port"), "{p:?}");
        }
        assert!(run(Some("0.0.0.0:9464"), None).1.is_empty());
    }
}
