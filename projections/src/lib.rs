//! The read side of the client registry: the client list and client detail read models, how
//! stored events are applied to them, and the queries that read them (search, filter, sort,
//! keyset pagination).
//!
//! Projections write real SQL tables. Each client's rows record the sequence of the last event
//! applied, and applying is "catch up from there, reading the client's stream": so applying
//! twice, concurrently, or after a crash is harmless. Never depends on the write side
//! (`registry-commands`); it reads the `events` table with its own SQL.
#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod list;
pub mod store;
pub mod stored;
pub mod view;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use cqrs_es::{EventEnvelope, Query};
use registry_domain::Client;

pub use list::{ClientPage, ListItem, ListQuery, Sort, SortKey};
pub use store::{PostgresReadStore, ReadError, ReadStore, SqliteReadStore};
pub use view::{ClientView, SecretView};

/// Applies committed events to the read models, as a cqrs-es [`Query`] the write side calls
/// after each commit (so a command's own projections are applied before its response).
///
/// A failure does not fail the command (its events are committed): it is logged, counted in
/// [`Projector::failures`], and repaired by the next catch-up of that client.
pub struct Projector {
    store: Arc<dyn ReadStore>,
    failures: AtomicU64,
}

impl Projector {
    /// A projector writing through `store`.
    pub fn new(store: Arc<dyn ReadStore>) -> Self {
        Self {
            store,
            failures: AtomicU64::new(0),
        }
    }

    /// How many projection attempts failed since start-up.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }
}

#[async_trait]
impl Query<Client> for Projector {
    async fn dispatch(&self, aggregate_id: &str, _events: &[EventEnvelope<Client>]) {
        // The envelopes only say which client changed: catching up from the stored stream
        // keeps the rows right even when two commands on one client commit and project in
        // opposite orders.
        if let Err(error) = self.store.catch_up(aggregate_id).await {
            self.failures.fetch_add(1, Ordering::Relaxed);
            tracing::error!(client_id = aggregate_id, error = %error, "projection failed");
        }
    }
}
