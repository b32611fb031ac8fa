-- Reads at scale (issue 17; `market-scale` measures them on a million purchases and checks their
-- plans): indexes for the admin list by status, e-mail, tier, listing and seller, one purchase and
-- the buyer portal; and a version number that spares each instance re-reading an unchanged catalog
-- every second (at the end).
--
-- The admin list (market-core `purchases::list`) shows a page of purchases newest first,
-- keyset-paginated on `(created_at, purchase_id)`: `where <filter> and (created_at, purchase_id) <
-- (cursor) order by created_at desc, purchase_id desc limit n`. An index on `(<filter>, created_at)`
-- alone gives the order but not the cursor: PostgreSQL can seek to a row comparison only over
-- index columns in the same order, so a deep page would read every newer row again and drop it.
-- Each filter's index is therefore `(<filter>, created_at desc, purchase_id desc)`: a page is one
-- seek to the cursor and `n` rows read in order, however deep. The indexes they replace had the
-- same leading columns, and every other query that used them (the sweep's `status in (…)`, the
-- stale-session claim's `status = 'pending' … order by created_at`, the portal's
-- `lower(email) = …`, foreign-key checks on `tier_id`) is served by the new ones (a B-tree is read
-- backwards as well as forwards), so they are replaced, not doubled: each index is one more write
-- on every purchase insert and on every status change.
--
-- The names stay: only the columns change.
--
-- Building an index holds off writes to `purchase` until it is built (a few seconds per index on
-- a million rows, measured by `market-scale`): on a database that large, apply this migration in a
-- quiet minute (webhook deliveries wait, and Stripe retries them).

-- No filter: the newest purchases of all.
create index purchase_newest_first on purchase (created_at desc, purchase_id desc);

-- `status=`: replaces migration 3's `(status, created_at)`.
drop index purchase_by_status;
create index purchase_by_status on purchase (status, created_at desc, purchase_id desc);

-- `tier_id=`, and `listing_id=` (a listing's purchases are its tiers' purchases: one index range
-- per tier version, merged): replaces migration 3's `(tier_id)`.
drop index purchase_by_tier;
create index purchase_by_tier on purchase (tier_id, created_at desc, purchase_id desc);

-- `email=` (compared without case) and the portal's list: replaces migration 16's
-- `(lower(email), created_at desc)`.
drop index purchase_by_email;
create index purchase_by_email on purchase (lower(email), created_at desc, purchase_id desc)
    where email is not null;

-- A seller's purchases (`/v1/seller/purchases`, `seller_id=`): replaces migration 25's
-- `(seller_id, created_at)`.
drop index purchase_by_seller;
create index purchase_by_seller on purchase (seller_id, created_at desc, purchase_id desc);

-- Every token a purchase ever held, live or not: a receipt (the buyer's, the admin's, the
-- portal's) shows the live one or else the last one, and a purchase's audit trail names all of
-- them. The only index on `install_token.purchase_id` was migration 3's partial unique one (live
-- tokens only), so each receipt read every token of the service. Unsold tokens have no purchase
-- and are left out.
create index install_token_by_purchase on install_token (purchase_id) where purchase_id is not null;

-- The catalog's version, for each instance's cached copy (market-http `catalog_cache`). The copy is
-- re-read when it is a second old; with 10 000 listings a re-read is a 40 ms query and ~7 MB of
-- JSON rebuilt every second on every instance, for a catalog that changes a few times a day. Now
-- the copy first reads this one row and re-reads the catalog only when the number moved.
--
-- Every statement that changes what the catalog shows (a listing's, tier's or seller's row or the
-- columns the catalog reads or decides "on sale" by) adds one, in its own transaction: a version
-- read is never ahead of the rows it stands for (a sequence would be: `nextval` is seen before its
-- transaction commits), so a copy read after reading version n holds every change up to n.
-- Statement-level, so a bulk change bumps it once; columns the catalog does not read (usage
-- counts and their claims, reconciliation marks, pool sizes) leave it alone, so their frequent
-- writers neither wait on this row nor make every instance re-read.
create table catalog_version
(
    singleton boolean primary key default true check (singleton),
    version   bigint  not null default 0
);
insert into catalog_version default values;

create function bump_catalog_version() returns trigger
    language plpgsql as
$$
begin
    update catalog_version set version = version + 1;
    return null;
end
$$;

create trigger listing_bumps_catalog_version
    after insert or delete or truncate or update of canonical, title, description, active, seller_id
    on listing
    for each statement
execute function bump_catalog_version();

create trigger tier_bumps_catalog_version
    after insert or delete or truncate
        or update of listing_id, slug, name, price_amount, currency, max_installs, active
    on tier
    for each statement
execute function bump_catalog_version();

create trigger seller_bumps_catalog_version
    after insert or delete or truncate or update of name, status, house, stripe_charges_enabled
    on seller
    for each statement
execute function bump_catalog_version();
