-- The event store. cqrs-es (postgres-es 0.5) inserts the first seven columns by name; the rest
-- take their defaults or are set by the trigger of 0002. The composite primary key is what
-- turns a concurrent append to the same client into a conflict (postgres-es maps every unique
-- violation on this table to AggregateConflict, so this table gets no other unique constraint).
create table events (
    aggregate_type  text        not null,
    aggregate_id    text        not null,
    sequence        bigint      not null check (sequence > 0),
    event_type      text        not null,
    event_version   text        not null,
    payload         jsonb       not null,
    metadata        jsonb       not null,
    -- one total order over all events, for the global feed (assigned in 0002)
    global_position bigint      not null,
    recorded_at     timestamptz not null default now(),
    primary key (aggregate_type, aggregate_id, sequence)
);
