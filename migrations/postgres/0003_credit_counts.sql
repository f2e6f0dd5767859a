-- How many live credits each site has, by type and activity: the list endpoint's total
-- without counting a million rows. Kept in the same transaction as the projection.
CREATE TABLE credit_counts (
    site_id      UUID    NOT NULL,
    credit_type  TEXT    NOT NULL,
    is_active    BOOLEAN NOT NULL,
    live         BIGINT  NOT NULL,
    PRIMARY KEY (site_id, credit_type, is_active)
);
INSERT INTO credit_counts (site_id, credit_type, is_active, live)
SELECT site_id, credit_type, is_active, count(*) FROM billing_credits WHERE NOT deleted GROUP BY 1, 2, 3;
