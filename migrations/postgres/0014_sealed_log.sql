-- The sealed log (issue 13): every event, in global-position order, a leaf of a Merkle tree
-- (RFC 9162), written by the one sealer below the projector's checkpoint; the perfect
-- subtrees above the leaves; the signed tree heads. No writer of events touches these tables.
create table seal_leaves (
    leaf_index bigint primary key check (leaf_index >= 0),
    position   bigint not null unique,
    leaf_hash  bytea  not null
);

create table seal_nodes (
    level      bigint not null check (level > 0),
    node_index bigint not null,
    hash       bytea  not null,
    primary key (level, node_index)
);

create table seal_tree_heads (
    tree_size bigint primary key,
    root_hash text   not null,
    -- exactly as signed (RFC 3339, UTC)
    timestamp text   not null,
    key_id    text   not null,
    signature text   not null
);
