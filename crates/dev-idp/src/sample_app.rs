//! The sample upstream application that sits behind the gateway in
//! `portcullis demo`: it shows who is signed in (from the gateway's
//! `X-Forwarded-*` identity headers) and echoes every request header.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::OriginalUri;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

use crate::idp::pages::esc;
use crate::idp::util::percent_decode_bytes;

/// The sample app: `GET /headers.json` returns the received headers as JSON
/// (name → array of values); `/api/echo` (any method) answers what an API call through
/// Portcullis looked like on arrival; `/app.js` is the page's script (the three tiers shown
/// at work through Portcullis's browser client); every other path returns the HTML page.
pub fn router() -> Router {
    Router::new()
        .route("/headers.json", get(headers_json))
        .route("/app.js", get(app_js))
        .route("/api/echo", axum::routing::any(api_echo))
        .fallback(page)
}

/// The demo page's script: calls `/api/echo` through `/.portcullis/client.js`.
const APP_JS: &str = include_str!("sample_app.js");

async fn app_js() -> Response {
    let mut resp = (StatusCode::OK, APP_JS).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/javascript; charset=utf-8"),
    );
    resp
}

/// What an API request looked like when it reached the app: who (the identity headers) and
/// which browser-security headers got through (the gateway's cookies and proof must not).
async fn api_echo(method: Method, OriginalUri(uri): OriginalUri, headers: HeaderMap) -> Response {
    let seen = |n: &str| {
        headers
            .get(n)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    };
    let mut resp = axum::Json(serde_json::json!({
        "method": method.as_str(),
        "path": uri.path(),
        "user": identity(&headers, "x-forwarded-user"),
        "email": identity(&headers, "x-forwarded-email"),
        "groups": groups(&headers),
        "received": {
            "cookie": seen("cookie"),
            "dpop": seen("dpop"),
            "x-csrf-token": seen("x-csrf-token"),
        },
    }))
    .into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// All request headers, name → values (non-UTF-8 bytes replaced).
fn header_map(headers: &HeaderMap) -> BTreeMap<String, Vec<String>> {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in headers {
        map.entry(name.as_str().to_owned())
            .or_default()
            .push(String::from_utf8_lossy(value.as_bytes()).into_owned());
    }
    map
}

async fn headers_json(headers: HeaderMap) -> Response {
    let mut resp = axum::Json(header_map(&headers)).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// An identity header value, percent-decoded for display (the gateway
/// percent-encodes non-printable and non-ASCII bytes).
fn identity(headers: &HeaderMap, name: &str) -> Option<String> {
    let value = headers.get(name)?;
    let raw = String::from_utf8_lossy(value.as_bytes());
    Some(String::from_utf8_lossy(&percent_decode_bytes(&raw)).into_owned())
}

fn groups(headers: &HeaderMap) -> Vec<String> {
    headers
        .get("x-forwarded-groups")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .map(|g| String::from_utf8_lossy(&percent_decode_bytes(g)).into_owned())
        .collect()
}

const STYLE: &str = "\
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;background:#f8fafc;color:#0f172a}\
header{background:#0f766e;color:#fff;padding:.8rem 1.5rem}\
header h1{margin:0;font-size:1.3rem}\
main{max-width:60rem;margin:1.5rem auto;padding:0 1.5rem}\
section{background:#fff;border-radius:8px;padding:1rem 1.5rem;margin-bottom:1.2rem;box-shadow:0 1px 3px rgba(0,0,0,.1)}\
h2{font-size:1.1rem;margin-top:0}\
table{border-collapse:collapse;width:100%}\
th,td{text-align:left;vertical-align:top;padding:.35rem .5rem;border-bottom:1px solid #e2e8f0;font-size:.9rem}\
td.v{font-family:ui-monospace,Menlo,Consolas,monospace;word-break:break-all}\
.who{font-size:1.2rem}\
.warn{background:#fef3c7;border:1px solid #f59e0b;padding:.6rem .8rem;border-radius:4px}\
.group{display:inline-block;background:#e0f2fe;color:#075985;border-radius:999px;padding:0 .6rem;margin-right:.3rem}\
nav a{margin-right:1.2rem}";

async fn page(method: Method, OriginalUri(uri): OriginalUri, headers: HeaderMap) -> Response {
    let mut body = String::new();

    body.push_str("<section><h2>Who is signed in</h2>");
    match identity(&headers, "x-forwarded-user") {
        Some(user) => {
            let preferred = identity(&headers, "x-forwarded-preferred-username");
            let email = identity(&headers, "x-forwarded-email");
            let groups = groups(&headers);
            body.push_str(&format!(
                "<p class=\"who\">Signed in as <strong>{}</strong></p><table>",
                esc(preferred.as_deref().unwrap_or(&user))
            ));
            let row = |label: &str, value: &str| {
                format!(
                    "<tr><th>{}</th><td class=\"v\">{}</td></tr>",
                    esc(label),
                    esc(value)
                )
            };
            body.push_str(&row("User (X-Forwarded-User)", &user));
            body.push_str(&row(
                "Preferred username",
                preferred.as_deref().unwrap_or("(not sent)"),
            ));
            body.push_str(&row("Email", email.as_deref().unwrap_or("(not sent)")));
            let groups_html = if groups.is_empty() {
                "(none)".to_owned()
            } else {
                groups
                    .iter()
                    .map(|g| format!("<span class=\"group\">{}</span>", esc(g)))
                    .collect()
            };
            body.push_str(&format!(
                "<tr><th>Groups</th><td>{groups_html}</td></tr></table>"
            ));
        }
        None => body.push_str(
            "<p class=\"warn\">Nobody: this request carries no <code>X-Forwarded-User</code> \
             header. Either the path is public or the request did not come through Portcullis.</p>",
        ),
    }
    body.push_str("</section>");

    body.push_str(&format!(
        "<section><h2>Request</h2><table><tr><th>Method</th><td class=\"v\">{}</td></tr>\
<tr><th>Path</th><td class=\"v\">{}</td></tr>",
        esc(method.as_str()),
        esc(uri.path())
    ));
    if let Some(q) = uri.query() {
        body.push_str(&format!(
            "<tr><th>Query</th><td class=\"v\">{}</td></tr>",
            esc(q)
        ));
    }
    body.push_str("</table></section>");

    body.push_str(
        "<section id=\"tiers\"><h2>The three tiers at work</h2>\
<p>This page calls <code>POST /api/echo</code> through Portcullis with its browser client \
(<code>/.portcullis/client.js</code>): the session cookies go along (HttpOnly: this page cannot \
read them), the readable <code>csrf_token</code> cookie is echoed as <code>X-CSRF-Token</code>, \
and a fresh DPoP proof is signed by a key this browser made and cannot export.</p>\
<p><button id=\"call\" type=\"button\">Call the API</button> \
<button id=\"no-proof\" type=\"button\">Call without a proof</button> \
<button id=\"no-csrf\" type=\"button\">Call without the CSRF header</button></p>\
<table id=\"result\"><tr><th>Result</th><td class=\"v\" id=\"outcome\">(not called yet)</td></tr>\
<tr><th>Cookies this page can read</th><td class=\"v\" id=\"cookies\"></td></tr>\
<tr><th>DPoP proof sent</th><td class=\"v\" id=\"proof\"></td></tr>\
<tr><th>What the app received</th><td class=\"v\" id=\"received\"></td></tr></table></section>",
    );
    body.push_str(
        "<section><nav><a href=\"/api/logout\">Sign out</a>\
<a href=\"/api/session\">Session JSON</a><a href=\"/headers.json\">Headers JSON</a></nav></section>",
    );

    body.push_str("<section><h2>Request headers received by the app</h2><table>");
    for (name, values) in header_map(&headers) {
        for value in values {
            body.push_str(&format!(
                "<tr><th>{}</th><td class=\"v\">{}</td></tr>",
                esc(&name),
                esc(&value)
            ));
        }
    }
    body.push_str("</table></section>");

    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<title>Sample app behind Portcullis</title><style>{STYLE}</style></head>\
<body><header><h1>Sample app behind Portcullis</h1></header><main>{body}</main>\
<script type=\"module\" src=\"/app.js\"></script></body></html>\n"
    );
    let mut resp = (StatusCode::OK, Html(html)).into_response();
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    async fn start() -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(crate::serve(listener, router()));
        format!("http://{addr}")
    }

    #[tokio::test]
    async fn page_shows_identity_and_escapes_headers() {
        let base = start().await;
        let http = reqwest::Client::new();
        let resp = http
            .get(format!("{base}/some/<path>?q=<b>"))
            .header("X-Forwarded-User", "user-123")
            .header("X-Forwarded-Email", "carol@example.com")
            .header("X-Forwarded-Preferred-Username", "Carol %C3%98deg%C3%A5rd")
            .header("X-Forwarded-Groups", "admins,a%2Cb,<script>")
            .header("X-Evil", "<script>alert(1)</script>")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert!(
            resp.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        let body = resp.text().await.unwrap();
        assert!(body.contains("Sample app behind Portcullis"));
        assert!(
            body.contains("Carol Ødegård"),
            "percent-decoded for display"
        );
        assert!(body.contains("user-123"));
        assert!(body.contains("carol@example.com"));
        assert!(body.contains(">admins<"));
        assert!(
            body.contains(">a,b<"),
            "a percent-encoded comma stays in one group"
        );
        assert!(!body.contains("<script>"), "header values are escaped");
        assert!(body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(body.contains("x-evil"));
        assert!(body.contains("/some/%3Cpath%3E") || body.contains("/some/&lt;path&gt;"));
        assert!(body.contains("href=\"/api/logout\""));
        assert!(body.contains("href=\"/api/session\""));
        assert!(body.contains("href=\"/headers.json\""));
    }

    #[tokio::test]
    async fn api_echo_reports_what_arrived() {
        let base = start().await;
        let resp = reqwest::Client::new()
            .post(format!("{base}/api/echo"))
            .header("X-Forwarded-User", "user-1")
            .header("X-CSRF-Token", "t")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let v: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(v["method"], "POST");
        assert_eq!(v["user"], "user-1");
        assert_eq!(v["received"]["x-csrf-token"], "t");
        assert_eq!(v["received"]["dpop"], serde_json::Value::Null);
        let js = reqwest::get(format!("{base}/app.js")).await.unwrap();
        assert!(
            js.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/javascript")
        );
        assert!(js.text().await.unwrap().contains("/.portcullis/client.js"));
    }

    #[tokio::test]
    async fn page_without_identity_says_so() {
        let base = start().await;
        let body = reqwest::get(format!("{base}/"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(body.contains("no <code>X-Forwarded-User</code>"));
    }

    #[tokio::test]
    async fn headers_json_lists_every_value() {
        let base = start().await;
        let resp = reqwest::Client::new()
            .get(format!("{base}/headers.json"))
            .header("X-Multi", "one")
            .header("X-Multi", "two")
            .header("X-Other", "<three>")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let json: BTreeMap<String, Vec<String>> = resp.json().await.unwrap();
        assert_eq!(json["x-multi"], vec!["one", "two"]);
        assert_eq!(json["x-other"], vec!["<three>"]);
        assert!(json.contains_key("host"));
    }
}
