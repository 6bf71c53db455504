-- The admin page filters the audit log by who did it (newest first).
CREATE INDEX audit_events_actor ON audit_events(actor, id);
-- A user's sessions, newest first.
CREATE INDEX sessions_user_created ON sessions(user_id, created_at);
