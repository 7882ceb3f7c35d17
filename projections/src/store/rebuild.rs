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

use async_trait::async_trait;

use super::{
    advance_checkpoint, FeedReads, ReadError, Rebuild, SqlReadStore, Tables, GENERATION, LIVE,
    NEXT, NEXT_GENERATION,
};
use registry_sql::{Backend, Lease, Statement, Transaction};

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

impl<DB: Backend> SqlReadStore<DB> {
    /// Replays batches into the shadow tables from `position` until the shadow is within
    /// [`SWAP_WITHIN`] of the head. Returns the position reached and the events replayed.
    async fn replay_until_near_head(&self, mut position: i64) -> Result<(i64, u64), ReadError> {
        let mut replayed = 0;
        loop {
            let head = self.head().await?;
            if head - position <= SWAP_WITHIN {
                return Ok((position, replayed));
            }
            while position < head {
                let started = tokio::time::Instant::now();
                let (reached, count) = self.replay_batch(position, head).await?;
                position = reached;
                replayed += count;
                if DB::DIALECT.one_writer {
                    tokio::time::sleep(started.elapsed().min(MAX_YIELD)).await;
                }
            }
        }
    }

    /// Empties the shadow tables, their parked events and their checkpoint.
    async fn empty_shadow(&self) -> Result<(), ReadError> {
        let mut tx = self.begin_projection().await?;
        for table in [NEXT.detail, NEXT.list] {
            Statement::new(format!("delete from {table}"))
                .execute(&mut tx)
                .await?;
        }
        Statement::new("delete from projection_failures where projection = $1")
            .bind(NEXT.projection)
            .execute(&mut tx)
            .await?;
        Statement::new(SET_CHECKPOINT)
            .bind(NEXT.projection)
            .bind(0_i64)
            .execute(&mut tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Applies the feed after `position` (up to `head`, at most a batch) to the shadow tables
    /// in a transaction of its own. Returns the position reached and the number of events
    /// read.
    async fn replay_batch(&self, position: i64, head: i64) -> Result<(i64, u64), ReadError> {
        let mut tx = self.begin_projection().await?;
        let (reached, count) = Self::apply_to_shadow(&mut tx, position, head).await?;
        advance_checkpoint(NEXT.projection, reached)
            .execute(&mut tx)
            .await?;
        tx.commit().await?;
        Ok((reached, count))
    }

    /// Applies a batch of the feed after `position` (up to `head`) to the shadow tables.
    /// Returns the position reached and the number of events read.
    async fn apply_to_shadow(
        tx: &mut Transaction<DB>,
        position: i64,
        head: i64,
    ) -> Result<(i64, u64), ReadError> {
        let rows = Self::feed_rows(tx, position, head, BATCH).await?;
        let count = rows.len();
        let reached = match rows.last() {
            Some(last) if count >= BATCH => last.position,
            _ => head,
        };
        Self::apply_feed_rows(tx, NEXT, rows, false).await?;
        Ok((reached, u64::try_from(count).unwrap_or_default()))
    }

    /// In one transaction that no event commits beside: applies the rest of the feed to the
    /// shadow tables and swaps them with the live ones. Returns the number of events applied
    /// in it.
    async fn swap_in(&self, mut position: i64) -> Result<u64, ReadError> {
        let mut tx = self.begin_projection().await?;
        if let Some(timeout) = DB::DIALECT.swap_lock_timeout {
            Statement::new(timeout).execute(&mut tx).await?;
        }
        // First the tables (waiting for their readers while writers go on), then the feed
        // barrier, held until commit: no event commits between the last one applied here and
        // the swap. SQLite: this transaction is the only writer.
        if let Some(lock) = DB::DIALECT.lock_tables_for_swap {
            Statement::new(lock).execute(&mut tx).await?;
        }
        let head: i64 = Statement::new(DB::DIALECT.head).one(&mut tx).await?;
        let mut applied = 0;
        while position < head {
            let (reached, count) = Self::apply_to_shadow(&mut tx, position, head).await?;
            position = reached;
            applied += count;
        }
        for statement in swap_statements(LIVE, NEXT) {
            Statement::new(statement).execute(&mut tx).await?;
        }
        Self::swap_bookkeeping(&mut tx, head).await?;
        tx.commit().await?;
        Ok(applied)
    }

    /// The parked events and the checkpoint of the shadow become the live projection's, and
    /// the generation moves on (every process's search index then loads the new tables).
    async fn swap_bookkeeping(tx: &mut Transaction<DB>, head: i64) -> Result<(), ReadError> {
        Statement::new("delete from projection_failures where projection = $1")
            .bind(LIVE.projection)
            .execute(&mut *tx)
            .await?;
        Statement::new("update projection_failures set projection = $1 where projection = $2")
            .bind(LIVE.projection)
            .bind(NEXT.projection)
            .execute(&mut *tx)
            .await?;
        Statement::new(SET_CHECKPOINT)
            .bind(LIVE.projection)
            .bind(head)
            .execute(&mut *tx)
            .await?;
        Statement::new("delete from projection_checkpoints where projection = $1")
            .bind(NEXT.projection)
            .execute(&mut *tx)
            .await?;
        Statement::new(NEXT_GENERATION)
            .bind(GENERATION)
            .execute(&mut *tx)
            .await?;
        Ok(())
    }
}

#[async_trait]
impl<DB: Backend> Rebuild for SqlReadStore<DB> {
    async fn rebuild(&self) -> Result<u64, ReadError> {
        // One rebuild at a time, whichever process runs it; released when dropped at the end,
        // or when the process dies.
        let Some(mut lock) = DB::try_lease(&self.pool, Lease::Rebuild).await? else {
            return Err(ReadError::RebuildRunning);
        };
        self.empty_shadow().await?;
        let mut position = 0;
        let mut replayed = 0;
        for attempt in 1..=SWAP_ATTEMPTS {
            let (reached, count) = self.replay_until_near_head(position).await?;
            position = reached;
            replayed += count;
            // A lock lost on the way (its connection cut) means another rebuild may have
            // started and emptied the shadow: never swap that in.
            if !lock.is_held().await {
                return Err(ReadError::RebuildRunning);
            }
            match self.swap_in(position).await {
                Ok(count) => {
                    tracing::info!(events = replayed + count, "read model rebuilt");
                    return Ok(replayed + count);
                }
                Err(error) if lock_wait_ran_out(&error) && attempt < SWAP_ATTEMPTS => {
                    tracing::warn!(attempt, "readers held the read model; swapping again");
                    tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
                }
                Err(error) => return Err(error),
            }
        }
        Err(ReadError::SwapTimedOut)
    }
}
