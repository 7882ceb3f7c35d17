-- Read model: one row per client id ever registered (deleted ones stay as tombstones so that
-- the sequence guard keeps working). `document` is the client as the API shows it, without
-- secret hashes.
create table client_detail (
    client_id     text collate "C" primary key,
    version       bigint      not null,
    last_position bigint      not null,
    deleted       boolean     not null,
    document      jsonb       not null,
    created_at    timestamptz not null,
    updated_at    timestamptz not null
);
