//! Observability through the real OP: the Prometheus counters and histograms move by exactly
//! what the requests did (sign-ins, proxied requests, verifications, back-channel logouts,
//! upstream errors), `/metrics` is served on its own listener only, and every request carries
//! one `X-Request-Id` to the upstream and back.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use serde_json::{Value, json};
use tokio::net::TcpListener;

// ------------------------------------------------------------------------------------------
// Scraping
// ------------------------------------------------------------------------------------------

/// The exposition parsed: every sample line (`name{labels}` → value), after checking the
/// format: every sample belongs to a family with a `# TYPE` line, names are valid, the text
/// ends with `# EOF`.
struct Scrape {
    samples: BTreeMap<String, f64>,
    types: BTreeMap<String, String>,
}

impl Scrape {
    fn get(&self, series: &str) -> f64 {
        *self
            .samples
            .get(series)
            .unwrap_or_else(|| panic!("{series} missing; have {:?}", self.samples.keys()))
    }
}

fn valid_name(n: &str) -> bool {
    let mut c = n.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_' || f == ':')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_' || x == ':')
}

fn parse(text: &str) -> Scrape {
    assert!(text.ends_with("# EOF\n"), "no # EOF at the end:\n{text}");
    let mut samples = BTreeMap::new();
    let mut types = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(valid_name(name), "{line}");
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            types.insert(name.to_string(), kind.to_string());
            continue;
        }
        if line.starts_with('#') {
            assert!(
                line.starts_with("# HELP ") || line.starts_with("# UNIT ") || line == "# EOF",
                "{line}"
            );
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap();
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line}"));
        let name = series.split('{').next().unwrap();
        assert!(valid_name(name), "{line}");
        if let Some(labels) = series.strip_prefix(name) {
            assert!(
                labels.is_empty() || (labels.starts_with('{') && labels.ends_with('}')),
                "{line}"
            );
        }
        samples.insert(series.to_string(), value);
    }
    // Every sample's family is typed (OpenMetrics suffixes by type).
    for series in samples.keys() {
        let name = series.split('{').next().unwrap();
        let family = ["_total", "_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|f| types.contains_key(*f)))
            .unwrap_or(name);
        assert!(types.contains_key(family), "{series} has no # TYPE line");
    }
    Scrape { samples, types }
}

async fn scrape(env: &TestEnv) -> Scrape {
    let addr = env.gw.metrics.as_ref().expect("metrics listener").addr;
    let r = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text"),
        "{:?}",
        r.headers()
    );
    parse(&r.text().await.unwrap())
}

/// How much each of `series` moved between two scrapes.
fn delta(before: &Scrape, after: &Scrape, series: &str) -> f64 {
    after.get(series) - before.get(series)
}

fn with_metrics(raw: &mut portcullis_core::config::RawSettings) {
    raw.metrics_listen = Some("127.0.0.1:0".into());
}

/// A gateway with a metrics listener and our back-channel logout URI registered at the OP.
async fn env_with_bcl() -> TestEnv {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let mut c = client(
        &format!("{base}/api/callback"),
        "client_secret_post",
        "RS256",
    );
    c["backchannel_logout_uri"] = json!(format!("{base}/api/backchannel-logout"));
    c["backchannel_logout_session_required"] = json!(true);
    TestEnv::start_with(Options {
        listener: Some(listener),
        op_extra: json!({"clients": [c]}),
        tweak: Box::new(|raw, _| with_metrics(raw)),
        ..Default::default()
    })
    .await
}

fn idp_sid(b: &Browser, env: &TestEnv) -> String {
    use base64::Engine;
    let jwt = b.cookie(&env.base, "__Host-session").unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(jwt.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    claims["idp_sid"].as_str().unwrap().to_string()
}

async fn post_bcl(env: &TestEnv, token: &str) -> u16 {
    reqwest::Client::new()
        .post(format!("{}/api/backchannel-logout", env.base))
        .form(&[("logout_token", token)])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

// ------------------------------------------------------------------------------------------
// Metrics
// ------------------------------------------------------------------------------------------

/// One sign-in, four proxied requests, a failed sign-in, a worthless session cookie, a
/// refused and an accepted back-channel logout: each counter moves by exactly that, the
/// histogram counts each proxied request once, the active-sessions gauge follows the store,
/// and `/metrics` on the public listener is not Portcullis's (it is proxied like any path).
#[tokio::test]
async fn metrics_move_by_exactly_what_happened() {
    let env = env_with_bcl().await;
    let before = scrape(&env).await;
    for (family, kind) in [
        ("portcullis_sign_ins", "counter"),
        ("portcullis_backchannel_logouts", "counter"),
        ("portcullis_verifications", "counter"),
        ("portcullis_proxy_request_duration_seconds", "histogram"),
        ("portcullis_upstream_errors", "counter"),
        ("portcullis_idp_request_duration_seconds", "histogram"),
        ("portcullis_idp_errors", "counter"),
        ("portcullis_jwks_refreshes", "counter"),
        ("portcullis_active_sessions", "gauge"),
        ("portcullis_dpop_replay_cache_entries", "gauge"),
        ("process_resident_memory_bytes", "gauge"),
        ("process_open_fds", "gauge"),
        ("process_start_time_seconds", "gauge"),
    ] {
        assert_eq!(
            before.types.get(family).map(String::as_str),
            Some(kind),
            "{family}"
        );
    }
    // The start-up loaded discovery and the JWKS through the instrumented client.
    assert!(
        before.get("portcullis_idp_request_duration_seconds_count{endpoint=\"discovery\"}") >= 1.0
    );
    assert!(before.get("portcullis_idp_request_duration_seconds_count{endpoint=\"jwks\"}") >= 1.0);
    assert!(before.get("process_resident_memory_bytes") > 0.0);

    // Not on the public listener: without a session it is a protected path like any other.
    let anon = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = anon
        .get(format!("{}/metrics", env.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    assert!(!r.text().await.unwrap().contains("# TYPE"));

    let b = Browser::new();
    b.sign_in(&env, "/", ALICE.0, ALICE.1).await;
    for i in 0..3 {
        let r = b.get(&format!("{}/app/{i}", env.base)).await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    // Signed in, `/metrics` reaches the app: Portcullis serves none on this port.
    let r = b.get(&format!("{}/metrics", env.base)).await;
    assert_eq!(r.body, "upstream saw /metrics");

    // A failed sign-in (a callback for a state nobody started).
    let r = anon
        .get(format!("{}/api/callback?state=bogus&code=x", env.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // A worthless session cookie.
    let r = anon
        .get(format!("{}/app/forged", env.base))
        .header("accept", "application/json")
        .header("cookie", "__Host-session=forged.jwt.value")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    portcullis_gateway::metrics::sample_active_sessions(&env.gw.state).await;
    let mid = scrape(&env).await;
    assert_eq!(mid.get("portcullis_active_sessions"), 1.0);

    // A refused back-channel logout, then the OP's real one for alice's session.
    assert_eq!(post_bcl(&env, "not-a-token").await, 400);
    let sid = idp_sid(&b, &env);
    let now = portcullis_core::time::now_unix();
    let token = env
        .op
        .sign(
            "RS256",
            json!({}),
            json!({
                "iss": env.op.issuer, "aud": CLIENT_ID, "iat": now, "exp": now + 120,
                "jti": "observability-jti-1", "sub": "alice-sub-0001", "sid": sid,
                "events": {"http://schemas.openid.net/event/backchannel-logout": {}},
            }),
            false,
        )
        .await;
    assert_eq!(post_bcl(&env, &token).await, 200);
    // Her session is now worthless: one more invalid verification, nothing proxied.
    let r = b
        .get_with(
            &format!("{}/app/after", env.base),
            &[("accept", "application/json")],
        )
        .await;
    assert_eq!(r.status, 401);
    portcullis_gateway::metrics::sample_active_sessions(&env.gw.state).await;

    let after = scrape(&env).await;
    let d = |s: &str| delta(&before, &after, s);
    assert_eq!(d("portcullis_sign_ins_total{outcome=\"ok\"}"), 1.0);
    assert_eq!(d("portcullis_sign_ins_total{outcome=\"refused\"}"), 1.0);
    assert_eq!(d("portcullis_sign_ins_total{outcome=\"error\"}"), 0.0);
    assert_eq!(d("portcullis_sign_ins_total{outcome=\"idp_error\"}"), 0.0);
    assert_eq!(
        d("portcullis_verifications_total{credential=\"session\",outcome=\"ok\"}"),
        4.0
    );
    assert_eq!(
        d("portcullis_verifications_total{credential=\"session\",outcome=\"invalid\"}"),
        2.0
    );
    assert_eq!(
        d("portcullis_verifications_total{credential=\"api_token\",outcome=\"ok\"}"),
        0.0
    );
    assert_eq!(d("portcullis_proxy_request_duration_seconds_count"), 4.0);
    assert_eq!(
        d("portcullis_proxy_request_duration_seconds_bucket{le=\"+Inf\"}"),
        4.0
    );
    assert!(d("portcullis_proxy_request_duration_seconds_sum") > 0.0);
    assert_eq!(
        d("portcullis_upstream_errors_total{kind=\"unreachable\"}"),
        0.0
    );
    assert_eq!(
        d("portcullis_upstream_errors_total{kind=\"status_5xx\"}"),
        0.0
    );
    assert_eq!(
        d("portcullis_backchannel_logouts_total{outcome=\"ok\"}"),
        1.0
    );
    assert_eq!(
        d("portcullis_backchannel_logouts_total{outcome=\"refused\"}"),
        1.0
    );
    assert_eq!(
        d("portcullis_idp_request_duration_seconds_count{endpoint=\"token\"}"),
        1.0
    );
    for e in ["discovery", "jwks", "token", "userinfo", "refresh"] {
        assert_eq!(
            d(&format!("portcullis_idp_errors_total{{endpoint=\"{e}\"}}")),
            0.0,
            "{e}"
        );
    }
    assert_eq!(after.get("portcullis_active_sessions"), 0.0);
    // Buckets are cumulative.
    let buckets: Vec<f64> = after
        .samples
        .iter()
        .filter(|(k, _)| k.starts_with("portcullis_proxy_request_duration_seconds_bucket"))
        .map(|(_, v)| *v)
        .collect();
    assert!(buckets.len() > 5);
    let max = buckets.iter().copied().fold(0.0, f64::max);
    assert_eq!(
        after.get("portcullis_proxy_request_duration_seconds_bucket{le=\"+Inf\"}"),
        max
    );
}

/// An upstream that cannot be reached is counted as an upstream error, not as a proxied
/// request in the latency histogram.
#[tokio::test]
async fn an_unreachable_upstream_is_counted() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let env = TestEnv::start_with(Options {
        tweak: Box::new(move |raw, _| {
            with_metrics(raw);
            raw.upstream = Some(format!("http://127.0.0.1:{closed}"));
        }),
        ..Default::default()
    })
    .await;
    let b = Browser::new();
    b.sign_in(&env, "/", ALICE.0, ALICE.1).await;
    let before = scrape(&env).await;
    let r = b.get(&format!("{}/down", env.base)).await;
    assert_eq!(r.status, 502);
    let after = scrape(&env).await;
    let d = |s: &str| delta(&before, &after, s);
    assert_eq!(
        d("portcullis_upstream_errors_total{kind=\"unreachable\"}"),
        1.0
    );
    assert_eq!(d("portcullis_proxy_request_duration_seconds_count"), 0.0);
}

/// With no metrics listener configured (the default) the gateway opens no second port.
#[tokio::test]
async fn no_metrics_listener_by_default() {
    let env = TestEnv::start().await;
    assert!(env.gw.metrics.is_none());
}

// ------------------------------------------------------------------------------------------
// Request ids
// ------------------------------------------------------------------------------------------

fn is_fresh_id(v: &str) -> bool {
    v.len() == 32 && v.bytes().all(|c| c.is_ascii_hexdigit())
}

/// By default a client's `X-Request-Id` is never believed: the upstream and the response get
/// exactly one id, Portcullis's own, even when the client also names the header in
/// `Connection` (which would otherwise strip it as hop-by-hop). Refusals carry an id too.
#[tokio::test]
async fn request_ids_are_portcullis_own_and_reach_the_upstream_once() {
    let env = TestEnv::start().await;
    let b = Browser::new();
    b.sign_in(&env, "/", ALICE.0, ALICE.1).await;
    let mut seen = BTreeSet::new();
    for (i, extra) in [
        vec![],
        vec![("x-request-id", "client-123")],
        vec![("x-request-id", "bad id\twith tab")],
        vec![
            ("x-request-id", "client-456"),
            ("connection", "x-request-id"),
        ],
    ]
    .into_iter()
    .enumerate()
    {
        let r = b.get_with(&format!("{}/rid/{i}", env.base), &extra).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let id = r.header("x-request-id").expect("the response has an id");
        assert!(is_fresh_id(&id), "{id}");
        assert_eq!(r.headers.get_all("x-request-id").iter().count(), 1);
        let got = env.upstream.requests().pop().unwrap();
        assert_eq!(got.uri, format!("/rid/{i}"));
        assert_eq!(got.one("x-request-id").as_deref(), Some(id.as_str()));
        assert!(seen.insert(id), "ids are unique");
    }
    // Own paths (the router) and the app's (straight to the proxy) draw from one source: the
    // gateway's prefix, never an id twice.
    let own = reqwest::get(format!("{}/healthz", env.base)).await.unwrap();
    let own_id = own.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(is_fresh_id(&own_id), "{own_id}");
    let proxied = seen.iter().next().unwrap();
    assert_eq!(own_id[..16], proxied[..16], "one source of request ids");
    assert!(seen.insert(own_id), "ids are unique");
    // A refusal (no session, API client) has one as well.
    let r = reqwest::Client::new()
        .get(format!("{}/rid/anon", env.base))
        .header("accept", "application/json")
        .header("x-request-id", "client-789")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(is_fresh_id(r.headers()["x-request-id"].to_str().unwrap()));
}

/// With `PORTCULLIS_TRUST_REQUEST_ID=true` a single well-formed client id is kept end to end;
/// a malformed one is still replaced.
#[tokio::test]
async fn trusted_request_ids_are_kept_only_when_well_formed() {
    let env = TestEnv::start_with(Options {
        tweak: Box::new(|raw, _| raw.trust_request_id = Some("true".into())),
        ..Default::default()
    })
    .await;
    let b = Browser::new();
    b.sign_in(&env, "/", ALICE.0, ALICE.1).await;
    let r = b
        .get_with(
            &format!("{}/lb", env.base),
            &[("x-request-id", "lb-42.a:7_x")],
        )
        .await;
    assert_eq!(r.header("x-request-id").as_deref(), Some("lb-42.a:7_x"));
    let got = env.upstream.requests().pop().unwrap();
    assert_eq!(got.one("x-request-id").as_deref(), Some("lb-42.a:7_x"));

    let long = "a".repeat(65);
    for bogus in ["has space", "semi;colon", "quote\"d", long.as_str()] {
        let r = b
            .get_with(&format!("{}/lb", env.base), &[("x-request-id", bogus)])
            .await;
        let id = r.header("x-request-id").unwrap();
        assert!(is_fresh_id(&id), "{bogus} → {id}");
        let got = env.upstream.requests().pop().unwrap();
        assert_eq!(got.one("x-request-id").as_deref(), Some(id.as_str()));
    }
}
