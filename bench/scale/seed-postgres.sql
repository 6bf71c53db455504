-- Seed a Portcullis PostgreSQL database (already migrated by `portcullis serve`) with N users,
-- N sessions and N API tokens, matching the real schema (the same rows as seed-sqlite.sql).
-- bench/scale.sh substitutes :N, :NOW, :ISSUER and :IDTOKEN. One INSERT … SELECT over
-- generate_series per table, then ANALYZE (as autovacuum would soon do).
SET synchronous_commit = off;
BEGIN;
INSERT INTO users (id, issuer, subject, user_id, email, name, given_name, family_name, picture,
                   provider, username, groups_json, first_login, last_login)
SELECT '018f0000-0000-7000-8000-' || lpad(to_hex(i), 12, '0'), ':ISSUER', 'seed-sub-' || i,
       'seed-sub-' || i, 'user' || i || '@example.com', 'Seed User ' || i, 'Seed', 'User ' || i,
       NULL, ':ISSUER', 'user' || i, '["devs"]', :NOW - 86400, :NOW - (i % 86400)
FROM generate_series(1, :N) AS i;
INSERT INTO sessions (id, user_id, created_at, last_seen, expires_at, revoked_at, idp_sid, id_token)
SELECT substr(md5(i::text || 'a') || md5(i::text || 'b'), 1, 43),
       '018f0000-0000-7000-8000-' || lpad(to_hex(i), 12, '0'),
       :NOW - (i % 39600), :NOW - (i % 39600), :NOW - (i % 39600) + 43200,
       CASE WHEN i % 10 = 0 THEN :NOW - (i % 3600) END, 'seed-sid-' || i, ':IDTOKEN'
FROM generate_series(1, :N) AS i;
INSERT INTO api_tokens (id, user_id, name, secret_hash, created_at, expires_at, revoked_at, last_used)
SELECT 'S' || lpad(i::text, 11, '0'), '018f0000-0000-7000-8000-' || lpad(to_hex(i), 12, '0'),
       'seeded', decode(md5(i::text || 'c') || md5(i::text || 'd'), 'hex'), :NOW - 86400,
       NULL, NULL, NULL
FROM generate_series(1, :N) AS i;
COMMIT;
ANALYZE users;
ANALYZE sessions;
ANALYZE api_tokens;
