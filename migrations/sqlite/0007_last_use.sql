-- When each long-term token and each client last authenticated (Unix seconds; NULL: never
-- since this column exists). Written in batches at most once a minute per token or client.
ALTER TABLE long_tokens ADD COLUMN last_used_at INTEGER;
ALTER TABLE clients ADD COLUMN last_used_at INTEGER;
