-- DPoP (RFC 9449). A sign-in started with a DPoP proof remembers the key's thumbprint, so the
-- callback can bind the session to that key; NULL when no proof was presented.
ALTER TABLE login_tx ADD COLUMN dpop_jkt TEXT;

-- Proofs already seen (RFC 9449 §11.1), shared by every replica: key is a digest of
-- (jkt, jti), kept until the proof could no longer be accepted anyway.
CREATE TABLE dpop_proofs (
    key         TEXT PRIMARY KEY NOT NULL,
    expires_at  BIGINT NOT NULL
);
-- The purge deletes by expiry.
CREATE INDEX dpop_proofs_expiry ON dpop_proofs(expires_at);
