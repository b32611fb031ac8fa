-- Usage that is fresh where it is shown: a receipt or the portal reads a listing's install counts
-- from Xano when they are older than a minute (`usage.rs`).
--
-- One call (`GET /snippet/{canonical}/token`) refreshes every token of a listing, so freshness is
-- kept per listing: `installs_as_of` is when the counts were last read from Xano (by this refresh or
-- a reconciliation); `installs_refresh_claimed_at` lets one instance at a time make the call
-- (compare-and-set), so a burst of receipt reads across the fleet costs Xano one request a minute
-- per listing at most.
alter table listing add column installs_as_of timestamptz;
alter table listing add column installs_refresh_claimed_at timestamptz;
