-- Mail is claimed before Xano work (market-core `queue::claim_in`): a buyer's sign-in link, receipt
-- or rotation notice must not wait behind a backlog of mints, refills and reconciliations that built
-- up while Xano was down or refused the credential. The claim reads two lanes, each in due order:
-- mail, then (up to the rest of its limit) everything else.
--
-- `job_due` (migration 4) serves the Xano lane. Without an index of its own, the mail lane would
-- walk `job_due` through the whole Xano backlog to find the few due messages on every claim; with
-- this partial index it reads only mail, and an empty mail lane costs one index probe.
create index job_due_mail on job (due_at)
    where state in ('queued', 'running') and kind = 'send_mail';
