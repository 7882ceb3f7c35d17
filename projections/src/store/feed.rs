//! The global feed: every event in one total order, read below the position that is final.

use async_trait::async_trait;
use registry_domain::upcasters;

use super::projection::raw_event;
use super::{FeedReads, ReadError, SqlReadStore, EVENT_COLUMNS, LIVE};
use crate::feed::{FeedEntry, FeedPage, FeedQuery, MarkPage};
use registry_sql::{Backend, Statement};

const SELECT_MARKS: &str = "select e.aggregate_id, e.sequence, e.global_position, \
     exists (select 1 from projection_failures f \
         where f.projection = $1 and f.position = e.global_position) as parked \
     from events e where e.global_position > $2 and e.global_position <= $3 \
     order by e.global_position limit $4";

/// Where the next page starts: past the last event of a full page, else at the head (every
/// position up to it was examined).
fn next_after(last: Option<i64>, full: bool, head: i64, after: i64) -> i64 {
    match last {
        Some(last) if full => last,
        _ => head.max(after),
    }
}

/// The feed's rows that `query` asks for, never past `head`.
fn feed_select(query: &FeedQuery, head: i64, metadata: &str) -> Statement {
    let mut select = Statement::new(format!(
        "select {EVENT_COLUMNS} from events where global_position > "
    ));
    select
        .push_bind(query.after)
        .push(" and global_position <= ")
        .push_bind(head);
    if let Some(client_id) = &query.client_id {
        select.push(" and aggregate_id = ").push_bind(client_id);
    }
    if let Some(event_type) = &query.event_type {
        select.push(" and event_type = ").push_bind(event_type);
    }
    if let Some(actor) = &query.actor {
        select
            .push(&format!(" and {metadata} ->> 'actor' = "))
            .push_bind(actor);
    }
    if let Some(from) = query.from {
        select
            .push(&format!(" and {metadata} ->> 'recorded_at' >= "))
            .push_bind(FeedQuery::stored_time(from));
    }
    if let Some(to) = query.to {
        select
            .push(&format!(" and {metadata} ->> 'recorded_at' < "))
            .push_bind(FeedQuery::stored_time(to));
    }
    select
        .push(" order by global_position limit ")
        .push_bind(i64::from(query.limit));
    select
}

#[async_trait]
impl<DB: Backend> FeedReads for SqlReadStore<DB> {
    async fn head(&self) -> Result<i64, ReadError> {
        Ok(Statement::new(DB::DIALECT.head).one(&self.pool).await?)
    }

    async fn feed(&self, query: &FeedQuery) -> Result<FeedPage, ReadError> {
        let head = self.head().await?;
        let rows = feed_select(query, head, DB::DIALECT.metadata_json)
            .rows(&self.pool)
            .await?;
        let upcasters = upcasters();
        let mut events = Vec::with_capacity(rows.len());
        for row in &rows {
            events.push(match raw_event::<DB>(row)?.decode_or_describe(&upcasters) {
                Ok(event) => FeedEntry::Event(event),
                Err(unreadable) => FeedEntry::Unreadable(unreadable),
            });
        }
        let full = events.len() >= usize::try_from(query.limit).unwrap_or(usize::MAX);
        Ok(FeedPage {
            next_after: next_after(
                events.last().map(FeedEntry::position),
                full,
                head,
                query.after,
            ),
            events,
        })
    }

    async fn feed_marks(&self, after: i64, limit: u32) -> Result<MarkPage, ReadError> {
        let head = self.head().await?;
        let rows = Statement::new(SELECT_MARKS)
            .bind(LIVE.projection)
            .bind(after)
            .bind(head)
            .bind(i64::from(limit))
            .rows(&self.pool)
            .await?;
        let mut marks = Vec::with_capacity(rows.len());
        for row in rows {
            let sequence: i64 = DB::get(&row, "sequence")?;
            marks.push((
                DB::get::<String>(&row, "aggregate_id")?,
                u64::try_from(sequence).unwrap_or_default(),
                DB::get::<i64>(&row, "global_position")?,
                DB::get::<bool>(&row, "parked")?,
            ));
        }
        let full = marks.len() >= usize::try_from(limit).unwrap_or(usize::MAX);
        Ok(MarkPage {
            next_after: next_after(marks.last().map(|m| m.2), full, head, after),
            marks,
        })
    }
}
