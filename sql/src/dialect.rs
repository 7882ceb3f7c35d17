//! The statements that differ between PostgreSQL and SQLite, named once per database.

/// The statements that differ between backends.
pub struct Dialect {
    /// Opens a transaction that writes read models.
    pub begin: &'static str,
    /// Locks one client's rows for the transaction (`$1`: a key naming the client), if the
    /// `begin` statement does not already serialise writers.
    pub lock_client: Option<&'static str>,
    /// The last final feed position.
    pub head: &'static str,
    /// Opens a read-only transaction that sees one snapshot throughout.
    pub begin_snapshot: &'static str,
    /// Run first in such a transaction, before the snapshot is taken: PostgreSQL resolves
    /// table names with the latest catalog, not the transaction's snapshot, so a rebuild that
    /// swaps the tables between two statements would show a reader the new tables as of its
    /// old snapshot. Holding `ACCESS SHARE` from the start makes the swap wait for the reader.
    pub lock_snapshot_tables: Option<&'static str>,
    /// Run first in the transaction that swaps a rebuilt read model in, before it takes the
    /// feed barrier: wait for readers of the tables (within the lock timeout) while writers
    /// go on.
    pub lock_tables_for_swap: Option<&'static str>,
    /// The event metadata as JSON for `->>`, or NULL when a row's is not JSON (SQLite's JSON
    /// functions fail on malformed text; PostgreSQL's `jsonb` column cannot hold any).
    pub metadata_json: &'static str,
    /// Run first in a transaction that writes only read models: they are rebuilt from the
    /// events, so their commits need not wait for the disk.
    pub relaxed_commit: Option<&'static str>,
    /// Whether writers share one write lock with no queue for it (SQLite: a writer waiting in
    /// its busy handler polls, and a long job starting its next batch at once wins nearly
    /// every time). Long jobs then pause between their batches to let writers in (a rebuild
    /// as long as the batch took, at most 200 ms; the sealer a third of it), and the sealer
    /// looks for new events less often. PostgreSQL writers never wait for their batches.
    pub one_writer: bool,
    /// Run first in the transaction that swaps a rebuilt read model in: renaming a table
    /// waits for every reader of it, and readers queue behind the rename, so it must not wait
    /// long (it is retried instead).
    pub swap_lock_timeout: Option<&'static str>,
}

/// PostgreSQL: a transaction-scoped advisory lock per client id (other clients are projected
/// concurrently); the feed barrier of migration 0002; session advisory locks for
/// the projector, the sealer and the rebuild (see [`super::Lease`]).
pub const POSTGRES: Dialect = Dialect {
    begin: "BEGIN",
    lock_client: Some("select pg_advisory_xact_lock(hashtextextended($1, 0))"),
    head: "select events_safe_position()",
    begin_snapshot: "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
    lock_snapshot_tables: Some("lock table client_detail, client_list in access share mode"),
    lock_tables_for_swap: Some(
        "lock table client_detail, client_list, client_detail_next, client_list_next \
         in access exclusive mode",
    ),
    metadata_json: "metadata",
    // Safe because WAL is flushed in order: a read-model commit lost in a crash is followed
    // by nothing durable (no later event, no later checkpoint), and the projector redoes it.
    relaxed_commit: Some("set local synchronous_commit = off"),
    one_writer: false,
    swap_lock_timeout: Some("set local lock_timeout = '2s'"),
};

/// SQLite: `BEGIN IMMEDIATE` takes the database write lock up front (a deferred transaction
/// that reads and then writes fails with SQLITE_BUSY when another writer commits in between).
/// Writers are serialised, so every stored position is final. Processes sharing a file take
/// the projector lease as a file lock (see [`super::Lease`]).
pub const SQLITE: Dialect = Dialect {
    begin: "BEGIN IMMEDIATE",
    lock_client: None,
    head: "select coalesce(max(global_position), 0) from events",
    // In WAL mode a read transaction reads one snapshot from its first read on.
    begin_snapshot: "BEGIN",
    // SQLite's schema is part of the snapshot a read transaction sees.
    lock_snapshot_tables: None,
    // BEGIN IMMEDIATE already made the swap the only writer.
    lock_tables_for_swap: None,
    metadata_json: "(case when json_valid(metadata) then metadata end)",
    relaxed_commit: None,
    one_writer: true,
    swap_lock_timeout: None,
};
