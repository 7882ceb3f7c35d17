//! The domain of the client registry: the `Client` aggregate (an OAuth 2.0 / OpenID Connect
//! client registration), its commands, events, validated value types and rules.
//!
//! Pure: no I/O, no clock, no database, no HTTP. Time and hashed secrets arrive with the
//! commands; the write side (`registry-commands`) executes them against an event store.
#![cfg_attr(test, allow(clippy::restriction, clippy::too_many_lines))]

pub mod client;
pub mod metadata;
pub mod registration;
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
/// - `ClientRegistered` 1.0 → 1.1 and `ClientUpdated` 1.1 → 1.2: the RFC 7591 description
///   (`application_type`, `logo_uri`, …; `about` in an update). An older event described
///   nothing and changed none of it, which is what the fields' absence reads as.
/// - `ClientRegistered` 1.1 → 1.2 and `ClientUpdated` 1.2 → 1.3: the client's public keys
///   (`jwks`, `jwks_uri`; `keys` in an update), `private_key_jwt` and a secret's
///   `valid_until`. An older event had no keys, changed none, and its secret had no end,
///   which is what the fields' absence reads as.
/// - `ClientSecretRotated` 1.1 → 1.2: the new secret's `valid_until` (none before).
///
/// They run in this order, so a `ClientUpdated` 1.0 becomes 1.1, then 1.2, then 1.3.
pub fn upcasters() -> Vec<Box<dyn EventUpcaster>> {
    vec![
        Box::new(Relabel {
            event_type: "ClientUpdated",
            from: "1.0",
            to: "1.1",
        }),
        Box::new(Relabel {
            event_type: "ClientSecretRotated",
            from: "1.0",
            to: "1.1",
        }),
        Box::new(Relabel {
            event_type: "ClientSecretRotated",
            from: "1.1",
            to: client::CLIENT_SECRET_ROTATED_VERSION,
        }),
        Box::new(Relabel {
            event_type: "ClientRegistered",
            from: "1.0",
            to: "1.1",
        }),
        Box::new(Relabel {
            event_type: "ClientUpdated",
            from: "1.1",
            to: "1.2",
        }),
        Box::new(Relabel {
            event_type: "ClientRegistered",
            from: "1.1",
            to: client::CLIENT_REGISTERED_VERSION,
        }),
        Box::new(Relabel {
            event_type: "ClientUpdated",
            from: "1.2",
            to: client::CLIENT_UPDATED_VERSION,
        }),
    ]
}

/// An upcaster for a version whose new fields read as "nothing" when absent: the payload is
/// unchanged, the version says it was read as the newer one.
struct Relabel {
    event_type: &'static str,
    from: &'static str,
    to: &'static str,
}

impl EventUpcaster for Relabel {
    fn can_upcast(&self, event_type: &str, event_version: &str) -> bool {
        event_type == self.event_type && event_version == self.from
    }

    fn upcast(&self, event: SerializedEvent) -> SerializedEvent {
        SerializedEvent {
            event_version: self.to.to_owned(),
            ..event
        }
    }
}
