use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use super::settings::{ClientChanges, ClientSettings};
use crate::values::{ClientId, SecretRecord};

/// The shape version of `ClientDeleted`. A change of shape gets a new version and an upcaster
/// (see [`crate::upcasters`]); stored events are never rewritten.
pub const EVENT_VERSION: &str = "1.0";

/// The shape version of `ClientRegistered`: 1.1 added the RFC 7591 description to the
/// settings (`application_type`, `logo_uri`, `tos_uri`, `policy_uri`, `contacts`,
/// `software_id`, `software_version`) and `token_endpoint_auth_method`, each left out when
/// unset. A 1.0 event described nothing and named no method, which is what their absence
/// reads as. 1.2 added the client's public keys (`jwks`, `jwks_uri`), the method
/// `private_key_jwt` and the secret's `valid_until`; a 1.1 event had none of them.
pub const CLIENT_REGISTERED_VERSION: &str = "1.2";

/// The shape version of `ClientUpdated`: 1.1 added `revoked_secrets` (a 1.0 event revoked
/// nothing: making a client public kept its secrets then); 1.2 added `about`, the new RFC 7591
/// description, and `token_endpoint_auth_method` (a 1.1 event changed neither); 1.3 added
/// `keys` (`jwks`, `jwks_uri`), the method `private_key_jwt` and a new secret's
/// `valid_until` (a 1.2 event changed no keys, its secret had no end). Their upcasters say so
/// explicitly.
pub const CLIENT_UPDATED_VERSION: &str = "1.3";

/// The shape version of `ClientSecretRotated`: 1.1 added `ended_secrets`. A 1.0 event ended
/// none (every previous secret kept the grace period, so overlapping rotations kept more than
/// two secrets valid); its upcaster says so explicitly. 1.2 added the new secret's
/// `valid_until` (a 1.1 secret had no end).
pub const CLIENT_SECRET_ROTATED_VERSION: &str = "1.2";

/// What happened to a client. Past tense, immutable once stored. Secrets appear only as
/// [`SecretRecord`]s (id and argon2id hash), never in plaintext.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientEvent {
    /// The client was registered (first time, or again after a delete).
    ClientRegistered {
        /// Its id.
        client_id: ClientId,
        /// Every setting.
        settings: ClientSettings,
        /// The first secret of a confidential client.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        secret: Option<SecretRecord>,
    },
    /// Settings changed; only the changed fields are present.
    ClientUpdated {
        /// The changed fields with their new values.
        changes: ClientChanges,
        /// A secret generated because the client became confidential (or stayed so) without
        /// an active one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        secret: Option<SecretRecord>,
        /// Ids of the secrets this change revoked: every secret of a client made public (a
        /// public client has none, and one made confidential again gets a new one, never an
        /// old, possibly leaked one back). Since event version 1.1.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        revoked_secrets: Vec<String>,
    },
    /// A new secret replaced the previous ones.
    ClientSecretRotated {
        /// The new secret.
        secret: SecretRecord,
        /// Until when the previous secrets stay valid; equal to the new secret's `created_at`
        /// when they stop at once.
        previous_secrets_expire_at: DateTime<Utc>,
        /// Ids of the secrets whose validity ends at this rotation, whatever the grace: those
        /// still in the grace period of an earlier rotation (at most two secrets are valid at
        /// once: the new one, and the one it replaced during its grace). Since version 1.1.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        ended_secrets: Vec<String>,
    },
    /// The client was deleted; its id may be registered again, continuing this stream.
    ClientDeleted {},
}

impl ClientEvent {
    /// The event's type name, as stored in the `event_type` column.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::ClientRegistered { .. } => "ClientRegistered",
            Self::ClientUpdated { .. } => "ClientUpdated",
            Self::ClientSecretRotated { .. } => "ClientSecretRotated",
            Self::ClientDeleted {} => "ClientDeleted",
        }
    }
}

impl DomainEvent for ClientEvent {
    fn event_type(&self) -> String {
        self.type_name().to_owned()
    }

    fn event_version(&self) -> String {
        match self {
            Self::ClientRegistered { .. } => CLIENT_REGISTERED_VERSION,
            Self::ClientUpdated { .. } => CLIENT_UPDATED_VERSION,
            Self::ClientSecretRotated { .. } => CLIENT_SECRET_ROTATED_VERSION,
            _ => EVENT_VERSION,
        }
        .to_owned()
    }
}
