use std::fmt;

use serde::Serialize;

/// One violated rule, naming the offending field as the API spells it (`redirect_uris[1]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// The field, with an index for list entries: `allowed_cors_origins[0]`.
    pub field: String,
    /// What is wrong, safe to show a user.
    pub message: String,
}

/// Every rule a command broke, collected so the caller can fix them all at once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValidationErrors(Vec<FieldError>);

impl ValidationErrors {
    /// Records a violation.
    pub fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError {
            field: field.into(),
            message: message.into(),
        });
    }

    /// Appends every violation of `other`.
    pub fn merge(&mut self, other: Self) {
        self.0.extend(other.0);
    }

    /// Whether no rule was broken.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The violations, in the order they were found.
    pub fn errors(&self) -> &[FieldError] {
        &self.0
    }

    /// `Ok(value)` when nothing was recorded, else the collected errors.
    ///
    /// # Errors
    /// The collected [`ValidationErrors`] when there is at least one.
    pub fn into_result<T>(self, value: T) -> Result<T, Self> {
        if self.is_empty() {
            Ok(value)
        } else {
            Err(self)
        }
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect();
        write!(f, "invalid client: {}", parts.join("; "))
    }
}

/// Why the `Client` aggregate refused a command. Every message is safe to show a user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// One or more fields break the rules; each is named.
    #[error("{0}")]
    Invalid(ValidationErrors),
    /// The client was never registered, or has been deleted.
    #[error("client not found")]
    NotFound,
    /// A live client already has this id.
    #[error("a client with this client_id already exists")]
    AlreadyExists,
    /// The caller's `expected_version` (HTTP `If-Match`) is not the current version.
    #[error("the client is at version {actual}, not the expected version {expected}")]
    VersionMismatch {
        /// The version the caller based its change on.
        expected: u64,
        /// The current version.
        actual: u64,
    },
}
