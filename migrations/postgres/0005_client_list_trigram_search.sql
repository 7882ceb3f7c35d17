-- Case-insensitive substring search on id or name: LIKE '%term%' on search_text, served by a
-- trigram index. pg_trgm is a trusted extension (PostgreSQL 13+).
create extension if not exists pg_trgm;
create index client_list_search on client_list using gin (search_text gin_trgm_ops);
