//! OpenID Connect relying-party logic (pure; no I/O): discovery, the authorization request,
//! token requests, ID token, logout token and UserInfo validation.

pub mod authorize;
pub mod client_assertion;
pub mod discovery;
pub mod end_session;
pub mod id_token;
pub mod logout_token;
pub mod par;
pub mod pkce;
pub mod refresh;
pub mod token_request;
pub mod userinfo;
