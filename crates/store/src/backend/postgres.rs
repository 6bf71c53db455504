//! PostgreSQL: several replicas share one database. A change is announced with
//! `pg_notify` inside its transaction (delivered at commit to every replica's `LISTEN`); the
//! follower's catch-up query by cursor makes the feed complete after a lost connection.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions, PgRow};
use tokio::sync::Notify;

/// The NOTIFY channel of the change feed.
pub const CHANNEL: &str = "portcullis_changes";

/// The PostgreSQL backend.
pub struct PgStore {
    pool: PgPool,
    wake: Arc<Notify>,
    proofs: super::ProofBudget,
    listener: tokio::task::JoinHandle<()>,
}

impl Drop for PgStore {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

impl PgStore {
    /// Connect, apply migrations, and start listening for changes.
    pub async fn open(url: &str) -> Result<PgStore, StoreError> {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(StoreError::Url(
                "expected postgres:// or postgresql://".into(),
            ));
        }
        let opts: PgConnectOptions = url.parse()?;
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(opts)
            .await?;
        sqlx::migrate!("migrations/postgres").run(&pool).await?;
        warn_without_search_indexes(&pool).await?;
        let wake = Arc::new(Notify::new());
        let mut listener = PgListener::connect_with(&pool).await?;
        listener.listen(CHANNEL).await?;
        let listener = tokio::spawn(listen(listener, wake.clone()));
        Ok(PgStore {
            pool,
            wake,
            proofs: super::ProofBudget::default(),
            listener,
        })
    }

    /// Start a write transaction (SQLite's needs `BEGIN IMMEDIATE`; PostgreSQL's row locks
    /// need nothing special).
    async fn write_tx(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        self.pool.begin().await
    }

    /// Nothing extra: the trigram GIN indexes (migration 0010) serve the search's
    /// `lower(col) LIKE` tests themselves, and PostgreSQL's planner chooses between them and
    /// reading in id order from its statistics.
    async fn search_index_query(&self, _text: &str) -> Result<Option<String>, StoreError> {
        Ok(None)
    }

    fn search_candidates(_p: &str) -> String {
        String::new()
    }

    async fn announce(
        &self,
        t: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    ) -> Result<(), StoreError> {
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(CHANNEL)
            .execute(&mut **t)
            .await?;
        Ok(())
    }
}

/// The trigram indexes migration 0010 creates when it may install pg_trgm.
const SEARCH_INDEXES: [&str; 4] = [
    "users_email_trgm",
    "users_name_trgm",
    "users_username_trgm",
    "users_subject_trgm",
];

/// Migration 0010 goes on without the search indexes when pg_trgm cannot be installed (the
/// gateway works, the admin user search scans): say so at every start, with the fix.
async fn warn_without_search_indexes(pool: &PgPool) -> Result<(), StoreError> {
    let found: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_indexes WHERE schemaname = current_schema() AND tablename = 'users' \
         AND indexname = ANY($1)",
    )
    .bind(SEARCH_INDEXES)
    .fetch_one(pool)
    .await?;
    if found < SEARCH_INDEXES.len() as i64 {
        tracing::warn!(
            "the admin user search has no trigram indexes (the pg_trgm extension could not be \
             installed), so each search reads every user; to add them, see the README: \
             \"The admin user search uses the pg_trgm extension\""
        );
    }
    Ok(())
}

/// Wake followers on every notification; after a lost connection (notifications sent
/// meanwhile are gone) wake them too, so they catch up by cursor.
async fn listen(mut listener: PgListener, wake: Arc<Notify>) {
    loop {
        match listener.recv().await {
            Ok(_) => wake.notify_waiters(),
            Err(e) => {
                tracing::warn!(error = %e, "change feed: lost the PostgreSQL LISTEN connection; reconnecting");
                wake.notify_waiters();
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

super::sql_backend!(PgStore, sqlx::Postgres, PgRow);
super::api_tokens::api_token_backend!(PgStore, sqlx::Postgres, sqlx::postgres::PgRow);
super::cli_grants::cli_grant_backend!(PgStore, sqlx::Postgres, sqlx::postgres::PgRow);
