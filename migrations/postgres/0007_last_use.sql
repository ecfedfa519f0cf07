-- When each long-term token and each client last authenticated (Unix seconds; NULL: never
-- since this column exists). Written in batches at most once a minute per token or client.
ALTER TABLE long_tokens ADD COLUMN IF NOT EXISTS last_used_at BIGINT;
ALTER TABLE clients ADD COLUMN IF NOT EXISTS last_used_at BIGINT;
