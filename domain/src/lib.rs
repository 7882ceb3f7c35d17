//! The domain of the client registry: the `Client` aggregate (an OAuth 2.0 / OpenID Connect
//! client registration), its commands, events, validated value types and rules.
//!
//! Pure: no I/O, no clock, no database, no HTTP. Time and hashed secrets arrive with the
//! commands; the write side (`registry-commands`) executes them against an event store.
#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod client;
pub mod metadata;
pub mod values;

use cqrs_es::persist::EventUpcaster;

pub use client::{
    Client, ClientCommand, ClientError, ClientEvent, ClientSettings, ClientSettingsInput,
    ClientState, StampedClient,
};
pub use metadata::EventMetadata;

/// The upcasters that bring stored events of older `event_version`s to the current shape.
/// Every reader of stored events (aggregate loading, projections, the feed) applies them.
/// Empty while every event is at its first version.
pub fn upcasters() -> Vec<Box<dyn EventUpcaster>> {
    Vec::new()
}
