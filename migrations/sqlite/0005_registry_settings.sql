-- Small facts about this installation, e.g. the hash of the generated admin token.
create table registry_settings (
    key   text primary key,
    value text not null
) strict;
