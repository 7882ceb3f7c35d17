//! The event repository: postgres-es or sqlite-es behind one type.

use cqrs_es::persist::{
    PersistedEventRepository, PersistenceError, ReplayStream, SerializedEvent, SerializedSnapshot,
};
use cqrs_es::Aggregate;
use postgres_es::PostgresEventRepository;
use serde_json::Value;
use sqlite_es::SqliteEventRepository;

use crate::database::Database;

/// The event repository of the configured backend. cqrs-es is generic over the repository;
/// this enum gives the registry one concrete event-store type whatever the backend, chosen
/// once from the [`Database`].
///
/// Used only through `PersistedEventStore::new_event_store`: the snapshot and aggregate stores
/// of cqrs-es 0.5.0 apply each new event twice, and `stream_all_events` orders by per-client
/// sequence only, so the global feed is read with our own SQL.
pub enum EventRepository {
    /// postgres-es.
    Postgres(PostgresEventRepository),
    /// sqlite-es.
    Sqlite(SqliteEventRepository),
}

impl EventRepository {
    /// The repository for `database` (table `events`, created by our migrations).
    pub fn new(database: &Database) -> Self {
        match database {
            Database::Postgres(pool) => Self::Postgres(PostgresEventRepository::new(pool.clone())),
            Database::Sqlite(pool) => Self::Sqlite(SqliteEventRepository::new(pool.clone())),
        }
    }
}

impl PersistedEventRepository for EventRepository {
    async fn get_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        match self {
            Self::Postgres(repo) => repo.get_events::<A>(aggregate_id).await,
            Self::Sqlite(repo) => repo.get_events::<A>(aggregate_id).await,
        }
    }

    async fn get_last_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
        last_sequence: usize,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        match self {
            Self::Postgres(repo) => repo.get_last_events::<A>(aggregate_id, last_sequence).await,
            Self::Sqlite(repo) => repo.get_last_events::<A>(aggregate_id, last_sequence).await,
        }
    }

    async fn get_snapshot<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Option<SerializedSnapshot>, PersistenceError> {
        match self {
            Self::Postgres(repo) => repo.get_snapshot::<A>(aggregate_id).await,
            Self::Sqlite(repo) => repo.get_snapshot::<A>(aggregate_id).await,
        }
    }

    async fn persist<A: Aggregate>(
        &self,
        events: &[SerializedEvent],
        snapshot_update: Option<(String, Value, usize)>,
    ) -> Result<(), PersistenceError> {
        match self {
            Self::Postgres(repo) => repo.persist::<A>(events, snapshot_update).await,
            Self::Sqlite(repo) => repo.persist::<A>(events, snapshot_update).await,
        }
    }

    async fn stream_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<ReplayStream, PersistenceError> {
        match self {
            Self::Postgres(repo) => repo.stream_events::<A>(aggregate_id).await,
            Self::Sqlite(repo) => repo.stream_events::<A>(aggregate_id).await,
        }
    }

    async fn stream_all_events<A: Aggregate>(&self) -> Result<ReplayStream, PersistenceError> {
        match self {
            Self::Postgres(repo) => repo.stream_all_events::<A>().await,
            Self::Sqlite(repo) => repo.stream_all_events::<A>().await,
        }
    }
}
