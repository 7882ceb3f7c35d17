create index events_global_position on events (global_position);
