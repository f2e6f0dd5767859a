-- Idempotency keys keep the first outcome in the store's own terms (a refusal, or the
-- credits a commit left at which versions), no longer a rendered HTTP response. Keys
-- recorded before this migration are forgotten: a retry of a committed command is still
-- applied once, as its events carry the command id the key derives.
DROP TABLE idempotency_keys;
CREATE TABLE idempotency_keys (
    site_id       UUID        NOT NULL,
    key           TEXT        NOT NULL,
    request_hash  TEXT        NOT NULL,
    outcome       TEXT        NOT NULL, -- JSON, see ledger-store sql/once.rs
    created_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (site_id, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
