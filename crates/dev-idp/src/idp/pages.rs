//! HTML pages of the development IdP. Every dynamic value is HTML-escaped.

use std::borrow::Cow;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use crate::idp::DevIdp;
use crate::idp::config::DevUser;

pub(crate) const BANNER: &str =
    "Portcullis development IdP \u{2014} for local demos only, never production";

/// Escapes text for HTML element content and quoted attribute values.
pub(crate) fn esc(s: &str) -> Cow<'_, str> {
    html_escape::encode_quoted_attribute(s)
}

/// The footer's grey is darker than `.muted`'s because it sits on the grey page background
/// (text contrast at least 4.5:1 on both).
const STYLE: &str = "\
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;background:#f3f4f6;color:#111827}\
.banner{background:#b45309;color:#fff;padding:.6rem 1rem;font-weight:600;text-align:center}\
main{max-width:36rem;margin:2rem auto;background:#fff;border-radius:8px;padding:1.5rem 2rem;box-shadow:0 1px 4px rgba(0,0,0,.12)}\
h1{font-size:1.4rem;margin-top:0}\
label{display:block;margin:.8rem 0 .2rem;font-weight:600}\
input[type=text],input[type=password]{width:100%;box-sizing:border-box;padding:.5rem;border:1px solid #9ca3af;border-radius:4px;font-size:1rem}\
button{margin-top:1rem;padding:.5rem 1.2rem;border:0;border-radius:4px;background:#1d4ed8;color:#fff;font-size:1rem;cursor:pointer}\
button.small{margin:0;padding:.25rem .7rem;font-size:.85rem;background:#374151}\
.error{background:#fee2e2;border:1px solid #f87171;color:#7f1d1d;padding:.6rem .8rem;border-radius:4px}\
.muted{color:#6b7280;font-size:.9rem}\
table{border-collapse:collapse;width:100%;margin-top:.5rem}\
th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid #e5e7eb;font-size:.9rem}\
code{background:#f3f4f6;padding:0 .2rem;border-radius:3px;overflow-wrap:anywhere}\
a{color:#0b5cad}\
h2{font-size:1.1rem;margin-top:1.5rem}\
footer{max-width:36rem;margin:0 auto 2rem;padding:0 2rem;color:#4b5563;font-size:.9rem}\
form.inline{margin:0}";

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<meta name=\"robots\" content=\"noindex\">\
<title>{title} \u{2014} Portcullis dev IdP</title><style>{STYLE}</style></head>\
<body><div class=\"banner\" role=\"note\">{banner}</div><main>{body}</main>\
<footer>Portcullis</footer></body></html>\n",
        title = esc(title),
        banner = esc(BANNER),
    )
}

/// An HTML response with no-store caching and a restrictive CSP.
pub(crate) fn html(status: StatusCode, body: String) -> Response {
    let mut resp = (status, Html(body)).into_response();
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

pub(crate) fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    let body = format!(
        "<h1>{}</h1><p class=\"error\">{}</p>\
<p class=\"muted\">Go back to the application and try again.</p>",
        esc(title),
        esc(message)
    );
    html(status, page(title, &body))
}

pub(crate) struct LoginForm<'a> {
    /// Path the form posts to (the `/login` endpoint).
    pub action: &'a str,
    pub request_id: &'a str,
    pub client_id: &'a str,
    pub redirect_uri: &'a str,
    pub error: Option<&'a str>,
    pub username: &'a str,
    pub users: &'a [DevUser],
}

pub(crate) fn login_page(form: &LoginForm<'_>) -> Response {
    let action = esc(form.action);
    let request_id = esc(form.request_id);
    let mut body = String::new();
    body.push_str("<h1>Sign in</h1>");
    body.push_str(&format!(
        "<p>Application <code>{}</code> asks you to sign in. You will be sent back to <code>{}</code>.</p>",
        esc(form.client_id),
        esc(form.redirect_uri)
    ));
    if let Some(error) = form.error {
        body.push_str(&format!(
            "<p class=\"error\" role=\"alert\">{}</p>",
            esc(error)
        ));
    }
    body.push_str(&format!(
        "<form method=\"post\" action=\"{action}\">\
<input type=\"hidden\" name=\"request_id\" value=\"{request_id}\">\
<label for=\"username\">Username</label>\
<input type=\"text\" id=\"username\" name=\"username\" value=\"{}\" autocomplete=\"username\" autofocus required>\
<label for=\"password\">Password</label>\
<input type=\"password\" id=\"password\" name=\"password\" autocomplete=\"current-password\" required>\
<button type=\"submit\">Sign in</button></form>",
        esc(form.username)
    ));
    if !form.users.is_empty() {
        body.push_str(
            "<h2>Demo accounts</h2><p class=\"muted\">These test accounts exist only in this \
development IdP. Click a button to sign in with one.</p>\
<table><thead><tr><th>Username</th><th>Password</th><th>Groups</th><th></th></tr></thead><tbody>",
        );
        for u in form.users {
            let groups = if u.groups.is_empty() {
                "(none)".to_owned()
            } else {
                u.groups.join(", ")
            };
            body.push_str(&format!(
                "<tr><td><code>{user}</code></td><td><code>{pass}</code></td><td>{groups}</td><td>\
<form class=\"inline\" method=\"post\" action=\"{action}\">\
<input type=\"hidden\" name=\"request_id\" value=\"{request_id}\">\
<input type=\"hidden\" name=\"username\" value=\"{user}\">\
<input type=\"hidden\" name=\"password\" value=\"{pass}\">\
<button class=\"small\" type=\"submit\">Sign in as {user}</button></form></td></tr>",
                user = esc(&u.username),
                pass = esc(&u.password),
                groups = esc(&groups),
            ));
        }
        body.push_str("</tbody></table>");
    }
    html(StatusCode::OK, page("Sign in", &body))
}

pub(crate) fn signed_out_page(ended: bool) -> Response {
    let msg = if ended {
        "You have been signed out of the development IdP."
    } else {
        "You were not signed in at the development IdP (or your session had already ended)."
    };
    let body = format!(
        "<h1>Signed out</h1><p>{}</p><p class=\"muted\">You can close this window.</p>",
        esc(msg)
    );
    html(StatusCode::OK, page("Signed out", &body))
}

/// The page at the issuer URL (`GET /`): what this IdP is, its demo users with their passwords
/// (it is a development IdP; the banner says so) and its endpoints, so the "Dev IdP" link printed
/// by `portcullis demo` opens something useful instead of a 404.
pub(crate) fn front_page(idp: &DevIdp) -> Response {
    let mut body = String::from(
        "<h1>Development identity provider</h1>\
<p>This is the OpenID Provider built into Portcullis for <code>portcullis demo</code>. It keeps \
everything in memory, makes a new signing key at every start and shows its users' passwords \
below. <strong>Never use it in production.</strong></p>\
<p>To sign in, open the application through Portcullis; Portcullis sends you here.</p>",
    );
    body.push_str("<h2 id=\"users\">Demo users</h2>");
    if idp.users.is_empty() {
        body.push_str("<p>No users are configured.</p>");
    } else {
        body.push_str(
            "<table aria-labelledby=\"users\"><thead><tr><th scope=\"col\">Username</th>\
<th scope=\"col\">Password</th><th scope=\"col\">Email</th><th scope=\"col\">Groups</th>\
</tr></thead><tbody>",
        );
        for u in &idp.users {
            let groups = if u.groups.is_empty() {
                "(none)".to_owned()
            } else {
                u.groups.join(", ")
            };
            body.push_str(&format!(
                "<tr><td><code>{}</code></td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                esc(&u.username),
                esc(&u.password),
                esc(&u.email),
                esc(&groups),
            ));
        }
        body.push_str("</tbody></table>");
    }
    body.push_str(&format!(
        "<h2 id=\"endpoints\">Endpoints</h2><p>Issuer: <code>{}</code></p>\
<table aria-labelledby=\"endpoints\"><thead><tr><th scope=\"col\">Endpoint</th>\
<th scope=\"col\">URL</th></tr></thead><tbody>",
        esc(idp.issuer())
    ));
    // Only the two GET-able JSON documents are links; the others need an OAuth request.
    for (name, path, link) in [
        ("Discovery", "/.well-known/openid-configuration", true),
        ("Authorization", "/authorize", false),
        ("Token", "/token", false),
        ("Userinfo", "/userinfo", false),
        ("JWKS", "/jwks", true),
        ("End session", "/end-session", false),
    ] {
        let url = esc(&idp.endpoint(path)).into_owned();
        let cell = if link {
            format!("<a href=\"{url}\"><code>{url}</code></a>")
        } else {
            format!("<code>{url}</code>")
        };
        body.push_str(&format!("<tr><td>{name}</td><td>{cell}</td></tr>"));
    }
    body.push_str("</tbody></table>");
    html(StatusCode::OK, page("Development IdP", &body))
}
