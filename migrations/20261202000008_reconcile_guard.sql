-- Reconciliation must not be fooled by one bad answer from Xano (market-core `reconcile`).
--
-- When a pass would mark more than a configured share of a listing's live tokens `missing` at once
-- (a truncated or empty token list during an incident would otherwise re-issue every buyer's token),
-- it marks none and sets this; the next pass that sees the same acts and clears it, one that does not
-- clears it. Operators see it in the audit log (`reconcile.mass_missing_held_back`) and here.
alter table listing add column missing_suspected_at timestamptz;
