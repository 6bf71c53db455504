//! Portcullis gateway: the HTTP shell around `portcullis-core`.
//!
//! Map: `app` (router and the front middleware: limits, authentication, error rendering) →
//! `routes` (login, callback, session, health, admin) and `proxy` (everything else, to the
//! upstream); `api` registers the JSON API's routes together with their OpenAPI document. `auth` answers "who is this" for every handler; `sessions` issues, verifies and
//! ends browser sessions; `dpop` checks tier-3 proofs and replays; `cors` answers for the
//! configured frontend origins; `assets` is the browser client; `assertion` signs the identity assertion for the app and serves its keys; `views` are the in-memory revocation view and user cache the store's
//! change feed keeps current; `idp` talks to the identity provider; `state` holds what
//! requests share; `error` renders every refusal; `server` accepts connections and `workers` runs them, one thread per core.

pub mod api;
pub mod app;
pub mod assertion;
pub mod assets;
pub mod audit;
pub mod auth;
pub mod cors;
pub mod dpop;
pub mod error;
pub mod idp;
pub mod limiter;
pub mod metrics;
pub mod offline;
pub mod pages;
pub mod proxy;
pub mod request_id;
pub mod routes;
pub mod server;
pub mod sessions;
pub mod state;
pub mod tokens;
pub mod views;
pub mod workers;

pub use server::{RunningGateway, bind_and_start, start, start_with_clock};
pub use state::{AppState, StartError};
