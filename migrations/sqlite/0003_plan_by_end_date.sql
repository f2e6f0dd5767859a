-- A plan's credits by end date come off the index in order (see the Postgres migration
-- of the same name). The old index is its prefix, so it goes.
CREATE INDEX billing_credits_plan_end ON billing_credits (site_id, wellness_plan_id, end_date, billing_credit_id) WHERE NOT deleted;
DROP INDEX billing_credits_plan;
