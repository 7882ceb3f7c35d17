//! Client ID metadata documents (draft-ietf-oauth-client-id-metadata-document): a client
//! whose id is an `https` URL is what the document at that URL says. A lookup of such an id
//! (`GET /api/v1/clients/{url}`, the identity service's) fetches the document when the registry
//! has no fresh version of it, through the guarded [`fetch::Fetcher`]: the first version
//! registers the client, each version that differs from the last is a `ClientUpdated` event
//! (actor [`ACTOR`], the reason naming the version's SHA-256), so the history shows how the
//! document changed. An administrator can pin a document (a changed version is held for
//! approval; the pinned one keeps serving) or block its URL (the client is deleted and never
//! fetched again until unblocked). Freshness follows the document's `Cache-Control`, within
//! the configured minimum and maximum; a refusal stands for the minimum.

pub mod fetch;
mod read;
pub mod routes;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use registry_commands::client_documents::DocumentState;
use registry_commands::{ClientCommands, CommandContext, CommandError, Database, Executed};
use registry_domain::{ClientError, ClientSettingsInput};
use registry_projections::{ClientView, ReadStore};

use crate::error::ApiError;
use crate::extract::now;
use fetch::{FetchSettings, Fetched, Fetcher, Refusal};

/// What the resolver reads and writes: the write side, the read side, the database.
#[derive(Clone)]
pub struct Stores {
    /// The write side.
    pub commands: Arc<ClientCommands>,
    /// The read side.
    pub reads: Arc<dyn ReadStore>,
    /// The database (the documents' state).
    pub database: Database,
}

fn written(executed: &Executed) -> Result<ClientView, ApiError> {
    ClientView::from_write_model(&executed.client)
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("no live client after a write")))
}

/// The largest document fetched, in bytes (the draft suggests 5 KB).
pub const MAX_DOCUMENT_BYTES: usize = 5 * 1024;

/// The actor of the events a fetched document causes.
pub const ACTOR: &str = "client-id-document";

/// The hosts whose documents are resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hosts {
    /// Any host (`*`).
    Any,
    /// These domains and their subdomains.
    Domains(Vec<String>),
}

impl Hosts {
    /// `REGISTRY_CLIENT_ID_DOCUMENTS`: `off` (or empty) for none, `*` for any host, else
    /// domains separated by commas or spaces.
    pub fn parse(setting: &str) -> Option<Self> {
        let setting = setting.trim();
        match setting {
            "" | "off" => None,
            "*" => Some(Self::Any),
            list => Some(Self::Domains(
                list.split([',', ' '])
                    .map(|d| d.trim().trim_matches('.').to_ascii_lowercase())
                    .filter(|d| !d.is_empty())
                    .collect(),
            )),
        }
    }

    /// Whether documents on `host` are resolved.
    pub fn allows(&self, host: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Domains(domains) => (domains.iter()).any(|d| {
                host == d
                    || host
                        .strip_suffix(d.as_str())
                        .is_some_and(|s| s.ends_with('.'))
            }),
        }
    }
}

/// How documents are resolved in this process.
#[derive(Debug, Clone)]
pub struct DocumentSettings {
    /// Whose documents.
    pub hosts: Hosts,
    /// How they are fetched.
    pub fetch: FetchSettings,
    /// The shortest time a version (or a refusal) stands without a fetch.
    pub min_fresh: Duration,
    /// The longest, whatever the document's `Cache-Control` says.
    pub max_fresh: Duration,
    /// What a document's client may be (grant types, methods, scopes, redirect URI patterns,
    /// hold for approval), checked as a dynamic registration's.
    pub policy: registry_domain::registration::RegistrationPolicy,
}

/// The longest a known client's last version keeps serving while its document's server is
/// in trouble (no answer, unreachable, 5xx), whatever the maximum freshness.
pub const STALE_IF_ERROR: Duration = Duration::from_secs(3600);

/// The resolver, shared by the handlers.
#[derive(Debug)]
pub struct ClientDocuments {
    settings: DocumentSettings,
    fetcher: Fetcher,
    /// One fetch per URL at a time in this process; the others wait for its outcome.
    flights: Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>,
    /// Fetches running at once in this process (of different URLs); the others wait.
    fetches: tokio::sync::Semaphore,
}

/// The most document fetches one process runs at once.
pub const MAX_CONCURRENT_FETCHES: usize = 32;

/// A document client as the lookup found it, and how long the answer stays true.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The client.
    pub view: ClientView,
    /// How long the identity service may use it without asking again.
    pub fresh_for: Duration,
}

pub(crate) fn seconds(duration: Duration) -> i64 {
    i64::try_from(duration.as_secs()).unwrap_or(i64::MAX)
}

impl ClientDocuments {
    /// The resolver with these settings.
    ///
    /// # Errors
    /// Unreadable extra root certificates.
    pub fn new(settings: DocumentSettings) -> anyhow::Result<Self> {
        Ok(Self {
            fetcher: Fetcher::new(settings.fetch.clone())?,
            settings,
            flights: Mutex::new(HashMap::new()),
            fetches: tokio::sync::Semaphore::new(MAX_CONCURRENT_FETCHES),
        })
    }

    /// The settings.
    pub fn settings(&self) -> &DocumentSettings {
        &self.settings
    }

    /// The client whose id is the document URL `url`: the stored one while fresh, else the
    /// document fetched now (`refresh`: fetched now whatever its freshness).
    ///
    /// # Errors
    /// [`ApiError::DocumentRefused`] saying why there is no such client (a host not allowed,
    /// a blocked URL, the document refused); [`ApiError::Overloaded`] when every fetch slot
    /// stayed busy for the fetch timeout; infrastructure failures.
    pub async fn resolve(
        self: &Arc<Self>,
        state: &Stores,
        url: &str,
        refresh: bool,
    ) -> Result<Resolved, ApiError> {
        let host = (url::Url::parse(url).ok())
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_default();
        if !self.settings.hosts.allows(&host) {
            return Err(ApiError::DocumentRefused(format!(
                "client ID metadata documents on {host} are not resolved here \
                 (REGISTRY_CLIENT_ID_DOCUMENTS)"
            )));
        }
        if !refresh {
            if let Some(answer) = self.stored(state, url).await? {
                return answer;
            }
        }
        // Its own task, holding the URL's turn: a caller that goes away cuts neither a write
        // in half nor the turn short (the next caller waits for this fetch's outcome).
        let flight = self.flight(url);
        let (this, state, url) = (Arc::clone(self), state.clone(), url.to_owned());
        tokio::spawn(async move {
            let _turn = flight.lock_owned().await;
            if !refresh {
                // Another request of this process may have fetched it meanwhile.
                if let Some(answer) = this.stored(&state, &url).await? {
                    return answer;
                }
            }
            this.fetch_and_record(&state, &url).await
        })
        .await
        .map_err(|e| ApiError::Internal(e.into()))?
    }

    fn flight(&self, url: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut flights = self
            .flights
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(flight) = flights.get(url).and_then(Weak::upgrade) {
            return flight;
        }
        flights.retain(|_, f| f.strong_count() > 0);
        let flight = Arc::new(tokio::sync::Mutex::new(()));
        flights.insert(url.to_owned(), Arc::downgrade(&flight));
        flight
    }

    /// Whether a known client's last version still serves after a refusal: only for a passing
    /// trouble of the document's server, and for at most [`STALE_IF_ERROR`] (or the maximum
    /// freshness, if shorter) after the last good fetch.
    fn serves_stale(&self, row: &DocumentState, transient: bool, now: i64) -> bool {
        let limit = seconds(self.settings.max_fresh.min(STALE_IF_ERROR));
        transient && (row.fetched_at).is_some_and(|at| at.saturating_add(limit) > now)
    }

    /// The answer the stored state gives without a fetch, if it is fresh.
    async fn stored(
        &self,
        state: &Stores,
        url: &str,
    ) -> Result<Option<Result<Resolved, ApiError>>, ApiError> {
        let Some(row) = state.database.document_state(url).await? else {
            return Ok(None);
        };
        if let Some((by, _)) = &row.blocked {
            return Ok(Some(Err(blocked(by))));
        }
        let now = now().timestamp();
        if row.fresh_until <= now {
            return Ok(None);
        }
        let fresh_for = Duration::from_secs(u64::try_from(row.fresh_until - now).unwrap_or(0));
        let stale_ok = self.serves_stale(&row, row.last_error_transient, now);
        match (state.reads.client(url).await?, &row.last_error) {
            (Some(view), None) => Ok(Some(Ok(Resolved { view, fresh_for }))),
            (Some(view), Some(_)) if stale_ok => Ok(Some(Ok(Resolved { view, fresh_for }))),
            (_, Some((error, _))) => Ok(Some(Err(refused(error)))),
            // Deleted by an administrator since: fetched again.
            (None, None) => Ok(None),
        }
    }

    async fn fetch_and_record(&self, state: &Stores, url: &str) -> Result<Resolved, ApiError> {
        let row = (state.database.document_state(url).await?).unwrap_or_default();
        if let Some((by, _)) = &row.blocked {
            return Err(blocked(by));
        }
        let view = state.reads.client(url).await?;
        let at = now();
        let fetched = {
            let slot = self.fetches.acquire();
            let _slot = (tokio::time::timeout(self.settings.fetch.timeout, slot).await)
                .map_err(|_| ApiError::Overloaded)?;
            self.fetcher.fetch(url).await
        };
        let document = fetched.and_then(|f| {
            let kept = view.as_ref().map(|v| &v.settings);
            let input = read::settings(url, &f.body, kept, &self.settings.policy)?;
            Ok((input, f))
        });
        let (input, fetched) = match document {
            Ok(document) => document,
            Err(refusal) => return self.refused_now(state, url, &row, view, &refusal).await,
        };
        let resolved = self
            .record(state, url, &row, view, (input, fetched), at)
            .await?;
        self.unless_blocked_meanwhile(state, url, resolved).await
    }

    /// An administrator may have blocked the URL while it was fetched (in this process or
    /// another): then the client just written is deleted again, and the block answers.
    async fn unless_blocked_meanwhile(
        &self,
        state: &Stores,
        url: &str,
        resolved: Resolved,
    ) -> Result<Resolved, ApiError> {
        let Some((by, _)) = (state.database.document_state(url).await?).and_then(|r| r.blocked)
        else {
            return Ok(resolved);
        };
        let ctx = CommandContext {
            actor: ACTOR.to_owned(),
            request_id: String::new(),
            reason: Some(format!("its URL was blocked by {by} while it was fetched")),
            at: now(),
        };
        match state.commands.delete(&ctx, url, None).await {
            Ok(_) | Err(CommandError::Rejected(ClientError::NotFound)) => Err(blocked(&by)),
            Err(e) => Err(e.into()),
        }
    }

    /// A fetched, readable version: the client registered, updated (an event when it
    /// changed), or the version held when pinned.
    async fn record(
        &self,
        state: &Stores,
        url: &str,
        row: &DocumentState,
        view: Option<ClientView>,
        (input, fetched): (ClientSettingsInput, Fetched),
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<Resolved, ApiError> {
        let sha256 = read::sha256_hex(&fetched.body);
        let fresh = (fetched.max_age.unwrap_or(self.settings.min_fresh))
            .clamp(self.settings.min_fresh, self.settings.max_fresh);
        let times = (
            at.timestamp(),
            at.timestamp().saturating_add(seconds(fresh)),
        );
        let ctx = |reason: String| document_context(reason, at);
        // Pinned: a version other than the pinned one is held, whether or not its client
        // exists (deleted since: nothing unreviewed is adopted).
        if row.pinned.is_some() && row.sha256.as_deref() != Some(sha256.as_str()) {
            let body = String::from_utf8_lossy(&fetched.body);
            (state.database)
                .hold_document_version(url, (&sha256, &body), times)
                .await?;
            let held = "the document is pinned and has no client: its fetched version is held \
                        for approval";
            return (view.map(|view| Resolved {
                view,
                fresh_for: fresh,
            }))
            .ok_or_else(|| ApiError::DocumentRefused(held.to_owned()));
        }
        let outcome = match view {
            None => {
                let reason = format!("fetched {url} (sha256 {sha256})");
                Outcome::Wrote(
                    (state.commands)
                        .register_document(&ctx(reason), url, input)
                        .await,
                )
            }
            Some(view) if row.sha256.as_deref() == Some(sha256.as_str()) => Outcome::Same(view),
            Some(view) => {
                let reason = format!("the document at {url} changed (sha256 {sha256})");
                Outcome::Wrote(
                    (state.commands)
                        .update_document(&ctx(reason), url, input, Some(view.version))
                        .await,
                )
            }
        };
        let Some(view) = Self::settle(outcome)? else {
            let current = state.reads.client(url).await?;
            return (current.map(|view| Resolved {
                view,
                fresh_for: self.settings.min_fresh,
            }))
            .ok_or_else(|| refused("it changed concurrently (deleted or blocked meanwhile)"));
        };
        (state.database)
            .record_document_version(url, &sha256, times)
            .await?;
        Ok(Resolved {
            view,
            fresh_for: fresh,
        })
    }

    /// The client after `outcome`, or `None` when another process wrote it first (the same
    /// document, or a newer version): what it wrote stands.
    fn settle(outcome: Outcome) -> Result<Option<ClientView>, ApiError> {
        match outcome {
            Outcome::Same(view) => Ok(Some(view)),
            Outcome::Wrote(Ok(executed)) => written(&executed).map(Some),
            Outcome::Wrote(Err(
                CommandError::Conflict
                | CommandError::Rejected(
                    ClientError::AlreadyExists | ClientError::VersionMismatch { .. },
                ),
            )) => Ok(None),
            Outcome::Wrote(Err(e)) => Err(e.into()),
        }
    }

    /// A refused fetch: recorded; a known client keeps serving a while if the trouble is its
    /// server's (see [`Self::serves_stale`]).
    async fn refused_now(
        &self,
        state: &Stores,
        url: &str,
        row: &DocumentState,
        view: Option<ClientView>,
        refusal: &Refusal,
    ) -> Result<Resolved, ApiError> {
        let now = now().timestamp();
        let until = now.saturating_add(seconds(self.settings.min_fresh));
        (state.database)
            .record_document_refusal(url, (&refusal.reason, refusal.transient), (now, until))
            .await?;
        match view {
            Some(view) if self.serves_stale(row, refusal.transient, now) => Ok(Resolved {
                view,
                fresh_for: self.settings.min_fresh,
            }),
            _ => Err(refused(&refusal.reason)),
        }
    }
}

/// The context of the events a fetched document causes.
fn document_context(reason: String, at: chrono::DateTime<chrono::Utc>) -> CommandContext {
    CommandContext {
        actor: ACTOR.to_owned(),
        request_id: String::new(),
        reason: Some(reason),
        at,
    }
}

/// What [`ClientDocuments::record`] did with a version.
enum Outcome {
    /// The version the client was built from: nothing to write.
    Same(ClientView),
    /// A command ran.
    Wrote(Result<Executed, CommandError>),
}

fn blocked(by: &str) -> ApiError {
    ApiError::DocumentRefused(format!(
        "this client ID metadata document URL was blocked by {by}"
    ))
}

fn refused(reason: &str) -> ApiError {
    ApiError::DocumentRefused(format!(
        "the client's metadata document was refused: {reason}"
    ))
}
