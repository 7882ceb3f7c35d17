//! Keeps the read models in step with the event store.
//!
//! Two paths, one mechanism ("catch the client up from its stored stream", idempotent):
//! - inline: the write side dispatches each commit to [`Projector`] (a cqrs-es `Query`), so a
//!   command's own projection is applied before its HTTP response (read-your-writes);
//! - background: [`Projector::run`] tails the global feed from the projection's checkpoint and
//!   applies whatever the inline path missed (a crash between commit and projection, a failed
//!   projection, another process's writes), checkpoint and rows in one transaction. It wakes on
//!   `NOTIFY` (PostgreSQL), on this process's commits, and on a timer. With several processes
//!   on one PostgreSQL database, one holds the projector lease (an advisory lock) at a time;
//!   the others wait to take over when its connection dies.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use cqrs_es::{EventEnvelope, Query};
use registry_domain::Client;
use tokio::sync::Notify;

use crate::search::SearchIndex;
use crate::store::ReadStore;

/// Events applied per background transaction.
pub const BATCH_SIZE: usize = 1000;
/// Longest idle wait between two looks at the feed.
pub const IDLE_WAIT: Duration = Duration::from_secs(1);
/// How often a process without the lease tries to take it.
pub const LEASE_RETRY: Duration = Duration::from_secs(1);
/// Shortest pause between two batches once the projector has caught up. The inline path
/// already keeps the rows current; the background pass only moves the checkpoint and
/// repairs, so it need not run after every single commit (on PostgreSQL each pass also takes
/// the feed barrier, which makes writers wait for an instant).
pub const MIN_PAUSE: Duration = Duration::from_millis(250);

/// Applies committed events to the read models, inline and in the background.
pub struct Projector {
    store: Arc<dyn ReadStore>,
    search: Option<Arc<SearchIndex>>,
    failures: AtomicU64,
    applied: AtomicU64,
    leader: AtomicBool,
    steps: AtomicU64,
    parked: AtomicU64,
    wake: Notify,
    stop: crate::stop::StopSignal,
}

impl Projector {
    /// A projector writing through `store`.
    pub fn new(store: Arc<dyn ReadStore>) -> Self {
        Self {
            store,
            search: None,
            failures: AtomicU64::new(0),
            applied: AtomicU64::new(0),
            leader: AtomicBool::new(false),
            steps: AtomicU64::new(0),
            parked: AtomicU64::new(0),
            wake: Notify::new(),
            stop: crate::stop::StopSignal::default(),
        }
    }

    /// Also keeps `search` up to date with every record this projector writes.
    #[must_use]
    pub fn with_search(mut self, search: Arc<SearchIndex>) -> Self {
        self.search = Some(search);
        self
    }

    fn index(&self, records: &[crate::view::ClientRecord]) {
        if let Some(search) = &self.search {
            search.apply_all(records);
        }
    }

    /// Projection attempts that failed since start-up (inline or background).
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Feed events the background projector read since start-up.
    pub fn applied(&self) -> u64 {
        self.applied.load(Ordering::Relaxed)
    }

    /// Steps the background loop completed (a batch, an idle wait, a lease attempt that got an
    /// answer): moves while the loop is alive and the database answers.
    pub fn steps(&self) -> u64 {
        self.steps.load(Ordering::Relaxed)
    }

    /// Events this process's projector parked since start-up.
    pub fn parked(&self) -> u64 {
        self.parked.load(Ordering::Relaxed)
    }

    /// Whether this process holds the projector lease.
    pub fn is_leader(&self) -> bool {
        self.leader.load(Ordering::Relaxed)
    }

    /// Runs the background projector until the task is dropped.
    pub async fn run(self: Arc<Self>) {
        let mut stop = self.stop.watch();
        while !stop.is_stopped() {
            // Not raced against the stop: taking the lease holds a connection and a lock,
            // which a dropped future could leave behind.
            let lease = match self.store.try_lease().await {
                Ok(Some(lease)) => lease,
                Ok(None) => {
                    self.steps.fetch_add(1, Ordering::Relaxed);
                    stop.pause(LEASE_RETRY).await;
                    continue;
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot try the projector lease");
                    stop.pause(LEASE_RETRY).await;
                    continue;
                }
            };
            self.leader.store(true, Ordering::Relaxed);
            tracing::info!("projector lease taken");
            self.project_while_held(lease, &mut stop).await;
            self.leader.store(false, Ordering::Relaxed);
            if stop.is_stopped() {
                tracing::info!("projector stopped between batches; lease released");
            } else {
                tracing::warn!("projector lease lost");
            }
        }
    }

    /// Asks [`Self::run`] to stop after the batch it is applying (at once when idle), and to
    /// give up its lease, so that another process takes over.
    pub fn stop(&self) {
        self.stop.stop();
    }

    async fn project_while_held(
        &self,
        mut lease: Box<dyn crate::store::ProjectorLease>,
        stop: &mut crate::stop::StopWatch,
    ) {
        loop {
            if stop.is_stopped() || !lease.is_held().await {
                return;
            }
            let step = self.store.project_batch(BATCH_SIZE).await;
            if step.is_ok() {
                self.steps.fetch_add(1, Ordering::Relaxed);
            }
            match step {
                Ok(batch) if batch.events > 0 => {
                    if batch.parked > 0 {
                        self.parked.fetch_add(
                            u64::try_from(batch.parked).unwrap_or_default(),
                            Ordering::Relaxed,
                        );
                    }
                    self.index(&batch.records);
                    self.applied.fetch_add(
                        u64::try_from(batch.events).unwrap_or_default(),
                        Ordering::Relaxed,
                    );
                    if batch.events < BATCH_SIZE {
                        stop.pause(MIN_PAUSE).await;
                    }
                }
                Ok(_) => {
                    tokio::select! {
                        () = self.wake.notified() => {},
                        () = self.store.wait_for_events(IDLE_WAIT) => {},
                        () = stop.stopped() => {},
                    }
                }
                Err(error) => {
                    self.failures.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(%error, "background projection failed");
                    stop.pause(IDLE_WAIT).await;
                }
            }
        }
    }

    /// Applies feed batches until the checkpoint reaches the head (for `projections` commands
    /// and tests). Returns the number of feed events read.
    ///
    /// # Errors
    /// The first failing batch.
    pub async fn drain(&self) -> Result<u64, crate::store::ReadError> {
        let mut total = 0;
        loop {
            let batch = self.store.project_batch(BATCH_SIZE).await?;
            if batch.events == 0 {
                return Ok(total);
            }
            self.index(&batch.records);
            total += u64::try_from(batch.events).unwrap_or_default();
        }
    }
}

#[async_trait]
impl Query<Client> for Projector {
    async fn dispatch(&self, aggregate_id: &str, _events: &[EventEnvelope<Client>]) {
        // The envelopes only say which client changed: catching up from the stored stream
        // keeps the rows right even when two commands on one client commit and project in
        // opposite orders.
        match self.store.catch_up(aggregate_id).await {
            Ok(Some(record)) => self.index(std::slice::from_ref(&record)),
            Ok(None) => {}
            Err(error) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                tracing::error!(client_id = aggregate_id, %error, "projection failed");
            }
        }
        // Let the background projector move its checkpoint past this commit.
        self.wake.notify_one();
    }
}
