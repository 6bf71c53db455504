//! Talking to the identity provider: HTTP client, metadata/JWKS, background loading, and the
//! code-exchange/userinfo calls of the callback.

pub mod claim_source;
pub mod client;
pub mod client_auth;
pub mod exchange;
pub mod loader;
pub mod par;
pub mod provider;
pub mod registry;

pub use client::{IdpError, IdpHttp};
pub use provider::{Metadata, Provider};
pub use registry::{Idp, Idps};
