-- Offline access: the IdP refresh token of a session, encrypted by the gateway (AES-256-GCM,
-- bound to the session id; never the plaintext), when the session is next re-checked at the
-- IdP, and the lease of the replica doing it (one replica per session at a time: a rotated
-- refresh token must not be used twice).
ALTER TABLE sessions ADD COLUMN refresh_token TEXT;
ALTER TABLE sessions ADD COLUMN recheck_at INTEGER;
ALTER TABLE sessions ADD COLUMN recheck_failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN recheck_lease TEXT;
ALTER TABLE sessions ADD COLUMN recheck_lease_until INTEGER;
CREATE INDEX sessions_recheck ON sessions(recheck_at) WHERE refresh_token IS NOT NULL;
