-- Jobs have an end: a job that cannot succeed dies, visibly, instead of looping or vanishing.
--
-- Before, a job that gave up was `failed`, and the housekeeping sweep queued a fresh one for the
-- same subject at once (the unique index only counts live jobs): a snippet deleted at Xano made a
-- failed replenisher every sweep, ~17 000 rows a day. A failed mint or delete was simply gone:
-- nothing re-queued it, so a paid purchase stayed without a token and a refunded buyer's token
-- stayed live at Xano.
--
-- Now (market-core `queue`, `jobs/runner.rs`):
-- - a job that gave up, or that failed `max_attempts` times or for longer than `max_age`, is `dead`,
--   with its last error, an audit event `job.dead`, and a gauge; operators list and requeue it;
-- - the sweep queues work that is still owed (a refill, a reconciliation, a mint for a paid purchase
--   without a token, a delete for a revoking or retiring token) when no job for it is live, and none
--   died within the last `revive_after`: at most one series of attempts per subject per interval.

alter type job_state rename value 'failed' to 'dead';

-- The sweep asks "did a job for this subject die recently?" for every subject it considers.
create index job_dead_by_subject on job (kind, subject, finished_at) where state = 'dead';

-- The sweep's guarantees read only what is owed, through small partial indexes: purchases paid and
-- waiting (`purchase_by_status`), tokens gone missing at Xano, tokens to delete.
create index install_token_missing on install_token (purchase_id) where state = 'missing';
create index install_token_to_delete on install_token (install_token_id) where state in ('revoking', 'retiring');
