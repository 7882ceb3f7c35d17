-- Events a projection could not apply (undecodable, or out of order for their client), parked
-- so that one bad event does not stop every projection (ZITADEL's failed_events). The
-- projector moves past them; `client-registry projections status` lists them and
-- `projections retry` tries them again. `projection` is `clients` for the live read model and
-- `clients_next` for the one a rebuild is filling.
create table projection_failures (
    projection text        not null,
    position   bigint      not null,
    client_id  text        not null,
    sequence   bigint      not null,
    event_type text        not null,
    error      text        not null,
    attempts   bigint      not null default 1,
    failed_at  timestamptz not null default now(),
    primary key (projection, position)
);
