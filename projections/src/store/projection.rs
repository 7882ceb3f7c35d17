//! Applying events to the client rows: inline after a command ("catch this client up from
//! its stream"), and in projector batches along the feed. Each row records the sequence of
//! the last event applied, so applying twice, concurrently or after a crash is harmless.
//!
//! An event that cannot be decoded or applied is parked in `projection_failures` (with every
//! later event of its client, which cannot follow it) and the batch goes on: one bad row
//! must not stop every projection and every search index behind it.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use registry_domain::upcasters;
use sqlx::types::Json;

use super::{
    advance_checkpoint, storable, Batch, FeedReads, Projection, ReadError, SqlReadStore, Tables,
    EVENT_COLUMNS, LIVE, SELECT_CHECKPOINT,
};
use crate::stored::{RawEvent, StoredEvent};
use crate::view::{ClientRecord, ClientView, ListRow};
use registry_sql::{Arg, Backend, Engine, Lease, ProjectorLease, Statement, Target, Transaction};

const SELECT_CLIENT_EVENTS: &str = "select aggregate_id, sequence, global_position, event_type, \
     event_version, cast(payload as text) as payload, cast(metadata as text) as metadata, \
     recorded_at from events \
     where aggregate_type = 'Client' and aggregate_id = $1 and sequence > $2 \
     and sequence <= $3 order by sequence";

const PARK: &str = "insert into projection_failures \
     (projection, position, client_id, sequence, event_type, error) \
     values ($1, $2, $3, $4, $5, $6) on conflict (projection, position) do update set \
     error = excluded.error, attempts = projection_failures.attempts + 1";

/// Reads a detail row (`document`, `deleted`, `last_position`) into a record.
pub(super) fn record_from_row<DB: Engine>(row: &DB::Row) -> Result<ClientRecord, ReadError> {
    let Json(view): Json<ClientView> = DB::get(row, "document")?;
    Ok(ClientRecord {
        view,
        deleted: DB::get(row, "deleted")?,
        last_position: DB::get(row, "last_position")?,
    })
}

/// Reads an `events` row.
pub(super) fn raw_event<DB: Engine>(row: &DB::Row) -> Result<RawEvent, ReadError> {
    Ok(RawEvent {
        aggregate_id: DB::get(row, "aggregate_id")?,
        sequence: DB::get(row, "sequence")?,
        position: DB::get(row, "global_position")?,
        event_type: DB::get(row, "event_type")?,
        event_version: DB::get(row, "event_version")?,
        payload: DB::get(row, "payload")?,
        metadata: DB::get(row, "metadata")?,
        recorded_at: DB::get(row, "recorded_at").ok(),
    })
}

/// An event set aside, before it is written to `projection_failures`.
struct Parking {
    position: i64,
    client_id: String,
    sequence: i64,
    event_type: String,
    error: String,
}

impl Parking {
    fn of(row: &RawEvent, error: impl ToString) -> Self {
        Self {
            position: row.position,
            client_id: row.aggregate_id.clone(),
            sequence: row.sequence,
            event_type: row.event_type.clone(),
            error: error.to_string(),
        }
    }
}

/// The events a batch parks, and the clients they block (a later event of a client cannot
/// follow one that was parked).
#[derive(Default)]
struct Parked {
    events: Vec<Parking>,
    /// Client → the position of its first parked event.
    blocked: HashMap<String, i64>,
}

impl Parked {
    /// Parks `row` when an earlier event of its client was parked.
    fn blocks(&mut self, row: &RawEvent) -> bool {
        let Some(first) = self.blocked.get(&row.aggregate_id) else {
            return false;
        };
        let error = format!("follows event {first} of this client, which is parked");
        self.events.push(Parking::of(row, error));
        true
    }

    /// Parks `row`, blocking its client from here on.
    fn park(&mut self, row: &RawEvent, error: impl ToString) {
        self.blocked.insert(row.aggregate_id.clone(), row.position);
        self.events.push(Parking::of(row, error));
    }
}

/// What applying a stretch of the feed did.
pub(super) struct Applied {
    /// The records it changed.
    pub(super) records: Vec<ClientRecord>,
    /// Events it parked.
    pub(super) parked: usize,
}

impl<DB: Backend> SqlReadStore<DB> {
    /// Decodes `events` rows (upcast to the current shapes); the first row that cannot be
    /// decoded is an error.
    pub(super) fn decode_events(rows: &[DB::Row]) -> Result<Vec<StoredEvent>, ReadError> {
        let upcasters = upcasters();
        let mut events = Vec::with_capacity(rows.len());
        for row in rows {
            events.push(raw_event::<DB>(row)?.decode(&upcasters)?);
        }
        Ok(events)
    }

    /// Opens a transaction with `statement` in a task of its own, so that the caller going
    /// away (a client disconnect drops the request's future) cannot interrupt the `BEGIN`
    /// half-way: sqlx 0.8 then leaves the connection inside a transaction it does not know
    /// about (PostgreSQL: the depth is counted only once the server answered), and the pool
    /// hands that connection to the next caller. Once the `Transaction` exists, dropping it
    /// rolls back.
    pub(super) async fn begin_detached(
        &self,
        statement: &'static str,
    ) -> Result<Transaction<DB>, ReadError> {
        let pool = self.pool.clone();
        Ok(tokio::spawn(async move { pool.begin_with(statement).await }).await??)
    }

    /// Opens a transaction that writes read models.
    pub(super) async fn begin_projection(&self) -> Result<Transaction<DB>, ReadError> {
        let mut tx = self.begin_detached(DB::DIALECT.begin).await?;
        if let Some(relax) = DB::DIALECT.relaxed_commit {
            Statement::new(relax).execute(&mut tx).await?;
        }
        Ok(tx)
    }

    /// Events `after < sequence <= up_to` of one client.
    pub(super) async fn stream_range<'c>(
        on: impl Target<'c, Db = DB>,
        client_id: &str,
        after: u64,
        up_to: u64,
    ) -> Result<Vec<StoredEvent>, ReadError> {
        let rows = Statement::new(SELECT_CLIENT_EVENTS)
            .bind(client_id)
            .bind(i64::try_from(after).unwrap_or(i64::MAX))
            .bind(i64::try_from(up_to).unwrap_or(i64::MAX))
            .rows(on)
            .await?;
        Self::decode_events(&rows)
    }

    /// The checkpoint of `projection`.
    pub(super) async fn checkpoint_of(
        tx: &mut Transaction<DB>,
        projection: &str,
    ) -> Result<i64, ReadError> {
        let position: Option<i64> = Statement::new(SELECT_CHECKPOINT)
            .bind(projection)
            .scalar(tx)
            .await?;
        Ok(position.unwrap_or(0))
    }

    /// Feed rows `after < position <= head`, at most `limit`, undecoded.
    pub(super) async fn feed_rows(
        tx: &mut Transaction<DB>,
        after: i64,
        head: i64,
        limit: usize,
    ) -> Result<Vec<RawEvent>, ReadError> {
        let rows = Statement::new(format!(
            "select {EVENT_COLUMNS} from events \
             where global_position > $1 and global_position <= $2 \
             order by global_position limit $3"
        ))
        .bind(after)
        .bind(head)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .rows(tx)
        .await?;
        rows.iter().map(raw_event::<DB>).collect()
    }

    /// Takes the projection lock of each of `ids` (sorted: two transactions locking several
    /// clients cannot deadlock), where the dialect has one.
    async fn lock_clients(tx: &mut Transaction<DB>, ids: &[String]) -> Result<(), ReadError> {
        if let Some(lock) = DB::DIALECT.lock_client {
            for id in ids {
                Statement::new(lock)
                    .bind(format!("client:{id}"))
                    .execute(&mut *tx)
                    .await?;
            }
        }
        Ok(())
    }

    /// Applies feed rows (in feed order) to the rows of their clients in `tables`, each
    /// client locked and loaded once, written once. An event the rows already reflect is
    /// skipped; a gap (rows behind the event) is filled from the client's stream. An event
    /// that cannot be decoded or applied is parked, and so is every later event of its client
    /// in these rows.
    ///
    /// `lock_clients`: take each client's lock (the projector, concurrent with the inline
    /// path). A rebuild does not: it writes tables nobody else writes, and a lock per client
    /// would exhaust PostgreSQL's lock table.
    pub(super) async fn apply_feed_rows(
        tx: &mut Transaction<DB>,
        tables: Tables,
        rows: Vec<RawEvent>,
        lock_clients: bool,
    ) -> Result<Applied, ReadError> {
        let mut ids: Vec<String> = rows.iter().map(|e| e.aggregate_id.clone()).collect();
        ids.sort_unstable();
        ids.dedup();
        if lock_clients {
            Self::lock_clients(tx, &ids).await?;
        }
        let upcasters = upcasters();
        let mut touched = Self::load_records(tx, tables, &ids).await?;
        let mut parking = Parked::default();
        for row in rows {
            Self::apply_row(tx, &mut touched, &mut parking, row, &upcasters).await?;
        }
        let changed: Vec<&ClientRecord> = touched
            .values()
            .filter_map(|(record, dirty)| record.as_ref().filter(|_| *dirty))
            .collect();
        Self::save_records(tx, tables, &changed).await?;
        Self::park(tx, tables, &parking.events).await?;
        Ok(Applied {
            records: changed.into_iter().cloned().collect(),
            parked: parking.events.len(),
        })
    }

    /// Applies one feed row to its client's record (and any events of the client the record
    /// is missing before it); parks it, with every later event of its client, when it cannot
    /// be decoded or applied.
    async fn apply_row(
        tx: &mut Transaction<DB>,
        touched: &mut BTreeMap<String, (Option<ClientRecord>, bool)>,
        parking: &mut Parked,
        row: RawEvent,
        upcasters: &[Box<dyn cqrs_es::persist::EventUpcaster>],
    ) -> Result<(), ReadError> {
        if parking.blocks(&row) {
            return Ok(());
        }
        let raw = row.clone();
        let event = match row.decode(upcasters) {
            Ok(event) => event,
            Err(error) => {
                parking.park(&raw, error);
                return Ok(());
            }
        };
        let Some((record, dirty)) = touched.get_mut(&event.aggregate_id) else {
            return Ok(());
        };
        let version = record.as_ref().map_or(0, |r| r.view.version);
        if event.sequence <= version {
            return Ok(());
        }
        let missing = if event.sequence > version + 1 {
            let id = &event.aggregate_id;
            match Self::stream_range(&mut *tx, id, version, event.sequence - 1).await {
                Ok(missing) => missing,
                Err(ReadError::Decode(error)) => {
                    parking.park(&raw, error);
                    return Ok(());
                }
                Err(other) => return Err(other),
            }
        } else {
            Vec::new()
        };
        let mut next = record.clone();
        let applied = missing
            .iter()
            .chain(std::iter::once(&event))
            .try_for_each(|earlier| {
                next = Some(ClientRecord::apply(next.take(), earlier)?);
                Ok::<(), crate::view::ApplyError>(())
            });
        match applied {
            Ok(()) => {
                *record = next;
                *dirty = true;
            }
            Err(error) => parking.park(&raw, error),
        }
        Ok(())
    }

    /// Writes the parked events to `projection_failures`, each logged.
    async fn park(
        tx: &mut Transaction<DB>,
        tables: Tables,
        parked: &[Parking],
    ) -> Result<(), ReadError> {
        for parking in parked {
            tracing::error!(
                position = parking.position,
                client_id = %parking.client_id,
                error = %parking.error,
                "event parked: it cannot be projected"
            );
            Statement::new(PARK)
                .bind(tables.projection)
                .bind(parking.position)
                .bind(&parking.client_id)
                .bind(parking.sequence)
                .bind(&parking.event_type)
                .bind(&parking.error)
                .execute(&mut *tx)
                .await?;
        }
        Ok(())
    }

    /// The detail rows of `ids` (sorted, distinct), one statement per 500 ids.
    pub(super) async fn load_records(
        tx: &mut Transaction<DB>,
        tables: Tables,
        ids: &[String],
    ) -> Result<BTreeMap<String, (Option<ClientRecord>, bool)>, ReadError> {
        let mut records: BTreeMap<String, (Option<ClientRecord>, bool)> =
            ids.iter().map(|id| (id.clone(), (None, false))).collect();
        for chunk in ids.chunks(500) {
            let mut select = Statement::new(format!(
                "select client_id, document, deleted, last_position from {} where client_id in ",
                tables.detail
            ));
            select.push_list(chunk);
            for row in select.rows(&mut *tx).await? {
                let id: String = DB::get(&row, "client_id")?;
                records.insert(id, (Some(record_from_row::<DB>(&row)?), false));
            }
        }
        Ok(records)
    }

    /// Writes detail and list rows of many clients, a few statements per 500 clients. A
    /// detail row only moves forward (a lower version never overwrites a higher).
    pub(super) async fn save_records(
        tx: &mut Transaction<DB>,
        tables: Tables,
        records: &[&ClientRecord],
    ) -> Result<(), ReadError> {
        for chunk in records.chunks(500) {
            Self::save_details(tx, tables, chunk).await?;
            let deleted: Vec<&String> = chunk
                .iter()
                .filter(|r| r.deleted)
                .map(|r| &r.view.client_id)
                .collect();
            if !deleted.is_empty() {
                let mut delete =
                    Statement::new(format!("delete from {} where client_id in ", tables.list));
                delete.push_list(deleted);
                delete.execute(&mut *tx).await?;
            }
            let live: Vec<ListRow> = chunk
                .iter()
                .filter(|r| !r.deleted)
                .map(|r| ListRow::from(&r.view))
                .collect();
            Self::save_list_rows(tx, tables, live).await?;
        }
        Ok(())
    }

    /// The detail rows of `chunk`, each only moving forward.
    async fn save_details(
        tx: &mut Transaction<DB>,
        tables: Tables,
        chunk: &[&ClientRecord],
    ) -> Result<(), ReadError> {
        let mut detail = Statement::new(format!(
            "insert into {} (client_id, version, last_position, deleted, document, \
             created_at, updated_at) values ",
            tables.detail
        ));
        detail.push_tuples(
            chunk
                .iter()
                .map(|record| detail_values(record))
                .collect::<Result<Vec<_>, _>>()?,
        );
        detail.push(&format!(
            " on conflict (client_id) do update set \
             version = excluded.version, last_position = excluded.last_position, \
             deleted = excluded.deleted, document = excluded.document, \
             created_at = excluded.created_at, updated_at = excluded.updated_at \
             where {}.version < excluded.version",
            tables.detail
        ));
        detail.execute(&mut *tx).await?;
        Ok(())
    }

    /// The list rows of live clients, inserted or replaced.
    async fn save_list_rows(
        tx: &mut Transaction<DB>,
        tables: Tables,
        live: Vec<ListRow>,
    ) -> Result<(), ReadError> {
        if live.is_empty() {
            return Ok(());
        }
        let mut list = Statement::new(format!(
            "insert into {} (client_id, client_name, name_key, client_uri, \
             enabled, grant_types, search_text, created_at, updated_at) values ",
            tables.list
        ));
        list.push_tuples(
            live.into_iter()
                .map(list_values)
                .collect::<Result<Vec<_>, _>>()?,
        );
        list.push(
            " on conflict (client_id) do update set \
             client_name = excluded.client_name, name_key = excluded.name_key, \
             client_uri = excluded.client_uri, enabled = excluded.enabled, \
             grant_types = excluded.grant_types, \
             search_text = excluded.search_text, \
             created_at = excluded.created_at, updated_at = excluded.updated_at",
        );
        list.execute(&mut *tx).await?;
        Ok(())
    }
}

/// The values of a detail row.
fn detail_values(record: &ClientRecord) -> Result<Vec<Arg>, sqlx::Error> {
    let view = &record.view;
    Ok(vec![
        Arg::from(&view.client_id),
        Arg::I64(i64::try_from(view.version).unwrap_or(i64::MAX)),
        Arg::I64(record.last_position),
        Arg::Bool(record.deleted),
        Arg::json(view)?,
        Arg::Time(view.created_at),
        Arg::Time(view.updated_at),
    ])
}

/// The values of a list row.
fn list_values(row: ListRow) -> Result<Vec<Arg>, sqlx::Error> {
    Ok(vec![
        Arg::Text(row.client_id),
        Arg::Text(row.client_name),
        Arg::Text(row.name_key),
        Arg::OptionalText(row.client_uri),
        Arg::Bool(row.enabled),
        Arg::json(&row.grant_types)?,
        Arg::Text(row.search_text),
        Arg::Time(row.created_at),
        Arg::Time(row.updated_at),
    ])
}

#[async_trait]
impl<DB: Backend> Projection for SqlReadStore<DB> {
    async fn catch_up(&self, client_id: &str) -> Result<Option<ClientRecord>, ReadError> {
        if !storable(client_id) {
            return Ok(None);
        }
        let mut tx = self.begin_projection().await?;
        Self::lock_clients(&mut tx, &[client_id.to_owned()]).await?;
        let record = Self::load_records(&mut tx, LIVE, &[client_id.to_owned()])
            .await?
            .remove(client_id)
            .and_then(|(record, _)| record);
        let version = record.as_ref().map_or(0, |r| r.view.version);
        let events = Self::stream_range(&mut tx, client_id, version, u64::MAX).await?;
        if events.is_empty() {
            return Ok(record);
        }
        let mut record = record;
        for event in &events {
            record = Some(ClientRecord::apply(record, event)?);
        }
        if let Some(record) = &record {
            Self::save_records(&mut tx, LIVE, &[record]).await?;
        }
        tx.commit().await?;
        Ok(record)
    }

    async fn project_batch(&self, limit: usize) -> Result<Batch, ReadError> {
        // Read outside the batch's transaction: on PostgreSQL the barrier holds an exclusive
        // lock until the end of the transaction that takes it.
        let head = self.head().await?;
        let mut tx = self.begin_projection().await?;
        let checkpoint = Self::checkpoint_of(&mut tx, LIVE.projection).await?;
        if checkpoint >= head {
            return Ok(Batch {
                events: 0,
                parked: 0,
                checkpoint,
                records: Vec::new(),
            });
        }
        let rows = Self::feed_rows(&mut tx, checkpoint, head, limit).await?;
        let count = rows.len();
        // Fewer than asked: everything up to the head is applied (positions between are
        // rolled-back transactions).
        let reached = match rows.last() {
            Some(last) if count >= limit => last.position,
            _ => head,
        };
        let applied = Self::apply_feed_rows(&mut tx, LIVE, rows, true).await?;
        advance_checkpoint(LIVE.projection, reached)
            .execute(&mut tx)
            .await?;
        tx.commit().await?;
        Ok(Batch {
            events: count,
            parked: applied.parked,
            checkpoint: reached,
            records: applied.records,
        })
    }

    async fn try_lease(&self) -> Result<Option<Box<dyn ProjectorLease>>, ReadError> {
        Ok(DB::try_lease(&self.pool, Lease::Projector).await?)
    }

    async fn wait_for_events(&self, timeout: Duration) {
        DB::wait(&self.waiter, &self.pool, timeout).await;
    }
}
