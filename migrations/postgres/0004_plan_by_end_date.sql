-- A plan's credits by end date ("which of this plan's credits end first") come off the
-- index in order, one heap read per row of the page, instead of reading and sorting
-- every credit of the plan (10,000 rows for a plan of a 1M-credit site). The old index
-- is its prefix, so it goes.
CREATE INDEX billing_credits_plan_end ON billing_credits (site_id, wellness_plan_id, end_date, billing_credit_id) WHERE NOT deleted;
DROP INDEX billing_credits_plan;
