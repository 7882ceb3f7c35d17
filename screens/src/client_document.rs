//! A client ID metadata document's screen (`/clients/{url}/document`): the version in use,
//! its freshness, a pin and the version it holds, a block, the last refusal; and the buttons
//! that refresh, pin, approve and block. The same functions as the API's.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use maud::{html, Markup};
use registry_api::auth::Role;
use registry_api::client_documents::routes::{self, Action, DocumentStatus};
use registry_api::error::ApiError;

use super::form::encode;
use super::session::{Session, WriteForm};
use super::{pages, UiError};
use crate::ScreensState;

/// The routes of the document screen.
pub fn router() -> Router<ScreensState> {
    Router::new()
        .route("/clients/{client_id}/document", get(show))
        .route("/clients/{client_id}/document/{action}", post(act))
}

async fn show(
    session: Session,
    State(state): State<ScreensState>,
    Path(client_id): Path<String>,
) -> Result<Response, UiError> {
    session.require(Role::ClientsRead)?;
    // Documents off, or not a document URL: no such screen.
    routes::check(&state, &client_id).map_err(|_| UiError::NotFound)?;
    let status = routes::status_of(&state, &client_id).await?;
    Ok(page(&session, &status, None).into_response())
}

async fn act(
    State(state): State<ScreensState>,
    Path((client_id, action)): Path<(String, String)>,
    post: WriteForm,
) -> Result<Response, UiError> {
    let action = Action::parse(&action).ok_or(UiError::NotFound)?;
    routes::check(&state, &client_id).map_err(|_| UiError::NotFound)?;
    let refusal = match routes::act(&state, &client_id, action, post.context()).await {
        Ok(()) => {
            let back = format!("/clients/{}/document", encode(&client_id));
            return Ok(Redirect::to(&back).into_response());
        }
        // What the administrator should read: the document refused, nothing held, the
        // held version refused, a concurrent change. The page again, saying so.
        Err(ApiError::DocumentRefused(why) | ApiError::PreconditionFailed(why)) => why,
        Err(ApiError::Validation(errors)) => (errors.into_iter())
            .map(|e| e.message)
            .collect::<Vec<_>>()
            .join("; "),
        Err(ApiError::ConcurrentModification) => {
            "the client changed meanwhile; look again and retry".to_owned()
        }
        Err(other) => return Err(other.into()),
    };
    let status = routes::status_of(&state, &client_id).await?;
    let page = page(&post.session, &status, Some(&refusal));
    Ok((StatusCode::CONFLICT, page).into_response())
}

fn when(at: Option<chrono::DateTime<chrono::Utc>>) -> String {
    at.map_or_else(
        || "—".to_owned(),
        |at| at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    )
}

fn button(session: &Session, path: &str, action: &str, label: &str, class: &str) -> Markup {
    html! {
        form method="post" action={ (path) "/document/" (action) } class="inline" {
            input type="hidden" name="csrf" value=(session.csrf_token);
            button type="submit" class=(class) { (label) }
        }
    }
}

fn page(session: &Session, status: &DocumentStatus, refusal: Option<&str>) -> Markup {
    let path = format!("/clients/{}", encode(&status.client_id));
    let write = session.can(Role::ClientsWrite);
    pages::layout(
        Some(session),
        "Metadata document",
        html! {
            h1 { "Metadata document" }
            @if let Some(refusal) = refusal {
                p class="notice" role="alert" { "Not done: " (refusal) }
            }
            p { code class="wrap" { (status.client_id) } }
            p class="links" {
                @if status.registered { a href=(path) { "The client" } " · " }
                @if session.can(Role::AuditRead) { a href={ (path) "/history" } { "History" } }
            }
            @if let Some(blocked) = &status.blocked {
                p class="notice" role="status" { "Blocked by " (blocked.by) " at " (when(blocked.at)) ": never fetched, unknown to the identity service." }
            }
            @if let Some(error) = &status.last_error {
                p class="notice" role="status" { "Last fetch refused (" (when(status.last_error_at)) "): " (error) }
            }
            dl class="view" {
                dt { "Client" } dd { @if status.registered { "Registered" } @else { "None" } }
                dt { "Version in use" } dd { @match &status.sha256 { Some(sha) => code class="wrap" { "sha256 " (sha) }, None => "—" } }
                dt { "Fetched" } dd { (when(status.fetched_at)) }
                dt { "Fresh until" } dd { (when(status.fresh_until)) }
                dt { "Pinned" } dd { @match &status.pinned { Some(p) => { "By " (p.by) " at " (when(p.at)) }, None => "No" } }
            }
            @if let Some(held) = &status.held {
                h2 { "Changed version held for approval" }
                p { "Fetched " (when(held.fetched_at)) ", " code class="wrap" { "sha256 " (held.sha256) } }
                pre class="document" { (serde_json::to_string_pretty(&held.document).unwrap_or_default()) }
            }
            @if write {
                div class="toolbar" role="toolbar" aria-label="Document" {
                    @if status.blocked.is_none() {
                        (button(session, &path, "refresh", "Fetch Now", "button"))
                        @if status.pinned.is_some() {
                            @if status.held.is_some() { (button(session, &path, "approve", "Approve Held Version", "button primary")) }
                            (button(session, &path, "unpin", "Unpin", "button"))
                        } @else {
                            (button(session, &path, "pin", "Pin", "button"))
                        }
                        (button(session, &path, "block", "Block URL", "button danger"))
                    } @else {
                        (button(session, &path, "unblock", "Unblock URL", "button"))
                    }
                }
            }
        },
    )
}
