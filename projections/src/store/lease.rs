//! The one-projector lease, and waiting for other processes' commits.

use std::time::Duration;

use async_trait::async_trait;

use super::{Dialect, ReadError, POSTGRES, SQLITE};

/// The right to be the one projector: on PostgreSQL a session advisory lock on a connection
/// of its own (released when the process or connection dies, so another process takes over);
/// on SQLite (one process per file) always granted.
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

/// A lease held by a session lock on a connection of its own.
pub(crate) struct ConnectionLease<DB: sqlx::Database> {
    pub(crate) connection: DB::Connection,
}

/// A lease that is always held (SQLite: one process per file).
pub(crate) fn always_held() -> Box<dyn ProjectorLease> {
    Box::new(AlwaysHeld)
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

macro_rules! lease_methods {
    ($store:ty, $db:ty, $dialect:expr) => {
        impl $store {
            /// See [`super::ReadStore::try_lease`].
            pub(super) async fn take_lease(
                &self,
            ) -> Result<Option<Box<dyn ProjectorLease>>, ReadError> {
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
        }
    };
}

lease_methods!(super::PostgresReadStore, sqlx::Postgres, POSTGRES);
lease_methods!(super::SqliteReadStore, sqlx::Sqlite, SQLITE);

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
    /// One process per SQLite file: its own commits wake the projector in-process; this only
    /// paces the timer.
    pub(super) async fn wait(&self, timeout: Duration) {
        tokio::time::sleep(timeout).await;
    }
}
