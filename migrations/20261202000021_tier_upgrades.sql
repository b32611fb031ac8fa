-- Tier upgrades: a buyer moves a purchase to a higher tier of the same listing and keeps the same
-- token, whose `max_installs` Xano raises in place.
--
-- An upgrade is a purchase of its own (`upgrade_of` names the purchase it upgrades, the *base*): it
-- is charged the difference between the target tier's price and what was paid so far, and it goes
-- through the same Checkout Session, webhooks, backfill, refunds and disputes as any purchase. It
-- never holds a token. What it changes is the base's entitlement:
--
--     entitlement(base) = greatest(the base tier's max_installs,
--                                  max_installs of its upgrades that are paid, fulfilled or reinstated)
--
-- and the base's `max_installs` (which I5, migration 20, holds equal to its token's) follows it.
-- The `apply_upgrade` job (subject: the base) converges the base, its token and Xano on that number:
-- it writes the new limit at Xano (sending back the installs Xano counts), then, in one
-- transaction, the token's and the base's `max_installs` and the upgrade `fulfilled`. A refunded or
-- disputed upgrade drops out of the entitlement and the same job lowers the limit, never below the
-- installs already used (the base's `max_installs` then records what is used).
--
-- So a token's limit is no longer always its tier's: the composite foreign key of migration 3 becomes
-- a plain one, and what it held moves to a trigger about unsold tokens (the pool: every token a
-- tier hands out allows that tier's installs).
alter table purchase add column upgrade_of uuid references purchase;
alter table purchase add constraint purchase_upgrade_of_another check (upgrade_of <> purchase_id);
create index purchase_upgrades on purchase (upgrade_of) where upgrade_of is not null;
-- One upgrade under way per purchase: a second request while one is unpaid or unapplied gets that
-- one (same target) or is refused; so no two upgrades can be paid for the same step.
create unique index purchase_one_open_upgrade on purchase (upgrade_of)
    where upgrade_of is not null and status in ('pending', 'paid');

create function purchase_entitlement(base uuid) returns bigint
    language sql stable as
$$
select greatest(t.max_installs,
                (select max(u.max_installs) from purchase u
                 where u.upgrade_of = p.purchase_id and u.status in ('paid', 'fulfilled', 'reinstated')))
from purchase p join tier t using (tier_id)
where p.purchase_id = base
$$;

alter table tier add constraint tier_of_listing unique (tier_id, listing_id);
alter table install_token drop constraint install_token_tier_id_listing_id_max_installs_fkey;
alter table install_token add constraint install_token_tier_of_listing
    foreign key (tier_id, listing_id) references tier (tier_id, listing_id);

create function check_pool_token_limits_are_the_tier() returns trigger
    language plpgsql as
$$
begin
    if new.state = 'available'
        and new.max_installs <> (select max_installs from tier where tier_id = new.tier_id) then
        raise exception 'token % in the pool allows % installs, its tier %', new.install_token_id,
            new.max_installs, (select max_installs from tier where tier_id = new.tier_id)
            using errcode = 'check_violation';
    end if;
    return new;
end
$$;

create trigger install_token_pool_limits_are_the_tier
    before insert or update of state, max_installs, tier_id
    on install_token
    for each row
execute function check_pool_token_limits_are_the_tier();

alter table job drop constraint job_kind_check;
alter table job add constraint job_kind_check
    check (kind in ('replenish_pool', 'mint_for_purchase', 'delete_token', 'reconcile_listing', 'send_mail',
                    'rotate_token', 'apply_upgrade'));

alter table mail_message drop constraint mail_message_kind_check;
alter table mail_message add constraint mail_message_kind_check
    check (kind in ('receipt', 'access_ended', 'access_restored', 'portal_link', 'token_rotated',
                    'upgraded', 'upgrade_reversed'));

-- The buyer's messages about an upgrade are the upgrade's facts: applied (`fulfilled`: the token's
-- new limit) and taken back (refunded, disputed, dispute lost, revoked: the limit lowered). Other
-- purchases keep migration 15's messages.
create or replace function purchase_status_queues_mail() returns trigger
    language plpgsql as
$$
declare
    mail_kind text;
    mail_fact text;
    new_mail  uuid := gen_random_uuid();
    upgrade   boolean := new.upgrade_of is not null;
begin
    if new.email is null or new.status = old.status then
        return null;
    end if;
    if new.status = 'fulfilled' then
        mail_kind := case when upgrade then 'upgraded' else 'receipt' end;
        mail_fact := new.purchase_id || ':' || mail_kind;
    elsif new.status = 'reinstated' and not upgrade then
        mail_kind := 'access_restored';
        mail_fact := new.purchase_id || ':access_restored';
    elsif new.status in ('refunded', 'disputed', 'dispute_lost', 'revoked')
        and old.status in ('paid', 'fulfilled', 'reinstated') then
        mail_kind := case when upgrade then 'upgrade_reversed' else 'access_ended' end;
        mail_fact := new.purchase_id || ':' || mail_kind || ':' || new.status;
    else
        return null;
    end if;
    insert into mail_message (mail_id, kind, fact, purchase_id, recipient)
    values (new_mail, mail_kind, mail_fact, new.purchase_id, new.email)
    on conflict (fact) do nothing;
    if found then
        insert into job (kind, subject) values ('send_mail', new_mail::text) on conflict do nothing;
    end if;
    return null;
end
$$;
