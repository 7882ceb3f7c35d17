-- The tables a rebuild fills while the live ones keep serving reads and inline projections;
-- the rebuild then swaps them in by renaming (the old live tables become the next shadow).
-- A later migration that changes client_detail or client_list must change these the same
-- way, and must not refer to their indexes by name: the names alternate between rebuilds.
create table client_detail_next (
    client_id     text    primary key,
    version       integer not null,
    last_position integer not null,
    deleted       integer not null,
    document      text    not null,
    created_at    text    not null,
    updated_at    text    not null
) strict;
create table client_list_next (
    client_id   text    primary key,
    client_name text    not null,
    name_key    text    not null,
    client_uri  text,
    enabled     integer not null,
    grant_types text    not null,
    search_text text    not null,
    created_at  text    not null,
    updated_at  text    not null
) strict;
create index client_list_next_name on client_list_next (name_key, client_id);
create index client_list_next_created on client_list_next (created_at, client_id);
create index client_list_next_updated on client_list_next (updated_at, client_id);
