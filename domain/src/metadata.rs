//! The metadata stored with every event: who, when, why, and which request.

use std::collections::HashMap;

use chrono::{DateTime, SecondsFormat, Utc};

/// Metadata of one event. Stored by cqrs-es as a string map (`metadata` column); the keys are
/// the constants below.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventMetadata {
    /// Unique id of the event (UUID v7).
    pub event_id: String,
    /// The authenticated principal that caused it (`system` for seeding).
    pub actor: String,
    /// The `x-request-id` of the HTTP request that caused it.
    pub request_id: String,
    /// When the command was executed.
    pub recorded_at: DateTime<Utc>,
    /// Why, when the caller said so (`X-Change-Reason`).
    pub reason: Option<String>,
}

const EVENT_ID: &str = "event_id";
const ACTOR: &str = "actor";
const REQUEST_ID: &str = "request_id";
const RECORDED_AT: &str = "recorded_at";
const REASON: &str = "reason";

impl EventMetadata {
    /// The string map cqrs-es stores.
    pub fn to_map(&self) -> HashMap<String, String> {
        let mut map = HashMap::from([
            (EVENT_ID.to_owned(), self.event_id.clone()),
            (ACTOR.to_owned(), self.actor.clone()),
            (REQUEST_ID.to_owned(), self.request_id.clone()),
            (
                RECORDED_AT.to_owned(),
                self.recorded_at
                    .to_rfc3339_opts(SecondsFormat::Micros, true),
            ),
        ]);
        if let Some(reason) = &self.reason {
            map.insert(REASON.to_owned(), reason.clone());
        }
        map
    }

    /// Reads the map back; missing keys become empty strings, an unreadable time `None`.
    pub fn from_map(map: &HashMap<String, String>) -> Option<Self> {
        let get = |key: &str| map.get(key).cloned().unwrap_or_default();
        let recorded_at = DateTime::parse_from_rfc3339(map.get(RECORDED_AT)?)
            .ok()?
            .with_timezone(&Utc);
        Some(Self {
            event_id: get(EVENT_ID),
            actor: get(ACTOR),
            request_id: get(REQUEST_ID),
            recorded_at,
            reason: map.get(REASON).cloned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn metadata_round_trips_through_the_string_map() {
        let metadata = EventMetadata {
            event_id: "0193".into(),
            actor: "admin".into(),
            request_id: "req-1".into(),
            recorded_at: Utc
                .timestamp_micros(1_790_000_000_123_456)
                .single()
                .unwrap_or_default(),
            reason: Some("ticket 42".into()),
        };
        assert_eq!(EventMetadata::from_map(&metadata.to_map()), Some(metadata));
    }
}
