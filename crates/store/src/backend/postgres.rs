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
    /// Whether the admin user search's trigram indexes exist (checked at start).
    search_indexed: bool,
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
        let search_indexed = search_indexes_present(&pool).await?;
        let wake = Arc::new(Notify::new());
        let mut listener = PgListener::connect_with(&pool).await?;
        listener.listen(CHANNEL).await?;
        let listener = tokio::spawn(listen(listener, wake.clone()));
        Ok(PgStore {
            pool,
            wake,
            proofs: super::ProofBudget::default(),
            listener,
            search_indexed,
        })
    }

    /// Start a write transaction (SQLite's needs `BEGIN IMMEDIATE`; PostgreSQL's row locks
    /// need nothing special).
    async fn write_tx(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        self.pool.begin().await
    }

    /// How to serve a search for `text` (already [`super::search_text`]): through the trigram
    /// GIN indexes (migration 0010), which serve the LIKE tests themselves, when a probe finds
    /// fewer than [`super::SEARCH_INDEX_MAX_CANDIDATES`] matches; in id order under 3
    /// characters (pg_trgm would read its whole index), for a common text, or without the
    /// indexes (the probe would then read every user too).
    async fn search_plan(&self, text: &str) -> Result<super::SearchPlan, StoreError> {
        if !self.search_indexed || text.chars().count() < 3 {
            return Ok(super::SearchPlan::IdOrder);
        }
        // Unnamed (not cached): planned for this text, so a rare one is looked up in the
        // indexes and a common one stops after the limit.
        let found: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM (SELECT 1 FROM users WHERE {} LIMIT $2) t",
            super::search_like("$1")
        )))
        .persistent(false)
        .bind(super::contains_pattern(text))
        .bind(super::SEARCH_INDEX_MAX_CANDIDATES)
        .fetch_one(&self.pool)
        .await?;
        Ok(if found < super::SEARCH_INDEX_MAX_CANDIDATES {
            super::SearchPlan::Index { narrow: None }
        } else {
            super::SearchPlan::IdOrder
        })
    }

    /// No extra condition: the indexes serve the LIKE tests.
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

/// Whether the search's trigram indexes exist. Migration 0010 goes on without them when
/// pg_trgm cannot be installed (the gateway works, the admin user search reads every user):
/// say so at every start, with the fix.
async fn search_indexes_present(pool: &PgPool) -> Result<bool, StoreError> {
    let found: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_indexes WHERE schemaname = current_schema() AND tablename = 'users' \
         AND indexname = ANY($1)",
    )
    .bind(SEARCH_INDEXES)
    .fetch_one(pool)
    .await?;
    let present = found == SEARCH_INDEXES.len() as i64;
    if !present {
        tracing::warn!(
            "the admin user search has no trigram indexes (the pg_trgm extension could not be \
             installed), so each search reads every user; to add them, see the README: \
             \"The admin user search uses the pg_trgm extension\""
        );
    }
    Ok(present)
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
