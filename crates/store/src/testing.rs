//! Test support (feature `testing`): a fresh PostgreSQL database per test on the server that
//! `scripts/test` starts.
#![allow(clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicU64, Ordering};

/// The variable that names the test server (a URL whose user may `CREATE DATABASE`).
pub const POSTGRES_URL_VAR: &str = "PORTCULLIS_TEST_POSTGRES_URL";

/// Create an empty database on the test server and return its URL. Panics with a clear
/// message when no server is configured: the PostgreSQL half of the suite is not optional.
pub async fn fresh_postgres_database() -> String {
    use sqlx::Connection;
    static N: AtomicU64 = AtomicU64::new(0);
    let base = std::env::var(POSTGRES_URL_VAR).unwrap_or_else(|_| {
        panic!(
            "{POSTGRES_URL_VAR} is not set: run scripts/test (it starts a throw-away PostgreSQL) \
             or point it at a server where this user may CREATE DATABASE"
        )
    });
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let name = format!(
        "t_{}_{nanos}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let mut admin = sqlx::PgConnection::connect(&base)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the test PostgreSQL at {base}: {e}"));
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .expect("CREATE DATABASE");
    let mut url = url::Url::parse(&base).expect("test PostgreSQL URL");
    url.set_path(&name);
    url.to_string()
}
