-- The catalog: what is for sale.

-- A listing offers one Xano snippet for sale. The snippet is named by its `canonical`, the tail of
-- https://www.xano.com/snippet/<canonical>/, and is set to `install_access = token` at Xano when listed.
create table listing
(
    listing_id  uuid primary key     default gen_random_uuid(),
    canonical   text        not null unique check (canonical <> ''),
    title       text        not null check (title <> ''),
    description text        not null default '',
    active      boolean     not null default true,
    created_at  timestamptz not null default now(),
    updated_at  timestamptz not null default now()
);
select trigger_updated_at('listing');

-- A tier is a priced offer of a listing: "Solo — $19, 5 installs".
--
-- A tier's *terms* (price, currency, max_installs) never change once it exists: what a buyer paid for
-- must stay what the row says. Changing terms makes a new version, a new row with the same slug and
-- `version + 1`, and deactivates the old one (see market-core `tiers`). Name, pool sizes and `active`
-- are not terms and change in place.
create table tier
(
    tier_id        uuid primary key     default gen_random_uuid(),
    listing_id     uuid        not null references listing,
    slug           text        not null check (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    version        integer     not null default 1 check (version > 0),
    name           text        not null check (name <> ''),
    -- Money is an integer count of the currency's minor unit (cents for usd).
    price_amount   bigint      not null check (price_amount > 0),
    currency       text        not null check (currency ~ '^[a-z]{3}$'),
    max_installs   bigint      not null check (max_installs > 0),
    -- The pool keeps between `pool_low_water` and `pool_target` unsold tokens ready, so that a sale
    -- never waits for Xano.
    pool_low_water integer     not null default 5 check (pool_low_water >= 0),
    pool_target    integer     not null default 10 check (pool_target >= pool_low_water and pool_target <= 1000),
    active         boolean     not null default true,
    created_at     timestamptz not null default now(),
    updated_at     timestamptz not null default now(),

    unique (listing_id, slug, version),
    -- Targets for composite foreign keys: a token's tier must be of the token's listing and carry the
    -- token's max_installs (invariant I5, held by a constraint rather than by code).
    unique (tier_id, listing_id, max_installs)
);
select trigger_updated_at('tier');

-- One version of a slug is on sale at a time.
create unique index tier_one_active_version on tier (listing_id, slug) where active;
