-- Disputes are not final at creation (the values; migration 12 uses them).
--
-- Before this, `charge.dispute.created` closed a purchase for good, like a refund: an inquiry, or a
-- dispute the seller went on to win, still took the buyer's access away forever. Now an open dispute
-- suspends access, a won one gives it back and a lost one closes the purchase:
--
--   disputed ──DisputeWon──▶ reinstated (owed a token again, holds a new one once served)
--       └─────DisputeLost──▶ dispute_lost (terminal)
--
-- `alter type … add value` must commit before the new values can be used in constraints, so the
-- constraints that name them are the next migration's.
alter type purchase_status add value 'reinstated' after 'disputed';
alter type purchase_status add value 'dispute_lost' after 'reinstated';
