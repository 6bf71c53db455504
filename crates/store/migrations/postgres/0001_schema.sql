-- Users: identity is (issuer, subject) (OIDC Core §5.7); the mapped fields of seed 000.
CREATE TABLE users (
    id           TEXT PRIMARY KEY NOT NULL,
    issuer       TEXT NOT NULL,
    subject      TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    email        TEXT,
    name         TEXT,
    given_name   TEXT,
    family_name  TEXT,
    picture      TEXT,
    provider     TEXT,
    username     TEXT,
    groups_json  TEXT NOT NULL DEFAULT '[]',
    first_login  BIGINT NOT NULL,
    last_login   BIGINT NOT NULL,
    active       BOOLEAN NOT NULL DEFAULT TRUE,
    UNIQUE (issuer, subject)
);

-- Server-side sessions: a session can be ended before its JWT expires.
CREATE TABLE sessions (
    id          TEXT PRIMARY KEY NOT NULL,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at  BIGINT NOT NULL,
    last_seen   BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    revoked_at  BIGINT,
    idp_sid     TEXT
);
CREATE INDEX sessions_user ON sessions(user_id);
CREATE INDEX sessions_revoked ON sessions(revoked_at) WHERE revoked_at IS NOT NULL;

-- Login transactions, keyed by state, consumed atomically at the callback.
CREATE TABLE login_tx (
    state          TEXT PRIMARY KEY NOT NULL,
    nonce          TEXT NOT NULL,
    code_verifier  TEXT NOT NULL,
    return_to      TEXT NOT NULL,
    binding_hash   TEXT NOT NULL,
    issuer         TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL
);
CREATE INDEX login_tx_binding ON login_tx(binding_hash, created_at);
CREATE INDEX login_tx_expiry ON login_tx(expires_at);

-- The change feed: revocations and user state changes every replica applies.
CREATE TABLE changes (
    seq         BIGSERIAL PRIMARY KEY,
    at          BIGINT NOT NULL,
    kind        TEXT NOT NULL,
    subject     TEXT NOT NULL,
    expires_at  BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX changes_at ON changes(at);
