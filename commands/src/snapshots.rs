//! Snapshots of the write model: a client's state after its N-th event, taken every
//! [`SNAPSHOT_EVERY`] events, so loading a long stream reads one row and a short tail.

use cqrs_es::Aggregate;
use registry_domain::{Client, StampedClient};
use sqlx::types::Json;

use crate::database::Database;

/// Events between two snapshots of one client.
pub const SNAPSHOT_EVERY: u64 = 100;

const SELECT: &str = "select version, state from aggregate_snapshots \
     where aggregate_type = $1 and aggregate_id = $2";

const UPSERT: &str =
    "insert into aggregate_snapshots (aggregate_type, aggregate_id, version, state) \
     values ($1, $2, $3, $4) on conflict (aggregate_type, aggregate_id) do update set \
     version = excluded.version, state = excluded.state \
     where aggregate_snapshots.version < excluded.version";

impl Database {
    /// The latest snapshot of `client_id`: its version and state. A snapshot that no longer
    /// reads as the current [`StampedClient`] shape is ignored (the stream is replayed
    /// instead).
    ///
    /// # Errors
    /// The database error.
    pub async fn load_snapshot(
        &self,
        client_id: &str,
    ) -> Result<Option<(u64, StampedClient)>, sqlx::Error> {
        let row: Option<(i64, Json<serde_json::Value>)> = match self {
            Self::Postgres(pool) => {
                sqlx::query_as(SELECT)
                    .bind(Client::TYPE)
                    .bind(client_id)
                    .fetch_optional(pool)
                    .await?
            }
            Self::Sqlite(pool) => {
                sqlx::query_as(SELECT)
                    .bind(Client::TYPE)
                    .bind(client_id)
                    .fetch_optional(pool)
                    .await?
            }
        };
        Ok(row.and_then(|(version, Json(state))| {
            let client = serde_json::from_value::<StampedClient>(state).ok()?;
            Some((u64::try_from(version).ok()?, client))
        }))
    }

    /// Stores `client` as the state after its `version`-th event, unless a newer snapshot is
    /// there.
    ///
    /// # Errors
    /// The database error.
    pub async fn save_snapshot(
        &self,
        client_id: &str,
        version: u64,
        client: &StampedClient,
    ) -> Result<(), sqlx::Error> {
        let version = i64::try_from(version).unwrap_or(i64::MAX);
        match self {
            Self::Postgres(pool) => {
                sqlx::query(UPSERT)
                    .bind(Client::TYPE)
                    .bind(client_id)
                    .bind(version)
                    .bind(Json(client))
                    .execute(pool)
                    .await?;
            }
            Self::Sqlite(pool) => {
                sqlx::query(UPSERT)
                    .bind(Client::TYPE)
                    .bind(client_id)
                    .bind(version)
                    .bind(Json(client))
                    .execute(pool)
                    .await?;
            }
        }
        Ok(())
    }
}
