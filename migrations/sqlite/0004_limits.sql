-- Failed-authentication limits, shared by every process on this database: one row per key
-- (addr:<address or /64>, client:<id>, otp:<id>), with the times of its most recent failures.
CREATE TABLE auth_limits (
    key          TEXT PRIMARY KEY,
    recent       TEXT NOT NULL,                  -- Unix ms of the latest failures, space-separated
    locked_until INTEGER NOT NULL,               -- Unix ms; 0 when not locked (or unlocked)
    changed_at   INTEGER NOT NULL,               -- Unix ms of the last lock or unlock, for polling
    expires_at   INTEGER NOT NULL                -- Unix ms after which the row says nothing
);
CREATE INDEX auth_limits_changed ON auth_limits(changed_at);
CREATE INDEX auth_limits_expires ON auth_limits(expires_at);
