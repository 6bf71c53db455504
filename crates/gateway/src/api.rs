//! Portcullis's own JSON API — the session API and the admin API — and its OpenAPI 3.1
//! document, served at [`OPENAPI_PATH`].
//!
//! Every route here is registered with `utoipa_axum::routes!`, which takes the method and path
//! from the handler's `#[utoipa::path]` description: a route and its documentation are one
//! registration, so the document cannot leave a route out or describe one that is not there.
//! The router (`app::router`) adds no `/api/` route of its own.

use std::sync::OnceLock;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::routes::{admin, api_tokens, backchannel, cli_login, forward_auth, login, session};
use crate::state::AppState;

/// Where the document is served.
pub const OPENAPI_PATH: &str = "/api/openapi.json";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Portcullis",
        description = "Portcullis's own JSON API: the session of the signed-in person, sign-in and sign-out, back-channel logout from the identity provider, the person's API tokens, and the admin API. Scripts and the command-line client call `/api/session` and the application with an API token (`Authorization: Bearer pcs_…`).\n\nBrowsers call it through `/.portcullis/client.js`, which adds what every call needs: the session cookies, a DPoP proof (while DPoP is on) and, on changes, the `X-CSRF-Token` header copied from the readable `csrf_token` cookie."
    ),
    tags(
        (name = "session", description = "Signing in and out, and who is signed in"),
        (name = "admin", description = "Users, their sessions and the audit log; for administrators"),
        (name = "tokens", description = "The signed-in person's API tokens (for the command-line client and scripts)"),
        (name = "forward-auth", description = "The pre-check a reverse proxy (nginx, Caddy, Traefik, Envoy) makes before forwarding a request; only from the configured trusted proxies"),
        (name = "cli", description = "Signing the command-line tool in through the browser: a loopback redirect with PKCE (RFC 8252) or a device code (RFC 8628), each ending in a new API token"),
    ),
    modifiers(&Security)
)]
struct ApiDoc;

/// The credentials the operations name in `security`.
struct Security;

impl Modify for Security {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let c = doc.components.get_or_insert_with(Default::default);
        let key = |place: ApiKey| SecurityScheme::ApiKey(place);
        c.add_security_scheme(
            "session",
            key(ApiKey::Cookie(ApiKeyValue::with_description(
                "__Host-session",
                "The session cookie set at sign-in (`portcullis_session` where the public URL is plain http); it comes with its fingerprint cookie.",
            ))),
        );
        c.add_security_scheme(
            "dpop",
            key(ApiKey::Header(ApiKeyValue::with_description(
                "DPoP",
                "A DPoP proof (RFC 9449) from the key the session is bound to; required while DPoP is on.",
            ))),
        );
        c.add_security_scheme(
            "csrf",
            key(ApiKey::Header(ApiKeyValue::with_description(
                "X-CSRF-Token",
                "The value of the readable `csrf_token` cookie, on every change.",
            ))),
        );
    }
}

/// The API's routes and their document.
fn parts() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let admin_api = OpenApiRouter::new()
        .routes(routes!(admin::list_users))
        .routes(routes!(admin::get_user))
        .routes(routes!(admin::deactivate))
        .routes(routes!(admin::enable))
        .routes(routes!(admin::revoke_sessions))
        .routes(routes!(admin::audit_events))
        // Portcullis's own prefix: an unknown admin path is a 404 here, never the app's.
        .fallback(admin::not_found);
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(session::session))
        .routes(routes!(login::login, login::start))
        .routes(routes!(session::logout_page, session::logout))
        .routes(routes!(backchannel::backchannel_logout))
        .routes(routes!(api_tokens::list, api_tokens::create))
        .routes(routes!(api_tokens::revoke))
        .routes(routes!(cli_login::authorize))
        .routes(routes!(cli_login::token))
        .routes(routes!(cli_login::device_start))
        .routes(routes!(cli_login::device_lookup))
        .routes(routes!(cli_login::device_decide))
        .routes(routes!(forward_auth::forward_auth))
        .routes(routes!(openapi_json))
        .nest("/api/admin", admin_api)
        .split_for_parts()
}

/// The API's routes, for `app::router`.
pub fn router() -> Router<AppState> {
    parts().0
}

/// The OpenAPI document as served.
pub fn document() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        parts()
            .1
            .to_pretty_json()
            .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    })
}

/// This document.
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    tag = "session",
    summary = "This OpenAPI document",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API", content_type = "application/json"))
)]
pub async fn openapi_json() -> Response {
    let mut resp = document().into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_document_is_openapi_3_1_with_the_session_and_admin_api() {
        let v: serde_json::Value = serde_json::from_str(document()).unwrap();
        assert_eq!(v["openapi"], "3.1.0");
        for (path, method) in [
            ("/api/session", "get"),
            ("/api/login", "post"),
            ("/api/logout", "post"),
            ("/api/backchannel-logout", "post"),
            ("/api/admin/users", "get"),
            ("/api/admin/users/{id}", "get"),
            ("/api/admin/users/{id}/deactivate", "post"),
            ("/api/admin/audit", "get"),
        ] {
            assert!(v["paths"][path][method].is_object(), "{method} {path}");
        }
        assert!(v["components"]["schemas"]["UserView"].is_object());
        assert!(v["components"]["securitySchemes"]["dpop"].is_object());
    }
}
