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
    first_login  INTEGER NOT NULL,
    last_login   INTEGER NOT NULL,
    active       INTEGER NOT NULL DEFAULT 1,
    UNIQUE (issuer, subject)
);

-- Server-side sessions: a session can be ended before its JWT expires.
CREATE TABLE sessions (
    id          TEXT PRIMARY KEY NOT NULL,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at  INTEGER NOT NULL,
    last_seen   INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    revoked_at  INTEGER,
    idp_sid     TEXT
);
CREATE INDEX sessions_user ON sessions(user_id);
CREATE INDEX sessions_revoked ON sessions(revoked_at) WHERE revoked_at IS NOT NULL;

-- Login transactions (R-AZ-3), keyed by state, consumed atomically at the callback.
CREATE TABLE login_tx (
    state          TEXT PRIMARY KEY NOT NULL,
    nonce          TEXT NOT NULL,
    code_verifier  TEXT NOT NULL,
    return_to      TEXT NOT NULL,
    binding_hash   TEXT NOT NULL,
    issuer         TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL
);
CREATE INDEX login_tx_binding ON login_tx(binding_hash, created_at);
CREATE INDEX login_tx_expiry ON login_tx(expires_at);
