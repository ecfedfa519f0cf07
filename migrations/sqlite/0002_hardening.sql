-- Issue 6: the audit trail, secret rotation with overlap, scheduled signing keys.

-- Who did what, when, from where, with what outcome. Never a secret or a token: ids only.
CREATE TABLE audit_events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at         INTEGER NOT NULL,                 -- Unix milliseconds (UTC)
    event      TEXT NOT NULL,                    -- e.g. long_token.issued, auth.failed
    outcome    TEXT NOT NULL,                    -- success | failure
    client_id  TEXT,
    token_id   TEXT,
    source     TEXT,                             -- the peer address, or "cli"
    mechanism  TEXT,                             -- client_secret | otp | assertion | short_token | long_token
    reason     TEXT,                             -- the reason class of a failure
    detail     TEXT                              -- JSON object with further non-secret facts
);
CREATE INDEX audit_events_at ON audit_events(at);
CREATE INDEX audit_events_client ON audit_events(client_id, at);

-- A rotated-out client secret keeps working until previous_secret_expires_at.
ALTER TABLE clients ADD COLUMN previous_secret_hash BLOB;
ALTER TABLE clients ADD COLUMN previous_secret_expires_at INTEGER;

-- A key is published from created_at and signs from activates_at (0: at once) until
-- retired_at; it stays published until the tokens it signed have expired.
ALTER TABLE signing_keys ADD COLUMN activates_at INTEGER NOT NULL DEFAULT 0;
