-- Stripe Connect: each seller is paid through their own Express connected account.
--
-- A seller's purchase is a *destination charge*: the buyer pays the platform, Stripe moves the whole
-- charge to the seller's connected account and takes the platform's fee back from it as an
-- application fee. The house (the operator's own seller) is paid directly, as before sellers
-- existed: it never has a connected account, and its purchases carry no destination and no fee.
--
-- What Stripe says about an account is kept on the seller row, as last read from Stripe
-- (`account.updated` makes the service read the account afresh; the row keeps the newest read, by
-- when it was read, so two reads applied out of order cannot set an older state back). A seller's
-- tiers are on sale only while `stripe_charges_enabled` (checked where a purchase is created, and in
-- the catalog).
alter table seller
    add column stripe_account_id        text unique check (stripe_account_id ~ '^acct_[A-Za-z0-9]+$'),
    add column stripe_charges_enabled   boolean not null default false,
    add column stripe_payouts_enabled   boolean not null default false,
    add column stripe_details_submitted boolean not null default false,
    add column stripe_read_at           timestamptz,
    -- The platform's share of this seller's sales in basis points, overriding the service's
    -- `MARKET_PLATFORM_FEE_BPS`; null: the service's.
    add column platform_fee_bps         integer check (platform_fee_bps between 0 and 10000),
    add constraint seller_house_is_paid_directly check (not house or stripe_account_id is null),
    -- Stripe's view of an account exists only with the account, and only as read at some moment.
    add constraint seller_stripe_state_read
        check ((stripe_account_id is not null or not (stripe_charges_enabled or stripe_payouts_enabled
                                                        or stripe_details_submitted))
               and (stripe_charges_enabled or stripe_payouts_enabled or stripe_details_submitted)
                   <= (stripe_read_at is not null));

-- The purchase records its seller and how its payment is split, fixed at checkout (like its price):
-- a fee changed later does not change what a buyer was already charged. The house's purchases have
-- neither destination nor fee; a seller's have both, and the fee is never more than the price.
alter table purchase
    add column seller_id               uuid references seller,
    add column connect_destination     text check (connect_destination ~ '^acct_[A-Za-z0-9]+$'),
    add column application_fee_amount  bigint,
    add constraint purchase_split_whole check ((connect_destination is null) = (application_fee_amount is null)),
    add constraint purchase_fee_within_price check (application_fee_amount between 0 and amount);

update purchase p
set seller_id = l.seller_id
from tier t
         join listing l using (listing_id)
where t.tier_id = p.tier_id;
alter table purchase alter column seller_id set not null;
create index purchase_by_seller on purchase (seller_id, created_at);

-- Every way a purchase is made (checkout, an upgrade) records the listing's seller: the trigger
-- fills it, and refuses a seller that is not the listing's.
create function purchase_records_its_seller() returns trigger
    language plpgsql as
$$
declare
    owner uuid;
begin
    select l.seller_id into owner from tier t join listing l using (listing_id) where t.tier_id = new.tier_id;
    if new.seller_id is null then
        new.seller_id := owner;
    elsif new.seller_id <> owner then
        raise exception 'purchase % names seller %, but its listing is seller %''s', new.purchase_id,
            new.seller_id, owner using errcode = 'check_violation',
            constraint = 'purchase_records_its_seller';
    end if;
    return new;
end
$$;

create trigger purchase_records_its_seller
    before insert
    on purchase
    for each row
execute function purchase_records_its_seller();

-- What Stripe said about the charge of a destination payment (`charge.succeeded`, which may come
-- before or after the Checkout Session's event, so it is kept by PaymentIntent like refunds are):
-- the charge, the transfer to the seller and the application fee.
--
-- A refunded destination charge must not leave the money with the seller: the operator's refund asks
-- Stripe to reverse the transfer and refund the fee with it, but a refund made in Stripe's dashboard
-- (or one whose answer was lost) may not have. So every refunded payment with a transfer is checked
-- at Stripe until its transfer is reversed and its fee refunded (`connect_reversed_at`);
-- `connect_checked_at` spaces the checks and lets instances claim them without doing one twice.
alter table stripe_payment
    add column charge_id           text check (charge_id ~ '^(ch|py)_'),
    add column transfer_id         text check (transfer_id ~ '^tr_'),
    add column application_fee_id  text check (application_fee_id ~ '^fee_'),
    add column connect_checked_at  timestamptz,
    add column connect_reversed_at timestamptz,
    add constraint stripe_payment_reversed_a_transfer
        check (connect_reversed_at is null or (transfer_id is not null and fully_refunded));
create index stripe_payment_to_reverse on stripe_payment (connect_checked_at nulls first)
    where fully_refunded and transfer_id is not null and connect_reversed_at is null;
