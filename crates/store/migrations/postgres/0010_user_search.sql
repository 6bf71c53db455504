-- Index the admin user search (a case-insensitive substring of email, name, username or
-- subject: `lower(col) LIKE '%text%'`) with pg_trgm trigram GIN indexes, so a search reads the
-- few matching rows instead of every user.
--
-- pg_trgm ships with PostgreSQL (the contrib modules, in Debian's postgresql package) and is a
-- trusted extension (PostgreSQL 13+): a user with CREATE on the database may install it. When
-- it cannot be installed (not available, or not permitted) the migration still succeeds,
-- without the indexes: search then scans the table as before, and the gateway warns at
-- start-up. Refusing to start over a missing search index would take sign-in down with it.
-- IF NOT EXISTS: an operator may build the indexes beforehand with CREATE INDEX CONCURRENTLY
-- (same names and definitions, see the README), so that the upgrade does not hold the
-- users table's write lock while they are built.
DO $$
DECLARE
    ext_schema name;
BEGIN
    BEGIN
        CREATE EXTENSION IF NOT EXISTS pg_trgm;
    EXCEPTION WHEN OTHERS THEN
        RAISE WARNING 'portcullis: pg_trgm not installed (%): the admin user search will scan the users table', SQLERRM;
    END;
    -- The extension may live in another schema (installed earlier by an administrator).
    SELECT n.nspname INTO ext_schema
    FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
    WHERE e.extname = 'pg_trgm';
    IF ext_schema IS NOT NULL THEN
        EXECUTE format('CREATE INDEX IF NOT EXISTS users_email_trgm ON users USING gin (lower(email) %I.gin_trgm_ops)', ext_schema);
        EXECUTE format('CREATE INDEX IF NOT EXISTS users_name_trgm ON users USING gin (lower(name) %I.gin_trgm_ops)', ext_schema);
        EXECUTE format('CREATE INDEX IF NOT EXISTS users_username_trgm ON users USING gin (lower(username) %I.gin_trgm_ops)', ext_schema);
        EXECUTE format('CREATE INDEX IF NOT EXISTS users_subject_trgm ON users USING gin (lower(subject) %I.gin_trgm_ops)', ext_schema);
    END IF;
END
$$;
