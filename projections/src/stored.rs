//! Events as read back from the `events` table, upcast and decoded.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use cqrs_es::persist::{EventUpcaster, SerializedEvent};
use cqrs_es::Aggregate;
use registry_domain::{Client, ClientEvent, EventMetadata};
use serde_json::Value;

use crate::feed::UnreadableEvent;

/// An event row as stored, before decoding.
#[derive(Debug, Clone)]
pub struct RawEvent {
    /// The client id.
    pub aggregate_id: String,
    /// Position in the client's stream, from 1.
    pub sequence: i64,
    /// Position in the global feed.
    pub position: i64,
    /// `ClientRegistered`, …
    pub event_type: String,
    /// Shape version of the payload.
    pub event_version: String,
    /// The event, as JSON.
    pub payload: Value,
    /// The metadata string map, as JSON.
    pub metadata: Value,
    /// When the database stored it.
    pub recorded_at: DateTime<Utc>,
}

/// A decoded event with its position in the client's stream and in the global feed.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    /// The client id.
    pub aggregate_id: String,
    /// Position in the client's stream, from 1.
    pub sequence: u64,
    /// Position in the global feed.
    pub position: i64,
    /// Shape version it was stored with (before upcasting).
    pub event_version: String,
    /// The event, at its current shape.
    pub payload: ClientEvent,
    /// Who, when, why.
    pub metadata: EventMetadata,
}

/// Why a stored event could not be decoded.
#[derive(Debug, thiserror::Error)]
#[error("event {sequence} of client {aggregate_id} cannot be decoded: {source}")]
pub struct DecodeError {
    aggregate_id: String,
    sequence: i64,
    source: serde_json::Error,
}

impl RawEvent {
    fn metadata_from(&self, map: &HashMap<String, String>) -> EventMetadata {
        EventMetadata::from_map(map).unwrap_or_else(|| EventMetadata {
            event_id: map.get("event_id").cloned().unwrap_or_default(),
            actor: map.get("actor").cloned().unwrap_or_default(),
            request_id: map.get("request_id").cloned().unwrap_or_default(),
            recorded_at: self.recorded_at,
            reason: map.get("reason").cloned(),
        })
    }

    /// Decodes the row as [`Self::decode`] does, or, when it cannot be, describes it as an
    /// [`UnreadableEvent`] with as much of its metadata as can be read.
    pub fn decode_or_describe(
        self,
        upcasters: &[Box<dyn EventUpcaster>],
    ) -> Result<StoredEvent, Box<UnreadableEvent>> {
        let described = UnreadableEvent {
            aggregate_id: self.aggregate_id.clone(),
            sequence: u64::try_from(self.sequence).unwrap_or_default(),
            position: self.position,
            event_type: self.event_type.clone(),
            event_version: self.event_version.clone(),
            metadata: self.metadata_from(
                &serde_json::from_value::<HashMap<String, Value>>(self.metadata.clone())
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|(k, v)| v.as_str().map(|v| (k, v.to_owned())))
                    .collect(),
            ),
            error: String::new(),
        };
        self.decode(upcasters).map_err(|error| {
            Box::new(UnreadableEvent {
                error: error.to_string(),
                ..described
            })
        })
    }

    /// Upcasts the payload to the current shape and decodes payload and metadata. Metadata
    /// without a readable `recorded_at` takes the row's `recorded_at`.
    ///
    /// # Errors
    /// [`DecodeError`] when the payload or metadata does not match the current event types.
    pub fn decode(self, upcasters: &[Box<dyn EventUpcaster>]) -> Result<StoredEvent, DecodeError> {
        let error = |source| DecodeError {
            aggregate_id: self.aggregate_id.clone(),
            sequence: self.sequence,
            source,
        };
        let serialized = SerializedEvent::new(
            self.aggregate_id.clone(),
            usize::try_from(self.sequence).unwrap_or_default(),
            Client::TYPE.to_owned(),
            self.event_type.clone(),
            self.event_version.clone(),
            self.payload.clone(),
            self.metadata.clone(),
        );
        let upcast = upcasters.iter().fold(serialized, |event, upcaster| {
            if upcaster.can_upcast(&event.event_type, &event.event_version) {
                upcaster.upcast(event)
            } else {
                event
            }
        });
        let payload: ClientEvent = serde_json::from_value(upcast.payload).map_err(error)?;
        let map: HashMap<String, String> =
            serde_json::from_value(self.metadata.clone()).map_err(error)?;
        let metadata = self.metadata_from(&map);
        Ok(StoredEvent {
            aggregate_id: self.aggregate_id,
            sequence: u64::try_from(self.sequence).unwrap_or_default(),
            position: self.position,
            event_version: self.event_version,
            payload,
            metadata,
        })
    }
}
