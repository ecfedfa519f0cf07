-- The expiry warnings given: one `token.expiring` event per long-term token and lead time,
-- across instances (the primary key decides which instance gives it). Gone with the token.
CREATE TABLE IF NOT EXISTS expiry_warnings (
    token_id  TEXT COLLATE "C" NOT NULL REFERENCES long_tokens(id) ON DELETE CASCADE,
    lead_secs BIGINT NOT NULL,
    PRIMARY KEY (token_id, lead_secs)
);
-- (Tokens about to expire are found with the index on long_tokens(expires_at).)
