-- The tables a rebuild fills while the live ones keep serving reads and inline projections;
-- the rebuild then swaps them in by renaming (the old live tables become the next shadow).
-- A later migration that changes client_detail or client_list must change these the same
-- way, and must not refer to their indexes by name: the names alternate between rebuilds.
create table client_detail_next (like client_detail including all);
create table client_list_next (like client_list including all);
