-- A command's first round trip in one call: lock its credits, then read them and find
-- which of its command ids are applied. plpgsql takes a new snapshot per statement (the
-- function is VOLATILE, the isolation READ COMMITTED), so the reads see whatever the
-- previous holders of the locks committed.
--
-- Advisory locks, not FOR UPDATE: a row lock gives the transaction its id at once, and a
-- transaction that then waits for another credit would commit that credit's next
-- version under an older id than its previous one, out of order in the feed (which
-- reads in txid order). Advisory locks assign no id: it comes with the first insert,
-- after every lock is held. Taken in one fixed order, so two commands over the same
-- credits cannot deadlock.
CREATE FUNCTION ledger_lock_and_load(sites UUID[], ids UUID[], command_sites UUID[], command_ids UUID[])
RETURNS TABLE (site_id UUID, billing_credit_id UUID, state TEXT, last_hash BYTEA, command_id UUID)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended(k.s::text || '/' || k.c::text, 0))
       FROM (SELECT DISTINCT s, c FROM unnest(sites, ids) AS t(s, c) ORDER BY s, c) k;
    RETURN QUERY
        SELECT b.site_id, b.billing_credit_id, b.state::text, b.last_hash, NULL::uuid
          FROM billing_credits b
         WHERE (b.site_id, b.billing_credit_id) IN (SELECT * FROM unnest(sites, ids));
    RETURN QUERY
        SELECT DISTINCT e.site_id, NULL::uuid, NULL::text, NULL::bytea, e.command_id
          FROM events e
         WHERE (e.site_id, e.command_id) IN (SELECT * FROM unnest(command_sites, command_ids));
END;
$$;
