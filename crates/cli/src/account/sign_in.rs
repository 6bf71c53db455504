//! `portcullis login --browser` and `--device`: the person signs in through their IdP in a
//! browser, approves, and the CLI receives a new API token.
//!
//! - Browser (RFC 8252 §7.3 + RFC 7636): a listener on `127.0.0.1` with a port the system
//!   picks, a fresh PKCE verifier and `state` per attempt; the code arriving at the listener
//!   is redeemed with the verifier, so a code seen by another local program is useless.
//! - Device (RFC 8628): the user code is shown here and typed on the account page of any
//!   browser; the CLI polls at the server's interval, slowing down when told to.

use std::time::Duration;

use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse};
use portcullis_core::oidc::pkce;
use reqwest::StatusCode;
use serde_json::Value;
use tokio::sync::mpsc;

use super::api::{Api, Failure};
use super::{Error, Exit};

/// How long the CLI waits for the person in the browser.
const BROWSER_WAIT: Duration = Duration::from_secs(300);

/// What the server answered with a token.
pub struct Minted {
    pub token: String,
    pub name: String,
}

/// The machine name shown on the consent page: this computer's host name, cut to what the
/// server accepts.
pub fn machine_name() -> String {
    let host = gethostname::gethostname().to_string_lossy().trim().to_string();
    let host: String = host
        .chars()
        .filter(|c| !c.is_control())
        .take(portcullis_core::cli_login::MAX_MACHINE_CHARS)
        .collect();
    if host.is_empty() {
        "unnamed computer".into()
    } else {
        host
    }
}

/// Open `url` in the person's browser: `$BROWSER` if set (as many tools honour), else the
/// desktop's opener. Failing is fine: the URL is printed too.
fn open_browser(url: &str) {
    let cmd = match std::env::var("BROWSER").ok().filter(|b| !b.is_empty()) {
        Some(b) => b,
        None if cfg!(target_os = "macos") => "open".into(),
        None => "xdg-open".into(),
    };
    let _ = std::process::Command::new(cmd)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
}

/// What the loopback listener received: the code, or the server's error (denied).
enum Arrived {
    Code(String),
    Error(String),
}

#[derive(serde::Deserialize)]
struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

#[derive(Clone)]
struct Listener {
    state: String,
    tx: mpsc::Sender<Arrived>,
}

/// The small page the browser shows after the redirect to this machine.
fn page(title: &str, text: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\
<style>body{{font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;color:#222}}h1{{font-size:1.4rem}}.muted{{color:#666;font-size:.9rem}}</style>\
</head><body><h1>{title}</h1><p>{text}</p><p class=\"muted\">Portcullis</p></body></html>"
    ))
}

async fn callback(State(l): State<Listener>, Query(q): Query<Callback>) -> impl IntoResponse {
    // RFC 6749 §10.12: only the answer to our own request counts; anything else (a stale tab,
    // another page probing the port) is refused and the CLI keeps waiting.
    if q.state.as_deref() != Some(l.state.as_str()) {
        return (
            axum::http::StatusCode::BAD_REQUEST,
            page(
                "Not this sign-in",
                "This answer does not belong to the sign-in the command-line tool is waiting for.",
            ),
        );
    }
    let (arrived, shown) = match (q.code, q.error) {
        (Some(code), None) => (
            Arrived::Code(code),
            page(
                "Signed in",
                "The command-line tool is signed in. You can close this window and return to the terminal.",
            ),
        ),
        (_, Some(e)) => (
            Arrived::Error(e),
            page(
                "Not signed in",
                "You denied the sign-in. The command-line tool stops; you can close this window.",
            ),
        ),
        (None, None) => (
            Arrived::Error("invalid_request".into()),
            page("Not signed in", "The answer carried no code."),
        ),
    };
    let _ = l.tx.try_send(arrived);
    (axum::http::StatusCode::OK, shown)
}

/// The loopback flow. Returns the new token.
pub async fn by_browser(api: &Api, days: Option<i64>) -> Result<Minted, Error> {
    let random = |what: &str| {
        pkce::random_token()
            .map_err(|e| Error::new(Exit::Other, format!("cannot make the {what}: {e}")))
    };
    let verifier = random("PKCE verifier")?;
    let state = random("state")?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .map_err(|e| {
            Error::new(
                Exit::Other,
                format!("cannot listen on 127.0.0.1 for the browser's answer: {e}"),
            )
        })?;
    let port = listener
        .local_addr()
        .map_err(|e| Error::new(Exit::Other, e.to_string()))?
        .port();
    let redirect_uri = format!("http://127.0.0.1:{port}/callback");
    let (tx, mut rx) = mpsc::channel(1);
    let app = axum::Router::new()
        .route("/callback", axum::routing::get(callback))
        .with_state(Listener {
            state: state.clone(),
            tx,
        });
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });

    let mut url = api.base().clone();
    url.set_path(portcullis_gateway::routes::cli_login::CONSENT_PATH);
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("redirect_uri", &redirect_uri)
            .append_pair("state", &state)
            .append_pair("code_challenge", &pkce::pkce_challenge(&verifier))
            .append_pair("code_challenge_method", pkce::CODE_CHALLENGE_METHOD)
            .append_pair("machine", &machine_name());
        if let Some(d) = days {
            q.append_pair("expires_in_days", &d.to_string());
        }
    }
    eprintln!("Opening your browser to sign in. If it does not open, visit:");
    eprintln!("  {url}");
    open_browser(url.as_str());

    let arrived = tokio::time::timeout(BROWSER_WAIT, rx.recv()).await;
    // The listener has done its job (or timed out): close the port.
    server.abort();
    let code = match arrived {
        Ok(Some(Arrived::Code(c))) => c,
        Ok(Some(Arrived::Error(e))) if e == "access_denied" => {
            return Err(Error::new(
                Exit::Refused,
                "the sign-in was denied in the browser",
            ));
        }
        Ok(Some(Arrived::Error(e))) => {
            return Err(Error::new(
                Exit::Other,
                format!("the browser sign-in failed: {e}"),
            ));
        }
        Ok(None) | Err(_) => {
            return Err(Error::new(
                Exit::Other,
                "no answer from the browser within 5 minutes: run `portcullis login --browser` again",
            ));
        }
    };
    let (status, body) = api
        .post_form(
            "/api/cli/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("code_verifier", &verifier),
                ("redirect_uri", &redirect_uri),
            ],
        )
        .await
        .map_err(|f| f.into_error(api.base()))?;
    minted(status, &body).map_err(|why| Error::new(Exit::Refused, why))
}

/// The token in a successful answer, or the server's sentence.
fn minted(status: StatusCode, body: &Value) -> Result<Minted, String> {
    let text = |k: &str| body.get(k).and_then(Value::as_str);
    match (status, text("access_token")) {
        (StatusCode::OK, Some(t)) if portcullis_core::apitoken::parse(t).is_some() => Ok(Minted {
            token: t.to_string(),
            name: text("name").unwrap_or_default().to_string(),
        }),
        _ => Err(format!(
            "the server did not issue a token: {}",
            text("error_description")
                .or(text("error"))
                .unwrap_or("unexpected answer")
        )),
    }
}

/// The device flow. Returns the new token.
pub async fn by_device(api: &Api, days: Option<i64>) -> Result<Minted, Error> {
    let machine = machine_name();
    let days_text = days.map(|d| d.to_string());
    let mut form = vec![("machine", machine.as_str())];
    if let Some(d) = &days_text {
        form.push(("expires_in_days", d));
    }
    let (status, start) = api
        .post_form("/api/cli/device", &form)
        .await
        .map_err(|f| f.into_error(api.base()))?;
    let text = |k: &str| start.get(k).and_then(Value::as_str).map(str::to_string);
    let (Some(device_code), Some(user_code), Some(uri)) = (
        text("device_code"),
        text("user_code"),
        text("verification_uri"),
    ) else {
        return Err(Error::new(
            Exit::NotPortcullis,
            format!(
                "{} did not start a device sign-in (HTTP {}): {}",
                api.base(),
                status.as_u16(),
                text("error_description").unwrap_or_else(|| "unexpected answer".into())
            ),
        ));
    };
    let int = |k: &str, d: i64| start.get(k).and_then(Value::as_i64).unwrap_or(d);
    let mut interval = int("interval", 5).clamp(1, 60);
    let expires_in = int("expires_in", 600);
    eprintln!("To sign in, open {uri}");
    if let Some(complete) = text("verification_uri_complete") {
        eprintln!("  (or {complete})");
    }
    eprintln!("in a browser where you can sign in, and enter the code:");
    eprintln!();
    eprintln!("    {user_code}");
    eprintln!();
    eprintln!(
        "Waiting for your approval (the code is valid for {} minutes)…",
        expires_in / 60
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(expires_in.max(1) as u64);
    loop {
        tokio::time::sleep(Duration::from_secs(interval as u64)).await;
        let answer = api
            .post_form(
                "/api/cli/token",
                &[
                    ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                    ("device_code", &device_code),
                ],
            )
            .await;
        let (status, body) = match answer {
            Ok(x) => x,
            // A blip of the network or the server: keep polling until the code expires.
            Err(Failure::Unreachable(_) | Failure::Server(_))
                if tokio::time::Instant::now() < deadline =>
            {
                continue;
            }
            Err(f) => return Err(f.into_error(api.base())),
        };
        if status == StatusCode::OK {
            return minted(status, &body).map_err(|why| Error::new(Exit::Refused, why));
        }
        match body.get("error").and_then(Value::as_str).unwrap_or("") {
            "authorization_pending" => {}
            // RFC 8628 §3.5: add 5 seconds to this and every later poll.
            "slow_down" => interval = (interval + 5).min(60),
            "access_denied" => {
                return Err(Error::new(
                    Exit::Refused,
                    "the sign-in was denied on the account page",
                ));
            }
            "expired_token" => {
                return Err(Error::new(
                    Exit::Other,
                    "the code expired before it was approved: run `portcullis login --device` again",
                ));
            }
            _ => {
                return Err(Error::new(
                    Exit::Refused,
                    minted(status, &body).err().unwrap_or_default(),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_name_fits_the_server_limit() {
        let m = machine_name();
        assert!(!m.is_empty());
        assert!(portcullis_core::cli_login::check_machine(&m).is_ok(), "{m}");
    }

    #[test]
    fn only_a_real_token_counts_as_minted() {
        let ok = serde_json::json!({"access_token": format!("pcs_{}_{}", "a".repeat(12), "b".repeat(43)), "name": "n"});
        assert!(minted(StatusCode::OK, &ok).is_ok());
        let not_a_token = serde_json::json!({"access_token": "eyJhbGciOi"});
        assert!(minted(StatusCode::OK, &not_a_token).is_err());
        let refused = serde_json::json!({"error": "invalid_grant", "error_description": "the code is invalid"});
        assert_eq!(
            minted(StatusCode::BAD_REQUEST, &refused).err().unwrap_or_default(),
            "the server did not issue a token: the code is invalid"
        );
    }
}
