-- Command-line sign-in grants (RFC 8252 loopback codes, RFC 8628 device codes): only the
-- SHA-256 of a code is stored; rows live minutes.
CREATE TABLE cli_grants (
    id              TEXT PRIMARY KEY NOT NULL,
    kind            TEXT NOT NULL,
    user_code       TEXT UNIQUE,
    user_id         TEXT REFERENCES users(id) ON DELETE CASCADE,
    status          TEXT NOT NULL,
    machine         TEXT NOT NULL,
    token_days      BIGINT,
    code_challenge  TEXT,
    redirect_uri    TEXT,
    client_ip       TEXT,
    poll_interval   BIGINT NOT NULL,
    last_poll       BIGINT,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL
);
CREATE INDEX cli_grants_expiry ON cli_grants(expires_at);
