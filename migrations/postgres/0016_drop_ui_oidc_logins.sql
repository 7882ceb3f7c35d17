-- Sign-ins under way now live in each browser's signed login cookie: /oidc/login, open to
-- anyone, no longer writes a row per request. The rows left here are dead.
drop table ui_oidc_logins;
