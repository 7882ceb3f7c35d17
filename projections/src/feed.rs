//! The global feed: every event in one total order, read with a position cursor.

use chrono::{DateTime, SecondsFormat, Utc};
use registry_domain::client::ValidationErrors;
use registry_domain::ClientEvent;
use serde_json::Value;

use crate::stored::{StoredEvent, UnreadableEvent};

/// Default page size of the feed.
pub const DEFAULT_FEED_LIMIT: u32 = 100;
/// Largest page size of the feed.
pub const MAX_FEED_LIMIT: u32 = 1000;

/// The event types a feed can be filtered by.
pub const EVENT_TYPES: [&str; 4] = [
    "ClientRegistered",
    "ClientUpdated",
    "ClientSecretRotated",
    "ClientDeleted",
];

/// A validated feed query.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedQuery {
    /// Only events after this position.
    pub after: i64,
    /// At most this many events.
    pub limit: u32,
    /// Only this client's events.
    pub client_id: Option<String>,
    /// Only events of this type.
    pub event_type: Option<String>,
    /// Only events caused by this actor.
    pub actor: Option<String>,
    /// Only events recorded at or after this time.
    pub from: Option<DateTime<Utc>>,
    /// Only events recorded before this time.
    pub to: Option<DateTime<Utc>>,
}

impl FeedQuery {
    /// Validates the raw parameters, naming every bad one.
    ///
    /// # Errors
    /// [`ValidationErrors`] naming `after`, `limit`, `event_type` or `to`.
    pub fn parse(
        after: Option<i64>,
        limit: Option<u32>,
        client_id: Option<String>,
        event_type: Option<String>,
        actor: Option<String>,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let after = after.unwrap_or(0);
        if after < 0 {
            errors.add("after", "must be a position (0 or more)");
        }
        let limit = limit.unwrap_or(DEFAULT_FEED_LIMIT);
        if !(1..=MAX_FEED_LIMIT).contains(&limit) {
            errors.add("limit", format!("must be between 1 and {MAX_FEED_LIMIT}"));
        }
        if let Some(event_type) = &event_type {
            if !EVENT_TYPES.contains(&event_type.as_str()) {
                errors.add(
                    "event_type",
                    format!("must be one of {}", EVENT_TYPES.join(", ")),
                );
            }
        }
        if let (Some(from), Some(to)) = (from, to) {
            if to < from {
                errors.add("to", "must not be before from");
            }
        }
        errors.into_result(Self {
            after,
            limit,
            client_id,
            event_type,
            actor,
            from,
            to,
        })
    }

    /// A time as stored in event metadata (fixed width, so text order is time order).
    pub fn stored_time(time: DateTime<Utc>) -> String {
        time.to_rfc3339_opts(SecondsFormat::Micros, true)
    }
}

/// One entry of the feed: an event, or a row that cannot be read as one.
// Pages hold at most 1,000 entries, nearly all events: boxing either variant saves nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum FeedEntry {
    /// A readable event.
    Event(StoredEvent),
    /// A row that cannot be decoded.
    Unreadable(Box<UnreadableEvent>),
}

impl FeedEntry {
    /// Its position in the feed.
    pub fn position(&self) -> i64 {
        match self {
            Self::Event(event) => event.position,
            Self::Unreadable(row) => row.position,
        }
    }
}

/// Where one event sits: its client, its sequence there, its feed position, and whether the
/// projection parked it (it cannot be applied; the read model will not reflect it). What a
/// search index needs to follow the feed, without reading any payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedMark<'a> {
    /// The client id.
    pub aggregate_id: &'a str,
    /// Its sequence in that client's stream.
    pub sequence: u64,
    /// Its feed position.
    pub position: i64,
    /// Parked by the projection.
    pub parked: bool,
}

/// The marks of a stretch of the feed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MarkPage {
    /// `(client id, sequence, position, parked)` in feed order.
    pub marks: Vec<(String, u64, i64, bool)>,
    /// Pass as `after` next time (as [`FeedPage::next_after`]).
    pub next_after: i64,
}

impl MarkPage {
    /// The marks, borrowed.
    pub fn iter(&self) -> impl Iterator<Item = FeedMark<'_>> {
        self.marks
            .iter()
            .map(|(aggregate_id, sequence, position, parked)| FeedMark {
                aggregate_id,
                sequence: *sequence,
                position: *position,
                parked: *parked,
            })
    }
}

/// A page of the feed.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedPage {
    /// The events, in feed order.
    pub events: Vec<FeedEntry>,
    /// Pass as `after` for the next page. Past every event examined, so a filtered read never
    /// examines the same events twice; it stays put when nothing new is final yet.
    pub next_after: i64,
}

/// The event's data for readers: its fields, with every secret `hash` removed.
pub fn event_data(event: &ClientEvent) -> Value {
    let mut value = match serde_json::to_value(event) {
        // Externally tagged: {"ClientRegistered": {...}}; the type is reported separately.
        Ok(Value::Object(map)) => map.into_iter().next().map(|(_, v)| v).unwrap_or_default(),
        _ => Value::Null,
    };
    strip_hashes(&mut value);
    value
}

fn strip_hashes(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if map.contains_key("secret_id") {
                map.remove("hash");
            }
            map.values_mut().for_each(strip_hashes);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_hashes),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use registry_domain::values::{SecretHash, SecretRecord};

    #[test]
    fn event_data_never_carries_a_hash() {
        let hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA";
        let event = ClientEvent::ClientSecretRotated {
            secret: SecretRecord {
                secret_id: "s2".into(),
                hash: SecretHash::parse(hash).unwrap(),
                created_at: DateTime::<Utc>::default(),
                expires_at: None,
                valid_until: None,
            },
            previous_secrets_expire_at: DateTime::<Utc>::default(),
            ended_secrets: Vec::new(),
        };
        let data = event_data(&event);
        assert_eq!(data["secret"]["secret_id"], "s2");
        assert!(!data.to_string().contains("argon2"));
    }

    #[test]
    fn unknown_event_type_and_reversed_times_are_named() {
        let later = DateTime::<Utc>::default() + chrono::Duration::days(1);
        let errors = FeedQuery::parse(
            Some(-1),
            Some(0),
            None,
            Some("ClientCreated".into()),
            None,
            Some(later),
            Some(DateTime::<Utc>::default()),
        );
        let fields: Vec<String> = errors
            .err()
            .map(|e| e.errors().iter().map(|f| f.field.clone()).collect())
            .unwrap_or_default();
        assert_eq!(fields, ["after", "limit", "event_type", "to"]);
    }
}
