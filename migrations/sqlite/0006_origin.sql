-- How a long-term token was issued, which decides what may renew or replace it:
--   NULL             on the client's own credentials (secret, OTP code, assertion, or a
--                    short-term token of such a token);
--   'rule:<id>'      on an external identity through federation rule <id>, and every child of
--                    such a token: only a fresh identity token of that rule (or the client's
--                    own credentials) renews it, never a short-term token;
--   'exchange:<id>'  the grant of a token exchange through rule <id>: never rotated.
ALTER TABLE long_tokens ADD COLUMN origin TEXT;
-- Tokens issued on an external identity before this column existed, found by their audit
-- event, with their descendants.
WITH RECURSIVE federated(id, origin) AS (
    SELECT token_id, 'rule:' || json_extract(detail, '$.federation.rule')
    FROM audit_events
    WHERE event IN ('long_token.issued', 'long_token.rotated') AND detail LIKE '%"federation"%'
  UNION
    SELECT t.id, f.origin FROM long_tokens t JOIN federated f ON t.parent_id = f.id
)
UPDATE long_tokens SET origin = (SELECT f.origin FROM federated f WHERE f.id = long_tokens.id LIMIT 1)
WHERE id IN (SELECT id FROM federated WHERE origin IS NOT NULL) AND origin IS NULL;
