-- How a long-term token was issued, which decides what may renew or replace it:
--   NULL             on the client's own credentials (secret, OTP code, assertion, or a
--                    short-term token of such a token);
--   'rule:<id>'      on an external identity through federation rule <id>, and every child of
--                    such a token: only a fresh identity token of that rule (or the client's
--                    own credentials) renews it, never a short-term token;
--   'exchange:<id>'  the grant of a token exchange through rule <id>: never rotated.
-- Idempotent, like the earlier migrations.
ALTER TABLE long_tokens ADD COLUMN IF NOT EXISTS origin TEXT COLLATE "C";
-- Tokens issued on an external identity before this column existed, found by their audit
-- event, with their descendants.
WITH RECURSIVE federated(id, origin) AS (
    SELECT e.token_id, 'rule:' || (e.detail::jsonb -> 'federation' ->> 'rule')
    FROM audit_events e
    WHERE e.event IN ('long_token.issued', 'long_token.rotated') AND e.detail LIKE '%"federation"%'
  UNION
    SELECT t.id, f.origin FROM long_tokens t JOIN federated f ON t.parent_id = f.id
)
UPDATE long_tokens SET origin = federated.origin
FROM federated
WHERE long_tokens.id = federated.id AND federated.origin IS NOT NULL AND long_tokens.origin IS NULL;
