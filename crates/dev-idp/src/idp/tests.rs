//! End-to-end tests of the development IdP over real HTTP.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, COOKIE, LOCATION, SET_COOKIE, WWW_AUTHENTICATE};
use serde_json::Value;
use tokio::sync::mpsc;

use super::util::{random_token, s256};
use super::*;

const CLIENT_ID: &str = "gateway";
/// Contains characters that must be form-urlencoded for client_secret_basic.
const CLIENT_SECRET: &str = "s3cr3t:+/ %x";
const REDIRECT_URI: &str = "http://127.0.0.1:1/api/callback";
const POST_LOGOUT_URI: &str = "http://127.0.0.1:1/signed-out";
const SCOPE: &str = "openid email profile groups";

struct TestIdp {
    base: String,
    idp: Arc<DevIdp>,
    http: reqwest::Client,
}

async fn start_with(issuer_path: &str, backchannel_logout_uri: Option<String>) -> TestIdp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let issuer: url::Url = format!("http://{addr}{issuer_path}").parse().unwrap();
    let idp = DevIdp::new(DevIdpConfig {
        issuer,
        clients: vec![
            DevClient {
                client_id: CLIENT_ID.into(),
                client_secret: CLIENT_SECRET.into(),
                redirect_uris: vec![REDIRECT_URI.into()],
                post_logout_redirect_uris: vec![POST_LOGOUT_URI.into()],
                backchannel_logout_uri,
            },
            DevClient {
                client_id: "other".into(),
                client_secret: "other-secret".into(),
                redirect_uris: vec!["http://127.0.0.1:1/other".into()],
                post_logout_redirect_uris: vec![],
                backchannel_logout_uri: None,
            },
        ],
        users: demo_users(),
    })
    .unwrap();
    tokio::spawn(serve(listener, idp.router()));
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    TestIdp {
        base: idp.issuer().to_owned(),
        idp,
        http,
    }
}

/// POST a form to the token endpoint (no client authentication header).
async fn post_token(t: &TestIdp, form: &[(&str, &str)]) -> reqwest::Response {
    t.http
        .post(format!("{}/token", t.base))
        .form(form)
        .send()
        .await
        .unwrap()
}

async fn start() -> TestIdp {
    start_with("", None).await
}

struct Pkce {
    verifier: String,
    challenge: String,
}

fn pkce() -> Pkce {
    let verifier = random_token(32).unwrap();
    Pkce {
        challenge: s256(&verifier),
        verifier,
    }
}

fn authorize_url(t: &TestIdp, pkce: &Pkce, extra: &[(&str, &str)]) -> String {
    let mut params: Vec<(&str, &str)> = vec![
        ("client_id", CLIENT_ID),
        ("redirect_uri", REDIRECT_URI),
        ("response_type", "code"),
        ("scope", SCOPE),
        ("state", "st&ate=1"),
        ("nonce", "n-0S6_WzA2Mj"),
        ("code_challenge", &pkce.challenge),
        ("code_challenge_method", "S256"),
    ];
    for (k, v) in extra {
        params.retain(|(pk, _)| pk != k);
        if !v.is_empty() {
            params.push((k, v));
        }
    }
    let mut url = url::Url::parse(&format!("{}/authorize", t.base)).unwrap();
    url.query_pairs_mut().extend_pairs(params);
    url.into()
}

fn hidden_request_id(html: &str) -> String {
    let marker = "name=\"request_id\" value=\"";
    let start = html.find(marker).expect("login form has a request_id") + marker.len();
    let end = html[start..].find('"').unwrap();
    html[start..start + end].to_owned()
}

fn query_of(location: &str) -> HashMap<String, String> {
    url::Url::parse(location)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

/// Result of a successful browser sign-in.
struct SignedIn {
    code: String,
    cookie: String,
    params: HashMap<String, String>,
}

/// GET /authorize (expects the form), POST /login, returns the code.
async fn sign_in(t: &TestIdp, pkce: &Pkce, username: &str, password: &str) -> SignedIn {
    let resp = t
        .http
        .get(authorize_url(t, pkce, &[]))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let html = resp.text().await.unwrap();
    assert!(
        html.contains(pages::BANNER) || html.contains("for local demos only, never production")
    );
    let request_id = hidden_request_id(&html);
    let resp = t
        .http
        .post(format!("{}/login", t.base))
        .form(&[
            ("request_id", request_id.as_str()),
            ("username", username),
            ("password", password),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FOUND);
    let location = resp.headers()[LOCATION].to_str().unwrap().to_owned();
    assert!(location.starts_with(REDIRECT_URI));
    let cookie = resp.headers()[SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    assert!(cookie.starts_with(SESSION_COOKIE));
    let params = query_of(&location);
    SignedIn {
        code: params["code"].clone(),
        cookie,
        params,
    }
}

async fn exchange_post(t: &TestIdp, code: &str, verifier: &str) -> reqwest::Response {
    post_token(
        t,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", verifier),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ],
    )
    .await
}

fn basic_auth(id: &str, secret: &str) -> String {
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", enc(id), enc(secret)))
    )
}

async fn exchange_basic(t: &TestIdp, code: &str, verifier: &str) -> reqwest::Response {
    t.http
        .post(format!("{}/token", t.base))
        .header(AUTHORIZATION, basic_auth(CLIENT_ID, CLIENT_SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", verifier),
        ])
        .send()
        .await
        .unwrap()
}

async fn decoding_key(t: &TestIdp, token: &str) -> DecodingKey {
    let jwks: JwkSet = t
        .http
        .get(format!("{}/jwks", t.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    let jwk = jwks.find(header.kid.as_deref().unwrap()).unwrap();
    DecodingKey::from_jwk(jwk).unwrap()
}

async fn verify_id_token(t: &TestIdp, id_token: &str) -> serde_json::Map<String, Value> {
    let header = jsonwebtoken::decode_header(id_token).unwrap();
    assert_eq!(header.alg, Algorithm::RS256);
    assert_eq!(header.typ.as_deref(), Some("JWT"));
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[CLIENT_ID]);
    validation.set_issuer(&[t.idp.issuer()]);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "sub", "aud"]);
    let key = decoding_key(t, id_token).await;
    jsonwebtoken::decode(id_token, &key, &validation)
        .unwrap()
        .claims
}

async fn json_of(resp: reqwest::Response) -> Value {
    resp.json().await.unwrap()
}

#[tokio::test]
async fn discovery_document_advertises_the_endpoints_and_capabilities() {
    let t = start().await;
    let resp = t
        .http
        .get(format!("{}/.well-known/openid-configuration", t.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let d = json_of(resp).await;
    let issuer = t.idp.issuer();
    assert!(!issuer.ends_with('/'));
    assert_eq!(d["issuer"], issuer);
    assert_eq!(d["authorization_endpoint"], format!("{issuer}/authorize"));
    assert_eq!(d["token_endpoint"], format!("{issuer}/token"));
    assert_eq!(d["userinfo_endpoint"], format!("{issuer}/userinfo"));
    assert_eq!(d["jwks_uri"], format!("{issuer}/jwks"));
    assert_eq!(d["end_session_endpoint"], format!("{issuer}/end-session"));
    assert_eq!(d["response_types_supported"], serde_json::json!(["code"]));
    assert_eq!(d["subject_types_supported"], serde_json::json!(["public"]));
    assert_eq!(
        d["id_token_signing_alg_values_supported"],
        serde_json::json!(["RS256"])
    );
    assert_eq!(
        d["token_endpoint_auth_methods_supported"],
        serde_json::json!(["client_secret_post", "client_secret_basic"])
    );
    assert_eq!(
        d["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(
        d["scopes_supported"],
        serde_json::json!(["openid", "email", "profile", "groups", "offline_access"])
    );
    assert!(
        d["claims_supported"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("groups"))
    );
    assert_eq!(d["authorization_response_iss_parameter_supported"], true);
    assert_eq!(d["backchannel_logout_supported"], true);
    assert_eq!(d["backchannel_logout_session_supported"], true);

    let jwks = json_of(t.http.get(format!("{}/jwks", t.base)).send().await.unwrap()).await;
    let key = &jwks["keys"][0];
    assert_eq!(key["kty"], "RSA");
    assert_eq!(key["alg"], "RS256");
    assert_eq!(key["use"], "sig");
    assert!(key["kid"].is_string());
    for private in ["d", "p", "q", "dp", "dq", "qi"] {
        assert!(key.get(private).is_none(), "JWKS must not leak {private}");
    }
}

#[tokio::test]
async fn full_code_flow_with_client_secret_post() {
    let t = start().await;
    let pkce = pkce();
    let signed_in = sign_in(&t, &pkce, "alice", "alice").await;
    assert_eq!(signed_in.params["state"], "st&ate=1");
    assert_eq!(signed_in.params["iss"], t.idp.issuer());

    let resp = exchange_post(&t, &signed_in.code, &pkce.verifier).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let tokens = json_of(resp).await;
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 300);
    assert!(
        tokens.get("refresh_token").is_none(),
        "no offline_access asked"
    );
    let access_token = tokens["access_token"].as_str().unwrap();
    let id_token = tokens["id_token"].as_str().unwrap();

    let claims = verify_id_token(&t, id_token).await;
    let alice = &demo_users()[0];
    assert_eq!(claims["sub"], alice.sub.as_str());
    assert_eq!(claims["aud"], CLIENT_ID);
    assert_eq!(claims["nonce"], "n-0S6_WzA2Mj");
    let iat = claims["iat"].as_u64().unwrap();
    assert_eq!(claims["exp"].as_u64().unwrap(), iat + 300);
    assert!(claims["auth_time"].as_u64().unwrap() <= iat);
    assert!(claims["sid"].as_str().is_some_and(|s| !s.is_empty()));
    assert_eq!(claims["at_hash"], util::at_hash(access_token).as_str());
    assert_eq!(claims["email"], "alice@example.com");
    assert_eq!(claims["email_verified"], true);
    assert_eq!(claims["name"], "Alice Anderson");
    assert_eq!(claims["given_name"], "Alice");
    assert_eq!(claims["family_name"], "Anderson");
    assert_eq!(claims["preferred_username"], "alice");
    assert_eq!(claims["groups"], serde_json::json!(["admins", "devs"]));

    let resp = t
        .http
        .get(format!("{}/userinfo", t.base))
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let info = json_of(resp).await;
    assert_eq!(info["sub"], alice.sub.as_str());
    assert_eq!(info["email"], "alice@example.com");
    assert_eq!(info["email_verified"], true);
    assert_eq!(info["name"], "Alice Anderson");
    assert_eq!(info["given_name"], "Alice");
    assert_eq!(info["family_name"], "Anderson");
    assert_eq!(info["preferred_username"], "alice");
    assert_eq!(info["groups"], serde_json::json!(["admins", "devs"]));
}

#[tokio::test]
async fn full_code_flow_with_client_secret_basic() {
    let t = start().await;
    let pkce = pkce();
    let signed_in = sign_in(&t, &pkce, "carol", "carol").await;
    let resp = exchange_basic(&t, &signed_in.code, &pkce.verifier).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let tokens = json_of(resp).await;
    let claims = verify_id_token(&t, tokens["id_token"].as_str().unwrap()).await;
    assert_eq!(claims["family_name"], "Ødegård");
    assert_eq!(claims["groups"], serde_json::json!([]));
    let info = json_of(
        t.http
            .get(format!("{}/userinfo", t.base))
            .bearer_auth(tokens["access_token"].as_str().unwrap())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(info["preferred_username"], "carol");
}

#[tokio::test]
async fn replayed_code_is_invalid_grant_and_revokes_its_tokens() {
    let t = start().await;
    let pkce = pkce();
    let signed_in = sign_in(&t, &pkce, "bob", "bob").await;
    let first = exchange_post(&t, &signed_in.code, &pkce.verifier).await;
    assert_eq!(first.status(), StatusCode::OK);
    let access_token = json_of(first).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();

    let replay = exchange_post(&t, &signed_in.code, &pkce.verifier).await;
    assert_eq!(replay.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json_of(replay).await["error"], "invalid_grant");

    let resp = t
        .http
        .get(format!("{}/userinfo", t.base))
        .bearer_auth(&access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn wrong_pkce_verifier_is_invalid_grant() {
    let t = start().await;
    let pkce = pkce();
    let signed_in = sign_in(&t, &pkce, "alice", "alice").await;
    let other = self::pkce();
    let resp = exchange_post(&t, &signed_in.code, &other.verifier).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json_of(resp).await["error"], "invalid_grant");
    // The failed attempt consumed the code.
    let resp = exchange_post(&t, &signed_in.code, &pkce.verifier).await;
    assert_eq!(json_of(resp).await["error"], "invalid_grant");
}

#[tokio::test]
async fn token_request_with_other_redirect_uri_or_missing_verifier_is_invalid_grant() {
    let t = start().await;
    let pkce = pkce();
    let signed_in = sign_in(&t, &pkce, "alice", "alice").await;
    let resp = post_token(
        &t,
        &[
            ("grant_type", "authorization_code"),
            ("code", signed_in.code.as_str()),
            ("redirect_uri", "http://127.0.0.1:1/elsewhere"),
            ("code_verifier", pkce.verifier.as_str()),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ],
    )
    .await;
    assert_eq!(json_of(resp).await["error"], "invalid_grant");

    let pkce = self::pkce();
    let signed_in = sign_in(&t, &pkce, "alice", "alice").await;
    let resp = post_token(
        &t,
        &[
            ("grant_type", "authorization_code"),
            ("code", signed_in.code.as_str()),
            ("redirect_uri", REDIRECT_URI),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ],
    )
    .await;
    assert_eq!(json_of(resp).await["error"], "invalid_grant");
}

#[tokio::test]
async fn wrong_client_secret_is_invalid_client_401() {
    let t = start().await;
    let pkce = pkce();
    let signed_in = sign_in(&t, &pkce, "alice", "alice").await;

    let resp = post_token(
        &t,
        &[
            ("grant_type", "authorization_code"),
            ("code", signed_in.code.as_str()),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", pkce.verifier.as_str()),
            ("client_id", CLIENT_ID),
            ("client_secret", "wrong"),
        ],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(json_of(resp).await["error"], "invalid_client");

    let resp = t
        .http
        .post(format!("{}/token", t.base))
        .header(AUTHORIZATION, basic_auth(CLIENT_ID, "wrong"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", signed_in.code.as_str()),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", pkce.verifier.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(resp.headers().contains_key(WWW_AUTHENTICATE));
    assert_eq!(json_of(resp).await["error"], "invalid_client");

    // Basic credentials without form-urlencoding do not match a secret with special characters.
    let raw = format!(
        "Basic {}",
        STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
    );
    let resp = t
        .http
        .post(format!("{}/token", t.base))
        .header(AUTHORIZATION, raw)
        .form(&[("grant_type", "authorization_code"), ("code", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);

    // Failed client authentication did not consume the code.
    let resp = exchange_basic(&t, &signed_in.code, &pkce.verifier).await;
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn code_of_another_client_is_invalid_grant() {
    let t = start().await;
    let pkce = pkce();
    let signed_in = sign_in(&t, &pkce, "alice", "alice").await;
    let resp = post_token(
        &t,
        &[
            ("grant_type", "authorization_code"),
            ("code", signed_in.code.as_str()),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", pkce.verifier.as_str()),
            ("client_id", "other"),
            ("client_secret", "other-secret"),
        ],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json_of(resp).await["error"], "invalid_grant");
}

#[tokio::test]
async fn unregistered_redirect_uri_or_client_shows_an_error_page_and_does_not_redirect() {
    let t = start().await;
    let pkce = pkce();
    for extra in [
        [("redirect_uri", "https://evil.example/<cb>")],
        [("redirect_uri", "http://127.0.0.1:1/api/callback/")],
        [("client_id", "nobody")],
        [("client_id", "")],
    ] {
        let resp = t
            .http
            .get(authorize_url(&t, &pkce, &extra))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{extra:?}");
        assert!(!resp.headers().contains_key(LOCATION));
        let html = resp.text().await.unwrap();
        assert!(html.contains("Sign-in request rejected"));
        assert!(!html.contains("<cb>"), "escaped");
        assert!(!html.contains("request_id"), "no login form");
    }
}

#[tokio::test]
async fn invalid_requests_for_a_verified_redirect_uri_are_redirected_with_an_error() {
    let t = start().await;
    let pkce = pkce();
    for (extra, error) in [
        (vec![("code_challenge", "")], "invalid_request"),
        (vec![("code_challenge_method", "plain")], "invalid_request"),
        (vec![("code_challenge_method", "")], "invalid_request"),
        (vec![("scope", "email profile")], "invalid_scope"),
        (
            vec![("response_type", "token")],
            "unsupported_response_type",
        ),
        (vec![("prompt", "none")], "login_required"),
    ] {
        let resp = t
            .http
            .get(authorize_url(&t, &pkce, &extra))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::FOUND, "{extra:?}");
        let location = resp.headers()[LOCATION].to_str().unwrap();
        assert!(location.starts_with(REDIRECT_URI));
        let q = query_of(location);
        assert_eq!(q["error"], error, "{extra:?}");
        assert_eq!(q["state"], "st&ate=1");
        assert_eq!(q["iss"], t.idp.issuer());
        assert!(!q.contains_key("code"));
    }
}

#[tokio::test]
async fn wrong_password_shows_the_form_again_without_a_code() {
    let t = start().await;
    let pkce = pkce();
    let html = t
        .http
        .get(authorize_url(&t, &pkce, &[]))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let request_id = hidden_request_id(&html);
    let resp = t
        .http
        .post(format!("{}/login", t.base))
        .form(&[
            ("request_id", request_id.as_str()),
            ("username", "alice\"><script>"),
            ("password", "nope"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(!resp.headers().contains_key(LOCATION));
    assert!(!resp.headers().contains_key(SET_COOKIE));
    let html = resp.text().await.unwrap();
    assert!(html.contains("Invalid username or password."));
    assert!(
        !html.contains("\"><script>"),
        "the echoed username is escaped"
    );
    assert_eq!(hidden_request_id(&html), request_id);

    // The same form still works with the right password.
    let resp = t
        .http
        .post(format!("{}/login", t.base))
        .form(&[
            ("request_id", request_id.as_str()),
            ("username", "alice"),
            ("password", "alice"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FOUND);

    // ...but only once.
    let resp = t
        .http
        .post(format!("{}/login", t.base))
        .form(&[
            ("request_id", request_id.as_str()),
            ("username", "alice"),
            ("password", "alice"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(!resp.headers().contains_key(LOCATION));
}

#[tokio::test]
async fn idp_session_cookie_skips_the_form_unless_prompt_login() {
    let t = start().await;
    let pkce = pkce();
    let signed_in = sign_in(&t, &pkce, "bob", "bob").await;

    let pkce2 = self::pkce();
    let resp = t
        .http
        .get(authorize_url(&t, &pkce2, &[("prompt", "none")]))
        .header(COOKIE, &signed_in.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FOUND);
    let q = query_of(resp.headers()[LOCATION].to_str().unwrap());
    let resp = exchange_post(&t, &q["code"], &pkce2.verifier).await;
    let tokens = json_of(resp).await;
    let claims = verify_id_token(&t, tokens["id_token"].as_str().unwrap()).await;
    assert_eq!(claims["preferred_username"], "bob");

    let resp = t
        .http
        .get(authorize_url(&t, &pkce2, &[("prompt", "login")]))
        .header(COOKIE, &signed_in.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.text().await.unwrap().contains("request_id"));
}

async fn start_logout_receiver() -> (String, mpsc::Receiver<String>) {
    let (tx, rx) = mpsc::channel::<String>(4);
    let app = axum::Router::new().route(
        "/backchannel",
        axum::routing::post(move |body: axum::body::Bytes| {
            let tx = tx.clone();
            async move {
                let token = url::form_urlencoded::parse(&body)
                    .find(|(k, _)| k == "logout_token")
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default();
                tx.send(token).await.unwrap();
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve(listener, app));
    (format!("http://{addr}/backchannel"), rx)
}

#[tokio::test]
async fn end_session_sends_a_verifiable_logout_token_and_redirects() {
    let (receiver, mut logout_tokens) = start_logout_receiver().await;
    let t = start_with("", Some(receiver)).await;
    let pkce = pkce();
    let signed_in = sign_in(&t, &pkce, "alice", "alice").await;
    let tokens = json_of(exchange_post(&t, &signed_in.code, &pkce.verifier).await).await;
    let id_token = tokens["id_token"].as_str().unwrap();
    let access_token = tokens["access_token"].as_str().unwrap();
    let id_claims = verify_id_token(&t, id_token).await;

    let mut url = url::Url::parse(&format!("{}/end-session", t.base)).unwrap();
    url.query_pairs_mut()
        .append_pair("id_token_hint", id_token)
        .append_pair("post_logout_redirect_uri", POST_LOGOUT_URI)
        .append_pair("state", "bye&1");
    let resp = t
        .http
        .get(url.as_str())
        .header(COOKIE, &signed_in.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FOUND);
    let location = resp.headers()[LOCATION].to_str().unwrap();
    assert!(location.starts_with(POST_LOGOUT_URI));
    assert_eq!(query_of(location)["state"], "bye&1");
    assert!(
        resp.headers()[SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );

    let logout_token = tokio::time::timeout(Duration::from_secs(5), logout_tokens.recv())
        .await
        .expect("logout token delivered in time")
        .unwrap();
    let header = jsonwebtoken::decode_header(&logout_token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("logout+jwt"));
    assert_eq!(header.alg, Algorithm::RS256);
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[CLIENT_ID]);
    validation.set_issuer(&[t.idp.issuer()]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    let key = decoding_key(&t, &logout_token).await;
    let claims: serde_json::Map<String, Value> =
        jsonwebtoken::decode(&logout_token, &key, &validation)
            .unwrap()
            .claims;
    assert_eq!(claims["sub"], id_claims["sub"]);
    assert_eq!(claims["sid"], id_claims["sid"]);
    assert!(claims["iat"].is_u64());
    assert!(claims["jti"].as_str().is_some_and(|j| !j.is_empty()));
    assert_eq!(
        claims["events"],
        serde_json::json!({"http://schemas.openid.net/event/backchannel-logout": {}})
    );
    assert!(claims.get("nonce").is_none());

    // The IdP session and its tokens are gone.
    let resp = t
        .http
        .get(format!("{}/userinfo", t.base))
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = t
        .http
        .get(authorize_url(&t, &self::pkce(), &[]))
        .header(COOKIE, &signed_in.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "the form is shown again");
}

#[tokio::test]
async fn end_session_without_redirect_shows_signed_out_page() {
    let t = start().await;
    let pkce = pkce();
    let signed_in = sign_in(&t, &pkce, "alice", "alice").await;
    let resp = t
        .http
        .get(format!("{}/end-session", t.base))
        .header(COOKIE, &signed_in.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("You have been signed out")
    );
}

#[tokio::test]
async fn end_session_rejects_unregistered_post_logout_redirect_uri() {
    let t = start().await;
    for query in [
        vec![
            ("client_id", CLIENT_ID),
            ("post_logout_redirect_uri", "https://evil.example/"),
        ],
        vec![("post_logout_redirect_uri", POST_LOGOUT_URI)],
        vec![("id_token_hint", "not.a.jwt")],
    ] {
        let mut url = url::Url::parse(&format!("{}/end-session", t.base)).unwrap();
        url.query_pairs_mut().extend_pairs(&query);
        let resp = t.http.get(url.as_str()).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{query:?}");
        assert!(!resp.headers().contains_key(LOCATION));
        assert!(
            resp.text()
                .await
                .unwrap()
                .contains("Sign-out request rejected")
        );
    }
}

#[tokio::test]
async fn offline_access_issues_rotating_refresh_tokens() {
    let t = start().await;
    let pkce = pkce();
    let resp = t
        .http
        .get(authorize_url(
            &t,
            &pkce,
            &[("scope", "openid offline_access profile unknown")],
        ))
        .send()
        .await
        .unwrap();
    let request_id = hidden_request_id(&resp.text().await.unwrap());
    let resp = t
        .http
        .post(format!("{}/login", t.base))
        .form(&[
            ("request_id", request_id.as_str()),
            ("username", "bob"),
            ("password", "bob"),
        ])
        .send()
        .await
        .unwrap();
    let code = query_of(resp.headers()[LOCATION].to_str().unwrap())["code"].clone();
    let tokens = json_of(exchange_post(&t, &code, &pkce.verifier).await).await;
    assert_eq!(tokens["scope"], "openid profile offline_access");
    let claims = verify_id_token(&t, tokens["id_token"].as_str().unwrap()).await;
    assert!(claims.get("email").is_none(), "email scope not granted");
    assert!(claims.get("groups").is_none(), "groups scope not granted");
    assert_eq!(claims["preferred_username"], "bob");
    let refresh_token = tokens["refresh_token"].as_str().unwrap().to_owned();

    let refresh = |rt: String| {
        let t = &t;
        async move {
            t.http
                .post(format!("{}/token", t.base))
                .header(AUTHORIZATION, basic_auth(CLIENT_ID, CLIENT_SECRET))
                .form(&[("grant_type", "refresh_token"), ("refresh_token", &rt)])
                .send()
                .await
                .unwrap()
        }
    };
    let resp = refresh(refresh_token.clone()).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let refreshed = json_of(resp).await;
    let new_claims = verify_id_token(&t, refreshed["id_token"].as_str().unwrap()).await;
    assert_eq!(new_claims["sub"], claims["sub"]);
    assert_eq!(new_claims["auth_time"], claims["auth_time"]);
    assert!(new_claims.get("nonce").is_none());
    assert_ne!(refreshed["refresh_token"], tokens["refresh_token"]);

    let resp = refresh(refresh_token).await;
    assert_eq!(json_of(resp).await["error"], "invalid_grant", "rotated out");
}

#[tokio::test]
async fn userinfo_requires_a_valid_bearer_token() {
    let t = start().await;
    let resp = t
        .http
        .get(format!("{}/userinfo", t.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(resp.headers().contains_key(WWW_AUTHENTICATE));
    let resp = t
        .http
        .get(format!("{}/userinfo", t.base))
        .bearer_auth("bogus")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(
        resp.headers()[WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
    assert_eq!(json_of(resp).await["error"], "invalid_token");
}

#[tokio::test]
async fn issuer_with_a_path_serves_endpoints_under_it() {
    let t = start_with("/idp/", None).await;
    assert!(t.idp.issuer().ends_with("/idp"));
    let d = json_of(
        t.http
            .get(format!("{}/.well-known/openid-configuration", t.base))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(d["issuer"], t.idp.issuer());
    let pkce = pkce();
    let signed_in = sign_in(&t, &pkce, "alice", "alice").await;
    let resp = exchange_basic(&t, &signed_in.code, &pkce.verifier).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = t
        .http
        .get(format!("{}/nothing-here", t.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(json_of(resp).await["error"], "not_found");
}

#[test]
fn invalid_configuration_is_rejected() {
    let base = || DevIdpConfig {
        issuer: "http://127.0.0.1:9000".parse().unwrap(),
        clients: vec![DevClient {
            client_id: "c".into(),
            client_secret: "s".into(),
            redirect_uris: vec!["http://127.0.0.1:8080/cb".into()],
            post_logout_redirect_uris: vec![],
            backchannel_logout_uri: None,
        }],
        users: demo_users(),
    };
    let mut cfg = base();
    cfg.issuer = "ftp://127.0.0.1".parse().unwrap();
    assert!(matches!(
        DevIdp::new(cfg),
        Err(DevIdpError::InvalidIssuer(_))
    ));
    let mut cfg = base();
    cfg.issuer = "http://127.0.0.1:9000/?x=1".parse().unwrap();
    assert!(matches!(
        DevIdp::new(cfg),
        Err(DevIdpError::InvalidIssuer(_))
    ));
    let mut cfg = base();
    cfg.clients[0].redirect_uris = vec!["http://127.0.0.1/cb#frag".into()];
    assert!(matches!(
        DevIdp::new(cfg),
        Err(DevIdpError::InvalidClient(_))
    ));
    let mut cfg = base();
    cfg.clients.push(cfg.clients[0].clone());
    assert!(matches!(
        DevIdp::new(cfg),
        Err(DevIdpError::InvalidClient(_))
    ));
    let mut cfg = base();
    cfg.users.push(cfg.users[0].clone());
    assert!(matches!(DevIdp::new(cfg), Err(DevIdpError::InvalidUser(_))));
    let idp = DevIdp::new(base()).unwrap();
    assert_eq!(idp.issuer(), "http://127.0.0.1:9000");
}

/// Reshape item 6: the issuer URL (printed by `portcullis demo` as "Dev IdP") opens a page that
/// says what this is, lists the demo users with their passwords and names every endpoint.
#[tokio::test]
async fn front_page_lists_the_demo_users_and_endpoints() {
    for path in ["", "/idp"] {
        let t = start_with(path, None).await;
        let resp = t.http.get(&t.base).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        assert!(
            resp.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        assert_eq!(resp.headers()["cache-control"], "no-store");
        let html = resp.text().await.unwrap();
        assert!(html.contains("<html lang=\"en\">"), "{html}");
        assert!(html.contains("<h1>Development identity provider</h1>"));
        assert!(html.contains("never production"), "the banner warns");
        assert!(html.contains("Never use it in production"));
        for u in demo_users() {
            let row = format!(
                "<tr><td><code>{}</code></td><td><code>{}</code></td>",
                u.username, u.password
            );
            assert!(html.contains(&row), "{} missing: {html}", u.username);
        }
        assert!(html.contains("admins, devs"));
        for endpoint in [
            "/.well-known/openid-configuration",
            "/authorize",
            "/token",
            "/userinfo",
            "/jwks",
            "/end-session",
        ] {
            assert!(
                html.contains(&format!("{}{endpoint}", t.base)),
                "{endpoint} missing: {html}"
            );
        }
        // Every endpoint the page names is the one discovery announces.
        let d = json_of(
            t.http
                .get(format!("{}/.well-known/openid-configuration", t.base))
                .send()
                .await
                .unwrap(),
        )
        .await;
        for key in [
            "authorization_endpoint",
            "token_endpoint",
            "userinfo_endpoint",
            "jwks_uri",
            "end_session_endpoint",
        ] {
            assert!(html.contains(d[key].as_str().unwrap()), "{key}");
        }
    }
}
