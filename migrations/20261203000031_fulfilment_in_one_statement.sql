-- Fulfilment in one round trip (issue 17).
--
-- The launch-day case — Stripe says a pending purchase is paid and its tier's pool has a token — was
-- a transaction of ten round trips (BEGIN, the inbox, the PaymentIntent tombstone, the purchase
-- locked and linked, the claim, the status, the audit entries, the inbox outcome, COMMIT, and the
-- pool's liveness ping). Each waits for the network and for a scheduler on a machine whose two cores
-- PostgreSQL shares; the commit's WAL flush is the only wait that buys anything. Here the same
-- statements run inside PostgreSQL, called as one statement in its own implicit transaction.
--
-- Nothing about the invariants moves: every statement below is one the service sent before, in the
-- same order (so the same locks in the same order: stripe_payment, then purchase, then the pool
-- row), and every constraint and trigger of the tables still checks them — one live token per
-- purchase (`install_token_one_live_per_purchase`), the status machine's trigger, the outbox triggers
-- of mail and webhooks. What the function adds is only the choice of path: it does the fast path or
-- nothing, and the service then takes its general path (`payments::session`), which handles every
-- other case (a duplicate in flight, a tombstone, an upgrade, a foreign session, an empty pool).

-- Takes the oldest available token of a tier for a purchase and, in the same statement, tells
-- whether fewer than the tier's low-water mark are left. The pick is a scalar subquery, which
-- PostgreSQL evaluates once; the count reads the statement's snapshot, taken before the claim, so the
-- claimed token is subtracted; it stops at `pool_low_water + 1` index entries. `max_installs` is what
-- the purchase is entitled to (an upgraded one's fits no pool token). Called by
-- `fulfil_paid_session` and by `pool::claim_reporting_low` (the general path): the claim is written
-- once.
create function pool_claim(p_tier uuid, p_purchase uuid, p_max_installs bigint,
                           out token bigint, out low boolean)
    language plpgsql
as
$$
begin
    with claimed as (
        update install_token
        set state = 'assigned', purchase_id = p_purchase, assigned_at = now()
        where install_token_id = (
            select install_token_id from install_token
            where tier_id = p_tier and state = 'available' and max_installs = p_max_installs
            order by install_token_id
            limit 1
            for update skip locked
        )
        returning install_token_id
    )
    select (select install_token_id from claimed),
           coalesce((select (select count(*) from (
                                 select 1 from install_token
                                 where tier_id = t.tier_id and state = 'available'
                                 limit t.pool_low_water + 1) a)
                            - (select count(*) from claimed) < t.pool_low_water
                     from tier t where t.tier_id = p_tier and t.active), false)
    into token, low;
end
$$;

-- Raised when the fast path finds, after it has begun writing, that it does not apply after all (a
-- concurrent fact got there first): the statement is rolled back whole, and the service takes its
-- general path. The checks before the first write make this rare.
--   SQLSTATE 'MKT01': fulfil_paid_session: not the fast path

-- A Checkout Session says paid (`checkout.session.completed`, `async_payment_succeeded`, or the
-- success page's read of the session): when its purchase is pending, not an upgrade, the session is
-- the purchase's, no refund or dispute waits on its PaymentIntent and the pool has a token, does
-- what `payments::session` would — inbox row, tombstone, link, claim, `fulfilled`, the three audit
-- entries, a replenisher when the pool runs low, the inbox outcome — and answers
-- ('fulfilled', token). ('duplicate', null): the event id is in the inbox already, nothing written.
-- ('fallback', null): not this path, nothing written.
--
-- `p_event_id` is null for a session read from Stripe (no inbox row). `p_amount`/`p_currency` are
-- what the session charges in a one-time payment (null otherwise); `p_email` the payer's email as
-- Checkout collected it (recorded on a purchase that has none); `p_actor` the audit actor.
create function fulfil_paid_session(p_event_id text, p_event_type text, p_livemode boolean,
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
        or not exists (select 1 from install_token it
                       where it.tier_id = p.tier_id and it.state = 'available'
                         and it.max_installs = p.max_installs) then
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
