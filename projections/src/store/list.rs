//! The client list: a page of it (search, filter, sort, keyset cursor), every row for the
//! search index's load, and the feed position a snapshot of the rows is known to reflect.

use async_trait::async_trait;
use sqlx::types::Json;

use super::{FeedReads, ListReads, ReadError, SqlReadStore, GENERATION, LIVE};
use crate::list::{ClientPage, CursorValue, ListItem, ListQuery, SortKey};
use crate::snapshot::{IndexRow, IndexSnapshot};
use crate::view::ListRow;
use registry_sql::{Backend, Engine, Statement, Target, Transaction};

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
fn push_filters(statement: &mut Statement, query: &ListQuery) {
    if let Some(pattern) = query.like_pattern() {
        statement
            .push(" and search_text like ")
            .push_bind(pattern)
            .push(" escape '\\'");
    }
    if let Some(enabled) = query.enabled {
        statement.push(" and enabled = ").push_bind(enabled);
    }
}

/// Counts the list rows matching `query`.
pub(super) fn count_matching(query: &ListQuery) -> Statement {
    let mut count = Statement::new("select count(*) from client_list where true");
    push_filters(&mut count, query);
    count
}

/// The list's columns of a row.
fn list_item<DB: Engine>(row: &DB::Row) -> Result<ListItem, ReadError> {
    let Json(grant_types): Json<Vec<String>> = DB::get(row, "grant_types")?;
    Ok(ListItem {
        client_id: DB::get(row, "client_id")?,
        client_name: DB::get(row, "client_name")?,
        enabled: DB::get(row, "enabled")?,
        client_uri: DB::get(row, "client_uri")?,
        grant_types,
        created_at: DB::get(row, "created_at")?,
        updated_at: DB::get(row, "updated_at")?,
    })
}

/// A row of the search index's load: a detail row, with its list row when live.
fn index_row<DB: Engine>(row: &DB::Row) -> Result<IndexRow, ReadError> {
    let client_id: String = DB::get(row, "client_id")?;
    let version: i64 = DB::get(row, "version")?;
    let deleted: bool = DB::get(row, "deleted")?;
    let name: Option<String> = DB::get(row, "client_name")?;
    let list = match (deleted, name) {
        (false, Some(client_name)) => {
            let Json(grant_types): Json<Vec<String>> = DB::get(row, "grant_types")?;
            Some(ListRow {
                client_id: client_id.clone(),
                client_name,
                name_key: DB::get(row, "name_key")?,
                client_uri: DB::get(row, "client_uri")?,
                enabled: DB::get(row, "enabled")?,
                grant_types,
                search_text: DB::get(row, "search_text")?,
                created_at: DB::get(row, "created_at")?,
                updated_at: DB::get(row, "updated_at")?,
            })
        }
        _ => None,
    };
    Ok(IndexRow {
        client_id,
        version: u64::try_from(version).unwrap_or_default(),
        row: list,
    })
}

/// One page of the list: its rows in the sort, after the cursor, `limit + 1` of them.
fn page_select(query: &ListQuery) -> Statement {
    let column = query.sort.key.column();
    let direction = query.sort.direction();
    let mut page = Statement::new(
        "select client_id, client_name, client_uri, enabled, grant_types, \
         created_at, updated_at from client_list where true",
    );
    push_filters(&mut page, query);
    if let Some(cursor) = &query.after {
        let operator = query.sort.after_operator();
        match &cursor.value {
            CursorValue::Text(text) => {
                page.push(&format!(" and ({column}, client_id) {operator} ("))
                    .push_bind(text.clone())
                    .push(", ")
                    .push_bind(&cursor.client_id)
                    .push(")");
            }
            CursorValue::Time(time) => {
                page.push(&format!(" and ({column}, client_id) {operator} ("))
                    .push_bind(*time)
                    .push(", ")
                    .push_bind(&cursor.client_id)
                    .push(")");
            }
            CursorValue::None => {
                page.push(&format!(" and client_id {operator} "))
                    .push_bind(&cursor.client_id);
            }
        }
    }
    if query.sort.key == SortKey::ClientId {
        page.push(&format!(" order by client_id {direction}"));
    } else {
        page.push(&format!(
            " order by {column} {direction}, client_id {direction}"
        ));
    }
    page.push(" limit ").push_bind(i64::from(query.limit) + 1);
    page
}

impl<DB: Backend> SqlReadStore<DB> {
    /// Opens a read-only transaction that sees one snapshot of the client tables.
    pub(super) async fn begin_snapshot(&self) -> Result<Transaction<DB>, ReadError> {
        let mut tx = self.begin_detached(DB::DIALECT.begin_snapshot).await?;
        if let Some(lock) = DB::DIALECT.lock_snapshot_tables {
            Statement::new(lock).execute(&mut tx).await?;
        }
        Ok(tx)
    }

    /// The last feed position up to which the rows `tx` sees reflect every event (or parked
    /// it): the checkpoint (read in the same snapshot as the rows), moved forward over the
    /// events after it that the rows already reflect (inline projections), up to `head`.
    /// `head` is the final position read *before* the snapshot began, so every event up to it
    /// is visible in the snapshot. Never `max(last_position)`: on PostgreSQL a row for
    /// position 101 can be written while 100 (another client) is committed and not projected
    /// yet.
    pub(super) async fn complete_position(
        tx: &mut Transaction<DB>,
        head: i64,
    ) -> Result<i64, ReadError> {
        let checkpoint = Self::checkpoint_of(tx, LIVE.projection).await?;
        if checkpoint >= head {
            return Ok(checkpoint);
        }
        let first_missing: Option<i64> = Statement::new(FIRST_UNPROJECTED)
            .bind(LIVE.projection)
            .bind(checkpoint)
            .bind(head)
            .one(tx)
            .await?;
        Ok(first_missing.map_or(head, |missing| (missing - 1).max(checkpoint)))
    }

    /// One page of the list (up to `limit + 1` rows, the extra one only says there is more).
    pub(super) async fn page_rows<'c>(
        on: impl Target<'c, Db = DB>,
        query: &ListQuery,
    ) -> Result<Vec<ListItem>, ReadError> {
        let rows = page_select(query).rows(on).await?;
        rows.iter().map(list_item::<DB>).collect()
    }
}

#[async_trait]
impl<DB: Backend> ListReads for SqlReadStore<DB> {
    async fn list(&self, query: &ListQuery) -> Result<ClientPage, ReadError> {
        let total: i64 = count_matching(query).one(&self.pool).await?;
        let items = Self::page_rows(&self.pool, query).await?;
        Ok(ClientPage::from_rows(
            items,
            u64::try_from(total).unwrap_or_default(),
            query,
        ))
    }

    async fn index_rows(&self) -> Result<IndexSnapshot, ReadError> {
        let head = self.head().await?;
        let mut tx = self.begin_snapshot().await?;
        let position = Self::complete_position(&mut tx, head).await?;
        let generation = Self::checkpoint_of(&mut tx, GENERATION).await?;
        let rows = Statement::new(SELECT_INDEX_ROWS).rows(&mut tx).await?;
        tx.commit().await?;
        Ok(IndexSnapshot {
            rows: rows.iter().map(index_row::<DB>).collect::<Result<_, _>>()?,
            position,
            generation,
        })
    }

    async fn generation(&self) -> Result<i64, ReadError> {
        let generation: Option<i64> =
            Statement::new("select position from projection_checkpoints where projection = $1")
                .bind(GENERATION)
                .scalar(&self.pool)
                .await?;
        Ok(generation.unwrap_or(0))
    }
}
