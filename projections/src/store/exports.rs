//! Whole filtered lists from one snapshot: the list's rows (xlsx, pdf) and the clients'
//! documents (clients as code), in batches to a channel that may go away.

use async_trait::async_trait;
use sqlx::types::Json;
use tokio::sync::mpsc::Sender;

use super::{ExportReads, ReadError, SqlReadStore};
use crate::list::{ListItem, ListQuery};
use crate::snapshot::{Chunk, ViewChunk, EXPORT_BATCH};
use crate::sql::{Backend, Statement, Transaction};
use crate::view::ClientView;

impl<DB: Backend> SqlReadStore<DB> {
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

#[async_trait]
impl<DB: Backend> ExportReads for SqlReadStore<DB> {
    async fn export_list(&self, query: &ListQuery, sink: Sender<Chunk>) -> Result<(), ReadError> {
        let (mut tx, position, total) = self.counted_snapshot(query).await?;
        if sink.send(Chunk::Start { position, total }).await.is_err() {
            return Ok(());
        }
        let mut page = ListQuery {
            limit: EXPORT_BATCH,
            after: None,
            ..query.clone()
        };
        loop {
            let (items, more) = Self::next_batch(&mut tx, &mut page).await?;
            if sink.send(Chunk::Rows(items)).await.is_err() || !more {
                break;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn export_views(
        &self,
        query: &ListQuery,
        sink: Sender<ViewChunk>,
    ) -> Result<(), ReadError> {
        let (mut tx, position, total) = self.counted_snapshot(query).await?;
        if sink
            .send(ViewChunk::Start { position, total })
            .await
            .is_err()
        {
            return Ok(());
        }
        let mut page = ListQuery {
            limit: EXPORT_BATCH,
            after: None,
            ..query.clone()
        };
        loop {
            let (items, more) = Self::next_batch(&mut tx, &mut page).await?;
            let views = Self::views_of(&mut tx, &items).await?;
            if sink.send(ViewChunk::Views(views)).await.is_err() || !more {
                break;
            }
        }
        tx.commit().await?;
        Ok(())
    }
}
