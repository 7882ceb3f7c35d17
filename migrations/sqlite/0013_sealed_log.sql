-- The sealed log (issue 13): every event, in global-position order, a leaf of a Merkle tree
-- (RFC 9162), written by the sealer below the projector's checkpoint; the perfect subtrees
-- above the leaves; the signed tree heads. No writer of events touches these tables.
create table seal_leaves (
    leaf_index integer primary key check (leaf_index >= 0),
    position   integer not null unique,
    leaf_hash  blob    not null
) strict;

create table seal_nodes (
    level      integer not null check (level > 0),
    node_index integer not null,
    hash       blob    not null,
    primary key (level, node_index)
) strict, without rowid;

create table seal_tree_heads (
    tree_size integer primary key,
    root_hash text    not null,
    -- exactly as signed (RFC 3339, UTC)
    timestamp text    not null,
    key_id    text    not null,
    signature text    not null
) strict;
