//! Portcullis gateway: the HTTP shell around `portcullis-core`.
//!
//! Map: `app` (router and limits) → `routes` (login, callback, session, health) and `proxy`
//! (everything else, to the upstream); `auth` answers "who is this"; `idp` talks to the
//! identity provider; `state` holds what requests share; `error` renders every refusal.

pub mod app;
pub mod auth;
pub mod error;
pub mod idp;
pub mod pages;
pub mod proxy;
pub mod routes;
pub mod server;
pub mod state;

pub use server::{RunningGateway, bind_and_start, start};
pub use state::{AppState, StartError};
