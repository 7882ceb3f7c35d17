-- Sessions of the admin screens, shared by every process on the database. Only a SHA-256
-- digest of the session id is stored (the id itself lives in the browser's cookie), with the
-- CSRF token of the session, who signed in and with which roles, and when it ends: after
-- an idle period (expires_at, moved on by use) and at the latest at absolute_expires_at.
-- A session begun with a token (the admin token or an API key) keeps the SHA-256 of that
-- token (hex), so that it ends when the token is no longer configured; NULL for a session
-- begun through the identity service. Times are Unix seconds.
create table ui_sessions (
    id_sha256           text   primary key,
    csrf_token          text   not null,
    actor               text   not null,
    roles               text   not null,
    created_at          bigint not null,
    last_seen_at        bigint not null,
    expires_at          bigint not null,
    absolute_expires_at bigint not null,
    credential_sha256   text
);
create index ui_sessions_expires on ui_sessions (expires_at);
