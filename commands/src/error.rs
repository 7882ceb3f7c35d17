//! Why a command failed: the one error type of the write side.

use cqrs_es::AggregateError;
use registry_domain::ClientError;

use crate::secrets::HashingError;

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The aggregate refused it: not found, already exists, stale version, invalid fields.
    #[error(transparent)]
    Rejected(#[from] ClientError),
    /// Another command on the same client committed first; nothing was written.
    #[error("the client was changed concurrently; reload it and retry")]
    Conflict,
    /// Every hashing thread is busy and the queue is full, or the writers' queue did not
    /// move for [`crate::service::WRITER_GATE_WAIT`]; nothing was written. Try again shortly.
    #[error("the service is busy; retry shortly")]
    Busy,
    /// The caller went away before the write began; nothing was written.
    #[error("the caller went away before the write began")]
    Abandoned,
    /// The database or hashing failed.
    #[error("command could not be executed")]
    Infrastructure(#[source] anyhow::Error),
}

impl From<HashingError> for CommandError {
    fn from(error: HashingError) -> Self {
        match error {
            HashingError::Busy => Self::Busy,
            other => Self::Infrastructure(other.into()),
        }
    }
}

impl From<AggregateError<ClientError>> for CommandError {
    fn from(error: AggregateError<ClientError>) -> Self {
        match error {
            AggregateError::UserError(e) => Self::Rejected(e),
            AggregateError::AggregateConflict => Self::Conflict,
            AggregateError::DatabaseConnectionError(e)
            | AggregateError::DeserializationError(e)
            | AggregateError::UnexpectedError(e) => Self::Infrastructure(unbox(e)),
        }
    }
}

fn unbox(error: Box<dyn std::error::Error + Send + Sync>) -> anyhow::Error {
    match error.downcast::<sqlx::Error>() {
        Ok(sqlx) => anyhow::Error::new(*sqlx),
        Err(other) => anyhow::anyhow!(other),
    }
}
