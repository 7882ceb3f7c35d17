//! PostgreSQL: session advisory locks for the leases, `LISTEN registry_events` for other
//! processes' commits.

use std::time::Duration;

use sqlx::postgres::{PgListener, PgQueryResult, PgRow};
use sqlx::{PgPool, Postgres, Row};

use super::dialect::{Dialect, POSTGRES};
use super::lease::{ConnectionLease, Lease, PgWaiter, ProjectorLease};
use super::{Column, Engine, NodeHash};

impl Engine for Postgres {
    const DIALECT: Dialect = POSTGRES;

    type Waiter = PgWaiter;

    fn get<T: Column>(row: &PgRow, column: &str) -> Result<T, sqlx::Error> {
        row.try_get(column)
    }

    fn first<T: Column>(row: &PgRow) -> Result<T, sqlx::Error> {
        row.try_get(0)
    }

    fn rows_affected(result: &PgQueryResult) -> u64 {
        result.rows_affected()
    }

    async fn try_lease(
        pool: &PgPool,
        lease: Lease,
    ) -> Result<Option<Box<dyn ProjectorLease>>, sqlx::Error> {
        // A connection of its own, out of the pool: the lock lives as long as it.
        let mut connection = pool.acquire().await?.detach();
        let taken: bool = sqlx::query_scalar("select pg_try_advisory_lock($1)")
            .bind(lease.lock_key())
            .fetch_one(&mut connection)
            .await?;
        Ok(taken.then(|| {
            Box::new(ConnectionLease::<Postgres> { connection }) as Box<dyn ProjectorLease>
        }))
    }

    /// One round trip and one statement text (its plan cached): a proof's few dozen nodes by
    /// their keys, as arrays.
    async fn node_hashes(
        pool: &PgPool,
        leaves: Vec<i64>,
        inner: Vec<(i64, i64)>,
    ) -> Result<Vec<NodeHash>, sqlx::Error> {
        let (levels, indexes): (Vec<i64>, Vec<i64>) = inner.into_iter().unzip();
        sqlx::query_as(
            "select 0::bigint as level, leaf_index as node_index, leaf_hash as hash \
             from seal_leaves where leaf_index = any($1) \
             union all \
             select n.level, n.node_index, n.hash from seal_nodes n \
             join unnest($2::bigint[], $3::bigint[]) as k(level, node_index) \
             using (level, node_index)",
        )
        .bind(leaves)
        .bind(levels)
        .bind(indexes)
        .fetch_all(pool)
        .await
    }

    /// Returns on the next `NOTIFY registry_events`, or after `timeout`.
    async fn wait(waiter: &PgWaiter, pool: &PgPool, timeout: Duration) {
        let mut guard = waiter.0.lock().await;
        if guard.is_none() {
            match PgListener::connect_with(pool).await {
                Ok(mut listener) => {
                    if listener.listen("registry_events").await.is_ok() {
                        *guard = Some(listener);
                    }
                }
                Err(error) => tracing::warn!(%error, "cannot listen for new events"),
            }
        }
        match guard.as_mut() {
            Some(listener) => match tokio::time::timeout(timeout, listener.try_recv()).await {
                Ok(Ok(Some(_))) | Err(_) => {}
                // Connection lost: reconnect next time.
                Ok(Ok(None) | Err(_)) => *guard = None,
            },
            None => tokio::time::sleep(timeout).await,
        }
    }
}
