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
}

/// The resolver, shared by the handlers.
#[derive(Debug)]
pub struct ClientDocuments {
    settings: DocumentSettings,
    fetcher: Fetcher,
    /// One fetch per URL at a time in this process; the others wait for its outcome.
    flights: Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>,
}

/// A document client as the lookup found it, and how long the answer stays true.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The client.
    pub view: ClientView,
    /// How long the identity service may use it without asking again.
    pub fresh_for: Duration,
}

fn seconds(duration: Duration) -> i64 {
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
    /// a blocked URL, the document refused); infrastructure failures.
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
        let flight = self.flight(url);
        let _turn = flight.lock().await;
        if !refresh {
            // Another request of this process may have fetched it meanwhile.
            if let Some(answer) = self.stored(state, url).await? {
                return answer;
            }
        }
        // Its own task: a caller that goes away does not cut a write in half.
        let (this, state, url) = (Arc::clone(self), state.clone(), url.to_owned());
        tokio::spawn(async move { this.fetch_and_record(&state, &url).await })
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
        let recent = (row.fetched_at).is_some_and(|at| at + seconds(self.settings.max_fresh) > now);
        match (state.reads.client(url).await?, &row.last_error) {
            (Some(view), None) => Ok(Some(Ok(Resolved { view, fresh_for }))),
            // The document's server refused lately: its last version serves a while.
            (Some(view), Some(_)) if recent => Ok(Some(Ok(Resolved { view, fresh_for }))),
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
        let fetched = self.fetcher.fetch(url).await;
        let document = fetched.and_then(|f| {
            let kept = view.as_ref().map(|v| &v.settings);
            let input = read::settings(url, &f.body, kept)?;
            Ok((input, f))
        });
        let (input, fetched) = match document {
            Ok(document) => document,
            Err(refusal) => return self.refused_now(state, url, &row, view, &refusal).await,
        };
        self.record(state, url, &row, view, (input, fetched), at)
            .await
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
        let times = (at.timestamp(), at.timestamp() + seconds(fresh));
        let ctx = |reason: String| CommandContext {
            actor: ACTOR.to_owned(),
            request_id: String::new(),
            reason: Some(reason),
            at,
        };
        let view = match view {
            None => {
                let reason = format!("fetched {url} (sha256 {sha256})");
                let registered = (state.commands)
                    .register_document(&ctx(reason), url, input)
                    .await;
                match registered {
                    Ok(executed) => written(&executed)?,
                    // Another process registered it first: its version stands.
                    Err(CommandError::Rejected(ClientError::AlreadyExists)) => {
                        (state.reads.client(url).await?).ok_or(ApiError::ClientNotFound)?
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            Some(view) if row.sha256.as_deref() == Some(sha256.as_str()) => view,
            Some(view) if row.pinned.is_some() => {
                let body = String::from_utf8_lossy(&fetched.body);
                (state.database)
                    .hold_document_version(url, (&sha256, &body), times)
                    .await?;
                return Ok(Resolved {
                    view,
                    fresh_for: fresh,
                });
            }
            Some(view) => {
                let reason = format!("the document at {url} changed (sha256 {sha256})");
                let updated = (state.commands)
                    .update(&ctx(reason), url, input, Some(view.version))
                    .await?;
                written(&updated)?
            }
        };
        (state.database)
            .record_document_version(url, &sha256, times)
            .await?;
        Ok(Resolved {
            view,
            fresh_for: fresh,
        })
    }

    /// A refused fetch: recorded; a known client keeps serving while its last version is
    /// younger than the maximum freshness (the document's server may be down for a moment).
    async fn refused_now(
        &self,
        state: &Stores,
        url: &str,
        row: &DocumentState,
        view: Option<ClientView>,
        refusal: &Refusal,
    ) -> Result<Resolved, ApiError> {
        let now = now().timestamp();
        let min = seconds(self.settings.min_fresh);
        (state.database)
            .record_document_refusal(url, &refusal.0, (now, now + min))
            .await?;
        let recent = (row.fetched_at).is_some_and(|at| at + seconds(self.settings.max_fresh) > now);
        match view {
            Some(view) if recent => Ok(Resolved {
                view,
                fresh_for: self.settings.min_fresh,
            }),
            _ => Err(refused(&refusal.0)),
        }
    }
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
