//! Liveness and readiness probes and the Prometheus scrape (`/metrics`), outside `/api` and
//! without authentication.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use utoipa::ToSchema;

use std::time::Duration;

use crate::error::{ApiError, Problem};
use crate::metrics::Sample;
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
    if state.draining.load(std::sync::atomic::Ordering::Relaxed) {
        return Err(ApiError::NotReady("shutting down".to_owned()));
    }
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

/// Prometheus metrics (text exposition format). Always answered: when the database does not
/// answer, `registry_database_up` is 0 and the feed positions are left out, but everything
/// this process knows by itself (requests, pool, queue) is there — that is when it matters.
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses(
        (status = 200, description = "Prometheus text format", body = String, content_type = "text/plain"),
    ))]
pub async fn metrics(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let sample = sample(&state).await;
    let body = (state.metrics.scrape(&sample)).map_err(|e| ApiError::Internal(e.into()))?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    ))
}

/// What a scrape reads: this process's queues, pool, index and tasks, and the projector's
/// status when the database answers within 2 s (a scrape must not wait out the pool's
/// acquire timeout).
async fn sample(state: &AppState) -> Sample {
    let status = tokio::time::timeout(Duration::from_secs(2), state.reads.projector_status());
    let projector = &state.projector;
    Sample {
        exports_running: state.exports.running(),
        hashing_queue: state.commands.hashing_queue_depth(),
        hashing_skipped: state.commands.hashing_jobs_skipped(),
        pool: state.database.pool_stats(),
        index_position: state.search.position(),
        status: status.await.ok().and_then(Result::ok),
        projector: (
            projector.failures(),
            projector.applied(),
            projector.is_leader(),
        ),
        tasks: (state.supervisor.tasks().iter())
            .map(|task| (task.name(), task.is_running(), task.restarts()))
            .collect(),
    }
}
