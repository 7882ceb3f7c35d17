//! Reading the client rows: one client, a page of the list, a whole filtered list from one
//! snapshot (exports), every row (the search index's load), and the feed position each of
//! these is known to reflect.

use sqlx::types::Json;
use sqlx::{QueryBuilder, Row};
use tokio::sync::mpsc::Sender;

use super::projection::record_from_row;
use super::{storable, Dialect, ReadError, GENERATION, LIVE, POSTGRES, SQLITE};
use crate::list::{ClientPage, Cursor, CursorValue, ListItem, ListQuery, SortKey};
use crate::snapshot::{Chunk, IndexRow, IndexSnapshot, ViewChunk, EXPORT_BATCH};
use crate::view::{ClientRecord, ClientView, ListRow};

const SELECT_RECORD: &str = "select document, deleted, last_position from client_detail \
     where client_id = $1";

const SELECT_DETAIL: &str =
    "select document from client_detail where client_id = $1 and not deleted";

const SELECT_INDEX_ROWS: &str = "select d.client_id, d.version, d.deleted, l.client_name, \
     l.name_key, l.client_uri, l.enabled, l.grant_types, l.search_text, l.created_at, \
     l.updated_at from client_detail d left join client_list l on l.client_id = d.client_id";

/// The first event in `($2, $3]` that the client rows do not reflect and the projection has
/// not parked (a parked event will not be reflected; waiting for it would stop the position
/// for good).
const FIRST_UNPROJECTED: &str = "select min(e.global_position) from events e \
     left join client_detail d on d.client_id = e.aggregate_id \
     where e.global_position > $2 and e.global_position <= $3 \
     and (d.version is null or d.version < e.sequence) \
     and not exists (select 1 from projection_failures f \
         where f.projection = $1 and f.position = e.global_position)";

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

macro_rules! query_methods {
    ($store:ty, $db:ty, $dialect:expr) => {
        impl $store {
            /// Opens a read-only transaction that sees one snapshot of the client tables.
            async fn begin_snapshot(&self) -> Result<sqlx::Transaction<'static, $db>, ReadError> {
                let dialect: &Dialect = &$dialect;
                let mut tx = self.begin_detached(dialect.begin_snapshot).await?;
                if let Some(lock) = dialect.lock_snapshot_tables {
                    sqlx::query(lock).execute(&mut *tx).await?;
                }
                Ok(tx)
            }

            /// See [`super::ReadStore::client_record`].
            pub(super) async fn record_of(
                &self,
                client_id: &str,
            ) -> Result<Option<ClientRecord>, ReadError> {
                if !storable(client_id) {
                    return Ok(None);
                }
                let row = sqlx::query(SELECT_RECORD)
                    .bind(client_id)
                    .fetch_optional(&self.pool)
                    .await?;
                row.map(|row| record_from_row(&row)).transpose()
            }

            /// See [`super::ReadStore::client`].
            pub(super) async fn detail_of(
                &self,
                client_id: &str,
            ) -> Result<Option<ClientView>, ReadError> {
                if !storable(client_id) {
                    return Ok(None);
                }
                let document: Option<Json<ClientView>> = sqlx::query_scalar(SELECT_DETAIL)
                    .bind(client_id)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(document.map(|Json(view)| view))
            }

            /// The last feed position up to which the rows `tx` sees reflect every event
            /// (or parked it): the checkpoint (read in the same snapshot as the rows), moved
            /// forward over the events after it that the rows already reflect (inline
            /// projections), up to `head`. `head` is the final position read *before* the
            /// snapshot began, so every event up to it is visible in the snapshot. Never
            /// `max(last_position)`: on PostgreSQL a row for position 101 can be written while
            /// 100 (another client) is committed and not projected yet.
            async fn complete_position(
                tx: &mut sqlx::Transaction<'static, $db>,
                head: i64,
            ) -> Result<i64, ReadError> {
                let checkpoint = Self::checkpoint_of(tx, LIVE.projection).await?;
                if checkpoint >= head {
                    return Ok(checkpoint);
                }
                let first_missing: Option<i64> = sqlx::query_scalar(FIRST_UNPROJECTED)
                    .bind(LIVE.projection)
                    .bind(checkpoint)
                    .bind(head)
                    .fetch_one(&mut **tx)
                    .await?;
                Ok(first_missing.map_or(head, |missing| (missing - 1).max(checkpoint)))
            }

            /// See [`super::ReadStore::index_rows`].
            pub(super) async fn load_index_rows(&self) -> Result<IndexSnapshot, ReadError> {
                let head = self.safe_head().await?;
                let mut tx = self.begin_snapshot().await?;
                let position = Self::complete_position(&mut tx, head).await?;
                let generation = Self::checkpoint_of(&mut tx, GENERATION).await?;
                let rows = sqlx::query(SELECT_INDEX_ROWS).fetch_all(&mut *tx).await?;
                tx.commit().await?;
                let mut out = Vec::with_capacity(rows.len());
                for row in rows {
                    let client_id: String = row.try_get("client_id")?;
                    let version: i64 = row.try_get("version")?;
                    let deleted: bool = row.try_get("deleted")?;
                    let name: Option<String> = row.try_get("client_name")?;
                    let list = match (deleted, name) {
                        (false, Some(client_name)) => {
                            let Json(grant_types): Json<Vec<String>> =
                                row.try_get("grant_types")?;
                            Some(ListRow {
                                client_id: client_id.clone(),
                                client_name,
                                name_key: row.try_get("name_key")?,
                                client_uri: row.try_get("client_uri")?,
                                enabled: row.try_get("enabled")?,
                                grant_types,
                                search_text: row.try_get("search_text")?,
                                created_at: row.try_get("created_at")?,
                                updated_at: row.try_get("updated_at")?,
                            })
                        }
                        _ => None,
                    };
                    out.push(IndexRow {
                        client_id,
                        version: u64::try_from(version).unwrap_or_default(),
                        row: list,
                    });
                }
                Ok(IndexSnapshot {
                    rows: out,
                    position,
                    generation,
                })
            }

            /// See [`super::ReadStore::generation`].
            pub(super) async fn generation_now(&self) -> Result<i64, ReadError> {
                let generation: Option<i64> = sqlx::query_scalar(
                    "select position from projection_checkpoints where projection = $1",
                )
                .bind(GENERATION)
                .fetch_optional(&self.pool)
                .await?;
                Ok(generation.unwrap_or(0))
            }

            /// See [`super::ReadStore::list`].
            pub(super) async fn list_page(
                &self,
                query: &ListQuery,
            ) -> Result<ClientPage, ReadError> {
                let mut count =
                    QueryBuilder::<$db>::new("select count(*) from client_list where true");
                push_filters!(count, query);
                let total: i64 = count.build_query_scalar().fetch_one(&self.pool).await?;
                let items = Self::page_rows(&self.pool, query).await?;
                Ok(ClientPage::from_rows(
                    items,
                    u64::try_from(total).unwrap_or_default(),
                    query,
                ))
            }

            /// See [`super::ReadStore::export_list`].
            pub(super) async fn export_snapshot(
                &self,
                query: &ListQuery,
                sink: Sender<Chunk>,
            ) -> Result<(), ReadError> {
                let head = self.safe_head().await?;
                let mut tx = self.begin_snapshot().await?;
                let position = Self::complete_position(&mut tx, head).await?;
                let mut count =
                    QueryBuilder::<$db>::new("select count(*) from client_list where true");
                push_filters!(count, query);
                let total: i64 = count.build_query_scalar().fetch_one(&mut *tx).await?;
                let start = Chunk::Start {
                    position,
                    total: u64::try_from(total).unwrap_or_default(),
                };
                if sink.send(start).await.is_err() {
                    return Ok(());
                }
                let mut page = ListQuery {
                    limit: EXPORT_BATCH,
                    after: None,
                    ..query.clone()
                };
                loop {
                    let mut items = Self::page_rows(&mut *tx, &page).await?;
                    let more = items.len() > usize::try_from(EXPORT_BATCH).unwrap_or(usize::MAX);
                    items.truncate(usize::try_from(EXPORT_BATCH).unwrap_or(usize::MAX));
                    page.after = items.last().map(|last| Cursor::after(last, page.sort));
                    if sink.send(Chunk::Rows(items)).await.is_err() || !more {
                        break;
                    }
                }
                tx.commit().await?;
                Ok(())
            }

            /// See [`super::ReadStore::clients`].
            pub(super) async fn clients_by_id(
                &self,
                ids: &[String],
            ) -> Result<Vec<ClientRecord>, ReadError> {
                let mut records = Vec::with_capacity(ids.len());
                let storable_ids: Vec<&String> = ids.iter().filter(|id| storable(id)).collect();
                for batch in storable_ids.chunks(1000) {
                    let mut select = QueryBuilder::<$db>::new(
                        "select document, deleted, last_position from client_detail \
                         where client_id in (",
                    );
                    let mut separated = select.separated(", ");
                    for id in batch {
                        separated.push_bind((*id).clone());
                    }
                    select.push(")");
                    for row in select.build().fetch_all(&self.pool).await? {
                        records.push(record_from_row(&row)?);
                    }
                }
                Ok(records)
            }

            /// See [`super::ReadStore::export_views`]: the list's rows pick and order the
            /// clients, their detail documents (same snapshot) are what is sent.
            pub(super) async fn export_views_snapshot(
                &self,
                query: &ListQuery,
                sink: Sender<ViewChunk>,
            ) -> Result<(), ReadError> {
                let head = self.safe_head().await?;
                let mut tx = self.begin_snapshot().await?;
                let position = Self::complete_position(&mut tx, head).await?;
                let mut count =
                    QueryBuilder::<$db>::new("select count(*) from client_list where true");
                push_filters!(count, query);
                let total: i64 = count.build_query_scalar().fetch_one(&mut *tx).await?;
                let start = ViewChunk::Start {
                    position,
                    total: u64::try_from(total).unwrap_or_default(),
                };
                if sink.send(start).await.is_err() {
                    return Ok(());
                }
                let mut page = ListQuery {
                    limit: EXPORT_BATCH,
                    after: None,
                    ..query.clone()
                };
                loop {
                    let mut items = Self::page_rows(&mut *tx, &page).await?;
                    let more = items.len() > usize::try_from(EXPORT_BATCH).unwrap_or(usize::MAX);
                    items.truncate(usize::try_from(EXPORT_BATCH).unwrap_or(usize::MAX));
                    page.after = items.last().map(|last| Cursor::after(last, page.sort));
                    let mut views = Vec::with_capacity(items.len());
                    if !items.is_empty() {
                        let mut select = QueryBuilder::<$db>::new(
                            "select client_id, document from client_detail where not deleted \
                             and client_id in (",
                        );
                        let mut ids = select.separated(", ");
                        for item in &items {
                            ids.push_bind(item.client_id.clone());
                        }
                        select.push(")");
                        let rows: Vec<(String, Json<ClientView>)> =
                            select.build_query_as().fetch_all(&mut *tx).await?;
                        let mut by_id: std::collections::HashMap<String, ClientView> = rows
                            .into_iter()
                            .map(|(id, Json(view))| (id, view))
                            .collect();
                        views.extend(items.iter().filter_map(|i| by_id.remove(&i.client_id)));
                    }
                    if sink.send(ViewChunk::Views(views)).await.is_err() || !more {
                        break;
                    }
                }
                tx.commit().await?;
                Ok(())
            }

            /// One page of the list (up to `limit + 1` rows, the extra one only says there
            /// is more).
            async fn page_rows<'e, E>(
                executor: E,
                query: &ListQuery,
            ) -> Result<Vec<ListItem>, ReadError>
            where
                E: sqlx::Executor<'e, Database = $db>,
            {
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
                let rows = page.build().fetch_all(executor).await?;
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
                Ok(items)
            }
        }
    };
}

query_methods!(super::PostgresReadStore, sqlx::Postgres, POSTGRES);
query_methods!(super::SqliteReadStore, sqlx::Sqlite, SQLITE);
