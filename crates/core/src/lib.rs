//! Portcullis core: everything that decides, nothing that does I/O.
//!
//! The HTTP shell (`portcullis-gateway`) and the store (`portcullis-store`) call into these
//! modules; keeping them free of sockets and databases is what lets every security rule be
//! unit-tested with hostile input.

pub mod apitoken;
pub mod assertion;
pub mod authz;
pub mod claim_sources;
pub mod claims;
pub mod cli_login;
pub mod config;
pub mod doctor;
pub mod forward_auth;
pub mod headers;
pub mod jose;
pub mod oidc;
pub mod redirect;
pub mod session;
pub mod time;
