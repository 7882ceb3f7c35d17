use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::ValueError;

/// An argon2id hash of a client secret in PHC string form (`$argon2id$v=19$m=…`). The domain
/// never sees a plaintext secret; this is all it keeps. `Debug` does not print the hash.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SecretHash(String);

impl SecretHash {
    /// Accepts an argon2id PHC string.
    ///
    /// # Errors
    /// A [`ValueError`] when the string is not an argon2id PHC hash.
    pub fn parse(s: &str) -> Result<Self, ValueError> {
        if s.starts_with("$argon2id$") && s.len() <= 512 {
            Ok(Self(s.to_owned()))
        } else {
            Err(ValueError::new("is not an argon2id hash"))
        }
    }
}

impl AsRef<str> for SecretHash {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for SecretHash {
    type Error = ValueError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<SecretHash> for String {
    fn from(value: SecretHash) -> Self {
        value.0
    }
}

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretHash(…)")
    }
}

/// One secret of a confidential client: its id, its hash, when it was created, until when a
/// rotation leaves it valid, and the end of its lifetime (`client_secret_expires_at`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretRecord {
    /// Opaque, unique id of the secret (a UUID); what admins and auditors see.
    pub secret_id: String,
    /// The argon2id hash.
    pub hash: SecretHash,
    /// When the secret was created.
    pub created_at: DateTime<Utc>,
    /// When a rotation's grace ends for it; `None` while it is the current secret.
    pub expires_at: Option<DateTime<Utc>>,
    /// The end of its lifetime, set when it was issued (`REGISTRY_SECRET_LIFETIME_DAYS`;
    /// RFC 7591's `client_secret_expires_at`); `None`: no end. Since `ClientRegistered` 1.2,
    /// `ClientUpdated` 1.3, `ClientSecretRotated` 1.2; older secrets have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<DateTime<Utc>>,
}

impl SecretRecord {
    /// Whether the secret is accepted at `at`: before its grace ends and before its lifetime
    /// does.
    pub fn is_active_at(&self, at: DateTime<Utc>) -> bool {
        self.ends_at().is_none_or(|end| end > at)
    }

    /// When it stops being accepted, by whichever comes first: a rotation's grace or the end
    /// of its lifetime (`None`: neither).
    pub fn ends_at(&self) -> Option<DateTime<Utc>> {
        earlier_end(self.expires_at, self.valid_until)
    }
}

/// The earlier of a secret's two ends, a rotation's grace and its lifetime (`None`: neither).
pub fn earlier_end(
    grace: Option<DateTime<Utc>>,
    lifetime: Option<DateTime<Utc>>,
) -> Option<DateTime<Utc>> {
    match (grace, lifetime) {
        (Some(grace), Some(life)) => Some(grace.min(life)),
        (grace, life) => grace.or(life),
    }
}
