//! One client: its detail, its record (deleted ones too), its events; several by id.

use async_trait::async_trait;
use sqlx::types::Json;

use super::projection::record_from_row;
use super::{storable, ClientReads, ReadError, SqlReadStore};
use crate::stored::StoredEvent;
use crate::view::{ClientRecord, ClientView};
use registry_sql::{Backend, Statement};

const SELECT_RECORD: &str = "select document, deleted, last_position from client_detail \
     where client_id = $1";

const SELECT_DETAIL: &str =
    "select document from client_detail where client_id = $1 and not deleted";

#[async_trait]
impl<DB: Backend> ClientReads for SqlReadStore<DB> {
    async fn client_events(&self, client_id: &str) -> Result<Vec<StoredEvent>, ReadError> {
        if !storable(client_id) {
            return Ok(Vec::new());
        }
        Self::stream_range(&self.pool, client_id, 0, u64::MAX).await
    }

    async fn client(&self, client_id: &str) -> Result<Option<ClientView>, ReadError> {
        if !storable(client_id) {
            return Ok(None);
        }
        let document: Option<Json<ClientView>> = Statement::new(SELECT_DETAIL)
            .bind(client_id)
            .scalar(&self.pool)
            .await?;
        Ok(document.map(|Json(view)| view))
    }

    async fn client_record(&self, client_id: &str) -> Result<Option<ClientRecord>, ReadError> {
        if !storable(client_id) {
            return Ok(None);
        }
        let row = Statement::new(SELECT_RECORD)
            .bind(client_id)
            .row(&self.pool)
            .await?;
        row.map(|row| record_from_row::<DB>(&row)).transpose()
    }

    async fn clients(&self, ids: &[String]) -> Result<Vec<ClientRecord>, ReadError> {
        let mut records = Vec::with_capacity(ids.len());
        let storable_ids: Vec<&String> = ids.iter().filter(|id| storable(id)).collect();
        for batch in storable_ids.chunks(1000) {
            let mut select = Statement::new(
                "select document, deleted, last_position from client_detail where client_id in ",
            );
            select.push_list(batch.iter().copied());
            for row in select.rows(&self.pool).await? {
                records.push(record_from_row::<DB>(&row)?);
            }
        }
        Ok(records)
    }
}
