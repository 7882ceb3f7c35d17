//! Whole filtered lists from one snapshot: the list's rows (xlsx, pdf) and the clients'
//! documents (clients as code), in batches to a channel that may go away.

use async_trait::async_trait;
use sqlx::types::Json;
use tokio::sync::mpsc::Sender;

use super::list::count_matching;
use super::{ExportReads, FeedReads, ReadError, SqlReadStore};
use crate::list::{Cursor, ListItem, ListQuery};
use crate::snapshot::{Chunk, ViewChunk, EXPORT_BATCH};
use crate::view::ClientView;
use registry_sql::{Backend, Engine, Statement, Transaction};

impl<DB: Backend> SqlReadStore<DB> {
    /// Opens one snapshot of the list's rows that `query` matches, for an export.
    async fn batches(&self, query: &ListQuery) -> Result<Batches<DB>, ReadError> {
        let head = self.head().await?;
        let mut tx = self.begin_snapshot().await?;
        let position = Self::complete_position(&mut tx, head).await?;
        let total: i64 = count_matching(query).one(&mut tx).await?;
        Ok(Batches {
            tx,
            page: ListQuery {
                limit: EXPORT_BATCH,
                after: None,
                ..query.clone()
            },
            more: true,
            position,
            total: u64::try_from(total).unwrap_or_default(),
        })
    }

    /// The detail documents of the live clients among `items`, in their order.
    async fn views_of(
        tx: &mut Transaction<DB>,
        items: &[ListItem],
    ) -> Result<Vec<ClientView>, ReadError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let mut select = Statement::new(
            "select client_id, document from client_detail where not deleted and client_id in ",
        );
        select.push_list(items.iter().map(|item| &item.client_id));
        let mut by_id = std::collections::HashMap::new();
        for row in select.rows(tx).await? {
            let Json(view): Json<ClientView> = DB::get(&row, "document")?;
            by_id.insert(DB::get::<String>(&row, "client_id")?, view);
        }
        Ok(items
            .iter()
            .filter_map(|i| by_id.remove(&i.client_id))
            .collect())
    }
}

/// A list export in progress: one snapshot of the rows a query matches, read a batch at a
/// time in the list's sort.
struct Batches<DB: Engine> {
    tx: Transaction<DB>,
    page: ListQuery,
    more: bool,
    /// The feed position the snapshot reflects.
    position: i64,
    /// The rows the query matches in it.
    total: u64,
}

impl<DB: Backend> Batches<DB> {
    /// The next batch (`None`: the last was read), in the same snapshot.
    async fn next(&mut self) -> Result<Option<Vec<ListItem>>, ReadError> {
        if !self.more {
            return Ok(None);
        }
        let batch = usize::try_from(EXPORT_BATCH).unwrap_or(usize::MAX);
        let mut items = SqlReadStore::<DB>::page_rows(&mut self.tx, &self.page).await?;
        self.more = items.len() > batch;
        items.truncate(batch);
        self.page.after = items.last().map(|last| Cursor::after(last, self.page.sort));
        Ok(Some(items))
    }
}

#[async_trait]
impl<DB: Backend> ExportReads for SqlReadStore<DB> {
    async fn export_list(&self, query: &ListQuery, sink: Sender<Chunk>) -> Result<(), ReadError> {
        let mut batches = self.batches(query).await?;
        let (position, total) = (batches.position, batches.total);
        if sink.send(Chunk::Start { position, total }).await.is_err() {
            return Ok(());
        }
        while let Some(items) = batches.next().await? {
            if sink.send(Chunk::Rows(items)).await.is_err() {
                break;
            }
        }
        Ok(batches.tx.commit().await?)
    }

    async fn export_views(
        &self,
        query: &ListQuery,
        sink: Sender<ViewChunk>,
    ) -> Result<(), ReadError> {
        let mut batches = self.batches(query).await?;
        let (position, total) = (batches.position, batches.total);
        if sink
            .send(ViewChunk::Start { position, total })
            .await
            .is_err()
        {
            return Ok(());
        }
        while let Some(items) = batches.next().await? {
            let views = Self::views_of(&mut batches.tx, &items).await?;
            if sink.send(ViewChunk::Views(views)).await.is_err() {
                break;
            }
        }
        Ok(batches.tx.commit().await?)
    }
}
