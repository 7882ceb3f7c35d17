//! The client as readers see it, and how one stored event changes it. Pure: time comes from
//! the event metadata.

use chrono::{DateTime, Utc};
use registry_domain::client::{rotate, ClientEvent, ClientSettings, RotatingSecret};
use registry_domain::values::SecretRecord;
use registry_domain::StampedClient;
use serde::{Deserialize, Serialize};

use crate::stored::StoredEvent;

/// A secret as readers see it: never its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretView {
    /// Opaque id of the secret.
    pub secret_id: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When a rotation's grace ends for it; `None` while it is current.
    pub expires_at: Option<DateTime<Utc>>,
    /// The end of its lifetime (`client_secret_expires_at`); `None`: no end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<DateTime<Utc>>,
}

impl SecretView {
    /// When it stops being accepted: the earlier of a rotation's grace and its lifetime.
    pub fn ends_at(&self) -> Option<DateTime<Utc>> {
        registry_domain::values::earlier_end(self.expires_at, self.valid_until)
    }
}

impl From<&SecretRecord> for SecretView {
    fn from(record: &SecretRecord) -> Self {
        Self {
            secret_id: record.secret_id.clone(),
            created_at: record.created_at,
            expires_at: record.expires_at,
            valid_until: record.valid_until,
        }
    }
}

/// The client detail read model: everything but secret hashes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientView {
    /// Its id.
    pub client_id: String,
    /// Its settings.
    pub settings: ClientSettings,
    /// Its secrets that had not expired at its last change.
    pub secrets: Vec<SecretView>,
    /// Number of events in its stream (the `ETag`).
    pub version: u64,
    /// When it was (last) registered.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

impl ClientView {
    /// Its current secret: the newest that no rotation retired (a secret past its lifetime
    /// stays current until a rotation replaces it).
    pub fn current_secret(&self) -> Option<&SecretView> {
        self.secrets.iter().rev().find(|s| s.expires_at.is_none())
    }

    /// The view of a live client as the write side holds it (the state a command committed):
    /// the same view the projection builds from the same events. `None` unless the client is
    /// registered and not deleted.
    pub fn from_write_model(stamped: &StampedClient) -> Option<Self> {
        let state = stamped.client.live()?;
        Some(Self {
            client_id: state.client_id.to_string(),
            settings: state.settings.clone(),
            secrets: state.secrets.iter().map(SecretView::from).collect(),
            version: stamped.client.version(),
            created_at: stamped.registered_at?,
            updated_at: stamped.changed_at?,
        })
    }
}

/// The detail row of one client id: its view, whether it is deleted, and the feed position of
/// the last event applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRecord {
    /// The client as of `view.version`.
    pub view: ClientView,
    /// Deleted clients keep their row (a tombstone) so the sequence guard keeps working.
    pub deleted: bool,
    /// Global position of the last applied event.
    pub last_position: i64,
}

/// Why events could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The stream has a gap or starts with something other than a registration.
    #[error("event {sequence} of client {client_id} cannot follow version {version}")]
    OutOfOrder {
        /// The client.
        client_id: String,
        /// The event's sequence.
        sequence: u64,
        /// The version it was applied to.
        version: u64,
    },
}

impl ClientRecord {
    /// Applies `event` (the next in the client's stream) to `record`.
    ///
    /// # Errors
    /// [`ApplyError::OutOfOrder`] when the event does not directly follow the record, or a
    /// change arrives for a client that is not registered.
    pub fn apply(record: Option<Self>, event: &StoredEvent) -> Result<Self, ApplyError> {
        let version = record.as_ref().map_or(0, |r| r.view.version);
        let out_of_order = || ApplyError::OutOfOrder {
            client_id: event.aggregate_id.clone(),
            sequence: event.sequence,
            version,
        };
        if event.sequence != version + 1 {
            return Err(out_of_order());
        }
        let at = event.metadata.recorded_at;
        let mut record = match (record, &event.payload) {
            (
                _,
                ClientEvent::ClientRegistered {
                    client_id,
                    settings,
                    secret,
                },
            ) => Self {
                view: ClientView {
                    client_id: client_id.to_string(),
                    settings: settings.clone(),
                    secrets: secret.iter().map(SecretView::from).collect(),
                    version,
                    created_at: at,
                    updated_at: at,
                },
                deleted: false,
                last_position: event.position,
            },
            (Some(mut record), payload) if !record.deleted => {
                record.change(payload).ok_or_else(out_of_order)?;
                record
            }
            _ => return Err(out_of_order()),
        };
        record.view.version = event.sequence;
        record.view.updated_at = at;
        record.last_position = event.position;
        Ok(record)
    }

    /// Applies a change to a live client; `None` for a registration (out of order here).
    fn change(&mut self, payload: &ClientEvent) -> Option<()> {
        match payload {
            ClientEvent::ClientUpdated {
                changes,
                secret,
                revoked_secrets,
            } => {
                changes.apply_to(&mut self.view.settings);
                let secrets = &mut self.view.secrets;
                secrets.retain(|s| !revoked_secrets.contains(&s.secret_id));
                secrets.extend(secret.iter().map(SecretView::from));
            }
            ClientEvent::ClientSecretRotated {
                secret,
                previous_secrets_expire_at,
                ended_secrets,
            } => rotate(
                &mut self.view.secrets,
                secret.into(),
                *previous_secrets_expire_at,
                ended_secrets,
            ),
            ClientEvent::ClientDeleted {} => self.deleted = true,
            ClientEvent::ClientRegistered { .. } => return None,
        }
        Some(())
    }
}

/// The read model's secrets rotate by the aggregate's rule (`registry_domain::client::rotate`).
impl RotatingSecret for SecretView {
    fn parts(&mut self) -> (&str, DateTime<Utc>, &mut Option<DateTime<Utc>>) {
        (&self.secret_id, self.created_at, &mut self.expires_at)
    }
}

/// One row of the client list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListRow {
    /// Client id.
    pub client_id: String,
    /// Display name.
    pub client_name: String,
    /// Lowercased name, the sort key for `sort=client_name`.
    pub name_key: String,
    /// Base URL.
    pub client_uri: Option<String>,
    /// Whether it may authenticate.
    pub enabled: bool,
    /// Grant type names.
    pub grant_types: Vec<String>,
    /// What `search` matches against: lowercase id, U+001F, lowercase name.
    pub search_text: String,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// Separates id and name in `search_text`; no id or name can contain it (ids are unreserved
/// characters, names have no control characters), so no search term matches across the two.
pub const SEARCH_SEPARATOR: char = '\u{1f}';

impl From<&ClientView> for ListRow {
    fn from(view: &ClientView) -> Self {
        let name = view.settings.client_name.to_string();
        Self {
            client_id: view.client_id.clone(),
            name_key: name.to_lowercase(),
            search_text: format!(
                "{}{SEARCH_SEPARATOR}{}",
                view.client_id.to_lowercase(),
                name.to_lowercase()
            ),
            client_name: name,
            client_uri: view.settings.client_uri.as_ref().map(ToString::to_string),
            enabled: view.settings.enabled,
            grant_types: view
                .settings
                .grant_types
                .iter()
                .map(|g| g.as_str().to_owned())
                .collect(),
            created_at: view.created_at,
            updated_at: view.updated_at,
        }
    }
}
