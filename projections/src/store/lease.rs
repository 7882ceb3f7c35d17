//! The one-projector lease, and waiting for other processes' commits.

use std::time::Duration;

use async_trait::async_trait;

use super::ReadError;

/// The right to be the one projector (or sealer): on PostgreSQL a session advisory lock on a
/// connection of its own (released when the process or connection dies, so another process
/// takes over); on SQLite an exclusive lock on a file beside the store (released when the
/// process ends), so that processes sharing one file do not all do the same work.
#[async_trait]
pub trait ProjectorLease: Send {
    /// Whether the lease is still held (its connection alive).
    async fn is_held(&mut self) -> bool;
}

struct AlwaysHeld;

#[async_trait]
impl ProjectorLease for AlwaysHeld {
    async fn is_held(&mut self) -> bool {
        true
    }
}

/// A lease held by an exclusive lock on a file of its own (SQLite).
struct FileLease {
    _file: std::fs::File,
}

#[async_trait]
impl ProjectorLease for FileLease {
    async fn is_held(&mut self) -> bool {
        true
    }
}

/// Takes the lease named `name` of the SQLite store `pool` without waiting: an exclusive lock
/// on `<store file><name>` (created 0600). Answers `None` while another process holds it; an
/// in-memory store (one process by construction) always gets it.
///
/// # Errors
/// [`ReadError::Database`] when the lock file cannot be opened.
pub(crate) fn try_file_lease(
    pool: &sqlx::SqlitePool,
    name: &str,
) -> Result<Option<Box<dyn ProjectorLease>>, ReadError> {
    let store = pool.connect_options().get_filename().as_os_str().to_owned();
    if store.is_empty() || store == ":memory:" {
        return Ok(Some(Box::new(AlwaysHeld)));
    }
    let mut path = store;
    path.push(name);
    let mut options = std::fs::OpenOptions::new();
    options.create(true).truncate(false).write(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options
        .open(&path)
        .map_err(|e| ReadError::Database(sqlx::Error::Io(e)))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(Box::new(FileLease { _file: file }))),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(ReadError::Database(sqlx::Error::Io(e))),
    }
}

/// A lease held by a session lock on a connection of its own.
pub(crate) struct ConnectionLease<DB: sqlx::Database> {
    pub(crate) connection: DB::Connection,
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

impl super::PostgresReadStore {
    /// See [`super::ReadStore::try_lease`].
    pub(super) async fn take_lease(&self) -> Result<Option<Box<dyn ProjectorLease>>, ReadError> {
        // A connection of its own, out of the pool: the lock lives as long as it.
        let mut connection = self.pool.acquire().await?.detach();
        // 0x52454750 = 'REGP': the projector.
        let taken: bool = sqlx::query_scalar("select pg_try_advisory_lock(1380271952)")
            .fetch_one(&mut connection)
            .await?;
        Ok(taken.then(|| {
            Box::new(ConnectionLease::<sqlx::Postgres> { connection }) as Box<dyn ProjectorLease>
        }))
    }
}

impl super::SqliteReadStore {
    /// See [`super::ReadStore::try_lease`].
    pub(super) async fn take_lease(&self) -> Result<Option<Box<dyn ProjectorLease>>, ReadError> {
        try_file_lease(&self.pool, ".projector-lease")
    }
}

impl super::PostgresReadStore {
    /// Returns on the next `NOTIFY registry_events`, or after `timeout`.
    pub(super) async fn wait(&self, timeout: Duration) {
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

impl super::SqliteReadStore {
    /// No notifications on SQLite: this process's own commits wake the projector in-process;
    /// other processes' are found when this timer ends.
    pub(super) async fn wait(&self, timeout: Duration) {
        tokio::time::sleep(timeout).await;
    }
}
