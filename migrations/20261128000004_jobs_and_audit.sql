-- Background work, the credential's health, and the audit log.

-- A job is work that calls Xano: filling a tier's pool, minting a token for a purchase the pool could
-- not serve, deleting a token, reconciling a listing with Xano. Every instance of the service runs
-- workers that claim due jobs with `for update skip locked`.
--
-- Execution is at least once: a worker that dies (or pauses past its lease) has its job claimed again.
-- Each job kind is written so that a second run cannot break an invariant, and the finish is fenced by
-- (job_id, lease_owner, attempt), so a worker that lost its lease changes nothing when it wakes up.
create type job_state as enum (
    'queued',  -- waits for `due_at`
    'running', -- claimed; `due_at` is when the lease runs out and anyone may claim it again
    'parked',  -- Xano refused our credential (401/403); resumes when the credential works again
    'done',
    'failed'   -- gave up for a reason retrying cannot fix; an operator looks at `last_error`
);

create table job
(
    job_id      bigint generated always as identity primary key,
    kind        text        not null check (kind in ('replenish_pool', 'mint_for_purchase', 'delete_token',
                                                     'reconcile_listing')),
    -- What the job is about (a tier, purchase, token or listing id): one live job per (kind, subject).
    subject     text        not null,
    state       job_state   not null default 'queued',
    -- For queued jobs: when to run. For running ones: when the lease expires. One column, so that
    -- "claimable" is one index range: `state in ('queued', 'running') and due_at <= now()`.
    due_at      timestamptz not null default now(),
    attempt     integer     not null default 0 check (attempt >= 0),
    lease_owner uuid,
    last_error  text,
    created_at  timestamptz not null default now(),
    updated_at  timestamptz not null default now(),
    finished_at timestamptz,

    check ((state = 'running') = (lease_owner is not null)),
    check ((state in ('done', 'failed')) = (finished_at is not null))
);
select trigger_updated_at('job');

-- Single flight: at most one live job per subject, across all instances (e.g. one replenisher per tier).
create unique index job_one_live_per_subject on job (kind, subject) where state in ('queued', 'running', 'parked');
create index job_due on job (due_at) where state in ('queued', 'running');

-- Whether Xano accepts our access token. One row. When Xano answers 401 or 403, jobs park instead of
-- failing or retrying in a hot loop; a probe (GET /auth/me) or any later success heals it.
create table xano_health
(
    singleton       boolean primary key default true check (singleton),
    state           text        not null default 'healthy' check (state in ('healthy', 'unauthorized', 'forbidden')),
    since           timestamptz not null default now(),
    last_checked_at timestamptz,
    last_error      text
);
insert into xano_health default values;

-- Append-only record of every state change and of every Xano call that changed something.
-- `actor` says who: `stripe`, `buyer`, `system` (workers), or `admin:<name>`.
-- Token strings never go in here: rows name tokens by `install_token_id`.
create table audit_event
(
    audit_event_id   bigint generated always as identity primary key,
    at               timestamptz not null default clock_timestamp(),
    actor            text        not null,
    action           text        not null,
    listing_id       uuid,
    tier_id          uuid,
    purchase_id      uuid,
    install_token_id bigint,
    detail           jsonb       not null default '{}'
);
create index audit_event_by_purchase on audit_event (purchase_id, audit_event_id) where purchase_id is not null;
create index audit_event_by_token on audit_event (install_token_id) where install_token_id is not null;

create trigger audit_event_is_append_only
    before update or delete
    on audit_event
    for each row
execute function refuse_change();
