-- Install tokens sealed at rest (market-core's `envelope` module explains the design).
--
-- A token is a live credential to a buyer's purchase, and the service must read it back (to show the
-- buyer, to delete it at Xano). So it is kept encrypted, AES-256-GCM under a data key from
-- MARKET_DATA_KEY that the database never sees, with the key's id beside it so that keys can roll.
-- To find a token by its value (reconciliation matches Xano's list with ours; the same token must
-- never be recorded twice) the row also keeps its fingerprint, an HMAC under the database's lookup
-- key, which is itself stored sealed. A dump of the database alone opens neither.
--
-- A migration has no key, so rows written before it keep their plain `token` until the service
-- seals them: `market serve` does so at start-up, before its workers run, and `market keys rotate`
-- does it too. From this migration on the service writes sealed tokens only.

-- The lookup key: 32 random bytes made once, sealed under a data key. One row.
create table data_lookup_key
(
    singleton  boolean     primary key default true check (singleton),
    key_id     text        not null check (key_id ~ '^[A-Za-z0-9_-]{1,32}$'),
    -- nonce (12) + key (32) + tag (16)
    sealed     bytea       not null check (octet_length(sealed) = 60),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
select trigger_updated_at('data_lookup_key');

alter table install_token
    alter column token drop not null,
    add column token_key_id      text  check (token_key_id ~ '^[A-Za-z0-9_-]{1,32}$'),
    -- nonce (12) + at least one byte of token + tag (16)
    add column token_sealed      bytea check (octet_length(token_sealed) > 28),
    add column token_fingerprint bytea check (octet_length(token_fingerprint) = 32),
    -- Sealed means all three; a row is either still plain or sealed, never both or neither.
    add constraint install_token_sealed_whole
        check ((token_key_id is null) = (token_sealed is null)
           and (token_sealed is null) = (token_fingerprint is null)),
    add constraint install_token_plain_or_sealed check ((token is null) <> (token_sealed is null));

-- The same token is recorded once per listing, now by its fingerprint (Xano does not document
-- whether token strings are unique per snippet or globally). Rows still plain have no fingerprint
-- yet; start-up seals them before any worker can record a token.
alter table install_token drop constraint install_token_listing_id_token_key;
alter table install_token
    add constraint install_token_fingerprint_unique unique (listing_id, token_fingerprint);

-- Start-up looks for rows still plain; once all are sealed this index is empty.
create index install_token_still_plain on install_token (install_token_id) where token is not null;
