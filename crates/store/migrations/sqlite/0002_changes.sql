-- The change feed: revocations and user state changes every replica applies.
CREATE TABLE changes (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    at          INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    subject     TEXT NOT NULL,
    expires_at  INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX changes_at ON changes(at);
