use chrono::{DateTime, Utc};

use super::settings::ClientSettingsInput;
use crate::values::SecretRecord;

/// A request to change a client. Each command produces at most one event.
///
/// Time arrives with the command (`at`): the domain never reads the clock. Secrets arrive
/// already hashed, as [`SecretRecord`]s: the write side generates and hashes them.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientCommand {
    /// Register a new client, or register a deleted client's id again.
    Register(RegisterClient),
    /// Replace every editable setting.
    Update(UpdateClient),
    /// Replace the secret of a confidential client.
    RotateSecret(RotateSecret),
    /// Delete the client.
    Delete(DeleteClient),
}

/// Register a client.
#[derive(Debug, Clone, PartialEq)]
pub struct RegisterClient {
    /// The id to register; must equal the aggregate id the command is sent to.
    pub client_id: String,
    /// Every setting, unvalidated.
    pub settings: ClientSettingsInput,
    /// The first secret; required for a confidential client, refused for a public one.
    pub secret: Option<SecretRecord>,
    /// Only register if the stream is at this version (0: never registered).
    pub expected_version: Option<u64>,
}

/// Replace the settings of a live client. `client_id` cannot change.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateClient {
    /// Every editable setting, unvalidated.
    pub settings: ClientSettingsInput,
    /// A secret for a client that becomes confidential without an active secret.
    pub new_secret: Option<SecretRecord>,
    /// Only update if the client is at this version (HTTP `If-Match`).
    pub expected_version: Option<u64>,
    /// When the command is executed.
    pub at: DateTime<Utc>,
}

/// Give a confidential client a new secret.
#[derive(Debug, Clone, PartialEq)]
pub struct RotateSecret {
    /// The new secret.
    pub secret: SecretRecord,
    /// Until when the previous secrets stay valid (a grace period); `None`: they stop now.
    pub previous_secrets_valid_until: Option<DateTime<Utc>>,
    /// Only rotate if the client is at this version.
    pub expected_version: Option<u64>,
}

/// Delete a live client.
#[derive(Debug, Clone, PartialEq)]
pub struct DeleteClient {
    /// Only delete if the client is at this version.
    pub expected_version: Option<u64>,
}
