//! The browser client Portcullis serves to pages (its own and the app's): a small ES module
//! with no dependencies, embedded in the binary (deployments are often air-gapped).

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

const FILES: [(&str, &str); 6] = [
    ("account.js", include_str!("../assets/account.js")),
    ("cli-login.js", include_str!("../assets/cli-login.js")),
    ("client.js", include_str!("../assets/client.js")),
    ("admin.js", include_str!("../assets/admin.js")),
    ("sign-in.js", include_str!("../assets/sign-in.js")),
    ("sign-out.js", include_str!("../assets/sign-out.js")),
];

/// `GET /.portcullis/{file}`.
pub async fn script(Path(file): Path<String>) -> Response {
    let Some((_, body)) = FILES.iter().find(|(name, _)| *name == file) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let mut resp = (StatusCode::OK, *body).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/javascript; charset=utf-8"),
    );
    // Revalidated on every load: a new release's client reaches browsers at once.
    // (A frontend on a configured origin may import it: the CORS layer grants that origin.)
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}
