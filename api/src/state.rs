//! What every handler shares.

use std::sync::Arc;

use registry_commands::{ClientCommands, Database, Executed};
use registry_projections::{ClientView, Projector, ReadStore, SearchIndex};

use crate::auth::Authenticator;
use crate::error::ApiError;
use crate::supervisor::Supervisor;

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
    /// This process's background tasks, for readiness and metrics.
    pub supervisor: Arc<Supervisor>,
    /// Bounds the exports running and waiting.
    pub exports: Arc<crate::exports::ExportGate>,
    /// Settings of the admin screens.

    /// This app's metrics.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The sealed log: its store and signing key.
    pub sealer: Arc<registry_projections::seal::sealer::Sealer>,
    /// Set once the process is shutting down: readiness fails, connections are closed after
    /// their answer.
    pub draining: Arc<std::sync::atomic::AtomicBool>,
    /// Places for long-polling readers of the feed (`GET /events?wait=`).
    pub feed_waiters: Arc<tokio::sync::Semaphore>,
    /// The longest such a reader really waits (`REGISTRY_FEED_WAIT_LIMIT_SECONDS`).
    pub feed_wait_limit: std::time::Duration,
    /// How long a signed plan may be applied after it was made (`REGISTRY_PLAN_LIFETIME_MINUTES`).
    pub plan_lifetime: chrono::Duration,
    /// Profile checks report a secret older than this (`REGISTRY_MAX_SECRET_AGE_DAYS`).
    pub max_secret_age: Option<chrono::Duration>,
    /// Dynamic client registration, when on (`REGISTRY_DYNAMIC_REGISTRATION`).
    pub registration: Option<Arc<Registration>>,
    /// Client ID metadata documents, when on (`REGISTRY_CLIENT_ID_DOCUMENTS`).
    pub documents: Option<Arc<crate::client_documents::ClientDocuments>>,
}

impl AppState {
    /// The client exactly as a command left it: built from the state the command committed
    /// (read-your-writes, and the right `ETag` even when another write followed at once),
    /// never from a read after the commit, which could fail and lose a one-time secret.
    ///
    /// # Errors
    /// [`ApiError::Internal`] when the command left no live client (a bug).
    pub fn client_after_write(executed: &Executed) -> Result<ClientView, ApiError> {
        ClientView::from_write_model(&executed.client).ok_or_else(|| {
            ApiError::Internal(anyhow::anyhow!(
                "no live client at version {} after a write",
                executed.version
            ))
        })
    }
}

/// How dynamic client registration runs in this process.
#[derive(Debug)]
pub struct Registration {
    /// The registry's public base URL, for `registration_client_uri` (else the request's
    /// `Host`).
    pub public_url: Option<String>,
    /// Registrations admitted per minute and address.
    pub limiter: crate::registration::limit::RateLimiter,
}
