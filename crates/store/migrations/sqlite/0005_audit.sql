-- The audit log: who did what, when, from where, and the outcome. Field lengths are bounded by
-- the store before insert. AUTOINCREMENT so an id is never reused after the newest rows are
-- pruned or deleted: ids are paging cursors (before_id).
CREATE TABLE audit_events (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    at       INTEGER NOT NULL,
    action   TEXT NOT NULL,
    outcome  TEXT NOT NULL,
    actor    TEXT,
    subject  TEXT,
    ip       TEXT,
    detail   TEXT
);
-- A user's history, newest first; and pruning by age.
CREATE INDEX audit_events_subject ON audit_events(subject, id);
CREATE INDEX audit_events_at ON audit_events(at);
