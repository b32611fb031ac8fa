-- Sellers: the marketplace's tenants (issue: "a marketplace, not a shop").
--
-- A seller owns listings; later steps give each their own Xano credential and Stripe connected
-- account. The operator who ran the shop until now is the *house* seller: made here, owner of every
-- existing listing, and of every listing made without naming a seller, so a service with no seller
-- invited behaves exactly as before.
--
-- A seller authenticates with an API key, shown once at invitation: only its SHA-256 is stored (a
-- key is 256 random bits, so a plain hash is as hard to reverse as the key is to guess). A seller
-- may hold several keys (a new one before the old one is revoked).
create table seller
(
    seller_id     uuid primary key     default gen_random_uuid(),
    name          text        not null check (name ~ '\S' and length(name) <= 200),
    -- Where the platform writes to the seller; the house has none until one is set.
    contact_email text check (contact_email ~ '^[^@\s]+@[^@\s]+\.[^@\s]+$' and length(contact_email) <= 254),
    status        text        not null default 'active' check (status in ('active', 'suspended')),
    house         boolean     not null default false,
    created_at    timestamptz not null default now(),
    updated_at    timestamptz not null default now(),
    check (house or contact_email is not null)
);
select trigger_updated_at('seller');
-- There is one house.
create unique index seller_one_house on seller (house) where house;
insert into seller (name, house) values ('House', true);

create table seller_key
(
    key_hash   bytea primary key check (length(key_hash) = 32),
    seller_id  uuid        not null references seller,
    created_at timestamptz not null default now(),
    revoked_at timestamptz
);
create index seller_key_by_seller on seller_key (seller_id);

alter table listing add column seller_id uuid references seller;
update listing set seller_id = (select seller_id from seller where house);
alter table listing alter column seller_id set not null;
create index listing_by_seller on listing (seller_id);

-- A listing made without a seller (the admin API, tiers-as-code, as before sellers) is the house's.
create function listing_defaults_to_the_house() returns trigger
    language plpgsql as
$$
begin
    if new.seller_id is null then
        new.seller_id := (select seller_id from seller where house);
    end if;
    return new;
end
$$;

create trigger listing_defaults_to_the_house
    before insert
    on listing
    for each row
execute function listing_defaults_to_the_house();
