//! The leases that make one process the projector, the sealer or the rebuild of a database.

use async_trait::async_trait;

/// The right to be the one projector (or sealer, or rebuild): on PostgreSQL a session
/// advisory lock on a connection of its own (released when the process or connection dies,
/// so another process takes over); on SQLite an exclusive lock on a file beside the store
/// (released when the process ends), so that processes sharing one file do not all do the
/// same work.
#[async_trait]
pub trait ProjectorLease: Send {
    /// Whether the lease is still held (its connection alive).
    async fn is_held(&mut self) -> bool;
}

/// What a lease is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lease {
    /// The one projector.
    Projector,
    /// The one sealer.
    Sealer,
    /// The one rebuild of the read models.
    Rebuild,
}

impl Lease {
    /// The PostgreSQL advisory lock key.
    pub(super) fn lock_key(self) -> i64 {
        match self {
            // 0x52454750 = 'REGP'.
            Self::Projector => 1_380_271_952,
            // 0x52454753 = 'REGS'.
            Self::Sealer => 1_380_271_955,
            // 0x52454752 = 'REGR'.
            Self::Rebuild => 1_380_271_954,
        }
    }

    /// The SQLite lock file's suffix (after the store's file name).
    pub(super) fn file_suffix(self) -> &'static str {
        match self {
            Self::Projector => ".projector-lease",
            Self::Sealer => ".sealer-lease",
            Self::Rebuild => ".rebuild-lock",
        }
    }
}

/// Held as long as the process (an in-memory store has one process by construction).
pub(super) struct AlwaysHeld;

#[async_trait]
impl ProjectorLease for AlwaysHeld {
    async fn is_held(&mut self) -> bool {
        true
    }
}

/// A lease held by an exclusive lock on a file of its own (SQLite).
pub(super) struct FileLease {
    pub(super) _file: std::fs::File,
}

#[async_trait]
impl ProjectorLease for FileLease {
    async fn is_held(&mut self) -> bool {
        true
    }
}

/// A lease held by a session lock on a connection of its own (PostgreSQL).
pub(super) struct ConnectionLease<DB: sqlx::Database> {
    pub(super) connection: DB::Connection,
}

#[async_trait]
impl<DB: sqlx::Database> ProjectorLease for ConnectionLease<DB> {
    async fn is_held(&mut self) -> bool {
        sqlx::Connection::ping(&mut self.connection).await.is_ok()
    }
}

/// Listens for `NOTIFY registry_events` (migration 0002), connecting on first use.
#[derive(Default)]
pub struct PgWaiter(pub(super) tokio::sync::Mutex<Option<sqlx::postgres::PgListener>>);
