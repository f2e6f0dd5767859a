-- The event store: append-only. Every change to a billing credit is one row here.
-- Timestamps are INTEGER microseconds since the Unix epoch (sortable, exact); amounts
-- in sortable columns are INTEGER multiples of 10^-4 (AMOUNT_SCALE_MAX), exact.
CREATE TABLE events (
    -- SQLite has one writer at a time, so positions are assigned in commit order.
    position           INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id           BLOB    NOT NULL UNIQUE,
    site_id            BLOB    NOT NULL,
    billing_credit_id  BLOB    NOT NULL,
    version            INTEGER NOT NULL CHECK (version >= 1),
    event_type         TEXT    NOT NULL,
    schema_version     INTEGER NOT NULL,
    payload            TEXT    NOT NULL,
    actor              TEXT    NOT NULL,
    command_id         BLOB,
    correlation_id     BLOB,
    causation_id       BLOB,
    occurred_at        INTEGER NOT NULL,
    recorded_at        INTEGER NOT NULL,
    hash               BLOB    NOT NULL CHECK (length(hash) = 32),
    UNIQUE (site_id, billing_credit_id, version)
);
CREATE INDEX events_site_feed ON events (site_id, position);

CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are append-only: UPDATE refused');
END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are append-only: DELETE refused');
END;

CREATE TABLE billing_credits (
    site_id                                    BLOB    NOT NULL,
    billing_credit_id                          BLOB    NOT NULL,
    version                                    INTEGER NOT NULL,
    last_hash                                  BLOB    NOT NULL,
    deleted                                    INTEGER NOT NULL,
    credit_type                                TEXT    NOT NULL,
    is_active                                  INTEGER NOT NULL,
    wellness_plan_id                           BLOB,
    wellness_plan_benefit_id                   BLOB,
    wellness_plan_membership_id                BLOB,
    wellness_plan_membership_cycle_id          BLOB,
    wellness_plan_membership_status_period_id  BLOB,
    start_date                                 INTEGER NOT NULL,
    end_date                                   INTEGER,
    created_at                                 INTEGER NOT NULL,
    updated_at                                 INTEGER NOT NULL,
    total_amount                               INTEGER NOT NULL,
    used_amount                                INTEGER NOT NULL,
    wasted_amount                              INTEGER NOT NULL,
    remaining_amount                           INTEGER NOT NULL,
    state                                      TEXT    NOT NULL,
    PRIMARY KEY (site_id, billing_credit_id),
    CHECK (used_amount >= 0 AND wasted_amount >= 0 AND used_amount + wasted_amount <= total_amount)
);
CREATE INDEX billing_credits_created ON billing_credits (site_id, created_at, billing_credit_id) WHERE NOT deleted;
CREATE INDEX billing_credits_updated ON billing_credits (site_id, updated_at, billing_credit_id) WHERE NOT deleted;
CREATE INDEX billing_credits_membership ON billing_credits (site_id, wellness_plan_membership_id) WHERE NOT deleted;
CREATE INDEX billing_credits_plan ON billing_credits (site_id, wellness_plan_id) WHERE NOT deleted;
CREATE INDEX events_command ON events (site_id, command_id) WHERE command_id IS NOT NULL;
