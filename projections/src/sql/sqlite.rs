//! SQLite: file locks beside the store for the leases; no notifications (this process's own
//! commits wake its projector in-process, other processes' are found on a timer).

use std::time::Duration;

use sqlx::sqlite::{SqliteQueryResult, SqliteRow};
use sqlx::{Row, Sqlite, SqlitePool};

use super::dialect::{Dialect, SQLITE};
use super::lease::{AlwaysHeld, FileLease, Lease, ProjectorLease};
use super::{Column, Engine};

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

    async fn wait((): &(), _: &SqlitePool, timeout: Duration) {
        tokio::time::sleep(timeout).await;
    }
}
