-- Snapshots of long client streams (the write model), so a command on a client with
-- thousands of events loads one row and the events after it. A cache: deleting every row is
-- harmless (streams are replayed in full). Not cqrs-es's snapshot store, which in 0.5.0 applies
-- each new event twice.
create table aggregate_snapshots (
    aggregate_type text   not null,
    aggregate_id   text   not null,
    version        bigint not null,
    state          jsonb  not null,
    primary key (aggregate_type, aggregate_id)
);
