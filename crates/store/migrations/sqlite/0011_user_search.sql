-- Index the admin user search (a case-insensitive substring of email, name, username or
-- subject) with an FTS5 trigram index: a search of 3 or more characters reads the matching
-- rows from the index instead of every user. The index only narrows the candidates; the
-- query still applies its `lower(col) LIKE` test, so the answers are exactly those of a scan.
-- Needs SQLite 3.34+ (the trigram tokenizer); the gateway bundles its own SQLite. Anything
-- else that writes to `users` (the sqlite3 shell, a restore script) needs 3.34+ as well, since
-- the triggers below fire there too.

-- A stable integer key per user for the index's rowid. Not `users.rowid`: `users` has a TEXT
-- primary key, and VACUUM may renumber the implicit rowid of such a table, which would
-- silently point the index at the wrong users. An INTEGER PRIMARY KEY is never renumbered.
CREATE TABLE users_search_keys (
    k        INTEGER PRIMARY KEY,
    user_id  TEXT NOT NULL UNIQUE
);

-- Contentless (content=''): the text stays in `users` only. Rows are removed with FTS5's
-- 'delete' command, which must be given the indexed values: the triggers pass `old.*`.
-- The trigram tokenizer folds case (case_sensitive 0, its default).
CREATE VIRTUAL TABLE users_search USING fts5(
    email, name, username, subject,
    content = '', tokenize = 'trigram'
);

INSERT INTO users_search_keys (user_id) SELECT id FROM users ORDER BY id;
INSERT INTO users_search (rowid, email, name, username, subject)
SELECT k.k, u.email, u.name, u.username, u.subject
FROM users_search_keys k JOIN users u ON u.id = k.user_id;

CREATE TRIGGER users_search_insert AFTER INSERT ON users BEGIN
    INSERT INTO users_search_keys (user_id) VALUES (new.id);
    INSERT INTO users_search (rowid, email, name, username, subject)
    SELECT k, new.email, new.name, new.username, new.subject
    FROM users_search_keys WHERE user_id = new.id;
END;

CREATE TRIGGER users_search_delete AFTER DELETE ON users BEGIN
    INSERT INTO users_search (users_search, rowid, email, name, username, subject)
    SELECT 'delete', k, old.email, old.name, old.username, old.subject
    FROM users_search_keys WHERE user_id = old.id;
    DELETE FROM users_search_keys WHERE user_id = old.id;
END;

-- Every sign-in rewrites the profile columns, mostly with the same values: reindex only
-- when one actually changed.
CREATE TRIGGER users_search_update AFTER UPDATE OF id, email, name, username, subject ON users
WHEN old.id IS NOT new.id OR old.email IS NOT new.email OR old.name IS NOT new.name
    OR old.username IS NOT new.username OR old.subject IS NOT new.subject
BEGIN
    INSERT INTO users_search (users_search, rowid, email, name, username, subject)
    SELECT 'delete', k, old.email, old.name, old.username, old.subject
    FROM users_search_keys WHERE user_id = old.id;
    UPDATE users_search_keys SET user_id = new.id WHERE user_id = old.id;
    INSERT INTO users_search (rowid, email, name, username, subject)
    SELECT k, new.email, new.name, new.username, new.subject
    FROM users_search_keys WHERE user_id = new.id;
END;
