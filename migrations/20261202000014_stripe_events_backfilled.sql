-- Stripe events no webhook delivered: listed from Stripe and applied, through the same path.
--
-- Stripe retries a webhook for three days and then gives up; an endpoint that was down,
-- misconfigured or refusing for longer (or an event Stripe simply never sent) loses it. Reading
-- Checkout Sessions of pending purchases (migration 10) catches a lost payment, but not a lost
-- `charge.refunded` or dispute: a refunded buyer would keep a working token forever. So one
-- instance at a time lists Stripe's events of the handled types created since this cursor (less an
-- overlap, for events that become visible late and for clock skew) and applies every one the
-- inbox (`stripe_event`) has not seen, exactly as a webhook would.
--
-- One row. `created_through` is a Stripe timestamp: the newest `created` listed so far, never our
-- clock. The lease (`leased_until`, `leased_by`) lets one instance run a round while others skip
-- it; a crashed holder's lease runs out.
create table stripe_backfill
(
    only_row        boolean primary key default true check (only_row),
    created_through timestamptz,
    leased_by       uuid,
    leased_until    timestamptz,
    last_run_at     timestamptz,
    last_error      text,
    events_applied  bigint      not null default 0 check (events_applied >= 0),
    check ((leased_by is null) = (leased_until is null))
);
insert into stripe_backfill default values;
