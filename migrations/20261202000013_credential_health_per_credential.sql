-- Xano's refusals are kept per credential and per snippet, not in one global row (self-healing,
-- finding 1).
--
-- Before, `xano_health` was one row for the whole fleet. During a token rotation an instance still
-- running with the old token met 401s, marked the row refused, and every instance stopped claiming
-- and parked every job; a healthy instance's probe healed the row, the stale instance flipped it
-- back. Measured with three good instances and one stale: 40 purchases paid past an empty pool took
-- 31 s to get their tokens, or 19 of them had none after 120 s. A 403 for one snippet likewise
-- parked the work of every listing.
--
-- Now (market-core `health`, `jobs/refusal.rs`, `queue`):
-- - a refusal of the credential (401, or a 403 that `GET /auth/me` confirms) is recorded on that
--   credential's row only. The instance using it stops claiming, hands back the job it held (queued,
--   due now, the attempt not counted) for instances whose credential works, probes, and reports not
--   ready while another credential in use is healthy. Nothing is parked for it;
-- - a 403 for one snippet while `GET /auth/me` succeeds parks that listing's jobs only, recorded in
--   `xano_forbidden_listing`; a probe of the snippet lifts it.

-- Jobs parked under the old rule: nothing resumes them any more (no global heal), and a refused
-- credential no longer parks. Whichever instance has a working credential runs them.
update job set state = 'queued', due_at = now() where state = 'parked';

-- The old row named no credential, so it cannot be carried over: the fingerprint needs the
-- database's lookup key, which SQL does not have. Every instance's credential starts healthy and
-- its first call to Xano tells.
drop table xano_health;

-- One row per Xano access token in use, keyed by a fingerprint of the token: HMAC-SHA-256 under the
-- database's lookup key (market-core `envelope`), the same on every instance using the same token,
-- useless to anyone without the key. The token itself is never stored.
create table xano_credential
(
    -- Logs, metrics and the admin API show its first 8 hex digits: short, stable, no secret.
    credential_fingerprint bytea primary key check (octet_length(credential_fingerprint) = 32),
    -- `unauthorized`: 401, an unknown, expired or revoked token; `forbidden`: 403 on `GET /auth/me`.
    state                  text        not null default 'healthy'
        check (state in ('healthy', 'unauthorized', 'forbidden')),
    since                  timestamptz not null default now(),
    last_checked_at        timestamptz,
    last_error             text,
    -- When an instance using this credential last touched it (runners do at every sweep): a
    -- credential seen within the last minute is in use; older rows are history, pruned by the sweep.
    last_seen_at           timestamptz not null default now(),
    created_at             timestamptz not null default now(),
    updated_at             timestamptz not null default now(),

    check ((state = 'healthy') = (last_error is null))
);
select trigger_updated_at('xano_credential');

-- A listing whose snippet Xano refuses (403) while the credential itself works (`GET /auth/me`
-- answers): the snippet's rights were taken away, or it moved out of the account's reach. Its jobs
-- park here instead of failing or refusing every other listing's work; a probe of the snippet
-- (`GET /snippet/{canonical}/token`) at `probe_interval` lifts the row and resumes them.
create table xano_forbidden_listing
(
    listing_id      uuid primary key references listing on delete cascade,
    since           timestamptz not null default now(),
    -- The last probe; the first one is due `probe_interval` after the refusal was recorded.
    last_checked_at timestamptz not null default now(),
    last_error      text        not null,
    -- The display id of the credential that last met the refusal (another may not).
    seen_by         text        not null,
    created_at      timestamptz not null default now(),
    updated_at      timestamptz not null default now()
);
select trigger_updated_at('xano_forbidden_listing');

-- A parked job names the refusal it waits for, and that refusal must exist: a job can no longer be
-- parked with nothing left to resume it. Lifting a refusal resumes its jobs in the same
-- transaction that deletes it (the foreign key refuses the delete otherwise).
alter table job
    add column parked_for_listing uuid references xano_forbidden_listing (listing_id),
    add constraint job_parked_for_a_listing check ((state = 'parked') = (parked_for_listing is not null));
create index job_parked_by_listing on job (parked_for_listing) where state = 'parked';

comment on column job.parked_for_listing is
    'the listing whose snippet Xano forbids; the job resumes when xano_forbidden_listing lifts it';
