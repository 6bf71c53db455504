//! Small self-contained HTML pages (no external assets: deployments are often air-gapped).
//! Every dynamic value goes through `html_escape`.

use axum::http::StatusCode;

fn layout(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{title}</title>\
<style>body{{font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;color:#222}}\
h1{{font-size:1.4rem}}a{{color:#0b5cad}}.muted{{color:#666;font-size:.9rem}}</style></head>\
<body>{body}<p class=\"muted\">Portcullis</p></body></html>",
        title = html_escape::encode_text(title),
    )
}

/// The generic error page; `message` is one of our fixed sentences.
pub fn error_page(status: StatusCode, message: &str) -> String {
    let title = format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("Error")
    );
    layout(
        &title,
        &format!(
            "<h1>{}</h1><p>{}</p><p><a href=\"/\">Start again</a></p>",
            html_escape::encode_text(&title),
            html_escape::encode_text(message)
        ),
    )
}

/// Shown at the callback when the IdP returned `error=` (R-CB-4): its description is
/// attacker-controllable text, so it is escaped and shown as data.
pub fn idp_error_page(error: &str, description: Option<&str>) -> String {
    let desc = description
        .map(|d| {
            format!(
                "<p>Details from the identity provider: <code>{}</code></p>",
                html_escape::encode_text(d)
            )
        })
        .unwrap_or_default();
    layout(
        "Sign-in was not completed",
        &format!(
            "<h1>Sign-in was not completed</h1><p>The identity provider answered <code>{}</code>.</p>{desc}<p><a href=\"/\">Try again</a></p>",
            html_escape::encode_text(error)
        ),
    )
}

/// After logout: a page, not a redirect to `/` (which would sign the person straight back in
/// while their IdP session lives).
pub fn signed_out_page() -> String {
    layout(
        "Signed out",
        "<h1>You are signed out</h1><p><a href=\"/\">Sign in again</a></p>",
    )
}
