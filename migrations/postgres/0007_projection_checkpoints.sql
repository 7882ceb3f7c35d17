-- How far each projection has applied the global feed.
create table projection_checkpoints (
    projection text   primary key,
    position   bigint not null
);
