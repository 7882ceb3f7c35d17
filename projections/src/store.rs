//! The read models and the global feed in SQL, on PostgreSQL and SQLite.
//!
//! Both backends run the same statements (sqlx accepts `$N` placeholders on SQLite too, and
//! both understand `->>` on JSON); they differ only in the few statements [`Dialect`] names:
//! how a client's rows are locked while its events are applied, how far the feed is final,
//! and how one projector is elected. The code is written once, in `read_store_impl!`, and
//! instantiated for each pool type: sqlx's generic bounds for "any database" are longer than
//! the code itself.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use registry_domain::upcasters;
use sqlx::types::Json;
use sqlx::{PgPool, QueryBuilder, Row, SqlitePool};

use crate::feed::{FeedPage, FeedQuery};
use tokio::sync::mpsc::Sender;

use crate::export::{Chunk, EXPORT_BATCH};
use crate::list::{ClientPage, Cursor, CursorValue, ListItem, ListQuery, SortKey};
use crate::search::IndexRow;
use crate::stored::{DecodeError, RawEvent, StoredEvent};
use crate::view::{ApplyError, ClientRecord, ClientView, ListRow};

/// The name of the client list and detail projection in `projection_checkpoints`.
pub const CLIENTS_PROJECTION: &str = "clients";

/// Why a read model could not be read or updated.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The database failed.
    #[error("read model database error")]
    Database(#[from] sqlx::Error),
    /// A stored event could not be decoded.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A stored event could not be applied.
    #[error(transparent)]
    Apply(#[from] ApplyError),
    /// The task running a database step panicked or was cancelled.
    #[error("a database task failed")]
    Task(#[from] tokio::task::JoinError),
}

/// What one projector batch did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// Events read from the feed (each applied once, or skipped when the rows already had it).
    pub events: usize,
    /// The checkpoint after the batch.
    pub checkpoint: i64,
    /// The records the batch changed.
    pub records: Vec<ClientRecord>,
}

/// How far the projection is behind the feed. Read without the feed barrier (two index
/// lookups), so asking never makes a writer wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProjectorStatus {
    /// The last feed position the projector applied.
    pub checkpoint: i64,
    /// The latest committed feed position (an event below it may still be in flight on
    /// PostgreSQL: this is not the safe position the feed stops at).
    pub head: i64,
    /// Positions between the checkpoint and the head (events, less rolled-back inserts).
    pub lag: u64,
}

/// The right to be the one projector: on PostgreSQL a session advisory lock on a connection
/// of its own (released when the process or connection dies, so another process takes over);
/// on SQLite (one process per file) always granted.
#[async_trait]
pub trait ProjectorLease: Send {
    /// Whether the lease is still held (its connection alive).
    async fn is_held(&mut self) -> bool;
}

/// The read side: applies events to the read models, and answers queries and the feed.
#[async_trait]
pub trait ReadStore: Send + Sync {
    /// Applies every event of `client_id` that its rows do not reflect yet, in one
    /// transaction, under a per-client lock, and returns the client's record as it now is.
    /// Idempotent: running it twice, or concurrently, applies each event once.
    ///
    /// # Errors
    /// [`ReadError`] when the database fails or a stored event cannot be decoded or applied.
    async fn catch_up(&self, client_id: &str) -> Result<Option<ClientRecord>, ReadError>;

    /// The read-model record of one client (deleted ones included); `None` when never
    /// registered.
    ///
    /// # Errors
    /// [`ReadError::Database`].
    async fn client_record(&self, client_id: &str) -> Result<Option<ClientRecord>, ReadError>;

    /// Every client's list row and version, and the feed position they reflect, from one
    /// snapshot (to load the search index).
    ///
    /// # Errors
    /// [`ReadError::Database`].
    async fn index_rows(&self) -> Result<(Vec<IndexRow>, i64), ReadError>;

    /// The detail of a live client; `None` when unknown or deleted.
    ///
    /// # Errors
    /// [`ReadError::Database`].
    async fn client(&self, client_id: &str) -> Result<Option<ClientView>, ReadError>;

    /// Every event of one client, in stream order.
    ///
    /// # Errors
    /// [`ReadError`] when the database fails or an event cannot be decoded.
    async fn client_events(&self, client_id: &str) -> Result<Vec<StoredEvent>, ReadError>;

    /// One page of the client list and the total count of matches.
    ///
    /// # Errors
    /// [`ReadError::Database`].
    async fn list(&self, query: &ListQuery) -> Result<ClientPage, ReadError>;

    /// Streams every client matching `query` (in its sort; its limit and cursor are ignored)
    /// to `sink` from one consistent snapshot: first [`Chunk::Start`] with the feed position
    /// the snapshot reflects and the row count, then the rows in batches. Stops early, without
    /// error, when the receiver goes away.
    ///
    /// # Errors
    /// [`ReadError::Database`].
    async fn export_list(&self, query: &ListQuery, sink: Sender<Chunk>) -> Result<(), ReadError>;

    /// The last feed position that is final: every event at or before it has committed (or
    /// never will), so a reader may pass it without ever missing one.
    ///
    /// # Errors
    /// [`ReadError::Database`].
    async fn head(&self) -> Result<i64, ReadError>;

    /// A page of the global feed, never past [`ReadStore::head`].
    ///
    /// # Errors
    /// [`ReadError`] when the database fails or an event cannot be decoded.
    async fn feed(&self, query: &FeedQuery) -> Result<FeedPage, ReadError>;

    /// Applies up to `limit` feed events after the projection's checkpoint, and moves the
    /// checkpoint, in one transaction.
    ///
    /// # Errors
    /// [`ReadError`]; nothing is applied then.
    async fn project_batch(&self, limit: usize) -> Result<Batch, ReadError>;

    /// Empties the read models and replays the whole feed into them, in one transaction
    /// (readers see the old rows until it commits). Returns the number of events replayed.
    ///
    /// # Errors
    /// [`ReadError`]; the old rows stay then.
    async fn rebuild(&self) -> Result<u64, ReadError>;

    /// The projector's checkpoint, the latest committed position and the lag between them,
    /// without taking the feed barrier.
    ///
    /// # Errors
    /// [`ReadError::Database`].
    async fn projector_status(&self) -> Result<ProjectorStatus, ReadError>;

    /// Tries to become the one projector.
    ///
    /// # Errors
    /// [`ReadError::Database`].
    async fn try_lease(&self) -> Result<Option<Box<dyn ProjectorLease>>, ReadError>;

    /// Returns when another process may have committed events, or after `timeout`.
    async fn wait_for_events(&self, timeout: Duration);
}

/// The statements that differ between backends.
struct Dialect {
    /// Opens a transaction that writes read models.
    begin: &'static str,
    /// Locks one client's rows for the transaction (`$1`: a key naming the client), if the
    /// `begin` statement does not already serialise writers.
    lock_client: Option<&'static str>,
    /// The last final feed position.
    head: &'static str,
    /// Takes the projector lease without waiting; answers true when taken.
    try_projector_lock: Option<&'static str>,
    /// Opens a read-only transaction that sees one snapshot throughout.
    begin_snapshot: &'static str,
    /// Run first in a transaction that writes only read models: they are rebuilt from the
    /// events, so their commits need not wait for the disk.
    relaxed_commit: Option<&'static str>,
}

/// PostgreSQL: a transaction-scoped advisory lock per client id (other clients are projected
/// concurrently); the feed barrier of migration 0002; a session advisory lock for the
/// projector.
const POSTGRES: Dialect = Dialect {
    begin: "BEGIN",
    lock_client: Some("select pg_advisory_xact_lock(hashtextextended($1, 0))"),
    head: "select events_safe_position()",
    // 0x52454750 = 'REGP': the projector.
    try_projector_lock: Some("select pg_try_advisory_lock(1380271952)"),
    begin_snapshot: "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
    // Safe because WAL is flushed in order: a read-model commit lost in a crash is followed
    // by nothing durable (no later event, no later checkpoint), and the projector redoes it.
    relaxed_commit: Some("set local synchronous_commit = off"),
};

/// SQLite: `BEGIN IMMEDIATE` takes the database write lock up front (a deferred transaction
/// that reads and then writes fails with SQLITE_BUSY when another writer commits in between).
/// Writers are serialised, so every stored position is final.
const SQLITE: Dialect = Dialect {
    begin: "BEGIN IMMEDIATE",
    lock_client: None,
    head: "select coalesce(max(global_position), 0) from events",
    try_projector_lock: None,
    // In WAL mode a read transaction reads one snapshot from its first read on.
    begin_snapshot: "BEGIN",
    relaxed_commit: None,
};

const EVENT_COLUMNS: &str = "aggregate_id, sequence, global_position, event_type, \
     event_version, payload, metadata, recorded_at";

const SELECT_RECORD: &str = "select document, deleted, last_position from client_detail \
     where client_id = $1";

const SELECT_CLIENT_EVENTS: &str = "select aggregate_id, sequence, global_position, event_type, \
     event_version, payload, metadata, recorded_at from events \
     where aggregate_type = 'Client' and aggregate_id = $1 and sequence > $2 \
     and sequence <= $3 order by sequence";

const SELECT_FEED_RANGE: &str = "select aggregate_id, sequence, global_position, event_type, \
     event_version, payload, metadata, recorded_at from events \
     where global_position > $1 and global_position <= $2 \
     order by global_position limit $3";

/// The conflict clause of the multi-row `client_detail` upsert: a row only moves forward.
const UPSERT_DETAIL_CONFLICT: &str = " on conflict (client_id) do update set \
     version = excluded.version, last_position = excluded.last_position, \
     deleted = excluded.deleted, document = excluded.document, \
     created_at = excluded.created_at, updated_at = excluded.updated_at \
     where client_detail.version < excluded.version";

/// The conflict clause of the multi-row `client_list` upsert.
const UPSERT_LIST_CONFLICT: &str = " on conflict (client_id) do update set \
     client_name = excluded.client_name, name_key = excluded.name_key, \
     client_uri = excluded.client_uri, enabled = excluded.enabled, \
     grant_types = excluded.grant_types, search_text = excluded.search_text, \
     created_at = excluded.created_at, updated_at = excluded.updated_at";

const SELECT_DETAIL: &str =
    "select document from client_detail where client_id = $1 and not deleted";

const SELECT_INDEX_ROWS: &str = "select d.client_id, d.version, d.deleted, l.client_name, \
     l.name_key, l.client_uri, l.enabled, l.grant_types, l.search_text, l.created_at, \
     l.updated_at from client_detail d left join client_list l on l.client_id = d.client_id";

const SELECT_CHECKPOINT: &str = "select position from projection_checkpoints where projection = $1";

/// The first event in `($1, $2]` that the client rows do not reflect.
const FIRST_UNPROJECTED: &str = "select min(e.global_position) from events e \
     left join client_detail d on d.client_id = e.aggregate_id \
     where e.global_position > $1 and e.global_position <= $2 \
     and (d.version is null or d.version < e.sequence)";

/// Moves a checkpoint forward, never back.
const ADVANCE_CHECKPOINT: &str = "insert into projection_checkpoints (projection, position) \
     values ($1, $2) on conflict (projection) do update set position = \
     case when excluded.position > projection_checkpoints.position \
     then excluded.position else projection_checkpoints.position end";

const RESET_CHECKPOINT: &str = "insert into projection_checkpoints (projection, position) \
     values ($1, 0) on conflict (projection) do update set position = 0";

/// The latest committed position, without the feed barrier (for status and metrics, which
/// must never make writers wait).
const LATEST_POSITION: &str = "select coalesce(max(global_position), 0) from events";

/// Appends the search and filter conditions of `query` (after a `WHERE true`).
macro_rules! push_filters {
    ($qb:expr, $query:expr) => {
        if let Some(pattern) = $query.like_pattern() {
            $qb.push(" and search_text like ")
                .push_bind(pattern)
                .push(" escape '\\'");
        }
        if let Some(enabled) = $query.enabled {
            $qb.push(" and enabled = ").push_bind(enabled);
        }
    };
}

/// Reads a `client_detail` row (`document`, `deleted`, `last_position`) into a record.
macro_rules! record_from_row {
    ($row:expr) => {
        (|| -> Result<ClientRecord, ReadError> {
            let Json(view): Json<ClientView> = $row.try_get("document")?;
            Ok(ClientRecord {
                view,
                deleted: $row.try_get("deleted")?,
                last_position: $row.try_get("last_position")?,
            })
        })()
    };
}

/// Decodes an `events` row.
macro_rules! stored_event {
    ($row:expr, $upcasters:expr) => {
        RawEvent {
            aggregate_id: $row.try_get("aggregate_id")?,
            sequence: $row.try_get("sequence")?,
            position: $row.try_get("global_position")?,
            event_type: $row.try_get("event_type")?,
            event_version: $row.try_get("event_version")?,
            payload: $row.try_get("payload")?,
            metadata: $row.try_get("metadata")?,
            recorded_at: $row.try_get("recorded_at")?,
        }
        .decode($upcasters)?
    };
}

macro_rules! read_store_impl {
    ($store:ident, $pool:ty, $db:ty, $dialect:expr, $waiter:ty) => {
        /// The read models on this backend.
        pub struct $store {
            pool: $pool,
            /// How to wait for other processes' commits (SQLite has none to wait for).
            #[allow(dead_code)]
            waiter: $waiter,
        }

        impl $store {
            /// Read models in the database behind `pool` (already migrated).
            pub fn new(pool: $pool) -> Self {
                Self {
                    pool,
                    waiter: Default::default(),
                }
            }

            /// Decodes `events` rows (upcast to the current shapes).
            fn decode_events(
                rows: Vec<<$db as sqlx::Database>::Row>,
            ) -> Result<Vec<StoredEvent>, ReadError> {
                let upcasters = upcasters();
                let mut events = Vec::with_capacity(rows.len());
                for row in rows {
                    events.push(stored_event!(row, &upcasters));
                }
                Ok(events)
            }

            /// Opens a transaction with `statement` in a task of its own, so that the caller
            /// going away (a client disconnect drops the request's future) cannot interrupt
            /// the `BEGIN` half-way: sqlx 0.8 then leaves the connection inside a transaction
            /// it does not know about (PostgreSQL: the depth is counted only once the server
            /// answered), and the pool hands that connection to the next caller. Once the
            /// `Transaction` exists, dropping it rolls back.
            async fn begin_detached(
                &self,
                statement: &'static str,
            ) -> Result<sqlx::Transaction<'static, $db>, ReadError> {
                let pool = self.pool.clone();
                Ok(tokio::spawn(async move { pool.begin_with(statement).await }).await??)
            }

            /// Opens a transaction that writes read models.
            async fn begin_projection(&self) -> Result<sqlx::Transaction<'static, $db>, ReadError> {
                let dialect: &Dialect = &$dialect;
                let mut tx = self.begin_detached(dialect.begin).await?;
                if let Some(relax) = dialect.relaxed_commit {
                    sqlx::query(relax).execute(&mut *tx).await?;
                }
                Ok(tx)
            }

            async fn load_record(
                tx: &mut sqlx::Transaction<'static, $db>,
                client_id: &str,
                lock_client: bool,
            ) -> Result<Option<ClientRecord>, ReadError> {
                let dialect: &Dialect = &$dialect;
                if let Some(lock) = dialect.lock_client.filter(|_| lock_client) {
                    sqlx::query(lock)
                        .bind(format!("client:{client_id}"))
                        .execute(&mut **tx)
                        .await?;
                }
                let Some(row) = sqlx::query(SELECT_RECORD)
                    .bind(client_id)
                    .fetch_optional(&mut **tx)
                    .await?
                else {
                    return Ok(None);
                };
                record_from_row!(row).map(Some)
            }

            /// Events `after < sequence <= up_to` of one client.
            async fn stream_range<'e, E>(
                executor: E,
                client_id: &str,
                after: u64,
                up_to: u64,
            ) -> Result<Vec<StoredEvent>, ReadError>
            where
                E: sqlx::Executor<'e, Database = $db>,
            {
                let rows = sqlx::query(SELECT_CLIENT_EVENTS)
                    .bind(client_id)
                    .bind(i64::try_from(after).unwrap_or(i64::MAX))
                    .bind(i64::try_from(up_to).unwrap_or(i64::MAX))
                    .fetch_all(executor)
                    .await?;
                Self::decode_events(rows)
            }

            /// Applies feed events (in feed order) to the rows of their clients, each client
            /// locked and loaded once, written once. An event the rows already reflect is
            /// skipped; a gap (rows behind the event) is filled from the client's stream.
            ///
            /// `lock_clients`: take each client's lock (the projector, concurrent with the
            /// inline path). A rebuild does not: it rewrites every row in one transaction,
            /// and a lock per client would exhaust PostgreSQL's lock table.
            async fn apply_feed_events(
                tx: &mut sqlx::Transaction<'static, $db>,
                events: Vec<StoredEvent>,
                lock_clients: bool,
            ) -> Result<Vec<ClientRecord>, ReadError> {
                let mut ids: Vec<String> = events.iter().map(|e| e.aggregate_id.clone()).collect();
                ids.sort_unstable();
                ids.dedup();
                let dialect: &Dialect = &$dialect;
                if let Some(lock) = dialect.lock_client.filter(|_| lock_clients) {
                    // In id order, so two transactions locking several clients cannot deadlock.
                    for id in &ids {
                        sqlx::query(lock)
                            .bind(format!("client:{id}"))
                            .execute(&mut **tx)
                            .await?;
                    }
                }
                let mut touched: BTreeMap<String, (Option<ClientRecord>, bool)> =
                    Self::load_records(tx, &ids).await?;
                for event in events {
                    let Some((record, dirty)) = touched.get_mut(&event.aggregate_id) else {
                        continue;
                    };
                    let version = record.as_ref().map_or(0, |r| r.view.version);
                    if event.sequence <= version {
                        continue;
                    }
                    let missing = if event.sequence > version + 1 {
                        Self::stream_range(
                            &mut **tx,
                            &event.aggregate_id,
                            version,
                            event.sequence - 1,
                        )
                        .await?
                    } else {
                        Vec::new()
                    };
                    for earlier in missing.iter().chain(std::iter::once(&event)) {
                        *record = Some(ClientRecord::apply(record.take(), earlier)?);
                    }
                    *dirty = true;
                }
                let changed: Vec<&ClientRecord> = touched
                    .values()
                    .filter_map(|(record, dirty)| record.as_ref().filter(|_| *dirty))
                    .collect();
                Self::save_records(tx, &changed).await?;
                Ok(changed.into_iter().cloned().collect())
            }

            /// The detail rows of `ids` (sorted, distinct), one statement per 500 ids.
            async fn load_records(
                tx: &mut sqlx::Transaction<'static, $db>,
                ids: &[String],
            ) -> Result<BTreeMap<String, (Option<ClientRecord>, bool)>, ReadError> {
                let mut records: BTreeMap<String, (Option<ClientRecord>, bool)> =
                    ids.iter().map(|id| (id.clone(), (None, false))).collect();
                for chunk in ids.chunks(500) {
                    let mut select = QueryBuilder::<$db>::new(
                        "select client_id, document, deleted, last_position from client_detail \
                         where client_id in (",
                    );
                    let mut list = select.separated(", ");
                    for id in chunk {
                        list.push_bind(id.clone());
                    }
                    select.push(")");
                    for row in select.build().fetch_all(&mut **tx).await? {
                        let id: String = row.try_get("client_id")?;
                        records.insert(id, (Some(record_from_row!(row)?), false));
                    }
                }
                Ok(records)
            }

            /// Writes detail and list rows of many clients, a few statements per 500 clients.
            async fn save_records(
                tx: &mut sqlx::Transaction<'static, $db>,
                records: &[&ClientRecord],
            ) -> Result<(), ReadError> {
                for chunk in records.chunks(500) {
                    let mut detail = QueryBuilder::<$db>::new(
                        "insert into client_detail \
                         (client_id, version, last_position, deleted, document, created_at, updated_at) ",
                    );
                    detail.push_values(chunk, |mut row, record| {
                        let view = &record.view;
                        row.push_bind(view.client_id.clone())
                            .push_bind(i64::try_from(view.version).unwrap_or(i64::MAX))
                            .push_bind(record.last_position)
                            .push_bind(record.deleted)
                            .push_bind(Json(view.clone()))
                            .push_bind(view.created_at)
                            .push_bind(view.updated_at);
                    });
                    detail.push(UPSERT_DETAIL_CONFLICT);
                    detail.build().execute(&mut **tx).await?;

                    let deleted: Vec<&String> = chunk
                        .iter()
                        .filter(|r| r.deleted)
                        .map(|r| &r.view.client_id)
                        .collect();
                    if !deleted.is_empty() {
                        let mut delete =
                            QueryBuilder::<$db>::new("delete from client_list where client_id in (");
                        let mut list = delete.separated(", ");
                        for id in deleted {
                            list.push_bind(id.clone());
                        }
                        delete.push(")");
                        delete.build().execute(&mut **tx).await?;
                    }
                    let live: Vec<ListRow> = chunk
                        .iter()
                        .filter(|r| !r.deleted)
                        .map(|r| ListRow::from(&r.view))
                        .collect();
                    if !live.is_empty() {
                        let mut list = QueryBuilder::<$db>::new(
                            "insert into client_list (client_id, client_name, name_key, client_uri, \
                             enabled, grant_types, search_text, created_at, updated_at) ",
                        );
                        list.push_values(live, |mut row, r| {
                            row.push_bind(r.client_id)
                                .push_bind(r.client_name)
                                .push_bind(r.name_key)
                                .push_bind(r.client_uri)
                                .push_bind(r.enabled)
                                .push_bind(Json(r.grant_types))
                                .push_bind(r.search_text)
                                .push_bind(r.created_at)
                                .push_bind(r.updated_at);
                        });
                        list.push(UPSERT_LIST_CONFLICT);
                        list.build().execute(&mut **tx).await?;
                    }
                }
                Ok(())
            }

            /// One page of the list (up to `limit + 1` rows, the extra one only says there
            /// is more).
            async fn page_rows<'e, E>(
                executor: E,
                query: &ListQuery,
            ) -> Result<Vec<ListItem>, ReadError>
            where
                E: sqlx::Executor<'e, Database = $db>,
            {
                let column = query.sort.key.column();
                let direction = query.sort.direction();
                let mut page = QueryBuilder::<$db>::new(
                    "select client_id, client_name, client_uri, enabled, grant_types, \
                     created_at, updated_at from client_list where true",
                );
                push_filters!(page, query);
                if let Some(cursor) = &query.after {
                    let operator = query.sort.after_operator();
                    match &cursor.value {
                        CursorValue::Text(text) => {
                            page.push(format!(" and ({column}, client_id) {operator} ("))
                                .push_bind(text.clone())
                                .push(", ")
                                .push_bind(cursor.client_id.clone())
                                .push(")");
                        }
                        CursorValue::Time(time) => {
                            page.push(format!(" and ({column}, client_id) {operator} ("))
                                .push_bind(*time)
                                .push(", ")
                                .push_bind(cursor.client_id.clone())
                                .push(")");
                        }
                        CursorValue::None => {
                            page.push(format!(" and client_id {operator} "))
                                .push_bind(cursor.client_id.clone());
                        }
                    }
                }
                if query.sort.key == SortKey::ClientId {
                    page.push(format!(" order by client_id {direction}"));
                } else {
                    page.push(format!(
                        " order by {column} {direction}, client_id {direction}"
                    ));
                }
                page.push(" limit ").push_bind(i64::from(query.limit) + 1);
                let rows = page.build().fetch_all(executor).await?;
                let mut items = Vec::with_capacity(rows.len());
                for row in rows {
                    let Json(grant_types): Json<Vec<String>> = row.try_get("grant_types")?;
                    items.push(ListItem {
                        client_id: row.try_get("client_id")?,
                        client_name: row.try_get("client_name")?,
                        enabled: row.try_get("enabled")?,
                        client_uri: row.try_get("client_uri")?,
                        grant_types,
                        created_at: row.try_get("created_at")?,
                        updated_at: row.try_get("updated_at")?,
                    });
                }
                Ok(items)
            }

            async fn count(
                tx: &mut sqlx::Transaction<'static, $db>,
                query: &ListQuery,
            ) -> Result<i64, ReadError> {
                let mut count =
                    QueryBuilder::<$db>::new("select count(*) from client_list where true");
                push_filters!(count, query);
                Ok(count.build_query_scalar().fetch_one(&mut **tx).await?)
            }

            /// The last feed position up to which the rows `tx` sees reflect every event: the
            /// checkpoint (read in the same snapshot as the rows), moved forward over the
            /// events after it that the rows already reflect (inline projections), up to
            /// `head`. `head` is the final position read *before* the snapshot began, so every
            /// event up to it is visible in the snapshot. Never `max(last_position)`: on
            /// PostgreSQL a row for position 101 can be written while 100 (another client) is
            /// committed and not projected yet.
            async fn complete_position(
                tx: &mut sqlx::Transaction<'static, $db>,
                head: i64,
            ) -> Result<i64, ReadError> {
                let checkpoint = Self::checkpoint(tx).await?;
                if checkpoint >= head {
                    return Ok(checkpoint);
                }
                let first_missing: Option<i64> = sqlx::query_scalar(FIRST_UNPROJECTED)
                    .bind(checkpoint)
                    .bind(head)
                    .fetch_one(&mut **tx)
                    .await?;
                Ok(first_missing.map_or(head, |missing| (missing - 1).max(checkpoint)))
            }

            async fn checkpoint(
                tx: &mut sqlx::Transaction<'static, $db>,
            ) -> Result<i64, ReadError> {
                let position: Option<i64> = sqlx::query_scalar(SELECT_CHECKPOINT)
                    .bind(CLIENTS_PROJECTION)
                    .fetch_optional(&mut **tx)
                    .await?;
                Ok(position.unwrap_or(0))
            }

            async fn feed_range(
                tx: &mut sqlx::Transaction<'static, $db>,
                after: i64,
                head: i64,
                limit: usize,
            ) -> Result<Vec<StoredEvent>, ReadError> {
                let rows = sqlx::query(SELECT_FEED_RANGE)
                    .bind(after)
                    .bind(head)
                    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                    .fetch_all(&mut **tx)
                    .await?;
                Self::decode_events(rows)
            }
        }

        #[async_trait]
        impl ReadStore for $store {
            #[tracing::instrument(skip_all, fields(client_id = %client_id))]
            async fn catch_up(&self, client_id: &str) -> Result<Option<ClientRecord>, ReadError> {
                let mut tx = self.begin_projection().await?;
                let record = Self::load_record(&mut tx, client_id, true).await?;
                let version = record.as_ref().map_or(0, |r| r.view.version);
                let events = Self::stream_range(&mut *tx, client_id, version, u64::MAX).await?;
                if events.is_empty() {
                    return Ok(record);
                }
                let mut record = record;
                for event in &events {
                    record = Some(ClientRecord::apply(record, event)?);
                }
                if let Some(record) = &record {
                    Self::save_records(&mut tx, &[record]).await?;
                }
                tx.commit().await?;
                Ok(record)
            }

            async fn client_record(&self, client_id: &str) -> Result<Option<ClientRecord>, ReadError> {
                if !storable(client_id) {
                    return Ok(None);
                }
                let row = sqlx::query(SELECT_RECORD)
                    .bind(client_id)
                    .fetch_optional(&self.pool)
                    .await?;
                let Some(row) = row else {
                    return Ok(None);
                };
                record_from_row!(row).map(Some)
            }

            #[tracing::instrument(skip_all)]
            async fn index_rows(&self) -> Result<(Vec<IndexRow>, i64), ReadError> {
                let dialect: &Dialect = &$dialect;
                let head = self.head().await?;
                let mut tx = self.begin_detached(dialect.begin_snapshot).await?;
                let position = Self::complete_position(&mut tx, head).await?;
                let rows = sqlx::query(SELECT_INDEX_ROWS).fetch_all(&mut *tx).await?;
                tx.commit().await?;
                let mut out = Vec::with_capacity(rows.len());
                for row in rows {
                    let client_id: String = row.try_get("client_id")?;
                    let version: i64 = row.try_get("version")?;
                    let deleted: bool = row.try_get("deleted")?;
                    let name: Option<String> = row.try_get("client_name")?;
                    let list = match (deleted, name) {
                        (false, Some(client_name)) => {
                            let Json(grant_types): Json<Vec<String>> = row.try_get("grant_types")?;
                            Some(ListRow {
                                client_id: client_id.clone(),
                                client_name,
                                name_key: row.try_get("name_key")?,
                                client_uri: row.try_get("client_uri")?,
                                enabled: row.try_get("enabled")?,
                                grant_types,
                                search_text: row.try_get("search_text")?,
                                created_at: row.try_get("created_at")?,
                                updated_at: row.try_get("updated_at")?,
                            })
                        }
                        _ => None,
                    };
                    out.push(IndexRow {
                        client_id,
                        version: u64::try_from(version).unwrap_or_default(),
                        row: list,
                    });
                }
                Ok((out, position))
            }

            #[tracing::instrument(skip_all, fields(client_id = %client_id))]
            async fn client(&self, client_id: &str) -> Result<Option<ClientView>, ReadError> {
                if !storable(client_id) {
                    return Ok(None);
                }
                let document: Option<Json<ClientView>> = sqlx::query_scalar(SELECT_DETAIL)
                    .bind(client_id)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(document.map(|Json(view)| view))
            }

            #[tracing::instrument(skip_all, fields(client_id = %client_id))]
            async fn client_events(&self, client_id: &str) -> Result<Vec<StoredEvent>, ReadError> {
                if !storable(client_id) {
                    return Ok(Vec::new());
                }
                Self::stream_range(&self.pool, client_id, 0, u64::MAX).await
            }

            #[tracing::instrument(skip_all)]
            async fn list(&self, query: &ListQuery) -> Result<ClientPage, ReadError> {
                let mut count =
                    QueryBuilder::<$db>::new("select count(*) from client_list where true");
                push_filters!(count, query);
                let total: i64 = count.build_query_scalar().fetch_one(&self.pool).await?;

                let items = Self::page_rows(&self.pool, query).await?;
                Ok(ClientPage::from_rows(
                    items,
                    u64::try_from(total).unwrap_or_default(),
                    query,
                ))
            }

            #[tracing::instrument(skip_all)]
            async fn export_list(
                &self,
                query: &ListQuery,
                sink: Sender<Chunk>,
            ) -> Result<(), ReadError> {
                let dialect: &Dialect = &$dialect;
                let head = self.head().await?;
                let mut tx = self.begin_detached(dialect.begin_snapshot).await?;
                let position = Self::complete_position(&mut tx, head).await?;
                let total = Self::count(&mut tx, query).await?;
                let start = Chunk::Start {
                    position,
                    total: u64::try_from(total).unwrap_or_default(),
                };
                if sink.send(start).await.is_err() {
                    return Ok(());
                }
                let mut page = ListQuery {
                    limit: EXPORT_BATCH,
                    after: None,
                    ..query.clone()
                };
                loop {
                    let mut items = Self::page_rows(&mut *tx, &page).await?;
                    let more = items.len() > usize::try_from(EXPORT_BATCH).unwrap_or(usize::MAX);
                    items.truncate(usize::try_from(EXPORT_BATCH).unwrap_or(usize::MAX));
                    page.after = items.last().map(|last| Cursor::after(last, page.sort));
                    if sink.send(Chunk::Rows(items)).await.is_err() || !more {
                        break;
                    }
                }
                tx.commit().await?;
                Ok(())
            }

            async fn head(&self) -> Result<i64, ReadError> {
                let dialect: &Dialect = &$dialect;
                Ok(sqlx::query_scalar(dialect.head)
                    .fetch_one(&self.pool)
                    .await?)
            }

            #[tracing::instrument(skip_all, fields(after = query.after))]
            async fn feed(&self, query: &FeedQuery) -> Result<FeedPage, ReadError> {
                let head = self.head().await?;
                let mut select = QueryBuilder::<$db>::new(format!(
                    "select {EVENT_COLUMNS} from events where global_position > "
                ));
                select
                    .push_bind(query.after)
                    .push(" and global_position <= ")
                    .push_bind(head);
                if let Some(client_id) = &query.client_id {
                    select
                        .push(" and aggregate_id = ")
                        .push_bind(client_id.clone());
                }
                if let Some(event_type) = &query.event_type {
                    select
                        .push(" and event_type = ")
                        .push_bind(event_type.clone());
                }
                if let Some(actor) = &query.actor {
                    select
                        .push(" and metadata ->> 'actor' = ")
                        .push_bind(actor.clone());
                }
                if let Some(from) = query.from {
                    select
                        .push(" and metadata ->> 'recorded_at' >= ")
                        .push_bind(FeedQuery::stored_time(from));
                }
                if let Some(to) = query.to {
                    select
                        .push(" and metadata ->> 'recorded_at' < ")
                        .push_bind(FeedQuery::stored_time(to));
                }
                select
                    .push(" order by global_position limit ")
                    .push_bind(i64::from(query.limit));
                let rows = select.build().fetch_all(&self.pool).await?;
                let events = Self::decode_events(rows)?;
                let full = events.len() >= usize::try_from(query.limit).unwrap_or(usize::MAX);
                let next_after = match events.last() {
                    Some(last) if full => last.position,
                    _ => head.max(query.after),
                };
                Ok(FeedPage { events, next_after })
            }

            #[tracing::instrument(skip_all)]
            async fn project_batch(&self, limit: usize) -> Result<Batch, ReadError> {
                // Read outside the batch's transaction: on PostgreSQL the barrier holds an
                // exclusive lock until the end of the transaction that takes it.
                let head = self.head().await?;
                let mut tx = self.begin_projection().await?;
                let checkpoint = Self::checkpoint(&mut tx).await?;
                if checkpoint >= head {
                    return Ok(Batch {
                        events: 0,
                        checkpoint,
                        records: Vec::new(),
                    });
                }
                let events = Self::feed_range(&mut tx, checkpoint, head, limit).await?;
                let count = events.len();
                // Fewer than asked: everything up to the head is applied (positions between
                // are rolled-back transactions).
                let reached = match events.last() {
                    Some(last) if count >= limit => last.position,
                    _ => head,
                };
                let records = Self::apply_feed_events(&mut tx, events, true).await?;
                sqlx::query(ADVANCE_CHECKPOINT)
                    .bind(CLIENTS_PROJECTION)
                    .bind(reached)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(Batch {
                    events: count,
                    checkpoint: reached,
                    records,
                })
            }

            #[tracing::instrument(skip_all)]
            async fn rebuild(&self) -> Result<u64, ReadError> {
                const BATCH: usize = 2000;
                let head = self.head().await?;
                let mut tx = self.begin_projection().await?;
                sqlx::query("delete from client_list")
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("delete from client_detail")
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(RESET_CHECKPOINT)
                    .bind(CLIENTS_PROJECTION)
                    .execute(&mut *tx)
                    .await?;
                let mut position = 0;
                let mut replayed = 0u64;
                loop {
                    let events = Self::feed_range(&mut tx, position, head, BATCH).await?;
                    let Some(last) = events.last() else {
                        break;
                    };
                    position = last.position;
                    replayed += u64::try_from(events.len()).unwrap_or_default();
                    Self::apply_feed_events(&mut tx, events, false).await?;
                }
                sqlx::query(ADVANCE_CHECKPOINT)
                    .bind(CLIENTS_PROJECTION)
                    .bind(head)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(replayed)
            }

            async fn projector_status(&self) -> Result<ProjectorStatus, ReadError> {
                let head: i64 = sqlx::query_scalar(LATEST_POSITION)
                    .fetch_one(&self.pool)
                    .await?;
                let checkpoint: Option<i64> = sqlx::query_scalar(SELECT_CHECKPOINT)
                    .bind(CLIENTS_PROJECTION)
                    .fetch_optional(&self.pool)
                    .await?;
                let checkpoint = checkpoint.unwrap_or(0);
                Ok(ProjectorStatus {
                    checkpoint,
                    head,
                    lag: u64::try_from(head - checkpoint).unwrap_or_default(),
                })
            }

            async fn try_lease(&self) -> Result<Option<Box<dyn ProjectorLease>>, ReadError> {
                let dialect: &Dialect = &$dialect;
                let Some(lock) = dialect.try_projector_lock else {
                    return Ok(Some(Box::new(AlwaysHeld)));
                };
                // A connection of its own, out of the pool: the lock lives as long as it.
                let mut connection = self.pool.acquire().await?.detach();
                let taken: bool = sqlx::query_scalar(lock).fetch_one(&mut connection).await?;
                Ok(taken.then(|| {
                    Box::new(ConnectionLease::<$db> { connection }) as Box<dyn ProjectorLease>
                }))
            }

            async fn wait_for_events(&self, timeout: Duration) {
                self.wait(timeout).await;
            }
        }
    };
}

/// Whether `client_id` can be stored at all: PostgreSQL text cannot hold U+0000 (a query
/// binding it fails), and no registered id contains it, so such an id names no client and is
/// never sent to the database.
fn storable(client_id: &str) -> bool {
    !client_id.contains('\0')
}

struct AlwaysHeld;

#[async_trait]
impl ProjectorLease for AlwaysHeld {
    async fn is_held(&mut self) -> bool {
        true
    }
}

struct ConnectionLease<DB: sqlx::Database> {
    connection: DB::Connection,
}

#[async_trait]
impl<DB: sqlx::Database> ProjectorLease for ConnectionLease<DB> {
    async fn is_held(&mut self) -> bool {
        sqlx::Connection::ping(&mut self.connection).await.is_ok()
    }
}

/// Listens for `NOTIFY registry_events` (migration 0002), connecting on first use.
#[derive(Default)]
pub struct PgWaiter(tokio::sync::Mutex<Option<sqlx::postgres::PgListener>>);

read_store_impl!(
    PostgresReadStore,
    PgPool,
    sqlx::Postgres,
    POSTGRES,
    PgWaiter
);
read_store_impl!(SqliteReadStore, SqlitePool, sqlx::Sqlite, SQLITE, ());

impl PostgresReadStore {
    async fn wait(&self, timeout: Duration) {
        let mut guard = self.waiter.0.lock().await;
        if guard.is_none() {
            match sqlx::postgres::PgListener::connect_with(&self.pool).await {
                Ok(mut listener) => {
                    if listener.listen("registry_events").await.is_ok() {
                        *guard = Some(listener);
                    }
                }
                Err(error) => tracing::warn!(%error, "cannot listen for new events"),
            }
        }
        match guard.as_mut() {
            Some(listener) => match tokio::time::timeout(timeout, listener.try_recv()).await {
                Ok(Ok(Some(_))) | Err(_) => {}
                // Connection lost: reconnect next time.
                Ok(Ok(None) | Err(_)) => *guard = None,
            },
            None => tokio::time::sleep(timeout).await,
        }
    }
}

impl SqliteReadStore {
    /// One process per SQLite file: its own commits wake the projector in-process; this only
    /// paces the timer.
    async fn wait(&self, timeout: Duration) {
        tokio::time::sleep(timeout).await;
    }
}
