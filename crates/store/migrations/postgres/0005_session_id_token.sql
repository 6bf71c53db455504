-- The ID token of each sign-in, kept server-side for id_token_hint at RP-initiated logout.
ALTER TABLE sessions ADD COLUMN id_token TEXT;
