-- API tokens (R-AT): only the HMAC of the secret is stored, never the token.
CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY NOT NULL,
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    secret_hash  BLOB NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    revoked_at   INTEGER,
    last_used    INTEGER
);
CREATE INDEX api_tokens_user ON api_tokens(user_id, created_at);
