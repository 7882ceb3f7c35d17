//! SQLite: file locks beside the store for the leases; no notifications (this process's own
//! commits wake its projector in-process, other processes' are found on a timer).

use std::time::Duration;

use sqlx::sqlite::{SqliteQueryResult, SqliteRow};
use sqlx::{Row, Sqlite, SqlitePool};

use super::dialect::{Dialect, SQLITE};
use super::lease::{AlwaysHeld, FileLease, Lease, ProjectorLease};
use super::{Column, Engine, NodeHash, Statement};

impl Engine for Sqlite {
    const DIALECT: Dialect = SQLITE;

    type Waiter = ();

    fn get<T: Column>(row: &SqliteRow, column: &str) -> Result<T, sqlx::Error> {
        row.try_get(column)
    }

    fn first<T: Column>(row: &SqliteRow) -> Result<T, sqlx::Error> {
        row.try_get(0)
    }

    fn rows_affected(result: &SqliteQueryResult) -> u64 {
        result.rows_affected()
    }

    /// An exclusive lock on `<store file><suffix>` (created 0600). An in-memory store (one
    /// process by construction) always gets it.
    async fn try_lease(
        pool: &SqlitePool,
        lease: Lease,
    ) -> Result<Option<Box<dyn ProjectorLease>>, sqlx::Error> {
        let store = pool.connect_options().get_filename().as_os_str().to_owned();
        if store.is_empty() || store == ":memory:" {
            return Ok(Some(Box::new(AlwaysHeld)));
        }
        let mut path = store;
        path.push(lease.file_suffix());
        let mut options = std::fs::OpenOptions::new();
        options.create(true).truncate(false).write(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(&path).map_err(sqlx::Error::Io)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(Box::new(FileLease { _file: file }))),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(sqlx::Error::Io(e)),
        }
    }

    /// In-process: two plain statements cost nothing to send.
    async fn node_hashes(
        pool: &SqlitePool,
        leaves: Vec<i64>,
        inner: Vec<(i64, i64)>,
    ) -> Result<Vec<NodeHash>, sqlx::Error> {
        let mut rows = Vec::new();
        if !leaves.is_empty() {
            let mut select = Statement::new(
                "select 0 as level, leaf_index as node_index, leaf_hash as hash \
                 from seal_leaves where leaf_index in ",
            );
            select.push_list(leaves);
            rows.extend(select.rows(pool).await?);
        }
        if !inner.is_empty() {
            let mut select =
                Statement::new("select level, node_index, hash from seal_nodes where ");
            for (i, (level, index)) in inner.into_iter().enumerate() {
                select
                    .push(if i == 0 { "(level = " } else { " or (level = " })
                    .push_bind(level)
                    .push(" and node_index = ")
                    .push_bind(index)
                    .push(")");
            }
            rows.extend(select.rows(pool).await?);
        }
        rows.iter()
            .map(|row| Ok((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?)))
            .collect()
    }

    async fn wait((): &(), _: &SqlitePool, timeout: Duration) {
        tokio::time::sleep(timeout).await;
    }
}
