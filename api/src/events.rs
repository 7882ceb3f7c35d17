//! The event routes: a client's history and the client as it was (what auditors read), the
//! global feed, and the change stream that keeps caches of clients coherent.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use registry_domain::EventMetadata;
use registry_projections::seal::merkle;
use registry_projections::{event_data, history, FeedEntry, FeedQuery, FieldChange, StoredEvent};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::auth::{AuditRead, Authorized};
use crate::error::{ApiError, Problem, ProblemFieldError};
use crate::extract::{AppPath, AppQuery};
use crate::state::AppState;

/// The routes of the audit views.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/clients/{client_id}/history", get(client_history))
        .route("/events", get(list_events))
        .route("/events/head", get(stream_head))
}

/// Who caused an event, when and why.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EventMetadataResponse {
    /// Unique id of the event (UUID v7).
    pub event_id: String,
    /// When it was recorded.
    pub recorded_at: DateTime<Utc>,
    /// The authenticated principal that caused it (`system` for the default clients).
    pub actor: String,
    /// The request that caused it (`x-request-id`).
    pub request_id: String,
    /// The `X-Change-Reason` given with the change.
    pub reason: Option<String>,
}

impl From<&EventMetadata> for EventMetadataResponse {
    fn from(metadata: &EventMetadata) -> Self {
        Self {
            event_id: metadata.event_id.clone(),
            recorded_at: metadata.recorded_at,
            actor: metadata.actor.clone(),
            request_id: metadata.request_id.clone(),
            reason: metadata.reason.clone(),
        }
    }
}

impl From<&StoredEvent> for EventMetadataResponse {
    fn from(event: &StoredEvent) -> Self {
        Self::from(&event.metadata)
    }
}

/// One field an event changed.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FieldChangeResponse {
    /// The field (`secrets` lists secret ids, never hashes; `deleted` marks a deletion).
    pub field: String,
    /// Its value before (`null` when unset): a string, boolean, list or null.
    pub before: Value,
    /// Its value after.
    pub after: Value,
}

impl From<FieldChange> for FieldChangeResponse {
    fn from(change: FieldChange) -> Self {
        Self {
            field: change.field,
            before: change.before,
            after: change.after,
        }
    }
}

/// One event of a client's history.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HistoryEventResponse {
    /// Position in the client's stream (its version after the event).
    pub sequence: u64,
    /// Position in the global feed.
    pub position: i64,
    /// `ClientRegistered`, `ClientUpdated`, `ClientSecretRotated` or `ClientDeleted`.
    pub event_type: String,
    /// Shape version the event was stored with.
    pub event_version: String,
    /// Who, when, why.
    #[serde(flatten)]
    pub metadata: EventMetadataResponse,
    /// The fields it changed, with before and after.
    pub changes: Vec<FieldChangeResponse>,
    /// Its leaf hash in the sealed log (hex; `null` until sealed, within seconds): check it
    /// with `GET /api/v1/audit/proof/inclusion?position=`.
    pub leaf_hash: Option<String>,
}

/// A client's whole history, both lifetimes of a re-registered id included.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HistoryResponse {
    /// The client.
    pub client_id: String,
    /// Every event, in stream order.
    pub events: Vec<HistoryEventResponse>,
}

/// Every change of a client: who, when, why, and each field's before and after. A deleted
/// client's history stays readable.
#[utoipa::path(
    get, path = "/api/v1/clients/{client_id}/history", tag = "audit",
    params(crate::responses::ClientPath),
    responses(
        (status = 200, description = "The history", body = HistoryResponse),
        crate::responses::NeverRegistered,
        crate::responses::AuditDenied,
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(client_id = %client_id))]
pub async fn client_history(
    _caller: Authorized<AuditRead>,
    State(state): State<AppState>,
    AppPath(client_id): AppPath<String>,
) -> Result<Json<HistoryResponse>, ApiError> {
    let events = state.reads.client_events(&client_id).await?;
    if events.is_empty() {
        return Err(ApiError::ClientNotFound);
    }
    let entries = history(events).map_err(|e| ApiError::Internal(e.into()))?;
    let mut events: Vec<HistoryEventResponse> = entries.into_iter().map(Into::into).collect();
    attach_leaf_hashes(&state, &mut events).await?;
    Ok(Json(HistoryResponse { client_id, events }))
}

/// An event as a response shows it, with its leaf hash once it is sealed.
trait Sealable {
    fn position(&self) -> i64;
    fn set_leaf_hash(&mut self, hash: Option<String>);
}

impl Sealable for HistoryEventResponse {
    fn position(&self) -> i64 {
        self.position
    }
    fn set_leaf_hash(&mut self, hash: Option<String>) {
        self.leaf_hash = hash;
    }
}

impl Sealable for FeedEventResponse {
    fn position(&self) -> i64 {
        self.position
    }
    fn set_leaf_hash(&mut self, hash: Option<String>) {
        self.leaf_hash = hash;
    }
}

/// Each event's leaf hash in the sealed log (hex; `None` until sealed), in one query.
async fn attach_leaf_hashes<T: Sealable>(
    state: &AppState,
    events: &mut [T],
) -> Result<(), ApiError> {
    let positions: Vec<i64> = events.iter().map(Sealable::position).collect();
    let sealed = state.sealer.db().leaf_hashes(&positions).await?;
    for event in events {
        event.set_leaf_hash(sealed.get(&event.position()).map(merkle::hex));
    }
    Ok(())
}

impl From<registry_projections::HistoryEntry> for HistoryEventResponse {
    fn from(entry: registry_projections::HistoryEntry) -> Self {
        Self {
            sequence: entry.event.sequence,
            position: entry.event.position,
            event_type: entry.event.payload.type_name().to_owned(),
            event_version: entry.event.event_version.clone(),
            metadata: EventMetadataResponse::from(&entry.event),
            changes: entry.changes.into_iter().map(Into::into).collect(),
            leaf_hash: None,
        }
    }
}

/// Query of `GET /events`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventsParams {
    /// Only events after this position (the previous page's `next_after`; default 0).
    pub after: Option<i64>,
    /// Page size, 1–1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// Only this client's events.
    pub client_id: Option<String>,
    /// Only events of this type.
    pub event_type: Option<String>,
    /// Only events caused by this actor.
    pub actor: Option<String>,
    /// Only events recorded at or after this time (RFC 3339; write `+` as `%2B`).
    pub from: Option<DateTime<Utc>>,
    /// Only events recorded before this time (RFC 3339).
    pub to: Option<DateTime<Utc>>,
    /// Seconds to wait, 0–60 (default 0), when no event after `after` is there yet: the
    /// answer comes as soon as one is safe to read (written through this process or any
    /// other), or empty after the wait. For caches that follow the registry's changes.
    #[param(minimum = 0, maximum = 60)]
    pub wait: Option<u64>,
}

/// The longest `wait` of `GET /events`.
pub const MAX_FEED_WAIT_SECONDS: u64 = 60;

/// How often a waiting reader looks again even without being woken (another process's
/// events reach this one's follower, which wakes waiters; this is the fallback).
const FEED_RECHECK: std::time::Duration = std::time::Duration::from_secs(1);

/// One event of the global feed.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FeedEventResponse {
    /// Position in the global feed: the cursor.
    pub position: i64,
    /// The client.
    pub client_id: String,
    /// Position in the client's stream.
    pub sequence: u64,
    /// `ClientRegistered`, `ClientUpdated`, `ClientSecretRotated` or `ClientDeleted`.
    pub event_type: String,
    /// Shape version the event was stored with.
    pub event_version: String,
    /// Who, when, why.
    #[serde(flatten)]
    pub metadata: EventMetadataResponse,
    /// The event's data (the current shape), secret hashes removed; `null` when the stored
    /// row cannot be read (see `unreadable`).
    #[schema(value_type = Option<Object>)]
    pub data: Value,
    /// Only for a stored row that cannot be read as any event type of this version (a
    /// malformed or foreign row): why. The projections park such an event and go on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unreadable: Option<String>,
    /// Its leaf hash in the sealed log (hex; `null` until sealed).
    pub leaf_hash: Option<String>,
}

impl From<FeedEntry> for FeedEventResponse {
    fn from(entry: FeedEntry) -> Self {
        match entry {
            FeedEntry::Event(event) => Self {
                position: event.position,
                client_id: event.aggregate_id.clone(),
                sequence: event.sequence,
                event_type: event.payload.type_name().to_owned(),
                event_version: event.event_version.clone(),
                metadata: EventMetadataResponse::from(&event),
                data: event_data(&event.payload),
                unreadable: None,
                leaf_hash: None,
            },
            FeedEntry::Unreadable(row) => Self {
                position: row.position,
                client_id: row.aggregate_id.clone(),
                sequence: row.sequence,
                event_type: row.event_type.clone(),
                event_version: row.event_version.clone(),
                metadata: EventMetadataResponse::from(&row.metadata),
                data: Value::Null,
                unreadable: Some(row.error),
                leaf_hash: None,
            },
        }
    }
}

/// A page of the global feed.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EventsResponse {
    /// Events in feed order.
    pub events: Vec<FeedEventResponse>,
    /// Pass as `after` for the next page. It never moves past an event that is not yet
    /// committed, so tailing the feed with it misses nothing.
    pub next_after: i64,
}

/// The global feed: every event the registry stored, in one total order, for auditors and
/// integrations. Keyset-paginated by `position`.
#[utoipa::path(
    get, path = "/api/v1/events", tag = "audit",
    params(EventsParams),
    responses(
        (status = 200, description = "A page of the feed", body = EventsResponse),
        (status = 503, description = "Too many readers waiting (`wait`; retry after `Retry-After`), or (`wait`) this process is not following the feed now (`not_ready`)", body = Problem, content_type = "application/problem+json"),
        crate::responses::AuditDeniedOrBadQuery,
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all)]
pub async fn list_events(
    _caller: Authorized<AuditRead>,
    State(state): State<AppState>,
    AppQuery(params): AppQuery<EventsParams>,
) -> Result<Json<EventsResponse>, ApiError> {
    let (query, wait) = params.feed_query()?;
    let page = if wait.is_zero() {
        state.reads.feed(&query).await?
    } else {
        wait_for_feed(&state, &query, wait.min(state.feed_wait_limit)).await?
    };
    let mut events: Vec<FeedEventResponse> = page.events.into_iter().map(Into::into).collect();
    attach_leaf_hashes(&state, &mut events).await?;
    Ok(Json(EventsResponse {
        events,
        next_after: page.next_after,
    }))
}

impl EventsParams {
    /// The feed query these parameters ask for, and how long to wait for a page that is
    /// not empty.
    fn feed_query(self) -> Result<(FeedQuery, std::time::Duration), ApiError> {
        let wait = self.wait.unwrap_or(0);
        if wait > MAX_FEED_WAIT_SECONDS {
            return Err(ApiError::InvalidQuery(vec![ProblemFieldError {
                field: "wait".to_owned(),
                message: format!("must be at most {MAX_FEED_WAIT_SECONDS} seconds"),
            }]));
        }
        let query = FeedQuery::parse(
            self.after,
            self.limit,
            self.client_id,
            self.event_type,
            self.actor,
            self.from,
            self.to,
        )
        .map_err(ApiError::invalid_query)?;
        Ok((query, std::time::Duration::from_secs(wait)))
    }
}

/// Where a new follower of the change stream starts.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StreamHeadResponse {
    /// Pass as `after` to `GET /events?wait=`: what a cache read after this answer may miss
    /// is exactly what the stream tells from there.
    pub next_after: i64,
}

/// The head of the change stream: a cache (the oidc-provider adapter) starts following here
/// instead of reading the whole feed. Answered only while this process follows the feed.
#[utoipa::path(
    get, path = "/api/v1/events/head", tag = "audit",
    responses(
        (status = 200, description = "Where to start following", body = StreamHeadResponse),
        (status = 503, description = "This process is not following the feed now (`not_ready`)", body = Problem, content_type = "application/problem+json"),
        crate::responses::AuditDenied,
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all)]
pub async fn stream_head(
    _caller: Authorized<AuditRead>,
    State(state): State<AppState>,
) -> Result<Json<StreamHeadResponse>, ApiError> {
    following(&state)?;
    Ok(Json(StreamHeadResponse {
        next_after: state.search.stream_position(),
    }))
}

/// Whether this process follows the feed now (its follower read it to the end recently):
/// only then may the change stream answer.
fn following(state: &AppState) -> Result<(), ApiError> {
    if state.commands.verified_secrets().is_listening() {
        Ok(())
    } else {
        // A cache must not think it is following: it then trusts its memory only briefly.
        Err(ApiError::NotReady(
            "this process is not following the feed now; try another or again shortly".into(),
        ))
    }
}

/// The feed page of `query`, waiting up to `wait` for one that is not empty: woken when this
/// process's follower reads new events (other processes' and its own), looking again every
/// [`FEED_RECHECK`] anyway, and answering at once when the process starts draining. Only
/// events this process's memory of verified secrets has already forgotten and its read
/// model reflects are answered (up to
/// [`registry_projections::SearchIndex::stream_position`]): a cache that forgets a client on
/// an event and asks again at once is never answered from stale memory or an old row. A
/// process whose follower is not listening answers 503 `not_ready`. Bounded by
/// `AppState::feed_waiters`.
async fn wait_for_feed(
    state: &AppState,
    query: &FeedQuery,
    wait: std::time::Duration,
) -> Result<registry_projections::FeedPage, ApiError> {
    let _place = state
        .feed_waiters
        .clone()
        .try_acquire_owned()
        .map_err(|_| ApiError::Overloaded)?;
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        // Registered before reading, so that an event arriving in between wakes it.
        let woken = state.search.changed().notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        following(state)?;
        let told = state.search.stream_position();
        let mut page = state.reads.feed(query).await?;
        if page.next_after > told {
            page.events.retain(|event| event.position() <= told);
            page.next_after = told.max(query.after);
        }
        let draining = state.draining.load(std::sync::atomic::Ordering::Relaxed);
        if !page.events.is_empty()
            || page.next_after > query.after
            || draining
            || tokio::time::Instant::now() >= deadline
        {
            return Ok(page);
        }
        let recheck = (tokio::time::Instant::now() + FEED_RECHECK).min(deadline);
        tokio::select! {
            () = &mut woken => {}
            () = tokio::time::sleep_until(recheck) => {}
        }
    }
}
