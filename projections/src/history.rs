//! What auditors ask: every change of a client with its field-level before and after, and the
//! client as it stood at a version or a time. Computed by replaying the client's stream.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::stored::StoredEvent;
use crate::view::{ApplyError, ClientRecord};

/// One field an event changed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldChange {
    /// The field, as the API names it (`secrets` lists secret ids only).
    pub field: String,
    /// Its value before the event (`null` when unset).
    pub before: Value,
    /// Its value after the event.
    pub after: Value,
}

/// One event of a client's history.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEntry {
    /// The event, with its metadata.
    pub event: StoredEvent,
    /// The fields it changed.
    pub changes: Vec<FieldChange>,
}

/// The fields a history compares, in the order the API lists them.
const FIELDS: [&str; 14] = [
    "client_id",
    "client_name",
    "client_uri",
    "require_client_secret",
    "enabled",
    "offline_access",
    "require_pkce",
    "grant_types",
    "redirect_uris",
    "post_logout_redirect_uris",
    "allowed_cors_origins",
    "allowed_scopes",
    "secrets",
    "deleted",
];

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

fn is_unset(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Array(items) => items.is_empty(),
        _ => false,
    }
}

/// The fields that differ between two states. A registration starts from nothing, so it lists
/// every field it sets.
fn diff(before: Option<&ClientRecord>, after: &ClientRecord) -> Vec<FieldChange> {
    let after_fields = fields(after);
    let before_fields = before.map(fields);
    FIELDS
        .iter()
        .filter_map(|field| {
            let new = after_fields.get(*field).cloned().unwrap_or(Value::Null);
            let old = before_fields
                .as_ref()
                .and_then(|f| f.get(*field).cloned())
                .unwrap_or(Value::Null);
            let changed = match &before_fields {
                None => !is_unset(&new) && *field != "deleted",
                Some(_) => old != new,
            };
            changed.then(|| FieldChange {
                field: (*field).to_owned(),
                before: old,
                after: new,
            })
        })
        .collect()
}

/// The settings fields that differ from `before` (nothing: a registration, listing every field
/// it sets) to `after`, named and valued as the history shows them.
pub fn settings_changes(
    before: Option<&registry_domain::ClientSettings>,
    after: &registry_domain::ClientSettings,
) -> Vec<FieldChange> {
    let as_map = |settings: &registry_domain::ClientSettings| match serde_json::to_value(settings) {
        Ok(Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    let new = as_map(after);
    let old = before.map(as_map);
    FIELDS
        .iter()
        .filter(|field| new.contains_key(**field))
        .filter_map(|field| {
            let after = new.get(*field).cloned().unwrap_or(Value::Null);
            let before = old
                .as_ref()
                .and_then(|o| o.get(*field).cloned())
                .unwrap_or(Value::Null);
            let changed = match &old {
                None => !is_unset(&after),
                Some(_) => before != after,
            };
            changed.then(|| FieldChange {
                field: (*field).to_owned(),
                before,
                after,
            })
        })
        .collect()
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
