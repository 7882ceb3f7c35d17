create unique index events_global_position on events (global_position);

create trigger events_assign_global_position after insert on events
begin
    update events
       set global_position = (select coalesce(max(global_position), 0) + 1 from events)
     where rowid = new.rowid;
end;
