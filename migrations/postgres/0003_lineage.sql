-- Lineage: a long-term token minted with a short-term token is the child of the long-term
-- token that minted that short-term token. It is capped to its parent's expiry and scopes and
-- is revoked with it (and with everything minted from it). NULL: a root.
-- Idempotent (IF NOT EXISTS), like 0001 and 0002, so instances that start together converge.
ALTER TABLE long_tokens ADD COLUMN IF NOT EXISTS parent_id TEXT COLLATE "C";
-- Partial: roots, the common case, do not touch it.
CREATE INDEX IF NOT EXISTS long_tokens_parent ON long_tokens(parent_id) WHERE parent_id IS NOT NULL;
