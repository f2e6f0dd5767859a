-- A member's statement reads their deleted credits too (their history stays on it), which
-- the partial membership index (NOT deleted) cannot serve: one index for both.
DROP INDEX billing_credits_membership;
CREATE INDEX billing_credits_member ON billing_credits (site_id, wellness_plan_membership_id);
