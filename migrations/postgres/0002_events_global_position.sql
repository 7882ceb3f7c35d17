-- The global feed must be safe to tail: a reader that has passed position N must never later
-- find a committed event before N. A sequence alone is not: positions are taken at insert,
-- but transactions commit in another order.
--
-- The barrier (as ZITADEL does it): every writer takes a shared advisory lock, then its
-- position, in its own transaction (this trigger, so cqrs-es's INSERT needs no change). A
-- reader calls events_safe_position(): it takes the exclusive lock for an instant, which waits
-- until every writer holding a position has committed or rolled back, and reads the sequence.
-- Every position at or below that value is final; the feed is read only up to it.
create sequence events_global_position_seq as bigint;

create function events_assign_global_position() returns trigger
language plpgsql as $$
begin
    -- 0x52454749 = 'REGI': the feed barrier.
    perform pg_advisory_xact_lock_shared(1380273993);
    new.global_position := nextval('events_global_position_seq');
    return new;
end
$$;

create trigger events_assign_global_position before insert on events
    for each row execute function events_assign_global_position();

create function events_safe_position() returns bigint
language plpgsql as $$
declare
    safe bigint;
begin
    perform pg_advisory_xact_lock(1380273993);
    select case when is_called then last_value else 0 end into safe
      from events_global_position_seq;
    return safe;
end
$$;

create index events_global_position on events (global_position);

-- Wake feed tailers (the projector of every process) when events commit.
create function events_notify() returns trigger
language plpgsql as $$
begin
    perform pg_notify('registry_events', '');
    return null;
end
$$;

create trigger events_notify after insert on events
    for each statement execute function events_notify();
