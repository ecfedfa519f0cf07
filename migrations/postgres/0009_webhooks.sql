-- Webhook receivers, the events each subscribes to, and the outbox of deliveries.
-- A delivery row is written in the same transaction as the change (and its audit event) that
-- caused it, one per subscribed receiver; instances claim due rows with FOR UPDATE SKIP LOCKED
-- by moving `next_attempt_at` past a lease, so an instance killed mid-delivery leaves its
-- claims to expire and another (or its restart) delivers them.
CREATE TABLE IF NOT EXISTS webhooks (
    id            TEXT COLLATE "C" PRIMARY KEY,
    url           TEXT NOT NULL,
    secret_sealed BYTEA NOT NULL,              -- the signing secret, sealed with the master key
    created_at    BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS webhook_events (
    webhook_id TEXT COLLATE "C" NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    event_type TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (event_type, webhook_id)
);

CREATE TABLE IF NOT EXISTS webhook_deliveries (
    message_id      TEXT COLLATE "C" NOT NULL, -- the `webhook-id`, the same on every attempt
    webhook_id      TEXT COLLATE "C" NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    event_type      TEXT NOT NULL,
    payload         TEXT NOT NULL,             -- the JSON body, signed as sent
    created_at      BIGINT NOT NULL,           -- Unix milliseconds
    status          TEXT NOT NULL,             -- pending, delivered or failed
    attempts        INTEGER NOT NULL,
    next_attempt_at BIGINT NOT NULL,           -- Unix milliseconds; a claim's lease end
    last_error      TEXT,                      -- the last failed attempt's status or error class
    finished_at     BIGINT,                    -- delivered or given up, Unix milliseconds
    PRIMARY KEY (message_id, webhook_id)
);
CREATE INDEX IF NOT EXISTS webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
-- A receiver's due deliveries: each receiver is claimed for on its own, within its own slots.
CREATE INDEX IF NOT EXISTS webhook_deliveries_due_per_receiver ON webhook_deliveries (webhook_id, next_attempt_at) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS webhook_deliveries_finished ON webhook_deliveries (finished_at) WHERE status <> 'pending';
