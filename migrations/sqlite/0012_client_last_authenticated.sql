-- When each client last passed secret verification: kept aside from the events (it is not a
-- change of the client, and recording it as one would make every token request a write),
-- written in batches by each process. Unix seconds.
create table client_last_authenticated (
    client_id text    primary key,
    at        integer not null
) strict;
