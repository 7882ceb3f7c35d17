//! The sealed log in SQL (migration `sealed_log`): `seal_leaves` (leaf index, event position,
//! leaf hash), `seal_nodes` (the perfect subtrees above the leaves), `seal_tree_heads`. Only
//! the sealer writes them; nothing a writer of events waits on.

use std::collections::HashMap;

use sqlx::{PgPool, QueryBuilder, Row, SqlitePool};

use super::merkle::{Hash, NodeKey};
use super::{LogEvent, TreeHead};
use crate::sql::{Engine, Lease};
use crate::store::{ProjectorLease, ReadError, CLIENTS_PROJECTION};

/// The database of the sealed log.
#[derive(Debug, Clone)]
pub enum SealDb {
    /// PostgreSQL.
    Postgres(PgPool),
    /// SQLite.
    Sqlite(SqlitePool),
}

/// Runs the same body on either pool (sqlx's types differ; the statements do not).
macro_rules! on_pool {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            SealDb::Postgres($pool) => $body,
            SealDb::Sqlite($pool) => $body,
        }
    };
}

/// A sealed leaf: its index, the position of its event, its hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leaf {
    /// Index in the tree (0-based).
    pub index: u64,
    /// The event's global position.
    pub position: i64,
    /// The leaf hash.
    pub hash: Hash,
}

fn hash_of(bytes: &[u8]) -> Result<Hash, ReadError> {
    bytes.try_into().map_err(|_| {
        ReadError::Database(sqlx::Error::Decode("a stored hash is not 32 bytes".into()))
    })
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or_default()
}

const EVENT_COLUMNS: &str = "global_position, aggregate_type, aggregate_id, sequence, event_type, \
     event_version, cast(payload as text) as payload, cast(metadata as text) as metadata";

fn log_event<R: Row>(row: &R) -> Result<LogEvent, sqlx::Error>
where
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> &'r str: sqlx::ColumnIndex<R>,
{
    Ok(LogEvent {
        position: row.try_get("global_position")?,
        stream_type: row.try_get("aggregate_type")?,
        stream_id: row.try_get("aggregate_id")?,
        sequence: row.try_get("sequence")?,
        event_type: row.try_get("event_type")?,
        event_version: row.try_get("event_version")?,
        payload: row.try_get("payload")?,
        metadata: row.try_get("metadata")?,
    })
}

impl SealDb {
    /// Tries to become the one sealer (PostgreSQL: a session advisory lock on a connection of
    /// its own; SQLite: a lock on a file beside the store; either released when its holder
    /// goes).
    ///
    /// # Errors
    /// [`ReadError::Database`].
    pub async fn try_lease(&self) -> Result<Option<Box<dyn ProjectorLease>>, ReadError> {
        Ok(on_pool!(self, pool => Engine::try_lease(pool, Lease::Sealer).await?))
    }

    /// The last leaf, if any.
    ///
    /// # Errors
    /// [`ReadError::Database`].
    pub async fn last_leaf(&self) -> Result<Option<Leaf>, ReadError> {
        on_pool!(self, pool => {
            let row = sqlx::query(
                "select leaf_index, position, leaf_hash from seal_leaves \
                 order by leaf_index desc limit 1",
            )
            .fetch_optional(pool)
            .await?;
            match row {
                None => Ok(None),
                Some(row) => Ok(Some(Leaf {
                    index: to_u64(row.try_get("leaf_index")?),
                    position: row.try_get("position")?,
                    hash: hash_of(row.try_get::<Vec<u8>, _>("leaf_hash")?.as_slice())?,
                })),
            }
        })
    }

    /// The feed position below which every event is final and projected: the clients
    /// projection's checkpoint (the projector moves it only to a final position).
    ///
    /// # Errors
    /// [`ReadError::Database`].
    pub async fn sealable(&self) -> Result<i64, ReadError> {
        on_pool!(self, pool => {
            let position: Option<i64> = sqlx::query_scalar(
                "select position from projection_checkpoints where projection = $1",
            )
            .bind(CLIENTS_PROJECTION)
            .fetch_optional(pool)
            .await?;
            Ok(position.unwrap_or(0))
        })
    }

    /// Events `after < position <= up_to`, at most `limit`, in position order.
    ///
    /// # Errors
    /// [`ReadError::Database`].
    pub async fn events(
        &self,
        after: i64,
        up_to: i64,
        limit: u32,
    ) -> Result<Vec<LogEvent>, ReadError> {
        on_pool!(self, pool => {
            let rows = sqlx::query(&format!(
                "select {EVENT_COLUMNS} from events \
                 where global_position > $1 and global_position <= $2 \
                 order by global_position limit $3"
            ))
            .bind(after)
            .bind(up_to)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?;
            Ok(rows.iter().map(log_event).collect::<Result<Vec<_>, _>>()?)
        })
    }

    /// Appends leaves and the nodes they complete, in one transaction. A leaf index or node
    /// already stored (another sealer) fails it whole.
    ///
    /// # Errors
    /// [`ReadError::Database`]; nothing is written then.
    pub async fn append(
        &self,
        leaves: &[Leaf],
        nodes: &[(NodeKey, Hash)],
        head: Option<&TreeHead>,
    ) -> Result<(), ReadError> {
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            for chunk in leaves.chunks(1000) {
                let mut insert = QueryBuilder::new("insert into seal_leaves (leaf_index, position, leaf_hash) ");
                insert.push_values(chunk, |mut row, leaf| {
                    row.push_bind(to_i64(leaf.index))
                        .push_bind(leaf.position)
                        .push_bind(leaf.hash.to_vec());
                });
                insert.build().execute(&mut *tx).await?;
            }
            let inner: Vec<&(NodeKey, Hash)> = nodes.iter().filter(|(key, _)| key.level > 0).collect();
            for chunk in inner.chunks(1000) {
                let mut insert = QueryBuilder::new("insert into seal_nodes (level, node_index, hash) ");
                insert.push_values(chunk, |mut row, (key, hash)| {
                    row.push_bind(i64::from(key.level))
                        .push_bind(to_i64(key.index))
                        .push_bind(hash.to_vec());
                });
                insert.build().execute(&mut *tx).await?;
            }
            if let Some(head) = head {
                sqlx::query(
                    "insert into seal_tree_heads (tree_size, root_hash, timestamp, key_id, signature) \
                     values ($1, $2, $3, $4, $5) on conflict (tree_size) do nothing",
                )
                .bind(to_i64(head.tree_size))
                .bind(&head.root_hash)
                .bind(&head.timestamp)
                .bind(&head.key_id)
                .bind(&head.signature)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// The stored hashes of `keys` (leaves and inner nodes); missing ones are left out.
    ///
    /// # Errors
    /// [`ReadError::Database`].
    pub async fn nodes(&self, keys: &[NodeKey]) -> Result<HashMap<NodeKey, Hash>, ReadError> {
        let leaves: Vec<i64> = keys
            .iter()
            .filter(|k| k.level == 0)
            .map(|k| to_i64(k.index))
            .collect();
        let inner: Vec<&NodeKey> = keys.iter().filter(|k| k.level > 0).collect();
        let rows = match self {
            Self::Postgres(pool) => postgres_nodes(pool, &leaves, &inner).await?,
            Self::Sqlite(pool) => sqlite_nodes(pool, &leaves, &inner).await?,
        };
        let mut found = HashMap::new();
        for row in rows {
            let (level, index) = (row.try_get::<i64>(0)?, row.try_get::<i64>(1)?);
            found.insert(
                NodeKey {
                    level: u32::try_from(level).unwrap_or_default(),
                    index: to_u64(index),
                },
                hash_of(&row.try_get::<Vec<u8>>(2)?)?,
            );
        }
        Ok(found)
    }

    /// Stores a signed head (once per size).
    ///
    /// # Errors
    /// [`ReadError::Database`].
    pub async fn write_head(&self, head: &TreeHead) -> Result<(), ReadError> {
        on_pool!(self, pool => {
            sqlx::query(
                "insert into seal_tree_heads (tree_size, root_hash, timestamp, key_id, signature) \
                 values ($1, $2, $3, $4, $5) on conflict (tree_size) do nothing",
            )
            .bind(to_i64(head.tree_size))
            .bind(&head.root_hash)
            .bind(&head.timestamp)
            .bind(&head.key_id)
            .bind(&head.signature)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// The head of `tree_size`, or the latest one.
    ///
    /// # Errors
    /// [`ReadError::Database`].
    pub async fn head(&self, tree_size: Option<u64>) -> Result<Option<TreeHead>, ReadError> {
        on_pool!(self, pool => {
            let select = "select tree_size, root_hash, timestamp, key_id, signature from seal_tree_heads";
            let row = match tree_size {
                Some(size) => sqlx::query(&format!("{select} where tree_size = $1"))
                    .bind(to_i64(size))
                    .fetch_optional(pool)
                    .await?,
                None => sqlx::query(&format!("{select} order by tree_size desc limit 1"))
                    .fetch_optional(pool)
                    .await?,
            };
            match row {
                None => Ok(None),
                Some(row) => Ok(Some(TreeHead {
                    tree_size: to_u64(row.try_get("tree_size")?),
                    root_hash: row.try_get("root_hash")?,
                    timestamp: row.try_get("timestamp")?,
                    key_id: row.try_get("key_id")?,
                    signature: row.try_get("signature")?,
                })),
            }
        })
    }

    /// The leaf of the event at `position` and the size of the latest signed head, in one
    /// round trip (an inclusion proof's first question).
    ///
    /// # Errors
    /// [`ReadError::Database`].
    pub async fn leaf_and_head_size(
        &self,
        position: i64,
    ) -> Result<Option<(Leaf, Option<u64>)>, ReadError> {
        on_pool!(self, pool => {
            let row = sqlx::query(
                "select leaf_index, position, leaf_hash, \
                 (select max(tree_size) from seal_tree_heads) as head_size \
                 from seal_leaves where position = $1",
            )
            .bind(position)
            .fetch_optional(pool)
            .await?;
            match row {
                None => Ok(None),
                Some(row) => Ok(Some((
                    Leaf {
                        index: to_u64(row.try_get("leaf_index")?),
                        position: row.try_get("position")?,
                        hash: hash_of(row.try_get::<Vec<u8>, _>("leaf_hash")?.as_slice())?,
                    },
                    row.try_get::<Option<i64>, _>("head_size")?.map(to_u64),
                ))),
            }
        })
    }

    /// The leaf hashes of the events at `positions` (unsealed ones left out).
    ///
    /// # Errors
    /// [`ReadError::Database`].
    pub async fn leaf_hashes(&self, positions: &[i64]) -> Result<HashMap<i64, Hash>, ReadError> {
        let mut found = HashMap::new();
        for chunk in positions.chunks(500) {
            on_pool!(self, pool => {
                let mut select = QueryBuilder::new("select position, leaf_hash from seal_leaves where position in (");
                let mut list = select.separated(", ");
                for position in chunk {
                    list.push_bind(*position);
                }
                select.push(")");
                for row in select.build().fetch_all(pool).await? {
                    let position: i64 = row.try_get("position")?;
                    let hash: Vec<u8> = row.try_get("leaf_hash")?;
                    found.insert(position, hash_of(&hash)?);
                }
            });
        }
        Ok(found)
    }

    /// Leaves `from <= index < to`, at most `limit`, in order.
    ///
    /// # Errors
    /// [`ReadError::Database`].
    pub async fn leaves(&self, from: u64, to: u64, limit: u32) -> Result<Vec<Leaf>, ReadError> {
        on_pool!(self, pool => {
            let rows = sqlx::query(
                "select leaf_index, position, leaf_hash from seal_leaves \
                 where leaf_index >= $1 and leaf_index < $2 order by leaf_index limit $3",
            )
            .bind(to_i64(from))
            .bind(to_i64(to))
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|row| {
                    Ok(Leaf {
                        index: to_u64(row.try_get("leaf_index")?),
                        position: row.try_get("position")?,
                        hash: hash_of(row.try_get::<Vec<u8>, _>("leaf_hash")?.as_slice())?,
                    })
                })
                .collect()
        })
    }
}

/// The rows `(level, node_index, hash)` of the given leaves and inner nodes, in one round
/// trip and one statement text (its plan cached): a proof's few dozen nodes by their keys.
async fn postgres_nodes(
    pool: &PgPool,
    leaves: &[i64],
    inner: &[&NodeKey],
) -> Result<Vec<NodeRow>, sqlx::Error> {
    let levels: Vec<i64> = inner.iter().map(|k| i64::from(k.level)).collect();
    let indexes: Vec<i64> = inner.iter().map(|k| to_i64(k.index)).collect();
    let rows = sqlx::query(
        "select 0::bigint as level, leaf_index as node_index, leaf_hash as hash \
         from seal_leaves where leaf_index = any($1) \
         union all \
         select n.level, n.node_index, n.hash from seal_nodes n \
         join unnest($2::bigint[], $3::bigint[]) as k(level, node_index) \
         using (level, node_index)",
    )
    .bind(leaves)
    .bind(&levels)
    .bind(&indexes)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(NodeRow::Postgres).collect())
}

/// The same on SQLite, in-process: two plain statements cost nothing to send.
async fn sqlite_nodes(
    pool: &SqlitePool,
    leaves: &[i64],
    inner: &[&NodeKey],
) -> Result<Vec<NodeRow>, sqlx::Error> {
    let mut rows = Vec::new();
    if !leaves.is_empty() {
        let mut select = QueryBuilder::new(
            "select 0 as level, leaf_index as node_index, leaf_hash as hash \
             from seal_leaves where leaf_index in (",
        );
        let mut list = select.separated(", ");
        for index in leaves {
            list.push_bind(*index);
        }
        select.push(")");
        rows.extend(select.build().fetch_all(pool).await?);
    }
    if !inner.is_empty() {
        let mut select = QueryBuilder::new("select level, node_index, hash from seal_nodes where ");
        for (i, key) in inner.iter().enumerate() {
            if i > 0 {
                select.push(" or ");
            }
            select
                .push("(level = ")
                .push_bind(i64::from(key.level))
                .push(" and node_index = ")
                .push_bind(to_i64(key.index))
                .push(")");
        }
        rows.extend(select.build().fetch_all(pool).await?);
    }
    Ok(rows.into_iter().map(NodeRow::Sqlite).collect())
}

/// A row of either backend, read by column index.
enum NodeRow {
    Postgres(sqlx::postgres::PgRow),
    Sqlite(sqlx::sqlite::SqliteRow),
}

impl NodeRow {
    fn try_get<T>(&self, index: usize) -> Result<T, sqlx::Error>
    where
        T: for<'r> sqlx::Decode<'r, sqlx::Postgres>
            + sqlx::Type<sqlx::Postgres>
            + for<'r> sqlx::Decode<'r, sqlx::Sqlite>
            + sqlx::Type<sqlx::Sqlite>,
    {
        match self {
            Self::Postgres(row) => row.try_get(index),
            Self::Sqlite(row) => row.try_get(index),
        }
    }
}
