//! Rebuilding the client read model from the whole feed while it keeps serving.
//!
//! The feed is replayed into shadow tables (`client_detail_next`, `client_list_next`), one
//! short transaction per batch, while readers, inline projections and the projector keep
//! using the live tables. Once the shadow is within a batch of the head, one short
//! transaction applies the rest and swaps the tables by renaming them (the old live tables
//! become the next shadow), with the checkpoint and the parked events of the new tables. On
//! PostgreSQL that transaction holds the feed barrier, so no event commits between the last
//! one applied and the swap; on SQLite it is a `BEGIN IMMEDIATE`. Writers wait only for it.
//!
//! Renaming is safe for prepared statements: PostgreSQL re-analyses a cached statement whose
//! table changed (resolving the name again), SQLite re-prepares on `SQLITE_SCHEMA`.

use std::time::Duration;

use super::{
    Dialect, ReadError, Tables, ADVANCE_CHECKPOINT, GENERATION, LIVE, NEXT, NEXT_GENERATION,
    POSTGRES, SQLITE,
};

/// Events per replay transaction.
const BATCH: usize = 2000;

/// The shadow is swapped in once it is this close to the head: the rest is applied inside the
/// swap's transaction, which writers wait for.
const SWAP_WITHIN: i64 = 2000;

/// Longest pause between two batches where the dialect makes the rebuild yield to writers.
const MAX_YIELD: Duration = Duration::from_millis(200);

/// Swap attempts before giving up (each waits at most the swap's lock timeout for readers of
/// the live tables, then catches up again).
const SWAP_ATTEMPTS: u32 = 10;

const SET_CHECKPOINT: &str = "insert into projection_checkpoints (projection, position) \
     values ($1, $2) on conflict (projection) do update set position = excluded.position";

/// Whether `error` is a lock wait that ran out (PostgreSQL 55P03) or SQLite staying busy: the
/// swap is tried again.
fn lock_wait_ran_out(error: &ReadError) -> bool {
    let ReadError::Database(sqlx::Error::Database(database)) = error else {
        return false;
    };
    database
        .code()
        .is_some_and(|code| code == "55P03" || code == "5" || code == "517")
}

/// Renames that swap a live table with its shadow.
fn swap_statements(live: Tables, next: Tables) -> Vec<String> {
    [(live.detail, next.detail), (live.list, next.list)]
        .iter()
        .flat_map(|(live, next)| {
            [
                format!("alter table {live} rename to {live}_swapping"),
                format!("alter table {next} rename to {live}"),
                format!("alter table {live}_swapping rename to {next}"),
            ]
        })
        .collect()
}

macro_rules! rebuild_methods {
    ($store:ty, $db:ty, $dialect:expr) => {
        impl $store {
            /// See [`super::ReadStore::rebuild`].
            pub(super) async fn rebuild_and_swap(&self) -> Result<u64, ReadError> {
                let dialect: &Dialect = &$dialect;
                // One rebuild at a time, whichever process runs it; released when dropped at
                // the end, or when the process dies.
                let mut lock = self.take_rebuild_lock().await?;
                self.empty_shadow().await?;
                let mut position = 0;
                let mut replayed = 0;
                for attempt in 1..=SWAP_ATTEMPTS {
                    loop {
                        let head = self.safe_head().await?;
                        if head - position <= SWAP_WITHIN {
                            break;
                        }
                        while position < head {
                            let started = tokio::time::Instant::now();
                            let (reached, count) = self.replay_batch(position, head).await?;
                            position = reached;
                            replayed += count;
                            if dialect.rebuild_yields {
                                tokio::time::sleep(started.elapsed().min(MAX_YIELD)).await;
                            }
                        }
                    }
                    // A lock lost on the way (its connection cut) means another rebuild may
                    // have started and emptied the shadow: never swap that in.
                    if !lock.still_held().await {
                        return Err(ReadError::RebuildRunning);
                    }
                    match self.swap_in(position).await {
                        Ok(count) => {
                            tracing::info!(events = replayed + count, "read model rebuilt");
                            return Ok(replayed + count);
                        }
                        Err(error) if lock_wait_ran_out(&error) && attempt < SWAP_ATTEMPTS => {
                            tracing::warn!(attempt, "readers held the read model; swapping again");
                            tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt)))
                                .await;
                        }
                        Err(error) => return Err(error),
                    }
                }
                Err(ReadError::SwapTimedOut)
            }

            /// Empties the shadow tables, their parked events and their checkpoint.
            async fn empty_shadow(&self) -> Result<(), ReadError> {
                let mut tx = self.begin_projection().await?;
                for table in [NEXT.detail, NEXT.list] {
                    sqlx::query(&format!("delete from {table}"))
                        .execute(&mut *tx)
                        .await?;
                }
                sqlx::query("delete from projection_failures where projection = $1")
                    .bind(NEXT.projection)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(SET_CHECKPOINT)
                    .bind(NEXT.projection)
                    .bind(0_i64)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            /// Applies the feed after `position` (up to `head`, at most a batch) to the shadow
            /// tables in a transaction of its own. Returns the position reached and the
            /// number of events read.
            async fn replay_batch(
                &self,
                position: i64,
                head: i64,
            ) -> Result<(i64, u64), ReadError> {
                let mut tx = self.begin_projection().await?;
                let rows = Self::feed_rows(&mut tx, position, head, BATCH).await?;
                let count = rows.len();
                let reached = match rows.last() {
                    Some(last) if count >= BATCH => last.position,
                    _ => head,
                };
                Self::apply_feed_rows(&mut tx, NEXT, rows, false).await?;
                sqlx::query(ADVANCE_CHECKPOINT)
                    .bind(NEXT.projection)
                    .bind(reached)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok((reached, u64::try_from(count).unwrap_or_default()))
            }

            /// In one transaction that no event commits beside: applies the rest of the feed
            /// to the shadow tables and swaps them with the live ones. Returns the number of
            /// events applied in it.
            async fn swap_in(&self, mut position: i64) -> Result<u64, ReadError> {
                let dialect: &Dialect = &$dialect;
                let mut tx = self.begin_projection().await?;
                if let Some(timeout) = dialect.swap_lock_timeout {
                    sqlx::query(timeout).execute(&mut *tx).await?;
                }
                // First the tables (waiting for their readers while writers go on), then the
                // feed barrier, held until commit: no event commits between the last one
                // applied here and the swap. SQLite: this transaction is the only writer.
                if let Some(lock) = dialect.lock_tables_for_swap {
                    sqlx::query(lock).execute(&mut *tx).await?;
                }
                let head: i64 = sqlx::query_scalar(dialect.head).fetch_one(&mut *tx).await?;
                let mut applied = 0;
                while position < head {
                    let rows = Self::feed_rows(&mut tx, position, head, BATCH).await?;
                    let count = rows.len();
                    position = match rows.last() {
                        Some(last) if count >= BATCH => last.position,
                        _ => head,
                    };
                    applied += u64::try_from(count).unwrap_or_default();
                    Self::apply_feed_rows(&mut tx, NEXT, rows, false).await?;
                }
                for statement in swap_statements(LIVE, NEXT) {
                    sqlx::query(&statement).execute(&mut *tx).await?;
                }
                sqlx::query("delete from projection_failures where projection = $1")
                    .bind(LIVE.projection)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("update projection_failures set projection = $1 where projection = $2")
                    .bind(LIVE.projection)
                    .bind(NEXT.projection)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(SET_CHECKPOINT)
                    .bind(LIVE.projection)
                    .bind(head)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("delete from projection_checkpoints where projection = $1")
                    .bind(NEXT.projection)
                    .execute(&mut *tx)
                    .await?;
                // Tells every process's search index to load the new tables.
                sqlx::query(NEXT_GENERATION)
                    .bind(GENERATION)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(applied)
            }
        }
    };
}

rebuild_methods!(super::PostgresReadStore, sqlx::Postgres, POSTGRES);
rebuild_methods!(super::SqliteReadStore, sqlx::Sqlite, SQLITE);

/// The right to be the one rebuild of a database.
enum RebuildLock {
    /// A session advisory lock on a connection of its own (PostgreSQL).
    Session(sqlx::PgConnection),
    /// An exclusive lock on a file beside the database (SQLite: any process that opens the
    /// file may start a rebuild, and SQLite has no lock that outlives a transaction).
    File {
        /// Held open: closing it releases the lock.
        _file: std::fs::File,
    },
}

impl RebuildLock {
    /// Whether the lock is still held (its connection alive).
    async fn still_held(&mut self) -> bool {
        match self {
            Self::Session(connection) => sqlx::Connection::ping(connection).await.is_ok(),
            Self::File { .. } => true,
        }
    }
}

impl super::PostgresReadStore {
    async fn take_rebuild_lock(&self) -> Result<RebuildLock, ReadError> {
        let Some(lock) = POSTGRES.try_rebuild_lock else {
            return Err(ReadError::RebuildRunning);
        };
        let mut connection = self.pool.acquire().await?.detach();
        let taken: bool = sqlx::query_scalar(lock).fetch_one(&mut connection).await?;
        if taken {
            Ok(RebuildLock::Session(connection))
        } else {
            Err(ReadError::RebuildRunning)
        }
    }
}

impl super::SqliteReadStore {
    async fn take_rebuild_lock(&self) -> Result<RebuildLock, ReadError> {
        let mut path = self
            .pool
            .connect_options()
            .get_filename()
            .as_os_str()
            .to_owned();
        path.push(".rebuild-lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| ReadError::Database(sqlx::Error::Io(e)))?;
        match file.try_lock() {
            Ok(()) => Ok(RebuildLock::File { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(ReadError::RebuildRunning),
            Err(std::fs::TryLockError::Error(e)) => Err(ReadError::Database(sqlx::Error::Io(e))),
        }
    }
}
