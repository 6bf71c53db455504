//! Embedded SQLite (bundled libsqlite3, no system library): the default, one replica.
//! Changes are announced in-process only; a second process on the same file would see them
//! through the follower's poll, but several replicas belong on PostgreSQL.

use std::str::FromStr;
use std::sync::Arc;

use sqlx::Connection;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use tokio::sync::Notify;

/// The SQLite backend.
pub struct SqliteStore {
    pool: SqlitePool,
    wake: Arc<Notify>,
    proofs: super::ProofBudget,
}

impl SqliteStore {
    /// Open (creating if needed) an SQLite file and apply migrations. `":memory:"` gives a
    /// private in-memory database (tests).
    pub async fn open(path: &str) -> Result<SqliteStore, StoreError> {
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
        let mut pool = SqlitePoolOptions::new().max_connections(if memory { 1 } else { 4 });
        if !memory {
            // A connection that comes back still counted inside a transaction is closed, not
            // pooled. After an I/O error or a full disk SQLite may roll a transaction back by
            // itself; sqlx's ROLLBACK on drop then fails, its count stays at 1, and every later
            // `BEGIN IMMEDIATE` on that connection would fail ("non-zero transaction depth"):
            // writes broken until a restart. The ping lets the connection's worker finish the
            // rollback a dropped transaction queued before the count is read. (Not for
            // `:memory:`: closing its one connection would drop the database.)
            pool = pool.after_release(|conn, _| {
                Box::pin(async move {
                    conn.ping().await?;
                    Ok(!conn.is_in_transaction())
                })
            });
        }
        let pool = pool.connect_with(opts).await?;
        sqlx::migrate!("migrations/sqlite").run(&pool).await?;
        Ok(SqliteStore {
            pool,
            wake: Arc::new(Notify::new()),
            proofs: super::ProofBudget::default(),
        })
    }

    /// Start a write transaction. `BEGIN IMMEDIATE` takes SQLite's write lock at once (waiting
    /// up to the busy timeout): a deferred transaction that reads before it writes fails with
    /// `SQLITE_BUSY_SNAPSHOT` — which no busy timeout waits out — whenever another connection
    /// wrote in between (seen with an audit insert racing a sign-in).
    async fn write_tx(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        self.pool.begin_with("BEGIN IMMEDIATE").await
    }

    /// How to serve a search for `text` (already [`super::search_text`]): from the FTS5
    /// trigram index (migration 0011) when a probe of it finds fewer than
    /// [`super::SEARCH_INDEX_MAX_CANDIDATES`] candidates; in id order under 3 characters (the
    /// trigram tokenizer matches nothing shorter) or for a common text.
    ///
    /// The index query is the whole text as one phrase, which with the trigram tokenizer means
    /// "contains it", any case; inside the quotes nothing is FTS5 syntax.
    async fn search_plan(&self, text: &str) -> Result<super::SearchPlan, StoreError> {
        if text.chars().count() < 3 {
            return Ok(super::SearchPlan::IdOrder);
        }
        let query = format!("\"{}\"", text.replace('"', "\"\""));
        let candidates: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM (SELECT rowid FROM users_search WHERE users_search MATCH $1 \
             LIMIT $2)",
        )
        .bind(&query)
        .bind(super::SEARCH_INDEX_MAX_CANDIDATES)
        .fetch_one(&self.pool)
        .await?;
        Ok(if candidates < super::SEARCH_INDEX_MAX_CANDIDATES {
            super::SearchPlan::Index {
                narrow: Some(query),
            }
        } else {
            super::SearchPlan::IdOrder
        })
    }

    /// The condition on `users` that keeps the index's candidates for the query bound as `p`.
    fn search_candidates(p: &str) -> String {
        format!(
            " AND id IN (SELECT user_id FROM users_search_keys WHERE k IN \
             (SELECT rowid FROM users_search WHERE users_search MATCH {p}))"
        )
    }

    /// Nothing to do inside the transaction: followers in this process are woken after the
    /// commit.
    async fn announce(
        &self,
        _t: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    ) -> Result<(), StoreError> {
        Ok(())
    }
}

super::sql_backend!(SqliteStore, sqlx::Sqlite, SqliteRow);
super::api_tokens::api_token_backend!(SqliteStore, sqlx::Sqlite, sqlx::sqlite::SqliteRow);
super::cli_grants::cli_grant_backend!(SqliteStore, sqlx::Sqlite, sqlx::sqlite::SqliteRow);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    /// SQLite rolling a transaction back by itself (as after a failed write to a full disk)
    /// must not leave a pooled connection that refuses every later write transaction.
    #[tokio::test]
    async fn a_transaction_sqlite_rolled_back_does_not_poison_the_pool() {
        let dir =
            std::env::temp_dir().join(format!("portcullis-sqlite-poison-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("store.db");
        let store = SqliteStore::open(path.to_str().unwrap()).await.unwrap();
        let mut tx = store.write_tx().await.unwrap();
        // The transaction ends behind sqlx's back; its ROLLBACK on drop then fails.
        sqlx::query("ROLLBACK").execute(&mut *tx).await.unwrap();
        drop(tx);
        // More write transactions than the pool has connections: each would meet the
        // poisoned one.
        for i in 0..10 {
            let mut tx = store
                .write_tx()
                .await
                .unwrap_or_else(|e| panic!("write transaction {i}: {e}"));
            sqlx::query("SELECT 1").execute(&mut *tx).await.unwrap();
            tx.commit().await.unwrap();
        }
        store.pool.close().await;
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
