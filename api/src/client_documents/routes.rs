//! `/api/v1/clients/{client_id}/document`: what the registry knows of a client's metadata
//! document, and an administrator's refresh, pin, approve and block.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use registry_commands::client_documents::DocumentState;
use registry_commands::{CommandContext, CommandError};
use registry_domain::values::ClientId;
use registry_domain::ClientError;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::{read, ClientDocuments, Stores};
use crate::auth::{Authorized, ClientsRead, ClientsWrite};
use crate::error::{ApiError, Problem};
use crate::extract::{AppPath, RequestContext};
use crate::state::AppState;

/// The routes of this resource.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/clients/{client_id}/document", get(get_document))
        .route("/clients/{client_id}/document/refresh", post(refresh))
        .route("/clients/{client_id}/document/pin", post(pin).delete(unpin))
        .route("/clients/{client_id}/document/approve", post(approve))
        .route(
            "/clients/{client_id}/document/block",
            post(block).delete(unblock),
        )
}

/// A version held while the document is pinned.
#[derive(Debug, Serialize, ToSchema)]
pub struct HeldVersion {
    /// Its SHA-256 (hex).
    pub sha256: String,
    /// When it was fetched.
    pub fetched_at: Option<DateTime<Utc>>,
    /// The document as fetched.
    #[schema(value_type = Object)]
    pub document: Value,
}

/// Who did something, and when.
#[derive(Debug, Serialize, ToSchema)]
pub struct Act {
    /// The administrator (or `client-id-document`).
    pub by: String,
    /// When.
    pub at: Option<DateTime<Utc>>,
}

/// What the registry knows of a client ID metadata document URL.
#[derive(Debug, Serialize, ToSchema)]
pub struct DocumentStatus {
    /// The document URL (the client's id).
    pub client_id: String,
    /// Whether its client exists now.
    pub registered: bool,
    /// SHA-256 (hex) of the version the client was built from.
    pub sha256: Option<String>,
    /// When that version was fetched (or found unchanged) last.
    pub fetched_at: Option<DateTime<Utc>>,
    /// Until when it is used without a fetch.
    pub fresh_until: Option<DateTime<Utc>>,
    /// Pinned: a changed version is held; this one keeps serving.
    pub pinned: Option<Act>,
    /// The changed version held while pinned.
    pub held: Option<HeldVersion>,
    /// Blocked: never fetched, unknown to the identity service.
    pub blocked: Option<Act>,
    /// Why the last fetch was refused.
    pub last_error: Option<String>,
    /// When.
    pub last_error_at: Option<DateTime<Utc>>,
}

fn time(seconds: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(seconds, 0)
}

fn act_of((by, at): (String, i64)) -> Act {
    Act { by, at: time(at) }
}

impl DocumentStatus {
    fn new(url: &str, row: DocumentState, registered: bool) -> Self {
        Self {
            client_id: url.to_owned(),
            registered,
            sha256: row.sha256,
            fetched_at: row.fetched_at.and_then(time),
            fresh_until: Some(row.fresh_until).filter(|t| *t > 0).and_then(time),
            pinned: row.pinned.map(act_of),
            held: row.held.map(|(sha256, body, at)| HeldVersion {
                sha256,
                fetched_at: time(at),
                document: serde_json::from_str(&body).unwrap_or(Value::String(body)),
            }),
            blocked: row.blocked.map(act_of),
            last_error: row.last_error.as_ref().map(|(e, _)| e.clone()),
            last_error_at: row.last_error.and_then(|(_, at)| time(at)),
        }
    }
}

/// What the resolver works on, from the app's state.
pub fn stores(state: &AppState) -> Stores {
    Stores {
        commands: state.commands.clone(),
        reads: state.reads.clone(),
        database: state.database.clone(),
    }
}

/// Whether `client_id` is a document URL the registry resolves (documents on).
///
/// # Errors
/// A 404 saying why not.
pub fn check(state: &AppState, client_id: &str) -> Result<(), ApiError> {
    documents(state, client_id).map(drop)
}

/// The resolver, if the id is a document URL and documents are on.
fn documents<'a>(
    state: &'a AppState,
    client_id: &str,
) -> Result<&'a std::sync::Arc<ClientDocuments>, ApiError> {
    let url = ClientId::names_document(client_id);
    match &state.documents {
        Some(documents) if url => Ok(documents),
        Some(_) => Err(ApiError::DocumentRefused(
            "this client_id is not the URL of a client ID metadata document".to_owned(),
        )),
        None => Err(ApiError::DocumentRefused(
            "client ID metadata documents are off (REGISTRY_CLIENT_ID_DOCUMENTS)".to_owned(),
        )),
    }
}

/// What the registry knows of the document at `url`.
///
/// # Errors
/// The database.
pub async fn status_of(state: &AppState, url: &str) -> Result<DocumentStatus, ApiError> {
    let row = (state.database.document_state(url).await?).unwrap_or_else(|| DocumentState {
        url: url.to_owned(),
        ..DocumentState::default()
    });
    let registered = state.reads.client(url).await?.is_some();
    Ok(DocumentStatus::new(url, row, registered))
}

async fn status(state: &AppState, url: &str) -> Result<Response, ApiError> {
    Ok(Json(status_of(state, url).await?).into_response())
}

/// What an administrator does to a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Fetch it now.
    Refresh,
    /// Hold its changes for approval.
    Pin,
    /// Stop holding them.
    Unpin,
    /// Apply the held version.
    Approve,
    /// Delete its client and never fetch it again.
    Block,
    /// Allow it again.
    Unblock,
}

impl Action {
    /// The action a path segment names (`pin`, `approve`, …).
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "refresh" => Self::Refresh,
            "pin" => Self::Pin,
            "unpin" => Self::Unpin,
            "approve" => Self::Approve,
            "block" => Self::Block,
            "unblock" => Self::Unblock,
            _ => return None,
        })
    }
}

/// Does `action` to the document at `url`, as `ctx`'s actor (the API's and the screens').
///
/// # Errors
/// Documents off or `url` not a document URL (404), a refused fetch (404, why), nothing
/// held to approve (412), a concurrent change (409), infrastructure failures.
pub async fn act(
    state: &AppState,
    url: &str,
    action: Action,
    ctx: CommandContext,
) -> Result<(), ApiError> {
    let documents = documents(state, url)?;
    let at = ctx.at.timestamp();
    match action {
        Action::Refresh => documents.resolve(&stores(state), url, true).await.map(drop),
        Action::Pin => Ok(state
            .database
            .pin_document(url, Some((&ctx.actor, at)))
            .await?),
        Action::Unpin => Ok(state.database.pin_document(url, None).await?),
        Action::Approve => approve_held(state, documents, url, ctx).await,
        Action::Block => block_url(state, url, ctx).await,
        Action::Unblock => Ok(state.database.block_document(url, None).await?),
    }
}

async fn approve_held(
    state: &AppState,
    documents: &ClientDocuments,
    url: &str,
    ctx: CommandContext,
) -> Result<(), ApiError> {
    let settings = documents.settings();
    let min_fresh = settings.min_fresh;
    // An administrator's approval: not held again, whatever the policy says of changes.
    let policy = registry_domain::registration::RegistrationPolicy {
        hold_for_approval: false,
        ..settings.policy.clone()
    };
    let row = state.database.document_state(url).await?;
    let Some((sha256, body, _)) = row.and_then(|r| r.held) else {
        return Err(ApiError::PreconditionFailed(
            "no changed version of this document is held".to_owned(),
        ));
    };
    // No client (a pinned document's deleted since): the approved version registers it.
    let view = state.reads.client(url).await?;
    let current = view.as_ref().map(|v| &v.settings);
    let input = read::settings(url, body.as_bytes(), current, &policy)
        .map_err(|refusal| ApiError::invalid_field("document", refusal.reason))?;
    let ctx = CommandContext {
        reason: Some(format!("approved the held version (sha256 {sha256})")),
        ..ctx
    };
    let (task_state, url) = (state.clone(), url.to_owned());
    // Its own task: the event and the document's row together, whether or not the caller
    // waits.
    tokio::spawn(async move {
        let commands = &task_state.commands;
        match view {
            Some(view) => (commands.update_document(&ctx, &url, input, Some(view.version))).await?,
            None => commands.register_document(&ctx, &url, input).await?,
        };
        let at = ctx.at.timestamp();
        let fresh = super::seconds(min_fresh);
        (task_state.database)
            .record_document_version(&url, &sha256, (at, at.saturating_add(fresh)))
            .await?;
        Ok::<_, ApiError>(())
    })
    .await
    .map_err(|e| ApiError::Internal(e.into()))?
}

async fn block_url(state: &AppState, url: &str, ctx: CommandContext) -> Result<(), ApiError> {
    let ctx = CommandContext {
        reason: Some("blocked its client ID metadata document URL".to_owned()),
        ..ctx
    };
    let (task_state, url) = (state.clone(), url.to_owned());
    tokio::spawn(async move {
        let blocked = Some((ctx.actor.as_str(), ctx.at.timestamp()));
        task_state.database.block_document(&url, blocked).await?;
        match task_state.commands.delete(&ctx, &url, None).await {
            Ok(_) | Err(CommandError::Rejected(ClientError::NotFound)) => Ok(()),
            Err(e) => Err(ApiError::from(e)),
        }
    })
    .await
    .map_err(|e| ApiError::Internal(e.into()))?
}

async fn acted(
    state: &AppState,
    url: &str,
    action: Action,
    ctx: CommandContext,
) -> Result<Response, ApiError> {
    act(state, url, action, ctx).await?;
    status(state, url).await
}

/// What the registry knows of the client's metadata document: the version in use, its
/// freshness, a pin and the version it holds, a block, the last refusal.
#[utoipa::path(
    get, path = "/api/v1/clients/{client_id}/document", tag = "clients",
    params(crate::responses::ClientPath),
    responses(
        (status = 200, description = "The document's state", body = DocumentStatus),
        (status = 404, description = "Documents are off, or the id is not a document URL", body = Problem, content_type = "application/problem+json"),
        crate::responses::DeniedOrBadQuery,
    ),
    security(("bearer" = []))
)]
pub async fn get_document(
    _caller: Authorized<ClientsRead>,
    State(state): State<AppState>,
    AppPath(client_id): AppPath<String>,
) -> Result<Response, ApiError> {
    documents(&state, &client_id)?;
    status(&state, &client_id).await
}

/// Fetch the document now, whatever its freshness (a changed version is an event, or held
/// when pinned).
#[utoipa::path(
    post, path = "/api/v1/clients/{client_id}/document/refresh", tag = "clients",
    params(crate::responses::ClientPath),
    responses(
        (status = 200, description = "Fetched; the document's state", body = DocumentStatus),
        (status = 404, description = "Documents are off, the id is not a document URL, or the document was refused (why)", body = Problem, content_type = "application/problem+json"),
        crate::responses::Denied,
    ),
    security(("bearer" = []))
)]
pub async fn refresh(
    _caller: Authorized<ClientsWrite>,
    State(state): State<AppState>,
    AppPath(client_id): AppPath<String>,
    RequestContext(ctx): RequestContext,
) -> Result<Response, ApiError> {
    acted(&state, &client_id, Action::Refresh, ctx).await
}

/// Pin the document: a changed version is held for approval; the pinned one keeps serving.
#[utoipa::path(
    post, path = "/api/v1/clients/{client_id}/document/pin", tag = "clients",
    params(crate::responses::ClientPath),
    responses(
        (status = 200, description = "Pinned; the document's state", body = DocumentStatus),
        (status = 404, description = "Documents are off, or the id is not a document URL", body = Problem, content_type = "application/problem+json"),
        crate::responses::Denied,
    ),
    security(("bearer" = []))
)]
pub async fn pin(
    _caller: Authorized<ClientsWrite>,
    State(state): State<AppState>,
    AppPath(client_id): AppPath<String>,
    RequestContext(ctx): RequestContext,
) -> Result<Response, ApiError> {
    acted(&state, &client_id, Action::Pin, ctx).await
}

/// Unpin the document: the held version is dropped and the next lookup fetches it anew.
#[utoipa::path(
    delete, path = "/api/v1/clients/{client_id}/document/pin", tag = "clients",
    params(crate::responses::ClientPath),
    responses(
        (status = 200, description = "Unpinned; the document's state", body = DocumentStatus),
        (status = 404, description = "Documents are off, or the id is not a document URL", body = Problem, content_type = "application/problem+json"),
        crate::responses::Denied,
    ),
    security(("bearer" = []))
)]
pub async fn unpin(
    _caller: Authorized<ClientsWrite>,
    State(state): State<AppState>,
    AppPath(client_id): AppPath<String>,
    RequestContext(ctx): RequestContext,
) -> Result<Response, ApiError> {
    acted(&state, &client_id, Action::Unpin, ctx).await
}

/// Apply the version held while pinned: it becomes the client (an event by the caller) and
/// the pinned version.
#[utoipa::path(
    post, path = "/api/v1/clients/{client_id}/document/approve", tag = "clients",
    params(crate::responses::ClientPath),
    responses(
        (status = 200, description = "Applied; the document's state", body = DocumentStatus),
        (status = 404, description = "Documents are off, the id is not a document URL, or no client", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The client changed meanwhile", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "No changed version is held", body = Problem, content_type = "application/problem+json"),
        crate::responses::Denied,
    ),
    security(("bearer" = []))
)]
pub async fn approve(
    _caller: Authorized<ClientsWrite>,
    State(state): State<AppState>,
    AppPath(client_id): AppPath<String>,
    RequestContext(ctx): RequestContext,
) -> Result<Response, ApiError> {
    acted(&state, &client_id, Action::Approve, ctx).await
}

/// Block the URL: its client is deleted (an event by the caller) and the document is never
/// fetched again until unblocked; the identity service finds no such client.
#[utoipa::path(
    post, path = "/api/v1/clients/{client_id}/document/block", tag = "clients",
    params(crate::responses::ClientPath),
    responses(
        (status = 200, description = "Blocked; the document's state", body = DocumentStatus),
        (status = 404, description = "Documents are off, or the id is not a document URL", body = Problem, content_type = "application/problem+json"),
        crate::responses::Denied,
    ),
    security(("bearer" = []))
)]
pub async fn block(
    _caller: Authorized<ClientsWrite>,
    State(state): State<AppState>,
    AppPath(client_id): AppPath<String>,
    RequestContext(ctx): RequestContext,
) -> Result<Response, ApiError> {
    acted(&state, &client_id, Action::Block, ctx).await
}

/// Unblock the URL: the next lookup fetches the document as a new client.
#[utoipa::path(
    delete, path = "/api/v1/clients/{client_id}/document/block", tag = "clients",
    params(crate::responses::ClientPath),
    responses(
        (status = 200, description = "Unblocked; the document's state", body = DocumentStatus),
        (status = 404, description = "Documents are off, or the id is not a document URL", body = Problem, content_type = "application/problem+json"),
        crate::responses::Denied,
    ),
    security(("bearer" = []))
)]
pub async fn unblock(
    _caller: Authorized<ClientsWrite>,
    State(state): State<AppState>,
    AppPath(client_id): AppPath<String>,
    RequestContext(ctx): RequestContext,
) -> Result<Response, ApiError> {
    acted(&state, &client_id, Action::Unblock, ctx).await
}
