//! The feed follower: each process's own reading of the feed, which keeps its search index
//! current with every process's writes and tells the watchers (the memory of verified
//! secrets) of every event, so that the change stream answers only what they forgot.

use std::collections::HashMap;
use std::sync::atomic::Ordering as AtomicOrdering;
use std::sync::Arc;
use std::time::Duration;

use super::SearchIndex;
use crate::store::{ReadError, ReadStore};

/// What one step of the feed follower did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FollowStep {
    /// The index moved forward.
    Moved,
    /// Nothing new is final in the feed.
    UpToDate,
    /// Events are there but not projected yet: the index waits for them.
    Waiting,
}

/// Pause of the feed follower after each step that moved.
pub const FOLLOW_PAUSE: Duration = Duration::from_millis(250);

/// Events the follower reads in one step.
const FOLLOW_PAGE: u32 = 1000;

/// Told of every event the feed follower reads — other processes' writes included — as soon
/// as it reads them, before their projection: caches that must forget a client at once (the
/// memory of verified secrets) listen here.
pub trait FeedWatcher: Send + Sync + std::fmt::Debug {
    /// Event `sequence` of `client_id` happened.
    fn saw(&self, client_id: &str, sequence: u64);

    /// The follower read the feed to its end (and the read model reflects every event of
    /// it) in a read that began at `as_of`: every event committed before then was told.
    fn listening(&self, as_of: std::time::Instant) {
        let _ = as_of;
    }

    /// The index was loaded again (the read model was rebuilt): events between were not
    /// told one by one, so forget everything.
    fn reset(&self) {}
}

impl SearchIndex {
    /// Follows the global feed for ever: whenever events arrive after the index's position,
    /// re-reads the read-model rows of their clients and applies them. Only moves past an
    /// event once the read model reflects it (another process may not have projected it yet).
    pub async fn follow(self: Arc<Self>, store: Arc<dyn ReadStore>) {
        let mut stop = self.stop.watch();
        while !stop.is_stopped() {
            let step = self.follow_once(store.as_ref()).await;
            // Progress (what readiness watches) is this loop answering, whatever it found:
            // waiting for another process's projector is that process's problem (shown as
            // this index's lag in /metrics), not a reason to take this one out of service.
            if step.is_ok() {
                self.steps.fetch_add(1, AtomicOrdering::Relaxed);
            }
            match step {
                // This process's own writes are already indexed (inline); the follower is for
                // other processes' writes, which may wait a moment. Pausing also spares
                // PostgreSQL the feed barrier after every single commit.
                Ok(FollowStep::Moved | FollowStep::Waiting) => {
                    stop.pause(FOLLOW_PAUSE).await;
                }
                Ok(FollowStep::UpToDate) => tokio::select! {
                    () = store.wait_for_events(Duration::from_secs(1)) => {}
                    () = stop.stopped() => {}
                },
                Err(error) => {
                    tracing::warn!(%error, "search index could not follow the feed");
                    stop.pause(Duration::from_secs(1)).await;
                }
            }
        }
    }

    /// Asks [`Self::follow`] to stop after the step it is taking (at once when waiting).
    pub fn stop(&self) {
        self.stop.stop();
    }

    /// One step of [`Self::follow`]. Reads only where each event sits
    /// (never a payload, so a row nobody can decode cannot stop it); an event the projection
    /// parked is passed (the read model will not reflect it).
    ///
    /// # Errors
    /// [`ReadError`] from the database.
    pub async fn follow_once(&self, store: &dyn ReadStore) -> Result<FollowStep, ReadError> {
        if store.generation().await? != self.generation.load(AtomicOrdering::Acquire) {
            tracing::info!(
                "the read model was rebuilt or repaired: loading the search index again"
            );
            if let Ok(watchers) = self.watchers.read() {
                for watcher in watchers.iter() {
                    watcher.reset();
                }
            }
            self.load(store).await?;
            return Ok(FollowStep::Moved);
        }
        let after = self.position.load(AtomicOrdering::Acquire);
        // Not a fact of any projection: when this read began, for the memory of verified
        // secrets to know how fresh "caught up" is.
        #[allow(clippy::disallowed_methods)]
        let read_at = std::time::Instant::now();
        let page = store.feed_marks(after, FOLLOW_PAGE).await?;
        if page.next_after <= after {
            self.tell_listening(read_at);
            return Ok(FollowStep::UpToDate);
        }
        if let Ok(watchers) = self.watchers.read() {
            for mark in page.iter() {
                for watcher in watchers.iter() {
                    watcher.saw(mark.aggregate_id, mark.sequence);
                }
            }
        }
        self.told.fetch_max(page.next_after, AtomicOrdering::AcqRel);
        let mut reached = page.next_after;
        let mut wanted: HashMap<String, (u64, i64)> = HashMap::new();
        if let Ok(inner) = self.inner.read() {
            for mark in page.iter().filter(|mark| !mark.parked) {
                let known = inner.versions.get(mark.aggregate_id).copied().unwrap_or(0);
                if mark.sequence > known {
                    let slot = wanted
                        .entry(mark.aggregate_id.to_owned())
                        .or_insert((0, mark.position));
                    slot.0 = slot.0.max(mark.sequence);
                }
            }
        }
        for (client_id, (sequence, first_position)) in wanted {
            match store.client_record(&client_id).await? {
                Some(record) if record.view.version >= sequence => self.apply(&record),
                // Not projected yet: come back to it.
                _ => reached = reached.min(first_position - 1),
            }
        }
        self.position.fetch_max(reached, AtomicOrdering::AcqRel);
        // Listening only when this read reached the end of the feed and the read model
        // reflects all of it: stuck behind a projection (or a backlog), the memory of
        // verified secrets is not trusted and the change stream does not answer.
        if reached == page.next_after && page.marks.len() < FOLLOW_PAGE as usize {
            self.tell_listening(read_at);
        }
        self.changed.notify_waiters();
        Ok(if reached > after {
            FollowStep::Moved
        } else {
            FollowStep::Waiting
        })
    }

    fn tell_listening(&self, as_of: std::time::Instant) {
        if let Ok(watchers) = self.watchers.read() {
            for watcher in watchers.iter() {
                watcher.listening(as_of);
            }
        }
    }
}
