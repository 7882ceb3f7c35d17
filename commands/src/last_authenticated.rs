//! When each client last passed secret verification, for admins deciding whether a client is
//! still in use ("make sure the client is no longer in use before deleting it"). Kept aside
//! from the events: verification stays a read. Successes are noted in memory and written in
//! batches ([`LastAuthenticated::flush`], every few seconds by a background task), the newest
//! time winning, so a verification costs no database write.

use std::collections::HashMap;
use std::sync::Mutex;

use registry_sql::{Arg, Engine, Record, Statement};

use crate::database::Database;

/// The newest time wins, whichever process writes first (`case`: PostgreSQL's `greatest` is
/// SQLite's `max`).
const UPSERT_END: &str = " on conflict (client_id) do update set at = case \
     when excluded.at > client_last_authenticated.at then excluded.at \
     else client_last_authenticated.at end";

/// Rows per statement: far below either database's limit on bound values.
const ROWS_PER_STATEMENT: usize = 1_000;

/// A client's last success as read from the table.
struct Seen {
    client_id: String,
    at: i64,
}

impl Record for Seen {
    fn read<DB: Engine>(row: &DB::Row) -> Result<Self, sqlx::Error> {
        Ok(Self {
            client_id: DB::get(row, "client_id")?,
            at: DB::get(row, "at")?,
        })
    }
}

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
        let mut written = Ok(());
        for rows in batch.chunks(ROWS_PER_STATEMENT) {
            let mut upsert =
                Statement::new("insert into client_last_authenticated (client_id, at) values ");
            upsert.push_tuples(rows.iter().map(|(id, at)| [Arg::from(id), Arg::from(*at)]));
            upsert.push(UPSERT_END);
            written = self.database.execute(upsert).await.map(drop);
            if written.is_err() {
                break;
            }
        }
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
            for ids in client_ids.chunks(ROWS_PER_STATEMENT) {
                let mut select = Statement::new(
                    "select client_id, at from client_last_authenticated where client_id in ",
                );
                select.push_list(ids);
                let rows: Vec<Seen> = self.database.records(select).await?;
                found.extend(rows.into_iter().map(|seen| (seen.client_id, seen.at)));
            }
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
