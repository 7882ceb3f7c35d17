//! The sealed log in SQL (migration `sealed_log`): `seal_leaves` (leaf index, event position,
//! leaf hash), `seal_nodes` (the perfect subtrees above the leaves), `seal_tree_heads`. Only
//! the sealer writes them; nothing a writer of events waits on.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use sqlx::Pool;

use super::merkle::{Hash, NodeKey};
use super::{LogEvent, TreeHead};
use crate::store::{ProjectorLease, ReadError, CLIENTS_PROJECTION};
use registry_sql::{Arg, Backend, Engine, Lease, Statement, Transaction};

/// The sealed log's tables, on whichever database the registry runs.
pub type SealDb = Arc<dyn SealStore>;

/// The sealed log on the database behind `pool` (already migrated).
pub fn seal_store<DB: Backend>(pool: Pool<DB>) -> SealDb {
    Arc::new(SqlSealStore { pool })
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

/// The sealed log's rows: only the sealer writes them.
#[async_trait]
pub trait SealStore: Send + Sync {
    /// Whether writers share one write lock with no queue (SQLite): the sealer then pauses
    /// between the batches of a catch-up and looks for new events less often.
    fn one_writer(&self) -> bool;

    /// Tries to become the one sealer (PostgreSQL: a session advisory lock on a connection of
    /// its own; SQLite: a lock on a file beside the store; either released when its holder
    /// goes).
    ///
    /// # Errors
    /// [`ReadError::Database`].
    async fn try_lease(&self) -> Result<Option<Box<dyn ProjectorLease>>, ReadError>;

    /// The last leaf, if any.
    ///
    /// # Errors
    /// [`ReadError::Database`].
    async fn last_leaf(&self) -> Result<Option<Leaf>, ReadError>;

    /// The feed position below which every event is final and projected: the clients
    /// projection's checkpoint (the projector moves it only to a final position).
    ///
    /// # Errors
    /// [`ReadError::Database`].
    async fn sealable(&self) -> Result<i64, ReadError>;

    /// Events `after < position <= up_to`, at most `limit`, in position order.
    ///
    /// # Errors
    /// [`ReadError::Database`].
    async fn events(&self, after: i64, up_to: i64, limit: u32) -> Result<Vec<LogEvent>, ReadError>;

    /// Appends leaves and the nodes they complete, in one transaction. A leaf index or node
    /// already stored (another sealer) fails it whole.
    ///
    /// # Errors
    /// [`ReadError::Database`]; nothing is written then.
    async fn append(
        &self,
        leaves: &[Leaf],
        nodes: &[(NodeKey, Hash)],
        head: Option<&TreeHead>,
    ) -> Result<(), ReadError>;

    /// The stored hashes of `keys` (leaves and inner nodes); missing ones are left out.
    ///
    /// # Errors
    /// [`ReadError::Database`].
    async fn nodes(&self, keys: &[NodeKey]) -> Result<HashMap<NodeKey, Hash>, ReadError>;

    /// Stores a signed head (once per size).
    ///
    /// # Errors
    /// [`ReadError::Database`].
    async fn write_head(&self, head: &TreeHead) -> Result<(), ReadError>;

    /// The head of `tree_size`, or the latest one.
    ///
    /// # Errors
    /// [`ReadError::Database`].
    async fn head(&self, tree_size: Option<u64>) -> Result<Option<TreeHead>, ReadError>;

    /// The leaf of the event at `position` and the size of the latest signed head, in one
    /// round trip (an inclusion proof's first question).
    ///
    /// # Errors
    /// [`ReadError::Database`].
    async fn leaf_and_head_size(
        &self,
        position: i64,
    ) -> Result<Option<(Leaf, Option<u64>)>, ReadError>;

    /// The leaf hashes of the events at `positions` (unsealed ones left out).
    ///
    /// # Errors
    /// [`ReadError::Database`].
    async fn leaf_hashes(&self, positions: &[i64]) -> Result<HashMap<i64, Hash>, ReadError>;

    /// Leaves `from <= index < to`, at most `limit`, in order.
    ///
    /// # Errors
    /// [`ReadError::Database`].
    async fn leaves(&self, from: u64, to: u64, limit: u32) -> Result<Vec<Leaf>, ReadError>;
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

const SELECT_LEAVES: &str = "select leaf_index, position, leaf_hash from seal_leaves";

const INSERT_HEAD: &str = "insert into seal_tree_heads \
     (tree_size, root_hash, timestamp, key_id, signature) \
     values ($1, $2, $3, $4, $5) on conflict (tree_size) do nothing";

const SELECT_HEADS: &str =
    "select tree_size, root_hash, timestamp, key_id, signature from seal_tree_heads";

fn log_event<DB: Engine>(row: &DB::Row) -> Result<LogEvent, sqlx::Error> {
    Ok(LogEvent {
        position: DB::get(row, "global_position")?,
        stream_type: DB::get(row, "aggregate_type")?,
        stream_id: DB::get(row, "aggregate_id")?,
        sequence: DB::get(row, "sequence")?,
        event_type: DB::get(row, "event_type")?,
        event_version: DB::get(row, "event_version")?,
        payload: DB::get(row, "payload")?,
        metadata: DB::get(row, "metadata")?,
    })
}

fn leaf<DB: Engine>(row: &DB::Row) -> Result<Leaf, ReadError> {
    Ok(Leaf {
        index: to_u64(DB::get(row, "leaf_index")?),
        position: DB::get(row, "position")?,
        hash: hash_of(&DB::get::<Vec<u8>>(row, "leaf_hash")?)?,
    })
}

fn tree_head<DB: Engine>(row: &DB::Row) -> Result<TreeHead, ReadError> {
    Ok(TreeHead {
        tree_size: to_u64(DB::get(row, "tree_size")?),
        root_hash: DB::get(row, "root_hash")?,
        timestamp: DB::get(row, "timestamp")?,
        key_id: DB::get(row, "key_id")?,
        signature: DB::get(row, "signature")?,
    })
}

fn insert_head(head: &TreeHead) -> Statement {
    Statement::new(INSERT_HEAD)
        .bind(to_i64(head.tree_size))
        .bind(&head.root_hash)
        .bind(&head.timestamp)
        .bind(&head.key_id)
        .bind(&head.signature)
}

/// The sealed log in SQL, on the backend `DB`.
struct SqlSealStore<DB: Engine> {
    pool: Pool<DB>,
}

impl<DB: Backend> SqlSealStore<DB> {
    /// Inserts rows of `(a, b, hash)` into `table (columns)`, 1,000 a statement.
    async fn insert_hashed(
        tx: &mut Transaction<DB>,
        into: &str,
        rows: Vec<[Arg; 3]>,
    ) -> Result<(), ReadError> {
        for chunk in rows.chunks(1000) {
            let mut insert = Statement::new(format!("insert into {into} values "));
            insert.push_tuples(chunk.iter().cloned());
            insert.execute(&mut *tx).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl<DB: Backend> SealStore for SqlSealStore<DB> {
    fn one_writer(&self) -> bool {
        DB::DIALECT.one_writer
    }

    async fn try_lease(&self) -> Result<Option<Box<dyn ProjectorLease>>, ReadError> {
        Ok(DB::try_lease(&self.pool, Lease::Sealer).await?)
    }

    async fn last_leaf(&self) -> Result<Option<Leaf>, ReadError> {
        let row = Statement::new(format!("{SELECT_LEAVES} order by leaf_index desc limit 1"))
            .row(&self.pool)
            .await?;
        row.map(|row| leaf::<DB>(&row)).transpose()
    }

    async fn sealable(&self) -> Result<i64, ReadError> {
        let position: Option<i64> =
            Statement::new("select position from projection_checkpoints where projection = $1")
                .bind(CLIENTS_PROJECTION)
                .scalar(&self.pool)
                .await?;
        Ok(position.unwrap_or(0))
    }

    async fn events(&self, after: i64, up_to: i64, limit: u32) -> Result<Vec<LogEvent>, ReadError> {
        let rows = Statement::new(format!(
            "select {EVENT_COLUMNS} from events \
             where global_position > $1 and global_position <= $2 \
             order by global_position limit $3"
        ))
        .bind(after)
        .bind(up_to)
        .bind(i64::from(limit))
        .rows(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(log_event::<DB>)
            .collect::<Result<Vec<_>, _>>()?)
    }

    async fn append(
        &self,
        leaves: &[Leaf],
        nodes: &[(NodeKey, Hash)],
        head: Option<&TreeHead>,
    ) -> Result<(), ReadError> {
        let mut tx = self.pool.begin().await?;
        let leaf_rows = leaves
            .iter()
            .map(|leaf| {
                [
                    Arg::I64(to_i64(leaf.index)),
                    Arg::I64(leaf.position),
                    Arg::Bytes(leaf.hash.to_vec()),
                ]
            })
            .collect();
        Self::insert_hashed(
            &mut tx,
            "seal_leaves (leaf_index, position, leaf_hash)",
            leaf_rows,
        )
        .await?;
        let node_rows = nodes
            .iter()
            .filter(|(key, _)| key.level > 0)
            .map(|(key, hash)| {
                [
                    Arg::I64(i64::from(key.level)),
                    Arg::I64(to_i64(key.index)),
                    Arg::Bytes(hash.to_vec()),
                ]
            })
            .collect();
        Self::insert_hashed(&mut tx, "seal_nodes (level, node_index, hash)", node_rows).await?;
        if let Some(head) = head {
            insert_head(head).execute(&mut tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn nodes(&self, keys: &[NodeKey]) -> Result<HashMap<NodeKey, Hash>, ReadError> {
        let leaves: Vec<i64> = keys
            .iter()
            .filter(|k| k.level == 0)
            .map(|k| to_i64(k.index))
            .collect();
        let inner: Vec<(i64, i64)> = keys
            .iter()
            .filter(|k| k.level > 0)
            .map(|k| (i64::from(k.level), to_i64(k.index)))
            .collect();
        let mut found = HashMap::new();
        for (level, index, hash) in DB::node_hashes(&self.pool, leaves, inner).await? {
            let key = NodeKey {
                level: u32::try_from(level).unwrap_or_default(),
                index: to_u64(index),
            };
            found.insert(key, hash_of(&hash)?);
        }
        Ok(found)
    }

    async fn write_head(&self, head: &TreeHead) -> Result<(), ReadError> {
        insert_head(head).execute(&self.pool).await?;
        Ok(())
    }

    async fn head(&self, tree_size: Option<u64>) -> Result<Option<TreeHead>, ReadError> {
        let select = match tree_size {
            Some(size) => {
                Statement::new(format!("{SELECT_HEADS} where tree_size = $1")).bind(to_i64(size))
            }
            None => Statement::new(format!("{SELECT_HEADS} order by tree_size desc limit 1")),
        };
        let row = select.row(&self.pool).await?;
        row.map(|row| tree_head::<DB>(&row)).transpose()
    }

    async fn leaf_and_head_size(
        &self,
        position: i64,
    ) -> Result<Option<(Leaf, Option<u64>)>, ReadError> {
        let row = Statement::new(
            "select leaf_index, position, leaf_hash, \
             (select max(tree_size) from seal_tree_heads) as head_size \
             from seal_leaves where position = $1",
        )
        .bind(position)
        .row(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let head_size: Option<i64> = DB::get(&row, "head_size")?;
        Ok(Some((leaf::<DB>(&row)?, head_size.map(to_u64))))
    }

    async fn leaf_hashes(&self, positions: &[i64]) -> Result<HashMap<i64, Hash>, ReadError> {
        let mut found = HashMap::new();
        for chunk in positions.chunks(500) {
            let mut select =
                Statement::new("select position, leaf_hash from seal_leaves where position in ");
            select.push_list(chunk.iter().copied());
            for row in select.rows(&self.pool).await? {
                let position: i64 = DB::get(&row, "position")?;
                found.insert(position, hash_of(&DB::get::<Vec<u8>>(&row, "leaf_hash")?)?);
            }
        }
        Ok(found)
    }

    async fn leaves(&self, from: u64, to: u64, limit: u32) -> Result<Vec<Leaf>, ReadError> {
        let rows = Statement::new(format!(
            "{SELECT_LEAVES} where leaf_index >= $1 and leaf_index < $2 \
             order by leaf_index limit $3"
        ))
        .bind(to_i64(from))
        .bind(to_i64(to))
        .bind(i64::from(limit))
        .rows(&self.pool)
        .await?;
        rows.iter().map(leaf::<DB>).collect()
    }
}
