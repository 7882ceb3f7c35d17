//! The domain of the client registry: the `Client` aggregate (an OAuth 2.0 / OpenID Connect
//! client registration), its commands, events, validated value types and rules.
//!
//! Pure: no I/O, no clock, no database, no HTTP. Time and hashed secrets arrive with the
//! commands; the write side (`registry-commands`) executes them against an event store.
#![cfg_attr(test, allow(clippy::restriction, clippy::too_many_lines))]

pub mod client;
pub mod metadata;
pub mod values;

use cqrs_es::persist::{EventUpcaster, SerializedEvent};

pub use client::{
    Client, ClientCommand, ClientError, ClientEvent, ClientSettings, ClientSettingsInput,
    ClientState, StampedClient,
};
pub use metadata::EventMetadata;

/// The upcasters that bring stored events of older `event_version`s to the current shape.
/// Every reader of stored events (aggregate loading, projections, the feed) applies them.
///
/// - `ClientUpdated` 1.0 → 1.1: 1.1 added `revoked_secrets`. A 1.0 event revoked none (a
///   client made public kept its secrets then), which is what the field's absence already
///   reads as; the payload is unchanged, the version says it was read as 1.1.
/// - `ClientSecretRotated` 1.0 → 1.1: 1.1 added `ended_secrets`. A 1.0 event ended none (its
///   grace applied to every previous secret), which is what the field's absence reads as.
pub fn upcasters() -> Vec<Box<dyn EventUpcaster>> {
    vec![
        Box::new(ClientUpdatedRevokedNothing),
        Box::new(ClientSecretRotatedEndedNothing),
    ]
}

/// `ClientSecretRotated` 1.0 → 1.1 (see [`upcasters`]).
struct ClientSecretRotatedEndedNothing;

impl EventUpcaster for ClientSecretRotatedEndedNothing {
    fn can_upcast(&self, event_type: &str, event_version: &str) -> bool {
        event_type == "ClientSecretRotated" && event_version == "1.0"
    }

    fn upcast(&self, event: SerializedEvent) -> SerializedEvent {
        SerializedEvent {
            event_version: client::CLIENT_SECRET_ROTATED_VERSION.to_owned(),
            ..event
        }
    }
}

/// `ClientUpdated` 1.0 → 1.1 (see [`upcasters`]).
struct ClientUpdatedRevokedNothing;

impl EventUpcaster for ClientUpdatedRevokedNothing {
    fn can_upcast(&self, event_type: &str, event_version: &str) -> bool {
        event_type == "ClientUpdated" && event_version == "1.0"
    }

    fn upcast(&self, event: SerializedEvent) -> SerializedEvent {
        SerializedEvent {
            event_version: client::CLIENT_UPDATED_VERSION.to_owned(),
            ..event
        }
    }
}
