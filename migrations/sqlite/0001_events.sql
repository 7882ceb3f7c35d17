-- The event store. cqrs-es (sqlite-es 0.5) inserts the first seven columns by name. The
-- composite primary key turns a concurrent append to the same client into a conflict
-- (sqlite-es maps only primary-key violations, code 1555, to AggregateConflict).
create table events (
    aggregate_type  text    not null,
    aggregate_id    text    not null,
    sequence        integer not null check (sequence > 0),
    event_type      text    not null,
    event_version   text    not null,
    payload         text    not null,
    metadata        text    not null,
    -- one total order over all events, assigned by the trigger below. SQLite serialises
    -- writers, so insertion order is commit order.
    global_position integer,
    recorded_at     text    not null default (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    primary key (aggregate_type, aggregate_id, sequence)
) strict;
