//! OpenID Connect relying-party logic (pure; no I/O).

pub mod id_token;
pub mod userinfo;
