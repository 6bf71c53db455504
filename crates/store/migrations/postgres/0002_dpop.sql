-- DPoP (RFC 9449). A sign-in started with a DPoP proof remembers the key's thumbprint, so the
-- callback can bind the session to that key; NULL when no proof was presented.
ALTER TABLE login_tx ADD COLUMN dpop_jkt TEXT;
