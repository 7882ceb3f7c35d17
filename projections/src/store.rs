//! The read models in SQL, on PostgreSQL and SQLite.
//!
//! Both backends run the same statements (sqlx accepts `$N` placeholders on SQLite too); they
//! differ only in how a client's rows are locked while its events are applied, which
//! [`Dialect`] names. The code is written once, in `read_store_impl!`, and instantiated for each
//! pool type: sqlx's generic bounds for "any database" are longer than the code itself.

use async_trait::async_trait;
use registry_domain::upcasters;
use sqlx::types::Json;
use sqlx::{PgPool, QueryBuilder, Row, SqlitePool};

use crate::list::{ClientPage, CursorValue, ListItem, ListQuery, SortKey};
use crate::stored::{DecodeError, RawEvent};
use crate::view::{ApplyError, ClientRecord, ClientView, ListRow};

/// Why a read model could not be read or updated.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The database failed.
    #[error("read model database error")]
    Database(#[from] sqlx::Error),
    /// A stored event could not be decoded.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A stored event could not be applied.
    #[error(transparent)]
    Apply(#[from] ApplyError),
}

/// The read side: applies a client's new events to its rows, and answers queries.
#[async_trait]
pub trait ReadStore: Send + Sync {
    /// Applies every event of `client_id` that its rows do not reflect yet, in one
    /// transaction, under a per-client lock. Idempotent: running it twice, or concurrently,
    /// applies each event once.
    ///
    /// # Errors
    /// [`ReadError`] when the database fails or a stored event cannot be decoded or applied.
    async fn catch_up(&self, client_id: &str) -> Result<(), ReadError>;

    /// The detail of a live client; `None` when unknown or deleted.
    ///
    /// # Errors
    /// [`ReadError::Database`].
    async fn client(&self, client_id: &str) -> Result<Option<ClientView>, ReadError>;

    /// The client exactly as it was at `version` (after its `version`-th event), computed by
    /// replaying its stream; `None` when it did not exist or was deleted then.
    ///
    /// # Errors
    /// [`ReadError`] when the database fails or a stored event cannot be decoded or applied.
    async fn client_at_version(
        &self,
        client_id: &str,
        version: u64,
    ) -> Result<Option<ClientView>, ReadError>;

    /// One page of the client list and the total count of matches.
    ///
    /// # Errors
    /// [`ReadError::Database`].
    async fn list(&self, query: &ListQuery) -> Result<ClientPage, ReadError>;
}

/// How a backend serialises the projection of one client.
struct Dialect {
    /// Opens the projection transaction.
    begin: &'static str,
    /// Locks one client's rows for the transaction (`$1`: a key naming the client), if the
    /// `begin` statement does not already serialise writers.
    lock_client: Option<&'static str>,
}

/// PostgreSQL: a transaction-scoped advisory lock per client id; rows of other clients are
/// projected concurrently.
const POSTGRES: Dialect = Dialect {
    begin: "BEGIN",
    lock_client: Some("select pg_advisory_xact_lock(hashtextextended($1, 0))"),
};

/// SQLite: `BEGIN IMMEDIATE` takes the database write lock up front. A deferred transaction
/// that reads and then writes fails with SQLITE_BUSY when another writer commits in between.
const SQLITE: Dialect = Dialect {
    begin: "BEGIN IMMEDIATE",
    lock_client: None,
};

const SELECT_RECORD: &str = "select document, deleted, last_position from client_detail \
     where client_id = $1";

const SELECT_EVENTS_UP_TO: &str = "select aggregate_id, sequence, global_position, event_type, \
     event_version, payload, metadata, recorded_at from events \
     where aggregate_type = 'Client' and aggregate_id = $1 and sequence <= $2 order by sequence";

const SELECT_EVENTS_AFTER: &str = "select aggregate_id, sequence, global_position, event_type, \
     event_version, payload, metadata, recorded_at from events \
     where aggregate_type = 'Client' and aggregate_id = $1 and sequence > $2 order by sequence";

const UPSERT_DETAIL: &str = "insert into client_detail \
     (client_id, version, last_position, deleted, document, created_at, updated_at) \
     values ($1, $2, $3, $4, $5, $6, $7) \
     on conflict (client_id) do update set version = excluded.version, \
     last_position = excluded.last_position, deleted = excluded.deleted, \
     document = excluded.document, created_at = excluded.created_at, \
     updated_at = excluded.updated_at \
     where client_detail.version < excluded.version";

const DELETE_LIST_ROW: &str = "delete from client_list where client_id = $1";

const UPSERT_LIST_ROW: &str = "insert into client_list \
     (client_id, client_name, name_key, client_uri, enabled, grant_types, search_text, \
      created_at, updated_at) \
     values ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
     on conflict (client_id) do update set client_name = excluded.client_name, \
     name_key = excluded.name_key, client_uri = excluded.client_uri, \
     enabled = excluded.enabled, grant_types = excluded.grant_types, \
     search_text = excluded.search_text, created_at = excluded.created_at, \
     updated_at = excluded.updated_at";

const SELECT_DETAIL: &str =
    "select document from client_detail where client_id = $1 and not deleted";

/// Appends the search and filter conditions of `query` (after a `WHERE true`).
macro_rules! push_filters {
    ($qb:expr, $query:expr) => {
        if let Some(pattern) = $query.like_pattern() {
            $qb.push(" and search_text like ")
                .push_bind(pattern)
                .push(" escape '\\'");
        }
        if let Some(enabled) = $query.enabled {
            $qb.push(" and enabled = ").push_bind(enabled);
        }
    };
}

/// Reads an `events` row into a [`RawEvent`].
macro_rules! raw_event {
    ($row:expr) => {
        RawEvent {
            aggregate_id: $row.try_get("aggregate_id")?,
            sequence: $row.try_get("sequence")?,
            position: $row.try_get("global_position")?,
            event_type: $row.try_get("event_type")?,
            event_version: $row.try_get("event_version")?,
            payload: $row.try_get("payload")?,
            metadata: $row.try_get("metadata")?,
            recorded_at: $row.try_get("recorded_at")?,
        }
    };
}

macro_rules! read_store_impl {
    ($store:ident, $pool:ty, $db:ty, $dialect:expr) => {
        /// The read models on this backend.
        #[derive(Debug, Clone)]
        pub struct $store {
            pool: $pool,
        }

        impl $store {
            /// Read models in the database behind `pool` (already migrated).
            pub fn new(pool: $pool) -> Self {
                Self { pool }
            }
        }

        #[async_trait]
        impl ReadStore for $store {
            #[tracing::instrument(skip_all, fields(client_id = %client_id))]
            async fn catch_up(&self, client_id: &str) -> Result<(), ReadError> {
                let dialect: &Dialect = &$dialect;
                let mut tx = self.pool.begin_with(dialect.begin).await?;
                if let Some(lock) = dialect.lock_client {
                    sqlx::query(lock)
                        .bind(format!("client:{client_id}"))
                        .execute(&mut *tx)
                        .await?;
                }
                let mut record = match sqlx::query(SELECT_RECORD)
                    .bind(client_id)
                    .fetch_optional(&mut *tx)
                    .await?
                {
                    None => None,
                    Some(row) => {
                        let Json(view): Json<ClientView> = row.try_get("document")?;
                        Some(ClientRecord {
                            view,
                            deleted: row.try_get("deleted")?,
                            last_position: row.try_get("last_position")?,
                        })
                    }
                };
                let version = record.as_ref().map_or(0, |r| r.view.version);
                let rows = sqlx::query(SELECT_EVENTS_AFTER)
                    .bind(client_id)
                    .bind(i64::try_from(version).unwrap_or(i64::MAX))
                    .fetch_all(&mut *tx)
                    .await?;
                if rows.is_empty() {
                    return Ok(());
                }
                let upcasters = upcasters();
                for row in rows {
                    let raw = raw_event!(row);
                    record = Some(ClientRecord::apply(record, &raw.decode(&upcasters)?)?);
                }
                let Some(record) = record else {
                    return Ok(());
                };
                let view = &record.view;
                sqlx::query(UPSERT_DETAIL)
                    .bind(client_id)
                    .bind(i64::try_from(view.version).unwrap_or(i64::MAX))
                    .bind(record.last_position)
                    .bind(record.deleted)
                    .bind(Json(view))
                    .bind(view.created_at)
                    .bind(view.updated_at)
                    .execute(&mut *tx)
                    .await?;
                if record.deleted {
                    sqlx::query(DELETE_LIST_ROW)
                        .bind(client_id)
                        .execute(&mut *tx)
                        .await?;
                } else {
                    let row = ListRow::from(view);
                    sqlx::query(UPSERT_LIST_ROW)
                        .bind(&row.client_id)
                        .bind(&row.client_name)
                        .bind(&row.name_key)
                        .bind(&row.client_uri)
                        .bind(row.enabled)
                        .bind(Json(&row.grant_types))
                        .bind(&row.search_text)
                        .bind(row.created_at)
                        .bind(row.updated_at)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            #[tracing::instrument(skip_all, fields(client_id = %client_id))]
            async fn client(&self, client_id: &str) -> Result<Option<ClientView>, ReadError> {
                let document: Option<Json<ClientView>> = sqlx::query_scalar(SELECT_DETAIL)
                    .bind(client_id)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(document.map(|Json(view)| view))
            }

            #[tracing::instrument(skip_all, fields(client_id = %client_id))]
            async fn client_at_version(
                &self,
                client_id: &str,
                version: u64,
            ) -> Result<Option<ClientView>, ReadError> {
                let rows = sqlx::query(SELECT_EVENTS_UP_TO)
                    .bind(client_id)
                    .bind(i64::try_from(version).unwrap_or(i64::MAX))
                    .fetch_all(&self.pool)
                    .await?;
                let upcasters = upcasters();
                let mut record = None;
                for row in rows {
                    let raw = raw_event!(row);
                    record = Some(ClientRecord::apply(record, &raw.decode(&upcasters)?)?);
                }
                Ok(record.filter(|r| !r.deleted).map(|r| r.view))
            }

            #[tracing::instrument(skip_all)]
            async fn list(&self, query: &ListQuery) -> Result<ClientPage, ReadError> {
                let mut count =
                    QueryBuilder::<$db>::new("select count(*) from client_list where true");
                push_filters!(count, query);
                let total: i64 = count.build_query_scalar().fetch_one(&self.pool).await?;

                let column = query.sort.key.column();
                let direction = query.sort.direction();
                let mut page = QueryBuilder::<$db>::new(
                    "select client_id, client_name, client_uri, enabled, grant_types, \
                     created_at, updated_at from client_list where true",
                );
                push_filters!(page, query);
                if let Some(cursor) = &query.after {
                    let operator = query.sort.after_operator();
                    match &cursor.value {
                        CursorValue::Text(text) => {
                            page.push(format!(" and ({column}, client_id) {operator} ("))
                                .push_bind(text.clone())
                                .push(", ")
                                .push_bind(cursor.client_id.clone())
                                .push(")");
                        }
                        CursorValue::Time(time) => {
                            page.push(format!(" and ({column}, client_id) {operator} ("))
                                .push_bind(*time)
                                .push(", ")
                                .push_bind(cursor.client_id.clone())
                                .push(")");
                        }
                        CursorValue::None => {
                            page.push(format!(" and client_id {operator} "))
                                .push_bind(cursor.client_id.clone());
                        }
                    }
                }
                if query.sort.key == SortKey::ClientId {
                    page.push(format!(" order by client_id {direction}"));
                } else {
                    page.push(format!(
                        " order by {column} {direction}, client_id {direction}"
                    ));
                }
                page.push(" limit ").push_bind(i64::from(query.limit) + 1);
                let rows = page.build().fetch_all(&self.pool).await?;
                let mut items = Vec::with_capacity(rows.len());
                for row in rows {
                    let Json(grant_types): Json<Vec<String>> = row.try_get("grant_types")?;
                    items.push(ListItem {
                        client_id: row.try_get("client_id")?,
                        client_name: row.try_get("client_name")?,
                        enabled: row.try_get("enabled")?,
                        client_uri: row.try_get("client_uri")?,
                        grant_types,
                        created_at: row.try_get("created_at")?,
                        updated_at: row.try_get("updated_at")?,
                    });
                }
                Ok(ClientPage::from_rows(
                    items,
                    u64::try_from(total).unwrap_or_default(),
                    query,
                ))
            }
        }
    };
}

read_store_impl!(PostgresReadStore, PgPool, sqlx::Postgres, POSTGRES);
read_store_impl!(SqliteReadStore, SqlitePool, sqlx::Sqlite, SQLITE);
