-- Balance alerts (issue 14): derived from the event feed by the alerter, delivered from
-- an outbox by webhook and NATS workers. See ledger-store src/alerts.rs.

-- Where the alerter has read the feed up to (one row; FeedCursor::encode text). It is
-- written in the same transaction as the alerts and deliveries derived from the events
-- before it, so an event is turned into alerts exactly once.
CREATE TABLE alert_checkpoint (
    id          SMALLINT    PRIMARY KEY CHECK (id = 1),
    cursor      TEXT        NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);

-- The member balance lines past a threshold now, one row each: an alert fires when a
-- row appears, and the line re-arms (the row is deleted) when it is back above.
CREATE TABLE alert_state (
    site_id                      UUID        NOT NULL,
    wellness_plan_membership_id  UUID        NOT NULL,
    credit_type                  TEXT        NOT NULL,
    unit_code                    TEXT        NOT NULL, -- '' for credits that name no unit
    kind                         TEXT        NOT NULL, -- low | depleted
    updated_at                   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (site_id, wellness_plan_membership_id, credit_type, unit_code, kind)
);

-- Per-site thresholds; a site without a row uses the service's configured defaults.
CREATE TABLE alert_settings (
    site_id                UUID        PRIMARY KEY,
    default_low_threshold  TEXT,                 -- exact decimal text
    low_thresholds         TEXT        NOT NULL, -- JSON object: unit code -> decimal text
    expiring_within_days   BIGINT,
    updated_at             TIMESTAMPTZ NOT NULL
);

-- Every alert once, under its deterministic id (its deduplication id on every wire).
CREATE TABLE alerts (
    alert_id           UUID        PRIMARY KEY,
    site_id            UUID        NOT NULL,
    kind               TEXT        NOT NULL, -- low | depleted | expiring
    billing_credit_id  UUID,                 -- expiring: the credit
    end_date           TIMESTAMPTZ,          -- expiring: the endDate alerted about
    payload            TEXT        NOT NULL, -- JSON, the body every consumer receives
    created_at         TIMESTAMPTZ NOT NULL
);
CREATE INDEX alerts_expiring ON alerts (site_id, billing_credit_id, end_date) WHERE billing_credit_id IS NOT NULL;

CREATE TABLE webhook_endpoints (
    endpoint_id  UUID        PRIMARY KEY,
    site_id      UUID        NOT NULL,
    url          TEXT        NOT NULL,
    description  TEXT,
    secret       TEXT        NOT NULL, -- the HMAC key; the ledger must sign with it, so it is kept as is
    created_at   TIMESTAMPTZ NOT NULL,
    deleted      BOOLEAN     NOT NULL DEFAULT false
);
CREATE INDEX webhook_endpoints_site ON webhook_endpoints (site_id, created_at) WHERE NOT deleted;

-- The outbox: one row per alert and consumer (a webhook endpoint, or NATS), written in
-- the alerter's transaction. A worker claims a due row for a lease (claimed_until,
-- claim_token), so one replica at a time attempts it.
CREATE TABLE alert_deliveries (
    delivery_id       UUID        PRIMARY KEY,
    alert_id          UUID        NOT NULL REFERENCES alerts (alert_id),
    site_id           UUID        NOT NULL,
    kind              TEXT        NOT NULL,
    target            TEXT        NOT NULL, -- webhook | nats
    endpoint_id       UUID REFERENCES webhook_endpoints (endpoint_id),
    status            TEXT        NOT NULL, -- pending | delivered | failed
    attempts          BIGINT      NOT NULL DEFAULT 0,
    next_attempt_at   TIMESTAMPTZ NOT NULL,
    give_up_at        TIMESTAMPTZ NOT NULL,
    claimed_until     TIMESTAMPTZ,
    claim_token       UUID,
    last_status_code  BIGINT,
    last_error        TEXT,
    created_at        TIMESTAMPTZ NOT NULL,
    delivered_at      TIMESTAMPTZ
);
CREATE INDEX alert_deliveries_due ON alert_deliveries (target, next_attempt_at) WHERE status = 'pending';
CREATE INDEX alert_deliveries_endpoint ON alert_deliveries (endpoint_id, created_at);
