//! Users: created on first sign-in, updated on every sign-in; identity `(issuer, subject)`.

use portcullis_core::claims::MappedUser;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use crate::{Store, StoreError};

/// A stored user: the mapped profile of their last sign-in plus bookkeeping.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct User {
    /// Internal id (UUIDv7 text; never the IdP's `sub`).
    pub id: String,
    /// Identity `(issuer, subject)` and the mapped claims (seed 000's fields, groups).
    #[serde(flatten)]
    pub profile: MappedUser,
    pub first_login: i64,
    pub last_login: i64,
    pub active: bool,
}

const COLUMNS: &str = "id, issuer, subject, user_id, email, name, given_name, family_name, picture, \
                       provider, username, groups_json, first_login, last_login, active";

fn from_row(r: &SqliteRow) -> Result<User, StoreError> {
    let groups_json: String = r.try_get("groups_json")?;
    let groups = serde_json::from_str(&groups_json)
        .map_err(|e| StoreError::Corrupt(format!("users.groups_json: {e}")))?;
    Ok(User {
        id: r.try_get("id")?,
        profile: MappedUser {
            issuer: r.try_get("issuer")?,
            subject: r.try_get("subject")?,
            user_id: r.try_get("user_id")?,
            email: r.try_get("email")?,
            name: r.try_get("name")?,
            given_name: r.try_get("given_name")?,
            family_name: r.try_get("family_name")?,
            picture: r.try_get("picture")?,
            provider: r.try_get("provider")?,
            username: r.try_get("username")?,
            groups,
        },
        first_login: r.try_get("first_login")?,
        last_login: r.try_get("last_login")?,
        active: r.try_get::<i64, _>("active")? != 0,
    })
}

impl Store {
    /// Insert or update the user for `(issuer, subject)` after a successful sign-in, marking
    /// them active. `new_id` is used only when the user is new.
    pub async fn upsert_user(
        &self,
        m: &MappedUser,
        new_id: &str,
        now: i64,
    ) -> Result<User, StoreError> {
        let groups =
            serde_json::to_string(&m.groups).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let sql = format!(
            "INSERT INTO users (id, issuer, subject, user_id, email, name, given_name, family_name, picture, \
             provider, username, groups_json, first_login, last_login, active) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13, 1) \
             ON CONFLICT (issuer, subject) DO UPDATE SET user_id = excluded.user_id, email = excluded.email, \
             name = excluded.name, given_name = excluded.given_name, family_name = excluded.family_name, \
             picture = excluded.picture, provider = excluded.provider, username = excluded.username, \
             groups_json = excluded.groups_json, last_login = excluded.last_login, active = 1 \
             RETURNING {COLUMNS}"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(new_id)
            .bind(&m.issuer)
            .bind(&m.subject)
            .bind(&m.user_id)
            .bind(&m.email)
            .bind(&m.name)
            .bind(&m.given_name)
            .bind(&m.family_name)
            .bind(&m.picture)
            .bind(&m.provider)
            .bind(&m.username)
            .bind(groups)
            .bind(now)
            .fetch_one(&self.pool)
            .await?;
        from_row(&row)
    }

    /// The user with internal id `id`.
    pub async fn user(&self, id: &str) -> Result<Option<User>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM users WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// The user with identity `(issuer, subject)`.
    pub async fn user_by_identity(
        &self,
        issuer: &str,
        subject: &str,
    ) -> Result<Option<User>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM users WHERE issuer = $1 AND subject = $2");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(issuer)
            .bind(subject)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// Number of users (tests assert "nothing stored").
    pub async fn count_users(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(&self.pool)
            .await?)
    }
}
