-- The dispute lifecycle's constraints: the state machine's order, and which statuses hold a token.
--
-- `disputed` is no longer terminal (a dispute the seller wins reinstates access), so the old
-- "a closed purchase never reopens" trigger becomes a stronger rule: a purchase's status only ever
-- moves forward along market-core `status.rs`'s order
--
--   pending (0) < paid (1) < fulfilled (2) < disputed (3) < reinstated (4)
--              < refunded | dispute_lost | revoked | expired | failed (5, terminal)
--
-- which keeps every closing final (nothing leaves rank 5), makes the machine acyclic (a reinstated
-- purchase can never be disputed again: one dispute per charge), and still stops a late or replayed
-- "paid" from minting for a refunded or lost purchase. A unit test compares this table with
-- `PurchaseStatus::rank`.

create or replace function purchase_status_rank(status purchase_status)
    returns int
    language sql
    immutable
as
$$
select case status
           when 'pending' then 0
           when 'paid' then 1
           when 'fulfilled' then 2
           when 'disputed' then 3
           when 'reinstated' then 4
           else 5
       end
$$;

drop trigger purchase_never_reopens on purchase;
drop function refuse_reopening_purchase();

create or replace function refuse_moving_purchase_back()
    returns trigger as
$$
begin
    if new.status <> old.status
        and purchase_status_rank(new.status) <= purchase_status_rank(old.status) then
        raise exception 'purchase % is % and cannot become %', old.purchase_id, old.status, new.status
            using errcode = 'check_violation';
    end if;
    return new;
end;
$$ language plpgsql;

create trigger purchase_moves_forward
    before update of status
    on purchase
    for each row
execute function refuse_moving_purchase_back();

-- I3 again, with `reinstated`: a live (assigned) token belongs to a purchase that is fulfilled or
-- reinstated, and a purchase in any other status holds none. Same deferred triggers, new bodies.
create or replace function check_token_matches_purchase()
    returns trigger as
$$
begin
    if exists(
        select 1 from install_token it
        where it.install_token_id = new.install_token_id and it.state = 'assigned'
          and not exists(select 1 from purchase p
                         where p.purchase_id = it.purchase_id
                           and p.status in ('fulfilled', 'reinstated'))) then
        raise exception 'token % is assigned to purchase % which is neither fulfilled nor reinstated',
            new.install_token_id, new.purchase_id
            using errcode = 'check_violation';
    end if;
    return null;
end;
$$ language plpgsql;

create or replace function check_purchase_matches_tokens()
    returns trigger as
$$
begin
    if exists(
        select 1 from purchase p join install_token it using (purchase_id)
        where p.purchase_id = new.purchase_id
          and p.status not in ('fulfilled', 'reinstated') and it.state = 'assigned') then
        raise exception 'purchase % is % but holds an assigned token', new.purchase_id, new.status
            using errcode = 'check_violation';
    end if;
    return null;
end;
$$ language plpgsql;

-- A reinstated purchase was paid (a dispute needs a charge that succeeded), and a lost one is closed.
alter table purchase
    add constraint purchase_reinstated_was_paid check ((status = 'reinstated') <= (paid_at is not null)),
    add constraint purchase_dispute_lost_is_closed check ((status = 'dispute_lost') <= (closed_at is not null));

-- How a dispute on this PaymentIntent ended, when it has: the first close recorded wins (a charge has
-- one dispute, and it closes once). `disputed` stays what it was: a dispute (not an inquiry) was
-- opened. A close seen before the payment, or before the dispute's own creation, is read from here
-- like a refund's tombstone.
alter table stripe_payment
    add column dispute_outcome text check (dispute_outcome in ('won', 'lost'));
