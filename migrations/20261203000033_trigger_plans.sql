-- Three statements on the fulfilment's path, written so that their cost does not depend on the plan
-- PostgreSQL chose for them (issue 17).
--
-- A PL/pgSQL function keeps each statement's plan for the life of the connection, and the plan is
-- made again only when the tables' statistics change (ANALYZE, VACUUM). Profiled with
-- pg_stat_statements in the benchmark, on a server with autovacuum off (this machine's own
-- configuration), the two statements below took most of PostgreSQL's time in a fulfilment:
-- I3's check, `exists (token … and not exists (purchase …))`, planned while `purchase` was nearly
-- empty, read every purchase at each commit (3.2 ms a call against 0.03 ms for I5's check of the
-- same token, which joins the same two rows); and the job's seller was looked up by comparing each
-- listing with `job_listing(kind, subject)`, evaluated once per listing read. Autovacuum's ANALYZE
-- would have made both plans again; these bodies need no statistics to be cheap.
--
-- The third went the other way: with statistics taken while every token was available (a
-- `vacuum analyze` of the benchmark's database after its preparation), the one-statement
-- fulfilment's check that the pool has a token, `exists (… tier_id, state = 'available',
-- max_installs …)`, was planned as a sequential scan of `install_token` expected to stop at once.
-- Tokens are claimed oldest first, so as sales went on each check walked past every token claimed
-- before it (auto_explain showed the plan, in a run where fulfilment fell from 552/s to 293/s;
-- pgbench replaying the one statement on that database: 528/s, and 630–707/s with the check below).
-- It now reads the pool's index in the claim's own order.
--
-- Nothing checked changes: I3 (migration 12) and the job's seller (migration 28) say the same.

-- I3, deferred to commit: an assigned token belongs to a purchase that is fulfilled or reinstated.
-- The token and then its purchase, each read by its primary key.
create or replace function check_token_matches_purchase()
    returns trigger as
$$
declare
    owner    uuid;
    assigned boolean;
begin
    select it.purchase_id, it.state = 'assigned' into owner, assigned
    from install_token it
    where it.install_token_id = new.install_token_id;
    if assigned and not exists(select 1 from purchase p
                               where p.purchase_id = owner
                                 and p.status in ('fulfilled', 'reinstated')) then
        raise exception 'token % is assigned to purchase % which is neither fulfilled nor reinstated',
            new.install_token_id, new.purchase_id
            using errcode = 'check_violation';
    end if;
    return null;
end;
$$ language plpgsql;

-- The seller whose listing a job is about: the listing worked out once, then read by its key. A job
-- about no listing (mail) reads nothing.
create or replace function job_records_its_seller() returns trigger
    language plpgsql as
$$
declare
    about uuid := job_listing(new.kind, new.subject);
begin
    if about is null then
        new.seller_id := null;
        return new;
    end if;
    select l.seller_id into new.seller_id
    from listing l join seller s using (seller_id)
    where l.listing_id = about and not s.house;
    return new;
end
$$;

-- The one-statement fulfilment of migration 31, with the pool check above; nothing else changes.
create or replace function fulfil_paid_session(p_event_id text, p_event_type text, p_livemode boolean,
                                    p_purchase uuid, p_session text, p_payment_intent text,
                                    p_amount bigint, p_currency text, p_email text, p_actor text,
                                    out outcome text, out token bigint)
    language plpgsql
as
$$
declare
    p       purchase;
    closing boolean;
    low     boolean;
begin
    -- Whether this is the fast path at all, before anything is written or locked.
    if p_event_id is not null
        and exists (select 1 from stripe_event where stripe_event_id = p_event_id) then
        outcome := 'duplicate';
        return;
    end if;
    select * into p from purchase where purchase_id = p_purchase;
    if not found
        or p.status <> 'pending'
        or p.upgrade_of is not null
        or not (p.checkout_session_id is not distinct from p_session
                or (p.checkout_session_id is null and p.amount = p_amount and p.currency = p_currency))
        or exists (select 1 from stripe_payment sp
                   where sp.payment_intent_id = p_payment_intent
                     and (sp.fully_refunded or sp.disputed or sp.dispute_outcome is not null))
        -- The pool's own index in its order, as the claim reads it: `exists` alone may be planned
        -- as a sequential scan, which walks past every token claimed before reaching one left.
        or (select it.install_token_id from install_token it
            where it.tier_id = p.tier_id and it.state = 'available'
              and it.max_installs = p.max_installs
            order by it.install_token_id
            limit 1) is null then
        outcome := 'fallback';
        return;
    end if;

    if p_event_id is not null then
        insert into stripe_event (stripe_event_id, type, livemode, outcome)
        values (p_event_id, p_event_type, p_livemode, 'processing')
        on conflict (stripe_event_id) do nothing;
        if not found then
            outcome := 'duplicate'; -- a concurrent delivery of the same event; nothing written yet
            return;
        end if;
    end if;

    -- Lock order as on every path: stripe_payment, then purchase.
    if p_payment_intent is not null then
        insert into stripe_payment (payment_intent_id) values (p_payment_intent)
        on conflict (payment_intent_id) do update set payment_intent_id = excluded.payment_intent_id
        returning fully_refunded or disputed or dispute_outcome is not null into closing;
        if closing then
            raise exception using errcode = 'MKT01', message = 'fulfil_paid_session: a refund or dispute came first';
        end if;
    end if;

    with linked as (
        update purchase
        set checkout_session_id = coalesce(checkout_session_id, p_session),
            payment_intent_id = coalesce(payment_intent_id, p_payment_intent),
            email = coalesce(email, p_email)
        where purchase_id = p_purchase
          and (checkout_session_id = p_session
               or (checkout_session_id is null and amount = p_amount and currency = p_currency))
        returning *
    ), payment as (
        update stripe_payment set purchase_id = coalesce(stripe_payment.purchase_id, linked.purchase_id)
        from linked
        where stripe_payment.payment_intent_id = p_payment_intent
    )
    select * into p from linked;
    if not found or p.status <> 'pending' or p.upgrade_of is not null then
        raise exception using errcode = 'MKT01', message = 'fulfil_paid_session: the purchase moved';
    end if;

    select c.token, c.low into token, low from pool_claim(p.tier_id, p.purchase_id, p.max_installs) c;
    if token is null then
        raise exception using errcode = 'MKT01', message = 'fulfil_paid_session: the pool ran dry';
    end if;

    update purchase
    set status = 'fulfilled', paid_at = coalesce(paid_at, now()), fulfilled_at = coalesce(fulfilled_at, now())
    where purchase_id = p.purchase_id;
    insert into audit_event (actor, action, purchase_id, install_token_id, detail)
    values (p_actor, 'purchase.paid', p.purchase_id, null, '{"from": "pending", "to": "paid"}'),
           (p_actor, 'purchase.fulfilled', p.purchase_id, null, '{"from": "paid", "to": "fulfilled"}'),
           (p_actor, 'token.assigned', p.purchase_id, token, '{}');
    if low then
        insert into job (kind, subject) values ('replenish_pool', p.tier_id::text)
        on conflict (kind, subject) where state in ('queued', 'running', 'parked') do nothing;
    end if;
    if p_event_id is not null then
        update stripe_event set outcome = 'fulfilled', purchase_id = p.purchase_id
        where stripe_event_id = p_event_id;
    end if;
    outcome := 'fulfilled';
end
$$;
