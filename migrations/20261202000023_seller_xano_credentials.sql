-- Each seller's Xano: the Metadata API access token of the seller's own account, which mints and
-- revokes the tokens of that seller's listings.
--
-- Sealed like install tokens (migration 6: AES-256-GCM under a key id, the context naming the
-- seller, so a sealed value moved to another seller's row does not open), found by an HMAC
-- fingerprint, never returned by the API. `account_id` is the account `GET /auth/me` answered for
-- when the token was checked: a replacement must be for the same account (a seller's listings are
-- snippets of that account). The house has no row: its credential is the service's own
-- (`XANO_ACCESS_TOKEN`).
create table seller_xano_credential
(
    seller_id   uuid primary key references seller,
    key_id      text        not null,
    sealed      bytea       not null,
    fingerprint bytea       not null check (length(fingerprint) = 32),
    account_id  text        not null,
    set_at      timestamptz not null default now(),
    checked_at  timestamptz not null default now()
);

-- The house's credential is not stored here.
create function seller_xano_credential_not_the_house() returns trigger
    language plpgsql as
$$
begin
    if (select house from seller where seller_id = new.seller_id) then
        raise exception 'the house seller uses the service''s own Xano credential'
            using errcode = 'check_violation';
    end if;
    return new;
end
$$;

create trigger seller_xano_credential_not_the_house
    before insert or update of seller_id
    on seller_xano_credential
    for each row
execute function seller_xano_credential_not_the_house();
