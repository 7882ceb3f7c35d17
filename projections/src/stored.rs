//! Events as read back from the `events` table, upcast and decoded.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use cqrs_es::persist::{EventUpcaster, SerializedEvent};
use cqrs_es::Aggregate;
use registry_domain::{Client, ClientEvent, EventMetadata};
use serde_json::Value;

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
    /// The event, as JSON text (read as text so that a row that is not JSON is an event
    /// that cannot be decoded, not a database error).
    pub payload: String,
    /// The metadata string map, as JSON text.
    pub metadata: String,
    /// When the database stored it (`None` if the column cannot be read).
    pub recorded_at: Option<DateTime<Utc>>,
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

/// Why a stored event could not be decoded. The reason is serde's, with every quoted value
/// blanked out: it reaches logs, `projections status` and the feed, and a malformed row may
/// hold anything (a secret's hash, say).
#[derive(Debug, thiserror::Error)]
#[error("event {sequence} of client {aggregate_id} cannot be decoded: {reason}")]
pub struct DecodeError {
    aggregate_id: String,
    sequence: i64,
    reason: String,
}

/// `message` with the contents of every double-quoted string replaced by `…`.
fn redact(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut quoted = false;
    for c in message.chars() {
        if c == '"' {
            if quoted {
                out.push('…');
            }
            quoted = !quoted;
            out.push(c);
        } else if !quoted {
            out.push(c);
        }
    }
    out
}

impl RawEvent {
    fn metadata_from(&self, map: &HashMap<String, String>) -> EventMetadata {
        EventMetadata::from_map(map).unwrap_or_else(|| EventMetadata {
            event_id: map.get("event_id").cloned().unwrap_or_default(),
            actor: map.get("actor").cloned().unwrap_or_default(),
            request_id: map.get("request_id").cloned().unwrap_or_default(),
            recorded_at: self.recorded_at.unwrap_or_default(),
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
                &serde_json::from_str::<HashMap<String, Value>>(&self.metadata)
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
        let error = |source: serde_json::Error| DecodeError {
            aggregate_id: self.aggregate_id.clone(),
            sequence: self.sequence,
            reason: redact(&source.to_string()),
        };
        let payload: Value = serde_json::from_str(&self.payload).map_err(error)?;
        let metadata: Value = serde_json::from_str(&self.metadata).map_err(error)?;
        let serialized = SerializedEvent::new(
            self.aggregate_id.clone(),
            usize::try_from(self.sequence).unwrap_or_default(),
            Client::TYPE.to_owned(),
            self.event_type.clone(),
            self.event_version.clone(),
            payload,
            metadata.clone(),
        );
        let upcast = upcasters.iter().fold(serialized, |event, upcaster| {
            if upcaster.can_upcast(&event.event_type, &event.event_version) {
                upcaster.upcast(event)
            } else {
                event
            }
        });
        let payload: ClientEvent = serde_json::from_value(upcast.payload).map_err(error)?;
        // A version this build does not know (written by a newer one) may carry facts that
        // this shape would drop without a word (as 1.0 readers ignore 1.1's revoked_secrets):
        // refuse it rather than project a wrong state.
        let known = cqrs_es::DomainEvent::event_version(&payload);
        if upcast.event_version != known {
            return Err(DecodeError {
                aggregate_id: self.aggregate_id.clone(),
                sequence: self.sequence,
                reason: format!(
                    "event version {} is not one this build knows ({known})",
                    upcast.event_version
                ),
            });
        }
        let map: HashMap<String, String> = serde_json::from_value(metadata).map_err(error)?;
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

/// A stored event that cannot be read as any current event type (a malformed or foreign row,
/// or a shape no upcaster knows). The feed still shows where it is and what the row says it
/// is, so one bad row neither hides the events after it nor fails every page that holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct UnreadableEvent {
    /// The client id the row names.
    pub aggregate_id: String,
    /// Its sequence in that client's stream.
    pub sequence: u64,
    /// Its position in the feed.
    pub position: i64,
    /// The event type the row names.
    pub event_type: String,
    /// The shape version the row names.
    pub event_version: String,
    /// Its metadata, as far as it could be read.
    pub metadata: EventMetadata,
    /// Why it cannot be read.
    pub error: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_version_this_build_does_not_know_is_refused() {
        let raw = RawEvent {
            aggregate_id: "c".into(),
            sequence: 1,
            position: 1,
            event_type: "ClientDeleted".into(),
            event_version: "9.0".into(),
            payload: r#"{"ClientDeleted": {}}"#.into(),
            metadata: "{}".into(),
            recorded_at: None,
        };
        let error = raw
            .clone()
            .decode(&registry_domain::upcasters())
            .unwrap_err();
        assert!(error.to_string().contains("9.0"), "{error}");
        let known = RawEvent {
            event_version: "1.0".into(),
            ..raw
        };
        assert!(known.decode(&registry_domain::upcasters()).is_ok());
    }

    #[test]
    fn a_decode_error_never_repeats_a_stored_value() {
        let raw = RawEvent {
            aggregate_id: "c".into(),
            sequence: 1,
            position: 1,
            event_type: "ClientRegistered".into(),
            event_version: "1.0".into(),
            payload: r#"{"ClientRegistered": {"client_id": 7, "settings": "$argon2id$v=19$secret-looking"}}"#.into(),
            metadata: "{}".into(),
            recorded_at: None,
        };
        let error = raw.clone().decode(&[]).unwrap_err().to_string();
        assert!(error.contains("cannot be decoded"), "{error}");
        assert!(!error.contains("argon2"), "{error}");
        let not_json = RawEvent {
            payload: "not json at all".into(),
            ..raw
        };
        assert!(
            not_json.decode(&[]).is_err(),
            "a row that is not JSON is undecodable"
        );
    }
}
