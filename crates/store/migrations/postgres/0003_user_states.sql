-- Two user states (R-US-1) instead of one `active` flag. Admin-disabled takes precedence and is
-- never cleared by a sign-in; IdP-deactivated is set by back-channel logout and cleared by the
-- next successful sign-in. A user may use Portcullis when neither is set.
ALTER TABLE users ADD COLUMN admin_disabled BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE users ADD COLUMN idp_deactivated BOOLEAN NOT NULL DEFAULT FALSE;
-- Until now an inactive user was re-activated by their next sign-in: that is IdP-deactivated.
UPDATE users SET idp_deactivated = TRUE WHERE NOT active;
-- One source of truth: "active" is computed from the two states.
ALTER TABLE users DROP COLUMN active;

-- Back-channel logout finds sessions by the IdP's session id.
CREATE INDEX sessions_idp_sid ON sessions(idp_sid) WHERE idp_sid IS NOT NULL;
