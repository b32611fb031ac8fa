-- Outgoing webhooks: the service tells sellers (and the platform) what happened, signed to the
-- Standard Webhooks specification (`webhook-id`, `webhook-timestamp`, `webhook-signature`).
--
-- **A transactional outbox, like buyers' mail (migration 15).** Every fact a seller is told of is
-- a row change in this schema: a purchase's status, a token deleted at Xano, a rotation done, a
-- pool refill queued, a credential refused or healed, a job dead. A trigger on each writes the
-- `webhook_event` (its `data` built here, from the rows as they are in that transaction) and one
-- `webhook_delivery` per endpoint that wants it, so a fact that commits has its event and its
-- deliveries, one that rolls back has neither, and no code path can forget one. A fact applied twice
-- (a duplicate Stripe event, two instances racing) finds its event by `fact` and writes nothing.
--
-- **Order per purchase.** Facts about one purchase take increasing `seq` in commit order (a
-- transaction-scoped advisory lock per purchase in `webhook_emit`). A delivery is claimed only when
-- no earlier delivery of the same `order_key` to the same endpoint is still pending
-- (`webhooks::deliveries`, on `webhook_delivery_in_order`), so an endpoint receives a purchase's
-- events in the order they happened: a later one is never sent until the earlier one was answered
-- 2xx (or given up on). Retries repeat the same `webhook-id`, which is
-- the duplicate the specification allows.
--
-- **No secret here in clear.** Endpoint secrets are sealed like install tokens (AES-256-GCM under
-- a key id, the context naming the endpoint). An event about a buyer's token names the token's
-- row, not its value: the value is opened when the delivery is sent, and only for endpoints that
-- opted in (`include_token`).

create table webhook_endpoint
(
    endpoint_id          uuid primary key     default gen_random_uuid(),
    -- Whose events it receives; null: the platform's, which receives every seller's.
    seller_id            uuid references seller,
    -- `https://` in production; the SSRF guard (`courier`) checks the address it resolves to at
    -- every delivery, since a name can be pointed elsewhere after it was accepted.
    url                  text        not null check (url ~ '^https?://[^\s]+$' and length(url) <= 2048),
    description          text        not null default '' check (length(description) <= 500),
    -- The event types it wants; empty: all of them.
    event_types          text[]      not null default '{}' check (event_types <@ array [
        'purchase.paid', 'purchase.fulfilled', 'purchase.refunded', 'purchase.disputed',
        'purchase.upgraded', 'token.rotated', 'token.revoked', 'pool.low', 'credential.unhealthy',
        'credential.healthy', 'job.dead']),
    -- Whether events about the buyer's token (purchase.fulfilled, token.rotated) carry its value.
    include_token        boolean     not null default false,
    -- disabled: by its owner, or by the deliverer after failing without a break for the configured
    -- time. Nothing new is queued for a disabled endpoint; what was queued waits for it.
    state                text        not null default 'enabled' check (state in ('enabled', 'disabled')),
    disabled_reason      text,
    disabled_at          timestamptz,
    -- The start of the current unbroken run of failed attempts (null after a 2xx).
    failing_since        timestamptz,
    consecutive_failures integer     not null default 0 check (consecutive_failures >= 0),
    last_success_at      timestamptz,
    created_at           timestamptz not null default now(),
    updated_at           timestamptz not null default now(),
    check ((state = 'disabled') = (disabled_at is not null)),
    check ((failing_since is null) = (consecutive_failures = 0))
);
select trigger_updated_at('webhook_endpoint');
create index webhook_endpoint_by_seller on webhook_endpoint (seller_id);

-- An endpoint's signing secrets. One is current (`expires_at` null); a roll makes a new current
-- one and gives the old one an expiry, until which deliveries are signed with both (the header
-- carries both signatures), so a receiver can switch at its own pace.
create table webhook_secret
(
    secret_id   uuid primary key     default gen_random_uuid(),
    endpoint_id uuid        not null references webhook_endpoint on delete cascade,
    key_id      text        not null,
    sealed      bytea       not null,
    created_at  timestamptz not null default now(),
    expires_at  timestamptz
);
create unique index webhook_secret_one_current on webhook_secret (endpoint_id) where expires_at is null;
create index webhook_secret_by_endpoint on webhook_secret (endpoint_id);

-- One row per fact, kept for replays. `event_id` is what receivers see as `webhook-id`.
create table webhook_event
(
    seq         bigint generated always as identity primary key,
    event_id    uuid        not null unique default gen_random_uuid(),
    type        text        not null check (type in (
        'purchase.paid', 'purchase.fulfilled', 'purchase.refunded', 'purchase.disputed',
        'purchase.upgraded', 'token.rotated', 'token.revoked', 'pool.low', 'credential.unhealthy',
        'credential.healthy', 'job.dead')),
    seller_id   uuid        not null references seller,
    -- What order is kept along: the purchase (an upgrade's base), a tier, a seller's credential, a job.
    order_key   text        not null,
    fact        text        not null unique,
    purchase_id uuid references purchase,
    -- The token whose value an opted-in endpoint receives (see above); never the value itself.
    token_id    bigint references install_token,
    data        jsonb       not null check (jsonb_typeof(data) = 'object'),
    created_at  timestamptz not null default now()
);
create index webhook_event_by_seller on webhook_event (seller_id, created_at);
create index webhook_event_by_time on webhook_event (created_at);

create table webhook_delivery
(
    delivery_id      bigint generated always as identity primary key,
    event_seq        bigint      not null references webhook_event,
    endpoint_id      uuid        not null references webhook_endpoint on delete cascade,
    order_key        text        not null,
    -- pending: to be sent at `due_at` (or being sent, under a lease); delivered: answered 2xx;
    -- failed: still refused when its retries ran out (a redelivery or a replay makes it pending).
    state            text        not null default 'pending' check (state in ('pending', 'delivered', 'failed')),
    due_at           timestamptz not null default now(),
    lease_owner      uuid,
    lease_until      timestamptz,
    attempts         integer     not null default 0 check (attempts >= 0),
    -- Retries stop this long after the first attempt (`MARKET_WEBHOOK_RETRY_FOR`); a redelivery
    -- starts the clock again.
    first_attempt_at timestamptz,
    last_attempt_at  timestamptz,
    last_status      integer,
    last_error       text,
    delivered_at     timestamptz,
    created_at       timestamptz not null default now(),
    unique (event_seq, endpoint_id),
    check ((state = 'delivered') = (delivered_at is not null)),
    check ((lease_owner is null) = (lease_until is null)),
    check (lease_owner is null or state = 'pending')
);
create index webhook_delivery_due on webhook_delivery (due_at) where state = 'pending';
create index webhook_delivery_in_order on webhook_delivery (endpoint_id, order_key, event_seq) where state = 'pending';
create index webhook_delivery_by_endpoint on webhook_delivery (endpoint_id, delivery_id desc);
create index webhook_delivery_by_event on webhook_delivery (event_seq);

-- The delivery log: every attempt, its answer (status, time, the first KiB of the body) or why
-- there was none (timeout, refused connection, an address the SSRF guard refused).
create table webhook_attempt
(
    attempt_id   bigint generated always as identity primary key,
    delivery_id  bigint      not null references webhook_delivery on delete cascade,
    endpoint_id  uuid        not null references webhook_endpoint on delete cascade,
    attempted_at timestamptz not null default now(),
    status       integer check (status between 100 and 599),
    latency_ms   integer     not null check (latency_ms >= 0),
    response     text check (length(response) <= 1024),
    error        text check (length(error) <= 1024),
    check (status is not null or error is not null)
);
create index webhook_attempt_by_endpoint on webhook_attempt (endpoint_id, attempted_at desc);
create index webhook_attempt_by_delivery on webhook_attempt (delivery_id, attempted_at desc);

-- The seller is told by email when the deliverer disables an endpoint.
alter table mail_message add column webhook_endpoint_id uuid references webhook_endpoint on delete set null;
alter table mail_message drop constraint mail_message_kind_check;
alter table mail_message add constraint mail_message_kind_check
    check (kind in ('receipt', 'access_ended', 'access_restored', 'portal_link', 'token_rotated',
                    'upgraded', 'upgrade_reversed', 'webhook_disabled'));
alter table mail_message drop constraint mail_message_names_its_subject;
alter table mail_message add constraint mail_message_names_its_subject
    check (case
               when kind = 'portal_link' then portal_link_id is not null and purchase_id is null
               -- the endpoint may be deleted after the message is written (`on delete set null`)
               when kind = 'webhook_disabled' then purchase_id is null and portal_link_id is null
               else purchase_id is not null and portal_link_id is null end);

-- Writes one event and its deliveries, once per `fact`.
create function webhook_emit(event_type text, seller uuid, key text, event_fact text, purchase uuid,
                             token bigint, event_data jsonb) returns void
    language plpgsql as
$$
declare
    new_seq bigint;
begin
    -- A purchase's events take their `seq` in the order their transactions commit: most are written
    -- under the purchase's row lock already, but not all (an upgrade's own payment locks the
    -- upgrade, not the purchase it orders with; reconciliation marks a token revoked without the
    -- purchase), and an identity is drawn at insert, not at commit. Without this lock a later event
    -- could commit first and be delivered before an earlier one that was still invisible.
    if key like 'purchase:%' then
        perform pg_advisory_xact_lock(hashtextextended(key, 29));
    end if;
    insert into webhook_event (type, seller_id, order_key, fact, purchase_id, token_id, data)
    values (event_type, seller, key, event_fact, purchase, token, event_data)
    on conflict (fact) do nothing
    returning seq into new_seq;
    if new_seq is null then
        return;
    end if;
    insert into webhook_delivery (event_seq, endpoint_id, order_key)
    select new_seq, e.endpoint_id, key
    from webhook_endpoint e
    where (e.seller_id = seller or e.seller_id is null)
      and e.state = 'enabled'
      and (cardinality(e.event_types) = 0 or event_type = any (e.event_types));
end
$$;

-- What every purchase event says of the purchase: ids, listing, tier, money, buyer, status.
create function webhook_purchase_data(p purchase) returns jsonb
    language sql stable as
$$
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
from tier t
         join listing l using (listing_id)
where t.tier_id = p.tier_id
$$;

-- A purchase's status is the fact:
--   paid → purchase.paid; fulfilled → purchase.fulfilled (an upgrade's: purchase.upgraded);
--   reinstated (a dispute won: the token is back) → purchase.fulfilled again, its status saying so;
--   refunded → purchase.refunded; disputed and dispute_lost → purchase.disputed.
-- A payment is told whenever it is recorded (`paid_at` set), also when the pool fulfils the
-- purchase in the same statement and it never rests in `paid`: purchase.paid comes first then.
-- An operator's revocation is told by token.revoked, when Xano has deleted the token.
create function purchase_status_emits_webhook() returns trigger
    language plpgsql as
$$
declare
    event_type text;
    token      bigint;
    data       jsonb := webhook_purchase_data(new);
    key        text  := 'purchase:' || coalesce(new.upgrade_of, new.purchase_id);
begin
    if new.upgrade_of is not null then
        data := data || jsonb_build_object('entitlement', purchase_entitlement(new.upgrade_of));
    end if;
    if old.paid_at is null and new.paid_at is not null then
        perform webhook_emit('purchase.paid', new.seller_id, key, new.purchase_id || ':purchase.paid',
                             new.purchase_id, null, data);
    end if;
    event_type := case
                      when new.status = 'fulfilled' and new.upgrade_of is not null then 'purchase.upgraded'
                      when new.status in ('fulfilled', 'reinstated') then 'purchase.fulfilled'
                      when new.status = 'refunded' then 'purchase.refunded'
                      when new.status in ('disputed', 'dispute_lost') then 'purchase.disputed'
        end;
    if event_type is null then
        return null;
    end if;
    if event_type = 'purchase.fulfilled' then
        select install_token_id into token
        from install_token
        where purchase_id = new.purchase_id and state = 'assigned';
    end if;
    perform webhook_emit(event_type, new.seller_id, key, new.purchase_id || ':' || event_type || ':' || new.status,
                         new.purchase_id, token, data);
    return null;
end
$$;

create trigger purchase_status_emits_webhook
    after update of status
    on purchase
    for each row
    when (new.status <> old.status)
execute function purchase_status_emits_webhook();

-- A sold token deleted at Xano because its purchase closed (refund, dispute, an operator's
-- revocation). A rotation's old token is told by token.rotated instead: its purchase is still open.
create function install_token_emits_revoked() returns trigger
    language plpgsql as
$$
declare
    p purchase;
begin
    if new.state <> 'revoked' or old.state = 'revoked' or new.purchase_id is null then
        return null;
    end if;
    select * into p from purchase where purchase_id = new.purchase_id;
    if p.status not in ('refunded', 'disputed', 'dispute_lost', 'revoked') then
        return null;
    end if;
    perform webhook_emit('token.revoked', p.seller_id, 'purchase:' || p.purchase_id,
                         'token:' || new.install_token_id || ':revoked', p.purchase_id, null,
                         webhook_purchase_data(p) || jsonb_build_object('token_id', new.install_token_id,
                                                                        'revoked_at', new.released_at));
    return null;
end
$$;

create trigger install_token_emits_revoked
    after update of state
    on install_token
    for each row
    when (new.state = 'revoked' and old.state <> 'revoked')
execute function install_token_emits_revoked();

create function token_rotation_emits_webhook() returns trigger
    language plpgsql as
$$
declare
    p purchase;
begin
    if new.state <> 'done' or old.state = 'done' then
        return null;
    end if;
    select * into p from purchase where purchase_id = new.purchase_id;
    perform webhook_emit('token.rotated', p.seller_id, 'purchase:' || p.purchase_id,
                         'rotation:' || new.rotation_id, p.purchase_id, new.new_token_id,
                         webhook_purchase_data(p) || jsonb_build_object(
                                 'rotation_id', new.rotation_id,
                                 'old_token_id', new.old_token_id,
                                 'token_id', new.new_token_id,
                                 'installs_carried', new.installs_carried,
                                 'requested_by', case when new.requested_by = 'buyer' then 'buyer' else 'operator' end));
    return null;
end
$$;

create trigger token_rotation_emits_webhook
    after update of state
    on token_rotation
    for each row
execute function token_rotation_emits_webhook();

-- A pool refill is queued (once per episode: one live job per tier) while the pool is under its
-- low-water mark: the seller hears that sales are outrunning the pool.
create function replenish_job_emits_pool_low() returns trigger
    language plpgsql as
$$
declare
    t         tier;
    l         listing;
    available bigint;
begin
    if new.kind <> 'replenish_pool' then
        return null;
    end if;
    select * into t from tier where tier_id::text = new.subject;
    if not found then
        return null;
    end if;
    select count(*) into available from install_token where tier_id = t.tier_id and state = 'available';
    if available >= t.pool_low_water then
        return null;
    end if;
    select * into l from listing where listing_id = t.listing_id;
    perform webhook_emit('pool.low', l.seller_id, 'tier:' || t.tier_id, 'pool.low:' || new.job_id, null, null,
                         jsonb_build_object(
                                 'listing', jsonb_build_object('listing_id', l.listing_id, 'canonical',
                                                               l.canonical, 'title', l.title),
                                 'tier', jsonb_build_object('tier_id', t.tier_id, 'slug', t.slug, 'name', t.name),
                                 'available', available,
                                 'low_water', t.pool_low_water,
                                 'target', t.pool_target));
    return null;
end
$$;

create trigger replenish_job_emits_pool_low
    after insert
    on job
    for each row
    when (new.kind = 'replenish_pool')
execute function replenish_job_emits_pool_low();

-- A job that gave up: an operator (or the seller, for theirs) should look.
create function job_emits_dead() returns trigger
    language plpgsql as
$$
begin
    if new.state <> 'dead' or old.state = 'dead' then
        return null;
    end if;
    perform webhook_emit('job.dead', coalesce(new.seller_id, (select seller_id from seller where house)),
                         'job:' || new.job_id, 'job.dead:' || new.job_id || ':' || new.finished_at, null, null,
                         jsonb_build_object('job_id', new.job_id, 'kind', new.kind, 'subject', new.subject,
                                            'attempts', new.attempt, 'last_error', new.last_error,
                                            'died_at', new.finished_at));
    return null;
end
$$;

create trigger job_emits_dead
    after update of state
    on job
    for each row
    when (new.state = 'dead' and old.state <> 'dead')
execute function job_emits_dead();

-- A seller's Xano credential refused (401/403) or working again.
create function seller_credential_emits_health() returns trigger
    language plpgsql as
$$
declare
    event_type text := case when new.state = 'healthy' then 'credential.healthy' else 'credential.unhealthy' end;
begin
    if new.state = old.state then
        return null;
    end if;
    perform webhook_emit(event_type, new.seller_id, 'credential:' || new.seller_id,
                         'credential:' || new.seller_id || ':' || event_type || ':' ||
                         coalesce(new.refused_at, now()), null, null,
                         jsonb_build_object('seller_id', new.seller_id, 'account_id', new.account_id,
                                            'state', new.state, 'last_error', new.last_error,
                                            'since', coalesce(new.refused_at, now())));
    return null;
end
$$;

create trigger seller_credential_emits_health
    after update of state
    on seller_xano_credential
    for each row
execute function seller_credential_emits_health();

-- The house's credential (the service's own Xano token, by fingerprint): the house's events. Its
-- row may be born refused (`health::record_refusal` inserts it when an instance meets a 401
-- before its first sweep recorded the credential): that is told too.
create function house_credential_emits_health() returns trigger
    language plpgsql as
$$
declare
    event_type text := case when new.state = 'healthy' then 'credential.healthy' else 'credential.unhealthy' end;
    house      uuid := (select seller_id from seller where house);
    credential text := left(encode(new.credential_fingerprint, 'hex'), 8);
begin
    if (tg_op = 'INSERT' and new.state = 'healthy') or (tg_op = 'UPDATE' and new.state = old.state) then
        return null;
    end if;
    perform webhook_emit(event_type, house, 'credential:' || house,
                         'credential:' || credential || ':' || event_type || ':' || new.since, null, null,
                         jsonb_build_object('seller_id', house, 'credential', credential,
                                            'state', new.state, 'last_error', new.last_error,
                                            'since', new.since));
    return null;
end
$$;

create trigger house_credential_emits_health
    after insert or update of state
    on xano_credential
    for each row
execute function house_credential_emits_health();
