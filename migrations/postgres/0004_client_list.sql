-- Read model: the searchable list of live clients. `search_text` is
-- lower(client_id) || U+001F || lower(client_name), lowercased in Rust so that both backends
-- agree; `name_key` is lower(client_name) for sorting. "C" collation: byte order, the same
-- order SQLite uses, so keyset cursors mean the same thing on both backends.
create table client_list (
    client_id   text collate "C" primary key,
    client_name text        not null,
    name_key    text collate "C" not null,
    client_uri  text,
    enabled     boolean     not null,
    grant_types jsonb       not null,
    search_text text        not null,
    created_at  timestamptz not null,
    updated_at  timestamptz not null
);
create index client_list_name on client_list (name_key, client_id);
create index client_list_created on client_list (created_at, client_id);
create index client_list_updated on client_list (updated_at, client_id);
