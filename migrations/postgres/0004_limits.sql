-- Failed-authentication limits, shared by every instance on this database: one row per key
-- (addr:<address or /64>, client:<id>, otp:<id>), with the times of its most recent failures.
-- Idempotent (IF NOT EXISTS), like the migrations before it.
CREATE TABLE IF NOT EXISTS auth_limits (
    key          TEXT COLLATE "C" PRIMARY KEY,
    recent       TEXT NOT NULL,                  -- Unix ms of the latest failures, space-separated
    locked_until BIGINT NOT NULL,                -- Unix ms; 0 when not locked (or unlocked)
    changed_at   BIGINT NOT NULL,                -- Unix ms of the last lock or unlock, for polling
    expires_at   BIGINT NOT NULL                 -- Unix ms after which the row says nothing
);
CREATE INDEX IF NOT EXISTS auth_limits_changed ON auth_limits(changed_at);
CREATE INDEX IF NOT EXISTS auth_limits_expires ON auth_limits(expires_at);
