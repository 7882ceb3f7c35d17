//! The aggregate together with the two times readers show: when the client was (last)
//! registered and when it last changed. The aggregate itself never sees time (cqrs-es applies
//! bare events); the write side folds each event's `recorded_at` in here, so that a command's
//! answer is built from the state it committed, not from a read after the commit.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::aggregate::Client;
use super::events::ClientEvent;

/// A [`Client`] and the times of its registration and last event.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StampedClient {
    /// The aggregate.
    pub client: Client,
    /// `recorded_at` of the latest `ClientRegistered`; `None` before the first.
    pub registered_at: Option<DateTime<Utc>>,
    /// `recorded_at` of the latest event; `None` before the first.
    pub changed_at: Option<DateTime<Utc>>,
}

impl StampedClient {
    /// Notes that `event`, just applied to [`Self::client`], was recorded at `at`.
    pub fn stamp(&mut self, event: &ClientEvent, at: DateTime<Utc>) {
        if matches!(event, ClientEvent::ClientRegistered { .. }) {
            self.registered_at = Some(at);
        }
        self.changed_at = Some(at);
    }

    /// Applies `event`, recorded at `at`.
    pub fn apply(&mut self, event: ClientEvent, at: DateTime<Utc>) {
        use cqrs_es::Aggregate as _;
        self.stamp(&event, at);
        self.client.apply(event);
    }
}
