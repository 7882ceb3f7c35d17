//! What a command is given and what it answers.

use chrono::{DateTime, Utc};
use cqrs_es::persist::EventStoreAggregateContext;
use registry_domain::{Client, StampedClient};

use crate::secrets::SecretString;

/// Who asks, when, in which request, and why: becomes the metadata of the events.
#[derive(Debug, Clone)]
pub struct CommandContext {
    /// The authenticated principal (never taken from a request body).
    pub actor: String,
    /// The request id (`x-request-id`).
    pub request_id: String,
    /// The caller's reason for the change (`X-Change-Reason`), if given.
    pub reason: Option<String>,
    /// When the command is executed (microsecond precision, as stored).
    pub at: DateTime<Utc>,
}

/// A secret a command created.
#[derive(Debug, Clone)]
pub struct NewSecret {
    /// Its id.
    pub secret_id: String,
    /// The plaintext, only when the server generated it; a caller-supplied secret is not
    /// echoed back.
    pub generated: Option<SecretString>,
}

/// What a successful command did.
#[derive(Debug, Clone)]
pub struct Executed {
    /// The client's version after the command (unchanged for a no-op update).
    pub version: u64,
    /// The secret the command created, if any.
    pub secret: Option<NewSecret>,
    /// The client exactly as the command left it (what was committed, or what was loaded
    /// for a no-op update): the answer is built from this, never from a read after the
    /// commit that could fail or already show a later write.
    pub client: StampedClient,
}

/// The answer of a secret verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    /// A valid secret of the client, valid until `expires_at` (`None`: its current secret).
    Valid {
        /// When it stops being valid.
        expires_at: Option<DateTime<Utc>>,
    },
    /// Not a valid secret of an existing, enabled, confidential client.
    Invalid,
}

impl Verification {
    /// Whether the secret is valid.
    pub fn is_valid(&self) -> bool {
        matches!(self, Self::Valid { .. })
    }
}

pub(super) type Context = EventStoreAggregateContext<Client>;

/// A client loaded for a command: the context cqrs-es commits against, and the times of its
/// registration and last change.
pub(super) struct Loaded {
    pub(super) context: Context,
    pub(super) registered_at: Option<DateTime<Utc>>,
    pub(super) changed_at: Option<DateTime<Utc>>,
}

impl Loaded {
    pub(super) fn aggregate(&self) -> &Client {
        &self.context.aggregate
    }
}
