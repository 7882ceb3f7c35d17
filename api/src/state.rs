//! What every handler shares.

use std::sync::Arc;

use registry_commands::{ClientCommands, Database};
use registry_projections::{as_of, AsOf, ClientView, Projector, ReadStore, SearchIndex};

use crate::auth::Authenticator;
use crate::error::ApiError;

/// The application state: the write side, the read side, and the database behind both.
#[derive(Clone)]
pub struct AppState {
    /// The write side.
    pub commands: Arc<ClientCommands>,
    /// The read side.
    pub reads: Arc<dyn ReadStore>,
    /// The database (for readiness).
    pub database: Database,
    /// Checks bearer tokens.
    pub authenticator: Arc<Authenticator>,
    /// Keeps the read models in step (inline and in the background).
    pub projector: Arc<Projector>,
    /// The client list in memory, for search.
    pub search: Arc<SearchIndex>,
}

impl AppState {
    /// The client exactly as a write left it, at `version` (read-your-writes, and the right
    /// `ETag` even when another write followed at once). The command's own projection ran
    /// before it returned, so the read model usually is at `version`; when it is not (a later
    /// write already landed, or the projection failed), the client's stream is replayed up to
    /// `version`.
    ///
    /// # Errors
    /// [`ApiError::Internal`] when the client does not exist at `version`.
    pub async fn client_after_write(
        &self,
        client_id: &str,
        version: u64,
    ) -> Result<ClientView, ApiError> {
        if let Some(view) = self.reads.client(client_id).await? {
            if view.version == version {
                return Ok(view);
            }
        }
        let events = self.reads.client_events(client_id).await?;
        match as_of(&events, |e| e.sequence <= version).map_err(|e| ApiError::Internal(e.into()))? {
            AsOf::Live(record) => Ok(record.view),
            _ => Err(ApiError::Internal(anyhow::anyhow!(
                "client {client_id} does not exist at version {version} after a write"
            ))),
        }
    }
}
