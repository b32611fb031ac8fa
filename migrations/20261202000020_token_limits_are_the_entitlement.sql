-- I5, restated: a live token's limits are its purchase's entitlement.
--
-- Before, I5 said a token's `max_installs` equals its tier's (the composite foreign key of
-- migration 3, which stays). Rotation (migration 18) moves a purchase to another token, and tier
-- upgrades will change a token's limit in place, so what must hold is about the purchase: the token
-- a purchase holds allows exactly the installs the purchase is entitled to (`purchase.max_installs`,
-- the tier's when it was bought). At Xano the same limit is written on every token we create,
-- rotate or update (the chaos suite compares Xano's list with this).
--
-- Checked at commit (deferred): assignment and the purchase's changes happen in either order in
-- one transaction.
create function check_token_limits_are_the_entitlement() returns trigger
    language plpgsql as
$$
begin
    if exists (select 1 from install_token it join purchase p using (purchase_id)
               where it.install_token_id = new.install_token_id
                 and it.state = 'assigned' and it.max_installs <> p.max_installs) then
        raise exception 'token % allows other installs than its purchase is entitled to', new.install_token_id
            using errcode = 'check_violation';
    end if;
    return null;
end
$$;

create constraint trigger install_token_limits_are_the_entitlement
    after insert or update of state, purchase_id, max_installs, tier_id
    on install_token
    deferrable initially deferred
    for each row
execute function check_token_limits_are_the_entitlement();
