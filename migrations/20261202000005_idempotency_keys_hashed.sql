-- Idempotency keys are secrets, kept as hashes, for 24 hours.
--
-- A checkout replayed under the same `Idempotency-Key` answers with the first checkout's purchase id
-- and receipt key, and the receipt key shows the buyer's token. So a key must be as hard to guess as
-- a password (the service refuses keys under 32 characters), and the database keeps only its
-- SHA-256: a dump of this table cannot be replayed. As at Stripe, a key is kept for 24 hours; after
-- that, the same key starts a new purchase (the service clears the old purchase's hash first).

alter table purchase add column checkout_key_hash bytea
    constraint purchase_checkout_key_hash_is_sha256 check (octet_length(checkout_key_hash) = 32);

-- Keys given before this migration keep working for the rest of their 24 hours.
update purchase
set checkout_key_hash = sha256(convert_to(checkout_idempotency_key, 'UTF8'))
where checkout_idempotency_key is not null
  and created_at > now() - interval '24 hours';

alter table purchase drop column checkout_idempotency_key;

-- One live purchase per key (NULLs, expired or never given, are distinct).
alter table purchase add constraint purchase_checkout_key_hash_unique unique (checkout_key_hash);
