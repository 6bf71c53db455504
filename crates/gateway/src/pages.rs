//! Small self-contained HTML pages (no external assets: deployments are often air-gapped).
//! Every dynamic value goes through `html_escape`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;

/// The policy of pages that run Portcullis's own scripts (sign-in, sign-out): scripts and
/// `fetch` from this origin only, nothing inline, nothing else.
pub const SCRIPT_CSP: &str = "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// Let a page load `/.portcullis/*.js` (every other page keeps `default-src 'none'`).
pub fn allow_own_scripts(resp: &mut Response) {
    resp.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(SCRIPT_CSP),
    );
}

/// With DPoP on, `GET /api/login`: the page whose script makes (or loads) this browser's key
/// and starts the sign-in with a proof. To the person it is a moment of "Signing you in…"
/// on the way to their identity provider.
pub fn sign_in_page() -> String {
    layout(
        "Signing in",
        "<h1>Signing you in…</h1>\
<p id=\"status\" role=\"status\" aria-live=\"polite\">Taking you to your organisation's sign-in page.</p>\
<p id=\"retry\" hidden><a href=\"\">Try again</a></p>\
<noscript><p>Signing in needs JavaScript: this site binds your session to a key that only this browser holds. Enable JavaScript and reload the page.</p></noscript>\
<script type=\"module\" src=\"/.portcullis/sign-in.js\"></script>",
    )
}

/// One identity provider on the chooser.
pub struct ChooserEntry<'a> {
    pub id: &'a str,
    pub name: &'a str,
    /// Its metadata is loaded (otherwise the button says it cannot be reached now).
    pub available: bool,
}

/// With several IdPs, `GET /api/login` without a choice: one button per IdP, and (when email
/// domains are configured) an email field that picks the IdP by domain. `rd` is carried along;
/// every value shown or put in a link is escaped.
pub fn chooser_page(
    entries: &[ChooserEntry<'_>],
    rd: Option<&str>,
    email_field: bool,
    unknown_domain: Option<&str>,
) -> String {
    let rd_param: String = rd
        .map(|r| {
            format!(
                "&rd={}",
                url::form_urlencoded::byte_serialize(r.as_bytes()).collect::<String>()
            )
        })
        .unwrap_or_default();
    let buttons: String = entries
        .iter()
        .map(|e| {
            let href = format!(
                "/api/login?idp={}{rd_param}",
                url::form_urlencoded::byte_serialize(e.id.as_bytes()).collect::<String>()
            );
            let note = if e.available {
                String::new()
            } else {
                " <span class=\"muted\">(cannot be reached right now)</span>".to_string()
            };
            format!(
                "<li><a class=\"idp\" href=\"{}\">{}</a>{note}</li>",
                html_escape::encode_double_quoted_attribute(&href),
                html_escape::encode_text(e.name)
            )
        })
        .collect();
    let unknown = unknown_domain
        .map(|d| {
            format!(
                "<p role=\"alert\">No organisation here signs in people from <strong>{}</strong>. Choose one below.</p>",
                html_escape::encode_text(d)
            )
        })
        .unwrap_or_default();
    let email = if email_field {
        let rd_field = rd
            .map(|r| {
                format!(
                    "<input type=\"hidden\" name=\"rd\" value=\"{}\">",
                    html_escape::encode_double_quoted_attribute(r)
                )
            })
            .unwrap_or_default();
        format!(
            "<form method=\"get\" action=\"/api/login\"><label for=\"email\">Work email</label> <input id=\"email\" type=\"email\" name=\"login_hint\" autocomplete=\"email\" required maxlength=\"254\">{rd_field} <button type=\"submit\">Continue</button></form><p class=\"muted\">or choose your organisation:</p>"
        )
    } else {
        String::new()
    };
    layout_with(
        "Sign in",
        "ul.idps{list-style:none;padding:0}ul.idps li{margin:.6rem 0}a.idp{display:inline-block;min-width:16rem;padding:.6rem 1rem;border:1px solid #1d4ed8;border-radius:4px;text-decoration:none}a.idp:focus-visible{outline:3px solid #0b5cad;outline-offset:2px}input{padding:.45rem;font-size:1rem;border:1px solid #888;border-radius:4px}",
        &format!("<h1>Sign in</h1>{unknown}{email}<ul class=\"idps\">{buttons}</ul>"),
    )
}

fn layout(title: &str, body: &str) -> String {
    layout_with(title, "", body)
}

/// [`layout`] with extra style rules (ours, fixed text) after the shared ones.
fn layout_with(title: &str, extra_css: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{title}</title>\
<style>body{{font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;color:#222}}\
h1{{font-size:1.4rem}}a{{color:#0b5cad}}.muted{{color:#666;font-size:.9rem}}\
button{{padding:.5rem 1.2rem;border:0;border-radius:4px;background:#1d4ed8;color:#fff;font-size:1rem;cursor:pointer}}\
button:focus-visible{{outline:3px solid #0b5cad;outline-offset:2px}}{extra_css}</style></head>\
<body>{body}<p class=\"muted\">Portcullis</p></body></html>",
        title = html_escape::encode_text(title),
    )
}

/// The generic error page; `message` is one of our fixed sentences.
pub fn error_page(status: StatusCode, message: &str) -> String {
    status_page(status, message, "/", "Start again")
}

/// A page for `status` with one fixed sentence and one link (`href`, `label` are ours).
fn status_page(status: StatusCode, message: &str, href: &str, label: &str) -> String {
    let title = format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("Error")
    );
    layout(
        &title,
        &format!(
            "<h1>{}</h1><p>{}</p><p><a href=\"{href}\">{label}</a></p>",
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

/// Where the sign-out script goes once the session has ended.
pub const SIGNED_OUT_PATH: &str = "/.portcullis/signed-out";

/// 403 for a person whose groups grant no role: which groups would (names are IdP data, so
/// escaped).
pub fn no_access_page(message: &str, granting: &[(String, Vec<String>)]) -> String {
    let rows: String = granting
        .iter()
        .filter(|(_, groups)| !groups.is_empty())
        .map(|(role, groups)| {
            let groups: Vec<String> = groups
                .iter()
                .map(|g| format!("<code>{}</code>", html_escape::encode_text(g)))
                .collect();
            format!(
                "<li><strong>{}</strong>: {}</li>",
                html_escape::encode_text(role),
                groups.join(", ")
            )
        })
        .collect();
    layout(
        "403 No access",
        &format!(
            "<h1>No access</h1><p>{}</p><p>Groups that give access, by role:</p><ul>{rows}</ul>\
<p><a href=\"/api/logout\">Sign out</a></p>",
            html_escape::encode_text(message)
        ),
    )
}

/// What became of the IdP session at sign-out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdpSession {
    /// RP-initiated logout ended it (or the person was sent to end it).
    Ended,
    /// The IdP offers it, but the operator turned it off.
    KeptByConfiguration,
    /// The IdP has no end-session endpoint.
    NotOffered,
}

/// After logout: a page, not a redirect to `/` (which would sign the person straight back in
/// while their IdP session lives). It says plainly whether the IdP session continues.
pub fn signed_out_page(idp: IdpSession) -> String {
    let idp_line = match idp {
        IdpSession::Ended => "You were also signed out at your organisation's sign-in service.",
        IdpSession::KeptByConfiguration | IdpSession::NotOffered => {
            "Your session at your organisation's sign-in service continues: signing in again will not ask for your password. To end it too, sign out there or close the browser."
        }
    };
    layout(
        "Signed out",
        &format!(
            "<h1>You are signed out</h1><p>You have signed out of this application.</p>\
<p>{idp_line}</p><p><a href=\"/\">Sign in again</a></p>"
        ),
    )
}

/// `GET /api/logout`: signing out changes state, so it is a POST (a link, an image tag or a
/// prefetch must not sign anyone out); this page holds the button that sends it, with the
/// session's CSRF token (`csrf_token`) when there is a session.
/// With `dpop`, the button signs out through the browser client (the POST needs a proof).
pub fn sign_out_page(csrf_token: Option<&str>, dpop: bool) -> String {
    let token = csrf_token
        .map(|t| {
            format!(
                "<input type=\"hidden\" name=\"csrf_token\" value=\"{}\">",
                html_escape::encode_double_quoted_attribute(t)
            )
        })
        .unwrap_or_default();
    layout(
        "Sign out",
        &format!(
            "<h1>Sign out</h1><p>Sign out of this application?</p>\
<form id=\"sign-out\" method=\"post\" action=\"/api/logout\" data-done=\"{SIGNED_OUT_PATH}\">{token}<button type=\"submit\">Sign out</button></form>\
<p id=\"status\" role=\"status\" aria-live=\"polite\"></p>\
<p><a href=\"/\">Cancel and go back</a></p>{script}",
            script = if dpop {
                "<script type=\"module\" src=\"/.portcullis/sign-out.js\"></script>"
            } else {
                ""
            }
        ),
    )
}

/// The admin page's own rules: wider, tables, forms, state badges (contrast ≥ 4.5:1 on white).
const ADMIN_CSS: &str = "body{max-width:72rem;margin:2rem auto}\
h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd;padding-bottom:.3rem}\
form.filters{display:flex;flex-wrap:wrap;gap:.6rem 1rem;align-items:flex-end}\
form.filters label{display:flex;flex-direction:column;font-size:.85rem;color:#444;gap:.2rem}\
input,select{font:inherit;padding:.35rem .5rem;border:1px solid #767676;border-radius:4px}\
input:focus-visible,select:focus-visible,a:focus-visible{outline:3px solid #0b5cad;outline-offset:1px}\
table{border-collapse:collapse;width:100%;margin:.6rem 0;font-size:.92rem}\
th,td{text-align:left;padding:.4rem .5rem;border-bottom:1px solid #e5e5e5;vertical-align:top}\
th{background:#f4f4f5;font-weight:600}\
button.secondary{background:#fff;color:#1d4ed8;border:1px solid #1d4ed8}\
button.danger{background:#b91c1c}\
button.small{padding:.25rem .7rem;font-size:.9rem}\
button:disabled{background:#9ca3af;color:#fff;border-color:#9ca3af;cursor:not-allowed}\
.actions{display:flex;flex-wrap:wrap;gap:.6rem;margin:.8rem 0}\
.badge{display:inline-block;padding:.05rem .5rem;border-radius:999px;font-size:.8rem;font-weight:600}\
.ok{background:#dcfce7;color:#14532d}.off{background:#fee2e2;color:#7f1d1d}.warn{background:#fef3c7;color:#713f12}\
code{font-size:.85rem;word-break:break-all}code.nowrap{word-break:normal;white-space:nowrap}\
#status{min-height:1.4rem;font-weight:600}\
#user[hidden]{display:none}dl{display:grid;grid-template-columns:max-content 1fr;gap:.3rem 1rem}dt{color:#555}dd{margin:0}";

/// `/.portcullis/admin`: the shell of the admin page; its script (`admin.js`, through the
/// browser client) fills it. `me` is the administrator's own id (the script greys out
/// deactivating yourself; the API refuses it anyway).
pub fn admin_page(me: &str) -> String {
    layout_with(
        "Portcullis administration",
        ADMIN_CSS,
        &format!(
            "<header><h1>Administration</h1>\
<p class=\"muted\">Users, their sessions and the audit log. <a href=\"/api/logout\">Sign out</a></p></header>\
<p id=\"status\" role=\"status\" aria-live=\"polite\"></p>\
<main id=\"admin\" data-me=\"{me}\">\
<section aria-labelledby=\"users-h\"><h2 id=\"users-h\">Users</h2>\
<form id=\"search\" class=\"filters\" role=\"search\">\
<label>Search by email, name, username or subject<input id=\"q\" name=\"q\" type=\"search\" maxlength=\"256\" autocomplete=\"off\"></label>\
<button type=\"submit\">Search</button></form>\
<table id=\"users\"><caption class=\"muted\">Users who have signed in</caption><thead><tr><th scope=\"col\">Name</th><th scope=\"col\">Email</th><th scope=\"col\">Username</th><th scope=\"col\">Roles</th><th scope=\"col\">State</th><th scope=\"col\">Last sign-in</th><th scope=\"col\"><span class=\"muted\">Action</span></th></tr></thead><tbody></tbody></table>\
<p><button id=\"users-more\" class=\"secondary small\" type=\"button\" hidden>More users</button></p></section>\
<section id=\"user\" aria-labelledby=\"user-h\" hidden><h2 id=\"user-h\" tabindex=\"-1\">User</h2>\
<dl id=\"user-facts\"></dl>\
<div class=\"actions\"><button id=\"deactivate\" class=\"danger\" type=\"button\">Deactivate</button>\
<button id=\"enable\" type=\"button\">Re-enable</button>\
<button id=\"revoke\" class=\"secondary\" type=\"button\">End all sessions</button>\
<button id=\"user-audit\" class=\"secondary\" type=\"button\">Show their audit events</button></div>\
<table id=\"sessions\"><caption class=\"muted\">Newest sessions</caption><thead><tr><th scope=\"col\">Session</th><th scope=\"col\">Started</th><th scope=\"col\">Ends</th><th scope=\"col\">State</th></tr></thead><tbody></tbody></table></section>\
<section aria-labelledby=\"audit-h\"><h2 id=\"audit-h\">Audit log</h2>\
<form id=\"audit-filters\" class=\"filters\">\
<label>Action<select name=\"action\"><option value=\"\">Any</option><option value=\"auth.\">Sign-in and sign-out</option><option value=\"auth.sign_in\">Sign-ins</option><option value=\"auth.failure\">Failed sign-ins</option><option value=\"auth.logout\">Sign-outs</option><option value=\"auth.backchannel_logout\">Sign-outs by the identity provider</option><option value=\"admin.\">Administrator actions</option></select></label>\
<label>Outcome<select name=\"outcome\"><option value=\"\">Any</option><option value=\"ok\">ok</option><option value=\"refused\">refused</option><option value=\"failed\">failed</option></select></label>\
<label>Actor (user id)<input name=\"actor\" maxlength=\"256\" autocomplete=\"off\"></label>\
<label>Subject (user id)<input name=\"subject\" maxlength=\"256\" autocomplete=\"off\"></label>\
<label>From<input name=\"since\" type=\"datetime-local\"></label>\
<label>Until<input name=\"until\" type=\"datetime-local\"></label>\
<button type=\"submit\">Filter</button><button id=\"audit-clear\" class=\"secondary\" type=\"reset\">Clear</button></form>\
<table id=\"audit\"><caption class=\"muted\">Newest first; times in your browser's time zone</caption><thead><tr><th scope=\"col\">When</th><th scope=\"col\">Action</th><th scope=\"col\">Outcome</th><th scope=\"col\">Actor</th><th scope=\"col\">Subject</th><th scope=\"col\">From</th><th scope=\"col\">Detail</th></tr></thead><tbody></tbody></table>\
<p><button id=\"audit-more\" class=\"secondary small\" type=\"button\" hidden>Older events</button></p></section>\
</main>\
<noscript><p>The admin page needs JavaScript: every request is signed by a key only this browser holds.</p></noscript>\
<script type=\"module\" src=\"/.portcullis/admin.js\"></script>",
            me = html_escape::encode_double_quoted_attribute(me)
        ),
    )
}

/// `/.portcullis/account`: the person's API tokens (`account.js` lists, creates and revokes
/// them through the JSON API). `who` is IdP data, so escaped.
pub fn account_page(who: &str, public_origin: &str, user_code: Option<&str>) -> String {
    layout(
        "API tokens",
        &format!(
            "<style>\
label{{display:block;margin:.8rem 0 .2rem;font-weight:600}}\
input,select{{font-size:1rem;padding:.4rem;border:1px solid #888;border-radius:4px;max-width:100%}}\
input:focus-visible,select:focus-visible{{outline:3px solid #0b5cad;outline-offset:1px}}\
table{{border-collapse:collapse;width:100%;margin-top:.5rem}}th,td{{text-align:left;padding:.4rem .3rem;border-bottom:1px solid #ddd;font-size:.95rem}}\
button.secondary{{background:#fff;color:#1d4ed8;border:1px solid #1d4ed8;padding:.3rem .8rem;font-size:.9rem}}#device-deny{{padding:.5rem 1.2rem;font-size:1rem}}\
.new{{background:#f1f6ff;border:1px solid #9bb8e8;border-radius:6px;padding:1rem;margin:1rem 0}}\
.new input{{width:100%;font-family:ui-monospace,monospace;font-size:.9rem;line-height:1.6;padding:.5rem .4rem;box-sizing:border-box}}\
.error{{color:#a40000}}code{{background:#f4f4f4;padding:.1rem .3rem;border-radius:3px}}\
.sr-only{{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}}</style>\
<h1>API tokens</h1>\
<p>Signed in as <strong>{who}</strong>. An API token lets the <code>portcullis</code> command-line tool and your scripts act as you. Treat it like a password.</p>\
<h2>Create a token</h2>\
<form id=\"create\"><label for=\"token-name\">Name</label>\
<input id=\"token-name\" name=\"name\" required maxlength=\"64\" autocomplete=\"off\" aria-describedby=\"name-help\">\
<p id=\"name-help\" class=\"muted\">For example the machine or script that will use it.</p>\
<label for=\"token-expiry\">Expires</label>\
<select id=\"token-expiry\" name=\"expires_in_days\"><option value=\"30\">in 30 days</option><option value=\"90\" selected>in 90 days</option><option value=\"365\">in one year</option><option value=\"\">never</option></select>\
<p><button type=\"submit\">Create token</button></p></form>\
<div id=\"created\" class=\"new\" hidden tabindex=\"-1\" aria-labelledby=\"created-title\">\
<h3 id=\"created-title\">Your new token</h3>\
<p>Copy it now: it is shown only once. Then run <code>portcullis login --url {origin}</code> and paste it.</p>\
<label for=\"token-value\">Token</label><input id=\"token-value\" readonly>\
<p><button id=\"copy\" type=\"button\">Copy to clipboard</button> <span id=\"copy-status\" role=\"status\" aria-live=\"polite\"></span></p></div>\
<p id=\"status\" role=\"status\" aria-live=\"polite\"></p>\
<h2>Your tokens</h2>\
<p id=\"empty\" hidden>You have no active tokens.</p>\
<table id=\"tokens\" hidden><caption class=\"sr-only\">Your API tokens</caption>\
<thead><tr><th scope=\"col\">Name</th><th scope=\"col\">Id</th><th scope=\"col\">Created</th><th scope=\"col\">Expires</th><th scope=\"col\">Last used</th><th scope=\"col\"><span class=\"sr-only\">Actions</span></th></tr></thead>\
<tbody></tbody></table>\
<h2 id=\"device-title\">Sign in a device</h2>\
<p>Ran <code>portcullis login --device</code> on a machine without a browser? Enter the code it shows.</p>\
<form id=\"device\" aria-labelledby=\"device-title\"><label for=\"user-code\">Code from the terminal</label>\
<input id=\"user-code\" name=\"user_code\" required maxlength=\"16\" autocomplete=\"off\" autocapitalize=\"characters\" spellcheck=\"false\" placeholder=\"BCDF-GHJK\" value=\"{code}\">\
<p><button type=\"submit\">Continue</button></p></form>\
<div id=\"device-request\" class=\"new\" hidden tabindex=\"-1\" aria-labelledby=\"device-request-title\">\
<h3 id=\"device-request-title\">Approve this sign-in?</h3>\
<p>The command-line tool on <strong id=\"device-machine\"></strong> (from address <span id=\"device-ip\"></span>, <span id=\"device-when\"></span>) asks for an API token named <strong id=\"device-token\"></strong> that <span id=\"device-expiry\"></span>.</p>\
<p><strong>Only approve if you started this sign-in yourself, just now.</strong> Never approve a code someone else sent you.</p>\
<p><button id=\"device-approve\" type=\"button\">Approve</button> <button id=\"device-deny\" type=\"button\" class=\"secondary\">Deny</button></p></div>\
<p id=\"device-status\" role=\"status\" aria-live=\"polite\"></p>\
<noscript><p>This page needs JavaScript.</p></noscript>\
<p><a href=\"/\">Back to the application</a> · <a href=\"/api/logout\">Sign out</a></p>\
<script type=\"module\" src=\"/.portcullis/account.js\"></script>",
            who = html_escape::encode_text(who),
            origin = html_escape::encode_text(public_origin),
            code = html_escape::encode_double_quoted_attribute(user_code.unwrap_or("")),
        ),
    )
}

/// What the consent page of a command-line sign-in shows (every value is escaped).
pub struct CliConsent<'a> {
    pub who: &'a str,
    pub machine: &'a str,
    pub token_name: &'a str,
    pub token_days: Option<i64>,
    pub redirect_uri: &'a str,
    pub state: &'a str,
    pub code_challenge: &'a str,
}

/// `GET /.portcullis/cli-login`: the person approves (or denies) an API token for the
/// command-line tool on a named machine. Its script posts the request back with the answer;
/// the server checks it all again.
pub fn cli_consent_page(c: &CliConsent<'_>) -> String {
    let attr = |v: &str| html_escape::encode_double_quoted_attribute(v).into_owned();
    let text = |v: &str| html_escape::encode_text(v).into_owned();
    let expiry = match c.token_days {
        Some(d) => format!("expires in {d} days"),
        None => "does not expire".into(),
    };
    layout_with(
        "Sign in the command-line tool",
        ".new{background:#f1f6ff;border:1px solid #9bb8e8;border-radius:6px;padding:1rem;margin:1rem 0}\
button.secondary{background:#fff;color:#1d4ed8;border:1px solid #1d4ed8}\
code{background:#f4f4f4;padding:.1rem .3rem;border-radius:3px;word-break:break-all}.error{color:#a40000}",
        &format!(
            "<h1>Sign in the command-line tool</h1>\
<p>Signed in as <strong>{who}</strong>.</p>\
<div class=\"new\"><p>The <code>portcullis</code> command-line tool on <strong id=\"machine\">{machine}</strong> asks to act as you. If you approve, it receives an API token named <strong>{token}</strong> that {expiry}, at <code>{redirect}</code> on that machine.</p>\
<p><strong>Only approve if you just ran <code>portcullis login --browser</code> there yourself.</strong> You can revoke the token at any time on your <a href=\"/.portcullis/account\">account page</a>.</p></div>\
<form id=\"consent\" data-redirect-uri=\"{a_redirect}\" data-state=\"{a_state}\" data-code-challenge=\"{a_challenge}\" data-machine=\"{a_machine}\" data-expires-in-days=\"{a_days}\">\
<p><button id=\"approve\" type=\"submit\">Approve</button> <button id=\"deny\" type=\"button\" class=\"secondary\">Deny</button></p></form>\
<p id=\"status\" role=\"status\" aria-live=\"polite\"></p>\
<noscript><p>This page needs JavaScript.</p></noscript>\
<script type=\"module\" src=\"/.portcullis/cli-login.js\"></script>",
            who = text(c.who),
            machine = text(c.machine),
            token = text(c.token_name),
            redirect = text(c.redirect_uri),
            a_redirect = attr(c.redirect_uri),
            a_state = attr(c.state),
            a_challenge = attr(c.code_challenge),
            a_machine = attr(c.machine),
            a_days = c.token_days.map(|d| d.to_string()).unwrap_or_default(),
        ),
    )
}

/// A temporary failure on a page the person asked for: "Try again" reloads that same page
/// (not `/`), so nothing they were doing is lost.
pub fn retry_page(status: StatusCode, message: &str) -> String {
    status_page(status, message, "", "Try again")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_out_page_posts_to_logout() {
        let html = sign_out_page(None, false);
        assert!(html.starts_with("<!doctype html><html lang=\"en\">"));
        assert!(html.contains("<title>Sign out</title>"));
        assert!(html.contains("<h1>Sign out</h1>"));
        assert!(html.contains(
            "<form id=\"sign-out\" method=\"post\" action=\"/api/logout\" data-done=\"/.portcullis/signed-out\"><button type=\"submit\">Sign out</button></form>"
        ));
        assert!(!html.contains("<script"));
        assert!(sign_out_page(None, true).contains("src=\"/.portcullis/sign-out.js\""));
        // The same look as the other pages.
        assert!(html.contains("<p class=\"muted\">Portcullis</p>"));
    }
}
