//! The sealer: one per database (a lease like the projector's), it appends every event below
//! the projector's checkpoint to the Merkle tree, batch by batch (each batch one
//! transaction: leaves and nodes together, so a crash leaves no leaf half-written and the next
//! sealer resumes after the last stored one), and signs a tree head at most once per
//! interval. It reads the events table and writes only its own tables: writers never wait for
//! it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::keys::SigningKey;
use super::merkle::{Frontier, Hash, NodeKey};
use super::store::{Leaf, SealDb};
use super::TreeHead;
use crate::stop::StopSignal;
use crate::store::ReadError;

/// Events per batch (one transaction).
pub const BATCH: u32 = 5000;

/// How often the sealer looks for new events: PostgreSQL (writers never wait for it).
const TICK: Duration = Duration::from_millis(200);

/// On SQLite, where each of its transactions takes the one write lock for a moment.
const SQLITE_TICK: Duration = Duration::from_millis(500);

/// Where the tree ends: its right edge, the position of its last event, the last head.
struct Edge {
    frontier: Frontier,
    last_position: i64,
    last_head_size: u64,
    last_head_at: Option<DateTime<Utc>>,
}

/// Where the sealer takes the time of a tree head from.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// The sealer.
pub struct Sealer {
    db: SealDb,
    key: Arc<SigningKey>,
    head_interval: Duration,
    clock: Clock,
    edge: tokio::sync::Mutex<Option<Edge>>,
    sealed: AtomicU64,
    steps: AtomicU64,
    leader: AtomicBool,
    stop: StopSignal,
}

impl Sealer {
    /// A sealer of `db` signing with `key`, a head at most every `head_interval`, stamped by
    /// `clock`.
    pub fn new(db: SealDb, key: Arc<SigningKey>, head_interval: Duration, clock: Clock) -> Self {
        Self {
            db,
            key,
            head_interval,
            clock,
            edge: tokio::sync::Mutex::new(None),
            sealed: AtomicU64::new(0),
            steps: AtomicU64::new(0),
            leader: AtomicBool::new(false),
            stop: StopSignal::default(),
        }
    }

    /// The sealed log's database.
    pub fn db(&self) -> &SealDb {
        &self.db
    }

    /// The signing key.
    pub fn key(&self) -> &SigningKey {
        &self.key
    }

    /// Leaves this process appended.
    pub fn sealed(&self) -> u64 {
        self.sealed.load(Ordering::Relaxed)
    }

    /// Loop iterations (progress, for the supervisor).
    pub fn steps(&self) -> u64 {
        self.steps.load(Ordering::Relaxed)
    }

    /// Whether this process holds the sealer lease.
    pub fn is_leader(&self) -> bool {
        self.leader.load(Ordering::Relaxed)
    }

    async fn load(&self) -> Result<Edge, ReadError> {
        let last = self.db.last_leaf().await?;
        let size = last.map_or(0, |leaf| leaf.index + 1);
        let keys = Frontier::edge_keys(size);
        let stored = self.db.nodes(&keys).await?;
        let hashes: Vec<Hash> = keys
            .iter()
            .filter_map(|key| stored.get(key).copied())
            .collect();
        let frontier = Frontier::from_edge(size, &hashes).ok_or_else(|| {
            ReadError::Database(sqlx::Error::Protocol(format!(
                "the sealed tree of {size} leaves is missing nodes of its right edge"
            )))
        })?;
        let head = self.db.head(None).await?;
        Ok(Edge {
            frontier,
            last_position: last.map_or(0, |leaf| leaf.position),
            last_head_size: head.map_or(0, |h| h.tree_size),
            last_head_at: None,
        })
    }

    /// Seals every event up to the projector's checkpoint, and signs a head if the tree grew
    /// and `force` is set or the interval has passed. Returns the leaves appended.
    ///
    /// # Errors
    /// [`ReadError`]; what was committed stays, the rest is sealed next time.
    pub async fn seal_available(&self, force: bool) -> Result<u64, ReadError> {
        let mut guard = self.edge.lock().await;
        if guard.is_none() {
            *guard = Some(self.load().await?);
        }
        let Some(edge) = guard.as_mut() else {
            return Ok(0);
        };
        let result = self.seal(edge, force).await;
        if result.is_err() {
            // Reload from what the database holds.
            *guard = None;
        }
        result
    }

    async fn seal(&self, edge: &mut Edge, force: bool) -> Result<u64, ReadError> {
        let bound = self.db.sealable().await?;
        let mut total = 0;
        while edge.last_position < bound {
            let started = tokio::time::Instant::now();
            let events = self.db.events(edge.last_position, bound, BATCH).await?;
            let Some(last) = events.last().map(|e| e.position) else {
                break;
            };
            let count = events.len();
            let mut frontier = edge.frontier.clone();
            let (frontier, leaves, nodes) = tokio::task::spawn_blocking(move || {
                let mut leaves = Vec::with_capacity(events.len());
                let mut nodes: Vec<(NodeKey, Hash)> = Vec::with_capacity(events.len() * 2);
                for event in &events {
                    let hash = event.leaf_hash();
                    leaves.push(Leaf {
                        index: frontier.size(),
                        position: event.position,
                        hash,
                    });
                    nodes.extend(frontier.push(hash));
                }
                (frontier, leaves, nodes)
            })
            .await?;
            // The head, when one is due after this batch, in the batch's own transaction: one
            // write instead of two (SQLite has one write lock for everyone).
            let head = if count < BATCH as usize {
                self.due_head(edge, &frontier, force)
            } else {
                None
            };
            self.db.append(&leaves, &nodes, head.as_ref()).await?;
            if let Some(head) = &head {
                edge.last_head_size = head.tree_size;
                edge.last_head_at = Some((self.clock)());
            }
            edge.frontier = frontier;
            edge.last_position = last;
            total += count as u64;
            self.sealed.fetch_add(count as u64, Ordering::Relaxed);
            // Progress per batch: a long catch-up is not a stuck task.
            self.steps.fetch_add(1, Ordering::Relaxed);
            if count < BATCH as usize {
                break;
            }
            if self.db.one_writer() {
                // SQLite has one write lock and no queue for it: between two batches of a
                // catch-up, let the writers in for a third of the time the batch took (at most
                // 100 ms). Steady state never gets here: a tick's batch is not full.
                tokio::time::sleep((started.elapsed() / 3).min(Duration::from_millis(100))).await;
            }
        }
        let current = edge.frontier.clone();
        if let Some(head) = self.due_head(edge, &current, force) {
            self.db.write_head(&head).await?;
            edge.last_head_size = head.tree_size;
            edge.last_head_at = Some((self.clock)());
        }
        Ok(total)
    }

    /// The head of `frontier`, signed, if it grew since the last head and one is due (the
    /// interval passed, or `force`).
    fn due_head(&self, edge: &Edge, frontier: &Frontier, force: bool) -> Option<TreeHead> {
        let now = (self.clock)();
        let due = edge
            .last_head_at
            .is_none_or(|at| (now - at).to_std().unwrap_or_default() >= self.head_interval);
        (frontier.size() > edge.last_head_size && (force || due)).then(|| {
            let timestamp = now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            TreeHead::sign(frontier.size(), &frontier.root(), &timestamp, &self.key)
        })
    }

    /// Whether this process's key signed the latest head (or none was signed yet): a process
    /// with another key must not seal, or the heads of one log would need two keys.
    async fn key_matches(&self) -> Result<bool, ReadError> {
        let own = self.key.key_id();
        match self.db.head(None).await? {
            Some(head) if head.key_id != own => {
                tracing::error!(
                    log_key = %head.key_id,
                    this_key = %own,
                    "not sealing: this process's signing key is not the one that signed the log \
                     (give every process the same REGISTRY_AUDIT_KEY_FILE)"
                );
                Ok(false)
            }
            _ => Ok(true),
        }
    }

    /// Runs the sealer until [`Self::stop`]: takes the lease (one sealer per database), then
    /// seals what the projector has checkpointed, every tick. A process whose key did not
    /// sign the log does not take the lease.
    pub async fn run(self: Arc<Self>) {
        let mut stop = self.stop.watch();
        while !stop.is_stopped() {
            if !self.key_matches().await.unwrap_or(false) {
                self.steps.fetch_add(1, Ordering::Relaxed);
                stop.pause(Duration::from_secs(60)).await;
                continue;
            }
            let mut lease = match self.db.try_lease().await {
                Ok(Some(lease)) => lease,
                Ok(None) => {
                    self.steps.fetch_add(1, Ordering::Relaxed);
                    stop.pause(Duration::from_secs(1)).await;
                    continue;
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot try the sealer lease");
                    stop.pause(Duration::from_secs(1)).await;
                    continue;
                }
            };
            self.leader.store(true, Ordering::Relaxed);
            tracing::info!("sealer lease taken");
            // Another sealer may have run before: start from what is stored.
            *self.edge.lock().await = None;
            while !stop.is_stopped() && lease.is_held().await {
                self.steps.fetch_add(1, Ordering::Relaxed);
                if let Err(error) = self.seal_available(false).await {
                    tracing::warn!(%error, "sealing failed; retrying");
                }
                let tick = if self.db.one_writer() {
                    SQLITE_TICK
                } else {
                    TICK
                };
                if stop.pause(tick).await {
                    break;
                }
            }
            self.leader.store(false, Ordering::Relaxed);
        }
    }

    /// Asks [`Self::run`] to stop after its batch.
    pub fn stop(&self) {
        self.stop.stop();
    }
}
