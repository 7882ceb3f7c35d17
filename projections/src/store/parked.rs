//! The projector's status and the events it parked: listing them, and trying them again
//! with the upcasters of this build.

use std::collections::BTreeMap;

use async_trait::async_trait;

use super::{
    ParkedEvent, ParkedEvents, Projection, ProjectorStatus, ReadError, RetryReport, SqlReadStore,
    GENERATION, LIVE, NEXT_GENERATION, SELECT_CHECKPOINT,
};
use registry_sql::{Backend, Engine, Statement};

/// The latest committed position, without the feed barrier (for status and metrics, which
/// must never make writers wait).
const LATEST_POSITION: &str = "select coalesce(max(global_position), 0) from events";
const SELECT_PARKED: &str = "select position, client_id, sequence, event_type, error, attempts \
     from projection_failures where projection = $1 order by position";
const COUNT_PARKED: &str = "select count(*) from projection_failures where projection = $1";
const UNPARK: &str = "delete from projection_failures \
     where projection = $1 and client_id = $2 and sequence <= $3";
const TRIED_AGAIN: &str = "update projection_failures \
     set attempts = attempts + 1, error = $3 where projection = $1 and client_id = $2";

/// A row of `projection_failures`.
fn parked_event<DB: Engine>(row: &DB::Row) -> Result<ParkedEvent, ReadError> {
    Ok(ParkedEvent {
        position: DB::get(row, "position")?,
        client_id: DB::get(row, "client_id")?,
        sequence: DB::get(row, "sequence")?,
        event_type: DB::get(row, "event_type")?,
        error: DB::get(row, "error")?,
        attempts: DB::get(row, "attempts")?,
    })
}

impl<DB: Backend> SqlReadStore<DB> {
    /// Projects the `count` parked events of one client again, counting them in `report`;
    /// returns why some are still parked (`None`: none is).
    async fn retry_client(
        &self,
        client_id: &str,
        count: u64,
        report: &mut RetryReport,
    ) -> Result<Option<String>, ReadError> {
        let error = match self.catch_up(client_id).await {
            Ok(record) => {
                let version = record.map_or(0, |r| r.view.version);
                let resolved = Statement::new(UNPARK)
                    .bind(LIVE.projection)
                    .bind(client_id)
                    .bind(i64::try_from(version).unwrap_or(i64::MAX))
                    .execute(&self.pool)
                    .await?;
                report.resolved += resolved;
                let left = count.saturating_sub(resolved);
                report.still_parked += left;
                if left == 0 {
                    return Ok(None);
                }
                "the client's rows still stop before these events".to_owned()
            }
            Err(ReadError::Decode(error)) => {
                report.still_parked += count;
                error.to_string()
            }
            Err(ReadError::Apply(error)) => {
                report.still_parked += count;
                error.to_string()
            }
            Err(other) => return Err(other),
        };
        Ok(Some(error))
    }
}

#[async_trait]
impl<DB: Backend> ParkedEvents for SqlReadStore<DB> {
    async fn projector_status(&self) -> Result<ProjectorStatus, ReadError> {
        let head: i64 = Statement::new(LATEST_POSITION).one(&self.pool).await?;
        let checkpoint: Option<i64> = Statement::new(SELECT_CHECKPOINT)
            .bind(LIVE.projection)
            .scalar(&self.pool)
            .await?;
        let checkpoint = checkpoint.unwrap_or(0);
        let parked: i64 = Statement::new(COUNT_PARKED)
            .bind(LIVE.projection)
            .one(&self.pool)
            .await?;
        Ok(ProjectorStatus {
            checkpoint,
            head,
            lag: u64::try_from(head - checkpoint).unwrap_or_default(),
            parked: u64::try_from(parked).unwrap_or_default(),
        })
    }

    async fn parked(&self) -> Result<Vec<ParkedEvent>, ReadError> {
        let rows = Statement::new(SELECT_PARKED)
            .bind(LIVE.projection)
            .rows(&self.pool)
            .await?;
        rows.iter().map(parked_event::<DB>).collect()
    }

    async fn retry_parked(&self) -> Result<RetryReport, ReadError> {
        let parked = self.parked().await?;
        let mut clients: BTreeMap<String, u64> = BTreeMap::new();
        for event in &parked {
            *clients.entry(event.client_id.clone()).or_default() += 1;
        }
        let mut report = RetryReport::default();
        for (client_id, count) in clients {
            let Some(error) = self.retry_client(&client_id, count, &mut report).await? else {
                continue;
            };
            Statement::new(TRIED_AGAIN)
                .bind(LIVE.projection)
                .bind(&client_id)
                .bind(error)
                .execute(&self.pool)
                .await?;
        }
        if report.resolved > 0 {
            // The feed does not show these rows changing: tell the search indexes.
            Statement::new(NEXT_GENERATION)
                .bind(GENERATION)
                .execute(&self.pool)
                .await?;
        }
        Ok(report)
    }
}
