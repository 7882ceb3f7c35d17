-- Client ID metadata documents (draft-ietf-oauth-client-id-metadata-document): what the
-- registry knows of each document URL it fetched or an administrator acted on. The client
-- itself (its settings, each changed version as an event) is in the event store; this is the
-- fetcher's cache state and the administrators' pin and block. Times are Unix seconds.
--   sha256       digest (hex) of the version the client was last built from
--   fresh_until  until when that version (or the last refusal) is used without fetching
--   pinned_*     who pinned it: a changed document is held, the pinned version keeps serving
--   held_*       the changed version held while pinned (its body, at most 5 KiB)
--   blocked_*    who blocked the URL: never fetched, unknown to the identity service
--   last_error   why the last fetch was refused (transient: its server's passing trouble,
--                a no-answer, an unreachable server or a 5xx: the last version may serve)
create table client_id_documents (
    url          text   primary key,
    sha256       text,
    fetched_at   integer,
    fresh_until  integer not null default 0,
    pinned_by    text,
    pinned_at    integer,
    held_sha256  text,
    held_body    text,
    held_at      integer,
    blocked_by   text,
    blocked_at   integer,
    last_error   text,
    last_error_at integer,
    last_error_transient integer not null default 0
) strict;
