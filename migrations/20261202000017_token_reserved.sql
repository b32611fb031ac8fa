-- A token held back from the pool for a rotation (the values; migration 18 uses them).
--
-- `alter type … add value` must commit before the new value can be used in constraints, so the
-- constraints that name it are the next migration's.
alter type token_state add value 'reserved' after 'available';
