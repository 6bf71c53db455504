-- API tokens (R-AT): only the HMAC of the secret is stored, never the token.
CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY NOT NULL,
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    secret_hash  BYTEA NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT,
    revoked_at   BIGINT,
    last_used    BIGINT
);
CREATE INDEX api_tokens_user ON api_tokens(user_id, created_at);
