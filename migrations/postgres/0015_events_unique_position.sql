-- One event per feed position (the trigger gives each its own): a second row at a position
-- would be skipped by every reader that pages by position — the feed, the projector and the
-- sealer — and so could change a client without ever showing in the sealed log. (SQLite's
-- index is unique since 0001.) Builds the index again: a moment of lock on a large table.
drop index events_global_position;
create unique index events_global_position on events (global_position);
