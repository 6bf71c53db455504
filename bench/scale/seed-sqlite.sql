-- Seed a Portcullis SQLite database (already migrated by `portcullis serve`) with N users,
-- N sessions and N API tokens, matching the real schema. bench/scale.sh substitutes
-- :N, :NOW, :ISSUER and :IDTOKEN (a realistic ID token kept with each session for the
-- logout hint) before running it with sqlite3. One transaction, recursive CTEs.
PRAGMA synchronous = OFF;
BEGIN;
-- Users as sign-ins create them: a time-ordered UUID id (v7-shaped), identity (issuer, subject).
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :N)
INSERT INTO users (id, issuer, subject, user_id, email, name, given_name, family_name, picture,
                   provider, username, groups_json, first_login, last_login)
SELECT printf('018f0000-0000-7000-8000-%012x', i), ':ISSUER', 'seed-sub-' || i, 'seed-sub-' || i,
       'user' || i || '@example.com', 'Seed User ' || i, 'Seed', 'User ' || i, NULL,
       ':ISSUER', 'user' || i, '["devs"]', :NOW - 86400, :NOW - (i % 86400)
FROM n;
-- One session per user: a random 43-character id, signed in within the last 11 hours
-- (absolute lifetime 12 h, so all unexpired); every tenth ended by a logout, which the
-- revocation view every replica keeps in memory must then hold until it expires.
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :N)
INSERT INTO sessions (id, user_id, created_at, last_seen, expires_at, revoked_at, idp_sid, id_token)
SELECT substr(hex(randomblob(22)), 1, 43), printf('018f0000-0000-7000-8000-%012x', i),
       :NOW - (i % 39600), :NOW - (i % 39600), :NOW - (i % 39600) + 43200,
       CASE WHEN i % 10 = 0 THEN :NOW - (i % 3600) END, 'seed-sid-' || i, ':IDTOKEN'
FROM n;
-- One API token per user (only a 32-byte keyed hash is stored).
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :N)
INSERT INTO api_tokens (id, user_id, name, secret_hash, created_at, expires_at, revoked_at, last_used)
SELECT printf('S%011d', i), printf('018f0000-0000-7000-8000-%012x', i), 'seeded', randomblob(32),
       :NOW - 86400, NULL, NULL, NULL
FROM n;
COMMIT;
