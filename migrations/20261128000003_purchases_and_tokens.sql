-- Purchases, the Stripe facts about them, and the Xano install tokens they hold.
--
-- The promise this schema keeps: every paid purchase ends with exactly one live install token, and a
-- refunded or disputed one with none. Each half of it is written down below as a constraint, and
-- docs/ARCHITECTURE.md maps every invariant to the constraint or test that holds it.

-- pending → paid → fulfilled, or off to a terminal state. market-core `status.rs` is the one place that
-- says which moves are allowed; the triggers at the end of this file hold the ones that matter most.
create type purchase_status as enum (
    'pending',   -- a Checkout Session exists (or is being created); nothing is paid
    'paid',      -- Stripe says paid; waiting for a token (the pool was empty)
    'fulfilled', -- paid and holding a live token
    'refunded',  -- fully refunded: no token, ever again (a refund seen before the payment is a tombstone)
    'disputed',  -- the buyer's bank disputed the charge: treated like a refund
    'revoked',   -- an operator revoked access without a refund (abuse, leaked token)
    'expired',   -- the Checkout Session expired unpaid
    'failed'     -- a delayed payment (bank debit, …) failed
);

create table purchase
(
    -- Random (v4) so that ids cannot be guessed from one another; reading a purchase also needs its
    -- receipt key.
    purchase_id             uuid primary key,
    tier_id                 uuid            not null references tier,
    -- What the buyer was offered, copied from the tier at checkout: the tier's own row stays as it
    -- is too (terms never change), but the copy makes every receipt self-contained.
    amount                  bigint          not null check (amount > 0),
    currency                text            not null check (currency ~ '^[a-z]{3}$'),
    max_installs            bigint          not null check (max_installs > 0),
    email                   text check (email is null or email ~ '^[^@\s]+@[^@\s]+$'),
    status                  purchase_status not null default 'pending',
    -- The purchase's idempotency key towards Stripe: one purchase per Checkout Session.
    checkout_session_id     text unique,
    -- Where the buyer pays (Stripe's hosted page), kept so that a retried checkout request gets the
    -- same answer as the first.
    checkout_url            text,
    -- The storefront's `Idempotency-Key` for POST /v1/checkout: the same key returns the same purchase.
    checkout_idempotency_key text unique,
    payment_intent_id       text unique,
    amount_refunded         bigint          not null default 0 check (amount_refunded >= 0),
    -- SHA-256 of the buyer's receipt key; the key itself is never stored.
    receipt_hash            bytea           not null check (length(receipt_hash) = 32),
    created_at              timestamptz     not null default now(),
    updated_at              timestamptz     not null default now(),
    paid_at                 timestamptz,
    fulfilled_at            timestamptz,
    closed_at               timestamptz, -- refunded, disputed, revoked, expired or failed

    check ((status in ('paid', 'fulfilled')) <= (paid_at is not null)),
    check ((status = 'fulfilled') <= (fulfilled_at is not null)),
    check ((status in ('refunded', 'disputed', 'revoked', 'expired', 'failed')) <= (closed_at is not null))
);
select trigger_updated_at('purchase');
create index purchase_by_status on purchase (status, created_at);
create index purchase_by_tier on purchase (tier_id);

-- What Stripe told us about one PaymentIntent, keyed by its id. Refund and dispute events name the
-- PaymentIntent, not the Checkout Session, and may arrive before the payment itself: this row is where
-- the two meet. Both paths upsert it, so the row lock orders them, and whichever comes second sees what
-- the first recorded (a refund recorded first is the tombstone that stops a late "paid" from minting).
create table stripe_payment
(
    payment_intent_id text primary key,
    purchase_id       uuid references purchase,
    amount_refunded   bigint      not null default 0 check (amount_refunded >= 0),
    fully_refunded    boolean     not null default false,
    disputed          boolean     not null default false,
    created_at        timestamptz not null default now(),
    updated_at        timestamptz not null default now()
);
select trigger_updated_at('stripe_payment');

-- The inbox: every Stripe event applied, by id. Stripe delivers at least once; a second delivery finds
-- its row and changes nothing. The row is written in the same transaction as the event's effect.
create table stripe_event
(
    stripe_event_id text primary key,
    type            text        not null,
    livemode        boolean     not null,
    purchase_id     uuid,
    outcome         text        not null,
    received_at     timestamptz not null default now()
);

create type token_state as enum (
    'available', -- unsold, in its tier's pool, live at Xano
    'assigned',  -- held by a fulfilled purchase, live at Xano
    'revoking',  -- its purchase was refunded or disputed; to be deleted at Xano
    'revoked',   -- deleted at Xano after a refund or dispute
    'retiring',  -- unsold and no longer wanted (tier changed, stray token); to be deleted at Xano
    'retired',   -- deleted at Xano, never sold
    'missing',   -- we thought it live, but Xano no longer lists it (reconciliation flags it)
    'foreign'    -- found at Xano, not made by us and already used: recorded, left alone
);

-- Every Xano install token this service knows of. Xano generates the token string and stores nothing
-- else about it (no label, no metadata), so this table is the only place that says whose it is.
create table install_token
(
    install_token_id bigint generated always as identity primary key,
    listing_id       uuid        not null references listing,
    tier_id          uuid,
    max_installs     bigint      not null check (max_installs >= 0),
    token            text        not null check (token <> ''),
    current_installs bigint      not null default 0 check (current_installs >= 0),
    state            token_state not null,
    purchase_id      uuid references purchase,
    -- minted by our pool or mint job, adopted (an orphan of ours, found unused by reconciliation), or
    -- found (someone else's token on our snippet).
    origin           text        not null check (origin in ('minted', 'adopted', 'found')),
    created_at       timestamptz not null default now(),
    updated_at       timestamptz not null default now(),
    assigned_at      timestamptz,
    released_at      timestamptz, -- revoked or retired at Xano
    seen_at          timestamptz, -- last listed by Xano during reconciliation

    -- Xano does not document whether token strings are unique per snippet or globally.
    unique (listing_id, token),
    -- I5: a token's max_installs is its tier's, and its tier is of its listing.
    foreign key (tier_id, listing_id, max_installs) references tier (tier_id, listing_id, max_installs),
    check ((tier_id is null) = (origin = 'found')),
    -- Held by a purchase exactly in the states that belong to a sale.
    check ((state in ('assigned', 'revoking', 'revoked')) <= (purchase_id is not null)),
    check ((state in ('available', 'retiring', 'retired', 'foreign')) <= (purchase_id is null)),
    check ((state = 'assigned') <= (assigned_at is not null)),
    check ((state in ('revoked', 'retired')) <= (released_at is not null))
);
select trigger_updated_at('install_token');

-- I1: at most one live token per purchase. (A token is held by at most one purchase because
-- `purchase_id` is a single column.) `missing` and `revoked` tokens do not count, so a purchase whose
-- token vanished at Xano can be given a new one.
create unique index install_token_one_live_per_purchase on install_token (purchase_id)
    where state in ('assigned', 'revoking');

-- The pool: fulfilment claims the oldest available token of a tier.
create index install_token_pool on install_token (tier_id, install_token_id) where state = 'available';

-- I3, enforced at commit: a live token belongs to a fulfilled purchase, and a purchase that is
-- refunded, disputed or otherwise not fulfilled holds no assigned token. Deferred, because fulfilment
-- assigns the token and marks the purchase fulfilled in either order within one transaction. A
-- deferred row trigger sees `new` as it was at the time of each change, so the checks read the rows
-- as they are at commit instead.
create or replace function check_token_matches_purchase()
    returns trigger as
$$
begin
    if exists(
        select 1 from install_token it
        where it.install_token_id = new.install_token_id and it.state = 'assigned'
          and not exists(select 1 from purchase p where p.purchase_id = it.purchase_id and p.status = 'fulfilled')) then
        raise exception 'token % is assigned to purchase % which is not fulfilled',
            new.install_token_id, new.purchase_id
            using errcode = 'check_violation';
    end if;
    return null;
end;
$$ language plpgsql;

create constraint trigger install_token_matches_purchase
    after insert or update of state, purchase_id
    on install_token
    deferrable initially deferred
    for each row
execute function check_token_matches_purchase();

create or replace function check_purchase_matches_tokens()
    returns trigger as
$$
begin
    if exists(
        select 1 from purchase p join install_token it using (purchase_id)
        where p.purchase_id = new.purchase_id and p.status <> 'fulfilled' and it.state = 'assigned') then
        raise exception 'purchase % is not fulfilled but holds an assigned token', new.purchase_id
            using errcode = 'check_violation';
    end if;
    return null;
end;
$$ language plpgsql;

create constraint trigger purchase_matches_tokens
    after update of status
    on purchase
    deferrable initially deferred
    for each row
execute function check_purchase_matches_tokens();

-- A closed purchase never reopens: once refunded, disputed, revoked, expired or failed, its status is final, so
-- no late or replayed "paid" can ever lead to a token. The full transition table lives in market-core
-- `status.rs`; this trigger is the part of it that must hold even against a bug there.
create or replace function refuse_reopening_purchase()
    returns trigger as
$$
begin
    if old.status in ('refunded', 'disputed', 'revoked', 'expired', 'failed') and new.status <> old.status then
        raise exception 'purchase % is % and cannot become %', old.purchase_id, old.status, new.status
            using errcode = 'check_violation';
    end if;
    return new;
end;
$$ language plpgsql;

create trigger purchase_never_reopens
    before update of status
    on purchase
    for each row
execute function refuse_reopening_purchase();
