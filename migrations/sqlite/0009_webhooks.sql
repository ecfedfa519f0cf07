-- Webhook receivers, the events each subscribes to, and the outbox of deliveries.
-- A delivery row is written in the same transaction as the change (and its audit event) that
-- caused it, one per subscribed receiver; the delivery worker claims due rows by moving
-- `next_attempt_at` past a lease, so a process killed mid-delivery leaves its claims to expire.
CREATE TABLE webhooks (
    id            TEXT PRIMARY KEY,
    url           TEXT NOT NULL,
    secret_sealed BLOB NOT NULL,               -- the signing secret, sealed with the master key
    created_at    INTEGER NOT NULL
);

CREATE TABLE webhook_events (
    webhook_id TEXT NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    event_type TEXT NOT NULL,
    PRIMARY KEY (event_type, webhook_id)
) WITHOUT ROWID;

CREATE TABLE webhook_deliveries (
    message_id      TEXT NOT NULL,             -- the `webhook-id`, the same on every attempt
    webhook_id      TEXT NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    event_type      TEXT NOT NULL,
    payload         TEXT NOT NULL,             -- the JSON body, signed as sent
    created_at      INTEGER NOT NULL,          -- Unix milliseconds
    status          TEXT NOT NULL,             -- pending, delivered or failed
    attempts        INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,          -- Unix milliseconds; a claim's lease end
    last_error      TEXT,                      -- the last failed attempt's status or error class
    finished_at     INTEGER,                   -- delivered or given up, Unix milliseconds
    PRIMARY KEY (message_id, webhook_id)
) WITHOUT ROWID;
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
-- A receiver's due deliveries: each receiver is claimed for on its own, within its own slots.
CREATE INDEX webhook_deliveries_due_per_receiver ON webhook_deliveries (webhook_id, next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_finished ON webhook_deliveries (finished_at) WHERE status <> 'pending';
