-- Read model: one row per client id ever registered (deleted ones stay as tombstones so that
-- the sequence guard keeps working). `document` is the client as the API shows it, without
-- secret hashes.
create table client_detail (
    client_id     text    primary key,
    version       integer not null,
    last_position integer not null,
    deleted       integer not null,
    document      text    not null,
    created_at    text    not null,
    updated_at    text    not null
) strict;
