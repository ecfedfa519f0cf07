-- The expiry warnings given: one `token.expiring` event per long-term token and lead time,
-- across instances (the primary key decides which instance gives it). Gone with the token.
CREATE TABLE expiry_warnings (
    token_id  TEXT NOT NULL REFERENCES long_tokens(id) ON DELETE CASCADE,
    lead_secs INTEGER NOT NULL,
    PRIMARY KEY (token_id, lead_secs)
) WITHOUT ROWID;
-- (Tokens about to expire are found with the index on long_tokens(expires_at).)
