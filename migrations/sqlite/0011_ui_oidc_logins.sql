-- OpenID Connect sign-ins under way: between the redirect to the identity service and its
-- answer. Keyed by a SHA-256 of the `state` sent; the login cookie's digest ties the answer to
-- the browser that started it (login CSRF). Single use, short-lived. Times are Unix seconds.
create table ui_oidc_logins (
    state_sha256   text    primary key,
    browser_sha256 text    not null,
    pkce_verifier  text    not null,
    nonce          text    not null,
    next_path      text    not null,
    expires_at     integer not null
) strict;
create index ui_oidc_logins_expires on ui_oidc_logins (expires_at);
