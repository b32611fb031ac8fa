-- A seller's Xano refusing its credential stops that seller's work, and nobody else's.
--
-- Until now a 401 meant "this instance's credential" (migration 13): the job was handed to other
-- instances. A seller's credential is the same on every instance, so handing back would only loop:
-- the job *parks* for the seller instead (`job.parked_for_seller`), and the credential's row says
-- it is refused. The row is the refusal a parked job waits for: replacing the credential
-- (`PUT /v1/seller/xano`) or a probe that finds it working again (the sweep's `GET /auth/me`)
-- resumes the seller's parked jobs in the same transaction that marks it healthy. A refusal is
-- recorded only against the credential that met it (by fingerprint): one replaced meanwhile does
-- not park the new one's work.
alter table seller_xano_credential
    add column state         text not null default 'healthy'
        check (state in ('healthy', 'unauthorized', 'forbidden')),
    add column last_error    text,
    add column refused_at    timestamptz,
    add column last_probe_at timestamptz,
    add constraint seller_xano_credential_refused_since check ((state = 'healthy') = (refused_at is null));

alter table job add column parked_for_seller uuid references seller_xano_credential (seller_id);
alter table job drop constraint job_parked_for_a_listing;
alter table job add constraint job_parked_for_a_listing_or_a_seller
    check ((state = 'parked') = (parked_for_listing is not null or parked_for_seller is not null)
           and (parked_for_listing is null or parked_for_seller is null));
create index job_parked_by_seller on job (parked_for_seller) where state = 'parked';
