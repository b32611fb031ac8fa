-- The buyer portal: a single-use sign-in link by email, and the session it opens.
--
-- Asking for a link (`POST /v1/portal/links`) does the same work whatever the address: a link row,
-- its message and the message's job. Whether the address has bought is decided by the sender job,
-- which does not send to an address without purchases; so neither the answer nor its timing tells
-- the asker anything.
--
-- Nothing secret is stored. A link's key is derived from the receipt secret and the link's id
-- (HMAC-SHA-256, like receipt keys) when the message is rendered; the row keeps its SHA-256 to check
-- what is presented. A session's bearer token is random; the row keeps its SHA-256.
create table portal_link
(
    portal_link_id uuid primary key,
    email          text        not null check (email ~ '^[^@\s]+@[^@\s]+$'),
    key_hash       bytea       not null check (length(key_hash) = 32),
    created_at     timestamptz not null default now(),
    expires_at     timestamptz not null,
    -- Set once, when the link opens its session.
    used_at        timestamptz,
    check (expires_at > created_at),
    check (used_at is null or used_at <= expires_at)
);
create index portal_link_by_email on portal_link (lower(email), created_at);

create table portal_session
(
    portal_session_id uuid primary key,
    email             text        not null check (email ~ '^[^@\s]+@[^@\s]+$'),
    token_hash        bytea       not null unique check (length(token_hash) = 32),
    -- Single use, in the schema: a link opens at most one session, however many instances race to
    -- redeem it.
    portal_link_id    uuid        not null unique references portal_link,
    created_at        timestamptz not null default now(),
    expires_at        timestamptz not null,
    ended_at          timestamptz,
    check (expires_at > created_at)
);

-- A portal session lists the purchases of its email.
create index purchase_by_email on purchase (lower(email), created_at desc) where email is not null;

-- The link's message goes through the outbox like every other; it names its link, not a purchase.
alter table mail_message add column portal_link_id uuid references portal_link;
alter table mail_message drop constraint mail_message_kind_check;
alter table mail_message add constraint mail_message_kind_check
    check (kind in ('receipt', 'access_ended', 'access_restored', 'portal_link'));
alter table mail_message add constraint mail_message_names_its_subject
    check (case when kind = 'portal_link' then portal_link_id is not null and purchase_id is null
                else purchase_id is not null and portal_link_id is null end);
