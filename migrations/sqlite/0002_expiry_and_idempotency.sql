-- The expiry sweep finds credits past their endDate with a balance left, not yet expired.
ALTER TABLE billing_credits ADD COLUMN expired INTEGER NOT NULL DEFAULT 0;
CREATE INDEX billing_credits_due_for_expiry ON billing_credits (end_date)
    WHERE NOT deleted AND NOT expired AND remaining_amount > 0 AND end_date IS NOT NULL;

-- Idempotency-Key: the first response to a keyed write, replayed for its retries.
-- Written in the same transaction as the command's events.
CREATE TABLE idempotency_keys (
    site_id       BLOB    NOT NULL,
    key           TEXT    NOT NULL,
    request_hash  TEXT    NOT NULL,
    status        INTEGER NOT NULL,
    body          TEXT    NOT NULL,
    headers       TEXT    NOT NULL, -- JSON object of response headers (ETag, Location)
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (site_id, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
