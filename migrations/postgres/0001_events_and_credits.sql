-- The event store: append-only. Every change to a billing credit is one row here.
CREATE TABLE events (
    -- Global position, assigned at insert. Not gap-free and not commit-ordered on its
    -- own: feed readers order by (txid, position) and stop below the oldest open txid.
    position           BIGSERIAL PRIMARY KEY,
    txid               XID8        NOT NULL DEFAULT pg_current_xact_id(),
    event_id           UUID        NOT NULL UNIQUE,
    site_id            UUID        NOT NULL,
    billing_credit_id  UUID        NOT NULL,
    version            BIGINT      NOT NULL CHECK (version >= 1),
    event_type         TEXT        NOT NULL,
    schema_version     SMALLINT    NOT NULL,
    -- json (not jsonb) keeps the bytes exactly as hashed.
    payload            JSON        NOT NULL,
    actor              TEXT        NOT NULL,
    command_id         UUID,
    correlation_id     UUID,
    causation_id       UUID,
    occurred_at        TIMESTAMPTZ NOT NULL,
    recorded_at        TIMESTAMPTZ NOT NULL,
    -- SHA-256 over the previous event's hash in the stream and this event's canonical bytes.
    hash               BYTEA       NOT NULL CHECK (length(hash) = 32),
    UNIQUE (site_id, billing_credit_id, version)
);
CREATE INDEX events_feed ON events (txid, position);
CREATE INDEX events_site_feed ON events (site_id, txid, position);

CREATE FUNCTION events_are_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'events are append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER events_no_update_or_delete BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_are_append_only();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_are_append_only();

-- The projection: one row per credit, written in the same transaction as its events.
-- `state` is the whole folded credit; the other columns exist to filter and sort.
CREATE TABLE billing_credits (
    site_id                                    UUID        NOT NULL,
    billing_credit_id                          UUID        NOT NULL,
    version                                    BIGINT      NOT NULL,
    last_hash                                  BYTEA       NOT NULL,
    deleted                                    BOOLEAN     NOT NULL,
    credit_type                                TEXT        NOT NULL,
    is_active                                  BOOLEAN     NOT NULL,
    wellness_plan_id                           UUID,
    wellness_plan_benefit_id                   UUID,
    wellness_plan_membership_id                UUID,
    wellness_plan_membership_cycle_id          UUID,
    wellness_plan_membership_status_period_id  UUID,
    start_date                                 TIMESTAMPTZ NOT NULL,
    end_date                                   TIMESTAMPTZ,
    created_at                                 TIMESTAMPTZ NOT NULL,
    updated_at                                 TIMESTAMPTZ NOT NULL,
    total_amount                               NUMERIC     NOT NULL,
    used_amount                                NUMERIC     NOT NULL,
    wasted_amount                              NUMERIC     NOT NULL,
    remaining_amount                           NUMERIC     NOT NULL,
    state                                      JSON        NOT NULL,
    PRIMARY KEY (site_id, billing_credit_id),
    CHECK (used_amount >= 0 AND wasted_amount >= 0 AND used_amount + wasted_amount <= total_amount)
);
CREATE INDEX billing_credits_created ON billing_credits (site_id, created_at, billing_credit_id) WHERE NOT deleted;
CREATE INDEX billing_credits_updated ON billing_credits (site_id, updated_at, billing_credit_id) WHERE NOT deleted;
CREATE INDEX billing_credits_end ON billing_credits (site_id, end_date, billing_credit_id) WHERE NOT deleted;
CREATE INDEX billing_credits_membership ON billing_credits (site_id, wellness_plan_membership_id) WHERE NOT deleted;
CREATE INDEX billing_credits_plan ON billing_credits (site_id, wellness_plan_id) WHERE NOT deleted;
CREATE INDEX billing_credits_benefit ON billing_credits (site_id, wellness_plan_benefit_id) WHERE NOT deleted;
CREATE INDEX billing_credits_cycle ON billing_credits (site_id, wellness_plan_membership_cycle_id) WHERE NOT deleted;
CREATE INDEX billing_credits_status_period ON billing_credits (site_id, wellness_plan_membership_status_period_id) WHERE NOT deleted;
CREATE INDEX events_command ON events (site_id, command_id) WHERE command_id IS NOT NULL;
