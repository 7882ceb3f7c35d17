//! The read models and the global feed in SQL, on PostgreSQL and SQLite.
//!
//! One concern per module, each written once for both backends: [`SqlReadStore`] is generic
//! over the [`Backend`] it runs on (`registry_sql`), which names what differs.
//! - [`projection`]: applying events to the client rows, inline after a command and in
//!   projector batches, parking the events that cannot be applied;
//! - [`rebuild`]: replaying the whole feed into shadow tables while the live ones keep
//!   serving, then swapping them in;
//! - [`detail`]: one client (its detail, record and events), several by id;
//! - [`list`]: a page of the list, the search index's load, the position a snapshot reflects;
//! - [`exports`]: whole filtered lists from one snapshot;
//! - [`feed`]: the global feed and how far it is final;
//! - [`parked`]: the projector's status and the events it parked.
//!
//! Both backends run the same statements (sqlx accepts `$N` placeholders on SQLite too, and
//! both understand `->>` on JSON); the few that differ are named in one
//! [`registry_sql::Dialect`] value per backend.

mod detail;
mod exports;
mod feed;
mod list;
mod parked;
mod projection;
mod rebuild;

use std::time::Duration;

use async_trait::async_trait;
use sqlx::{Pool, Postgres, Sqlite};
use tokio::sync::mpsc::Sender;

use crate::feed::{FeedPage, FeedQuery, MarkPage};
use crate::list::{ClientPage, ListQuery};
use crate::snapshot::Chunk;
use crate::snapshot::IndexSnapshot;
use crate::stored::{DecodeError, StoredEvent};
use crate::view::{ApplyError, ClientRecord, ClientView};
use registry_sql::{Backend, Engine, Statement};

pub use registry_sql::ProjectorLease;

/// The name of the client list and detail projection (its checkpoint and parked events).
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
    /// Another rebuild of the read models is running (or the lock of this one was lost).
    #[error("another rebuild of the read models is running")]
    RebuildRunning,
    /// Readers kept the live tables busy through every attempt to swap the rebuilt ones in.
    #[error("the rebuilt read model could not be swapped in: the live tables stayed busy")]
    SwapTimedOut,
}

/// What one projector batch did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// Events read from the feed (each applied once, skipped when the rows already had it,
    /// or parked).
    pub events: usize,
    /// Events of this batch parked because they cannot be applied.
    pub parked: usize,
    /// The checkpoint after the batch.
    pub checkpoint: i64,
    /// The records the batch changed.
    pub records: Vec<ClientRecord>,
}

/// How far the projection is behind the feed. Read without the feed barrier (index lookups),
/// so asking never makes a writer wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProjectorStatus {
    /// The last feed position the projector applied.
    pub checkpoint: i64,
    /// The latest committed feed position (an event below it may still be in flight on
    /// PostgreSQL: this is not the safe position the feed stops at).
    pub head: i64,
    /// Positions between the checkpoint and the head (events, less rolled-back inserts).
    pub lag: u64,
    /// Events parked because they cannot be applied.
    pub parked: u64,
}

/// An event the projection could not apply, set aside so that the rest goes on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParkedEvent {
    /// Its feed position.
    pub position: i64,
    /// Its client.
    pub client_id: String,
    /// Its sequence in the client's stream.
    pub sequence: i64,
    /// The type the row names.
    pub event_type: String,
    /// Why it could not be applied.
    pub error: String,
    /// How many times it was tried.
    pub attempts: i64,
}

/// What retrying the parked events did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RetryReport {
    /// Parked events whose client now projects past them (no longer parked).
    pub resolved: u64,
    /// Parked events that still cannot be applied.
    pub still_parked: u64,
}

/// One client: its detail, its record, its events; several clients by id.
#[async_trait]
pub trait ClientReads: Send + Sync {
    /// The detail of a live client; `None` when unknown or deleted.
    ///
    /// # Errors
    /// [`ReadError::Database`].
    async fn client(&self, client_id: &str) -> Result<Option<ClientView>, ReadError>;

    /// The read-model record of one client (deleted ones included); `None` when never
    /// registered.
    ///
    /// # Errors
    /// [`ReadError::Database`].
    async fn client_record(&self, client_id: &str) -> Result<Option<ClientRecord>, ReadError>;

    /// The clients among `ids` that were ever registered, deleted ones included (any order;
    /// unknown ids are left out), read in batches.
    ///
    /// # Errors
    /// [`ReadError::Database`].
    async fn clients(&self, ids: &[String]) -> Result<Vec<ClientRecord>, ReadError>;

    /// Every event of one client, in stream order.
    ///
    /// # Errors
    /// [`ReadError`] when the database fails or an event cannot be decoded.
    async fn client_events(&self, client_id: &str) -> Result<Vec<StoredEvent>, ReadError>;
}

/// The client list: a page of it, and every row for the search index.
#[async_trait]
pub trait ListReads: Send + Sync {
    /// One page of the client list and the total count of matches.
    ///
    /// # Errors
    /// [`ReadError::Database`].
    async fn list(&self, query: &ListQuery) -> Result<ClientPage, ReadError>;

    /// Every client's list row and version, the feed position up to which they reflect every
    /// event, and the read model's generation, from one snapshot (to load the search index).
    ///
    /// # Errors
    /// [`ReadError::Database`].
    async fn index_rows(&self) -> Result<IndexSnapshot, ReadError>;

    /// The read model's generation: moves when a rebuild swaps new tables in or parked events
    /// are projected, which the feed does not show (a search index then loads itself again).
    ///
    /// # Errors
    /// [`ReadError::Database`].
    async fn generation(&self) -> Result<i64, ReadError>;
}

/// Whole filtered lists from one snapshot, for the exports.
#[async_trait]
pub trait ExportReads: Send + Sync {
    /// Streams every client matching `query` (in its sort; its limit and cursor are ignored)
    /// to `sink` from one consistent snapshot: first [`Chunk::Start`] with the feed position
    /// up to which the snapshot reflects every event and the row count, then the rows in
    /// batches. Stops early, without error, when the receiver goes away.
    ///
    /// # Errors
    /// [`ReadError::Database`].
    async fn export_list(&self, query: &ListQuery, sink: Sender<Chunk>) -> Result<(), ReadError>;

    /// Like [`Self::export_list`], with whole clients (every setting) instead of list rows:
    /// the clients-as-code export.
    ///
    /// # Errors
    /// [`ReadError::Database`].
    async fn export_views(
        &self,
        query: &ListQuery,
        sink: Sender<crate::snapshot::ViewChunk>,
    ) -> Result<(), ReadError>;
}

/// The global feed, never past the position that is final.
#[async_trait]
pub trait FeedReads: Send + Sync {
    /// The last feed position that is final: every event at or before it has committed (or
    /// never will), so a reader may pass it without ever missing one. On PostgreSQL this
    /// takes the feed barrier for an instant: writers wait for it.
    ///
    /// # Errors
    /// [`ReadError::Database`].
    async fn head(&self) -> Result<i64, ReadError>;

    /// A page of the global feed, never past [`FeedReads::head`]. A row that cannot be
    /// decoded is an [`crate::feed::FeedEntry::Unreadable`] entry, not an error.
    ///
    /// # Errors
    /// [`ReadError::Database`].
    async fn feed(&self, query: &FeedQuery) -> Result<FeedPage, ReadError>;

    /// Where the events after `after` sit (client, sequence, position, parked), up to
    /// `limit` of them, never past [`FeedReads::head`]: what a search index follows, without
    /// reading a payload.
    ///
    /// # Errors
    /// [`ReadError::Database`].
    async fn feed_marks(&self, after: i64, limit: u32) -> Result<MarkPage, ReadError>;
}

/// Applying events to the read models: inline after a command, and by the one projector.
#[async_trait]
pub trait Projection: Send + Sync {
    /// Applies every event of `client_id` that its rows do not reflect yet, in one
    /// transaction, under a per-client lock, and returns the client's record as it now is.
    /// Idempotent: running it twice, or concurrently, applies each event once.
    ///
    /// # Errors
    /// [`ReadError`] when the database fails or a stored event cannot be decoded or applied
    /// (the projector then parks it).
    async fn catch_up(&self, client_id: &str) -> Result<Option<ClientRecord>, ReadError>;

    /// Applies up to `limit` feed events after the projection's checkpoint, and moves the
    /// checkpoint, in one transaction. An event that cannot be decoded or applied is parked
    /// (with every later event of its client), and the batch goes on.
    ///
    /// # Errors
    /// [`ReadError::Database`]; nothing is applied then.
    async fn project_batch(&self, limit: usize) -> Result<Batch, ReadError>;

    /// Tries to become the one projector.
    ///
    /// # Errors
    /// [`ReadError::Database`].
    async fn try_lease(&self) -> Result<Option<Box<dyn ProjectorLease>>, ReadError>;

    /// Returns when another process may have committed events, or after `timeout`.
    async fn wait_for_events(&self, timeout: Duration);
}

/// Replaying the whole feed into new read models while the old ones serve.
#[async_trait]
pub trait Rebuild: Send + Sync {
    /// Replays the whole feed into shadow tables, batch by batch, while the live tables keep
    /// serving reads and inline projections, then swaps them in (a short transaction). Returns
    /// the number of events replayed.
    ///
    /// # Errors
    /// [`ReadError`]; the live tables stay as they were then.
    async fn rebuild(&self) -> Result<u64, ReadError>;
}

/// The projector's progress and the events it could not apply.
#[async_trait]
pub trait ParkedEvents: Send + Sync {
    /// The projector's checkpoint, the latest committed position, the lag between them and the
    /// number of parked events, without taking the feed barrier.
    ///
    /// # Errors
    /// [`ReadError::Database`].
    async fn projector_status(&self) -> Result<ProjectorStatus, ReadError>;

    /// The parked events, in feed order.
    ///
    /// # Errors
    /// [`ReadError::Database`].
    async fn parked(&self) -> Result<Vec<ParkedEvent>, ReadError>;

    /// Tries every parked event again (with the upcasters of this build): a client whose rows
    /// now reach past its parked events is no longer parked.
    ///
    /// # Errors
    /// [`ReadError::Database`].
    async fn retry_parked(&self) -> Result<RetryReport, ReadError>;
}

/// The read side: applies events to the read models, and answers queries and the feed.
/// Each concern is a trait of its own, implemented in its module of [`SqlReadStore`].
pub trait ReadStore:
    ClientReads + ListReads + ExportReads + FeedReads + Projection + Rebuild + ParkedEvents
{
}

impl<
        T: ClientReads + ListReads + ExportReads + FeedReads + Projection + Rebuild + ParkedEvents,
    > ReadStore for T
{
}

/// The tables one projection writes: the live ones, or the shadow ones a rebuild fills.
#[derive(Debug, Clone, Copy)]
struct Tables {
    detail: &'static str,
    list: &'static str,
    /// The projection's name for its checkpoint and parked events.
    projection: &'static str,
}

/// The read model readers see.
const LIVE: Tables = Tables {
    detail: "client_detail",
    list: "client_list",
    projection: CLIENTS_PROJECTION,
};

/// The read model a rebuild fills before swapping it in.
const NEXT: Tables = Tables {
    detail: "client_detail_next",
    list: "client_list_next",
    projection: "clients_next",
};

/// The columns of an `events` row as [`crate::stored::RawEvent`] reads them: payload and
/// metadata as text, parsed when decoded (a row that is not JSON is then an event that
/// cannot be decoded, and is parked, not a database error that stops the projector).
const EVENT_COLUMNS: &str = "aggregate_id, sequence, global_position, event_type, \
     event_version, cast(payload as text) as payload, cast(metadata as text) as metadata, \
     recorded_at";

const SELECT_CHECKPOINT: &str = "select position from projection_checkpoints where projection = $1";

/// Moves the checkpoint of `projection` forward to `position`, never back.
fn advance_checkpoint(projection: &str, position: i64) -> Statement {
    Statement::new(
        "insert into projection_checkpoints (projection, position) \
         values ($1, $2) on conflict (projection) do update set position = \
         case when excluded.position > projection_checkpoints.position \
         then excluded.position else projection_checkpoints.position end",
    )
    .bind(projection)
    .bind(position)
}

/// The row of `projection_checkpoints` counting the read model's generations: a rebuild's
/// swap (and a retry that projected parked events) moves it, and each process's search
/// index loads itself again when it sees it move.
const GENERATION: &str = "clients_generation";

/// Moves the generation on.
const NEXT_GENERATION: &str = "insert into projection_checkpoints (projection, position) \
     values ($1, 1) on conflict (projection) do update set \
     position = projection_checkpoints.position + 1";

/// Whether `client_id` can be stored at all: PostgreSQL text cannot hold U+0000 (a query
/// binding it fails), and no registered id contains it, so such an id names no client and is
/// never sent to the database.
fn storable(client_id: &str) -> bool {
    !client_id.contains('\0')
}

/// The read models in SQL, on the backend `DB`.
pub struct SqlReadStore<DB: Engine> {
    pool: Pool<DB>,
    /// Waits for other processes' commits.
    waiter: DB::Waiter,
}

/// The read models on PostgreSQL.
pub type PostgresReadStore = SqlReadStore<Postgres>;

/// The read models on SQLite.
pub type SqliteReadStore = SqlReadStore<Sqlite>;

impl<DB: Backend> SqlReadStore<DB> {
    /// Read models in the database behind `pool` (already migrated).
    pub fn new(pool: Pool<DB>) -> Self {
        Self {
            pool,
            waiter: DB::Waiter::default(),
        }
    }
}
