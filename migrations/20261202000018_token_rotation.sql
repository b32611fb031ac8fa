-- Token rotation: a buyer (or an operator) replaces a leaked token.
--
-- The new token carries the old one's installs (Xano's update takes `current_installs`, so the new
-- token's `max_installs` stays the entitlement), the old one is deleted at Xano, and the purchase
-- never holds two live tokens (I1's index is untouched: the new token is `reserved`, not live for
-- any purchase, until the transaction that retires the old one assigns it).
--
-- A rotation is a row and a `rotate_token` job, run at least once:
--   1. reserve a token: the oldest of the tier's pool, or one minted for the rotation;
--   2. read the old token's `current_installs` at Xano and write it onto the new one (absolute);
--   3. delete the old token at Xano (a 404 counts as done);
--   4. one transaction: the old token `revoked`, the new one `assigned` to the purchase, the rotation
--      `done`, the buyer's message queued.
-- Each step is safe to run again. A refund or dispute that closes the purchase meanwhile cancels
-- the rotation at step 4: the reserved token is retired (deleted at Xano), never assigned.
create table token_rotation
(
    rotation_id      uuid primary key,
    purchase_id      uuid        not null references purchase,
    old_token_id     bigint      not null references install_token,
    new_token_id     bigint references install_token,
    -- `buyer`, or `admin:<name>`.
    requested_by     text        not null,
    state            text        not null default 'pending' check (state in ('pending', 'done', 'cancelled')),
    -- What the new token was given of the old one's installs.
    installs_carried bigint check (installs_carried >= 0),
    created_at       timestamptz not null default now(),
    finished_at      timestamptz,
    check ((state = 'pending') = (finished_at is null)),
    check (state <> 'done' or (new_token_id is not null and installs_carried is not null)),
    check (new_token_id is distinct from old_token_id)
);
-- One rotation at a time per purchase: asking again while one runs gets that one.
create unique index token_rotation_one_pending_per_purchase on token_rotation (purchase_id) where state = 'pending';

alter table install_token add column reserved_for uuid references token_rotation;
alter table install_token add constraint install_token_reserved_for_one_rotation
    check ((state = 'reserved') = (reserved_for is not null));
alter table install_token add constraint install_token_reserved_is_unsold
    check (state <> 'reserved' or purchase_id is null);

alter table job drop constraint job_kind_check;
alter table job add constraint job_kind_check
    check (kind in ('replenish_pool', 'mint_for_purchase', 'delete_token', 'reconcile_listing', 'send_mail',
                    'rotate_token'));

-- The buyer is told, with the new token.
alter table mail_message drop constraint mail_message_kind_check;
alter table mail_message add constraint mail_message_kind_check
    check (kind in ('receipt', 'access_ended', 'access_restored', 'portal_link', 'token_rotated'));
