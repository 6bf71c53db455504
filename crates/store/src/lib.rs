//! Persistence: users, server-side sessions and login transactions.
//!
//! One concrete [`Store`] over an SQLite pool (bundled libsqlite3, no system library). The
//! schema is portable SQL (TEXT ids, INTEGER unix seconds) so a PostgreSQL pool can join behind
//! the same methods. Migrations are embedded from `migrations/sqlite`.

mod login_tx;
mod sessions;
mod users;

use std::str::FromStr;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

pub use login_tx::LoginTx;
pub use sessions::Session;
pub use users::User;

/// A storage failure. Request handlers map it to a 5xx/4xx without details.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

/// The store handle; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: sqlx::SqlitePool,
}

impl Store {
    /// Open (creating if needed) an SQLite file and apply migrations. `":memory:"` gives a
    /// private in-memory database (tests).
    pub async fn open_sqlite(path: &str) -> Result<Store, StoreError> {
        let memory = path == ":memory:";
        let opts = if memory {
            SqliteConnectOptions::from_str("sqlite::memory:")?
        } else {
            SqliteConnectOptions::new()
                .filename(path)
                .create_if_missing(true)
        };
        let opts = opts
            .foreign_keys(true)
            .journal_mode(if memory {
                SqliteJournalMode::Memory
            } else {
                SqliteJournalMode::Wal
            })
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(std::time::Duration::from_secs(5));
        // One connection for :memory: (each connection would be its own database).
        let pool = SqlitePoolOptions::new()
            .max_connections(if memory { 1 } else { 4 })
            .connect_with(opts)
            .await?;
        sqlx::migrate!("migrations/sqlite").run(&pool).await?;
        Ok(Store { pool })
    }

    /// Liveness of the database (used by readiness).
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
