-- Sessions of the admin screens. Only a SHA-256 digest of the session id is stored (the id
-- itself lives in the browser's cookie), with the CSRF token of the session, who signed in
-- and with which roles, and when it ends: after an idle period (expires_at, moved on by use)
-- and at the latest at absolute_expires_at. Times are Unix seconds.
create table ui_sessions (
    id_sha256           text    primary key,
    csrf_token          text    not null,
    actor               text    not null,
    roles               text    not null,
    created_at          integer not null,
    last_seen_at        integer not null,
    expires_at          integer not null,
    absolute_expires_at integer not null
) strict;
create index ui_sessions_expires on ui_sessions (expires_at);
