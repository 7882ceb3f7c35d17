//! What auditors ask: every change of a client with its field-level before and after, and the
//! client as it stood at a version or a time. Computed by replaying the client's stream.

use chrono::{DateTime, Utc};
use serde_json::Value;

use registry_domain::client::changes::field_changes;
pub use registry_domain::client::changes::{settings_changes, FieldChange};

use crate::stored::StoredEvent;
use crate::view::{ApplyError, ClientRecord};

/// One event of a client's history.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEntry {
    /// The event, with its metadata.
    pub event: StoredEvent,
    /// The fields it changed.
    pub changes: Vec<FieldChange>,
}

/// The client's auditable fields as JSON; secrets as their ids only.
fn fields(record: &ClientRecord) -> serde_json::Map<String, Value> {
    let mut map = match serde_json::to_value(&record.view.settings) {
        Ok(Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    map.insert(
        "client_id".into(),
        Value::from(record.view.client_id.clone()),
    );
    let ids: Vec<Value> = record
        .view
        .secrets
        .iter()
        .map(|s| Value::from(s.secret_id.clone()))
        .collect();
    map.insert("secrets".into(), Value::Array(ids));
    map.insert("deleted".into(), Value::Bool(record.deleted));
    map
}

/// The fields that differ between two states. A registration starts from nothing, so it lists
/// every field it sets.
fn diff(before: Option<&ClientRecord>, after: &ClientRecord) -> Vec<FieldChange> {
    field_changes(before.map(fields).as_ref(), &fields(after))
}

/// Every event of a client's stream with the fields it changed.
///
/// # Errors
/// [`ApplyError`] when the stream is out of order.
pub fn history(events: Vec<StoredEvent>) -> Result<Vec<HistoryEntry>, ApplyError> {
    let mut record: Option<ClientRecord> = None;
    let mut entries = Vec::with_capacity(events.len());
    for event in events {
        let next = ClientRecord::apply(record.clone(), &event)?;
        let registration = matches!(
            event.payload,
            registry_domain::ClientEvent::ClientRegistered { .. }
        );
        let before = if registration { None } else { record.as_ref() };
        let changes = diff(before, &next);
        entries.push(HistoryEntry { event, changes });
        record = Some(next);
    }
    Ok(entries)
}

/// A client as it stood at some point of its stream.
#[derive(Debug, Clone, PartialEq)]
pub enum AsOf {
    /// Not registered yet then.
    NotRegistered,
    /// Live, with this state.
    Live(Box<ClientRecord>),
    /// Deleted then.
    Deleted {
        /// Its version at that point.
        version: u64,
        /// When it was deleted.
        deleted_at: DateTime<Utc>,
    },
}

/// Replays the events for which `include` holds (a prefix of the stream: replay stops at the
/// first event it rejects).
///
/// # Errors
/// [`ApplyError`] when the stream is out of order.
pub fn as_of(
    events: &[StoredEvent],
    include: impl Fn(&StoredEvent) -> bool,
) -> Result<AsOf, ApplyError> {
    let mut record: Option<ClientRecord> = None;
    for event in events.iter().take_while(|e| include(e)) {
        record = Some(ClientRecord::apply(record, event)?);
    }
    Ok(match record {
        None => AsOf::NotRegistered,
        Some(record) if record.deleted => AsOf::Deleted {
            version: record.view.version,
            deleted_at: record.view.updated_at,
        },
        Some(record) => AsOf::Live(Box::new(record)),
    })
}
