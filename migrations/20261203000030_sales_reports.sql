-- Sales reports (market-core `reports`): gross, refunds, disputes, platform fees and net, by day,
-- listing, tier and seller, over a range of days, computed by one `group by` over the purchases
-- paid in the range.
--
-- A sale is dated by when it was paid (`paid_at`), so every report reads a range of `paid_at`:
-- the platform's report all sellers' sales in it, a seller's report its own. Neither existing
-- index serves that (`purchase_by_status` and `purchase_by_seller` are ordered by `created_at`,
-- when the checkout started, not when it was paid), so on millions of purchases the report would
-- read them all. The two indexes below read exactly the range's sales, and nothing else:
--
-- - partial (`where paid_at is not null`): a purchase that was never paid (pending, expired,
--   failed, or closed by a refund seen before its payment) is no sale and never enters them. The
--   report's `paid_at >= $from` implies it, so the planner may use them;
-- - `include` every column the report sums or groups by, so PostgreSQL answers from the index
--   alone (an index-only scan) without visiting the table for each purchase. The included columns
--   change rarely after payment: `status` (already indexed by `purchase_by_status`, so its updates
--   were never HOT), `amount_refunded` once per refund.

-- The platform's report (`GET /v1/admin/reports/sales`, `market report sales`): every sale in
-- the range, in the order it was paid.
create index purchase_sales_by_day on purchase (paid_at)
    include (seller_id, tier_id, currency, amount, amount_refunded, application_fee_amount, status)
    where paid_at is not null;

-- A seller's report (`GET /v1/seller/reports/sales`, or the platform's for one seller): the
-- seller's sales in the range, without reading the other sellers'.
create index purchase_sales_by_seller on purchase (seller_id, paid_at)
    include (tier_id, currency, amount, amount_refunded, application_fee_amount, status)
    where paid_at is not null;
