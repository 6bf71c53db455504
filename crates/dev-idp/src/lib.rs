//! DEVELOPMENT-ONLY OpenID Provider and sample upstream app used by
//! `portcullis demo`.
//!
//! **Never use the dev IdP in production.** It keeps everything in memory,
//! generates a new RSA-2048 signing key (RS256) at every start, and lists
//! its demo users' passwords on its front page (the issuer URL) and login page.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use portcullis_dev_idp::{DevClient, DevIdp, DevIdpConfig, demo_users, serve};
//!
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:9000").await?;
//! let idp = DevIdp::new(DevIdpConfig {
//!     issuer: "http://127.0.0.1:9000".parse()?,
//!     clients: vec![DevClient {
//!         client_id: "portcullis".into(),
//!         client_secret: "demo-secret".into(),
//!         redirect_uris: vec!["http://127.0.0.1:8080/api/callback".into()],
//!         post_logout_redirect_uris: vec!["http://127.0.0.1:8080/".into()],
//!         backchannel_logout_uri: Some("http://127.0.0.1:8080/api/backchannel-logout".into()),
//!     }],
//!     users: demo_users(),
//! })?;
//! serve(listener, idp.router()).await?;
//! # Ok(()) }
//! ```

mod idp;
pub mod sample_app;

pub use idp::{
    DevClient, DevIdp, DevIdpConfig, DevIdpError, DevUser, demo_users, serve, serve_with_shutdown,
};
