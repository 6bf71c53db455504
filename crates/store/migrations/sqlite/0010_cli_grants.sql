-- Command-line sign-in grants (RFC 8252 loopback codes, RFC 8628 device codes): only the
-- SHA-256 of a code is stored; rows live minutes.
CREATE TABLE cli_grants (
    id              TEXT PRIMARY KEY NOT NULL,
    kind            TEXT NOT NULL,
    user_code       TEXT UNIQUE,
    user_id         TEXT REFERENCES users(id) ON DELETE CASCADE,
    status          TEXT NOT NULL,
    machine         TEXT NOT NULL,
    token_days      INTEGER,
    code_challenge  TEXT,
    redirect_uri    TEXT,
    client_ip       TEXT,
    poll_interval   INTEGER NOT NULL,
    last_poll       INTEGER,
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL
);
CREATE INDEX cli_grants_expiry ON cli_grants(expires_at);
