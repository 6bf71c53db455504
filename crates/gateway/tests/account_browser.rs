//! The account page in headless Chromium: a signed-in person creates an API token, sees its
//! plaintext once with a copy button, copies it, and revokes it; the token works as a bearer
//! token in between and is refused after. Screenshots land in target/screenshots/.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use serde_json::json;

fn screenshot(name: &str) -> String {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name).display().to_string()
}

/// R-AT-1 (shown once), R-AT-3 (revoked at once) on the account page in a real browser.
#[tokio::test]
async fn account_page_creates_shows_once_copies_and_revokes_a_token() {
    let env = TestEnv::start().await;
    let Some(seen) = run_browser(json!({
        "url": format!("{}/welcome", env.base),
        "user": ALICE.0,
        "password": ALICE.1,
        "user_field": "input[name=login]",
        "password_field": "input[name=password]",
        "submit": "button[type=submit]",
        "account": {
            "url": format!("{}/.portcullis/account", env.base),
            "name": "build server",
            "screenshot_created": screenshot("account-token-created.png"),
            "screenshot_list": screenshot("account-token-list.png"),
            "screenshot_revoked": screenshot("account-token-revoked.png"),
        },
    }))
    .await
    else {
        return;
    };
    let a = &seen["account"];
    assert_eq!(a["title"], "API tokens", "{seen}");
    assert_eq!(a["name_label"], 1, "the name field has its label");
    assert_eq!(a["expiry_label"], 1);
    let token = a["token"].as_str().unwrap();
    assert!(token.starts_with("pcs_") && token.len() == 60, "{token}");
    assert_eq!(a["copy_button"], true);
    assert_eq!(a["copy_button_text"], "Copy to clipboard");
    assert_eq!(a["focused"], "created", "focus moves to the new token");
    assert_eq!(a["copy_status"], "Copied.");
    assert_eq!(a["clipboard"], token);
    let rows = a["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert!(rows[0].as_str().unwrap().contains("build server"));
    assert!(
        !rows[0].as_str().unwrap().contains(&token[17..]),
        "the list never shows it"
    );
    assert_eq!(a["plaintext_after_reload"], false, "shown once");
    assert_eq!(a["created_hidden_after_reload"], true);
    assert!(a["confirm"].as_str().unwrap().contains("build server"));
    assert_eq!(a["revoked_status"], "Token \"build server\" revoked.");
    // Revoked: refused as a bearer token.
    let r = answer(
        program("127.0.0.1")
            .get(format!("{}/api/session", env.base))
            .header("authorization", format!("Bearer {token}")),
    )
    .await;
    assert_eq!(r.status, 401);
    assert_eq!(env.audit("api_token.revoke", 1).await.len(), 1);
}
