#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Doctor's judgement with hostile and awkward inputs.

use serde_json::{Value, json};

use super::*;
use crate::config::{ClientAuthMethod, Config, Problem};
use crate::jose::JwsAlg;

fn u(s: &str) -> url::Url {
    url::Url::parse(s).unwrap()
}

fn fetched(status: u16, body: &str) -> Result<Fetched, FetchFailure> {
    Ok(Fetched {
        status,
        content_type: "application/json".into(),
        body: body.as_bytes().to_vec(),
    })
}

fn config(extra: &[(&str, &str)]) -> Config {
    let mut env: Vec<(&str, &str)> = vec![
        (
            "OIDC_DISCOVERY_URL",
            "https://idp.example.com/.well-known/openid-configuration",
        ),
        ("OIDC_CLIENT_ID", "portcullis"),
        (
            "OIDC_CLIENT_SECRET",
            "client-secret-0123456789-abcdefghijkl",
        ),
        (
            "JWT_SIGNING_SECRET",
            "k2P9x7Qm4Lr8Tz1Wv6Ns3Hb5Jd0Fg2Yc9Ue7Ao4",
        ),
        ("PORTCULLIS_PUBLIC_URL", "https://gw.example.com"),
    ];
    env.extend_from_slice(extra);
    let get = |k: &str| {
        env.iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.to_string())
    };
    crate::config::load(&get, None).unwrap()
}

const DISC: &str = "https://idp.example.com/.well-known/openid-configuration";

fn good_doc() -> Value {
    json!({
        "issuer": "https://idp.example.com",
        "authorization_endpoint": "https://idp.example.com/auth",
        "token_endpoint": "https://idp.example.com/token",
        "jwks_uri": "https://idp.example.com/jwks",
        "response_types_supported": ["code"],
        "scopes_supported": ["openid", "email", "profile", "offline_access"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        "id_token_signing_alg_values_supported": ["RS256"],
    })
}

#[test]
fn verdicts_decide_the_exit_code() {
    let ok = Finding::ok("a", "fine");
    let w = Finding::warning("b", "hm", "do x");
    let s = Finding::skipped("c", "not run");
    let p = Finding::problem("d", "bad", "do y");
    assert_eq!(exit_code(&[ok.clone(), w.clone(), s.clone()]), 0);
    assert_eq!(exit_code(&[ok, w, s, p]), 1);
    assert_eq!(exit_code(&[]), 0);
}

#[test]
fn json_shape_is_stable() {
    let j = render_json(&[
        Finding::ok("issuer", "fine"),
        Finding::problem("jwks", "bad", "fix it"),
    ]);
    let v: Value = serde_json::from_str(&j).unwrap();
    assert_eq!(
        v,
        json!([
            {"check": "issuer", "verdict": "ok", "detail": "fine", "fix": null},
            {"check": "jwks", "verdict": "problem", "detail": "bad", "fix": "fix it"},
        ])
    );
}

#[test]
fn text_is_aligned_and_colour_only_when_asked() {
    let f = [
        Finding::ok("issuer", "fine"),
        Finding::problem("redirect-uri-registered", "bad\x1b[2J", "fix\r\nX-Evil: 1"),
    ];
    let plain = render_text(&f, false);
    assert!(!plain.contains('\x1b'), "{plain}");
    let lines: Vec<&str> = plain.lines().collect();
    assert_eq!(lines[0], format!("ok       {:<23}  fine", "issuer"));
    assert!(lines[1].starts_with("problem  redirect-uri-registered  bad\\u{1b}[2J"));
    assert_eq!(
        lines[2],
        format!("{:<9}{:<23}  fix: fix\\u{{d}}\\u{{a}}X-Evil: 1", "", "")
    );
    assert!(plain.ends_with("2 check(s): 1 problem(s), 0 warning(s)\n"));
    assert!(render_text(&f, true).contains("\x1b[1;31mproblem"));
}

#[test]
fn escape_neutralises_terminal_and_bidi_tricks() {
    assert_eq!(escape("a\u{202e}b\u{7}"), "a\\u{202e}b\\u{7}");
    let long = "x".repeat(MAX_SHOWN + 10);
    assert_eq!(escape(&long).chars().count(), MAX_SHOWN + 1);
}

#[test]
fn secrets_are_judged_without_being_shown() {
    let good = "k2P9x7Qm4Lr8Tz1Wv6Ns3Hb5Jd0Fg2Yc9Ue7Ao4";
    // `openssl rand -hex 16`: 128 real bits, not flagged.
    assert_eq!(
        jwt_signing_secret(Some("3f9a1c7e5b2d8064fa1e9c3b7d5a2086")).verdict,
        Verdict::Ok
    );
    let f = jwt_signing_secret(Some(good));
    assert_eq!(f.verdict, Verdict::Ok, "{f:?}");
    assert!(!f.detail.contains(good));
    for (s, v) in [
        (None, Verdict::Problem),
        (Some("short"), Verdict::Problem),
        (
            Some("your-secure-random-string-min-32-chars"),
            Verdict::Problem,
        ),
        (Some(&*"a".repeat(40)), Verdict::Warning),
        (Some(&*"ab".repeat(20)), Verdict::Warning),
        (
            Some("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaabcdefgh"),
            Verdict::Warning,
        ),
    ] {
        let f = jwt_signing_secret(s);
        assert_eq!(f.verdict, v, "{s:?}: {f:?}");
        if let Some(s) = s {
            assert!(!f.detail.contains(s) || s.len() < 8);
        }
    }
    assert_eq!(client_secret(None, None).verdict, Verdict::Problem);
    assert_eq!(
        client_secret(Some("your-client-secret"), None).verdict,
        Verdict::Problem
    );
    assert_eq!(
        client_secret(Some(good), Some(good)).verdict,
        Verdict::Warning
    );
    let f = client_secret(Some("abc-secret-value"), Some(good));
    assert_eq!(f.verdict, Verdict::Ok);
    assert!(!f.detail.contains("abc-secret-value"));
    assert!(entropy_bits("") == 0.0 && entropy_bits("aaaa") == 0.0);
}

#[test]
fn configuration_lists_every_problem() {
    let f = configuration(&[Problem::new("A"), Problem::new("B")], &["W".into()]);
    assert_eq!(
        f.iter()
            .map(|f| (f.verdict, f.detail.as_str()))
            .collect::<Vec<_>>(),
        [
            (Verdict::Problem, "A"),
            (Verdict::Problem, "B"),
            (Verdict::Warning, "W")
        ]
    );
    assert_eq!(configuration(&[], &[])[0].verdict, Verdict::Ok);
}

#[test]
fn discovery_failures_and_hostile_documents() {
    let url = u(DISC);
    let (f, doc) = discovery(&url, &fetched(200, &good_doc().to_string()), false);
    assert!(doc.is_some());
    assert!(f.iter().all(|f| f.verdict == Verdict::Ok), "{f:?}");

    for (r, needle) in [
        (
            Err(FetchFailure {
                kind: FailureKind::Unreachable,
                reason: "connection refused".into(),
            }),
            "connection refused",
        ),
        (
            Err(FetchFailure {
                kind: FailureKind::Timeout,
                reason: "operation timed out".into(),
            }),
            "timed out",
        ),
        (fetched(404, "nope"), "HTTP 404"),
        (fetched(200, "<html>login</html>"), "not a JSON object"),
        (fetched(200, "[]"), "not a JSON object"),
        (
            fetched(200, r#"{"issuer":"a","issuer":"b"}"#),
            "not a JSON object",
        ),
    ] {
        let (f, doc) = discovery(&url, &r, false);
        assert!(doc.is_none());
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].verdict, Verdict::Problem);
        assert!(f[0].detail.contains(needle), "{f:?}");
    }
}

#[test]
fn issuer_mismatch_names_the_cause() {
    let url = u(DISC);
    let cases = [
        ("https://idp.example.com/", "trailing slash"),
        ("https://IDP.example.com", "letter case"),
        ("https://idp.example.com/tenant-b", "tenant or realm"),
        ("https://evil.example", "another host"),
    ];
    for (iss, cause) in cases {
        let f = issuer(&url, Some(&json!(iss)));
        assert_eq!(f.verdict, Verdict::Problem);
        assert!(f.fix.as_deref().unwrap().contains(cause), "{iss}: {f:?}");
    }
    assert_eq!(issuer(&url, Some(&json!(1))).verdict, Verdict::Problem);
    assert_eq!(issuer(&url, None).verdict, Verdict::Problem);
    let f = issuer(&url, Some(&json!("https://evil\u{1b}[31m")));
    assert!(!f.detail.contains('\x1b'));
}

#[test]
fn http_endpoints_need_the_insecure_flag() {
    let mut d = good_doc();
    d["token_endpoint"] = json!("http://idp.example.com/token");
    let m = d.as_object().unwrap();
    assert_eq!(endpoints_https(m, false).verdict, Verdict::Problem);
    assert_eq!(endpoints_https(m, true).verdict, Verdict::Warning);
    d["jwks_uri"] = json!("javascript:alert(1)");
    d.as_object_mut().unwrap().remove("authorization_endpoint");
    let f = endpoints_https(d.as_object().unwrap(), true);
    assert_eq!(f.verdict, Verdict::Problem);
    assert!(f.detail.contains("jwks_uri") && f.detail.contains("authorization_endpoint"));
}

#[test]
fn tls_verdicts() {
    let now = 1_700_000_000;
    let v = |not_after| TlsFacts::Verified {
        not_after,
        custom_ca: true,
    };
    let f = tls("idp", &v(Some(now + 100 * 86_400)), now);
    assert_eq!(
        f.iter().map(|f| f.verdict).collect::<Vec<_>>(),
        [Verdict::Ok, Verdict::Ok]
    );
    assert_eq!(
        tls("idp", &v(Some(now + 3 * 86_400)), now)[1].verdict,
        Verdict::Warning
    );
    assert_eq!(
        tls("idp", &v(Some(now - 1)), now)[1].verdict,
        Verdict::Problem
    );
    assert_eq!(tls("idp", &v(None), now)[1].verdict, Verdict::Warning);
    let f = tls(
        "idp",
        &TlsFacts::Failed {
            reason: "invalid peer certificate: UnknownIssuer".into(),
            custom_ca: false,
        },
        now,
    );
    assert_eq!(f[0].verdict, Verdict::Problem);
    assert!(f[0].fix.as_deref().unwrap().contains("OIDC_SIGNER_PEM_URL"));
    let f = tls(
        "idp",
        &TlsFacts::Failed {
            reason: "invalid peer certificate: NotValidForName".into(),
            custom_ca: true,
        },
        now,
    );
    assert!(f[0].fix.as_deref().unwrap().contains("host name"));
    assert_eq!(
        tls("idp", &TlsFacts::NotHttps, now)[0].verdict,
        Verdict::Skipped
    );
    assert_eq!(format_date(0), "1970-01-01");
    assert_eq!(format_date(2_524_608_000), "2050-01-01");
}

fn rsa_jwks(kids: &[&str]) -> String {
    // A real 2048-bit modulus is needed for the key to count as usable.
    let n = crate::jose::test_support::rsa_a().jwk();
    let keys: Vec<Value> = kids
        .iter()
        .map(|k| {
            let mut j = n.clone();
            j["kid"] = json!(k);
            j["alg"] = json!("RS256");
            j
        })
        .collect();
    json!({ "keys": keys }).to_string()
}

#[test]
fn jwks_and_algorithm() {
    let uri = u("https://idp.example.com/jwks");
    let doc = good_doc();
    let d = doc.as_object();
    let f = jwks(
        &uri,
        &fetched(200, &rsa_jwks(&["a", "b"])),
        &[JwsAlg::RS256],
        d,
    );
    assert_eq!(
        f.iter().map(|f| f.verdict).collect::<Vec<_>>(),
        [Verdict::Ok, Verdict::Ok],
        "{f:?}"
    );

    // Duplicate kid of one key type.
    let f = jwks(
        &uri,
        &fetched(200, &rsa_jwks(&["a", "a"])),
        &[JwsAlg::RS256],
        d,
    );
    assert_eq!(f[0].verdict, Verdict::Problem);

    // ES256 configured: discovery says RS256 only.
    let f = jwks(&uri, &fetched(200, &rsa_jwks(&["a"])), &[JwsAlg::ES256], d);
    assert_eq!(f[1].verdict, Verdict::Problem);
    assert!(f[1].detail.contains("signs ID tokens with RS256"), "{f:?}");
    // …and without discovery's list: no EC key in the JWKS.
    let f = jwks(
        &uri,
        &fetched(200, &rsa_jwks(&["a"])),
        &[JwsAlg::ES256],
        None,
    );
    assert_eq!(f[1].verdict, Verdict::Problem);
    assert!(f[1].detail.contains("no key for it"), "{f:?}");

    for body in [
        "",
        "{}",
        "[1]",
        r#"{"keys":"x"}"#,
        r#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#,
    ] {
        let f = jwks(&uri, &fetched(200, body), &[JwsAlg::RS256], d);
        assert_eq!(f[0].verdict, Verdict::Problem, "{body}: {f:?}");
    }
    let f = jwks(&uri, &fetched(500, ""), &[JwsAlg::RS256], d);
    assert_eq!(
        (f[0].verdict, f[1].verdict),
        (Verdict::Problem, Verdict::Skipped)
    );
}

#[test]
fn redirect_uri_consistency() {
    let p = u("https://gw.example.com");
    assert_eq!(
        redirect_uri(&u("https://gw.example.com/api/callback"), &p).verdict,
        Verdict::Ok
    );
    assert_eq!(
        redirect_uri(&u("https://gw.example.com/loginCallback"), &p).verdict,
        Verdict::Ok
    );
    assert_eq!(
        redirect_uri(&u("https://gw.example.com/cb"), &p).verdict,
        Verdict::Warning
    );
    assert_eq!(
        redirect_uri(&u("https://other.example.com/api/callback"), &p).verdict,
        Verdict::Problem
    );
    let hp = u("http://gw.example.com");
    assert_eq!(
        redirect_uri(&u("http://gw.example.com/api/callback"), &hp).verdict,
        Verdict::Problem
    );
    let lp = u("http://127.0.0.1:8080");
    assert_eq!(
        redirect_uri(&u("http://127.0.0.1:8080/api/callback"), &lp).verdict,
        Verdict::Ok
    );
}

fn probe(status: u16, location: Option<&str>, body: &str) -> Result<ProbeAnswer, FetchFailure> {
    Ok(ProbeAnswer {
        status,
        location: location.map(str::to_owned),
        body: body.as_bytes().to_vec(),
    })
}

#[test]
fn authorization_probe_interpretation() {
    const CB: &str = "https://gw.example.com/api/callback";
    let j = |r| authorization_probe(CB, "portcullis", &r);
    // Accepted: a redirect to the login page, or a login form.
    assert_eq!(
        j(probe(
            303,
            Some("https://idp.example.com/interaction/abc"),
            ""
        ))
        .verdict,
        Verdict::Ok
    );
    assert_eq!(
        j(probe(200, None, "<form><input name=password></form>")).verdict,
        Verdict::Ok
    );
    assert_eq!(
        j(probe(302, Some(&format!("{CB}?code=x&state=y")), "")).verdict,
        Verdict::Ok
    );

    // oidc-provider's error page.
    let f = j(probe(
        400,
        None,
        "<h1>oops! something went wrong</h1><pre>error: invalid_redirect_uri<br>error_description: redirect_uri did not match any of the client's registered redirect_uris</pre>",
    ));
    assert_eq!(f.verdict, Verdict::Problem);
    assert!(
        f.detail
            .contains("invalid_redirect_uri: redirect_uri did not match"),
        "{f:?}"
    );
    assert!(
        f.fix
            .as_deref()
            .unwrap()
            .contains(&format!("register exactly {CB}"))
    );

    // The same page as oidc-provider renders it (labels and values in separate elements).
    let f = j(probe(
        400,
        None,
        "<h1>oops! something went wrong</h1><pre><code><strong>error</strong>: invalid_redirect_uri</code><code><strong>error_description</strong>: redirect_uri did not match</code><code><strong>state</strong>: abc</code></pre>",
    ));
    assert_eq!(
        f.detail,
        "the IdP refused the authorization request: invalid_redirect_uri: redirect_uri did not match"
    );

    // Entra answers 200 with its error page.
    let f = j(probe(
        200,
        None,
        "<html><body>AADSTS50011: The redirect URI specified in the request does not match</body></html>",
    ));
    assert_eq!(f.verdict, Verdict::Problem);
    assert!(f.fix.as_deref().unwrap().contains("register exactly"));

    // Error redirected back to the client: redirect URI fine, request refused.
    let f = j(probe(
        302,
        Some(&format!(
            "{CB}?error=invalid_scope&error_description=bad%20scope%1b"
        )),
        "",
    ));
    assert_eq!(f.verdict, Verdict::Problem);
    assert!(
        f.detail.contains("accepted the redirect URI")
            && f.detail.contains("invalid_scope: bad scope\\u{1b}"),
        "{f:?}"
    );
    assert!(f.fix.as_deref().unwrap().contains("scope"));

    // Unknown client on Google-style redirect with error in the query.
    let f = j(probe(
        302,
        Some("https://idp.example.com/error?error=unauthorized_client"),
        "",
    ));
    assert!(f.fix.as_deref().unwrap().contains("OIDC_CLIENT_ID"));

    // Hostile page: scripts dropped, control characters escaped, length capped.
    let body = format!("<script>error: fake</script>\u{1b}[2J{}", "A".repeat(5000));
    let f = j(probe(500, None, &body));
    assert_eq!(f.verdict, Verdict::Problem);
    assert!(
        !f.detail.contains('\x1b') && !f.detail.contains("fake") && f.detail.len() < 600,
        "{f:?}"
    );
    assert_eq!(
        j(Err(FetchFailure {
            kind: FailureKind::Unreachable,
            reason: "refused".into()
        }))
        .verdict,
        Verdict::Problem
    );
}

#[test]
fn clock_skew_thresholds() {
    assert_eq!(clock_skew(Some(1000), 1002).verdict, Verdict::Ok);
    assert_eq!(clock_skew(Some(1000), 1030).verdict, Verdict::Warning);
    assert_eq!(clock_skew(Some(1000), 900).verdict, Verdict::Problem);
    assert!(clock_skew(Some(1000), 900).detail.contains("100s behind"));
    assert_eq!(clock_skew(None, 1).verdict, Verdict::Skipped);
}

#[test]
fn metadata_support_checks() {
    let c = config(&[]);
    let doc = good_doc();
    let m = doc.as_object().unwrap();
    let f = metadata_support(
        m,
        &c.oidc.scopes,
        ClientAuthMethod::ClientSecretPost,
        &Default::default(),
    );
    assert!(f.iter().all(|f| f.verdict == Verdict::Ok), "{f:?}");

    let mut d = good_doc();
    d["scopes_supported"] = json!(["openid", "email"]);
    d["code_challenge_methods_supported"] = json!(["plain"]);
    d["token_endpoint_auth_methods_supported"] = json!(["client_secret_basic", "private_key_jwt"]);
    d["response_types_supported"] = json!(["id_token"]);
    let scopes = vec![
        "openid".to_owned(),
        "groups".to_owned(),
        "offline_access".to_owned(),
    ];
    let f = metadata_support(
        d.as_object().unwrap(),
        &scopes,
        ClientAuthMethod::ClientSecretPost,
        &Default::default(),
    );
    assert!(f.iter().all(|f| f.verdict == Verdict::Problem), "{f:?}");
    assert!(
        f[0].detail
            .contains("does not offer: groups offline_access")
    );
    assert!(f[0].fix.as_deref().unwrap().contains("offline access"));
    assert_eq!(
        f[3].fix.as_deref(),
        Some("set OIDC_TOKEN_ENDPOINT_AUTH_METHOD=client_secret_basic")
    );

    // Google: offline access is access_type=offline, not a scope.
    let mut g = good_doc();
    g["scopes_supported"] = json!(["openid", "email", "profile"]);
    g["issuer"] = json!("https://accounts.google.com");
    let f = metadata_support(
        g.as_object().unwrap(),
        &scopes[..1]
            .iter()
            .cloned()
            .chain([scopes[2].clone()])
            .collect::<Vec<_>>(),
        ClientAuthMethod::ClientSecretPost,
        &Default::default(),
    );
    assert!(f[0].fix.as_deref().unwrap().contains("access_type"));

    // Missing lists: warnings (and the spec default for auth methods).
    let mut e = good_doc();
    for k in [
        "scopes_supported",
        "code_challenge_methods_supported",
        "token_endpoint_auth_methods_supported",
    ] {
        e.as_object_mut().unwrap().remove(k);
    }
    let f = metadata_support(
        e.as_object().unwrap(),
        &c.oidc.scopes,
        ClientAuthMethod::ClientSecretBasic,
        &Default::default(),
    );
    assert_eq!(
        f.iter().map(|f| f.verdict).collect::<Vec<_>>(),
        [Verdict::Warning, Verdict::Ok, Verdict::Warning, Verdict::Ok]
    );
}

#[test]
fn claims_with_and_without_a_sample() {
    let c = config(&[("PORTCULLIS_ROLES", r#"{"admin":["admins"]}"#)]);
    let keys = &c.oidc.claim_keys;
    let f = claims(None, keys, &c.authz);
    assert!(f.iter().all(|f| f.verdict == Verdict::Skipped));
    assert!(f[0].detail.contains("--claims"));

    let good = json!({"sub": "s1", "email": "a@example.com", "name": "A", "preferred_username": "a", "groups": ["admins", "x"]});
    let f = claims(good.as_object(), keys, &c.authz);
    assert_eq!(
        f.iter().map(|f| f.verdict).collect::<Vec<_>>(),
        [Verdict::Ok, Verdict::Ok],
        "{f:?}"
    );
    assert!(f[1].detail.contains("admin"));

    let f = claims(
        json!({"sub": "s1", "email": "a@example.com", "name": "A", "preferred_username": "a"})
            .as_object(),
        keys,
        &c.authz,
    );
    assert_eq!(f[1].verdict, Verdict::Problem);
    let f = claims(
        json!({"sub": 5, "groups": "devs", "email_verified": false}).as_object(),
        keys,
        &c.authz,
    );
    assert_eq!(f[0].verdict, Verdict::Problem);
    assert!(f[0].detail.contains("email_verified"));
    assert_eq!(f[1].verdict, Verdict::Warning, "{f:?}");
    let f = claims(
        json!({"sub": "s", "groups": {"a": 1}}).as_object(),
        keys,
        &c.authz,
    );
    assert_eq!(f[0].verdict, Verdict::Warning);
}

#[test]
fn cors_upstream_database() {
    let p = "https://gw.example.com";
    assert_eq!(cors_origins(&[], p).verdict, Verdict::Ok);
    assert_eq!(
        cors_origins(&["https://app.example.com".into()], p).verdict,
        Verdict::Ok
    );
    assert_eq!(
        cors_origins(&["https://app.example.com/".into()], p).verdict,
        Verdict::Problem
    );
    assert_eq!(
        cors_origins(&["http://app.example.com".into()], p).verdict,
        Verdict::Problem
    );
    assert_eq!(cors_origins(&["*".into()], p).verdict, Verdict::Problem);
    assert_eq!(cors_origins(&[p.into()], p).verdict, Verdict::Warning);

    let up = u("http://app:3000");
    assert_eq!(
        upstream(Some(&up), &UpstreamFacts::Answered { status: 404 }).verdict,
        Verdict::Ok
    );
    assert_eq!(
        upstream(Some(&up), &UpstreamFacts::Answered { status: 502 }).verdict,
        Verdict::Warning
    );
    assert_eq!(
        upstream(None, &UpstreamFacts::NotConfigured).verdict,
        Verdict::Warning
    );
    let down = UpstreamFacts::Failed(FetchFailure {
        kind: FailureKind::Unreachable,
        reason: "refused".into(),
    });
    assert_eq!(upstream(Some(&up), &down).verdict, Verdict::Problem);
    let with_pw = u("http://user:hunter2@app:3000/");
    let f = upstream(Some(&with_pw), &down);
    assert!(
        !f.detail.contains("hunter2") && f.detail.contains("user:***@app"),
        "{f:?}"
    );

    let reached = |pending: Vec<i64>, failed: Vec<i64>, unknown: Vec<i64>, modified: Vec<i64>| {
        DatabaseFacts::Reached {
            label: "db".into(),
            fresh: false,
            pending,
            failed,
            unknown,
            modified,
        }
    };
    assert_eq!(
        database(&reached(vec![], vec![], vec![], vec![])).verdict,
        Verdict::Ok
    );
    assert_eq!(
        database(&reached(vec![9], vec![], vec![], vec![])).verdict,
        Verdict::Warning
    );
    assert_eq!(
        database(&reached(vec![], vec![3], vec![], vec![])).verdict,
        Verdict::Problem
    );
    assert_eq!(
        database(&reached(vec![], vec![], vec![99], vec![])).verdict,
        Verdict::Problem
    );
    assert_eq!(
        database(&reached(vec![], vec![], vec![], vec![2])).verdict,
        Verdict::Problem
    );
    assert_eq!(
        database(&DatabaseFacts::SqliteMissing { label: "x".into() }).verdict,
        Verdict::Warning
    );
    assert_eq!(
        database(&DatabaseFacts::Unreachable {
            label: "x".into(),
            reason: "refused".into()
        })
        .verdict,
        Verdict::Problem
    );

    assert_eq!(
        redact_database_url("postgres://u:hunter2@db:5432/p?sslmode=require&password=x"),
        "postgres://u@db:5432/p"
    );
    assert!(!redact_database_url("mysql://u:hunter2@db/p").contains("hunter2"));
}

#[test]
fn sessions_and_backchannel_logout() {
    let c = config(&[]);
    let f = sessions(&c.sessions);
    assert_eq!(f.verdict, Verdict::Ok, "{f:?}");
    assert!(
        f.detail.contains("30 min") && f.detail.contains("12 h"),
        "{f:?}"
    );
    let short = config(&[("PORTCULLIS_SESSION_TTL", "300")]);
    assert_eq!(sessions(&short.sessions).verdict, Verdict::Warning);
    let mut d = good_doc();
    assert!(
        backchannel_logout(d.as_object().unwrap(), "https://gw")
            .detail
            .contains("does not advertise")
    );
    d["backchannel_logout_supported"] = json!(true);
    let f = backchannel_logout(d.as_object().unwrap(), "https://gw");
    assert!(
        f.detail.contains("https://gw/api/backchannel-logout"),
        "{f:?}"
    );
}

#[test]
fn private_key_jwt_and_pushed_authorization_checks() {
    use crate::config::ParMode;
    // private_key_jwt listed → ok; not listed → a problem whose fix is about the key.
    let mut d = good_doc();
    d["token_endpoint_auth_methods_supported"] = json!(["private_key_jwt"]);
    let f = metadata_support(
        d.as_object().unwrap(),
        &["openid".to_owned()],
        ClientAuthMethod::PrivateKeyJwt,
        &Default::default(),
    );
    let t = f.iter().find(|f| f.check == "token-endpoint-auth").unwrap();
    assert_eq!(
        (t.verdict, t.detail.as_str()),
        (Verdict::Ok, "private_key_jwt supported")
    );
    d["token_endpoint_auth_methods_supported"] = json!(["client_secret_basic"]);
    let f = metadata_support(
        d.as_object().unwrap(),
        &["openid".to_owned()],
        ClientAuthMethod::PrivateKeyJwt,
        &Default::default(),
    );
    let t = f.iter().find(|f| f.check == "token-endpoint-auth").unwrap();
    assert_eq!(t.verdict, Verdict::Problem);
    assert!(
        t.fix
            .as_deref()
            .unwrap()
            .contains("register Portcullis's public key")
    );

    // PAR: in use, not advertised, required but missing, off against an IdP that requires it.
    let mut d = good_doc();
    let m = |d: &Value, mode| pushed_authorization(d.as_object().unwrap(), mode);
    assert_eq!(m(&d, ParMode::Auto).verdict, Verdict::Ok);
    assert!(m(&d, ParMode::Auto).detail.starts_with("not used"));
    assert_eq!(m(&d, ParMode::Required).verdict, Verdict::Problem);
    d["pushed_authorization_request_endpoint"] = json!("https://idp.example.com/par");
    assert!(m(&d, ParMode::Auto).detail.starts_with("in use"));
    assert!(m(&d, ParMode::Required).detail.starts_with("in use"));
    assert!(m(&d, ParMode::Off).detail.starts_with("off"));
    d["require_pushed_authorization_requests"] = json!(true);
    assert_eq!(m(&d, ParMode::Off).verdict, Verdict::Problem);

    // The key finding names the algorithm and kid and shows only the public JWK.
    let pem = crate::oidc::client_assertion::test_keys::ec_p256_pem();
    let key =
        crate::oidc::client_assertion::ClientKey::from_pem(&pem, None, Some("k1".into())).unwrap();
    let f = client_key(&key);
    assert_eq!(f.verdict, Verdict::Ok);
    assert!(
        f.detail
            .starts_with("private_key_jwt with an ES256 key (kid `k1`)")
    );
    assert!(f.detail.contains("\"kty\":\"EC\"") && !f.detail.contains("\"d\""));
}
