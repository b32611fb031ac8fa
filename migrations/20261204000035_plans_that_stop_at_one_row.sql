-- Three more costs on the fulfilment's path that grew with the data or were paid again on every
-- call (issue 17, seventh session).
--
-- Profiled with `track_functions = all` (PostgreSQL's own per-function timing) on pgbench calling
-- `fulfil_paid_session` one purchase after another, one client, 5 000 tokens per pool, the tables
-- unanalyzed as this machine leaves them (autovacuum off): 19.0 ms per fulfilment inside
-- PostgreSQL, of which the claim (`pool_claim`) 8.8 ms and the function's own check that the pool
-- has a token most of its 7.6 ms of self time; the job's seller lookup (`job_listing`) 0.95 ms; the
-- webhook's purchase data 0.53 ms. `auto_explain` showed why.

-- 1. The pool's index now leads with what the claim asks for. The claim reads "the oldest available
--    token of this tier with these installs": `tier_id = … and max_installs = … order by
--    install_token_id limit 1`. On `(tier_id, install_token_id)` the planner, with no statistics
--    (it guesses three rows), read *every* available token of the tier by bitmap, fetched each
--    from the table to test `max_installs`, sorted them and kept one: 4 320 buffers for one claim
--    on a 5 000-token pool, and twice per sale (the check, then the claim). A bitmap scan also
--    visits every claimed token's dead index entry again (only a plain index scan marks them dead),
--    so the cost grew with the sales until a vacuum. With `max_installs` in the index the claim's
--    order is the index's order under equality on both leading columns: an index scan that stops
--    at the first row it can lock, whatever the statistics say. Pool tokens of a tier all carry its
--    installs (`check_pool_token_limits_are_the_tier`, migration 21). The counts and moves by tier
--    read the index's prefix. One reader loses the index's order: a rotation's reservation
--    (`jobs/rotate.rs`) asks by tier alone, oldest first, and now sorts the tier's pool (at most
--    its target, 1 000) to pick one; rotations are rare, and asking with the tier's installs too
--    would make it an index scan in order again.
create index install_token_pool_claim on install_token (tier_id, max_installs, install_token_id)
    where state = 'available';
drop index install_token_pool;

-- 2 and 3. A SQL function that PostgreSQL cannot inline (these two: a subquery, a join) is planned
--    afresh on every call from PL/pgSQL; a PL/pgSQL body keeps its statements' plans for the
--    connection's life. Both run in a trigger on every sale: the job's seller (`job_records_its_seller`,
--    for the receipt's mail job) and the purchase's webhook data (`purchase_status_emits_webhook`).
--    Same answers as migrations 26 and 29: each branch below is one `case` arm there, in order.

-- Which listing a job is about (migration 26): mail belongs to none; a subject that is not an id of
-- its kind, or no longer exists, has none.
create or replace function job_listing(job_kind text, subject text) returns uuid
    language plpgsql
    stable
as
$$
declare
    about uuid;
begin
    if job_kind = 'delete_token' then
        if subject ~ '^[0-9]{1,18}$' then
            select listing_id into about from install_token where install_token_id = subject::bigint;
        end if;
        return about;
    end if;
    if subject !~ '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$' then
        return null;
    end if;
    case job_kind
        when 'replenish_pool' then
            select listing_id into about from tier where tier_id = subject::uuid;
        when 'mint_for_purchase', 'apply_upgrade' then
            select t.listing_id into about
            from purchase p join tier t using (tier_id)
            where p.purchase_id = subject::uuid;
        when 'reconcile_listing' then
            select listing_id into about from listing where listing_id = subject::uuid;
        when 'rotate_token' then
            select it.listing_id into about
            from token_rotation r join install_token it on it.install_token_id = r.old_token_id
            where r.rotation_id = subject::uuid;
        else
            about := null;
    end case;
    return about;
end
$$;

-- What every purchase event says of the purchase (migration 29).
create or replace function webhook_purchase_data(p purchase) returns jsonb
    language plpgsql
    stable
as
$$
declare
    data jsonb;
begin
    select jsonb_build_object(
                   'purchase_id', p.purchase_id,
                   'status', p.status,
                   'seller_id', p.seller_id,
                   'listing', jsonb_build_object('listing_id', l.listing_id, 'canonical', l.canonical,
                                                 'title', l.title),
                   'tier', jsonb_build_object('tier_id', t.tier_id, 'slug', t.slug, 'name', t.name),
                   'amount', p.amount,
                   'currency', p.currency,
                   'application_fee_amount', p.application_fee_amount,
                   'amount_refunded', p.amount_refunded,
                   'max_installs', p.max_installs,
                   'email', p.email,
                   'upgrade_of', p.upgrade_of,
                   'paid_at', p.paid_at,
                   'fulfilled_at', p.fulfilled_at,
                   'closed_at', p.closed_at)
    into data
    from tier t
             join listing l using (listing_id)
    where t.tier_id = p.tier_id;
    return data;
end
$$;
