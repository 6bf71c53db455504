//! The admin user search served by an index (SQLite: an FTS5 trigram table kept by triggers;
//! PostgreSQL: pg_trgm GIN indexes): the answers must be exactly those of the plain scan it
//! replaces, on both backends — checked against a reference written in Rust, through
//! pagination, and after profile changes and deletions. Kept beside `conformance.rs`, sharing
//! its runner and fixtures (`support`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use portcullis_core::claims::MappedUser;
use portcullis_store::{Store, USERS_MAX_PAGE, UserQuery};
use support::{conformance, mapped};

/// Signs in (creates or updates) the user `sub` with these profile fields, internal id `id`.
async fn person(
    s: &Store,
    id: &str,
    sub: &str,
    email: Option<&str>,
    name: Option<&str>,
    username: Option<&str>,
) {
    let m = MappedUser {
        email: email.map(Into::into),
        name: name.map(Into::into),
        username: username.map(Into::into),
        ..mapped(sub)
    };
    s.users.upsert_user(&m, id, 100).await.unwrap();
}

/// One page of the search.
async fn page(s: &Store, text: &str, after: Option<&str>, limit: i64) -> Vec<String> {
    s.admin
        .list_users(&UserQuery {
            search: Some(text.into()),
            after_id: after.map(Into::into),
            limit,
        })
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.id)
        .collect()
}

/// Every answer, page after page, checking that each page holds at most `limit` ids.
async fn all_pages(s: &Store, text: &str, limit: i64) -> Vec<String> {
    let mut all = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let got = page(s, text, after.as_deref(), limit).await;
        assert!(got.len() as i64 <= limit);
        let Some(last) = got.last().cloned() else {
            return all;
        };
        all.extend(got);
        after = Some(last);
    }
}

async fn search(s: &Store, text: &str) -> Vec<String> {
    page(s, text, None, USERS_MAX_PAGE).await
}

conformance!(
    admin_user_search_index_finds_each_column_any_case,
    |s, _b| {
        person(
            &s,
            "id-1",
            "Sub-Alpha-001",
            Some("Alice.Liddell@Wonder.example"),
            Some("Alice Liddell"),
            Some("aliddell"),
        )
        .await;
        person(
            &s,
            "id-2",
            "sub-beta-002",
            Some("bob@corp.test"),
            Some("Robert \"Bob\" Tables 100%"),
            Some("bob_tables"),
        )
        .await;
        person(&s, "id-3", "sub-gamma-003", None, None, Some("c\\arol")).await;
        // Each column, with an index-sized text (3+ characters), in any case.
        assert_eq!(search(&s, "WONDER.EX").await, ["id-1"], "email");
        assert_eq!(
            search(&s, "t \"bob\" t").await,
            ["id-2"],
            "name, with quotes"
        );
        assert_eq!(search(&s, "B_TaB").await, ["id-2"], "username");
        assert_eq!(search(&s, "GAMMA-0").await, ["id-3"], "subject");
        assert_eq!(search(&s, "sub-").await, ["id-1", "id-2", "id-3"]);
        // Wildcards and the escape character stay literal with the index too.
        assert_eq!(search(&s, "100%").await, ["id-2"]);
        assert_eq!(search(&s, "b_t").await, ["id-2"]);
        assert!(search(&s, "b%t").await.is_empty(), "`%` is not a wildcard");
        assert!(search(&s, "a_i").await.is_empty(), "`_` is not a wildcard");
        assert_eq!(search(&s, "c\\ar").await, ["id-3"]);
        // FTS5 query syntax in the text is plain text too.
        assert!(search(&s, "alice OR bob").await.is_empty());
        assert!(search(&s, "ali*").await.is_empty());
        assert_eq!(search(&s, "\"").await, ["id-2"], "one `\"`: in id-2's name");
        assert!(search(&s, "NEAR(alice bob)").await.is_empty());
        // 1 and 2 characters (below the trigram index's reach): the scan answers.
        assert_eq!(search(&s, "Z").await, Vec::<String>::new());
        assert_eq!(search(&s, "%").await, ["id-2"]);
        assert_eq!(search(&s, "\\").await, ["id-3"]);
        assert_eq!(search(&s, "LI").await, ["id-1"]);
        assert_eq!(search(&s, "ob").await, ["id-2"]);
        assert_eq!(
            search(&s, "b").await,
            ["id-1", "id-2", "id-3"],
            "`sub-` in each subject"
        );
    }
);

conformance!(admin_user_search_index_follows_profile_changes, |s, _b| {
    person(
        &s,
        "id-1",
        "sub-1",
        Some("old.address@example.org"),
        Some("Dana Old"),
        Some("dold"),
    )
    .await;
    person(
        &s,
        "id-2",
        "sub-2",
        Some("other@example.org"),
        Some("Other"),
        Some("other"),
    )
    .await;
    assert_eq!(search(&s, "old.addr").await, ["id-1"]);
    // A sign-in with a new profile (same issuer and subject) rewrites the indexed text.
    person(
        &s,
        "ignored",
        "sub-1",
        Some("New.Address@example.org"),
        None,
        Some("dnew"),
    )
    .await;
    assert!(search(&s, "old.addr").await.is_empty(), "old email gone");
    assert!(search(&s, "dana").await.is_empty(), "name removed");
    assert!(search(&s, "dold").await.is_empty(), "old username gone");
    assert_eq!(search(&s, "new.address").await, ["id-1"]);
    assert_eq!(search(&s, "DNEW").await, ["id-1"]);
    assert_eq!(search(&s, "example.org").await, ["id-1", "id-2"]);
    // The same profile again (every sign-in): still found once.
    person(
        &s,
        "ignored",
        "sub-1",
        Some("New.Address@example.org"),
        None,
        Some("dnew"),
    )
    .await;
    assert_eq!(search(&s, "new.address").await, ["id-1"]);
    // A name again, under the same key.
    person(
        &s,
        "ignored",
        "sub-1",
        Some("New.Address@example.org"),
        Some("Dana Back"),
        Some("dnew"),
    )
    .await;
    assert_eq!(search(&s, "ana ba").await, ["id-1"]);
});

/// Deleting users (nothing in the gateway does yet; an operator's SQL may) drops them from the
/// index: with SQLite's contentless FTS5 table a stale entry would not be a wrong answer (the
/// LIKE test decides) but a wrong removal would corrupt the index, so check both.
async fn deletes_leave_the_index_consistent(s: &Store, delete: impl AsyncFn(&str)) {
    for i in 0..20 {
        person(
            s,
            &format!("id-{i:02}"),
            &format!("sub-{i}"),
            Some(&format!("person{i}@deleted.example")),
            Some(&format!("Person {i}")),
            Some(&format!("p{i}")),
        )
        .await;
    }
    delete("id-03").await;
    delete("id-10").await;
    let left: Vec<String> = (0..20)
        .filter(|i| ![3, 10].contains(i))
        .map(|i| format!("id-{i:02}"))
        .collect();
    assert_eq!(all_pages(s, "deleted.example", 4).await, left);
    assert!(search(s, "person3@").await.is_empty());
    let want: Vec<String> = [1, 11, 12, 13, 14, 15, 16, 17, 18, 19]
        .iter()
        .map(|i| format!("id-{i:02}"))
        .collect();
    assert_eq!(search(s, "person1").await, want, "not 10, deleted");
    // The same user signing in again is indexed again.
    person(
        s,
        "id-03",
        "sub-3",
        Some("person3@deleted.example"),
        None,
        None,
    )
    .await;
    assert_eq!(search(s, "person3@").await, ["id-03"]);
}

#[tokio::test]
async fn admin_user_search_index_follows_deletes_sqlite() {
    let dir = std::env::temp_dir().join(format!("portcullis-search-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("s.db");
    let p = path.to_str().unwrap();
    let s = Store::open_sqlite(p).await.unwrap();
    let raw = sqlx::SqlitePool::connect(&format!("sqlite://{p}"))
        .await
        .unwrap();
    deletes_leave_the_index_consistent(&s, async |id: &str| {
        sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(id)
            .execute(&raw)
            .await
            .unwrap();
    })
    .await;
    // FTS5's own consistency check of the index against what it was told.
    sqlx::query("INSERT INTO users_search (users_search, rank) VALUES ('integrity-check', 0)")
        .execute(&raw)
        .await
        .unwrap();
    raw.close().await;
    drop(s);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn admin_user_search_index_follows_deletes_postgres() {
    let url = portcullis_store::testing::fresh_postgres_database().await;
    let s = Store::open_postgres(&url).await.unwrap();
    let raw = sqlx::PgPool::connect(&url).await.unwrap();
    deletes_leave_the_index_consistent(&s, async |id: &str| {
        sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(id)
            .execute(&raw)
            .await
            .unwrap();
    })
    .await;
    // The migration created the trigram indexes (the test server has pg_trgm).
    let n: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_indexes WHERE tablename = 'users' AND indexname LIKE '%\\_trgm'",
    )
    .fetch_one(&raw)
    .await
    .unwrap();
    assert_eq!(n, 4);
}

/// A profile of user `i` of the shared data set: varied words, cases, punctuation, absent
/// fields. Deterministic, so both backends get the same users.
fn profile(i: usize) -> (String, Option<String>, Option<String>, Option<String>) {
    const WORDS: [&str; 12] = [
        "alice", "Bob", "CAROL", "dave_x", "Eve%", "frank\\", "grace\"h", "hé", "ivan", "Judy",
        "mallory", "oscar",
    ];
    let w = |k: usize| WORDS[(i * 7 + k * 5) % WORDS.len()];
    let subject = format!("Sub-{}-{i}", w(3));
    let email = (!i.is_multiple_of(5)).then(|| format!("{}.{}{i}@Example.{}", w(0), w(1), w(2)));
    let name = (!i.is_multiple_of(3)).then(|| format!("{} {}", w(1), w(4)));
    let username = (!i.is_multiple_of(4)).then(|| format!("{}{}", w(2).to_lowercase(), i % 10));
    (subject, email, name, username)
}

/// The answer a scan gives, computed in Rust: case-insensitive literal substring of any field,
/// in id order.
fn reference(users: &[(String, Vec<String>)], text: &str) -> Vec<String> {
    let t = text.trim().to_lowercase();
    let mut ids: Vec<String> = users
        .iter()
        .filter(|(_, fields)| fields.iter().any(|f| f.to_lowercase().contains(&t)))
        .map(|(id, _)| id.clone())
        .collect();
    ids.sort();
    ids
}

/// The same data set on both backends gives the same answers, and those of the reference,
/// for short and long texts, rare and common ones, whole or page by page.
#[tokio::test]
async fn admin_user_search_same_answers_on_both_backends() {
    let sqlite = Store::open_sqlite(":memory:").await.unwrap();
    let url = portcullis_store::testing::fresh_postgres_database().await;
    let postgres = Store::open_postgres(&url).await.unwrap();
    let n = 240;
    let mut users = Vec::new();
    // Inserted out of id order, so id order is not insertion order.
    for j in 0..n {
        let i = (j * 97) % n;
        let id = format!("u{i:04}");
        let (subject, email, name, username) = profile(i);
        for s in [&sqlite, &postgres] {
            person(
                s,
                &id,
                &subject,
                email.as_deref(),
                name.as_deref(),
                username.as_deref(),
            )
            .await;
        }
        let fields = [Some(subject), email, name, username]
            .into_iter()
            .flatten()
            .collect();
        users.push((id, fields));
    }
    let texts = [
        "a",
        "B",
        "%",
        "_",
        "\\",
        "\"",
        "é",
        "ob",
        "x%",
        "  Ali  ",
        "ALICE",
        "alice.bob",
        "example.carol",
        "Example",
        "sub-",
        "sub-dave_x-1",
        "dave_x",
        "ave_",
        "eve%",
        "Eve% ",
        "e%",
        "frank\\",
        "k\\ i",
        "grace\"h",
        "hé",
        "HÉ",
        "mallory oscar",
        "judy",
        "1@ex",
        "oscar0",
        "nobody-here",
        "%%%",
        "___",
        "a_c",
    ];
    for text in texts {
        let want = reference(&users, text);
        for (kind, s) in [("sqlite", &sqlite), ("postgres", &postgres)] {
            let whole = page(s, text, None, USERS_MAX_PAGE).await;
            let cut = want.len().min(USERS_MAX_PAGE as usize);
            assert_eq!(whole, want[..cut], "{kind}, {text:?}, one page");
            assert_eq!(
                all_pages(s, text, 7).await,
                want,
                "{kind}, {text:?}, pages of 7"
            );
        }
    }
}

/// A database user that may not install pg_trgm (no CREATE on the database): the gateway still
/// starts, without the trigram indexes, and the search answers the same by scanning.
#[tokio::test]
async fn postgres_without_pg_trgm_still_migrates_and_searches() {
    use sqlx::Connection;
    let url = portcullis_store::testing::fresh_postgres_database().await;
    let mut admin = sqlx::PgConnection::connect(&url).await.unwrap();
    let role = format!("no_ext_{}", std::process::id());
    for sql in [
        format!("CREATE ROLE {role} LOGIN"),
        format!("GRANT CREATE, USAGE ON SCHEMA public TO {role}"),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut admin)
            .await
            .expect("the test server's user may create roles (scripts/test's is a superuser)");
    }
    let mut limited = url::Url::parse(&url).unwrap();
    limited.set_username(&role).unwrap();
    let s = Store::open_postgres(limited.as_str()).await.unwrap();
    person(&s, "id-1", "sub-1", Some("Ann@Example.org"), None, None).await;
    person(&s, "id-2", "sub-2", Some("bo@example.org"), None, None).await;
    assert_eq!(search(&s, "ANN@").await, ["id-1"]);
    assert_eq!(all_pages(&s, "example", 1).await, ["id-1", "id-2"]);
    let (ext, indexes): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM pg_extension WHERE extname = 'pg_trgm'), \
         (SELECT count(*) FROM pg_indexes WHERE tablename = 'users' AND indexname LIKE '%\\_trgm')",
    )
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert_eq!((ext, indexes), (0, 0));
    drop(s);
    // Opening again (the migration recorded as applied) works too.
    drop(Store::open_postgres(limited.as_str()).await.unwrap());
    for sql in [format!("DROP OWNED BY {role}"), format!("DROP ROLE {role}")] {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut admin)
            .await
            .unwrap();
    }
}

// A text in very many users (past SQLite's candidate limit, 2 000) is read in id order rather
// than from the index: same answers, pages included.
conformance!(admin_user_search_common_text_pages_in_id_order, |s, _b| {
    let n = 2100;
    for j in 0..n {
        let i = (j * 13) % n;
        let name = format!("Member {i}");
        let email = format!("m{i}@COMMON.example");
        person(
            &s,
            &format!("id-{i:05}"),
            &format!("sub-{i}"),
            Some(&email),
            Some(&name),
            None,
        )
        .await;
    }
    let everyone: Vec<String> = (0..n).map(|i| format!("id-{i:05}")).collect();
    assert_eq!(all_pages(&s, "common.ex", USERS_MAX_PAGE).await, everyone);
    assert_eq!(
        search(&s, "mmon").await,
        everyone[..USERS_MAX_PAGE as usize]
    );
    let after = page(&s, "@common", Some("id-01990"), 25).await;
    assert_eq!(after, everyone[1991..2016]);
    // A rarer text in the same table still comes from the index.
    assert_eq!(search(&s, "member 1234").await, everyone[1234..1235]);
    assert_eq!(
        all_pages(&s, "ber 20", 30).await.len(),
        1 + 10 + 100,
        "20, 200–209, 2000–2099"
    );
});
