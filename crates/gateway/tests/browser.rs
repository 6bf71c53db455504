//! A person signs in with a real browser (headless Debian Chromium) through the real OpenID
//! Provider and reaches the app behind Portcullis.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use serde_json::json;

/// Open a protected page, get sent to the OP's login form, sign in, land back on the page;
/// the browser keeps the session cookie as R-CK says and page scripts cannot read it.
#[tokio::test]
async fn browser_sign_in_reaches_the_app_and_logout_ends_it() {
    let env = TestEnv::start().await;
    let Some(seen) = run_browser(json!({
        "url": format!("{}/welcome?x=1", env.base),
        "user": ALICE.0,
        "password": ALICE.1,
        "user_field": "input[name=login]",
        "password_field": "input[name=password]",
        "submit": "button[type=submit]",
        "logout": format!("{}/api/logout", env.base),
        "screenshot_logout": screenshot("sign-out-page.png"),
        "screenshot_signed_out": screenshot("signed-out-page.png"),
    }))
    .await
    else {
        return;
    };
    assert!(
        seen["login_page"]
            .as_str()
            .unwrap()
            .starts_with(&env.op.issuer),
        "{seen}"
    );
    assert_eq!(seen["final_url"], format!("{}/welcome?x=1", env.base));
    assert_eq!(seen["body"], "upstream saw /welcome");
    let doc_cookie = seen["document_cookie"].as_str().unwrap();
    assert!(
        !doc_cookie.contains("__Host-session")
            && !doc_cookie.contains("__Host-fp")
            && !doc_cookie.contains("__Host-oidc_tx"),
        "{doc_cookie}"
    );
    // The one cookie the page may read: the CSRF token it echoes in X-CSRF-Token.
    assert!(doc_cookie.starts_with("csrf_token="), "{doc_cookie}");
    let cookies = seen["cookies"].as_array().unwrap();
    let session = cookies
        .iter()
        .find(|c| c["name"] == "__Host-session")
        .expect("session cookie kept");
    assert_eq!(session["secure"], true);
    assert_eq!(session["httpOnly"], true);
    assert_eq!(session["sameSite"], "Lax");
    assert_eq!(session["path"], "/");
    assert_eq!(seen["session_status"], 200);
    assert_eq!(seen["session"]["user"]["email"], "alice@example.com");
    assert_eq!(seen["logout_page_title"], "Sign out");
    assert!(
        seen["after_logout_body"]
            .as_str()
            .unwrap()
            .contains("You are signed out"),
        "{seen}"
    );
    assert_eq!(seen["session_status_after_logout"], 401);
    let got = env
        .upstream
        .requests()
        .into_iter()
        .find(|r| r.uri == "/welcome?x=1")
        .unwrap();
    assert_eq!(
        got.one("x-forwarded-user").as_deref(),
        Some("alice-sub-0001")
    );
    assert_eq!(
        got.one("x-forwarded-groups").as_deref(),
        Some("admins,devs")
    );
    assert!(
        got.one("cookie")
            .is_none_or(|c| !c.contains("__Host-session"))
    );
}

/// Where the browser tests leave screenshots to look at (target/screenshots).
fn screenshot(name: &str) -> String {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name).display().to_string()
}
