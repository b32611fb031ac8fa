-- One seller's broken Xano must not take every worker. Found by the chaos suite's seller isolation
-- run: while one seller's Xano answered 429s and 20 s latencies, its jobs (each retrying inside one
-- claim for up to a minute) held every worker of every instance, and another seller's pool refills
-- waited behind them until its buyers' tokens were late.
--
-- So a job records the seller (not the house) whose listing it is about, fixed at insert (its
-- subject never changes), and an instance runs at most half its workers on one seller's jobs at a
-- time (`jobs::runner`). The house's jobs and mail carry none: the operator's own work is never
-- held back for fairness among tenants.
alter table job add column seller_id uuid references seller;

create function job_records_its_seller() returns trigger
    language plpgsql as
$$
begin
    select l.seller_id into new.seller_id
    from listing l join seller s using (seller_id)
    where l.listing_id = job_listing(new.kind, new.subject) and not s.house;
    return new;
end
$$;

create trigger job_records_its_seller
    before insert
    on job
    for each row
execute function job_records_its_seller();

update job j
set seller_id = l.seller_id
from listing l
         join seller s using (seller_id)
where j.state in ('queued', 'running', 'parked')
  and l.listing_id = job_listing(j.kind, j.subject)
  and not s.house;
