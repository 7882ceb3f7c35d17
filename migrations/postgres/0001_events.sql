-- The event store. cqrs-es (postgres-es 0.5) inserts the first seven columns by name; the rest
-- take their defaults. The composite primary key is what turns a concurrent append to the same
-- client into a conflict (postgres-es maps every unique violation on this table to
-- AggregateConflict, so this table gets no other unique constraint).
create table events (
    aggregate_type text   not null,
    aggregate_id   text   not null,
    sequence       bigint not null check (sequence > 0),
    event_type     text   not null,
    event_version  text   not null,
    payload        jsonb  not null,
    metadata       jsonb  not null,
    -- one total order over all events, for the global feed
    global_position bigint generated always as identity,
    recorded_at     timestamptz not null default now(),
    -- the writing transaction, so feed readers can stay below the snapshot horizon
    transaction_id  xid8 not null default pg_current_xact_id(),
    primary key (aggregate_type, aggregate_id, sequence)
);
