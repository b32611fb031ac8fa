-- Which listing a job is about, in one place: the seller API shows a seller its own jobs (and only
-- those), and the refusal of a job's Xano call is charged to that listing's seller. A job's subject
-- is a tier, purchase, token, listing or rotation id according to its kind; mail is about a buyer,
-- not a snippet, and belongs to no listing. A subject that no longer exists (or is not an id of
-- its kind) has none.
create function job_listing(job_kind text, subject text) returns uuid
    language sql
    stable
as
$$
select case
           when job_kind <> 'delete_token'
               and subject !~ '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$' then null
           when job_kind = 'replenish_pool' then
               (select listing_id from tier where tier_id = subject::uuid)
           when job_kind in ('mint_for_purchase', 'apply_upgrade') then
               (select t.listing_id from purchase p join tier t using (tier_id) where p.purchase_id = subject::uuid)
           when job_kind = 'delete_token' then
               (select listing_id from install_token
                where subject ~ '^[0-9]{1,18}$' and install_token_id = subject::bigint)
           when job_kind = 'reconcile_listing' then
               (select listing_id from listing where listing_id = subject::uuid)
           when job_kind = 'rotate_token' then
               (select it.listing_id from token_rotation r
                join install_token it on it.install_token_id = r.old_token_id
                where r.rotation_id = subject::uuid)
       end
$$;
