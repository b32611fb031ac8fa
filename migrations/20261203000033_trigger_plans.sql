-- Two triggers on the fulfilment's path, written so that their cost does not depend on the plan
-- PostgreSQL cached for them (issue 17).
--
-- A PL/pgSQL function keeps each statement's plan for the life of the connection, and the plan is
-- made again only when the tables' statistics change (ANALYZE, VACUUM). Profiled with
-- pg_stat_statements in the benchmark, on a server with autovacuum off (this machine's own
-- configuration), the two statements below took most of PostgreSQL's time in a fulfilment:
-- I3's check, `exists (token … and not exists (purchase …))`, planned while `purchase` was nearly
-- empty, read every purchase at each commit (3.2 ms a call against 0.03 ms for I5's check of the
-- same token, which joins the same two rows); and the job's seller was looked up by comparing each
-- listing with `job_listing(kind, subject)`, evaluated once per listing read. Autovacuum's ANALYZE
-- would have made both plans again; these bodies need no statistics to be cheap.
--
-- Nothing checked changes: I3 (migration 12) and the job's seller (migration 28) say the same.

-- I3, deferred to commit: an assigned token belongs to a purchase that is fulfilled or reinstated.
-- The token and then its purchase, each read by its primary key.
create or replace function check_token_matches_purchase()
    returns trigger as
$$
declare
    owner    uuid;
    assigned boolean;
begin
    select it.purchase_id, it.state = 'assigned' into owner, assigned
    from install_token it
    where it.install_token_id = new.install_token_id;
    if assigned and not exists(select 1 from purchase p
                               where p.purchase_id = owner
                                 and p.status in ('fulfilled', 'reinstated')) then
        raise exception 'token % is assigned to purchase % which is neither fulfilled nor reinstated',
            new.install_token_id, new.purchase_id
            using errcode = 'check_violation';
    end if;
    return null;
end;
$$ language plpgsql;

-- The seller whose listing a job is about: the listing worked out once, then read by its key. A job
-- about no listing (mail) reads nothing.
create or replace function job_records_its_seller() returns trigger
    language plpgsql as
$$
declare
    about uuid := job_listing(new.kind, new.subject);
begin
    if about is null then
        new.seller_id := null;
        return new;
    end if;
    select l.seller_id into new.seller_id
    from listing l join seller s using (seller_id)
    where l.listing_id = about and not s.house;
    return new;
end
$$;
