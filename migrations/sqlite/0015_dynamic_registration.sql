-- Dynamic client registration (RFC 7591, RFC 7592).
-- Initial access tokens, created by an administrator: only a SHA-256 digest (hex) of the token
-- is kept, with its policy (JSON), how often it may be used and was used, and when it ends
-- or was revoked. Times are Unix seconds.
create table initial_access_tokens (
    token_id    text   primary key,
    sha256      text   not null unique,
    description text   not null,
    created_by  text   not null,
    created_at  integer not null,
    expires_at  integer not null,
    max_uses    integer,
    uses        integer not null default 0,
    revoked_at  integer,
    policy      text   not null
) strict;
-- The registration access token of each dynamically registered client (only its SHA-256
-- digest, replaced on each update through the client configuration endpoint), the initial
-- access token that registered the client, and when that registration happened (Unix
-- microseconds, its event's time): a client deleted and registered again under the same id
-- by anyone else is another registration, which the token does not manage.
create table registration_access_tokens (
    client_id  text   primary key,
    sha256     text   not null,
    token_id   text   not null references initial_access_tokens (token_id),
    issued_at  integer not null,
    registered_at integer not null
) strict;
create index registration_access_tokens_token on registration_access_tokens (token_id);
