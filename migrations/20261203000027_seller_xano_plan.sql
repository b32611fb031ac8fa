-- A seller declares their Xano plan with their credential: Xano's limits are per account, and the
-- free plan allows 10 requests per 20 seconds while paid plans are documented as unlimited. The
-- seller's client paces its calls by it (`free`: 10 per 20 s; `paid`: the service's own
-- `XANO_RATE_LIMIT`), so a free-plan seller's jobs wait on their own limiter instead of meeting
-- Xano's 429s, and nobody else's are slowed.
alter table seller_xano_credential
    add column plan text not null default 'paid' check (plan in ('free', 'paid'));
