//! Prometheus metrics: every series is registered once, at start-up, and request paths keep
//! the handles, so recording is one or two relaxed atomic additions: no lookup by name, no
//! label formatting, no allocation, no lock.
//!
//! Crate: `prometheus-client`, the Prometheus project's own Rust client. It is small (no HTTP
//! server, no global registry: each gateway in a test process has its own), writes the
//! OpenMetrics text format, and its counters and gauges are plain atomics. Its histogram
//! takes a mutex per observation, so the histograms here are [`Histogram`], a lock-free
//! fixed-bucket one that plugs into the same registry and encoder.
//!
//! Never recorded: tokens, secrets, user ids, paths or anything else a request chooses. Label
//! values are the fixed strings of this file.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;

/// One label pair; values are always `'static` strings of this file.
type Labels<const N: usize> = [(&'static str, &'static str); N];

/// Outcome of a sign-in at the callback.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignIn {
    Ok,
    /// Refused by Portcullis: bad or replayed state, an ID token or user that fails a check,
    /// a disabled user (4xx).
    Refused,
    /// The IdP answered `error=` (the person cancelled, or the IdP refused them).
    IdpError,
    /// Portcullis could not complete it: IdP unreachable, not ready, database down (5xx).
    Error,
}

impl SignIn {
    const LABELS: [&'static str; 4] = ["ok", "refused", "idp_error", "error"];
}

/// Outcome of a back-channel logout request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bcl {
    Ok,
    /// 400: an invalid request or logout token.
    Refused,
    RateLimited,
    /// The gateway could not act on a valid token (not ready, database down).
    Error,
}

impl Bcl {
    const LABELS: [&'static str; 4] = ["ok", "refused", "rate_limited", "error"];
}

/// Outcome of verifying a presented credential (a session cookie or an API token).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verification {
    Ok,
    /// Expired, tampered, revoked, unknown, or of an inactive user (all 401).
    Invalid,
    /// A DPoP proof was missing or refused (sessions bound to a browser key).
    DpopRefused,
    /// Too many failed attempts from this address (API tokens).
    RateLimited,
    /// The check itself failed (database, a full replay cache).
    Error,
}

impl Verification {
    /// The verdict of a credential check; `presented`: a credential was there to check (a
    /// request with other cookies only is not a verification).
    pub(crate) fn of(
        r: &Result<Option<crate::auth::Authed>, crate::error::WebError>,
        presented: bool,
    ) -> Option<Verification> {
        use crate::error::WebError;
        Some(match r {
            Ok(Some(_)) => Verification::Ok,
            Ok(None) if presented => Verification::Invalid,
            Ok(None) => return None,
            Err(WebError::Unauthorized) => Verification::Invalid,
            Err(WebError::InvalidDpop(_) | WebError::UseDpopNonce(_)) => Verification::DpopRefused,
            Err(WebError::RateLimited(..)) => Verification::RateLimited,
            Err(_) => Verification::Error,
        })
    }

    const LABELS: [&'static str; 5] = ["ok", "invalid", "dpop_refused", "rate_limited", "error"];
}

/// Which credential was verified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Credential {
    Session,
    ApiToken,
}

impl Credential {
    const LABELS: [&'static str; 2] = ["session", "api_token"];
}

/// The kinds of IdP call, each with its own body cap (R-RS-2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdpCall {
    Discovery,
    Jwks,
    /// The authorization-code exchange of a sign-in.
    Token,
    Userinfo,
    /// A refresh-token grant (offline access re-checks).
    Refresh,
    /// A pushed authorization request (RFC 9126) at sign-in.
    Par,
    /// Fetching a distributed groups claim (Entra ID's groups overage).
    GroupsSource,
}

impl IdpCall {
    const ALL: [IdpCall; 7] = [
        IdpCall::Discovery,
        IdpCall::Jwks,
        IdpCall::Token,
        IdpCall::Userinfo,
        IdpCall::Refresh,
        IdpCall::Par,
        IdpCall::GroupsSource,
    ];

    pub fn label(self) -> &'static str {
        match self {
            IdpCall::Discovery => "discovery",
            IdpCall::Jwks => "jwks",
            IdpCall::Token => "token",
            IdpCall::Userinfo => "userinfo",
            IdpCall::Refresh => "refresh",
            IdpCall::Par => "par",
            IdpCall::GroupsSource => "groups_source",
        }
    }
}

/// Why a JWKS was fetched again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JwksTrigger {
    /// The hourly refresh.
    Periodic,
    /// A token named a `kid` the cached set does not have.
    UnknownKid,
}

/// Upstream failures: no answer at all, or an answer with a 5xx status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpstreamError {
    Unreachable,
    Status5xx,
}

/// Seconds; from 1 ms (a loopback app) to the 30 s body timeout.
const PROXY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Seconds; IdP calls are cut at 10 s.
const IDP_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Every metric of one gateway, with its pre-registered handles.
pub struct Metrics {
    registry: Registry,
    sign_ins: [Counter; 4],
    backchannel_logouts: [Counter; 4],
    /// `[credential][outcome]`.
    verifications: [[Counter; 5]; 2],
    proxy_duration: Histogram,
    upstream_errors: [Counter; 2],
    idp_duration: [Histogram; IdpCall::ALL.len()],
    idp_errors: [Counter; IdpCall::ALL.len()],
    /// `[trigger][ok, error]`.
    jwks_refreshes: [[Counter; 2]; 2],
    /// Set by [`crate::metrics::sample_active_sessions`], never per request.
    pub active_sessions: Gauge,
    /// Set when scraped.
    dpop_replay_entries: Gauge,
    process: ProcessGauges,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut r = Registry::default();
        let sign_ins = counters(
            &mut r,
            "portcullis_sign_ins",
            "Sign-ins completed at the callback, by outcome",
            "outcome",
            SignIn::LABELS,
        );
        let backchannel_logouts = counters(
            &mut r,
            "portcullis_backchannel_logouts",
            "Back-channel logout requests from the IdP, by outcome",
            "outcome",
            Bcl::LABELS,
        );
        let family = Family::<Labels<2>, Counter>::default();
        r.register(
            "portcullis_verifications",
            "Credentials verified (credential: session or api_token), by outcome",
            family.clone(),
        );
        let verifications = Credential::LABELS.map(|c| {
            Verification::LABELS
                .map(|o| family.get_or_create_owned(&[("credential", c), ("outcome", o)]))
        });
        let proxy_duration = Histogram::new(PROXY_BUCKETS);
        r.register(
            "portcullis_proxy_request_duration_seconds",
            "Time from forwarding a request to the upstream until its response head",
            proxy_duration.clone(),
        );
        let upstream_errors = counters(
            &mut r,
            "portcullis_upstream_errors",
            "Proxied requests the upstream failed: unreachable, or answered 5xx",
            "kind",
            ["unreachable", "status_5xx"],
        );
        let idp_family =
            Family::<Labels<1>, Histogram, fn() -> Histogram>::new_with_constructor(|| {
                Histogram::new(IDP_BUCKETS)
            });
        r.register(
            "portcullis_idp_request_duration_seconds",
            "Duration of calls to the IdP, by endpoint",
            idp_family.clone(),
        );
        let idp_duration =
            IdpCall::ALL.map(|c| idp_family.get_or_create_owned(&[("endpoint", c.label())]));
        let idp_errors = counters(
            &mut r,
            "portcullis_idp_errors",
            "IdP calls without a usable answer (unreachable, timeout, over-size, HTTP 5xx), by endpoint",
            "endpoint",
            IdpCall::ALL.map(IdpCall::label),
        );
        let family = Family::<Labels<2>, Counter>::default();
        r.register(
            "portcullis_jwks_refreshes",
            "JWKS fetches after start-up (trigger: periodic or unknown_kid), by outcome",
            family.clone(),
        );
        let jwks_refreshes = ["periodic", "unknown_kid"].map(|t| {
            ["ok", "error"].map(|o| family.get_or_create_owned(&[("trigger", t), ("outcome", o)]))
        });
        let active_sessions = Gauge::default();
        r.register(
            "portcullis_active_sessions",
            "Sessions neither ended nor past their absolute lifetime, all replicas (sampled from the database)",
            active_sessions.clone(),
        );
        let dpop_replay_entries = Gauge::default();
        r.register(
            "portcullis_dpop_replay_cache_entries",
            "DPoP proofs remembered by this replica's replay cache",
            dpop_replay_entries.clone(),
        );
        let process = ProcessGauges::register(&mut r);
        Metrics {
            registry: r,
            sign_ins,
            backchannel_logouts,
            verifications,
            proxy_duration,
            upstream_errors,
            idp_duration,
            idp_errors,
            jwks_refreshes,
            active_sessions,
            dpop_replay_entries,
            process,
        }
    }

    pub fn sign_in(&self, o: SignIn) {
        self.sign_ins[o as usize].inc();
    }

    pub fn backchannel_logout(&self, o: Bcl) {
        self.backchannel_logouts[o as usize].inc();
    }

    pub fn verification(&self, c: Credential, o: Verification) {
        self.verifications[c as usize][o as usize].inc();
    }

    /// The upstream answered (any status) after `d`.
    pub fn proxied(&self, d: Duration, status: u16) {
        self.proxy_duration.observe(d);
        if status >= 500 {
            self.upstream_errors[UpstreamError::Status5xx as usize].inc();
        }
    }

    pub fn upstream_error(&self, e: UpstreamError) {
        self.upstream_errors[e as usize].inc();
    }

    /// One IdP call took `d`; `failed` when it brought no usable answer.
    pub fn idp_call(&self, c: IdpCall, d: Duration, failed: bool) {
        self.idp_duration[c as usize].observe(d);
        if failed {
            self.idp_errors[c as usize].inc();
        }
    }

    pub fn jwks_refresh(&self, t: JwksTrigger, ok: bool) {
        self.jwks_refreshes[t as usize][usize::from(!ok)].inc();
    }

    /// The exposition text (OpenMetrics), with the scrape-time gauges brought up to date.
    pub fn encode(&self, dpop_entries: Option<usize>) -> Result<String, std::fmt::Error> {
        self.dpop_replay_entries
            .set(dpop_entries.map_or(0, |n| i64::try_from(n).unwrap_or(i64::MAX)));
        self.process.sample();
        let mut out = String::with_capacity(8 * 1024);
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

/// Register a counter family with one label and return a handle per value, in order.
fn counters<const N: usize>(
    r: &mut Registry,
    name: &str,
    help: &str,
    label: &'static str,
    values: [&'static str; N],
) -> [Counter; N] {
    let family = Family::<Labels<1>, Counter>::default();
    r.register(name, help, family.clone());
    values.map(|v| family.get_or_create_owned(&[(label, v)]))
}

/// A fixed-bucket histogram of durations. Observing is two relaxed atomic additions (the
/// bucket, the sum in nanoseconds); the count is computed from the buckets when scraped, so
/// it always agrees with `+Inf`.
#[derive(Clone, Debug)]
pub struct Histogram(Arc<HistogramInner>);

#[derive(Debug)]
struct HistogramInner {
    /// Upper bounds in seconds (for the exposition) and in nanoseconds (for observing).
    bounds: &'static [f64],
    bounds_ns: Box<[u64]>,
    /// Per bucket, not cumulative; the last one is `+Inf`.
    counts: Box<[AtomicU64]>,
    sum_ns: AtomicU64,
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Histogram {
        Histogram(Arc::new(HistogramInner {
            bounds,
            bounds_ns: bounds.iter().map(|b| (b * 1e9) as u64).collect(),
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_ns: AtomicU64::new(0),
        }))
    }

    pub fn observe(&self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let h = &self.0;
        let i = h.bounds_ns.partition_point(|b| *b < ns);
        if let Some(c) = h.counts.get(i) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        h.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }
}

impl TypedMetric for Histogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for Histogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let h = &self.0;
        // Per-bucket counts: the encoder makes them cumulative. One read of each bucket, so
        // the count is their sum, as `+Inf` will be.
        let mut total = 0u64;
        let mut buckets = Vec::with_capacity(h.counts.len());
        for (i, c) in h.counts.iter().enumerate() {
            let n = c.load(Ordering::Relaxed);
            total += n;
            let le = h.bounds.get(i).copied().unwrap_or(f64::INFINITY);
            buckets.push((le, n));
        }
        let sum = h.sum_ns.load(Ordering::Relaxed) as f64 / 1e9;
        encoder.encode_histogram::<NoLabelSet>(sum, total, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

/// Process basics that are cheap to read on Linux (elsewhere they stay 0): resident memory
/// and open file descriptors, read from `/proc/self` when scraped, and the start time.
struct ProcessGauges {
    resident_bytes: Gauge,
    open_fds: Gauge,
}

impl ProcessGauges {
    fn register(r: &mut Registry) -> ProcessGauges {
        let start = Gauge::<f64, AtomicU64>::default();
        start.set(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
        );
        r.register(
            "process_start_time_seconds",
            "Start time of the process since the unix epoch in seconds",
            start,
        );
        let resident_bytes = Gauge::default();
        r.register(
            "process_resident_memory_bytes",
            "Resident memory size in bytes",
            resident_bytes.clone(),
        );
        let open_fds = Gauge::default();
        r.register(
            "process_open_fds",
            "Number of open file descriptors",
            open_fds.clone(),
        );
        ProcessGauges {
            resident_bytes,
            open_fds,
        }
    }

    fn sample(&self) {
        if let Some(kb) = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| vm_rss_kb(&s))
        {
            self.resident_bytes.set(kb.saturating_mul(1024));
        }
        if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
            // The directory handle itself is one of the entries.
            let n = dir.count().saturating_sub(1);
            self.open_fds.set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }
}

/// `VmRSS:  1234 kB` of `/proc/self/status`.
fn vm_rss_kb(status: &str) -> Option<i64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Read the number of live sessions from the store into the gauge. Run by the sampler task
/// (and by tests), never on a request path.
pub async fn sample_active_sessions(state: &crate::AppState) {
    match state.store.sessions.live_sessions(state.now()).await {
        Ok(n) => {
            state.metrics.active_sessions.set(n);
        }
        Err(e) => tracing::debug!(error = %e, "could not count the active sessions"),
    }
}

/// How often the active-sessions gauge is refreshed from the database.
pub const ACTIVE_SESSIONS_INTERVAL: Duration = Duration::from_secs(30);

/// The periodic sampler of the active-sessions gauge (only when a metrics listener is on).
pub fn spawn_sampler(state: crate::AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(ACTIVE_SESSIONS_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            sample_active_sessions(&state).await;
        }
    })
}

/// The metrics listener of one gateway: `GET /metrics` and nothing else, on its own address
/// (never the public listener, see `config::observability`), plus the active-sessions
/// sampler. Both stop when this is dropped.
pub struct MetricsServer {
    pub addr: std::net::SocketAddr,
    server: tokio::task::JoinHandle<()>,
    sampler: tokio::task::JoinHandle<()>,
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.server.abort();
        self.sampler.abort();
    }
}

/// The OpenMetrics text format's media type (what `prometheus-client` writes).
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Serve `/metrics` for `state` on `listener`. Plain `axum::serve`: this listener is for the
/// operator's Prometheus on an internal address, not for the public, so it does without the
/// public listener's connection limits and timeouts.
pub fn serve(state: crate::AppState, listener: tokio::net::TcpListener) -> MetricsServer {
    let addr = listener
        .local_addr()
        .unwrap_or_else(|_| std::net::SocketAddr::from(([0, 0, 0, 0], 0)));
    let sampler = spawn_sampler(state.clone());
    let app = axum::Router::new()
        .route("/metrics", axum::routing::get(scrape))
        .with_state(state);
    let server = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!(error = %e, "the metrics listener stopped");
        }
    });
    tracing::info!(%addr, "metrics on http://{addr}/metrics");
    MetricsServer {
        addr,
        server,
        sampler,
    }
}

async fn scrape(
    axum::extract::State(state): axum::extract::State<crate::AppState>,
) -> axum::response::Response {
    use axum::http::{StatusCode, header};
    use axum::response::IntoResponse;
    let dpop = state.dpop.as_ref().map(|d| d.remembered());
    match state.metrics.encode(dpop) {
        Ok(text) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_and_match_the_count() {
        let m = Metrics::new();
        m.proxied(Duration::from_micros(500), 200);
        m.proxied(Duration::from_millis(3), 502);
        m.proxied(Duration::from_secs(60), 200);
        let text = m.encode(Some(7)).unwrap();
        let line = |p: &str| {
            text.lines()
                .find(|l| l.starts_with(p))
                .unwrap_or_else(|| panic!("{p} missing in\n{text}"))
                .to_string()
        };
        assert_eq!(
            line("portcullis_proxy_request_duration_seconds_bucket{le=\"0.001\"}"),
            "portcullis_proxy_request_duration_seconds_bucket{le=\"0.001\"} 1"
        );
        assert!(
            line("portcullis_proxy_request_duration_seconds_bucket{le=\"0.005\"}").ends_with(" 2")
        );
        assert!(
            line("portcullis_proxy_request_duration_seconds_bucket{le=\"30.0\"}").ends_with(" 2")
        );
        assert!(
            line("portcullis_proxy_request_duration_seconds_bucket{le=\"+Inf\"}").ends_with(" 3")
        );
        assert!(line("portcullis_proxy_request_duration_seconds_count").ends_with(" 3"));
        assert!(line("portcullis_upstream_errors_total{kind=\"status_5xx\"}").ends_with(" 1"));
        assert!(line("portcullis_dpop_replay_cache_entries").ends_with(" 7"));
        assert!(text.contains("# TYPE portcullis_proxy_request_duration_seconds histogram"));
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn every_series_exists_from_the_start() {
        let text = Metrics::new().encode(None).unwrap();
        for s in [
            "portcullis_sign_ins_total{outcome=\"idp_error\"} 0",
            "portcullis_verifications_total{credential=\"api_token\",outcome=\"rate_limited\"} 0",
            "portcullis_idp_errors_total{endpoint=\"refresh\"} 0",
            "portcullis_jwks_refreshes_total{trigger=\"unknown_kid\",outcome=\"error\"} 0",
            "portcullis_idp_request_duration_seconds_count{endpoint=\"userinfo\"} 0",
            "portcullis_backchannel_logouts_total{outcome=\"rate_limited\"} 0",
        ] {
            assert!(text.contains(s), "{s} missing in\n{text}");
        }
    }

    /// Every metric the Grafana dashboard queries is one this gateway exposes.
    #[test]
    fn the_dashboard_queries_only_exposed_series() {
        let dash: serde_json::Value =
            serde_json::from_str(include_str!("../../../deploy/grafana/portcullis.json")).unwrap();
        let text = Metrics::new().encode(None).unwrap();
        let mut queried = 0;
        for panel in dash["panels"].as_array().unwrap() {
            for target in panel["targets"].as_array().unwrap() {
                let expr = target["expr"].as_str().unwrap();
                for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                    if word.starts_with("portcullis_") || word.starts_with("process_") {
                        queried += 1;
                        assert!(
                            text.lines().any(|l| l
                                .strip_prefix(word)
                                .is_some_and(|r| r.starts_with('{') || r.starts_with(' '))),
                            "the dashboard queries {word}, which is not exposed"
                        );
                    }
                }
            }
        }
        assert!(queried >= 12, "{queried}");
    }

    #[test]
    fn rss_is_read_from_proc_status() {
        assert_eq!(vm_rss_kb("Name:\tx\nVmRSS:\t  2048 kB\n"), Some(2048));
        assert_eq!(vm_rss_kb("Name:\tx\n"), None);
    }
}
