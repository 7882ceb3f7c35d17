//! When each client last passed secret verification, for admins deciding whether a client is
//! still in use ("make sure the client is no longer in use before deleting it"). Kept aside
//! from the events: verification stays a read. Successes are noted in memory and written in
//! batches ([`LastAuthenticated::flush`], every few seconds by a background task), the newest
//! time winning, so a verification costs no database write.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::database::Database;

const UPSERT_POSTGRES: &str = "insert into client_last_authenticated (client_id, at) \
     select * from unnest($1::text[], $2::bigint[]) on conflict (client_id) do update \
     set at = greatest(client_last_authenticated.at, excluded.at)";

const UPSERT_SQLITE: &str = "insert into client_last_authenticated (client_id, at) \
     select value ->> 0, value ->> 1 from json_each($1) where true on conflict (client_id) \
     do update set at = max(client_last_authenticated.at, excluded.at)";

/// The successes of this process not written yet, and the way to the table.
#[derive(Debug)]
pub struct LastAuthenticated {
    database: Database,
    pending: Mutex<HashMap<String, i64>>,
}

impl LastAuthenticated {
    /// Notes kept for `database`.
    pub fn new(database: Database) -> Self {
        Self {
            database,
            pending: Mutex::new(HashMap::new()),
        }
    }

    /// Notes that `client_id` passed verification at `at` (Unix seconds).
    pub fn record(&self, client_id: &str, at: i64) {
        if let Ok(mut pending) = self.pending.lock() {
            let entry = pending.entry(client_id.to_owned()).or_insert(at);
            *entry = (*entry).max(at);
        }
    }

    /// Writes the noted successes (one statement); returns how many clients.
    ///
    /// # Errors
    /// The database error; the notes are kept for the next flush then.
    pub async fn flush(&self) -> Result<usize, sqlx::Error> {
        let batch: Vec<(String, i64)> = match self.pending.lock() {
            Ok(mut pending) => pending.drain().collect(),
            Err(_) => return Ok(0),
        };
        if batch.is_empty() {
            return Ok(0);
        }
        let written = match &self.database {
            Database::Postgres(pool) => {
                let (ids, times): (Vec<String>, Vec<i64>) = batch.iter().cloned().unzip();
                sqlx::query(UPSERT_POSTGRES)
                    .bind(ids)
                    .bind(times)
                    .execute(pool)
                    .await
                    .map(drop)
            }
            Database::Sqlite(pool) => {
                let rows = serde_json::to_string(&batch).unwrap_or_else(|_| "[]".to_owned());
                sqlx::query(UPSERT_SQLITE)
                    .bind(rows)
                    .execute(pool)
                    .await
                    .map(drop)
            }
        };
        match written {
            Ok(_) => Ok(batch.len()),
            Err(error) => {
                for (client_id, at) in batch {
                    self.record(&client_id, at);
                }
                Err(error)
            }
        }
    }

    /// When each of `client_ids` last passed verification (absent: never, as far as anyone
    /// knows), this process's unwritten notes included.
    ///
    /// # Errors
    /// The database error.
    pub async fn lookup(&self, client_ids: &[String]) -> Result<HashMap<String, i64>, sqlx::Error> {
        let mut found: HashMap<String, i64> = HashMap::new();
        if !client_ids.is_empty() {
            let ids = serde_json::to_string(client_ids).unwrap_or_else(|_| "[]".to_owned());
            let rows: Vec<(String, i64)> = match &self.database {
                Database::Postgres(pool) => {
                    sqlx::query_as(
                        "select client_id, at from client_last_authenticated \
                         where client_id = any($1::text[])",
                    )
                    .bind(client_ids)
                    .fetch_all(pool)
                    .await?
                }
                Database::Sqlite(pool) => {
                    sqlx::query_as(
                        "select client_id, at from client_last_authenticated \
                         where client_id in (select value from json_each($1))",
                    )
                    .bind(ids)
                    .fetch_all(pool)
                    .await?
                }
            };
            found.extend(rows);
        }
        if let Ok(pending) = self.pending.lock() {
            for id in client_ids {
                if let Some(at) = pending.get(id) {
                    let entry = found.entry(id.clone()).or_insert(*at);
                    *entry = (*entry).max(*at);
                }
            }
        }
        Ok(found)
    }
}
