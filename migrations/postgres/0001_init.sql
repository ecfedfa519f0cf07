-- tokensmith schema, PostgreSQL dialect: the same tables and meaning as
-- migrations/sqlite/0001_init.sql. Times are Unix seconds (UTC). Secrets never appear in the
-- clear: client secrets and long-term tokens as keyed hashes (HMAC-SHA-256 under a key
-- outside the database), TOTP seeds and signing keys sealed with AES-256-GCM.
--
-- Portable on purpose to PostgreSQL-compatible distributed databases (CockroachDB,
-- YugabyteDB): no sequences, no rowid, no triggers, no advisory locks, no extensions. Keys
-- compare bytewise (COLLATE "C"), as in SQLite, so every ordering matches the SQLite store.
-- Every statement is idempotent, so instances that start together and race to apply this
-- migration converge (the loser retries and finds it applied).

CREATE TABLE IF NOT EXISTS clients (
    id              TEXT COLLATE "C" PRIMARY KEY,
    name            TEXT NOT NULL,
    scopes          TEXT NOT NULL,                -- space-separated, sorted
    secret_hash     BYTEA NOT NULL,
    otp_seed_sealed BYTEA,                        -- NULL when the client has no OTP
    otp_last_step   BIGINT NOT NULL DEFAULT 0,    -- highest TOTP step accepted (RFC 6238 §5.2)
    public_key      TEXT,                         -- PEM or JWK, for assertions
    public_key_alg  TEXT,                         -- EdDSA | ES256 | RS256
    disabled        BOOLEAN NOT NULL DEFAULT FALSE,
    created_at      BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS long_tokens (
    id          TEXT COLLATE "C" PRIMARY KEY,     -- UUID v7, hyphenated
    client_id   TEXT COLLATE "C" NOT NULL REFERENCES clients(id),
    token_hash  BYTEA NOT NULL UNIQUE,
    scopes      TEXT NOT NULL,
    name        TEXT,
    issued_at   BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    -- When the token stops being valid early: the time of revocation, or the end of a
    -- rotation's grace period (possibly in the future). NULL while not revoked.
    revoked_at  BIGINT,
    replaced_by TEXT COLLATE "C"
);
CREATE INDEX IF NOT EXISTS long_tokens_client ON long_tokens(client_id);
CREATE INDEX IF NOT EXISTS long_tokens_expires ON long_tokens(expires_at);

-- Short-term tokens are not stored; only revoked ones, until they expire.
CREATE TABLE IF NOT EXISTS revoked_short_tokens (
    id         TEXT COLLATE "C" PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS revoked_short_tokens_expires ON revoked_short_tokens(expires_at);

-- Assertion ids seen, until their assertion expires (RFC 7523 §3, single use).
CREATE TABLE IF NOT EXISTS used_assertions (
    client_id  TEXT COLLATE "C" NOT NULL,
    jti        TEXT COLLATE "C" NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (client_id, jti)
);
CREATE INDEX IF NOT EXISTS used_assertions_expires ON used_assertions(expires_at);

CREATE TABLE IF NOT EXISTS signing_keys (
    kid         TEXT COLLATE "C" PRIMARY KEY,
    alg         TEXT NOT NULL,
    key_sealed  BYTEA NOT NULL,
    created_at  BIGINT NOT NULL,
    retired_at  BIGINT                            -- NULL while it may sign
);
