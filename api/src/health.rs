//! Liveness and readiness probes, outside `/api` and without authentication.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{ApiError, Problem};
use crate::state::AppState;
use crate::supervisor::STUCK_AFTER;

/// A probe's answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthResponse {
    /// `ok`.
    pub status: &'static str,
}

/// The probe routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

/// Liveness: the process serves requests.
#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = 200, description = "Alive", body = HealthResponse)))]
pub async fn healthz() -> Json<HealthResponse> {
    Json(HealthResponse { status: "ok" })
}

/// Readiness: the database answers, and this process's background tasks (projector, search
/// index follower) run and make progress.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses(
        (status = 200, description = "Ready", body = HealthResponse),
        (status = 503, description = "Database unreachable, or a background task down or stuck", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<HealthResponse>, ApiError> {
    state
        .database
        .ping()
        .await
        .map_err(|e| ApiError::Unavailable(anyhow::Error::new(e)))?;
    let problems = state.supervisor.problems(STUCK_AFTER);
    if !problems.is_empty() {
        return Err(ApiError::NotReady(problems.join("; ")));
    }
    Ok(Json(HealthResponse { status: "ok" }))
}

/// Prometheus metrics (text exposition format): the projector's checkpoint, the latest
/// committed position, the lag between them, this process's search index position and lag,
/// projection failures, and whether this process is the projector. Two index lookups and
/// in-memory counters: a scrape never takes a lock a writer waits for.
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses(
        (status = 200, description = "Prometheus text format", body = String, content_type = "text/plain"),
        (status = 503, description = "Database unreachable", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn metrics(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let status = state
        .reads
        .projector_status()
        .await
        .map_err(|e| ApiError::Unavailable(anyhow::Error::new(e)))?;
    let projector = &state.projector;
    let index_position = state.search.position();
    let metrics: [(&str, &str, &str, u64); 10] = [
        (
            "registry_exports_running",
            "gauge",
            "Exports (xlsx, PDF) being rendered by this process.",
            u64::try_from(state.exports.running()).unwrap_or_default(),
        ),
        (
            "registry_projector_checkpoint_position",
            "gauge",
            "Last global feed position the background projector applied.",
            u64::try_from(status.checkpoint).unwrap_or_default(),
        ),
        (
            "registry_feed_head_position",
            "gauge",
            "Latest committed position of the global feed.",
            u64::try_from(status.head).unwrap_or_default(),
        ),
        (
            "registry_search_index_position",
            "gauge",
            "Feed position up to which this process's search index reflects every event.",
            u64::try_from(index_position).unwrap_or_default(),
        ),
        (
            "registry_search_index_lag_positions",
            "gauge",
            "Feed positions between this process's search index and the latest committed one.",
            u64::try_from(status.head - index_position).unwrap_or_default(),
        ),
        (
            "registry_projector_lag_events",
            "gauge",
            "Feed positions after the projector's checkpoint (events, less rolled-back inserts).",
            status.lag,
        ),
        (
            "registry_projection_parked_events",
            "gauge",
            "Events the projection parked because they cannot be applied (see projections status).",
            status.parked,
        ),
        (
            "registry_projection_failures_total",
            "counter",
            "Projection attempts that failed in this process (inline or background).",
            projector.failures(),
        ),
        (
            "registry_projector_events_total",
            "counter",
            "Feed events the background projector of this process read.",
            projector.applied(),
        ),
        (
            "registry_projector_leader",
            "gauge",
            "1 when this process holds the projector lease.",
            u64::from(projector.is_leader()),
        ),
    ];
    let mut body = String::new();
    for (name, kind, help, value) in metrics {
        body.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
        ));
    }
    let tasks = state.supervisor.tasks();
    body.push_str(
        "# HELP registry_background_task_up 1 while a supervised background task runs.\n\
         # TYPE registry_background_task_up gauge\n",
    );
    for task in &tasks {
        body.push_str(&format!(
            "registry_background_task_up{{task=\"{}\"}} {}\n",
            task.name(),
            u8::from(task.is_running())
        ));
    }
    body.push_str(
        "# HELP registry_background_task_restarts_total Times a background task panicked or \
         ended and was started again.\n# TYPE registry_background_task_restarts_total counter\n",
    );
    for task in &tasks {
        body.push_str(&format!(
            "registry_background_task_restarts_total{{task=\"{}\"}} {}\n",
            task.name(),
            task.restarts()
        ));
    }
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    ))
}
