-- Email to buyers: a transactional outbox.
--
-- A message row is written in the same transaction as the fact it reports (a purchase fulfilled,
-- its access revoked or restored), together with the `send_mail` job that delivers it. So a fact
-- that commits always has its message, and a fact that rolls back never sends one. The job
-- delivers over SMTP at least once (a crash between the server's "250 OK" and the commit of
-- `sent_at` sends again); every try carries the same `Message-ID` (`<mail_id@host>`), so a retry is
-- the same message to the receiving side, never a second one.
--
-- No secret is stored here. A receipt's body is rendered when it is sent, from the purchase and its
-- live token (opened from the envelope then); a portal link's key is derived from the receipt
-- secret and the link's id (`receipt.rs` does the same for receipt keys).
create table mail_message
(
    mail_id     uuid primary key,
    kind        text        not null check (kind in ('receipt', 'access_ended', 'access_restored')),
    -- One message per fact: `<purchase id>:<kind>` for the purchase facts above. A fact applied twice
    -- (a duplicate event, two instances racing) finds its message there already and writes none.
    fact        text        not null unique,
    purchase_id uuid references purchase,
    recipient   text        not null check (recipient ~ '^[^@\s]+@[^@\s]+$'),
    -- queued: the job will send it; sent: an SMTP server accepted it; failed: the server refused it
    -- for good (5xx: no such mailbox, …), which no retry can change; not_sent: mail is disabled here.
    state       text        not null default 'queued' check (state in ('queued', 'sent', 'failed', 'not_sent')),
    attempts    integer     not null default 0 check (attempts >= 0),
    last_error  text,
    created_at  timestamptz not null default now(),
    sent_at     timestamptz,
    check ((state = 'sent') = (sent_at is not null))
);
create index mail_message_by_purchase on mail_message (purchase_id, created_at) where purchase_id is not null;
create index mail_message_unsent on mail_message (created_at) where state = 'queued';

alter table job drop constraint job_kind_check;
alter table job add constraint job_kind_check
    check (kind in ('replenish_pool', 'mint_for_purchase', 'delete_token', 'reconcile_listing', 'send_mail'));

-- The outbox is written by the database itself, on the status change: no path that moves a purchase
-- (the one-statement fulfilment from the pool, a job, a refund, a dispute, an operator) can forget
-- its message, and the message commits or rolls back with the move.
-- - fulfilled: the receipt, with the token and how to install it;
-- - reinstated: access restored (a dispute won);
-- - refunded, disputed, dispute_lost or revoked, from a status that held or was owed a token: access
--   ended. Each closing status is its own fact, so a dispute lost after a reinstatement says so again.
create function purchase_status_queues_mail() returns trigger
    language plpgsql as
$$
declare
    mail_kind text;
    mail_fact text;
    new_mail  uuid := gen_random_uuid();
begin
    if new.email is null or new.status = old.status then
        return null;
    end if;
    if new.status = 'fulfilled' then
        mail_kind := 'receipt';
        mail_fact := new.purchase_id || ':receipt';
    elsif new.status = 'reinstated' then
        mail_kind := 'access_restored';
        mail_fact := new.purchase_id || ':access_restored';
    elsif new.status in ('refunded', 'disputed', 'dispute_lost', 'revoked')
        and old.status in ('paid', 'fulfilled', 'reinstated') then
        mail_kind := 'access_ended';
        mail_fact := new.purchase_id || ':access_ended:' || new.status;
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

create trigger purchase_status_queues_mail
    after update of status
    on purchase
    for each row
execute function purchase_status_queues_mail();
