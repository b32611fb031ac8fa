-- Verified Stripe events the service could not read, kept so that none is lost.
--
-- Events are read leniently (only the fields each fact needs; unknown fields, missing optional ones
-- and other API versions are fine), so an event lands here only when a field the service needs is
-- missing or reshaped (an API change the code does not know yet). Its signature was verified, so
-- it is Stripe's: the service answers 200 (Stripe stops retrying), logs an error, counts it
-- (`market_stripe_webhooks_total{outcome="stored_unreadable"}`), and keeps the raw body here until
-- an operator runs `market events replay` with a release that reads it.
create table stripe_event_unreadable
(
    -- Stripe's event id (a body without one is no event: refused with 400, never kept).
    stripe_event_id text        primary key,
    type            text,
    payload         text        not null,
    reason          text        not null,
    received_at     timestamptz not null default now(),
    -- Deliveries of the same event (Stripe retries, duplicates) counted, not stored twice.
    deliveries      integer     not null default 1 check (deliveries >= 1),
    replayed_at     timestamptz,
    -- The outcome of the replay that applied it (`fulfilled`, `duplicate`, …).
    replay_outcome  text,
    check ((replayed_at is null) = (replay_outcome is null))
);
create index stripe_event_unreadable_waiting on stripe_event_unreadable (received_at) where replayed_at is null;
