-- tokensmith schema, SQLite dialect. Times are Unix seconds (UTC). Secrets never appear in
-- the clear: client secrets and long-term tokens as keyed hashes (HMAC-SHA-256 under a key
-- outside the database), TOTP seeds and signing keys sealed with AES-256-GCM.

CREATE TABLE clients (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    scopes          TEXT NOT NULL,               -- space-separated, sorted
    secret_hash     BLOB NOT NULL,
    otp_seed_sealed BLOB,                        -- NULL when the client has no OTP
    otp_last_step   INTEGER NOT NULL DEFAULT 0,  -- highest TOTP step accepted (RFC 6238 §5.2)
    public_key      TEXT,                        -- PEM or JWK, for assertions
    public_key_alg  TEXT,                        -- EdDSA | ES256 | RS256
    disabled        INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL
);

CREATE TABLE long_tokens (
    id          TEXT PRIMARY KEY,                -- UUID v7
    client_id   TEXT NOT NULL REFERENCES clients(id),
    token_hash  BLOB NOT NULL UNIQUE,
    scopes      TEXT NOT NULL,
    name        TEXT,
    issued_at   INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    -- When the token stops being valid early: the time of revocation, or the end of a
    -- rotation's grace period (possibly in the future). NULL while not revoked.
    revoked_at  INTEGER,
    replaced_by TEXT
);
CREATE INDEX long_tokens_client ON long_tokens(client_id);
CREATE INDEX long_tokens_expires ON long_tokens(expires_at);

-- Short-term tokens are not stored; only revoked ones, until they expire.
CREATE TABLE revoked_short_tokens (
    id         TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL
);
CREATE INDEX revoked_short_tokens_expires ON revoked_short_tokens(expires_at);

-- Assertion ids seen, until their assertion expires (RFC 7523 §3, single use).
CREATE TABLE used_assertions (
    client_id  TEXT NOT NULL,
    jti        TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (client_id, jti)
);
CREATE INDEX used_assertions_expires ON used_assertions(expires_at);

CREATE TABLE signing_keys (
    kid         TEXT PRIMARY KEY,
    alg         TEXT NOT NULL,
    key_sealed  BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    retired_at  INTEGER                          -- NULL while it may sign
);
