-- Whether the `short_token` grant may renew (rotate) a long-term token. A token issued on an
-- external identity (a federation rule, a token exchange's grant) may not: it is renewed only
-- with a fresh identity token, so that a stolen one cannot outlive its rule's cap, or the
-- issuer's removal, by renewing itself. Idempotent, like the earlier migrations.
ALTER TABLE long_tokens ADD COLUMN IF NOT EXISTS renewable BOOLEAN NOT NULL DEFAULT TRUE;
