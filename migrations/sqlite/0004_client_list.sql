-- Read model: the searchable list of live clients. `search_text` is
-- lower(client_id) || U+001F || lower(client_name), lowercased in Rust; search is instr() on
-- it, so the term is literal.
create table client_list (
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
create index client_list_name on client_list (name_key, client_id);
create index client_list_created on client_list (created_at, client_id);
create index client_list_updated on client_list (updated_at, client_id);
