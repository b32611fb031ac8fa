-- Helpers every later migration uses.
--
-- Conventions (see migrations/README.md): lowercase SQL, singular table names, `<table>_id` keys,
-- `created_at` set on insert and `updated_at` kept by a trigger, all times `timestamptz` (UTC).

-- Keeps `updated_at` honest without every query having to remember it.
create or replace function set_updated_at()
    returns trigger as
$$
begin
    new.updated_at = now();
    return new;
end;
$$ language plpgsql;

create or replace function trigger_updated_at(tablename regclass)
    returns void as
$$
begin
    execute format('create trigger set_updated_at
        before update
        on %s
        for each row
        when (old is distinct from new)
    execute function set_updated_at();', tablename);
end;
$$ language plpgsql;

-- Append-only tables refuse updates and deletes outright, so that "append-only" is a property of the
-- database rather than a promise of the code.
create or replace function refuse_change()
    returns trigger as
$$
begin
    raise exception '% is append-only', tg_table_name;
end;
$$ language plpgsql;
